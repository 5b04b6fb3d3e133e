//! Using a trained model: per-class metrics, the best checkpoint, `kiln evaluate` and
//! `kiln predict` on a real finished run.

use std::path::{Path, PathBuf};
use std::process::Command;

use kiln::experiment::Experiment;
use kiln::metrics;
use kiln::protocol::ClassCounts;

use crate::common::{only_run, scratch, train_digits, training_lock};

fn kiln() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
}

#[test]
fn per_class_scores_of_a_hand_made_confusion_matrix() {
    // 3 classes; rows are the true class. Class 2 is never predicted.
    let matrix = [
        8, 2, 0, //
        1, 9, 0, //
        3, 1, 1, //
    ];
    let counts = ClassCounts::from_matrix(&matrix, 3);
    assert_eq!(counts.support, [10, 10, 5]);
    assert_eq!(counts.correct, [8, 9, 1]);
    assert_eq!(counts.predicted, [12, 12, 1]);
    let scores = metrics::scores(&counts);
    assert_eq!(scores[0].recall, 0.8);
    assert_eq!(scores[0].precision, 8.0 / 12.0);
    let f1 = 2.0 * 0.8 * (8.0 / 12.0) / (0.8 + 8.0 / 12.0);
    assert!((scores[0].f1 - f1).abs() < 1e-12);
    assert_eq!(scores[2].recall, 0.2);
    assert_eq!(scores[2].precision, 1.0);
    assert_eq!(metrics::accuracy(&counts), 18.0 / 25.0);
    assert!((metrics::mean_recall(&counts) - (0.8 + 0.9 + 0.2) / 3.0).abs() < 1e-12);
    let order: Vec<usize> = metrics::worst_first(&counts)
        .iter()
        .map(|s| s.class)
        .collect();
    assert_eq!(order, [2, 0, 1]);
    let (lagging, others) = metrics::lagging_class(&counts, 0.2, 5).expect("class 2 lags");
    assert_eq!(lagging.class, 2);
    assert!((others - 0.85).abs() < 1e-12);
    // With too few images for its recall to count, it is not a finding.
    assert!(metrics::lagging_class(&counts, 0.2, 6).is_none());

    // A class nobody predicts has precision 0, not NaN; a matrix too large is not kept.
    let none_predicted = ClassCounts::from_matrix(&[1, 0, 1, 0], 2);
    assert_eq!(metrics::scores(&none_predicted)[1].precision, 0.0);
    let classes = ClassCounts::MAX_MATRIX_CLASSES + 1;
    let big = ClassCounts::from_matrix(&vec![1; classes * classes], classes);
    assert!(big.confusion.is_none());
    assert_eq!(big.support[0], classes as u64);
}

/// A finished digits run of `epochs` epochs in a fresh runs folder.
fn finished_digits_run(name: &str, epochs: usize, extra: &[&str]) -> (PathBuf, PathBuf) {
    let _lock = training_lock();
    let runs = scratch(name);
    let output = train_digits("--headless", epochs, &runs)
        .args(extra)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let run = only_run(&runs);
    (runs, run)
}

fn epochs_of(run: &Path) -> Vec<kiln::protocol::EpochMetrics> {
    let events = kiln::runs::read_events(&run.join("events.jsonl"))
        .unwrap()
        .events;
    kiln::protocol::epoch_history(&events)
}

fn evaluate_json(runs: &Path, run: &Path, extra: &[&str]) -> serde_json::Value {
    let output = kiln()
        .arg("evaluate")
        .arg(run.file_name().unwrap())
        .arg("--runs-dir")
        .arg(runs)
        .args(["--backend", "cpu", "--json"])
        .args(extra)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn the_best_checkpoint_and_evaluate_agree_with_the_log() {
    let (runs, run) = finished_digits_run("evaluate", 4, &["--set", "train.keep_checkpoints=1"]);
    let history = epochs_of(&run);
    assert!(history.iter().all(|m| m.classes.is_some()), "{history:?}");
    let best = kiln::diagnose::best_epoch(&history).unwrap();

    // best/ holds the best epoch's weights and outlives the routine pruning.
    let checkpoints = run.join("checkpoints");
    let (_, state) = kiln::train::checkpoint::best(&checkpoints).expect("a best checkpoint");
    assert_eq!(state.epochs_completed, best);
    let routine = kiln::train::checkpoint::list(&checkpoints);
    assert!(routine.iter().all(|(path, _)| !path.ends_with("best")));

    // evaluate (default: best) recomputes what the log recorded for that epoch.
    let report = evaluate_json(&runs, &run, &[]);
    let logged = &history[best - 1];
    assert_eq!(report["checkpoint"], "checkpoints/best");
    assert_eq!(report["epochs_completed"], best);
    assert_eq!(
        report["accuracy"].as_f64().unwrap(),
        logged.validation_accuracy
    );
    assert!((report["loss"].as_f64().unwrap() - logged.validation_loss).abs() < 1e-5);
    let counts: ClassCounts = serde_json::from_value(report["classes"].clone()).unwrap();
    assert_eq!(Some(&counts), logged.classes.as_ref());

    // And the last epoch's checkpoint, by number, gives the last epoch's figures.
    let last = evaluate_json(&runs, &run, &["--checkpoint", "4"]);
    assert_eq!(
        last["accuracy"].as_f64().unwrap(),
        history[3].validation_accuracy
    );

    // An epoch whose checkpoint was pruned is refused, naming what there is.
    let gone = if best == 1 { 2 } else { 1 };
    let output = kiln()
        .args(["evaluate", "--checkpoint", &gone.to_string(), "--runs-dir"])
        .arg(&runs)
        .arg(run.file_name().unwrap())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("no checkpoint at the end of epoch {gone}")),
        "{stderr}"
    );

    // The text report shows the per-class table and the matrix.
    let output = kiln()
        .args(["evaluate", "--backend", "cpu", "--runs-dir"])
        .arg(&runs)
        .arg(run.file_name().unwrap())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("class  support  recall  precision  f1"),
        "{text}"
    );
    assert!(text.contains("true\\pred  0"), "{text}");

    // show --plain carries the last epoch's per-class table too.
    let output = kiln()
        .args(["show", "--plain", "--runs-dir"])
        .arg(&runs)
        .arg(run.file_name().unwrap())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("per class, epoch 4 (validation)"), "{text}");

    // The per-class CSV: a row per epoch and class, with the log's counts.
    let csv = runs.join("classes.csv");
    let output = kiln()
        .args(["export", "--runs-dir"])
        .arg(&runs)
        .arg(run.file_name().unwrap())
        .arg("--classes-csv")
        .arg(&csv)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let rows: Vec<csv::StringRecord> = csv::Reader::from_path(&csv)
        .unwrap()
        .records()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 4 * 10);
    let last = history[3].classes.as_ref().unwrap();
    let row = &rows[3 * 10 + 7];
    assert_eq!((&row[0], &row[1]), ("4", "7"));
    assert_eq!(row[2].parse::<u64>().unwrap(), last.support[7]);
    assert_eq!(row[3].parse::<u64>().unwrap(), last.correct[7]);
    let recall: f64 = row[5].parse().unwrap();
    assert_eq!(recall, metrics::scores(last)[7].recall);
}

/// Writes the run's validation images as PNG files in class folders; returns how many.
pub(crate) fn write_validation_pngs(run: &Path, folder: &Path) -> usize {
    let experiment = Experiment::load(&run.join("experiment.toml"), &[]).unwrap();
    let dataset = kiln::data::load(&experiment.data).unwrap();
    let split = kiln::train::split(&dataset, &experiment).unwrap();
    for (n, &i) in split.validation.iter().enumerate() {
        let class = &dataset.classes[dataset.labels[i]];
        let path = folder.join(class).join(format!("{n:04}.png"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let (w, h) = (dataset.width as u32, dataset.height as u32);
        image::GrayImage::from_raw(w, h, dataset.image(i).to_vec())
            .unwrap()
            .save(&path)
            .unwrap();
    }
    split.validation.len()
}

#[test]
fn predict_classifies_image_files_and_reports_the_unreadable_ones() {
    let (runs, run) = finished_digits_run("predict", 3, &[]);
    let images = scratch("predict-images");
    let count = write_validation_pngs(&run, &images);
    std::fs::write(
        images.join("0").join("corrupt.png"),
        b"\x89PNG\r\n\x1a\nnot really",
    )
    .unwrap();
    std::fs::write(images.join("notes.txt"), "not an image").unwrap();
    let csv = images.join("predictions.csv");
    let output = kiln()
        .arg("predict")
        .arg(run.file_name().unwrap())
        .arg(&images)
        .arg(images.join("missing.png"))
        .args(["--backend", "cpu", "--top", "3", "--csv"])
        .arg(&csv)
        .arg("--runs-dir")
        .arg(&runs)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    // Every image, the two unreadable files and the missing one: each on its own line.
    assert_eq!(lines.len(), count + 3, "{stdout}");
    let errors: Vec<&&str> = lines.iter().filter(|l| l.contains("error:")).collect();
    assert_eq!(errors.len(), 3, "{stdout}");
    assert!(errors.iter().any(|l| l.contains("corrupt.png")), "{stdout}");
    assert!(errors.iter().any(|l| l.contains("notes.txt")), "{stdout}");
    assert!(
        errors
            .iter()
            .any(|l| l.contains("missing.png") && l.contains("no such file"))
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("3 file(s) could not be classified"));

    // The CSV has the same rows; the share predicted right is the accuracy the run logged
    // for the best checkpoint's epoch (PNG is lossless and the images are not resized).
    let mut reader = csv::Reader::from_path(&csv).unwrap();
    let header = reader.headers().unwrap().clone();
    assert_eq!(
        header.iter().collect::<Vec<_>>(),
        [
            "path",
            "class",
            "probability",
            "class_2",
            "probability_2",
            "class_3",
            "probability_3",
            "error"
        ]
    );
    let (mut right, mut classified) = (0usize, 0usize);
    for row in reader.records() {
        let row = row.unwrap();
        if !row[7].is_empty() {
            continue;
        }
        classified += 1;
        let truth = Path::new(&row[0]).parent().unwrap().file_name().unwrap();
        if truth.to_string_lossy() == row[1] {
            right += 1;
        }
        let (p1, p2, p3): (f64, f64, f64) = (
            row[2].parse().unwrap(),
            row[4].parse().unwrap(),
            row[6].parse().unwrap(),
        );
        assert!(
            p1 >= p2 && p2 >= p3 && p1 + p2 + p3 <= 1.0 + 1e-5,
            "{row:?}"
        );
    }
    assert_eq!(classified, count);
    let (_, state) = kiln::train::checkpoint::best(&run.join("checkpoints")).unwrap();
    let logged = epochs_of(&run)[state.epochs_completed - 1].validation_accuracy;
    assert_eq!(right as f64 / count as f64, logged);

    // evaluate on the same folder as other data agrees.
    std::fs::remove_file(images.join("notes.txt")).unwrap();
    std::fs::remove_file(&csv).unwrap();
    let report = evaluate_json(&runs, &run, &["--data", images.to_str().unwrap()]);
    assert_eq!(report["images"], count);
    assert_eq!(report["skipped"], 1);
    assert_eq!(report["accuracy"].as_f64().unwrap(), logged);
}

#[test]
fn evaluate_refuses_data_whose_classes_the_model_does_not_know() {
    let (runs, run) = finished_digits_run("mismatch", 1, &[]);
    let images = scratch("mismatch-images");
    for class in ["3", "cat", "dog"] {
        let path = images.join(class).join("a.png");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        image::GrayImage::new(8, 8).save(&path).unwrap();
    }
    let output = kiln()
        .arg("evaluate")
        .arg(run.file_name().unwrap())
        .arg("--data")
        .arg(&images)
        .args(["--backend", "cpu", "--runs-dir"])
        .arg(&runs)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("class(es) cat, dog are not among the model's classes"),
        "{stderr}"
    );
}

#[test]
fn the_misclassified_export_holds_exactly_what_evaluation_counts_as_wrong() {
    let (runs, run) = finished_digits_run("misclassified", 2, &[]);
    let out = scratch("misclassified-out");
    let output = crate::common::kiln_ok(
        &[
            "export".as_ref(),
            run.file_name().unwrap(),
            "--misclassified".as_ref(),
            out.as_os_str(),
        ],
        &runs,
    );
    let report = evaluate_json(&runs, &run, &[]);
    let counts: ClassCounts = serde_json::from_value(report["classes"].clone()).unwrap();
    let matrix = counts.confusion.unwrap();
    // Every file is one off-diagonal cell's image: as many per (true, predicted) pair as the
    // confusion matrix counts.
    let mut found = vec![vec![0u64; 10]; 10];
    let mut confidences = Vec::new();
    for entry in std::fs::read_dir(&out).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let parts: Vec<&str> = name.trim_end_matches(".png").split('-').collect();
        let (truth, predicted): (usize, usize) =
            (parts[0].parse().unwrap(), parts[1].parse().unwrap());
        assert_ne!(truth, predicted, "{name}");
        found[truth][predicted] += 1;
        confidences.push(parts[2].parse::<f64>().unwrap());
        let image = image::open(out.join(&name)).unwrap();
        assert_eq!((image.width(), image.height()), (8, 8));
    }
    for (t, row) in matrix.iter().enumerate() {
        for (p, &count) in row.iter().enumerate() {
            let expected = if t == p { 0 } else { count };
            assert_eq!(found[t][p], expected, "true {t} predicted {p}");
        }
    }
    let wrong = report["images"].as_u64().unwrap() - counts.correct.iter().sum::<u64>();
    assert_eq!(confidences.len() as u64, wrong);
    assert!(confidences.iter().all(|c| (0.0..=1.0).contains(c)));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("wrote {wrong} of 359 validation images")),
        "{stdout}"
    );
}

#[test]
fn galleries_show_a_runs_draws_and_exactly_its_mistakes() {
    use kiln::gallery::{AUGMENTED_IMAGES, DRAWS, Kind, MAX_MISTAKES, build};
    let (runs, run) = finished_digits_run("gallery", 2, &[]);
    let augmented = build(&run, Kind::Augmented, 1).unwrap();
    assert_eq!(augmented.tiles.len(), AUGMENTED_IMAGES * (DRAWS + 1));
    assert_eq!(augmented.tiles[0].caption, "0 original");
    assert_eq!(augmented.tiles[1].caption, "0 draw 1");
    // digits.toml does not augment: the draws are the originals, and the view says so.
    assert_eq!(augmented.tiles[0].image, augmented.tiles[1].image);
    assert!(
        augmented
            .note
            .as_deref()
            .unwrap()
            .contains("augmentation is off")
    );

    // The mistakes are those of the newest checkpoint, as evaluation counts them.
    let mistakes = build(&run, Kind::Mistakes, 0).unwrap();
    let report = evaluate_json(&runs, &run, &["--checkpoint", "last"]);
    let counts: ClassCounts = serde_json::from_value(report["classes"].clone()).unwrap();
    let wrong = report["images"].as_u64().unwrap() - counts.correct.iter().sum::<u64>();
    assert_eq!(mistakes.tiles.len() as u64, wrong.min(MAX_MISTAKES as u64));
    assert_eq!(mistakes.epoch, Some(2));
    let confidences: Vec<f64> = mistakes
        .tiles
        .iter()
        .map(|tile| {
            let (pair, confidence) = tile.caption.rsplit_once(' ').unwrap();
            let (truth, predicted) = pair.split_once(" → ").unwrap();
            assert_ne!(truth, predicted, "{}", tile.caption);
            assert_eq!((tile.image.width(), tile.image.height()), (8, 8));
            confidence.parse().unwrap()
        })
        .collect();
    assert!(
        confidences.windows(2).all(|w| w[0] >= w[1]),
        "most confident first"
    );
}

#[test]
fn building_a_gallery_while_a_run_trains_does_not_hold_it_up() {
    use crate::common::{stop_run, wait_for};
    use kiln::protocol::EventKind;
    let _lock = training_lock();
    let experiment = Experiment::load(
        &crate::common::repo_path("experiments/digits.toml"),
        &[
            "train.epochs=100000".to_string(),
            "train.backend=\"cpu\"".to_string(),
        ],
    )
    .unwrap();
    let handle = kiln::train::spawn(kiln::train::TrainOptions {
        experiment,
        runs_dir: scratch("gallery-live"),
    })
    .unwrap();
    wait_for(&handle.events, "a checkpoint", |k| {
        matches!(k, EventKind::CheckpointWritten { .. })
    });
    let before = handle
        .events
        .try_iter()
        .filter_map(|e| e.step)
        .max()
        .unwrap_or(0);
    let pictures = kiln::gallery::build(&handle.run.path, kiln::gallery::Kind::Mistakes, 0);
    assert!(pictures.is_ok(), "{pictures:?}");
    // The trainer went on meanwhile: later steps, no pause.
    let after: Vec<_> = wait_for(&handle.events, "more training", |k| {
        matches!(k, EventKind::Batch(_))
    });
    assert!(
        after
            .iter()
            .all(|e| !matches!(e.kind, EventKind::Paused { .. }))
    );
    assert!(after.last().unwrap().step.unwrap() > before);
    stop_run(handle);
}
