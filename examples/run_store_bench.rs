//! Benchmark of the run store with many runs: generates 1,000 runs × 100 epochs of realistic
//! logs in a scratch folder, then times listing (first, when summaries are built and cached;
//! then warm) and opening one run (read + replay), against a reference in the same run: reading
//! the same bytes with no parsing.
//!
//! `cargo run --release --example run_store_bench [RUNS] [EPOCHS]`

use std::io::Write;
use std::time::Instant;

use kiln::protocol::{
    BackendSummary, BatchProgress, DatasetSummary, EpochMetrics, Event, EventKind, RunStarted,
};
use kiln::runs::{EVENTS_FILE, list_runs, open_run};
use kiln::tui::run_view::RunView;

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
    let at = |epoch: Option<usize>, step: u64, kind| Event {
        time: "2026-11-27T12:00:00.000Z".into(),
        epoch,
        step: Some(step),
        kind,
    };
    let mut events = vec![at(
        None,
        0,
        EventKind::RunStarted(Box::new(RunStarted {
            run_id: "bench".into(),
            experiment: "bench".into(),
            dataset: DatasetSummary {
                name: "mnist-5k".into(),
                classes: (0..10).map(|d| d.to_string()).collect(),
                train_images: 1000,
                validation_images: 1000,
                channels: 1,
                height: 28,
                width: 28,
                skipped: 0,
            },
            backend: BackendSummary {
                name: "flex".into(),
                device: "CPU".into(),
                reason: "bench".into(),
            },
            epochs,
            batches_per_epoch: batches,
            batch_size: 32,
            learning_rate: 1e-3,
            dropout: 0.0,
            batch_norm: false,
            augmentation: false,
            parameters: 206_922,
            gap_threshold: 0.05,
            patience: 3,
        })),
    )];
    let mut step = 0;
    for epoch in 1..=epochs {
        for batch in 1..=batches {
            step += 1;
            events.push(at(
                Some(epoch),
                step,
                EventKind::Batch(BatchProgress {
                    batch,
                    batches,
                    loss: 1.0 / step as f64,
                    images_per_second: 1500.0,
                }),
            ));
        }
        let acc = 1.0 - 1.0 / (epoch as f64 + 1.0);
        events.push(at(
            Some(epoch),
            step,
            EventKind::Epoch(EpochMetrics {
                train_loss: 1.0 / epoch as f64,
                train_accuracy: acc,
                validation_loss: 1.2 / epoch as f64,
                validation_accuracy: acc * 0.95,
                learning_rate: 1e-3,
                dropout: 0.0,
                seconds: 1.0,
                images_per_second: 1000.0,
            }),
        ));
    }
    events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap() + "\n")
        .collect()
}
