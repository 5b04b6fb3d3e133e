//! The append-only event log (`events.jsonl`): its writer, and a reader that tolerates a log
//! cut off mid-line by a killed run and kinds written by a newer kiln.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;

use crate::protocol::Event;

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
    read(path, false)
}

/// Like [`read_events`] without the per-batch events, which summaries do not need and which
/// make up nearly all of a long log.
pub fn read_events_without_batches(path: &Path) -> io::Result<LogContents> {
    read(path, true)
}

fn read(path: &Path, skip_batches: bool) -> io::Result<LogContents> {
    const BATCH: &[u8] = br#""kind":"batch""#;
    let reader = BufReader::new(File::open(path)?);
    let mut contents = LogContents::default();
    for line in reader.split(b'\n') {
        let line = line?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if skip_batches && line.windows(BATCH.len()).any(|w| w == BATCH) {
            continue;
        }
        match serde_json::from_slice::<Event>(&line) {
            Ok(event) => contents.events.push(event),
            Err(_) => contents.skipped_lines += 1,
        }
    }
    Ok(contents)
}
