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
