//! Past runs: listing with the right states and numbers, show / compare / export, the browser's
//! state, its screens, and a replay that matches the live screen.

use std::path::{Path, PathBuf};
use std::process::Command;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use kiln::experiment::Experiment;
use kiln::protocol::{Command as TrainerCommand, Event, EventKind, HyperParameter};
use kiln::runs::{self, RunState, read_events};
use kiln::train::{self, TrainOptions};
use kiln::tui::app::{App, Message, update};
use kiln::tui::browser::{self, Browser, BrowserAction, BrowserMode, Effect, Opened, Outcome};
use kiln::tui::theme::Theme;
use kiln::tui::{Ui, view};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use crate::common::{repo_path, scratch, training_lock, wait_for, write};
use crate::script::Script;

fn kiln(args: &[&str], runs: &Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .arg("--runs-dir")
        .arg(runs)
        .current_dir(repo_path(""))
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "kiln {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn digits(overrides: &[&str]) -> Experiment {
    let mut all = vec!["train.backend=cpu".to_string()];
    all.extend(overrides.iter().map(|s| s.to_string()));
    Experiment::load(&repo_path("experiments/digits.toml"), &all).unwrap()
}

/// Trains to the end and returns every event and the run directory.
fn train_run(runs: &Path, experiment: Experiment, change_and_stop: bool) -> (Vec<Event>, PathBuf) {
    let handle = train::spawn(TrainOptions {
        experiment,
        runs_dir: runs.to_path_buf(),
    })
    .unwrap();
    let mut events = Vec::new();
    if change_and_stop {
        // Dropout changes during epoch 2; the run stops after it.
        let is_epoch = |k: &EventKind| matches!(k, EventKind::Epoch(_));
        events = wait_for(&handle.events, "epoch 1", is_epoch);
        handle
            .commands
            .send(TrainerCommand::SetDropout { value: 0.25 })
            .unwrap();
        events.extend(wait_for(&handle.events, "epoch 2", is_epoch));
        handle.commands.send(TrainerCommand::Stop).unwrap();
    }
    events.extend(handle.events.iter());
    let path = handle.run.path.clone();
    handle.join();
    (events, path)
}

/// A runs folder with two real short trainings and hand-made broken or odd entries.
fn mixed_runs() -> (PathBuf, PathBuf, PathBuf) {
    let runs = scratch("store");
    let (_, finished) = train_run(&runs, digits(&["train.epochs=2"]), false);
    // Distinct start times keep the ids apart and ordered.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (_, stopped) = train_run(
        &runs,
        digits(&["train.epochs=3", "model.dropout=0.1"]),
        true,
    );

    // Killed mid-line: the log ends without a final event, and nobody trains it.
    let killed = runs.join("20200101-000000-killed");
    std::fs::create_dir_all(&killed).unwrap();
    let text = std::fs::read_to_string(finished.join("events.jsonl")).unwrap();
    let cut = text.find(r#""kind":"epoch""#).unwrap();
    let next_epoch_line = text[cut..].find('\n').unwrap() + cut + 1;
    let partial = &text[..next_epoch_line + 40];
    write(&killed.join("events.jsonl"), partial);
    write(&killed.join("kiln.pid"), "999999999\n");

    // Still being written by a live process (this one).
    let live = runs.join("20200101-000001-live");
    write(&live.join("events.jsonl"), &text[..next_epoch_line]);
    write(&live.join("kiln.pid"), &format!("{}\n", std::process::id()));

    // A failed run, a line from a newer kiln, an unreadable log and a stray folder.
    let failed = runs.join("20200101-000002-failed");
    write(
        &failed.join("events.jsonl"),
        &format!(
            "{}\n{{\"time\":\"2020-01-01T00:00:01.000Z\",\"kind\":\"hologram\"}}\n{}\n",
            text.lines().next().unwrap(),
            r#"{"time":"2020-01-01T00:00:02.000Z","kind":"failed","error":"out of memory"}"#
        ),
    );
    std::fs::create_dir_all(runs.join("20200101-000003-unreadable/events.jsonl")).unwrap();
    std::fs::create_dir_all(runs.join("notes")).unwrap();
    write(&runs.join("README.txt"), "not a run");
    (runs, finished, stopped)
}

fn row<'a>(table: &'a str, id_part: &str) -> Vec<&'a str> {
    table
        .lines()
        .find(|l| l.contains(id_part))
        .unwrap_or_else(|| panic!("no row for {id_part} in\n{table}"))
        .split_whitespace()
        .collect()
}

#[test]
fn runs_plain_lists_states_and_numbers() {
    let _guard = training_lock();
    let (runs, finished, stopped) = mixed_runs();
    let table = kiln(&["runs", "--plain"], &runs);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "run",
            "experiment",
            "dataset",
            "started",
            "state",
            "epochs",
            "best_val",
            "best_epoch",
            "final_gap",
            "tricks",
            "seconds",
            "disk_mb",
            "slurm",
            "note"
        ]
    );
    let finished_id = finished.file_name().unwrap().to_str().unwrap();
    let stopped_id = stopped.file_name().unwrap().to_str().unwrap();
    // Newest first.
    assert!(table.find(stopped_id).unwrap() < table.find(finished_id).unwrap());

    let events = read_events(&finished.join("events.jsonl")).unwrap().events;
    let best = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Epoch(m) => Some(m.validation_accuracy),
            _ => None,
        })
        .fold(0.0, f64::max);
    let f = row(&table, finished_id);
    assert_eq!(&f[1..3], ["digits", "digits"]);
    assert_eq!(&f[4..6], ["finished", "2/2"]);
    assert_eq!(f[6], format!("{best:.4}"));
    assert_eq!(f[9], "drop=0.00,14k");
    // Its disk use: the log and the checkpoints, measured.
    let bytes = kiln::runs::disk_bytes(&finished) as f64 / 1e6;
    assert!(bytes > 0.0);
    assert_eq!(f[11], format!("{bytes:.1}"));

    let s = row(&table, stopped_id);
    assert_eq!(s[4], "stopped");
    assert_eq!(s[5], "2/3", "{s:?}");
    assert!(
        s[9].starts_with("drop=0.25"),
        "the live dropout change is the final one: {s:?}"
    );

    assert_eq!(row(&table, "killed")[4], "interrupted");
    assert_eq!(row(&table, "killed")[5], "1/2");
    assert_eq!(row(&table, "-live")[4], "running");
    let failed = row(&table, "failed");
    assert_eq!(failed[4], "failed");
    assert_eq!(failed.last(), Some(&"1_unreadable_line(s)_skipped"));
    let unreadable = row(&table, "unreadable");
    assert!(unreadable.len() >= 11, "the row says why: {unreadable:?}");
    assert!(
        table.contains("(2 entries skipped: not run directories)"),
        "{table}"
    );
}

#[test]
fn show_compare_and_export() {
    let _guard = training_lock();
    let (runs, finished, stopped) = mixed_runs();
    let finished_id = finished.file_name().unwrap().to_str().unwrap();
    let stopped_id = stopped.file_name().unwrap().to_str().unwrap();

    let report = kiln(&["show", finished_id, "--plain"], &runs);
    assert!(
        report.contains(&format!("run         {finished_id}")),
        "{report}"
    );
    assert!(report.contains("state       finished"), "{report}");
    let epoch_rows: Vec<&str> = report
        .lines()
        .skip_while(|l| !l.starts_with("epoch  train_loss"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(epoch_rows.len(), 2, "{report}");

    let stopped_report = kiln(&["show", stopped_id, "--plain"], &runs);
    assert!(
        stopped_report.contains("change      e2 s")
            && stopped_report.contains("dropout 0.10->0.25"),
        "{stopped_report}"
    );

    // A unique prefix is enough; an ambiguous one is refused with the candidates.
    let prefix = &finished_id[..finished_id.len() - 3];
    assert!(kiln(&["show", prefix, "--plain"], &runs).contains(finished_id));
    let ambiguous = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["show", "2", "--plain", "--runs-dir"])
        .arg(&runs)
        .output()
        .unwrap();
    assert_eq!(ambiguous.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&ambiguous.stderr).contains("give more of the id"));
    // A write that fails is a failure (1), not bad input (2); the message names the file.
    let blocked = scratch("unwritable").join("a-file-not-a-folder");
    std::fs::write(&blocked, "").unwrap();
    let unwritable = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["export", finished_id, "--csv"])
        .arg(blocked.join("metrics.csv"))
        .arg("--runs-dir")
        .arg(&runs)
        .output()
        .unwrap();
    assert_eq!(unwritable.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unwritable.stderr).contains("metrics.csv"));

    let comparison = kiln(&["compare", finished_id, stopped_id, "--plain"], &runs);
    let keys: Vec<&str> = comparison
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert!(keys.contains(&"train.epochs"), "{comparison}");
    assert!(keys.contains(&"model.dropout"), "{comparison}");
    assert!(
        !keys.contains(&"train.seed"),
        "equal settings are left out: {comparison}"
    );
    assert!(
        row(&comparison, "train.epochs").ends_with(&["2", "3"]),
        "{comparison}"
    );

    let out = scratch("export");
    let csv = out.join("metrics.csv");
    let png = out.join("curves.png");
    kiln(
        &[
            "export",
            stopped_id,
            "--csv",
            csv.to_str().unwrap(),
            "--png",
            png.to_str().unwrap(),
        ],
        &runs,
    );
    let events = read_events(&stopped.join("events.jsonl")).unwrap().events;
    let epochs: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Epoch(m) => Some(m.clone()),
            _ => None,
        })
        .collect();
    let mut reader = csv::Reader::from_path(&csv).unwrap();
    let headers = reader.headers().unwrap().clone();
    assert_eq!(&headers[0], "epoch");
    assert_eq!(&headers[5], "validation_accuracy");
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), epochs.len());
    for (record, metrics) in records.iter().zip(&epochs) {
        let value: f64 = record[5].parse().unwrap();
        assert!((value - metrics.validation_accuracy).abs() < 1e-12);
        assert_eq!(record[8].parse::<f64>().unwrap(), metrics.dropout);
    }
    let image = image::open(&png).unwrap();
    assert_eq!((image.width(), image.height()), runs::PNG_SIZE);
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn act(b: &mut Browser, code: KeyCode) -> (Vec<Effect>, Outcome) {
    let action = kiln::tui::keys::browser_action_for(b, key(code)).expect("a mapped key");
    let (effects, outcome) = browser::update(b, action);
    for effect in effects.clone() {
        browser::execute(b, effect);
    }
    (effects, outcome)
}

/// Hand-made runs from scripted events: fixed ids, times and numbers for stable screens.
fn scripted_runs() -> PathBuf {
    let runs = scratch("scripted");
    let scripts = [
        (
            "20261120-090000-baseline",
            Script::new(6)
                .named("baseline")
                .started()
                .epochs(&[(0.8, 0.78), (0.95, 0.84), (0.99, 0.85), (1.0, 0.85)])
                .finished(kiln::protocol::Outcome::Completed, 4),
        ),
        (
            "20261121-100000-dropout",
            Script::new(6)
                .named("dropout")
                .started()
                .epochs(&[(0.75, 0.77), (0.85, 0.84)])
                .change(HyperParameter::Dropout, 0.0, 0.3)
                .epochs(&[(0.9, 0.87)])
                .finished(kiln::protocol::Outcome::Stopped, 3),
        ),
        (
            "20261122-110000-augment",
            Script::new(6)
                .named("augment")
                .started()
                .epochs(&[(0.7, 0.75)]),
        ),
    ];
    for (id, script) in scripts {
        let dir = runs.join(id);
        std::fs::create_dir_all(&dir).unwrap();
        let mut log = runs::EventLog::create(&dir.join("events.jsonl")).unwrap();
        for event in &script.events {
            log.append(event).unwrap();
        }
        let name = id.rsplit('-').next().unwrap();
        let dropout = if name == "dropout" { "0.3" } else { "0.0" };
        write(
            &dir.join("experiment.toml"),
            &format!("name = \"{name}\"\n[model]\ndropout = {dropout}\n[train]\nepochs = 6\n"),
        );
    }
    runs
}

fn render(ui: &Ui, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| view::draw(frame, ui, &Theme::default()))
        .unwrap();
    let buffer = terminal.backend().buffer();
    let mut out = String::new();
    for (i, cell) in buffer.content.iter().enumerate() {
        out.push_str(cell.symbol());
        if (i + 1) % width as usize == 0 {
            out.push('\n');
        }
    }
    out
}

fn browser_app(runs: &Path) -> Ui {
    let mut b = Browser::new(runs.to_path_buf());
    browser::execute(&mut b, Effect::Refresh);
    Ui::browsing(b)
}

#[test]
fn browser_sorts_filters_marks_and_opens() {
    let runs = scripted_runs();
    let mut app = browser_app(&runs);
    let b = app.browser.as_deref_mut().unwrap();
    let ids = |b: &Browser| b.visible().iter().map(|r| r.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(b)[0], "20261122-110000-augment", "newest first");
    assert_eq!(b.listing.runs[0].state, RunState::Interrupted);

    // s cycles to experiment (A→Z), S reverses.
    act(b, KeyCode::Char('s'));
    assert_eq!(ids(b)[0], "20261122-110000-augment");
    act(b, KeyCode::Char('S'));
    assert_eq!(ids(b)[0], "20261121-100000-dropout");
    act(b, KeyCode::Char('s'));
    act(b, KeyCode::Char('s'));
    assert_eq!(b.sort.title(), "best val");
    assert_eq!(
        ids(b)[0],
        "20261121-100000-dropout",
        "best validation accuracy first"
    );

    act(b, KeyCode::Char('/'));
    for c in "base".chars() {
        act(b, KeyCode::Char(c));
    }
    act(b, KeyCode::Enter);
    assert_eq!(ids(b), ["20261120-090000-baseline"]);
    act(b, KeyCode::Char('/'));
    act(b, KeyCode::Esc);
    assert_eq!(ids(b).len(), 3);

    let (effects, _) = act(b, KeyCode::Char('c'));
    assert!(effects.is_empty() && b.message.as_deref().unwrap().contains("mark two"));
    act(b, KeyCode::Char(' '));
    act(b, KeyCode::Char(' '));
    assert_eq!(b.marked.len(), 2);
    let (effects, _) = act(b, KeyCode::Char('c'));
    assert!(matches!(&effects[..], [Effect::Compare(paths)] if paths.len() == 2));
    let Some(Opened::Compare(compared)) = &b.opened else {
        panic!("{:?}", b.opened)
    };
    assert_eq!(compared.len(), 2);
    act(b, KeyCode::Esc);
    assert!(b.opened.is_none());

    b.selected = 0;
    let (effects, _) = act(b, KeyCode::Enter);
    assert!(matches!(&effects[..], [Effect::Open(_)]));
    let Some(Opened::Review(review)) = &b.opened else {
        panic!("{:?}", b.opened)
    };
    assert_eq!(review.run.epochs.len(), 3);
    act(b, KeyCode::Char('q'));
    let (_, outcome) = act(b, KeyCode::Char('q'));
    assert_eq!(outcome, Outcome::Close);
}

#[test]
fn delete_and_rename_ask_first() {
    let runs = scripted_runs();
    let mut app = browser_app(&runs);
    let b = app.browser.as_deref_mut().unwrap();
    b.selected = 2;
    let target = b.selected_run().unwrap().path.clone();
    act(b, KeyCode::Char('d'));
    assert!(matches!(b.mode, BrowserMode::ConfirmDelete(_)));
    act(b, KeyCode::Char('n'));
    assert!(target.exists(), "n keeps the run");
    act(b, KeyCode::Char('d'));
    let (effects, _) = act(b, KeyCode::Char('y'));
    assert_eq!(effects, vec![Effect::Delete(target.clone())]);
    assert!(!target.exists());
    assert_eq!(b.listing.runs.len(), 2);

    b.selected = 0;
    act(b, KeyCode::Char('R'));
    for _ in 0.."augment".len() {
        act(b, KeyCode::Backspace);
    }
    for c in "best one".chars() {
        act(b, KeyCode::Char(c));
    }
    act(b, KeyCode::Enter);
    assert!(
        runs.join("20261122-110000-best-one")
            .join("events.jsonl")
            .exists()
    );
    assert_eq!(browser::update(b, BrowserAction::Back).1, Outcome::Close);
}

#[test]
fn browser_review_and_comparison_screens() {
    let runs = scripted_runs();
    let mut app = browser_app(&runs);
    // The scratch folder's name changes every run; the snapshot shows a fixed stand-in.
    // Its length changes too, and with it the title's border: keep one dash of it.
    let listing = render(&app, 100, 20).replace(&runs.display().to_string(), "runs");
    let (title, rest) = listing.split_once('\n').unwrap();
    let mut title = title.to_string();
    while title.contains("──") {
        title = title.replace("──", "─");
    }
    let listing = format!("{title}\n{rest}");
    insta::assert_snapshot!("browser_100x20", listing);
    {
        let b = app.browser.as_deref_mut().unwrap();
        b.selected = 1;
        act(b, KeyCode::Enter);
    }
    let review = render(&app, 100, 30);
    assert!(review.contains("PAST RUN: STOPPED"), "{review}");
    insta::assert_snapshot!("review_100x30", review);
    {
        let b = app.browser.as_deref_mut().unwrap();
        act(b, KeyCode::Esc);
        b.selected = 0;
        act(b, KeyCode::Char(' '));
        act(b, KeyCode::Char(' '));
        act(b, KeyCode::Char(' '));
        act(b, KeyCode::Char('c'));
    }
    let comparison = render(&app, 120, 36);
    assert!(comparison.contains("model.dropout"), "{comparison}");
    insta::assert_snapshot!("compare_120x36", comparison);
}

#[test]
fn a_replayed_run_renders_as_the_live_screen_ended() {
    let _guard = training_lock();
    let runs = scratch("replay");
    let (events, run_dir) = train_run(&runs, digits(&["train.epochs=3"]), true);
    let mut live = App::live();
    for event in &events {
        update(&mut live, Message::Trainer(event.clone()));
    }
    let logged = read_events(&run_dir.join("events.jsonl")).unwrap().events;
    let mut replayed = App::live();
    for event in &logged {
        update(&mut replayed, Message::Trainer(event.clone()));
    }
    for (width, height) in [(80, 24), (120, 40)] {
        assert_eq!(
            render(&Ui::new(live.clone()), width, height),
            render(&Ui::new(replayed.clone()), width, height)
        );
    }
}

#[test]
fn the_browser_shows_the_selected_runs_disk_use_and_the_total() {
    let runs = scripted_runs();
    // A checkpoint of 2.5 MB in the newest run (selected first).
    let checkpoint = runs.join("20261122-110000-augment/checkpoints/epoch-0001-step-0000010");
    std::fs::create_dir_all(&checkpoint).unwrap();
    std::fs::write(checkpoint.join("model.bpk"), vec![0u8; 2_500_000]).unwrap();
    let app = browser_app(&runs);
    let b = app.browser.as_deref().unwrap();
    assert!(b.disk["20261122-110000-augment"] >= 2_500_000);
    let total: u64 = b.disk.values().sum();
    let screen = render(&app, 100, 20);
    let expected = format!(
        "disk: 2.5 MB selected · {:.1} MB all runs",
        total as f64 / 1e6
    );
    assert!(screen.contains(&expected), "{expected}\n{screen}");
}

/// A finished run of `epochs` epochs named `name` (the synthetic history: more epochs end with
/// a better validation accuracy).
fn finished_run(runs: &Path, name: &str, epochs: usize) -> String {
    let run = kiln::runs::RunDir::create(runs, name).unwrap();
    let mut log = kiln::runs::EventLog::create(&run.events_path()).unwrap();
    for event in kiln::bench::synthetic_run(epochs, 2) {
        log.append(&event).unwrap();
    }
    log.append(&kiln::here::event(
        Some(epochs),
        None,
        EventKind::Finished(kiln::protocol::RunFinished {
            outcome: kiln::protocol::Outcome::Completed,
            epochs_completed: epochs,
            best_epoch: Some(epochs),
            best_validation_accuracy: None,
            seconds: 1.0,
            restored_epoch: None,
        }),
    ))
    .unwrap();
    run.id
}

#[test]
fn the_browser_opens_the_selected_runs_sweep_as_a_sortable_table() {
    use kiln::sweep::{SweepRecord, SweepRun};
    use kiln::tui::browser::{self, BrowserAction, Opened};
    let runs = scratch("browser-sweep");
    let low = finished_run(&runs, "s-dropout0.3", 2);
    let high = finished_run(&runs, "s-dropout0.0", 6);
    let run = |value: &str, id: Option<&String>| SweepRun {
        name: format!("s-dropout{value}"),
        run_id: id.cloned(),
        settings: vec![("model.dropout".into(), value.into())],
        exit_code: id.map(|_| 0),
        cancelled: false,
    };
    SweepRecord {
        id: "20261201-120000-s".into(),
        experiment: "s.toml".into(),
        keys: vec!["model.dropout".into()],
        runs: vec![
            run("0.3", Some(&low)),
            run("0.0", Some(&high)),
            run("0.6", None),
        ],
        slurm: None,
        ladder_target: None,
    }
    .save(&runs)
    .unwrap();

    let mut b = browser::Browser::new(runs.clone());
    browser::execute(&mut b, browser::Effect::Refresh);
    let (effects, _) = browser::update(&mut b, BrowserAction::Sweep);
    assert_eq!(effects.len(), 1, "{effects:?}");
    for effect in effects {
        browser::execute(&mut b, effect);
    }
    let order = |b: &browser::Browser| -> Vec<String> {
        match &b.opened {
            Some(Opened::Sweep(table)) => {
                table.rows.iter().map(|r| r.settings[0].1.clone()).collect()
            }
            other => panic!("{other:?}"),
        }
    };
    // Best validation accuracy first, the run that never started last.
    assert_eq!(order(&b), ["0.0", "0.3", "0.6"]);
    let ui = Ui::browsing(b);
    let screen = render(&ui, 110, 20);
    assert!(
        screen.contains("sweep 20261201-120000-s · 3 runs"),
        "{screen}"
    );
    assert!(screen.contains("sorted by best val ↓"), "{screen}");
    let header = screen.lines().nth(1).unwrap();
    for column in ["model.dropout", "best val", "gap", "state", "run"] {
        assert!(header.contains(column), "{column}: {screen}");
    }
    assert!(screen.contains("pending"), "{screen}");
    assert!(screen.contains(&high), "{screen}");
    assert!(screen.contains("s/S sort · q back"), "{screen}");

    // s cycles the column: gap, then state, then the swept key (ascending); S reverses.
    let mut b = *ui.browser.unwrap();
    browser::update(&mut b, BrowserAction::Sort);
    browser::update(&mut b, BrowserAction::Sort);
    browser::update(&mut b, BrowserAction::Sort);
    assert_eq!(order(&b), ["0.0", "0.3", "0.6"]);
    browser::update(&mut b, BrowserAction::ReverseSort);
    assert_eq!(order(&b), ["0.6", "0.3", "0.0"]);
    browser::update(&mut b, BrowserAction::Back);
    assert!(b.opened.is_none());
}
