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
    let m = measure(
        &digits,
        BackendChoice::Cpu,
        kiln::experiment::Precision::F32,
        1,
        4,
        2,
        &scratch("bench"),
    )
    .unwrap();
    assert_eq!(m.workload, "digits");
    assert_eq!(m.backend, "flex");
    for value in [
        m.train_images_per_second,
        m.bare_train_images_per_second,
        m.eval_images_per_second,
        m.bare_eval_images_per_second,
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

#[test]
fn the_per_operation_bench_times_every_layer_of_the_model_on_its_shape() {
    let _guard = training_lock();
    let digits = workloads()
        .into_iter()
        .find(|w| w.name == "digits")
        .unwrap();
    let timings = kiln::bench::ops::measure_ops(&digits, BackendChoice::Cpu, 1, 2).unwrap();
    let ops: Vec<&str> = timings.iter().map(|t| t.op.as_str()).collect();
    // Two conv blocks (8x8 then 4x4), one hidden layer and the output layer, the loss, Adam.
    for expected in [
        "conv1 fwd",
        "conv1 fwd+bwd-input",
        "conv1 fwd+bwd-weight",
        "relu1 fwd+bwd",
        "pool1 fwd+bwd",
        "conv2 fwd",
        "pool2 fwd",
        "linear1 fwd+bwd",
        "linear2 fwd+bwd",
        "cross-entropy fwd+bwd",
        "adam step",
    ] {
        assert!(ops.contains(&expected), "{expected} missing from {ops:?}");
    }
    assert!(
        !ops.iter().any(|op| op.starts_with("bn")),
        "digits has no batch norm"
    );
    let shape_of = |op: &str| &timings.iter().find(|t| t.op == op).unwrap().shape;
    assert_eq!(shape_of("conv1 fwd"), "32x1x8x8");
    assert_eq!(shape_of("conv2 fwd"), "32x16x4x4");
    assert_eq!(shape_of("linear1 fwd"), "32x128");
    assert!(
        timings
            .iter()
            .all(|t| t.milliseconds.is_finite() && t.milliseconds > 0.0),
        "{timings:?}"
    );
    // On flex, burn's own kernel is timed beside each of kiln's (convolutions, pooling) in the
    // same run; the operations kiln leaves to burn have no second figure.
    for timing in &timings {
        let replaced = timing.op.starts_with("conv") || timing.op.starts_with("pool");
        match timing.burn_milliseconds {
            Some(burn) => assert!(replaced && burn.is_finite() && burn > 0.0, "{timing:?}"),
            None => assert!(!replaced, "{timing:?} lacks burn's figure"),
        }
    }
}

#[test]
fn kiln_bench_runs_without_warm_up_and_writes_every_field_to_json() {
    let _guard = training_lock();
    let dir = scratch("bench-command");
    let json = dir.join("bench.json");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["bench", "--backend", "cpu", "--workload", "digits"])
        .args(["--warmup", "0", "--steps", "3", "--repeat", "2", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("kiln eval") && stdout.contains("bare eval"),
        "{stdout}"
    );
    assert!(stdout.lines().any(|l| l.starts_with("digits ")), "{stdout}");
    assert!(stdout.contains("monitoring:"), "{stdout}");
    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row["workload"], "digits");
    assert_eq!(row["framework"], "kiln");
    assert_eq!(row["backend"], "flex");
    assert_eq!(row["batch_size"], 32);
    assert_eq!(row["repeat"], 2);
    for field in [
        "train_images_per_second",
        "eval_images_per_second",
        "bare_train_images_per_second",
        "bare_eval_images_per_second",
        "seconds_per_epoch",
        "peak_memory_mb",
        "ratio_vs_bare",
    ] {
        let value = row[field].as_f64().unwrap_or(f64::NAN);
        assert!(value.is_finite() && value > 0.0, "{field}: {row}");
    }
    let waited = row["loader_wait"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&waited), "{row}");
    // Device memory comes from NVML: only where an NVIDIA driver answers.
    if kiln::machine::gpu_sample().is_none() {
        assert!(row.get("device_memory_mb").is_none(), "{row}");
    }
    let ratio = row["train_images_per_second"].as_f64().unwrap()
        / row["bare_train_images_per_second"].as_f64().unwrap();
    assert!((row["ratio_vs_bare"].as_f64().unwrap() - ratio).abs() < 1e-9);
}
