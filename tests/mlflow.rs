//! Runs tracked on a real MLflow server (`mlflow server` from PyPI, which `.ci/run` installs),
//! started on localhost by the test and read back through MLflow's REST API: parameters, one
//! value per epoch, status and model; a server that goes away mid-run is reported, the run
//! finishes, and nothing is lost (held updates go through when it is back; what never got
//! there is sent again from the run's log by `kiln export --mlflow`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kiln::experiment::Experiment;
use kiln::protocol::{Command as TrainCommand, Event, EventKind, Outcome, epoch_history};
use kiln::track::mlflow::{Client, RUN_ID_TAG};
use kiln::train::{self, TrainOptions, TrainerHandle};
use serde_json::{Value, json};

use crate::common::{kiln_ok, repo_path, scratch, training_lock, wait_for};

/// `None` (and the test returns) where MLflow is not installed, except under CI, which
/// installs it: there its absence fails the test.
fn require_mlflow() -> Option<String> {
    let python = crate::common::python_with("mlflow");
    if python.is_none() {
        let message = "MLFLOW NOT INSTALLED: tracking to MLflow was NOT checked; run .ci/run, \
                       or pip install mlflow and set KILN_TEST_PYTHON to that python";
        assert!(
            std::env::var_os("KILN_REQUIRE_MLFLOW").is_none(),
            "{message}"
        );
        eprintln!("SKIPPED: {message}");
    }
    python
}

/// A free port on localhost (the OS picks it; it is closed again for the server to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An `mlflow server` on localhost with its store in `dir`; killed, with its workers, on drop.
struct Server {
    child: Child,
    uri: String,
}

impl Server {
    fn start(python: &str, dir: &Path, port: u16) -> Server {
        use std::os::unix::process::CommandExt;
        let log = std::fs::File::create(dir.join("server.log")).unwrap();
        let child = Command::new(python)
            .args([
                "-m",
                "mlflow",
                "server",
                "--host",
                "127.0.0.1",
                "--workers",
                "1",
            ])
            .args(["--port", &port.to_string()])
            .arg("--backend-store-uri")
            .arg(format!("sqlite:///{}", dir.join("mlflow.db").display()))
            .arg("--artifacts-destination")
            .arg(dir.join("artifacts"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            // Its own process group, so stopping it stops the workers it starts too.
            .process_group(0)
            .spawn()
            .expect("mlflow server starts");
        let server = Server {
            child,
            uri: format!("http://127.0.0.1:{port}"),
        };
        let began = Instant::now();
        while Client::new(&server.uri).get("/health", &[]).is_err() {
            assert!(
                began.elapsed() < Duration::from_secs(90),
                "mlflow server did not answer: {}",
                std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        server
    }

    fn stop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn digits_tracked(uri: &str, epochs: usize) -> Experiment {
    let overrides = vec![
        "train.backend=\"cpu\"".to_string(),
        format!("train.epochs={epochs}"),
        "data.train_images=300".into(),
        kiln::experiment::string_override("track.mlflow_uri", uri),
    ];
    Experiment::load(&repo_path("experiments/digits.toml"), &overrides).unwrap()
}

fn start(experiment: Experiment, runs: &Path) -> TrainerHandle {
    train::spawn(TrainOptions {
        experiment,
        runs_dir: runs.to_path_buf(),
    })
    .unwrap()
}

fn drain(handle: TrainerHandle, mut seen: Vec<Event>) -> (Vec<Event>, PathBuf, String) {
    let (path, id) = (handle.run.path.clone(), handle.run.id.clone());
    seen.extend(handle.events.iter());
    handle.join();
    (seen, path, id)
}

/// What the server holds for kiln's run `id`: the MLflow run's info, and the
/// (step, value) history of `val_accuracy`.
fn on_server(uri: &str, id: &str) -> (Value, Vec<(i64, f64)>) {
    let client = Client::new(uri);
    let experiment = client
        .get(
            "/api/2.0/mlflow/experiments/get-by-name",
            &[("experiment_name", "digits")],
        )
        .unwrap()["experiment"]["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let found = client
        .post(
            "/api/2.0/mlflow/runs/search",
            &json!({
                "experiment_ids": [experiment],
                "filter": format!("tags.\"{RUN_ID_TAG}\" = '{id}'"),
            }),
        )
        .unwrap();
    let runs = found["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1, "one MLflow run per kiln run: {found}");
    let run = runs[0].clone();
    let run_id = run["info"]["run_id"].as_str().unwrap();
    let history = client
        .get(
            "/api/2.0/mlflow/metrics/get-history",
            &[("run_id", run_id), ("metric_key", "val_accuracy")],
        )
        .unwrap();
    let mut points: Vec<(i64, f64)> = history["metrics"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    let step = p["step"]
                        .as_i64()
                        .or_else(|| p["step"].as_str().and_then(|s| s.parse().ok()))
                        .unwrap_or(0);
                    (step, p["value"].as_f64().unwrap())
                })
                .collect()
        })
        .unwrap_or_default();
    points.sort_by_key(|p| p.0);
    (run, points)
}

fn mlflow_warnings(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Warning { message } if message.starts_with("mlflow") => {
                Some(message.clone())
            }
            _ => None,
        })
        .collect()
}

fn assert_has_every_epoch(points: &[(i64, f64)], events: &[Event]) {
    let logged = epoch_history(events);
    assert_eq!(
        points.len(),
        logged.len(),
        "one value per epoch: {points:?}"
    );
    for ((step, value), (i, m)) in points.iter().zip(logged.iter().enumerate()) {
        assert_eq!(*step, i as i64 + 1);
        assert!(
            (value - m.validation_accuracy).abs() < 1e-9,
            "{value} vs {m:?}"
        );
    }
}

#[test]
fn a_run_is_tracked_on_mlflow_with_params_metrics_status_and_model() {
    let Some(python) = require_mlflow() else {
        return;
    };
    let dir = scratch("mlflow");
    let server = Server::start(&python, &dir, free_port());
    let _guard = training_lock();
    let runs = scratch("mlflow-runs");
    let (events, _, id) = drain(start(digits_tracked(&server.uri, 3), &runs), Vec::new());
    assert!(
        mlflow_warnings(&events).is_empty(),
        "{:?}",
        mlflow_warnings(&events)
    );
    let (run, points) = on_server(&server.uri, &id);
    assert_eq!(run["info"]["status"], "FINISHED", "{run}");
    assert_has_every_epoch(&points, &events);
    let params = run["data"]["params"].as_array().unwrap();
    assert!(
        params
            .iter()
            .any(|p| p["key"] == "train.epochs" && p["value"] == "3"),
        "{params:?}"
    );
    let run_id = run["info"]["run_id"].as_str().unwrap();
    let listed = Client::new(&server.uri)
        .get(
            "/api/2.0/mlflow/artifacts/list",
            &[("run_id", run_id), ("path", "model")],
        )
        .unwrap();
    let files: Vec<&str> = listed["files"]
        .as_array()
        .unwrap_or_else(|| panic!("{listed}"))
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    for name in [
        "model/model.bpk",
        "model/experiment.toml",
        "model/preprocessing.json",
    ] {
        assert!(files.contains(&name), "{name} in {files:?}");
    }
}

#[test]
fn a_server_that_goes_away_mid_run_is_retried_and_loses_nothing() {
    let Some(python) = require_mlflow() else {
        return;
    };
    let dir = scratch("mlflow-away");
    let port = free_port();
    let mut server = Server::start(&python, &dir, port);
    let _guard = training_lock();
    let runs = scratch("mlflow-away-runs");
    // Long enough that it is still training when the server goes and comes back (it is
    // paused meanwhile, so the test decides when it goes on).
    let handle = start(digits_tracked(&server.uri, 40), &runs);
    let mut seen = wait_for(&handle.events, "epoch 1", |k| {
        matches!(k, EventKind::Epoch(_))
    });
    handle.commands.send(TrainCommand::Pause).unwrap();
    seen.extend(wait_for(&handle.events, "the pause", |k| {
        matches!(k, EventKind::Paused { .. })
    }));
    server.stop();
    handle.commands.send(TrainCommand::Resume).unwrap();
    seen.extend(wait_for(&handle.events, "the failure report", |k| {
        matches!(k, EventKind::Warning { message } if message.starts_with("mlflow") && message.contains("failed"))
    }));
    // Training went on without the server; held again while the server comes back.
    handle.commands.send(TrainCommand::Pause).unwrap();
    seen.extend(wait_for(&handle.events, "the second pause", |k| {
        matches!(k, EventKind::Paused { .. })
    }));
    let server = Server::start(&python, &dir, port);
    handle.commands.send(TrainCommand::Resume).unwrap();
    let (events, _, id) = drain(handle, seen);
    let Some(EventKind::Finished(end)) = events
        .iter()
        .rev()
        .map(|e| &e.kind)
        .find(|k| matches!(k, EventKind::Finished(_)))
    else {
        panic!("the run finished")
    };
    assert_eq!(end.outcome, Outcome::Completed);
    let warnings = mlflow_warnings(&events);
    assert!(
        warnings.iter().any(|w| w.contains("answers again")),
        "the return is reported: {warnings:?}"
    );
    let (run, points) = on_server(&server.uri, &id);
    assert_eq!(run["info"]["status"], "FINISHED");
    assert_has_every_epoch(&points, &events);
}

#[test]
fn what_never_reached_the_server_is_sent_again_from_the_log() {
    let Some(python) = require_mlflow() else {
        return;
    };
    let dir = scratch("mlflow-resend");
    let port = free_port();
    let uri = format!("http://127.0.0.1:{port}");
    let _guard = training_lock();
    let runs = scratch("mlflow-resend-runs");
    // No server at all while it trains: the run finishes and says how to send it later.
    let (events, _, id) = drain(start(digits_tracked(&uri, 3), &runs), Vec::new());
    assert!(events.iter().any(|e| matches!(&e.kind,
        EventKind::Finished(end) if end.outcome == Outcome::Completed)));
    let warnings = mlflow_warnings(&events);
    assert!(
        warnings
            .last()
            .is_some_and(|w| w.contains(&format!("kiln export {id} --mlflow {uri}"))),
        "{warnings:?}"
    );
    let server = Server::start(&python, &dir, port);
    let output = kiln_ok(&["export", &id, "--mlflow", &uri], &runs);
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("3 epoch(s) it lacked"), "{said}");
    let (run, points) = on_server(&server.uri, &id);
    assert_eq!(run["info"]["status"], "FINISHED");
    assert_has_every_epoch(&points, &events);
    // Sent again: nothing doubles.
    kiln_ok(&["export", &id, "--mlflow", &uri], &runs);
    assert_has_every_epoch(&on_server(&server.uri, &id).1, &events);
}
