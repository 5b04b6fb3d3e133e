//! The trainer's side of the control socket: accepts viewers, streams every event to each, and
//! forwards their commands to the training thread in the order they arrive.

use std::io::{self, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};

use super::{
    Endpoint, Line, MAX_LINE, PROTOCOL_VERSION, Reply, SOCKET_FILE, parse_command, probe, read_line,
};
use crate::protocol::Command;
use crate::runs::RunDir;

/// Event lines a viewer may fall behind by before it is dropped; the trainer never waits.
const VIEWER_BACKLOG: usize = 65_536;
/// A viewer that cannot take a line for this long is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Fans event lines out to the connected viewers and remembers how much of the log precedes
/// the next line, so a new viewer reads exactly that much history from the file.
pub struct Hub {
    state: Mutex<HubState>,
}

struct HubState {
    log_bytes: u64,
    viewers: Vec<Sender<Arc<str>>>,
}

impl Hub {
    pub fn new(log_bytes: u64) -> Arc<Hub> {
        Arc::new(Hub {
            state: Mutex::new(HubState {
                log_bytes,
                viewers: Vec::new(),
            }),
        })
    }

    /// Sends `line` (ending in a newline) to every viewer; `log_bytes` is the log's length
    /// after the line was appended to it (unchanged when appending failed).
    pub fn publish(&self, line: &Arc<str>, log_bytes: u64) {
        let mut state = self.lock();
        state.log_bytes = log_bytes;
        state
            .viewers
            .retain(|viewer| match viewer.try_send(line.clone()) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
            });
    }

    /// A new viewer: the log's length so far (its history) and the lines that follow.
    pub fn subscribe(&self) -> (u64, Receiver<Arc<str>>) {
        let (sender, receiver) = bounded(VIEWER_BACKLOG);
        let mut state = self.lock();
        state.viewers.push(sender);
        (state.log_bytes, receiver)
    }

    fn close(&self) {
        self.lock().viewers.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HubState> {
        // A viewer thread that panicked leaves plain data behind, still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The listening socket of one run; [`ControlServer::shutdown`] (or drop) removes it.
pub struct ControlServer {
    path: PathBuf,
    hub: Arc<Hub>,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ControlServer {
    /// Opens `control.sock` in the run directory with owner-only permissions. A stale socket
    /// of a dead process is removed; a live one means another process serves this run.
    pub fn start(run: &RunDir, hub: Arc<Hub>, commands: Sender<Command>) -> io::Result<Self> {
        let path = run.path.join(SOCKET_FILE);
        match probe(&run.path) {
            Endpoint::Alive => {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("another kiln process serves {}", path.display()),
                ));
            }
            Endpoint::Stale => std::fs::remove_file(&path)?,
            Endpoint::Absent => {}
        }
        // Bind under a private name, restrict, then rename: the socket is never reachable
        // with looser permissions, even for a moment.
        let temporary = run
            .path
            .join(format!(".control-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&temporary);
        let listener = UnixListener::bind(&temporary)?;
        std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&temporary, &path)?;

        let stopping = Arc::new(AtomicBool::new(false));
        let thread = {
            let (hub, stopping, run_id) = (hub.clone(), stopping.clone(), run.id.clone());
            std::thread::Builder::new()
                .name("kiln-control".into())
                .spawn(move || accept(listener, hub, commands, stopping, run_id))?
        };
        Ok(Self {
            path,
            hub,
            stopping,
            thread: Some(thread),
        })
    }

    /// Stops accepting, disconnects every viewer and removes the socket.
    pub fn shutdown(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag. If the socket file is gone (the run
        // directory was removed), the loop cannot be woken: it is left to end with the process
        // rather than waited for.
        if UnixStream::connect(&self.path).is_ok() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.path);
        self.hub.close();
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn accept(
    listener: UnixListener,
    hub: Arc<Hub>,
    commands: Sender<Command>,
    stopping: Arc<AtomicBool>,
    run_id: String,
) {
    for stream in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let (hub, commands, run_id) = (hub.clone(), commands.clone(), run_id.clone());
        let _ = std::thread::Builder::new()
            .name("kiln-viewer".into())
            .spawn(move || {
                let _ = serve(stream, &hub, commands, &run_id);
            });
    }
}

/// One viewer: a writer thread streams the hello and the events; this thread reads commands.
fn serve(stream: UnixStream, hub: &Hub, commands: Sender<Command>, run_id: &str) -> io::Result<()> {
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let writer = Arc::new(Mutex::new(stream.try_clone()?));
    let (log_bytes, lines) = hub.subscribe();
    let hello = Reply::Hello {
        protocol: PROTOCOL_VERSION,
        run_id: run_id.to_string(),
        pid: std::process::id(),
        log_bytes,
    };
    send(&writer, &hello.line())?;
    let event_writer = writer.clone();
    std::thread::Builder::new()
        .name("kiln-viewer-out".into())
        .spawn(move || {
            for line in lines.iter() {
                if send(&event_writer, &line).is_err() {
                    break;
                }
            }
            // Dropped by the hub (run over, or too far behind): end the connection.
            let _ = lock(&event_writer).shutdown(std::net::Shutdown::Both);
        })?;

    let mut reader = BufReader::new(stream);
    while let Some(line) = read_line(&mut reader, MAX_LINE)? {
        let reply = match line {
            Line::TooLong => Reply::Error {
                message: format!("line longer than {MAX_LINE} bytes; ignored"),
            },
            Line::Text(text) if text.iter().all(u8::is_ascii_whitespace) => continue,
            Line::Text(text) => match parse_command(&text) {
                Ok(command) => match commands.send(command) {
                    Ok(()) => Reply::Accepted,
                    Err(_) => Reply::Error {
                        message: "the run has ended".into(),
                    },
                },
                Err(message) => Reply::Error { message },
            },
        };
        send(&writer, &reply.line())?;
    }
    let _ = lock(&writer).shutdown(std::net::Shutdown::Both);
    Ok(())
}

fn send(writer: &Mutex<UnixStream>, line: &str) -> io::Result<()> {
    lock(writer).write_all(line.as_bytes())
}

fn lock(writer: &Mutex<UnixStream>) -> std::sync::MutexGuard<'_, UnixStream> {
    writer.lock().unwrap_or_else(|e| e.into_inner())
}
