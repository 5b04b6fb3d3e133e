//! kiln-core's tests, in one binary: experiment files, the event log, diagnosis. They build
//! without burn, so this loop takes seconds: `cargo test --release -p kiln-core`.

mod balance;
mod common;
mod diagnosis;
mod diagnosis_labelled;
mod event_log;
mod experiment_files;
mod lr_find;
mod notifications;
mod schedule;
mod tracking;
mod words;
