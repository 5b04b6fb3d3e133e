//! What a process learns from its surroundings, kept out of the protocol (plain data): the time
//! an event is stamped with, and where a run trains (host, process, Slurm job).

use crate::protocol::{Event, EventKind, Placement};

/// An event stamped with the current time (UTC, RFC 3339 with milliseconds).
pub fn event(epoch: Option<usize>, step: Option<u64>, kind: EventKind) -> Event {
    Event {
        time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        epoch,
        step,
        kind,
    }
}

/// This process, on this host, in the Slurm job its environment names (if any).
pub fn placement() -> Placement {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let slurm_job = match (var("SLURM_ARRAY_JOB_ID"), var("SLURM_ARRAY_TASK_ID")) {
        (Some(job), Some(task)) => Some(format!("{job}_{task}")),
        _ => var("SLURM_JOB_ID"),
    };
    Placement {
        host: host_name(),
        pid: std::process::id(),
        slurm_job,
    }
}

/// The machine's host name (`uname -n`), or `unknown`.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .ok()
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}
