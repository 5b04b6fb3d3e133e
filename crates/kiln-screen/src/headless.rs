//! Plain-text progress for logs and pipes: one line per epoch and per notable event, no control
//! characters, and a closing summary naming the run directory.

use std::io::Write;

use crate::monitor::RunEnd;
use crate::monitor::words::{Context, Detail, words};
use crate::protocol::{Event, EventKind};

/// Turns events into lines; remembers what later lines need (total epochs).
#[derive(Debug, Default)]
pub struct LineFormatter {
    epochs: usize,
    run_dir: String,
    /// The diagnosis last reported: one is printed only when its problems change.
    findings: Vec<crate::protocol::Finding>,
}

impl LineFormatter {
    pub fn new(run_dir: impl Into<String>) -> Self {
        Self {
            epochs: 0,
            run_dir: run_dir.into(),
            findings: Vec::new(),
        }
    }

    /// The line for an event, if it deserves one (batch progress does not); its words are
    /// [`words`]'s, in full.
    pub fn line(&mut self, event: &Event) -> Option<String> {
        let lines = words(
            event,
            Detail::Line,
            &Context {
                total_epochs: self.epochs,
                run_dir: &self.run_dir,
                parent: None,
                findings: &self.findings,
            },
        );
        match &event.kind {
            EventKind::RunStarted(start) => self.epochs = start.epochs,
            EventKind::Diagnosis { findings } => self.findings = findings.clone(),
            _ => {}
        }
        let text: Vec<String> = lines.into_iter().map(|said| said.text).collect();
        (!text.is_empty()).then(|| text.join("\n"))
    }
}

/// Prints events as lines until the run ends. A closed output (e.g. `| head`) stops printing
/// but not the waiting: the run still ends properly.
pub fn follow(
    events: &crossbeam_channel::Receiver<Event>,
    formatter: &mut LineFormatter,
    out: &mut impl Write,
) -> RunEnd {
    let mut printing = true;
    for event in events.iter() {
        if printing && let Some(line) = formatter.line(&event) {
            printing = writeln!(out, "{line}").and_then(|_| out.flush()).is_ok();
        }
        match event.kind {
            EventKind::Finished(_) => return RunEnd::Finished,
            EventKind::Failed { .. } => return RunEnd::Failed,
            _ => {}
        }
    }
    RunEnd::Lost
}
