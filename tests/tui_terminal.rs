//! End to end: the real `kiln` binary in a real pseudo-terminal (tmux), driven with keys.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use kiln::protocol::{EventKind, HyperParameter};
use kiln::runs::read_events;

use crate::common::{only_run, repo_path, scratch, training_lock, wait_until_finished};

/// A tmux server and session of our own, killed when the test ends however it ends.
struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    fn start(name: &str, width: u16, height: u16, directory: &Path, shell_command: &str) -> Tmux {
        let id = std::process::id();
        let tmux = Tmux {
            socket: format!("kiln-test-{id}-{name}"),
            session: format!("kiln-{id}-{name}"),
        };
        let output = tmux.run(&[
            "new-session",
            "-d",
            "-s",
            &tmux.session,
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            "-c",
            &directory.display().to_string(),
            shell_command,
        ]);
        assert!(
            output.status.success(),
            "tmux new-session failed: {output:?}"
        );
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .env_remove("TMUX")
            .output()
            .expect("tmux is installed (.ci/run installs it)")
    }

    fn keys(&self, keys: &str) {
        self.run(&["send-keys", "-t", &self.session, keys]);
    }

    fn screen(&self) -> String {
        let output = self.run(&["capture-pane", "-p", "-t", &self.session]);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Sends a signal to the program the pane's shell is running.
    fn signal_child(&self, signal: &str) {
        let shell = self.flag("#{pane_pid}");
        let status = Command::new("pkill")
            .args([&format!("-{signal}"), "-P", &shell])
            .status()
            .expect("pkill");
        assert!(status.success(), "no child of pane shell {shell} to signal");
    }

    fn flag(&self, format: &str) -> String {
        let output = self.run(&["display-message", "-p", "-t", &self.session, format]);
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// Waits until the screen shows `text`, returning the screen.
    fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "no {text:?} on screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// A shell command that runs kiln on the digits for many epochs, then reports whether the
/// terminal modes came back as they were and kiln's exit code.
fn kiln_in_shell(runs: &Path) -> String {
    let binary = env!("CARGO_BIN_EXE_kiln");
    format!(
        "before=$(stty -g); \
         {binary} train experiments/digits.toml --backend cpu --runs-dir {runs} \
         --set train.epochs=5000; code=$?; \
         [ \"$(stty -g)\" = \"$before\" ] && echo TTY-RESTORED; echo KILN-EXIT=$code; sleep 600",
        runs = runs.display()
    )
}

#[test]
fn the_run_outlives_its_terminal() {
    let _guard = training_lock();
    let runs = scratch("tmux-hangup");
    let binary = env!("CARGO_BIN_EXE_kiln");
    let command = format!(
        "{binary} train experiments/digits.toml --backend cpu --runs-dir {} --set train.epochs=150",
        runs.display()
    );
    let tmux = Tmux::start("hangup", 80, 24, &repo_path(""), &command);
    tmux.wait_for("RUNNING");
    // Closing the terminal hangs up on kiln, as a dropped SSH session does.
    drop(tmux);
    let run_dir = only_run(&runs);
    let end = wait_until_finished(&run_dir);
    assert_eq!(end.outcome, kiln::protocol::Outcome::Completed);
    assert_eq!(
        end.epochs_completed, 150,
        "every epoch ran after the hang-up"
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    // The process ends once the run has: its pid file goes away.
    while run_dir.join("kiln.pid").exists() {
        assert!(Instant::now() < deadline, "kiln still holds the run");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sigterm_stops_the_run_and_restores_the_terminal() {
    let _guard = training_lock();
    let runs = scratch("tmux-term");
    let tmux = Tmux::start("term", 80, 24, &repo_path(""), &kiln_in_shell(&runs));
    tmux.wait_for("RUNNING");
    tmux.signal_child("TERM");
    let screen = tmux.wait_for("KILN-EXIT=");
    assert!(screen.contains("KILN-EXIT=0"), "{screen}");
    assert!(screen.contains("TTY-RESTORED"), "{screen}");
    assert!(screen.contains("stopped after"), "{screen}");
    assert_eq!(tmux.flag("#{alternate_on}"), "0");
    assert_eq!(tmux.flag("#{cursor_flag}"), "1");
}

#[test]
fn live_screen_pause_dropout_resume_stop_quit() {
    let _guard = training_lock();
    let runs = scratch("tmux-runs");
    let tmux = Tmux::start("keys", 100, 30, &repo_path(""), &kiln_in_shell(&runs));

    let screen = tmux.wait_for("RUNNING");
    assert!(screen.contains("kiln · digits · digits"), "{screen}");
    assert_eq!(
        tmux.flag("#{alternate_on}"),
        "1",
        "the live screen uses the alternate screen"
    );
    assert_eq!(tmux.flag("#{window_bell_flag}"), "0", "no bell yet");

    tmux.keys("Space");
    let screen = tmux.wait_for("PAUSED");
    assert!(screen.contains("paused at step"), "{screen}");

    tmux.keys("D");
    let screen = tmux.wait_for("dropout 0.00 → 0.05 applied at step");
    assert!(screen.contains("drop 0.05"), "{screen}");

    tmux.keys("Space");
    tmux.wait_for("RUNNING");
    tmux.wait_for("resumed at step");

    // The run browser opens over the live screen and lists this run as running; the run
    // keeps training meanwhile, and Esc comes back to it.
    tmux.keys("r");
    let screen = tmux.wait_for("sorted by started");
    assert!(screen.contains("running"), "{screen}");
    tmux.keys("Escape");
    tmux.wait_for("RUNNING");

    // The image view: augmented draws, then the newest checkpoint's mistakes, drawn in half
    // blocks (inside tmux without passthrough), while the run keeps training.
    tmux.keys("a");
    let screen = tmux.wait_for("0 original");
    assert!(
        screen.contains("augmented samples") && screen.contains('▀'),
        "{screen}"
    );
    tmux.keys("m");
    let screen = tmux.wait_for("mistakes after epoch");
    assert!(
        screen.contains(" → ") && screen.contains("RUNNING"),
        "{screen}"
    );
    tmux.keys("g");
    tmux.wait_for("epochs");

    tmux.keys("s");
    let screen = tmux.wait_for("STOPPED");
    assert!(screen.contains("run stopped"), "{screen}");
    // The end rang the terminal's bell, through tmux (which flags the window).
    let rang = (0..50).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        tmux.flag("#{window_bell_flag}") == "1"
    });
    assert!(rang, "the stopped run rang no bell");

    tmux.keys("q");
    let screen = tmux.wait_for("KILN-EXIT=");
    assert!(screen.contains("KILN-EXIT=0"), "{screen}");
    assert!(
        screen.contains("TTY-RESTORED"),
        "terminal modes not restored:\n{screen}"
    );
    assert!(
        screen.contains("stopped after"),
        "summary left on the screen:\n{screen}"
    );
    assert_eq!(tmux.flag("#{alternate_on}"), "0", "alternate screen left");
    assert_eq!(tmux.flag("#{cursor_flag}"), "1", "cursor visible again");

    // The log has the dropout change at a step, between batches.
    let run_dir = only_run(&runs);
    let log = read_events(&run_dir.join("events.jsonl")).unwrap();
    let change = log
        .events
        .iter()
        .position(|e| {
            matches!(e.kind, EventKind::HyperParameterChanged {
                parameter: HyperParameter::Dropout, to, ..
            } if (to - 0.05).abs() < 1e-12)
        })
        .expect("dropout change logged");
    let step = log.events[change].step.unwrap();
    assert!(step > 0);
    let next_batch = log.events[change..]
        .iter()
        .find(|e| matches!(e.kind, EventKind::Batch(_)))
        .expect("training continued after the change");
    assert_eq!(next_batch.step, Some(step + 1));
}

#[test]
fn attach_from_a_second_terminal_shows_the_history_and_steers_the_run() {
    let _guard = training_lock();
    let runs = scratch("tmux-attach");
    let binary = env!("CARGO_BIN_EXE_kiln");
    let train = format!(
        "{binary} train experiments/digits.toml --backend cpu --runs-dir {} --set train.epochs=3000",
        runs.display()
    );
    let first = Tmux::start("attach-a", 100, 30, &repo_path(""), &train);
    first.wait_for("RUNNING");
    // The first terminal goes away (a dropped SSH session); the run trains on.
    drop(first);
    let run_dir = only_run(&runs);
    let log = run_dir.join("events.jsonl");
    let deadline = Instant::now() + Duration::from_secs(120);
    while read_events(&log)
        .unwrap()
        .events
        .iter()
        .all(|e| e.epoch.unwrap_or(0) < 2)
    {
        assert!(Instant::now() < deadline, "no second epoch");
        std::thread::sleep(Duration::from_millis(50));
    }

    let attach = format!(
        "{binary} attach --runs-dir {}; echo VIEWER-EXIT=$?; sleep 600",
        runs.display()
    );
    let viewer = Tmux::start("attach-b", 100, 30, &repo_path(""), &attach);
    viewer.wait_for("RUNNING");
    // A capture can land mid-frame under load: wait for the footer too (it still must appear).
    let screen = viewer.wait_for("q detach");
    // The header comes from the run's first event: the history was read.
    assert!(screen.contains("kiln · digits · digits"), "{screen}");
    assert!(screen.contains("q detach"), "{screen}");

    viewer.keys("Space");
    viewer.wait_for("PAUSED");
    viewer.keys("D");
    viewer.wait_for("applied at step");
    let logged = read_events(&log).unwrap().events;
    assert!(
        logged
            .iter()
            .any(|e| matches!(e.kind, EventKind::Paused { .. }))
    );
    assert!(logged.iter().any(|e| matches!(
        e.kind,
        EventKind::HyperParameterChanged {
            parameter: HyperParameter::Dropout,
            ..
        }
    )));

    // Quitting the viewer leaves the run alive (still paused); stopping it is explicit.
    viewer.keys("q");
    let screen = viewer.wait_for("VIEWER-EXIT=");
    assert!(screen.contains("VIEWER-EXIT=0"), "{screen}");
    assert!(screen.contains("detached from"), "{screen}");
    assert_eq!(
        kiln::control::probe(&run_dir),
        kiln::control::Endpoint::Alive
    );
    let control = kiln::control::client::attach(&run_dir).unwrap();
    control
        .commands
        .send(kiln::protocol::Command::Stop)
        .unwrap();
    let end = wait_until_finished(&run_dir);
    assert_eq!(end.outcome, kiln::protocol::Outcome::Stopped);
}
