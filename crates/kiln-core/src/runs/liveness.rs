//! Whether a process is training a run: its control socket answers or, without one, the
//! process named in its pid file is alive. The socket's protocol is `control`'s; this only
//! knocks.

use std::io;
use std::os::unix::net::UnixStream;
use std::path::Path;

use super::{EVENTS_FILE, PID_FILE};

/// The control socket's name inside the run directory.
pub const SOCKET_FILE: &str = "control.sock";

/// What a run's control socket says about the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// A process answers on it: the run is live.
    Alive,
    /// The socket file is there but nobody listens: its process died.
    Stale,
    /// No socket file.
    Absent,
}

pub fn probe(run: &Path) -> Endpoint {
    let path = run.join(SOCKET_FILE);
    if std::fs::symlink_metadata(&path).is_err() {
        return Endpoint::Absent;
    }
    match UnixStream::connect(&path) {
        Ok(_) => Endpoint::Alive,
        // Someone else's live run: not ours to judge or remove.
        Err(err) if err.kind() == io::ErrorKind::PermissionDenied => Endpoint::Alive,
        Err(_) => Endpoint::Stale,
    }
}

/// Whether a process is training the run: its control socket answers or, where it has none
/// (a path too long for a socket), the process named in its pid file is running; for a run
/// on another host in a Slurm job, whether Slurm says the job's task is running.
pub fn is_alive(run: &Path) -> bool {
    // On another node its socket and pid cannot be judged from here; its scheduler can.
    if let Some(job) = trains_elsewhere(run).and_then(|placement| placement.slurm_job) {
        return crate::slurm::is_running(&job);
    }
    match probe(run) {
        Endpoint::Alive => true,
        Endpoint::Stale => false,
        Endpoint::Absent => pid_is_running(run),
    }
}

/// Whether the process named in the run's pid file is still running.
pub fn pid_is_running(run: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(run.join(PID_FILE)) else {
        return false;
    };
    let Ok(pid) = text.trim().parse::<u32>() else {
        return false;
    };
    if Path::new("/proc").is_dir() {
        return Path::new(&format!("/proc/{pid}")).exists();
    }
    // Without /proc, trust a log written to in the last minute.
    std::fs::metadata(run.join(EVENTS_FILE))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age.as_secs() < 60)
}

/// The run under `runs_dir` whose pid file names process `pid` (a run that process claimed).
pub fn claimed_by(runs_dir: &Path, pid: u32) -> Option<super::RunDir> {
    let pid = pid.to_string();
    std::fs::read_dir(runs_dir)
        .ok()?
        .flatten()
        .map(|entry| entry.path())
        .find(|dir| {
            std::fs::read_to_string(dir.join(PID_FILE)).is_ok_and(|text| text.trim() == pid)
        })
        .map(|path| super::RunDir {
            id: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path,
        })
}

/// Where the run trains when that is another host (its log's first line says): its socket
/// cannot be reached from here, and its pid means nothing here, so neither is judged.
pub fn trains_elsewhere(run: &Path) -> Option<crate::protocol::Placement> {
    use std::io::BufRead;
    let file = std::fs::File::open(run.join(EVENTS_FILE)).ok()?;
    let mut first = String::new();
    io::BufReader::new(file).read_line(&mut first).ok()?;
    let event: crate::protocol::Event = serde_json::from_str(&first).ok()?;
    let crate::protocol::EventKind::RunStarted(started) = event.kind else {
        return None;
    };
    started
        .placement
        .filter(|placement| placement.host != crate::here::host_name())
}
