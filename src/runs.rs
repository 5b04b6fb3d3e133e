//! Run directories: their layout and ids, the append-only event log writer, and its reader,
//! which tolerates a log cut off mid-line by a killed run.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use crate::protocol::Event;

pub const EVENTS_FILE: &str = "events.jsonl";
pub const EXPERIMENT_FILE: &str = "experiment.toml";
pub const CHECKPOINTS_DIR: &str = "checkpoints";

/// `runs/<run-id>/`, where the id is `<UTC yyyymmdd-HHMMSS>-<experiment name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    pub id: String,
    pub path: PathBuf,
}

impl RunDir {
    /// Creates a fresh run directory under `runs_dir` (made if missing). Two runs started in the
    /// same second get `-2`, `-3`, … suffixes rather than sharing a directory.
    pub fn create(runs_dir: &Path, experiment_name: &str) -> io::Result<RunDir> {
        std::fs::create_dir_all(runs_dir)?;
        let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
        let base = format!("{stamp}-{}", sanitise(experiment_name));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let id = if attempt == 1 {
                base.clone()
            } else {
                format!("{base}-{attempt}")
            };
            let path = runs_dir.join(&id);
            match std::fs::create_dir(&path) {
                Ok(()) => {
                    std::fs::create_dir(path.join(CHECKPOINTS_DIR))?;
                    return Ok(RunDir { id, path });
                }
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(err) => return Err(err),
            }
        }
    }

    pub fn events_path(&self) -> PathBuf {
        self.path.join(EVENTS_FILE)
    }

    pub fn experiment_path(&self) -> PathBuf {
        self.path.join(EXPERIMENT_FILE)
    }

    pub fn checkpoints_path(&self) -> PathBuf {
        self.path.join(CHECKPOINTS_DIR)
    }
}

/// Keeps letters, digits, `-`, `_` and `.`; anything else becomes `-`.
pub fn sanitise(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = cleaned.trim_matches(|c| c == '-' || c == '.');
    if trimmed.is_empty() {
        "run".to_string()
    } else {
        trimmed.to_string()
    }
}

/// Appends events to `events.jsonl`, one JSON object per line, flushed as written.
pub struct EventLog {
    file: File,
}

impl EventLog {
    pub fn create(path: &Path) -> io::Result<EventLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(EventLog { file })
    }

    pub fn append(&mut self, event: &Event) -> io::Result<()> {
        let mut line = serde_json::to_vec(event).map_err(io::Error::other)?;
        line.push(b'\n');
        // One write per line: a reader or a crash sees whole lines or a torn last one.
        self.file.write_all(&line)?;
        self.file.flush()
    }
}

/// What a log held: the events that parsed, and how many lines did not.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogContents {
    pub events: Vec<Event>,
    /// Lines that were not events: a torn last line, or kinds from a newer kiln.
    pub skipped_lines: usize,
}

/// Reads an event log, skipping lines that do not parse instead of failing on them.
pub fn read_events(path: &Path) -> io::Result<LogContents> {
    let reader = BufReader::new(File::open(path)?);
    let mut contents = LogContents::default();
    for line in reader.split(b'\n') {
        let line = line?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Event>(&line) {
            Ok(event) => contents.events.push(event),
            Err(_) => contents.skipped_lines += 1,
        }
    }
    Ok(contents)
}
