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
use crate::runs::{EVENTS_FILE, read_events_after, read_events_prefix};

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
    #[error(
        "{run} trains on {host}{}; the bridge to it ({bridge}) failed: {message}",
        slurm_job.as_ref().map(|j| format!(" (Slurm job {j})")).unwrap_or_default()
    )]
    Bridge {
        run: String,
        host: String,
        slurm_job: Option<String>,
        bridge: String,
        message: String,
    },
    #[error("the bridge said: {said}")]
    BridgeSaid { said: String },
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

/// Connects to the run in `run`, reads its history and starts the two socket threads. A run
/// a Slurm job trains on another node is reached through the bridge its job allows
/// (`srun --jobid=J --overlap kiln attach --stdio RUN`), when `srun` is here to run it.
pub fn attach(run: &Path) -> Result<Attached, AttachError> {
    let socket = run.join(SOCKET_FILE);
    let stream = match connect(run) {
        Ok(stream) => stream,
        Err(AttachError::Elsewhere {
            run: name,
            host,
            slurm_job: Some(job),
            bridge,
        }) if on_path("srun") => {
            let kiln = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("kiln"));
            return attach_via(run, srun_bridge(&kiln, &job, run)).map_err(|err| {
                AttachError::Bridge {
                    run: name,
                    host,
                    slurm_job: Some(job),
                    bridge,
                    message: err.to_string(),
                }
            });
        }
        Err(err) => return Err(err),
    };
    let io_error = |source| AttachError::Io {
        path: socket.clone(),
        source,
    };
    stream
        .set_read_timeout(Some(HELLO_TIMEOUT))
        .map_err(io_error)?;
    let reader = BufReader::new(stream.try_clone().map_err(io_error)?);
    let (reader, hello) = read_hello(reader, run)?;
    stream.set_read_timeout(None).map_err(io_error)?;
    start(run, reader, stream, hello)
}

/// The bridge to a run in Slurm job `job` (`JOB` or `JOB_TASK`): a step of that job that
/// shares its allocation and relays the run's socket over stdin/stdout.
pub fn srun_bridge(kiln: &Path, job: &str, run: &Path) -> std::process::Command {
    let mut command = std::process::Command::new("srun");
    command
        .arg(format!("--jobid={}", job.split('_').next().unwrap_or(job)))
        .args(["--overlap", "--quiet"])
        .arg(kiln)
        .args(["attach", "--stdio"])
        .arg(run);
    command
}

/// Attaches through a bridge: `bridge` runs `kiln attach --stdio RUN` where the run's socket
/// is reachable and speaks its protocol on its standard input and output.
pub fn attach_via(run: &Path, mut bridge: std::process::Command) -> Result<Attached, AttachError> {
    use std::process::Stdio;
    let program = PathBuf::from(bridge.get_program());
    let io_error = |source| AttachError::Io {
        path: program.clone(),
        source,
    };
    let mut child = bridge
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io_error)?;
    let (Some(input), Some(output), Some(mut errors)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(io_error(io::Error::other("the bridge has no pipes")));
    };
    match read_hello(BufReader::new(output), run) {
        Ok((reader, hello)) => {
            // Reaped when it ends (the run ended, or the viewer closed its input).
            std::thread::spawn(move || child.wait());
            start(run, reader, input, hello)
        }
        Err(err) => {
            let _ = child.kill();
            let _ = child.wait();
            let mut said = String::new();
            let _ = io::Read::read_to_string(&mut errors, &mut said);
            // What the bridge printed says more than its silence on the protocol.
            Err(match said.trim() {
                "" => err,
                said => AttachError::BridgeSaid {
                    said: said.to_string(),
                },
            })
        }
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// What a run's hello says: its id, process and how much of its log precedes the live lines.
struct Hello {
    run_id: String,
    pid: u32,
    log_bytes: u64,
}

/// Reads the hello line a run greets a viewer with, refusing another protocol version.
fn read_hello<R: io::Read>(
    mut reader: BufReader<R>,
    run: &Path,
) -> Result<(BufReader<R>, Hello), AttachError> {
    let name = run
        .file_name()
        .map_or_else(|| run.display().to_string(), |n| n.to_string_lossy().into());
    let socket = run.join(SOCKET_FILE);
    let hello = match read_line(&mut reader, MAX_EVENT_LINE).map_err(|source| AttachError::Io {
        path: socket.clone(),
        source,
    })? {
        Some(Line::Text(text)) => serde_json::from_slice::<Reply>(&text)
            .map_err(|_| String::from_utf8_lossy(&text).into_owned()),
        Some(Line::TooLong) => Err("an over-long line".into()),
        None => Err("nothing".into()),
    };
    match hello {
        // Another version may frame its events differently: refuse rather than misread them.
        Ok(Reply::Hello { protocol, .. }) if protocol != PROTOCOL_VERSION => {
            Err(AttachError::Version {
                run: name,
                path: socket,
                theirs: protocol,
                ours: PROTOCOL_VERSION,
            })
        }
        Ok(Reply::Hello {
            run_id,
            pid,
            log_bytes,
            ..
        }) => Ok((
            reader,
            Hello {
                run_id,
                pid,
                log_bytes,
            },
        )),
        Ok(other) => Err(AttachError::Protocol {
            path: socket,
            line: other.line().trim_end().to_string(),
        }),
        Err(line) => Err(AttachError::Protocol { path: socket, line }),
    }
}

/// The history up to the hello from the log, then the two threads: events in, commands out.
fn start<R, W>(
    run: &Path,
    reader: BufReader<R>,
    mut writer: W,
    hello: Hello,
) -> Result<Attached, AttachError>
where
    R: io::Read + Send + 'static,
    W: Write + Send + 'static,
{
    let log = run.join(EVENTS_FILE);
    let history = read_events_prefix(&log, hello.log_bytes)
        .map_err(|source| AttachError::Io {
            path: log.clone(),
            source,
        })?
        .events;
    let thread_error = |source| AttachError::Io {
        path: run.join(SOCKET_FILE),
        source,
    };
    let (event_tx, events) = unbounded();
    std::thread::Builder::new()
        .name("kiln-attach-in".into())
        .spawn({
            let (log, log_bytes) = (log.clone(), hello.log_bytes);
            move || {
                if let StreamEnd::Closed { last } = receive(reader, &event_tx) {
                    forward_unsent_tail(&log, log_bytes, last.as_deref(), &event_tx);
                }
            }
        })
        .map_err(thread_error)?;
    let (commands, command_rx) = unbounded::<Command>();
    std::thread::Builder::new()
        .name("kiln-attach-out".into())
        .spawn(move || {
            for command in command_rx.iter() {
                let Ok(mut line) = serde_json::to_string(&command) else {
                    continue;
                };
                line.push('\n');
                if writer
                    .write_all(line.as_bytes())
                    .and_then(|()| writer.flush())
                    .is_err()
                {
                    break;
                }
            }
        })
        .map_err(thread_error)?;
    Ok(Attached {
        run_id: hello.run_id,
        pid: hello.pid,
        history,
        events,
        commands,
    })
}

/// How the live stream of events stopped.
enum StreamEnd {
    /// The run's side closed it; `last` is the last event it carried.
    Closed { last: Option<Box<Event>> },
    /// The viewer stopped listening.
    ViewerGone,
}

/// Events become events; a refused command becomes a warning the screen shows.
fn receive(mut reader: BufReader<impl io::Read>, events: &Sender<Event>) -> StreamEnd {
    let mut last = None;
    while let Ok(Some(line)) = read_line(&mut reader, MAX_EVENT_LINE) {
        let Line::Text(text) = line else { continue };
        let event = if let Ok(event) = serde_json::from_slice::<Event>(&text) {
            last = Some(Box::new(event.clone()));
            event
        } else if let Ok(Reply::Error { message }) = serde_json::from_slice::<Reply>(&text) {
            crate::here::event(
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
            return StreamEnd::ViewerGone;
        }
    }
    StreamEnd::Closed { last }
}

/// A bridge can close before the run's last events cross it (Slurm ends a job's steps when its
/// main task exits, final event and all): those events are in the log, which the viewer reads
/// from where the live stream started. Forwards what the log holds after `last`.
fn forward_unsent_tail(log: &Path, log_bytes: u64, last: Option<&Event>, events: &Sender<Event>) {
    // The stream carried the run's last word: nothing follows it, so the log need not be read.
    if last.is_some_and(|e| matches!(e.kind, EventKind::Finished(_) | EventKind::Failed { .. })) {
        return;
    }
    let Ok(tail) = read_events_after(log, log_bytes) else {
        return;
    };
    let unsent = match last {
        Some(last) => match tail.events.iter().rposition(|e| e == last) {
            Some(at) => at + 1,
            None => return,
        },
        None => 0,
    };
    for event in tail.events.into_iter().skip(unsent) {
        if events.send(event).is_err() {
            return;
        }
    }
}
