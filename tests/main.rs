//! kiln's integration tests, in one binary so burn links once.

/// Runs before `main` (and so before the test harness starts its threads), as kiln's binary
/// does first thing: burn's default device is the CPU backend (see
/// `kiln::train::pin_burn_default_device`).
#[used]
#[unsafe(link_section = ".init_array")]
static PIN_BURN_DEFAULT_DEVICE: extern "C" fn() = {
    extern "C" fn pin() {
        // SAFETY: `.init_array` functions run before `main`, on the only thread.
        unsafe { kiln::train::pin_burn_default_device() };
        kiln::install_pictures();
    }
    pin
};

mod allocator;
mod backbones;
mod backends;
mod bench_harness;
mod checkpoints;
mod class_balance;
mod common;
mod control;
mod cpu_kernels;
mod crate_rules;
mod datasets;
mod docs_commands;
mod experiment_cli;
mod fine_tune;
mod headless_output;
mod lr_find;
mod mixed_precision;
mod mlflow;
mod model_use;
mod module_graph;
mod notify;
mod previews;
mod resume_fork;
mod run_store;
mod schedules;
// kiln-screen's scripted event streams and test-terminal drawing, shared with its tests.
#[path = "../crates/kiln-screen/tests/render.rs"]
mod render;
// Not every scripted step is used here.
#[allow(dead_code)]
#[path = "../crates/kiln-screen/tests/script.rs"]
mod script;
mod slurm;
mod storage;
mod sweeps;
mod tensorboard;
mod training;
mod tricks;
mod tui_terminal;
