//! The notify command in a real run: it runs when the run ends with the run's id, status and
//! best accuracy in its environment; one that fails is logged after the end and shown, and the
//! run still finishes; `--notify` sets it from the command line and the run keeps it.

use kiln::experiment::Experiment;
use kiln::protocol::{Event, EventKind, Outcome, epoch_history};
use kiln::runs::read_events;
use kiln::train::{self, TrainOptions};

use crate::common::{only_run, repo_path, scratch, train_digits, training_lock};

fn digits_with(command: &str) -> Experiment {
    let overrides = vec![
        "train.backend=\"cpu\"".to_string(),
        "train.epochs=2".into(),
        "data.train_images=200".into(),
        kiln::experiment::string_override("notify.command", command),
    ];
    Experiment::load(&repo_path("experiments/digits.toml"), &overrides).unwrap()
}

fn run(experiment: Experiment) -> (Vec<Event>, std::path::PathBuf, String) {
    let handle = train::spawn(TrainOptions {
        experiment,
        runs_dir: scratch("notify-runs"),
    })
    .unwrap();
    let id = handle.run.id.clone();
    let path = handle.run.path.clone();
    let events: Vec<Event> = handle.events.iter().collect();
    handle.join();
    (events, path, id)
}

#[test]
fn the_notify_command_runs_at_the_end_with_the_runs_environment() {
    let _guard = training_lock();
    let out = scratch("notify-env").join("seen.txt");
    let command = format!(
        "echo \"$KILN_EVENT|$KILN_STATUS|$KILN_RUN_ID|$KILN_BEST_ACCURACY|$KILN_BEST_EPOCH|$KILN_RUN_DIR\" >> '{}'",
        out.display()
    );
    let (events, path, id) = run(digits_with(&command));
    let history = epoch_history(&events);
    let best = kiln::diagnose::best_epoch(&history).unwrap();
    let seen = std::fs::read_to_string(&out).expect("the command ran");
    let last = seen.lines().last().unwrap();
    assert_eq!(
        last,
        format!(
            "finished|finished|{id}|{:.4}|{best}|{}",
            history[best - 1].validation_accuracy,
            path.display()
        )
    );
    // Nothing failed, so nothing was said about it.
    assert!(
        !events.iter().any(
            |e| matches!(&e.kind, EventKind::Warning { message } if message.contains("notify"))
        ),
        "{events:#?}"
    );
    assert!(path.join("notify.log").is_file());
}

#[test]
fn a_failing_notify_command_is_reported_and_the_run_still_finishes() {
    let _guard = training_lock();
    let (events, path, _) = run(digits_with("echo cannot reach the chat server >&2; exit 7"));
    let finished = events
        .iter()
        .position(
            |e| matches!(&e.kind, EventKind::Finished(end) if end.outcome == Outcome::Completed),
        )
        .expect("the run finished");
    let warning = events[finished..]
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::Warning { message } => Some(message.clone()),
            _ => None,
        })
        .expect("the failure is reported after the end");
    assert!(
        warning
            .contains("the notify command failed (exit status: 7): cannot reach the chat server"),
        "{warning}"
    );
    // The log holds it too, and the run reads as finished.
    let logged = read_events(&path.join("events.jsonl")).unwrap().events;
    assert_eq!(logged.len(), events.len());
    assert_eq!(
        kiln::runs::summarise("run", &logged).state,
        kiln::runs::RunState::Finished
    );
}

#[test]
fn notify_on_the_command_line_runs_and_stays_with_the_run() {
    let _guard = training_lock();
    let runs = scratch("notify-cli");
    let out = scratch("notify-cli-out").join("status.txt");
    let output = train_digits("--headless", 1, &runs)
        .args([
            "--notify",
            &format!(
                "echo \"$KILN_STATUS $KILN_EXPERIMENT\" > '{}'",
                out.display()
            ),
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "finished digits\n");
    let run = only_run(&runs);
    let kept = std::fs::read_to_string(run.join("experiment.toml")).unwrap();
    assert!(
        kept.contains("[notify]") && kept.contains("KILN_STATUS"),
        "{kept}"
    );

    // A failing one: the run exits 0 and its last line says why the command failed.
    let runs = scratch("notify-cli-fails");
    let output = train_digits("--headless", 1, &runs)
        .args(["--notify", "exit 4"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout
            .lines()
            .last()
            .is_some_and(|l| l.contains("the notify command failed (exit status: 4)")),
        "{stdout}"
    );
}
