//! `kiln lr-find` end to end: on the bundled digits it draws the curve, writes the PNG, leaves
//! no run behind, and the rate it suggests trains better than a rate far below it; bad sweep
//! settings are refused before any training.

use std::process::Command;

use kiln::experiment::Experiment;
use kiln::protocol::epoch_history;
use kiln::train::{self, TrainOptions};

use crate::common::{repo_path, scratch, training_lock};

/// Best validation accuracy of digits trained 2 epochs at `rate`.
fn digits_accuracy_at(rate: f64) -> f64 {
    let overrides = vec![
        "train.backend=\"cpu\"".to_string(),
        "train.epochs=2".into(),
        format!("train.learning_rate={rate}"),
    ];
    let experiment = Experiment::load(&repo_path("experiments/digits.toml"), &overrides).unwrap();
    let handle = train::spawn(TrainOptions {
        experiment,
        runs_dir: scratch("lr-find-check"),
    })
    .unwrap();
    let events: Vec<_> = handle.events.iter().collect();
    handle.join();
    epoch_history(&events)
        .iter()
        .map(|m| m.validation_accuracy)
        .fold(0.0, f64::max)
}

#[test]
fn lr_find_suggests_a_rate_that_trains_and_draws_the_curve() {
    let _guard = training_lock();
    let dir = scratch("lr-find");
    let png = dir.join("curve.png");
    let output = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["lr-find"])
        .arg(repo_path("experiments/digits.toml"))
        .args(["--backend", "cpu", "--steps", "80", "--ascii", "--png"])
        .arg(&png)
        .current_dir(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(
        stdout.starts_with("lr-find · digits · 80 steps from 1e-7 to 1e1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("learning rate") && stdout.contains('•'),
        "a chart: {stdout}"
    );
    let suggested: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("suggested learning rate: "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|rate| rate.parse().ok())
        .unwrap_or_else(|| panic!("a suggestion in {stdout}"));
    assert!((1e-7..=10.0).contains(&suggested), "{suggested}");
    assert!(
        stdout.contains(&format!(
            "  [train]\n  learning_rate = {}\n",
            kiln::lr_find::rate_text(suggested)
        )),
        "the line to put in the file: {stdout}"
    );
    let picture = image::open(&png).expect("the PNG").into_rgb8();
    assert_eq!(picture.dimensions(), (1000, 600));
    // Nothing but the PNG: no run directory, no runs folder.
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("curve.png")]);

    // The suggestion is worth taking: it trains digits well, and better than a hundredth of it.
    let at_suggested = digits_accuracy_at(suggested);
    let far_below = digits_accuracy_at(suggested / 100.0);
    eprintln!(
        "digits, 2 epochs: {at_suggested:.3} at {suggested:e}, {far_below:.3} at a hundredth"
    );
    assert!(at_suggested > 0.85, "{at_suggested}");
    assert!(
        at_suggested > far_below + 0.05,
        "{at_suggested} vs {far_below}"
    );
}

#[test]
fn bad_sweep_settings_exit_2_before_training() {
    let output = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["lr-find", "experiments/digits.toml", "--steps", "3"])
        .current_dir(repo_path(""))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--steps 3: expected at least 10 steps"),
        "{stderr}"
    );
}
