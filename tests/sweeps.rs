//! Sweeps run locally: the grid, the runs it starts (each an ordinary run with its settings),
//! the sweep record and its table.

use kiln::sweep::{Grid, GridError, SweepRecord, run_name};

use crate::common::{repo_path, scratch, training_lock};

#[test]
fn a_grid_is_the_cross_product_of_its_values() {
    let grid = Grid::parse(&[
        "model.dropout=0.0,0.3".to_string(),
        "model.conv_channels=[16,32],[32,64],[8]".to_string(),
    ])
    .unwrap();
    let all = grid.combinations();
    assert_eq!(all.len(), 6);
    assert_eq!(
        all[1],
        [
            ("model.dropout".to_string(), "0.0".to_string()),
            ("model.conv_channels".to_string(), "[32,64]".to_string()),
        ]
    );
    assert_eq!(
        run_name("baseline", &all[1]),
        "baseline-dropout0.0-conv32x64"
    );
    assert_eq!(
        Grid::parse(&["model.dropout".to_string()]),
        Err(GridError::Malformed("model.dropout".into()))
    );
    assert_eq!(
        Grid::parse(&["a.b=1".to_string(), "a.b=2".to_string()]),
        Err(GridError::Repeated("a.b".into()))
    );
}

#[test]
fn a_local_sweep_trains_every_combination_and_ranks_them() {
    let _lock = training_lock();
    let runs = scratch("sweep");
    let kiln = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
            .args(args)
            .arg("--runs-dir")
            .arg(&runs)
            .current_dir(repo_path(""))
            .output()
            .unwrap()
    };
    let output = kiln(&[
        "sweep",
        "experiments/digits.toml",
        "--grid",
        "model.dropout=0.0,0.3",
        "--grid",
        "train.learning_rate=1e-3,3e-3",
        "--set",
        "train.epochs=2",
        "--parallel",
        "2",
        "--backend",
        "cpu",
    ]);
    assert!(output.status.success(), "{output:?}");
    let ids = kiln::sweep::list(&runs);
    assert_eq!(ids.len(), 1);
    let record = SweepRecord::load(&runs, &ids[0]).unwrap();
    assert_eq!(record.keys, ["model.dropout", "train.learning_rate"]);
    assert_eq!(record.runs.len(), 4);
    for run in &record.runs {
        assert_eq!(run.exit_code, Some(0), "{run:?}");
        let id = run.run_id.as_ref().expect("the run's id");
        // An ordinary run in the store, trained with its swept settings.
        let experiment =
            kiln::experiment::Experiment::load(&runs.join(id).join("experiment.toml"), &[])
                .unwrap();
        let dropout: f64 = run.settings[0].1.parse().unwrap();
        let learning_rate: f64 = run.settings[1].1.parse().unwrap();
        assert_eq!(experiment.model.dropout, dropout);
        assert_eq!(experiment.train.learning_rate, learning_rate);
        assert_eq!(experiment.train.epochs, 2);
    }
    // The listing counts the runs and not the sweeps folder.
    let listing = kiln::runs::list_runs(&runs).unwrap();
    assert_eq!((listing.runs.len(), listing.not_runs), (4, 0));

    // The table: one row per run, best validation accuracy first, the swept keys as columns.
    let status = kiln(&["sweep", "status", "--plain"]);
    assert!(status.status.success(), "{status:?}");
    let text = String::from_utf8_lossy(&status.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], format!("sweep {}", record.id));
    assert!(
        lines[1].starts_with("model.dropout  train.learning_rate  best_val"),
        "{text}"
    );
    assert_eq!(lines.len(), 6, "{text}");
    let best: Vec<f64> = lines[2..]
        .iter()
        .map(|line| line.split_whitespace().nth(2).unwrap().parse().unwrap())
        .collect();
    assert!(best.windows(2).all(|w| w[0] >= w[1]), "{text}");
    assert!(
        lines[2..].iter().all(|line| line.contains("finished")),
        "{text}"
    );

    // A bad grid is refused before anything runs.
    let bad = kiln(&[
        "sweep",
        "experiments/digits.toml",
        "--grid",
        "model.dropot=0.1,0.2",
    ]);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    assert_eq!(kiln::sweep::list(&runs).len(), 1);
}

#[test]
fn cancel_stops_a_sweep_and_starts_no_more_of_it() {
    let _lock = training_lock();
    let runs = scratch("sweep-cancel");
    let mut sweep = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args([
            "sweep",
            "experiments/digits.toml",
            "--grid",
            "model.dropout=0.0,0.3",
        ])
        .args([
            "--set",
            "train.epochs=5000",
            "--backend",
            "cpu",
            "--runs-dir",
        ])
        .arg(&runs)
        .current_dir(repo_path(""))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the first run trains (the status table finds it by name).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let id = loop {
        if let Some(id) = kiln::sweep::list(&runs).pop() {
            let record = SweepRecord::load(&runs, &id).unwrap();
            let rows = kiln::sweep::rows(&record, &runs);
            if rows.iter().any(|r| r.state == "running") {
                break id;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the sweep never started a run"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["cancel", &id[..12], "--runs-dir"])
        .arg(&runs)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("no further run starts") && text.contains(": stopped"),
        "{text}"
    );
    // The sweep ends: its first run stopped, the second never started.
    assert!(sweep.wait().unwrap().success());
    let record = SweepRecord::load(&runs, &id).unwrap();
    let states: Vec<String> = record
        .runs
        .iter()
        .map(|run| {
            if run.cancelled {
                "cancelled".to_string()
            } else {
                kiln::runs::summary_of(&runs.join(run.run_id.as_ref().unwrap()), "")
                    .state
                    .label()
                    .to_string()
            }
        })
        .collect();
    assert_eq!(states, ["stopped", "cancelled"]);
    // A run that is not running says so.
    let stopped = record.runs[0].run_id.clone().unwrap();
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["cancel", &stopped, "--runs-dir"])
        .arg(&runs)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("not running"),
        "{again:?}"
    );
}

#[test]
fn an_experiment_files_sweep_table_is_the_grid_and_the_command_line_adds_to_it() {
    let _lock = training_lock();
    let dir = scratch("sweep-table");
    let file = dir.join("swept.toml");
    let digits = repo_path("experiments/digits.toml");
    std::fs::write(
        &file,
        format!(
            "extends = {:?}\nname = \"swept\"\n\n[sweep]\n\"model.dropout\" = [0.0, 0.3]\n\
             \"train.learning_rate\" = [1e-3]\n",
            digits.display().to_string()
        ),
    )
    .unwrap();
    let experiment = kiln::experiment::Experiment::load(&file, &[]).unwrap();
    assert_eq!(experiment.sweep["model.dropout"].len(), 2);
    let runs = dir.join("runs");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("sweep")
        .arg(&file)
        .args([
            "--grid",
            "train.learning_rate=2e-3,4e-3",
            "--set",
            "train.epochs=1",
        ])
        .args(["--backend", "cpu", "--runs-dir"])
        .arg(&runs)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let record = SweepRecord::load(&runs, &kiln::sweep::list(&runs)[0]).unwrap();
    assert_eq!(record.keys, ["model.dropout", "train.learning_rate"]);
    let settings: Vec<Vec<String>> = record
        .runs
        .iter()
        .map(|r| r.settings.iter().map(|(_, v)| v.clone()).collect())
        .collect();
    assert_eq!(
        settings,
        [
            ["0.0", "2e-3"],
            ["0.0", "4e-3"],
            ["0.3", "2e-3"],
            ["0.3", "4e-3"]
        ],
        "the file's dropout values, the command line's learning rates"
    );

    // A table entry that is not a list of the key's type is refused with its line.
    std::fs::write(&file, "[sweep]\n\"model.dropout\" = 0.3\n").unwrap();
    let err = kiln::experiment::Experiment::load(&file, &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("swept.toml:2") && err.contains("a non-empty list"),
        "{err}"
    );
}
