//! The experiment file on kiln's command line: `kiln check`, and a backend this build lacks.

use std::process::Command;

use kiln::experiment::{BackendChoice, Experiment, Precision};

use crate::common::{repo_path, scratch, write};

/// The LibTorch backend is opt-in at build time: `--backend torch` in a default build is bad
/// input, refused before a run directory exists, with how to get it.
#[cfg(not(feature = "torch"))]
#[test]
fn torch_backend_in_a_build_without_it_is_refused_with_how_to_get_it() {
    let err = kiln::train::choose_backend(BackendChoice::Torch, Precision::F32).unwrap_err();
    assert!(err.to_string().contains("--features torch"), "{err}");

    // On the command line it is bad input, refused before a run directory exists.
    let runs = scratch("torch-cli");
    let output = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["train", "--headless", "--backend", "torch", "--runs-dir"])
        .arg(&runs)
        .arg(repo_path("experiments/digits.toml"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("--features torch"), "{stderr}");
    let made = std::fs::read_dir(&runs).map_or(0, |entries| entries.count());
    assert_eq!(made, 0, "no run directory for a refused backend");
}

#[test]
fn check_command_prints_resolved_experiment() {
    let output = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args([
            "check",
            "experiments/dropout.toml",
            "--set",
            "train.epochs=3",
        ])
        .current_dir(repo_path(""))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    let resolved = Experiment::from_toml(&text).unwrap();
    assert_eq!(resolved.train.epochs, 3);
    assert_eq!(resolved.model.dropout, 0.3);
    assert_eq!(resolved.data.train_images, Some(1000));
}

#[test]
fn check_command_fails_cleanly_on_bad_input() {
    let dir = scratch("check-bad");
    let path = dir.join("bad.toml");
    write(&path, "[model]\ndropout = 7\n");
    let output = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("check")
        .arg(&path)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("bad.toml:2: `model.dropout` = 7"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}
