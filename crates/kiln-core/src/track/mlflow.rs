//! An MLflow tracking server, through its REST API: the client calls, and the [`Tracker`] that
//! sends a training run's updates from a thread of its own. Training never waits on the
//! server: updates queue while it is down or gone, are retried, and the trouble is reported
//! once; what was never sent can be sent again from the run's log ([`resend`]).

use std::collections::{BTreeSet, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};
use serde_json::{Value, json};

use super::{Translator, Update};
use crate::protocol::Event;

/// The tag that ties an MLflow run to the kiln run it records.
pub const RUN_ID_TAG: &str = "kiln.run_id";

/// How long one call may take before it counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait between tries while the server does not answer.
const RETRY_EVERY: Duration = Duration::from_secs(2);
/// How long a finished run waits for its last updates to get through.
const FINISH_LIMIT: Duration = Duration::from_secs(15);
/// MLflow's limits per `log-batch` call.
const MAX_PARAMS: usize = 100;
const MAX_PARAM_LENGTH: usize = 6000;

/// A call that failed: the server's answer or why there was none.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct CallError(pub String);

/// MLflow's REST API at `base` (`http://host:5000`).
pub struct Client {
    base: String,
    agent: ureq::Agent,
}

impl Client {
    pub fn new(uri: &str) -> Self {
        Self {
            base: uri.trim_end_matches('/').to_string(),
            agent: ureq::AgentBuilder::new().timeout(CALL_TIMEOUT).build(),
        }
    }

    pub fn uri(&self) -> &str {
        &self.base
    }

    fn answer(result: Result<ureq::Response, ureq::Error>) -> Result<Value, CallError> {
        match result {
            // Some calls answer with an empty body: nothing to read, and no failure.
            Ok(response) => Ok(response.into_json::<Value>().unwrap_or(Value::Null)),
            Err(ureq::Error::Status(code, response)) => {
                let body = response.into_string().unwrap_or_default();
                Err(CallError(format!("HTTP {code}: {}", body.trim())))
            }
            Err(err) => Err(CallError(err.to_string())),
        }
    }

    pub fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, CallError> {
        let mut request = self.agent.get(&format!("{}{path}", self.base));
        for (key, value) in query {
            request = request.query(key, value);
        }
        Self::answer(request.call())
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<Value, CallError> {
        Self::answer(
            self.agent
                .post(&format!("{}{path}", self.base))
                .send_json(body.clone()),
        )
    }

    /// The id of the experiment `name`, created when missing.
    pub fn experiment_id(&self, name: &str) -> Result<String, CallError> {
        match self.get(
            "/api/2.0/mlflow/experiments/get-by-name",
            &[("experiment_name", name)],
        ) {
            Ok(found) => string_at(&found, &["experiment", "experiment_id"]),
            Err(CallError(message)) if message.contains("RESOURCE_DOES_NOT_EXIST") => {
                let made = self.post(
                    "/api/2.0/mlflow/experiments/create",
                    &json!({ "name": name }),
                )?;
                string_at(&made, &["experiment_id"])
            }
            Err(err) => Err(err),
        }
    }

    /// The MLflow run that records kiln's run `kiln_run`, if there is one.
    pub fn find_run(&self, experiment: &str, kiln_run: &str) -> Result<Option<String>, CallError> {
        let found = self.post(
            "/api/2.0/mlflow/runs/search",
            &json!({
                "experiment_ids": [experiment],
                "filter": format!("tags.\"{RUN_ID_TAG}\" = '{kiln_run}'"),
                "max_results": 1,
            }),
        )?;
        Ok(found["runs"][0]["info"]["run_id"]
            .as_str()
            .map(str::to_string))
    }

    /// Creates the MLflow run for kiln's run `kiln_run`; returns its id.
    pub fn create_run(
        &self,
        experiment: &str,
        kiln_run: &str,
        started_ms: i64,
    ) -> Result<String, CallError> {
        let made = self.post(
            "/api/2.0/mlflow/runs/create",
            &json!({
                "experiment_id": experiment,
                "run_name": kiln_run,
                "start_time": started_ms,
                "tags": [{ "key": RUN_ID_TAG, "value": kiln_run }],
            }),
        )?;
        string_at(&made, &["run", "info", "run_id"])
    }

    /// The steps at which `key` has been logged for `run`.
    pub fn logged_steps(&self, run: &str, key: &str) -> Result<BTreeSet<i64>, CallError> {
        let history = self.get(
            "/api/2.0/mlflow/metrics/get-history",
            &[("run_id", run), ("metric_key", key)],
        )?;
        Ok(history["metrics"]
            .as_array()
            .map(|points| {
                points
                    .iter()
                    .filter_map(|p| {
                        p["step"]
                            .as_i64()
                            .or_else(|| p["step"].as_str()?.parse().ok())
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    pub fn log_params(&self, run: &str, params: &[(String, String)]) -> Result<(), CallError> {
        for chunk in params.chunks(MAX_PARAMS) {
            let params: Vec<Value> = chunk
                .iter()
                .map(|(k, v)| {
                    let value: String = v.chars().take(MAX_PARAM_LENGTH).collect();
                    json!({ "key": k, "value": value })
                })
                .collect();
            self.post(
                "/api/2.0/mlflow/runs/log-batch",
                &json!({ "run_id": run, "params": params }),
            )?;
        }
        Ok(())
    }

    pub fn log_metrics(
        &self,
        run: &str,
        step: i64,
        time_ms: i64,
        metrics: &[(String, f64)],
    ) -> Result<(), CallError> {
        let metrics: Vec<Value> = metrics
            .iter()
            .map(|(k, v)| json!({ "key": k, "value": v, "timestamp": time_ms, "step": step }))
            .collect();
        self.post(
            "/api/2.0/mlflow/runs/log-batch",
            &json!({ "run_id": run, "metrics": metrics }),
        )
        .map(|_| ())
    }

    pub fn set_status(
        &self,
        run: &str,
        status: &str,
        end_ms: Option<i64>,
    ) -> Result<(), CallError> {
        let mut body = json!({ "run_id": run, "status": status });
        if let Some(end) = end_ms {
            body["end_time"] = json!(end);
        }
        self.post("/api/2.0/mlflow/runs/update", &body).map(|_| ())
    }

    /// Uploads `file` as the run's artifact `name`, through the server's artifact proxy.
    pub fn upload(
        &self,
        experiment: &str,
        run: &str,
        name: &str,
        file: &Path,
    ) -> Result<(), CallError> {
        let bytes =
            std::fs::read(file).map_err(|e| CallError(format!("{}: {e}", file.display())))?;
        let url = format!(
            "{}/api/2.0/mlflow-artifacts/artifacts/{experiment}/{run}/artifacts/{name}",
            self.base
        );
        Self::answer(self.agent.put(&url).send_bytes(&bytes)).map(|_| ())
    }
}

fn string_at(value: &Value, path: &[&str]) -> Result<String, CallError> {
    let mut at = value;
    for key in path {
        at = &at[*key];
    }
    at.as_str()
        .map(str::to_string)
        .ok_or_else(|| CallError(format!("unexpected answer: {value}")))
}

/// Where updates go: the server, the experiment's name there, and kiln's run id.
#[derive(Debug, Clone)]
pub struct Destination {
    pub uri: String,
    pub experiment: String,
    pub kiln_run: String,
}

/// The MLflow run being written to, once found or created.
struct Session {
    client: Client,
    destination: Destination,
    ids: Option<(String, String)>,
}

impl Session {
    fn new(destination: Destination) -> Self {
        Self {
            client: Client::new(&destination.uri),
            destination,
            ids: None,
        }
    }

    /// (experiment id, run id); found or created on first use.
    fn ids(&mut self, started_ms: i64) -> Result<(String, String), CallError> {
        if let Some(ids) = &self.ids {
            return Ok(ids.clone());
        }
        let d = &self.destination;
        let experiment = self.client.experiment_id(&d.experiment)?;
        let run = match self.client.find_run(&experiment, &d.kiln_run)? {
            Some(run) => run,
            None => self
                .client
                .create_run(&experiment, &d.kiln_run, started_ms)?,
        };
        self.ids = Some((experiment, run));
        Ok(self.ids.clone().unwrap_or_default())
    }

    /// Sends one update; `skip` holds the epochs the server has already.
    fn send(&mut self, update: &Update, skip: &BTreeSet<i64>) -> Result<(), CallError> {
        match update {
            Update::Start { started_ms, params } => {
                let (_, run) = self.ids(*started_ms)?;
                self.client.log_params(&run, params)?;
                self.client.set_status(&run, "RUNNING", None)
            }
            Update::Epoch { epoch, .. } if skip.contains(epoch) => Ok(()),
            Update::Epoch {
                epoch,
                time_ms,
                metrics,
            } => {
                let (_, run) = self.ids(*time_ms)?;
                self.client.log_metrics(&run, *epoch, *time_ms, metrics)
            }
            Update::End { status, time_ms } => {
                let (_, run) = self.ids(*time_ms)?;
                self.client.set_status(&run, status, Some(*time_ms))
            }
            Update::Artifacts(files) => {
                let (experiment, run) = self.ids(0)?;
                for (name, file) in files {
                    self.client.upload(&experiment, &run, name, file)?;
                }
                Ok(())
            }
        }
    }
}

/// Sends a training run's updates to an MLflow server from a thread of its own (a [`Tap`] on
/// the trainer's events).
///
/// [`Tap`]: crate::tap::Tap
pub struct Tracker {
    translator: Translator,
    updates: Option<Sender<Update>>,
    reports: Receiver<String>,
    /// Set when the run has ended and its time to finish is up: the thread stops retrying.
    give_up: Arc<AtomicBool>,
    /// The updates still to send: counted by the thread, read when giving up.
    unsent: Arc<std::sync::atomic::AtomicUsize>,
    thread: Option<JoinHandle<()>>,
    destination: Destination,
}

impl Tracker {
    pub fn start(
        destination: Destination,
        run_dir: &Path,
        params: Vec<(String, String)>,
    ) -> std::io::Result<Self> {
        let (updates, queue) = unbounded::<Update>();
        let (report, reports) = unbounded();
        let give_up = Arc::new(AtomicBool::new(false));
        let unsent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let worker = Worker {
            session: Session::new(destination.clone()),
            queue,
            report,
            give_up: give_up.clone(),
            unsent: unsent.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("kiln-mlflow".into())
            .spawn(move || worker.run())?;
        Ok(Self {
            translator: Translator::new(run_dir, params),
            updates: Some(updates),
            reports,
            give_up,
            unsent,
            thread: Some(thread),
            destination,
        })
    }
}

impl crate::tap::Tap for Tracker {
    fn observe(&mut self, event: &Event) -> Vec<String> {
        if let Some(updates) = &self.updates {
            for update in self.translator.updates(event) {
                self.unsent.fetch_add(1, Ordering::SeqCst);
                let _ = updates.send(update);
            }
        }
        self.reports.try_iter().collect()
    }

    fn finish(mut self: Box<Self>) -> Vec<String> {
        drop(self.updates.take());
        let deadline = Instant::now() + FINISH_LIMIT;
        while self.unsent.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.give_up.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let mut reports: Vec<String> = self.reports.try_iter().collect();
        let unsent = self.unsent.load(Ordering::SeqCst);
        if unsent > 0 {
            reports.push(format!(
                "mlflow: {unsent} update(s) of this run did not reach {}; the run's log has them: \
                 kiln export {} --mlflow {} sends them",
                self.destination.uri, self.destination.kiln_run, self.destination.uri
            ));
        }
        reports
    }
}

/// The tracking thread: sends updates in order, holding the first that fails and trying it
/// again until it goes through (or the run's time to finish is up).
struct Worker {
    session: Session,
    queue: Receiver<Update>,
    report: Sender<String>,
    give_up: Arc<AtomicBool>,
    unsent: Arc<std::sync::atomic::AtomicUsize>,
}

impl Worker {
    fn run(mut self) {
        let mut waiting: VecDeque<Update> = VecDeque::new();
        let mut down_since: Option<Instant> = None;
        let none = BTreeSet::new();
        loop {
            if self.give_up.load(Ordering::SeqCst) {
                return;
            }
            if waiting.is_empty() {
                match self.queue.recv_timeout(Duration::from_millis(100)) {
                    Ok(update) => waiting.push_back(update),
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
                }
            }
            waiting.extend(self.queue.try_iter());
            let Some(update) = waiting.front() else {
                continue;
            };
            match self.session.send(update, &none) {
                Ok(()) => {
                    waiting.pop_front();
                    self.unsent.fetch_sub(1, Ordering::SeqCst);
                    if let Some(since) = down_since.take() {
                        let _ = self.report.send(format!(
                            "mlflow: {} answers again after {:.0} s; the updates held meanwhile \
                             are going through",
                            self.session.destination.uri,
                            since.elapsed().as_secs_f64()
                        ));
                    }
                }
                Err(err) => {
                    if down_since.is_none() {
                        down_since = Some(Instant::now());
                        let _ = self.report.send(format!(
                            "mlflow: {} failed ({err}); training goes on, updates wait and are \
                             retried every {} s",
                            self.session.destination.uri,
                            RETRY_EVERY.as_secs()
                        ));
                    }
                    // Asleep in short steps, so a run that ends is not held up by a whole wait.
                    let until = Instant::now() + RETRY_EVERY;
                    while Instant::now() < until && !self.give_up.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            }
        }
    }
}

/// Sends a run again from its log: parameters, the epochs the server does not have yet, the
/// status and the model. Returns how many epochs were sent.
pub fn resend(
    destination: Destination,
    run_dir: &Path,
    params: Vec<(String, String)>,
    events: &[Event],
) -> Result<usize, CallError> {
    let mut session = Session::new(destination);
    let mut translator = Translator::new(run_dir, params);
    let updates: Vec<Update> = events.iter().flat_map(|e| translator.updates(e)).collect();
    let started = updates
        .iter()
        .find_map(|u| match u {
            Update::Start { started_ms, .. } => Some(*started_ms),
            _ => None,
        })
        .unwrap_or(0);
    let (_, run) = session.ids(started)?;
    let have = session.client.logged_steps(&run, "val_accuracy")?;
    let mut sent = 0;
    for update in &updates {
        session.send(update, &have)?;
        if matches!(update, Update::Epoch { epoch, .. } if !have.contains(epoch)) {
            sent += 1;
        }
    }
    Ok(sent)
}
