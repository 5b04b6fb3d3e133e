//! Runs handed to a real Slurm cluster (tests/slurm/start.sh: slurm-wlm and munge on localhost,
//! one node): the job script, sweeps trained as array tasks, their states, the time-limit
//! warning and cancelling. Without a cluster these tests say SKIPPED, naming the script; under
//! `.ci/run` (KILN_REQUIRE_SLURM=1) its absence fails them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use kiln::experiment::SlurmConfig;
use kiln::protocol::EventKind;
use kiln::slurm::{JobScript, is_node_local, options, parse_squeue};
use kiln::sweep::{SweepRecord, SweepRow};

use crate::common::{repo_path, scratch, training_lock};

/// The cluster's configuration file, starting the test cluster when this machine can run it.
fn cluster() -> Option<PathBuf> {
    if let Some(conf) = std::env::var_os("SLURM_CONF").map(PathBuf::from)
        && conf.exists()
        && Command::new("sinfo")
            .env("SLURM_CONF", &conf)
            .arg("-h")
            .output()
            .is_ok_and(|o| o.status.success())
    {
        return Some(conf);
    }
    let started = Command::new("bash")
        .arg(repo_path("tests/slurm/start.sh"))
        .output();
    if let Ok(output) = &started
        && output.status.success()
    {
        let text = String::from_utf8_lossy(&output.stdout);
        if let Some(conf) = text
            .lines()
            .find_map(|l| l.strip_prefix("export SLURM_CONF="))
        {
            return Some(PathBuf::from(conf.trim()));
        }
    }
    let why = match started {
        Ok(output) => String::from_utf8_lossy(&output.stderr).trim().to_string(),
        Err(err) => err.to_string(),
    };
    assert!(
        std::env::var_os("KILN_REQUIRE_SLURM").is_none(),
        "KILN_REQUIRE_SLURM is set but no Slurm cluster could be started: {why}"
    );
    eprintln!(
        "SKIPPED: no Slurm cluster ({why}); `bash tests/slurm/start.sh` starts one (needs root, \
         apt-get install slurm-wlm munge)"
    );
    None
}

/// `kiln ARGS… --runs-dir RUNS` against the cluster.
fn kiln(conf: &Path, args: &[&str], runs: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .arg("--runs-dir")
        .arg(runs)
        .env("SLURM_CONF", conf)
        .current_dir(repo_path(""))
        .output()
        .expect("kiln runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Cancels a test's job when the test ends, passed or failed, so no task of it holds the
/// one node for the next test.
struct JobGuard {
    conf: PathBuf,
    job: String,
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        let _ = Command::new("scancel")
            .arg(&self.job)
            .env("SLURM_CONF", &self.conf)
            .output();
    }
}

/// `kiln ARGS… --slurm --force` (a one-node cluster shares /tmp), which must succeed: what it
/// printed, the only sweep in `runs`, and a guard that cancels its job.
fn submit(conf: &Path, args: &[&str], runs: &Path) -> (String, SweepRecord, JobGuard) {
    let args: Vec<&str> = args.iter().copied().chain(["--slurm", "--force"]).collect();
    let output = kiln(conf, &args, runs);
    assert!(output.status.success(), "{}", text(&output));
    let record = only_sweep(runs);
    let job = record.slurm.as_ref().expect("a Slurm job").job_id.clone();
    let guard = JobGuard {
        conf: conf.to_path_buf(),
        job,
    };
    (text(&output), record, guard)
}

fn only_sweep(runs: &Path) -> SweepRecord {
    let ids = kiln::sweep::list(runs);
    assert_eq!(ids.len(), 1, "{ids:?}");
    SweepRecord::load(runs, &ids[0]).unwrap()
}

/// The sweep's rows as `kiln sweep status --json` prints them (Slurm's states included).
fn rows(conf: &Path, runs: &Path) -> Vec<SweepRow> {
    let output = kiln(conf, &["sweep", "status", "--json"], runs);
    assert!(output.status.success(), "{}", text(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Polls `kiln sweep status` until `done` holds for every run's state; returns the table.
fn wait_for_states(conf: &Path, runs: &Path, what: &str, done: impl Fn(&str) -> bool) -> String {
    wait_for_all(conf, runs, what, |states| states.iter().all(|s| done(s)))
}

/// Polls `kiln sweep status` until `done` holds for the runs' states; returns the table.
fn wait_for_all(conf: &Path, runs: &Path, what: &str, done: impl Fn(&[String]) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        // The states first, then the table: states only move on (pending, starting, running,
        // ended), so the table is never behind the states the caller waited for.
        let states: Vec<String> = rows(conf, runs).into_iter().map(|r| r.state).collect();
        let output = kiln(conf, &["sweep", "status", "--plain"], runs);
        assert!(output.status.success(), "{}", text(&output));
        let table = String::from_utf8_lossy(&output.stdout).into_owned();
        if done(&states) {
            return table;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: still {states:?}\n{table}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A run's log as it stands (another process may still append to it).
fn events_of(run: &Path) -> Vec<kiln::protocol::Event> {
    kiln::runs::read_events(&run.join("events.jsonl"))
        .unwrap()
        .events
}

/// The final event a run's log ends with; the test fails when it has none.
fn ended_as(run: &Path) -> kiln::protocol::RunFinished {
    let events = events_of(run);
    match events.last().map(|e| &e.kind) {
        Some(EventKind::Finished(end)) => end.clone(),
        other => panic!("{} has no final event: {other:?}", run.display()),
    }
}

fn run_started(run: &Path) -> Box<kiln::protocol::RunStarted> {
    match &events_of(run)[0].kind {
        EventKind::RunStarted(start) => start.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_job_script_runs_one_kiln_command_per_task_with_the_asked_options() {
    let config = SlurmConfig {
        partition: Some("gpu".into()),
        time: Some("01:30:00".into()),
        gpus: Some(1),
        extra: vec!["--constraint=h200".into()],
        ..SlurmConfig::default()
    };
    let options = options(&config, &["--qos=short".to_string()]);
    assert_eq!(
        options,
        [
            "--partition=gpu",
            "--time=01:30:00",
            "--gpus=1",
            "--signal=B:USR1@120",
            "--constraint=h200",
            "--qos=short"
        ]
    );
    let script = JobScript {
        name: "kiln-s".into(),
        tasks: vec![
            vec!["/bin/kiln".into(), "train".into(), "name=\"a b\"".into()],
            vec!["/bin/kiln".into(), "it's".into()],
        ],
        output: "/runs/sweeps/s/task-%a.out".into(),
        options,
    }
    .render();
    assert!(script.starts_with("#!/bin/bash\n#SBATCH --job-name=kiln-s\n#SBATCH --array=0-1\n"));
    assert!(script.contains("#SBATCH --output=/runs/sweeps/s/task-%a.out\n"));
    assert!(script.contains("#SBATCH --signal=B:USR1@120\n"));
    assert!(script.contains("  0) exec /bin/kiln train 'name=\"a b\"' ;;\n"));
    assert!(script.contains("  1) exec /bin/kiln 'it'\\''s' ;;\n"));
    // The script is valid bash that runs the task it is given.
    let dir = scratch("job-script");
    let file = dir.join("job.sh");
    std::fs::write(&file, script.replace("/bin/kiln", "echo")).unwrap();
    let ran = Command::new("bash")
        .arg(&file)
        .env("SLURM_ARRAY_TASK_ID", "0")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&ran.stdout), "train name=\"a b\"\n");
    let missing = Command::new("bash")
        .arg(&file)
        .env("SLURM_ARRAY_TASK_ID", "5")
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));

    let tasks = parse_squeue("2|PENDING|(Resources)\n0|RUNNING|node7\n1|TIMEOUT|node7\nN/A|X|y\n");
    assert_eq!(tasks.len(), 3);
    assert_eq!(tasks[&2].label(), "pending (Resources)");
    assert_eq!(tasks[&0].label(), "running (node7)");
    assert_eq!(tasks[&1].label(), "timed out");
    assert!(is_node_local(Path::new("/tmp/runs")));
    assert!(!is_node_local(Path::new("/home/user/runs")));
}

#[test]
fn a_slurm_submission_refuses_a_runs_dir_under_tmp_and_a_refused_job_leaves_nothing() {
    let runs = scratch("slurm-refused");
    let output = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args([
            "sweep",
            "experiments/digits.toml",
            "--grid",
            "model.dropout=0.0,0.3",
        ])
        .args(["--slurm", "--runs-dir"])
        .arg(&runs)
        .current_dir(repo_path(""))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("compute nodes do not share"),
        "{}",
        text(&output)
    );
    assert!(kiln::sweep::list(&runs).is_empty());
    // No Slurm client tools here (a laptop, not the login node): said plainly, nothing made.
    let no_tools = scratch("no-slurm-tools");
    let output = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args([
            "train",
            "experiments/digits.toml",
            "--slurm",
            "--force",
            "--runs-dir",
        ])
        .arg(&runs)
        .env("PATH", &no_tools)
        .current_dir(repo_path(""))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("`sbatch` is not on PATH"),
        "{}",
        text(&output)
    );
    assert!(kiln::sweep::list(&runs).is_empty());

    let Some(conf) = cluster() else { return };
    let output = kiln(
        &conf,
        &[
            "sweep",
            "experiments/digits.toml",
            "--grid",
            "model.dropout=0.0,0.3",
            "--slurm",
            "--force",
            "--sbatch=--partition=no-such-partition",
        ],
        &runs,
    );
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("sbatch refused the job") && text(&output).contains("partition"),
        "{}",
        text(&output)
    );
    // No record, no script, no output folder: nothing half-made.
    let left: Vec<_> = std::fs::read_dir(runs.join("sweeps"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_sweep_on_slurm_trains_every_combination_as_an_array_task_and_ranks_them() {
    let Some(conf) = cluster() else { return };
    let _lock = training_lock();
    let runs = scratch("slurm-sweep");
    let (said, record, _guard) = submit(
        &conf,
        &[
            "sweep",
            "experiments/digits.toml",
            "--grid",
            "model.dropout=0.0,0.3",
            "--grid",
            "train.learning_rate=1e-3,3e-3",
            "--set",
            "train.epochs=2",
            "--backend",
            "cpu",
            "--sbatch=--cpus-per-task=1",
        ],
        &runs,
    );
    let job = record.slurm.clone().expect("a Slurm job");
    assert!(
        said.contains(&format!("Slurm job {}", job.job_id)),
        "{said}"
    );
    let script = std::fs::read_to_string(&job.script).unwrap();
    assert!(script.contains("#SBATCH --array=0-3\n"), "{script}");
    assert!(script.contains("#SBATCH --cpus-per-task=1\n"), "{script}");

    let table = wait_for_states(&conf, &runs, "the sweep", |s| s == "finished");
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 6, "{table}");
    assert!(lines[1].contains("task"), "{table}");
    // Ranked best validation accuracy first.
    let best: Vec<f64> = lines[2..]
        .iter()
        .map(|l| l.split_whitespace().nth(2).unwrap().parse().unwrap())
        .collect();
    assert!(best.windows(2).all(|w| w[0] >= w[1]), "{table}");

    // Four ordinary runs, each placed in its own array task and carrying its settings.
    for (index, run) in record.runs.iter().enumerate() {
        let row = rows(&conf, &runs)
            .into_iter()
            .find(|r| r.task == Some(index))
            .unwrap();
        let dir = runs.join(row.run_id.expect("a run id"));
        let start = run_started(&dir);
        let placement = start.placement.expect("placement");
        assert_eq!(placement.slurm_job, Some(job.task(index)));
        let experiment =
            kiln::experiment::Experiment::load(&dir.join("experiment.toml"), &[]).unwrap();
        let dropout = &run.settings[0].1;
        assert_eq!(experiment.model.dropout, dropout.parse::<f64>().unwrap());
        assert_eq!(experiment.train.epochs, 2);
    }
    // `kiln runs --plain` names each run's array task.
    let listing = kiln(&conf, &["runs", "--plain"], &runs);
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    assert!(
        listing.lines().next().unwrap().contains("slurm"),
        "{listing}"
    );
    for index in 0..4 {
        assert!(
            listing.contains(&format!(" {} ", job.task(index))),
            "{listing}"
        );
    }
}

#[test]
fn a_slurm_run_warned_of_its_time_limit_checkpoints_and_ends_timed_out() {
    let Some(conf) = cluster() else { return };
    let _lock = training_lock();
    let runs = scratch("slurm-time-limit");
    // A one-minute limit, warned 50 s before it (slurmctld checks limits every ~30 s): the
    // warning comes 10–40 s in. kiln's CPU kernels train digits at ~20 epochs a second, so the
    // run is given far more epochs than two one-minute jobs can finish: the resumed job must
    // meet its own limit too, not complete.
    let (_, record, _guard) = submit(
        &conf,
        &[
            "train",
            "experiments/digits.toml",
            "--set",
            "train.epochs=100000",
            "--set",
            "slurm.signal_seconds=50",
            "--backend",
            "cpu",
            "--sbatch=--time=1",
        ],
        &runs,
    );
    let table = wait_for_states(&conf, &runs, "the time-limited run", |s| {
        !s.starts_with("pending") && !s.starts_with("starting") && !s.starts_with("running")
    });
    let row = &rows(&conf, &runs)[0];
    assert_eq!(row.state, "timed out", "{table}");
    let dir = runs.join(row.run_id.as_ref().unwrap());
    let end = ended_as(&dir);
    assert_eq!(end.outcome, kiln::protocol::Outcome::TimeLimit);
    assert!(end.epochs_completed < 100_000);
    let job = record.slurm.unwrap();
    let output = std::fs::read_to_string(job.output_of(0)).unwrap();
    assert!(output.contains("interrupted: time limit"), "{output}");
    // Its last checkpoint is there to resume from.
    let listing = kiln::runs::list_runs(&runs).unwrap();
    assert_eq!(listing.runs[0].state, kiln::runs::RunState::TimedOut);
    assert!(dir.join("checkpoints").read_dir().unwrap().next().is_some());

    // `resume --slurm` carries on from it in a new job (which meets its own time limit).
    let id = row.run_id.clone().unwrap();
    let output = kiln(
        &conf,
        &["resume", &id, "--slurm", "--force", "--sbatch=--time=1"],
        &runs,
    );
    assert!(output.status.success(), "{}", text(&output));
    let newest = kiln::sweep::list(&runs).pop().unwrap();
    let resumed = SweepRecord::load(&runs, &newest).unwrap();
    assert_ne!(resumed.id, record.id);
    let _guard = JobGuard {
        conf: conf.clone(),
        job: resumed.slurm.as_ref().unwrap().job_id.clone(),
    };
    let deadline = Instant::now() + Duration::from_secs(240);
    let events = loop {
        let events = events_of(&dir);
        let resumed_at = events
            .iter()
            .position(|e| matches!(e.kind, EventKind::FromCheckpoint(_)));
        if resumed_at.is_some_and(|at| {
            events[at..]
                .iter()
                .any(|e| matches!(e.kind, EventKind::Finished(_)))
        }) {
            break events;
        }
        assert!(Instant::now() < deadline, "the resumed run did not end");
        std::thread::sleep(Duration::from_millis(500));
    };
    let Some(EventKind::Finished(again)) = events.last().map(|e| &e.kind) else {
        panic!("{:?}", events.last());
    };
    assert_eq!(again.outcome, kiln::protocol::Outcome::TimeLimit);
    assert!(
        again.epochs_completed >= end.epochs_completed,
        "{again:?} after {end:?}"
    );
    let resumes = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::FromCheckpoint(_)))
        .count();
    assert_eq!(resumes, 1);
}

#[test]
fn cancelling_a_slurm_sweep_stops_its_running_task_and_drops_the_pending_ones() {
    let Some(conf) = cluster() else { return };
    let _lock = training_lock();
    let runs = scratch("slurm-cancel");
    // Two CPUs each on a two-CPU node: one task runs, the others wait for it.
    let (_, record, _guard) = submit(
        &conf,
        &[
            "sweep",
            "experiments/digits.toml",
            "--grid",
            "model.dropout=0.0,0.1,0.2",
            "--set",
            "train.epochs=100000",
            "--backend",
            "cpu",
            "--sbatch=--cpus-per-task=2",
        ],
        &runs,
    );
    let table = wait_for_all(&conf, &runs, "one task training", |states| {
        states.iter().filter(|s| s.starts_with("running")).count() == 1
            && states.iter().filter(|s| s.starts_with("pending")).count() == 2
    });
    assert!(
        table.contains("running (") && table.contains("pending"),
        "{table}"
    );
    // Wait for the running one to have trained an epoch (a checkpoint to resume from).
    let deadline = Instant::now() + Duration::from_secs(120);
    let running = loop {
        let found = rows(&conf, &runs).into_iter().find_map(|r| {
            let id = r.run_id?;
            let dir = runs.join(id);
            kiln::runs::read_events(&dir.join("events.jsonl"))
                .ok()?
                .events
                .iter()
                .any(|e| matches!(e.kind, EventKind::Epoch(_)))
                .then_some(dir)
        });
        if let Some(dir) = found {
            break dir;
        }
        assert!(Instant::now() < deadline, "no epoch trained");
        std::thread::sleep(Duration::from_millis(200));
    };

    let output = kiln(&conf, &["cancel", &record.id], &runs);
    assert!(output.status.success(), "{}", text(&output));
    let said = text(&output);
    assert!(said.contains(": stopped"), "{said}");
    assert_eq!(said.matches("cancelled (scancel)").count(), 2, "{said}");

    let table = wait_for_states(&conf, &runs, "the cancelled sweep", |s| s == "cancelled");
    assert_eq!(table.matches("cancelled").count(), 3, "{table}");
    // The running run stopped gracefully: a final event and a checkpoint.
    assert_eq!(ended_as(&running).outcome, kiln::protocol::Outcome::Stopped);
    // Slurm no longer holds anything of it.
    let job = record.slurm.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let queued = || {
        let output = Command::new("squeue")
            .args(["-h", "-r", "-j", &job.job_id, "-o", "%K|%T|%R"])
            .env("SLURM_CONF", &conf)
            .output()
            .unwrap();
        !parse_squeue(&String::from_utf8_lossy(&output.stdout)).is_empty()
    };
    while queued() {
        assert!(Instant::now() < deadline, "tasks still queued");
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn a_viewer_steers_a_slurm_run_through_the_srun_bridge() {
    use kiln::protocol::{Command as RunCommand, HyperParameter, Outcome};
    let Some(conf) = cluster() else { return };
    let _lock = training_lock();
    let runs = scratch("slurm-bridge");
    let (_, record, _guard) = submit(
        &conf,
        &[
            "train",
            "experiments/digits.toml",
            "--set",
            "train.epochs=100000",
            "--backend",
            "cpu",
        ],
        &runs,
    );
    let job = record.slurm.clone().unwrap();
    // Training, with its socket answering inside the job.
    let deadline = Instant::now() + Duration::from_secs(120);
    let dir = loop {
        let row = rows(&conf, &runs).remove(0);
        if let Some(id) = &row.run_id
            && row.state.starts_with("running")
            && kiln::runs::probe(&runs.join(id)) == kiln::runs::Endpoint::Alive
        {
            break runs.join(id);
        }
        assert!(Instant::now() < deadline, "the run did not start: {row:?}");
        std::thread::sleep(Duration::from_millis(200));
    };

    // The bridge `kiln attach` uses for a run on another node: a step of the run's own job.
    let mut bridge = kiln::control::client::srun_bridge(
        Path::new(env!("CARGO_BIN_EXE_kiln")),
        &job.task(0),
        &dir,
    );
    bridge.env("SLURM_CONF", &conf);
    let attached = kiln::control::client::attach_via(&dir, bridge).unwrap();
    assert!(
        matches!(
            attached.history.first().map(|e| &e.kind),
            Some(EventKind::RunStarted(_))
        ),
        "the history comes from the log"
    );
    // Each command and the event that shows the run applied it.
    type Answer = fn(&EventKind) -> bool;
    let steps: [(RunCommand, Answer); 4] = [
        (RunCommand::Pause, |k| matches!(k, EventKind::Paused { .. })),
        (RunCommand::SetDropout { value: 0.3 }, |k| {
            matches!(
                k,
                EventKind::HyperParameterChanged {
                    parameter: HyperParameter::Dropout,
                    ..
                }
            )
        }),
        (RunCommand::Resume, |k| matches!(k, EventKind::Resumed)),
        (RunCommand::Stop, |k| matches!(k, EventKind::Finished(_))),
    ];
    for (command, answered) in steps {
        attached.commands.send(command.clone()).unwrap();
        crate::common::wait_for(&attached.events, &format!("{command:?}"), answered);
    }
    // Each is in the log, in order; the run ends stopped and the job completes.
    let events = events_of(&dir);
    let position = |what: &dyn Fn(&EventKind) -> bool| {
        events.iter().position(|e| what(&e.kind)).expect("logged")
    };
    let paused = position(&|k| matches!(k, EventKind::Paused { .. }));
    let changed = position(
        &|k| matches!(k, EventKind::HyperParameterChanged { to, .. } if (*to - 0.3).abs() < 1e-12),
    );
    let resumed = position(&|k| matches!(k, EventKind::Resumed));
    assert!(
        paused < changed && changed < resumed,
        "{paused} {changed} {resumed}"
    );
    assert_eq!(ended_as(&dir).outcome, Outcome::Stopped);
    let table = wait_for_states(&conf, &runs, "the stopped run", |s| s == "stopped");
    assert!(table.contains(&job.task(0)), "{table}");
}

#[test]
fn the_ladder_on_slurm_gives_the_local_ladders_table() {
    let Some(conf) = cluster() else { return };
    let _lock = training_lock();
    let common = [
        "experiments/digits.toml",
        "--set",
        "train.epochs=2",
        "--backend",
        "cpu",
    ];
    let local_runs = scratch("ladder-local");
    let local = kiln(
        &conf,
        &[&["ladder", "--plain"][..], &common[..]].concat(),
        &local_runs,
    );
    assert!(local.status.success(), "{}", text(&local));
    let local = String::from_utf8_lossy(&local.stdout).into_owned();

    let runs = scratch("ladder-slurm");
    let (_, record, _guard) = submit(
        &conf,
        &[
            &["ladder"][..],
            &common[..],
            &["--sbatch=--cpus-per-task=1"][..],
        ]
        .concat(),
        &runs,
    );
    assert_eq!(record.ladder_target, Some(0.9));
    assert_eq!(record.runs.len(), 6);
    wait_for_states(&conf, &runs, "the ladder's rungs", |s| s == "finished");
    let status = kiln(&conf, &["sweep", "status", "--plain"], &runs);
    let status = String::from_utf8_lossy(&status.stdout).into_owned();
    // Everything but the timing and the run ids: same seeds, same data, same table.
    let results = |table: &str| -> Vec<Vec<String>> {
        table
            .lines()
            .take_while(|l| !l.trim().is_empty())
            .map(|l| {
                let cells: Vec<String> = l.split_whitespace().map(str::to_string).collect();
                [&cells[..5], &cells[6..7]].concat()
            })
            .collect()
    };
    let local_rows = results(&local);
    assert_eq!(local_rows.len(), 7, "{local}");
    assert_eq!(
        results(&status),
        local_rows,
        "local:\n{local}\nslurm:\n{status}"
    );
}

#[test]
fn a_task_that_fails_before_training_shows_the_end_of_its_output() {
    let Some(conf) = cluster() else { return };
    let _lock = training_lock();
    let runs = scratch("slurm-failed-task");
    // An experiment file that is gone by the time the task starts (it may not begin for 3 s).
    let experiment = runs.join("vanishing.toml");
    std::fs::copy(repo_path("experiments/digits.toml"), &experiment).unwrap();
    let (_, record, _guard) = submit(
        &conf,
        &[
            "train",
            experiment.to_str().unwrap(),
            "--sbatch=--begin=now+3",
        ],
        &runs,
    );
    std::fs::remove_file(&experiment).unwrap();
    let table = wait_for_states(&conf, &runs, "the failed task", |s| s == "failed");
    let job = record.slurm.unwrap();
    assert!(
        table.contains(&format!("task {} failed before training", job.task(0))),
        "{table}"
    );
    assert!(table.contains("vanishing.toml"), "{table}");
}

#[test]
fn scancel_shows_a_pending_and_a_running_task_cancelled_and_resume_finishes_the_run() {
    let Some(conf) = cluster() else { return };
    let _lock = training_lock();
    let runs = scratch("slurm-scancel");
    let (_, record, _guard) = submit(
        &conf,
        &[
            "sweep",
            "experiments/digits.toml",
            "--grid",
            "model.dropout=0.0,0.1,0.2",
            "--set",
            "train.epochs=400",
            "--backend",
            "cpu",
            "--sbatch=--cpus-per-task=2",
        ],
        &runs,
    );
    let job = record.slurm.clone().unwrap();
    // Task 0 trains (an epoch done, so a checkpoint exists); 1 and 2 wait for the node.
    let deadline = Instant::now() + Duration::from_secs(120);
    let running = loop {
        let rows = rows(&conf, &runs);
        let trained = rows.iter().find_map(|r| {
            let dir = runs.join(r.run_id.as_ref()?);
            let events = kiln::runs::read_events(&dir.join("events.jsonl"))
                .ok()?
                .events;
            events
                .iter()
                .any(|e| matches!(e.kind, EventKind::Epoch(_)))
                .then_some((r.task?, dir))
        });
        if let Some(found) = trained
            && rows
                .iter()
                .filter(|r| r.state.starts_with("pending"))
                .count()
                == 2
        {
            break found;
        }
        assert!(Instant::now() < deadline, "no task trained: {rows:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let (running_task, running_dir) = running;
    let pending_task = (0..3).find(|t| *t != running_task).unwrap();
    for task in [running_task, pending_task] {
        let done = Command::new("scancel")
            .arg(job.task(task))
            .env("SLURM_CONF", &conf)
            .output()
            .unwrap();
        assert!(done.status.success(), "{done:?}");
    }
    let table = wait_for_all(&conf, &runs, "the cancelled tasks", |states| {
        states.iter().filter(|s| *s == "cancelled").count() == 2
    });
    let by_task = |task: usize| {
        rows(&conf, &runs)
            .into_iter()
            .find(|r| r.task == Some(task))
            .unwrap()
    };
    assert_eq!(by_task(running_task).state, "cancelled", "{table}");
    assert_eq!(by_task(pending_task).state, "cancelled", "{table}");
    // The running one took scancel's SIGTERM as a graceful stop: a final event and a
    // checkpoint, from which a new job finishes it.
    assert_eq!(
        ended_as(&running_dir).outcome,
        kiln::protocol::Outcome::Stopped
    );
    let id = running_dir
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let output = kiln(&conf, &["resume", &id, "--slurm", "--force"], &runs);
    assert!(output.status.success(), "{}", text(&output));
    let newest = kiln::sweep::list(&runs).pop().unwrap();
    let _resumed = JobGuard {
        conf: conf.clone(),
        job: SweepRecord::load(&runs, &newest)
            .unwrap()
            .slurm
            .unwrap()
            .job_id,
    };
    wait_for_states(&conf, &runs, "the resumed run", |s| s == "finished");
    let end = ended_as(&running_dir);
    assert_eq!(end.outcome, kiln::protocol::Outcome::Completed);
    assert_eq!(end.epochs_completed, 400);
}

#[test]
fn a_run_interrupted_on_another_node_resumes_here_once_slurm_says_its_job_ended() {
    let Some(conf) = cluster() else { return };
    // Its jobs take a CPU of the one node: not while other tests need the node.
    let _lock = training_lock();
    let sbatch = |wrap: &str| {
        let output = Command::new("sbatch")
            .args(["--parsable", "--output=/dev/null", "--wrap", wrap])
            .env("SLURM_CONF", &conf)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    let resume = |run: &Path| {
        let output = Command::new(env!("CARGO_BIN_EXE_kiln"))
            .args(["resume", "--headless"])
            .arg(run)
            .env("SLURM_CONF", &conf)
            .output()
            .unwrap();
        text(&output)
    };
    // Still running there, by Slurm's word: it counts as training, and two trainers must not
    // share the run.
    let running = sbatch("sleep 60");
    let _guard = JobGuard {
        conf: conf.clone(),
        job: running.clone(),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while slurm_state(&conf, &running) != "RUNNING" {
        assert!(Instant::now() < deadline, "job {running} did not start");
        std::thread::sleep(Duration::from_millis(200));
    }
    let run = crate::control::run_placed_elsewhere("slurm-elsewhere-running", Some(&running));
    let said = resume(&run.path);
    assert!(said.contains("is still training"), "{said}");

    // Its job has ended by Slurm's word: resuming here goes on (this crafted run then lacks the
    // experiment file a real one has, which is the next thing resume reads).
    let ended = sbatch("true");
    let deadline = Instant::now() + Duration::from_secs(60);
    while slurm_state(&conf, &ended) != "COMPLETED" {
        assert!(Instant::now() < deadline, "job {ended} did not end");
        std::thread::sleep(Duration::from_millis(200));
    }
    let run = crate::control::run_placed_elsewhere("slurm-elsewhere-ended", Some(&ended));
    let said = resume(&run.path);
    assert!(!said.contains("was started on gpu-node-7"), "{said}");
    assert!(said.contains("experiment.toml"), "{said}");
}

/// Slurm's state of a job, as `squeue` reports it (ended jobs included).
fn slurm_state(conf: &Path, job: &str) -> String {
    let output = Command::new("squeue")
        .args(["-h", "-t", "all", "-j", job, "-o", "%T"])
        .env("SLURM_CONF", conf)
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}
