//! Shared test helpers: scratch folders, the training lock and event waiting.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crossbeam_channel::Receiver;
use kiln::protocol::{Event, EventKind};

/// The CPU backend's random generator is process-wide, so runs that must be reproducible may not
/// overlap with other training; two cores are also better spent on one run at a time.
static TRAINING: Mutex<()> = Mutex::new(());

pub fn training_lock() -> MutexGuard<'static, ()> {
    TRAINING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `kiln train experiments/digits.toml MODE --backend cpu` for `epochs` epochs into `runs`,
/// from the repository root: the child-process run most end-to-end tests start from.
pub fn train_digits(mode: &str, epochs: usize, runs: &Path) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"));
    command
        .args(["train", "experiments/digits.toml", mode, "--backend", "cpu"])
        .args(["--set", &format!("train.epochs={epochs}"), "--runs-dir"])
        .arg(runs)
        .current_dir(repo_path(""));
    command
}

/// A fresh, empty scratch folder unique to this process and call.
pub fn scratch(name: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("kiln-test-{}-{name}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Receives events until one matches, returning everything seen up to and including it.
pub fn wait_for(
    events: &Receiver<Event>,
    what: &str,
    matches: impl Fn(&EventKind) -> bool,
) -> Vec<Event> {
    let mut seen = Vec::new();
    loop {
        let event = events
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("timed out waiting for {what}; saw {seen:#?}"));
        let done = matches(&event.kind);
        if let EventKind::Failed { error } = &event.kind {
            panic!("run failed while waiting for {what}: {error}");
        }
        seen.push(event);
        if done {
            return seen;
        }
    }
}

/// Writes a file, creating its folder.
pub fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("folder");
    std::fs::write(path, text).expect("write");
}

/// The only run directory in a runs folder.
pub fn only_run(runs: &Path) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(runs)
        .expect("runs folder")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(
        dirs.len(),
        1,
        "expected one run in {}: {dirs:?}",
        runs.display()
    );
    dirs.remove(0)
}

/// Polls a run's log (written by another process) until it ends with a `finished` event.
pub fn wait_until_finished(run_dir: &Path) -> kiln::protocol::RunFinished {
    let log = run_dir.join("events.jsonl");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let events = kiln::runs::read_events(&log)
            .map(|c| c.events)
            .unwrap_or_default();
        if let Some(EventKind::Finished(end)) = events.last().map(|e| &e.kind) {
            return end.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run did not finish: {:?}",
            events.last()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The only run directory in a runs folder, once a process started elsewhere has made it.
pub fn only_run_eventually(runs: &Path) -> PathBuf {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if std::fs::read_dir(runs).is_ok_and(|mut d| d.next().is_some()) {
            return only_run(runs);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no run appeared in {}",
            runs.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stops a run trained in this process and checks it ends as stopped.
pub fn stop_run(handle: kiln::train::TrainerHandle) {
    handle
        .commands
        .send(kiln::protocol::Command::Stop)
        .expect("the trainer takes commands");
    let seen = wait_for(&handle.events, "the end", |k| {
        matches!(k, EventKind::Finished(_))
    });
    match &seen.last().expect("an event").kind {
        EventKind::Finished(end) => assert_eq!(end.outcome, kiln::protocol::Outcome::Stopped),
        other => panic!("{other:?}"),
    }
    handle.join();
}

/// `kiln ARGS… --runs-dir RUNS` from the repository root, run to its end; the test fails unless
/// it succeeds.
pub fn kiln_ok<S: AsRef<std::ffi::OsStr>>(args: &[S], runs: &Path) -> std::process::Output {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .arg("--runs-dir")
        .arg(runs)
        .current_dir(repo_path(""))
        .output()
        .expect("kiln runs");
    assert!(
        output.status.success(),
        "kiln {:?}: {output:?}",
        args.iter().map(|a| a.as_ref()).collect::<Vec<_>>()
    );
    output
}

/// The Python that can import `module`: `KILN_TEST_PYTHON` (set by `.ci/run`), else `python3`.
pub fn python_with(module: &str) -> Option<String> {
    let python = std::env::var("KILN_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let found = std::process::Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    found.then_some(python)
}

/// The bundled digits' shape: 1×8×8 images, 10 classes.
pub fn digits_shape() -> kiln::model::ModelShape {
    kiln::model::ModelShape {
        channels: 1,
        height: 8,
        width: 8,
        classes: 10,
    }
}
