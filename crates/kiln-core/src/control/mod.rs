//! The run's control endpoint: a Unix socket in the run directory through which other kiln
//! processes (`kiln attach`) watch a run's events and send it the same [`Command`]s as the
//! in-process front end.
//!
//! The protocol is one JSON object per line. The server opens with a [`Reply::Hello`] naming how
//! many bytes of `events.jsonl` precede the live stream, then sends every event as its log line.
//! A client sends commands (`{"command":"pause"}`, `{"command":"set_dropout","value":0.5}`) and
//! gets [`Reply::Accepted`] or [`Reply::Error`] for each; the events that follow show the effect.

pub mod client;
pub mod server;

use std::io::{self, BufRead};

use serde::{Deserialize, Serialize};

use crate::protocol::Command;
// The socket is a file of the run directory: the run store owns its name and whether it answers.
pub use crate::runs::{Endpoint, SOCKET_FILE, probe};

/// Longest command line the server accepts; commands are tens of bytes.
pub const MAX_LINE: usize = 4096;
/// Longest event line a viewer accepts (a run start lists every class name).
pub const MAX_EVENT_LINE: usize = 1 << 20;
pub const PROTOCOL_VERSION: u32 = 1;

/// What the server says besides events (`reply` in the JSON line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// First line on every connection.
    Hello {
        protocol: u32,
        run_id: String,
        pid: u32,
        /// Bytes of `events.jsonl` written before the first event this connection receives.
        log_bytes: u64,
    },
    /// The command was queued for the trainer.
    Accepted,
    /// The line was not a command; nothing changed.
    Error { message: String },
}

impl Reply {
    pub fn line(&self) -> String {
        let mut line = serde_json::to_string(self).unwrap_or_default();
        line.push('\n');
        line
    }
}

/// A command line from a client, or why it is not one (a value out of range included: the
/// client hears it at once rather than as a warning from the trainer later).
pub fn parse_command(line: &[u8]) -> Result<Command, String> {
    let text = std::str::from_utf8(line).map_err(|_| "the line is not UTF-8 text".to_string())?;
    let command: Command = serde_json::from_str(text.trim()).map_err(|err| {
        format!(
            "not a command ({err}); expected one JSON object per line such as \
             {{\"command\":\"pause\"}} or {{\"command\":\"set_dropout\",\"value\":0.5}}"
        )
    })?;
    command.check()?;
    Ok(command)
}

/// One line read with a length limit.
#[derive(Debug, PartialEq)]
pub enum Line {
    Text(Vec<u8>),
    /// Longer than the limit; the rest of it was read and dropped.
    TooLong,
}

/// Reads the next line (without its newline), never holding more than `max` bytes; `None` at
/// the end of the stream.
pub fn read_line(reader: &mut impl BufRead, max: usize) -> io::Result<Option<Line>> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(match (too_long, line.is_empty()) {
                (true, _) => Some(Line::TooLong),
                (false, true) => None,
                (false, false) => Some(Line::Text(line)),
            });
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(end) => (&available[..end], Some(end + 1)),
            None => (available, None),
        };
        if !too_long {
            if line.len() + chunk.len() > max {
                too_long = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let used = done.unwrap_or(available.len());
        reader.consume(used);
        if done.is_some() {
            return Ok(Some(if too_long {
                Line::TooLong
            } else {
                Line::Text(line)
            }));
        }
    }
}
