//! The append-only event log (`events.jsonl`): its writer, and a reader that tolerates a log
//! cut off mid-line by a killed run and kinds written by a newer kiln.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;

use crate::protocol::Event;

/// Appends events to `events.jsonl`, one JSON object per line, flushed as written.
pub struct EventLog {
    file: File,
    /// The log's length: where the next line starts.
    bytes: u64,
}

impl EventLog {
    /// Opens the log for appending (a resumed run continues its log). A last line torn by a
    /// killed process is closed with a newline first, so it stays one unreadable line instead
    /// of swallowing the next event.
    pub fn create(path: &Path) -> io::Result<EventLog> {
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)?;
        let mut bytes = file.metadata()?.len();
        if bytes > 0 {
            use std::io::{Seek, SeekFrom};
            let mut last = [0u8; 1];
            file.seek(SeekFrom::Start(bytes - 1))?;
            file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                file.write_all(b"\n")?;
                bytes += 1;
            }
        }
        Ok(EventLog { file, bytes })
    }

    pub fn append(&mut self, event: &Event) -> io::Result<()> {
        let mut line = serde_json::to_string(event).map_err(io::Error::other)?;
        line.push('\n');
        self.append_line(&line)
    }

    /// Appends one serialised event line (ending in a newline).
    pub fn append_line(&mut self, line: &str) -> io::Result<()> {
        // One write per line: a reader or a crash sees whole lines or a torn last one.
        self.file.write_all(line.as_bytes())?;
        self.file.flush()?;
        self.bytes += line.len() as u64;
        Ok(())
    }

    /// The log's length after the last successful append.
    pub fn bytes(&self) -> u64 {
        self.bytes
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

/// The events in the first `bytes` bytes of a log: what a live run had written when a viewer
/// attached (the rest reaches the viewer through the control socket).
pub fn read_events_prefix(path: &Path, bytes: u64) -> io::Result<LogContents> {
    read_from(BufReader::new(File::open(path)?.take(bytes)), false)
}

/// The events after the first `bytes` bytes of a log: what a live run wrote once a viewer had
/// attached.
pub fn read_events_after(path: &Path, bytes: u64) -> io::Result<LogContents> {
    use std::io::{Seek, SeekFrom};
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(bytes))?;
    read_from(BufReader::new(file), false)
}

fn read(path: &Path, skip_batches: bool) -> io::Result<LogContents> {
    read_from(BufReader::new(File::open(path)?), skip_batches)
}

fn read_from(reader: impl BufRead, skip_batches: bool) -> io::Result<LogContents> {
    const BATCH: &[u8] = br#""kind":"batch""#;
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
