//! Notifications: which events notify and in what words, the notify command's environment,
//! failures and time limit, and the terminal's bell and desktop sequences (in and out of tmux).

use std::time::{Duration, Instant};

use kiln_core::notify::command::{LOG_FILE, Runner};
use kiln_core::notify::{Desktop, NoticeKind, NotifyConfig, Watcher, terminal};
use kiln_core::protocol::{Event, EventKind, Finding, Outcome, Problem, RunFinished, Severity};

use crate::common::scratch;
use crate::diagnosis::history;

fn at(epoch: Option<usize>, kind: EventKind) -> Event {
    kiln_core::here::event(epoch, None, kind)
}

fn diagnosis(problems: &[Problem]) -> Event {
    at(
        Some(3),
        EventKind::Diagnosis {
            findings: problems
                .iter()
                .map(|&problem| Finding {
                    problem,
                    severity: Severity::Warning,
                    since_epoch: 1,
                    evidence: format!("{} evidence", problem.title()),
                    remedies: Vec::new(),
                })
                .collect(),
        },
    )
}

fn epochs(accuracies: &[f64]) -> Vec<Event> {
    let rows: Vec<(f64, f64, f64, f64)> = accuracies.iter().map(|&a| (a, a, 0.5, 0.5)).collect();
    history(&rows)
        .into_iter()
        .enumerate()
        .map(|(i, m)| at(Some(i + 1), EventKind::Epoch(m)))
        .collect()
}

#[test]
fn a_new_problem_the_end_and_a_failure_notify_and_nothing_else_does() {
    let config = NotifyConfig::default();
    let mut watcher = Watcher::new("20261205-digits-1", "digits", &config);
    for event in epochs(&[0.5, 0.8, 0.7]) {
        assert_eq!(watcher.observe(&event), None);
    }
    let raised = watcher
        .observe(&diagnosis(&[Problem::Overfitting]))
        .expect("a new problem notifies");
    assert_eq!(raised.kind, NoticeKind::Problem);
    assert_eq!(raised.title, "kiln: digits: overfitting");
    assert_eq!(raised.body, "20261205-digits-1: overfitting evidence");
    // Still there, with another beside it: only the new one.
    let more = watcher
        .observe(&diagnosis(&[Problem::Overfitting, Problem::WeakClass]))
        .unwrap();
    assert_eq!(more.problems, vec!["weak class".to_string()]);
    assert_eq!(
        watcher.observe(&diagnosis(&[Problem::Overfitting, Problem::WeakClass])),
        None
    );
    // Cleared, then back: notified again.
    assert_eq!(watcher.observe(&diagnosis(&[])), None);
    assert!(
        watcher
            .observe(&diagnosis(&[Problem::Overfitting]))
            .is_some()
    );

    let end = watcher
        .observe(&at(
            Some(3),
            EventKind::Finished(RunFinished {
                outcome: Outcome::EarlyStopped,
                epochs_completed: 3,
                best_epoch: Some(2),
                best_validation_accuracy: Some(0.8),
                seconds: 12.0,
                restored_epoch: Some(2),
            }),
        ))
        .unwrap();
    assert_eq!(end.kind, NoticeKind::Finished);
    assert_eq!(end.status, "stopped_early");
    assert_eq!(end.title, "kiln: digits stopped early");
    assert_eq!(
        end.body,
        "20261205-digits-1: 3 epoch(s), best val acc 80.0% (epoch 2)"
    );
    let failed = watcher
        .observe(&at(
            None,
            EventKind::Failed {
                error: "out of memory".into(),
            },
        ))
        .unwrap();
    assert_eq!((failed.kind, failed.status), (NoticeKind::Failed, "failed"));

    // With problems off, only the end.
    let quiet = NotifyConfig {
        problems: false,
        ..NotifyConfig::default()
    };
    let mut watcher = Watcher::new("r", "e", &quiet);
    assert_eq!(watcher.observe(&diagnosis(&[Problem::Overfitting])), None);
    // Primed on a log, a watcher does not notify what the log already said.
    let log = [diagnosis(&[Problem::Underfitting])];
    let mut primed = Watcher::primed(&config, &log);
    assert_eq!(primed.observe(&diagnosis(&[Problem::Underfitting])), None);
}

#[test]
fn the_environment_names_the_run_its_status_and_best_accuracy() {
    let mut watcher = Watcher::new("run-7", "baseline", &NotifyConfig::default());
    for event in epochs(&[0.61, 0.9712, 0.95]) {
        watcher.observe(&event);
    }
    let failed = watcher
        .observe(&at(
            None,
            EventKind::Failed {
                error: "disk full".into(),
            },
        ))
        .unwrap();
    let env = failed.environment(std::path::Path::new("/runs/run-7"));
    let get = |key: &str| env.iter().find(|(k, _)| *k == key).unwrap().1.clone();
    assert_eq!(get("KILN_EVENT"), "failed");
    assert_eq!(get("KILN_STATUS"), "failed");
    assert_eq!(get("KILN_RUN_ID"), "run-7");
    assert_eq!(get("KILN_RUN_DIR"), "/runs/run-7");
    assert_eq!(get("KILN_EXPERIMENT"), "baseline");
    assert_eq!(get("KILN_BEST_ACCURACY"), "0.9712");
    assert_eq!(get("KILN_BEST_EPOCH"), "2");
    assert_eq!(
        get("KILN_MESSAGE"),
        "kiln: baseline failed: run-7: disk full"
    );
}

#[test]
fn the_command_runs_with_that_environment_and_its_failures_are_reported() {
    let dir = scratch("notify-command");
    let out = dir.join("seen.txt");
    let command = format!(
        "echo \"$KILN_EVENT $KILN_RUN_ID $KILN_BEST_ACCURACY\" >> {}; echo to-the-log",
        out.display()
    );
    let runner = Runner::start(command, dir.clone(), Duration::from_secs(10)).unwrap();
    runner.send(vec![
        ("KILN_EVENT", "finished".into()),
        ("KILN_RUN_ID", "r1".into()),
        ("KILN_BEST_ACCURACY", "0.9000".into()),
    ]);
    assert!(runner.finish().is_empty());
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "finished r1 0.9000\n"
    );
    let log = std::fs::read_to_string(dir.join(LOG_FILE)).unwrap();
    assert!(
        log.contains("finished: echo") && log.contains("to-the-log"),
        "{log}"
    );

    let failing = Runner::start(
        "echo no route to ntfy.sh >&2; exit 3".into(),
        dir.clone(),
        Duration::from_secs(10),
    )
    .unwrap();
    failing.send(vec![("KILN_EVENT", "problem".into())]);
    failing.send(vec![("KILN_EVENT", "finished".into())]);
    let failures = failing.finish();
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(
        failures[0].contains("exit status: 3") && failures[0].contains(": no route to ntfy.sh;"),
        "{}",
        failures[0]
    );

    let hanging = Runner::start("sleep 20".into(), dir, Duration::from_millis(300)).unwrap();
    let began = Instant::now();
    hanging.send(Vec::new());
    let failures = hanging.finish();
    assert!(began.elapsed() < Duration::from_secs(10));
    assert!(
        failures[0].contains("ran over 0 s and was stopped"),
        "{failures:?}"
    );
}

#[test]
fn the_terminal_gets_a_bell_and_a_desktop_notification_passed_through_tmux() {
    let mut watcher = Watcher::new("r2", "digits", &NotifyConfig::default());
    let notice = watcher
        .observe(&at(
            None,
            EventKind::Failed {
                error: "bad;\nthing\x1b[31m".into(),
            },
        ))
        .unwrap();
    let config = NotifyConfig::default();
    assert_eq!(
        terminal::sequence(&notice, &config, false),
        "\x07\x1b]9;kiln: digits failed: r2: bad; thing [31m\x07"
    );
    let both = NotifyConfig {
        desktop: Desktop::Both,
        bell: false,
        ..NotifyConfig::default()
    };
    assert_eq!(
        terminal::sequence(&notice, &both, false),
        "\x1b]9;kiln: digits failed: r2: bad; thing [31m\x07\
         \x1b]777;notify;kiln: digits failed;r2: bad, thing [31m\x07"
    );
    // In tmux: each escape doubled inside the passthrough wrapper; the bell as it is.
    assert_eq!(
        terminal::sequence(&notice, &config, true),
        "\x07\x1bPtmux;\x1b\x1b]9;kiln: digits failed: r2: bad; thing [31m\x07\x1b\\"
    );
    let off = NotifyConfig {
        desktop: Desktop::Off,
        bell: false,
        ..NotifyConfig::default()
    };
    assert_eq!(terminal::sequence(&notice, &off, true), "");
}
