//! Where the trainer's events go: appended to the run's log first, then sent to the in-process
//! front end and to every viewer attached through the control socket, and to the notify
//! command when one is set. A front end that has gone away is not an error: the run carries on
//! and keeps logging.

use std::collections::VecDeque;
use std::sync::Arc;

use crossbeam_channel::Sender;

use kiln_core::tap::Tap;

use crate::control::server::Hub;
use crate::protocol::{Event, EventKind};
use crate::runs::EventLog;

pub struct EventSink {
    log: EventLog,
    channel: Sender<Event>,
    hub: Arc<Hub>,
    /// Lines the log could not take yet, oldest first; written before any newer line.
    pending: VecDeque<String>,
    /// A write failure the trainer has not been told about.
    failure: Option<String>,
    /// Followers of the events besides the log and the front ends.
    taps: Vec<Box<dyn Tap>>,
}

impl EventSink {
    pub fn new(log: EventLog, channel: Sender<Event>, hub: Arc<Hub>) -> Self {
        Self {
            log,
            channel,
            hub,
            pending: VecDeque::new(),
            failure: None,
            taps: Vec::new(),
        }
    }

    /// Hands every event from now on to `tap` too.
    pub fn add_tap(&mut self, tap: Box<dyn Tap>) {
        self.taps.push(tap);
    }

    pub fn emit(&mut self, epoch: Option<usize>, step: Option<u64>, kind: EventKind) {
        let event = kiln_core::here::event(epoch, step, kind);
        self.record(&event);
        let problems: Vec<String> = self
            .taps
            .iter_mut()
            .flat_map(|tap| tap.observe(&event))
            .collect();
        let _ = self.channel.send(event);
        // Logged, not handed to the taps again: a tap's trouble is no news for the others.
        for message in problems {
            self.publish(kiln_core::here::event(
                epoch,
                step,
                EventKind::Warning { message },
            ));
        }
    }

    /// Lets each tap finish its last work (each within its own time limit) and logs what went
    /// wrong: after the run's final event, since they follow it.
    pub fn finish_taps(&mut self) {
        for tap in std::mem::take(&mut self.taps) {
            for message in tap.finish() {
                self.publish(kiln_core::here::event(
                    None,
                    None,
                    EventKind::Warning { message },
                ));
            }
        }
    }

    /// Appends `event` to the log and hands it to the viewers and the front end.
    fn publish(&mut self, event: Event) {
        self.record(&event);
        let _ = self.channel.send(event);
    }

    /// Appends `event` to the log and hands it to the viewers attached through the socket.
    fn record(&mut self, event: &Event) {
        let mut line = serde_json::to_string(event).unwrap_or_default();
        line.push('\n');
        let line: Arc<str> = Arc::from(line);
        if self.pending.is_empty() {
            if let Err(err) = self.log.append_line(&line) {
                // Kept to write later: the trainer pauses at the next batch boundary.
                self.failure = Some(format!("cannot write the event log: {err}"));
                self.pending.push_back(line.to_string());
            }
        } else {
            self.pending.push_back(line.to_string());
        }
        // After the append: a viewer attaching now reads this line from the file or gets it
        // here, never neither.
        self.hub.publish(&line, self.log.bytes());
    }

    /// A write failure since the last call, for the trainer to pause on.
    pub fn take_failure(&mut self) -> Option<String> {
        self.failure.take()
    }

    /// Writes the lines the log could not take before; stops at the first that still fails.
    pub fn retry(&mut self) -> Result<(), String> {
        while let Some(line) = self.pending.front() {
            self.log
                .append_line(line)
                .map_err(|err| format!("cannot write the event log: {err}"))?;
            self.pending.pop_front();
        }
        Ok(())
    }
}
