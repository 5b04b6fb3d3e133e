//! Headless mode: plain lines for logs, through the real binary.

use std::process::Command;

use kiln::headless::LineFormatter;
use kiln::protocol::{EpochMetrics, EventKind};

use crate::common::{repo_path, scratch, train_digits, training_lock, wait_until_finished};

#[test]
fn epoch_line_has_every_number_and_no_control_characters() {
    let mut formatter = LineFormatter::new("runs/x");
    let event = kiln::here::event(
        Some(3),
        Some(30),
        EventKind::Epoch(EpochMetrics {
            train_loss: 0.1234,
            train_accuracy: 0.99,
            validation_loss: 0.3456,
            validation_accuracy: 0.95,
            learning_rate: 1e-3,
            dropout: 0.0,
            seconds: 2.04,
            images_per_second: 1500.0,
            classes: None,
        }),
    );
    let line = formatter.line(&event).unwrap();
    assert_eq!(
        line,
        "epoch 3/0  train loss 0.1234 acc 0.9900  val loss 0.3456 acc 0.9500  gap +0.0400  2.0s  1500 img/s"
    );
}

#[test]
fn headless_run_prints_epochs_and_a_summary() {
    let _guard = training_lock();
    let runs = scratch("headless");
    let output = train_digits("--headless", 2, &runs).output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("flex on CPU"), "{stdout}");
    assert!(stdout.contains("epoch 1/2  train loss"), "{stdout}");
    assert!(stdout.contains("epoch 2/2  train loss"), "{stdout}");
    assert!(stdout.contains("finished after 2 epoch(s)"), "{stdout}");
    assert!(
        !stdout.chars().any(|c| c.is_control() && c != '\n'),
        "control characters in:\n{stdout:?}"
    );
    let run_dir = stdout
        .lines()
        .find_map(|l| l.strip_prefix("run: "))
        .expect("summary names the run directory");
    let run_dir = std::path::Path::new(run_dir);
    assert!(run_dir.join("events.jsonl").is_file());
    assert!(run_dir.join("experiment.toml").is_file());
}

#[test]
fn headless_run_with_bad_experiment_exits_with_usage_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["train", "experiments/digits.toml", "--headless"])
        .args(["--set", "train.batch_size=0"])
        .current_dir(repo_path(""))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("--set train.batch_size=0"), "{stderr}");
}

#[test]
fn detach_returns_at_once_and_the_run_finishes_in_the_background() {
    let _guard = training_lock();
    let runs = scratch("detach");
    let output = train_digits("--detach", 2, &runs).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let id = stdout.lines().next().unwrap();
    assert!(id.ends_with("-digits"), "{stdout}");
    assert!(
        stdout.contains(&format!("watch it with: kiln attach {id}")),
        "the next command to type: {stdout}"
    );
    assert_eq!(wait_until_finished(&runs.join(id)).epochs_completed, 2);
}

#[test]
fn completions_and_the_man_page_come_from_the_command_line_definition() {
    let run = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_kiln"))
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    for shell in ["bash", "zsh", "fish"] {
        let script = run(&["completions", shell]);
        for command in ["train", "attach", "resume", "fork", "prune", "runs-dir"] {
            assert!(script.contains(command), "{shell} completes {command}");
        }
    }
    let page = run(&["man"]);
    assert!(page.contains(".TH kiln 1"), "{page}");
    assert!(page.contains("Train and watch image classifiers"));
}
