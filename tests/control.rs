//! The control socket: permissions, history then live events, commands from several viewers,
//! bad input, stale sockets, and refusing a second trainer.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::Command as Process;
use std::time::Duration;

use kiln::control::{self, Endpoint, SOCKET_FILE};
use kiln::experiment::Experiment;
use kiln::protocol::{Command, EventKind, HyperParameter};
use kiln::runs::{self, RunDir, RunState};
use kiln::train::{self, TrainOptions, TrainerHandle};

use crate::common::{repo_path, scratch, stop_run, training_lock, wait_for};

/// A digits run long enough to be watched and steered; stopped by the test.
fn long_run(runs_dir: &std::path::Path) -> TrainerHandle {
    let experiment = Experiment::load(
        &repo_path("experiments/digits.toml"),
        &["train.backend=cpu".into(), "train.epochs=100000".into()],
    )
    .unwrap();
    let handle = train::spawn(TrainOptions {
        experiment,
        runs_dir: runs_dir.to_path_buf(),
    })
    .unwrap();
    wait_for(&handle.events, "first batch", |k| {
        matches!(k, EventKind::Batch(_))
    });
    handle
}

#[test]
fn a_viewer_gets_the_history_then_live_events_and_steers_the_run() {
    let _guard = training_lock();
    let handle = long_run(&scratch("control"));
    let socket = handle.run.path.join(SOCKET_FILE);
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "owner-only socket, got {:o}",
        mode & 0o777
    );
    assert_eq!(control::probe(&handle.run.path), Endpoint::Alive);

    let viewer = control::client::attach(&handle.run.path).unwrap();
    assert_eq!(viewer.run_id, handle.run.id);
    assert_eq!(viewer.pid, std::process::id());
    assert!(
        matches!(viewer.history[0].kind, EventKind::RunStarted(_)),
        "the history starts at the beginning: {:?}",
        viewer.history[0]
    );
    assert!(
        viewer
            .history
            .iter()
            .any(|e| matches!(e.kind, EventKind::Batch(_))),
        "{:#?}",
        viewer.history
    );

    viewer
        .commands
        .send(Command::SetDropout { value: 0.35 })
        .unwrap();
    viewer.commands.send(Command::Pause).unwrap();
    let seen = wait_for(&viewer.events, "paused", |k| {
        matches!(k, EventKind::Paused { .. })
    });
    assert!(seen.iter().any(|e| matches!(
        e.kind,
        EventKind::HyperParameterChanged { parameter: HyperParameter::Dropout, to, .. } if to == 0.35
    )));
    // The in-process front end sees the same events, in the same order.
    wait_for(&handle.events, "paused in process", |k| {
        matches!(k, EventKind::Paused { .. })
    });
    // History plus live stream hold each logged event once: nothing lost, nothing repeated.
    viewer.commands.send(Command::Resume).unwrap();
    wait_for(&viewer.events, "resumed", |k| {
        matches!(k, EventKind::Resumed)
    });
    drop(viewer);
    let log = runs::read_events(&handle.run.events_path()).unwrap().events;
    let again = control::client::attach(&handle.run.path).unwrap();
    assert!(again.history.len() >= log.len());
    assert_eq!(&again.history[..log.len()], &log[..]);
    drop(again);

    stop_run(handle);
}

#[test]
fn two_viewers_see_each_others_commands() {
    let _guard = training_lock();
    let handle = long_run(&scratch("control"));
    let first = control::client::attach(&handle.run.path).unwrap();
    let second = control::client::attach(&handle.run.path).unwrap();

    first
        .commands
        .send(Command::SetLearningRate { value: 0.0005 })
        .unwrap();
    wait_for(
        &second.events,
        "the first viewer's change",
        |k| matches!(k, EventKind::HyperParameterChanged { parameter: HyperParameter::LearningRate, to, .. } if *to == 0.0005),
    );
    second.commands.send(Command::Pause).unwrap();
    wait_for(&first.events, "the second viewer's pause", |k| {
        matches!(k, EventKind::Paused { .. })
    });
    // Leaving never stops the run: both go, it is still paused and alive.
    drop(first);
    drop(second);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(control::probe(&handle.run.path), Endpoint::Alive);
    stop_run(handle);
}

/// Reads reply lines until one is a reply (events stream past too).
fn next_reply(reader: &mut impl BufRead) -> serde_json::Value {
    loop {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "connection closed"
        );
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        if value.get("reply").is_some() {
            return value;
        }
    }
}

#[test]
fn bad_lines_get_an_error_reply_and_change_nothing() {
    let _guard = training_lock();
    let handle = long_run(&scratch("control"));
    let mut stream = UnixStream::connect(handle.run.path.join(SOCKET_FILE)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    assert_eq!(next_reply(&mut reader)["reply"], "hello");

    let mut oversized = vec![b'{'; 100_000];
    oversized.push(b'\n');
    let bad: Vec<Vec<u8>> = vec![
        b"hello there\n".to_vec(),
        b"{\"command\":\"fly\"}\n".to_vec(),
        b"{\"command\":\"set_dropout\"}\n".to_vec(),
        b"{\"command\":\"set_dropout\",\"value\":\"high\"}\n".to_vec(),
        // Well-formed but out of range: refused at the socket, as the prompt refuses them.
        b"{\"command\":\"set_dropout\",\"value\":2}\n".to_vec(),
        b"{\"command\":\"set_dropout\",\"value\":-0.1}\n".to_vec(),
        b"{\"command\":\"set_learning_rate\",\"value\":0}\n".to_vec(),
        b"{\"command\":\"set_backbone_frozen\",\"frozen\":\"yes\"}\n".to_vec(),
        vec![0xff, 0xfe, b'\n'],
        oversized,
    ];
    for line in &bad {
        stream.write_all(line).unwrap();
        let reply = next_reply(&mut reader);
        assert_eq!(
            reply["reply"],
            "error",
            "for {:?}",
            String::from_utf8_lossy(&line[..line.len().min(40)])
        );
        assert!(!reply["message"].as_str().unwrap().is_empty());
    }
    // The run kept going and still takes good commands on the same connection.
    stream.write_all(b"{\"command\":\"pause\"}\n").unwrap();
    assert_eq!(next_reply(&mut reader)["reply"], "accepted");
    let seen = wait_for(&handle.events, "paused", |k| {
        matches!(k, EventKind::Paused { .. })
    });
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e.kind, EventKind::HyperParameterChanged { .. })),
        "no bad line changed a setting"
    );
    // Well-formed, so the socket takes it; the trainer says why this run cannot do it.
    stream
        .write_all(b"{\"command\":\"set_backbone_frozen\",\"frozen\":true}\n")
        .unwrap();
    assert_eq!(next_reply(&mut reader)["reply"], "accepted");
    wait_for(
        &handle.events,
        "the refusal",
        |k| matches!(k, EventKind::Warning { message } if message.contains("no backbone")),
    );
    stop_run(handle);
}

/// A pid no process has now.
fn dead_pid() -> u32 {
    (400_000..)
        .find(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
        .unwrap()
}

#[test]
fn a_stale_socket_is_detected_removed_and_never_trusted() {
    let runs_dir = scratch("stale");
    let run = RunDir::create(&runs_dir, "crashed").unwrap();
    let mut log = runs::EventLog::create(&run.events_path()).unwrap();
    for event in kiln::bench::synthetic_run(3, 4)
        .iter()
        .filter(|e| !matches!(e.kind, EventKind::Finished(_)))
    {
        log.append(event).unwrap();
    }
    // What a killed process leaves: its socket file with nobody listening, its pid file.
    drop(UnixListener::bind(run.path.join(SOCKET_FILE)).unwrap());
    std::fs::write(run.path.join(runs::PID_FILE), format!("{}\n", dead_pid())).unwrap();

    assert_eq!(control::probe(&run.path), Endpoint::Stale);
    let listing = runs::list_runs(&runs_dir).unwrap();
    assert_eq!(listing.runs[0].state, RunState::Interrupted);
    let err = control::client::attach(&run.path)
        .err()
        .expect("no live run");
    assert!(err.to_string().contains("not running"), "{err}");
    assert!(err.to_string().contains("kiln resume"), "{err}");
    assert!(
        !run.path.join(SOCKET_FILE).exists(),
        "the stale socket is removed"
    );
}

#[test]
fn a_second_trainer_for_a_live_run_is_refused() {
    let _guard = training_lock();
    let runs_dir = scratch("control");
    let handle = long_run(&runs_dir);
    let output = Process::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["resume", &handle.run.id, "--headless", "--runs-dir"])
        .arg(&runs_dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("still training"), "{stderr}");
    assert!(stderr.contains("kiln attach"), "{stderr}");
    stop_run(handle);

    // A pid file naming another live process (pid 1) is a claim too.
    let run = RunDir::create(&runs_dir, "claimed").unwrap();
    std::fs::write(run.path.join(runs::PID_FILE), "1\n").unwrap();
    let err = run.claim().expect_err("claimed by process 1");
    assert!(err.to_string().contains("process 1"), "{err}");
}

#[test]
fn a_run_whose_socket_was_deleted_still_ends() {
    let _guard = training_lock();
    let handle = long_run(&scratch("control"));
    std::fs::remove_file(handle.run.path.join(SOCKET_FILE)).unwrap();
    assert_eq!(control::probe(&handle.run.path), Endpoint::Absent);
    // Stopping must not wait for a listener nobody can reach any more.
    let (done, ended) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        stop_run(handle);
        let _ = done.send(());
    });
    ended
        .recv_timeout(Duration::from_secs(120))
        .expect("the run ended and its thread was joined");
}

#[test]
fn a_viewer_refuses_a_run_that_speaks_another_protocol_version() {
    let runs_dir = scratch("version");
    let run = RunDir::create(&runs_dir, "future").unwrap();
    runs::EventLog::create(&run.events_path()).unwrap();
    // A kiln of another version training this run: its hello names protocol 99.
    let listener = UnixListener::bind(run.path.join(SOCKET_FILE)).unwrap();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let hello = control::Reply::Hello {
            protocol: control::PROTOCOL_VERSION + 98,
            run_id: "future".into(),
            pid: std::process::id(),
            log_bytes: 0,
        };
        stream.write_all(hello.line().as_bytes()).unwrap();
    });
    let err = control::client::attach(&run.path)
        .err()
        .expect("a hello of another version is refused");
    server.join().unwrap();
    let text = err.to_string();
    assert!(
        text.contains("protocol 99")
            && text.contains(&format!("speaks {}", control::PROTOCOL_VERSION)),
        "{text}"
    );
}

#[test]
fn attach_stdio_relays_the_protocol_both_ways() {
    use std::process::Stdio;
    let _guard = training_lock();
    let handle = long_run(&scratch("stdio"));
    let mut child = Process::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["attach", "--stdio"])
        .arg(&handle.run.path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut to_run = child.stdin.take().unwrap();
    let mut from_run = BufReader::new(child.stdout.take().unwrap());
    let hello = next_reply(&mut from_run);
    assert_eq!(hello["reply"], "hello");
    assert_eq!(hello["run_id"], handle.run.id.as_str());

    // Commands go through the pipe and replies come back; the run obeys.
    writeln!(to_run, r#"{{"command":"pause"}}"#).unwrap();
    assert_eq!(next_reply(&mut from_run)["reply"], "accepted");
    wait_for(&handle.events, "the pause", |k| {
        matches!(k, EventKind::Paused { .. })
    });
    writeln!(to_run, r#"{{"command":"set_dropout","value":2}}"#).unwrap();
    assert_eq!(next_reply(&mut from_run)["reply"], "error");
    writeln!(to_run, r#"{{"command":"resume"}}"#).unwrap();
    assert_eq!(next_reply(&mut from_run)["reply"], "accepted");
    wait_for(&handle.events, "the resume", |k| {
        matches!(k, EventKind::Resumed)
    });

    // The viewer closing its end ends the relay, and the run trains on.
    drop(to_run);
    assert!(child.wait().unwrap().success());
    wait_for(&handle.events, "more training", |k| {
        matches!(k, EventKind::Batch(_))
    });
    stop_run(handle);
}

/// A run interrupted on `gpu-node-7` (its log says so), in a fresh runs folder.
pub(crate) fn run_placed_elsewhere(name: &str, slurm_job: Option<&str>) -> RunDir {
    let runs_dir = scratch(name);
    let run = RunDir::create(&runs_dir, "on-a-node").unwrap();
    let mut log = runs::EventLog::create(&run.events_path()).unwrap();
    for mut event in kiln::bench::synthetic_run(3, 4)
        .into_iter()
        .filter(|e| !matches!(e.kind, EventKind::Finished(_)))
    {
        if let EventKind::RunStarted(started) = &mut event.kind {
            started.placement = Some(kiln::protocol::Placement {
                host: "gpu-node-7".into(),
                pid: dead_pid(),
                slurm_job: slurm_job.map(str::to_string),
            });
        }
        log.append(&event).unwrap();
    }
    run
}

#[test]
fn a_run_on_another_host_is_neither_judged_stale_nor_touched_and_the_bridge_is_named() {
    let run = run_placed_elsewhere("elsewhere", Some("77_3"));
    // The socket the node made, on a shared filesystem: nobody answers it from here.
    drop(UnixListener::bind(run.path.join(SOCKET_FILE)).unwrap());
    let output = Process::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["attach", "--headless"])
        .arg(&run.path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("trains on gpu-node-7 (Slurm job 77_3)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("srun --jobid=77 --overlap kiln attach --stdio"),
        "{stderr}"
    );
    // Where Slurm's srun is here, kiln runs that bridge itself; job 77 is not one Slurm
    // knows, and srun's own words say so.
    let has_srun = Process::new("srun").arg("--version").output().is_ok();
    assert_eq!(
        stderr.contains("the bridge to it (srun --jobid=77") && stderr.contains("failed"),
        has_srun,
        "{stderr}"
    );
    assert!(
        run.path.join(SOCKET_FILE).exists(),
        "a live node's socket is left alone"
    );
}

#[test]
fn a_run_interrupted_on_another_host_is_not_resumed_from_here() {
    let run = run_placed_elsewhere("elsewhere-resume", None);
    let err = kiln::train::plan_resume(run.path.clone(), None)
        .err()
        .expect("refused");
    assert!(
        err.to_string().contains("was started on gpu-node-7")
            && err.to_string().contains("resume it on gpu-node-7"),
        "{err}"
    );
}

#[test]
fn a_bridge_that_closes_early_still_delivers_the_runs_last_events_from_its_log() {
    // Slurm ends a job's steps when its main task exits: the srun bridge can close before the
    // run's final events cross it. The viewer reads what the stream missed from the log.
    let _guard = training_lock();
    let runs_dir = scratch("bridge-tail");
    let status = crate::common::train_digits("--headless", 2, &runs_dir)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let run = crate::common::only_run(&runs_dir);
    let log = run.join(runs::EVENTS_FILE);
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.len() > 8,
        "a two-epoch digits run logs more than 8 events"
    );
    // The viewer attached after 3 events; the bridge carried 3 more, then closed.
    let log_bytes: usize = lines[..3].iter().map(|l| l.len() + 1).sum();
    let hello = control::Reply::Hello {
        protocol: control::PROTOCOL_VERSION,
        run_id: "bridged".into(),
        pid: std::process::id(),
        log_bytes: log_bytes as u64,
    };
    let stream = scratch("bridge-tail-stream").join("stream.jsonl");
    std::fs::write(
        &stream,
        format!("{}{}\n", hello.line(), lines[3..6].join("\n")),
    )
    .unwrap();
    let mut bridge = Process::new("cat");
    bridge.arg(&stream);

    let attached = control::client::attach_via(&run, bridge).unwrap();
    assert_eq!(attached.history.len(), 3);
    let live: Vec<_> = attached.events.iter().collect();
    let everything: Vec<_> = attached.history.into_iter().chain(live).collect();
    let logged = runs::read_events(&log).unwrap().events;
    assert_eq!(everything, logged, "each event once, in the log's order");
    assert!(matches!(
        everything.last().map(|e| &e.kind),
        Some(EventKind::Finished(_))
    ));
}
