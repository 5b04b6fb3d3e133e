//! Where the trainer's events go: appended to the run's log first, then sent to the front end.
//! A front end that has gone away is not an error: the run carries on and keeps logging.

use crossbeam_channel::Sender;

use crate::protocol::{Event, EventKind};
use crate::runs::EventLog;

pub struct EventSink {
    log: EventLog,
    channel: Sender<Event>,
    log_failed: bool,
}

impl EventSink {
    pub fn new(log: EventLog, channel: Sender<Event>) -> Self {
        Self {
            log,
            channel,
            log_failed: false,
        }
    }

    pub fn emit(&mut self, epoch: Option<usize>, step: Option<u64>, kind: EventKind) {
        let event = Event::now(epoch, step, kind);
        if let Err(err) = self.log.append(&event) {
            // Say it once on screen; repeating it for every batch would bury everything else.
            if !self.log_failed {
                self.log_failed = true;
                let warning = Event::now(
                    epoch,
                    step,
                    EventKind::Warning {
                        message: format!("cannot write the event log: {err}"),
                    },
                );
                let _ = self.channel.send(warning);
            }
        }
        let _ = self.channel.send(event);
    }
}
