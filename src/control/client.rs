//! The viewer's side of the control socket (`kiln attach`): the history up to the moment of
//! connecting from the log, then live events and a command channel, shaped like an in-process
//! trainer so the live screen cannot tell the difference.

use std::io::{self, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, unbounded};

use super::{
    Endpoint, Line, MAX_EVENT_LINE, PROTOCOL_VERSION, Reply, SOCKET_FILE, probe, read_line,
};
use crate::protocol::{Command, Event, EventKind};
use crate::runs::{EVENTS_FILE, read_events_prefix};

/// How long a live run has to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error(
        "{run} is not running (nothing listens on its control socket); `kiln resume {run}` continues it"
    )]
    NotRunning { run: String },
    #[error(
        "{run} is not running: its process is gone and its stale control socket was removed; `kiln resume {run}` continues it"
    )]
    Stale { run: String },
    #[error(
        "{run} trains on {host}{}, whose control socket cannot be reached from here; attach \
         there, or through a bridge: {bridge}",
        slurm_job.as_ref().map(|j| format!(" (Slurm job {j})")).unwrap_or_default()
    )]
    Elsewhere {
        run: String,
        host: String,
        slurm_job: Option<String>,
        bridge: String,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: the run answered with {line:?} instead of a hello", path.display())]
    Protocol { path: PathBuf, line: String },
    #[error(
        "{run} speaks control protocol {theirs}, this kiln speaks {ours}: attach with the kiln \
         that trains it ({path})",
        path = path.display()
    )]
    Version {
        run: String,
        path: PathBuf,
        theirs: u32,
        ours: u32,
    },
}

/// The run's control socket, connected; a socket nobody answers is removed when its process
/// is gone.
fn connect(run: &Path) -> Result<UnixStream, AttachError> {
    let name = run
        .file_name()
        .map_or_else(|| run.display().to_string(), |n| n.to_string_lossy().into());
    let socket = run.join(SOCKET_FILE);
    // A socket on a shared filesystem made on another host never answers here: it is not
    // stale, and must not be removed.
    if let Some(placement) = crate::runs::trains_elsewhere(run) {
        let path = run.display();
        let bridge = match &placement.slurm_job {
            Some(job) => format!(
                "srun --jobid={} --overlap kiln attach --stdio {path}",
                job.split('_').next().unwrap_or(job)
            ),
            None => format!("ssh {} kiln attach --stdio {path}", placement.host),
        };
        return Err(AttachError::Elsewhere {
            run: name,
            host: placement.host,
            slurm_job: placement.slurm_job,
            bridge,
        });
    }
    UnixStream::connect(&socket).map_err(|_| match probe(run) {
        Endpoint::Stale if !crate::runs::pid_is_running(run) => {
            let _ = std::fs::remove_file(&socket);
            AttachError::Stale { run: name }
        }
        _ => AttachError::NotRunning { run: name },
    })
}

/// `kiln attach --stdio`: the run's control protocol relayed, byte for byte, between the
/// socket and `input` / `output`, so a viewer on another host reaches it through any pipe
/// (`ssh HOST kiln attach --stdio RUN`, `srun --jobid=J --overlap kiln attach --stdio RUN`).
/// Ends when the run closes the socket (it ended) or the viewer closes `input`.
pub fn relay(
    run: &Path,
    mut input: impl io::Read + Send + 'static,
    mut output: impl Write,
) -> Result<(), AttachError> {
    let stream = connect(run)?;
    let socket = run.join(SOCKET_FILE);
    let io_error = |source| AttachError::Io {
        path: socket.clone(),
        source,
    };
    let mut to_run = stream.try_clone().map_err(io_error)?;
    std::thread::spawn(move || {
        let _ = io::copy(&mut input, &mut to_run);
        // The viewer is gone: let the run close its side, which ends the copy below.
        let _ = to_run.shutdown(std::net::Shutdown::Both);
    });
    let mut from_run = stream;
    let mut buffer = [0u8; 8192];
    loop {
        match io::Read::read(&mut from_run, &mut buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                // Flushed at once: a viewer waits on each reply line.
                let written = output.write_all(&buffer[..n]).and_then(|()| output.flush());
                if written.is_err() {
                    // The viewer's side of the pipe closed: nothing more to relay.
                    return Ok(());
                }
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => return Err(io_error(source)),
        }
    }
}

/// A connection to a live run.
pub struct Attached {
    pub run_id: String,
    /// The process training the run.
    pub pid: u32,
    /// Every event before the live stream, from the run's log.
    pub history: Vec<Event>,
    /// Live events; disconnects when the run ends or its process dies.
    pub events: Receiver<Event>,
    pub commands: Sender<Command>,
}

/// Connects to the run in `run`, reads its history and starts the two socket threads.
pub fn attach(run: &Path) -> Result<Attached, AttachError> {
    let name = run
        .file_name()
        .map_or_else(|| run.display().to_string(), |n| n.to_string_lossy().into());
    let socket = run.join(SOCKET_FILE);
    let stream = connect(run)?;
    let io_error = |source| AttachError::Io {
        path: socket.clone(),
        source,
    };
    stream
        .set_read_timeout(Some(HELLO_TIMEOUT))
        .map_err(io_error)?;
    let mut reader = BufReader::new(stream.try_clone().map_err(io_error)?);
    let hello = match read_line(&mut reader, MAX_EVENT_LINE).map_err(io_error)? {
        Some(Line::Text(text)) => serde_json::from_slice::<Reply>(&text)
            .map_err(|_| String::from_utf8_lossy(&text).into_owned()),
        Some(Line::TooLong) => Err("an over-long line".into()),
        None => Err("nothing".into()),
    };
    let (run_id, pid, log_bytes) = match hello {
        // Another version may frame its events differently: refuse rather than misread them.
        Ok(Reply::Hello { protocol, .. }) if protocol != PROTOCOL_VERSION => {
            return Err(AttachError::Version {
                run: name,
                path: socket,
                theirs: protocol,
                ours: PROTOCOL_VERSION,
            });
        }
        Ok(Reply::Hello {
            run_id,
            pid,
            log_bytes,
            ..
        }) => (run_id, pid, log_bytes),
        Ok(other) => {
            return Err(AttachError::Protocol {
                path: socket,
                line: other.line().trim_end().to_string(),
            });
        }
        Err(line) => return Err(AttachError::Protocol { path: socket, line }),
    };
    stream.set_read_timeout(None).map_err(io_error)?;
    let log = run.join(EVENTS_FILE);
    let history = read_events_prefix(&log, log_bytes)
        .map_err(|source| AttachError::Io { path: log, source })?
        .events;

    let (event_tx, events) = unbounded();
    std::thread::Builder::new()
        .name("kiln-attach-in".into())
        .spawn(move || receive(reader, event_tx))
        .map_err(io_error)?;
    let (commands, command_rx) = unbounded::<Command>();
    let mut writer = stream;
    std::thread::Builder::new()
        .name("kiln-attach-out".into())
        .spawn(move || {
            for command in command_rx.iter() {
                let Ok(mut line) = serde_json::to_string(&command) else {
                    continue;
                };
                line.push('\n');
                if writer.write_all(line.as_bytes()).is_err() {
                    break;
                }
            }
        })
        .map_err(io_error)?;
    Ok(Attached {
        run_id,
        pid,
        history,
        events,
        commands,
    })
}

/// Events become events; a refused command becomes a warning the screen shows.
fn receive(mut reader: BufReader<UnixStream>, events: Sender<Event>) {
    while let Ok(Some(line)) = read_line(&mut reader, MAX_EVENT_LINE) {
        let Line::Text(text) = line else { continue };
        let event = if let Ok(event) = serde_json::from_slice::<Event>(&text) {
            event
        } else if let Ok(Reply::Error { message }) = serde_json::from_slice::<Reply>(&text) {
            Event::now(
                None,
                None,
                EventKind::Warning {
                    message: format!("the run refused a command: {message}"),
                },
            )
        } else {
            continue;
        };
        if events.send(event).is_err() {
            break;
        }
    }
}
