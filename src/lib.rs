//! kiln: a terminal-native trainer and monitor for image classifiers.
//!
//! The training thread ([`train`]) and any front end talk only through [`protocol`] messages;
//! every event also lands in the run's log ([`runs`]), so live and past runs share one format.

pub mod allocator;
pub mod augment_preview;
pub mod bench;
pub mod cli;
pub mod control;
pub mod data;
pub mod diagnose;
pub mod experiment;
pub mod fixes;
pub mod flex_ops;
pub mod fonts;
pub mod format;
pub mod gallery;
pub mod headless;
pub mod infer;
pub mod ladder;
pub mod machine;
pub mod metrics;
pub mod model;
pub mod monitor;
pub mod protocol;
pub mod report;
pub mod runs;
pub mod slurm;
pub mod sweep;
pub mod tensorboard;
pub mod train;
pub mod tui;
