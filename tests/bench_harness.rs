//! The speed harness runs both loops on the same workload and reports usable numbers (the
//! figures themselves belong in benchmarks, not in assertions).

use kiln::bench::{measure, synthetic_dataset, workloads};
use kiln::experiment::BackendChoice;

use crate::common::{scratch, training_lock};

#[test]
fn bench_measures_kiln_and_the_bare_loop_side_by_side() {
    let _guard = training_lock();
    let digits = workloads()
        .into_iter()
        .find(|w| w.name == "digits")
        .unwrap();
    let m = measure(&digits, BackendChoice::Cpu, 1, 4, 2, &scratch("bench")).unwrap();
    assert_eq!(m.workload, "digits");
    assert_eq!(m.backend, "flex");
    for value in [
        m.train_images_per_second,
        m.bare_train_images_per_second,
        m.eval_images_per_second,
        m.seconds_per_epoch,
    ] {
        assert!(value.is_finite() && value > 0.0, "{m:?}");
    }
    let ratio = m.train_images_per_second / m.bare_train_images_per_second;
    assert!((m.ratio_vs_bare - ratio).abs() < 1e-12);
    let json = serde_json::to_string(&m).unwrap();
    assert!(json.contains("\"ratio_vs_bare\""));
}

#[test]
fn synthetic_data_has_the_workload_shape_and_is_seeded() {
    let small64 = workloads()
        .into_iter()
        .find(|w| w.name == "small64")
        .unwrap();
    let a = synthetic_dataset(&small64, 50, 3);
    let b = synthetic_dataset(&small64, 50, 3);
    assert_eq!((a.channels, a.height, a.width), (3, 64, 64));
    assert_eq!(a.len(), 50);
    assert_eq!(a.pixels, b.pixels);
    assert_ne!(a.pixels, synthetic_dataset(&small64, 50, 4).pixels);
}

#[test]
fn monitoring_cost_is_timed_on_a_real_log() {
    let dir = crate::common::scratch("monitoring");
    let seconds = kiln::bench::monitoring_seconds_per_batch(&dir, 300).unwrap();
    assert!(seconds.is_finite() && seconds > 0.0, "{seconds}");
    // Every timed event really went to the log.
    let logged = kiln::runs::read_events(&dir.join("monitoring.jsonl")).unwrap();
    assert_eq!(logged.events.len(), 300);
    assert_eq!(logged.skipped_lines, 0);
}
