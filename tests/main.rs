//! kiln's integration tests, in one binary so burn links once.

mod bench_harness;
mod checkpoints;
mod common;
mod control;
mod cpu_kernels;
mod datasets;
mod diagnosis;
mod diagnosis_labelled;
mod event_log;
mod experiment_files;
mod headless_output;
mod model_use;
mod module_graph;
mod previews;
mod resume_fork;
mod run_store;
mod script;
mod slurm;
mod storage;
mod sweeps;
mod tensorboard;
mod training;
mod tricks;
mod tui_screens;
mod tui_state;
mod tui_terminal;
