//! Benchmark of the run store with many runs: generates 1,000 runs × 100 epochs of realistic
//! logs in a scratch folder, then times listing (first, when summaries are built and cached;
//! then warm) and opening one run (read + replay), against a reference in the same run: reading
//! the same bytes with no parsing.
//!
//! `cargo run --release --example run_store_bench [RUNS] [EPOCHS]`

use std::io::Write;
use std::time::Instant;

use kiln::bench::synthetic_run;
use kiln::monitor::RunView;
use kiln::runs::{EVENTS_FILE, list_runs, open_run};

fn main() {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let epochs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let batches = 32;
    let dir = std::env::temp_dir().join(format!("kiln-store-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    let started = Instant::now();
    let log = log_text(epochs, batches);
    for i in 0..runs {
        let run = dir.join(format!("20261127-{:06}-bench", i));
        std::fs::create_dir_all(&run).unwrap();
        std::fs::File::create(run.join(EVENTS_FILE))
            .unwrap()
            .write_all(log.as_bytes())
            .unwrap();
    }
    println!(
        "generated {runs} runs × {epochs} epochs ({} batch lines each, {:.1} MB per log) in {:.1}s",
        epochs * batches,
        log.len() as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let listing = list_runs(&dir).unwrap();
    let cold = t.elapsed().as_secs_f64();
    assert_eq!(listing.runs.len(), runs);
    let t = Instant::now();
    let listing = list_runs(&dir).unwrap();
    let warm = t.elapsed().as_secs_f64();
    assert_eq!(listing.runs[0].epochs_done, epochs);

    let path = &listing.runs[runs / 2].path;
    let t = Instant::now();
    let raw = std::fs::read(path.join(EVENTS_FILE)).unwrap();
    let read_only = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let opened = open_run(path).unwrap();
    let view = RunView::replay(&opened.events);
    let open = t.elapsed().as_secs_f64();
    assert_eq!(view.epochs.len(), epochs);

    println!(
        "list, first time (builds summary caches): {:>8.1} ms",
        cold * 1e3
    );
    println!(
        "list, cached:                             {:>8.1} ms",
        warm * 1e3
    );
    println!(
        "open one run (read + parse + replay):     {:>8.1} ms  (reading its {} bytes alone: {:.2} ms, ratio {:.1}x)",
        open * 1e3,
        raw.len(),
        read_only * 1e3,
        open / read_only.max(1e-9)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn log_text(epochs: usize, batches: usize) -> String {
    synthetic_run(epochs, batches)
        .iter()
        .map(|e| serde_json::to_string(e).unwrap() + "\n")
        .collect()
}
