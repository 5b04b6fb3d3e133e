//! Finding runs in a runs folder: listing with cached summaries, resolving an id prefix, and the
//! two changes a user may make to a past run (delete, rename).

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use super::liveness::is_alive;
use super::summary::{RunState, RunSummary, summarise};
use super::{EVENTS_FILE, SUMMARY_FILE, read_events, read_events_without_batches, sanitise};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no run matches \"{query}\" in {}{}", runs_dir.display(), hint(.known))]
    NotFound {
        query: String,
        runs_dir: PathBuf,
        known: Vec<String>,
    },
    #[error("\"{query}\" matches {} runs: {}; give more of the id", matches.len(), matches.join(", "))]
    Ambiguous { query: String, matches: Vec<String> },
    #[error("{}: not a run directory (no {EVENTS_FILE})", path.display())]
    NotARun { path: PathBuf },
    #[error("a run named \"{0}\" already exists")]
    Exists(String),
}

impl StoreError {
    /// Whether the user named something that is not there (rather than the disk failing).
    pub fn is_bad_input(&self) -> bool {
        match self {
            StoreError::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
            StoreError::NotFound { .. }
            | StoreError::Ambiguous { .. }
            | StoreError::NotARun { .. }
            | StoreError::Exists(_) => true,
        }
    }
}

fn hint(known: &[String]) -> String {
    match known.first() {
        Some(newest) => format!(" (newest: {newest})"),
        None => " (it holds no runs)".to_string(),
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The runs in a folder, newest first, and how many entries were not runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listing {
    pub runs: Vec<RunSummary>,
    pub not_runs: usize,
}

/// What `summary.json` holds: a summary and the log size and time it was made from.
#[derive(Serialize, Deserialize)]
struct CachedSummary {
    /// [`SUMMARY_FORMAT`] when written; a cache of another format is rebuilt from the log.
    #[serde(default)]
    format: u32,
    log_bytes: u64,
    log_modified_ns: u128,
    summary: RunSummary,
}

/// Bumped whenever [`RunSummary`] gains what older caches lack (2: the run's placement).
const SUMMARY_FORMAT: u32 = 2;

/// Lists the runs under `runs_dir`. A missing folder is an empty listing; a directory without an
/// event log is counted in `not_runs`; an unreadable log becomes a row that says so.
pub fn list_runs(runs_dir: &Path) -> Result<Listing, StoreError> {
    let mut listing = Listing::default();
    let entries = match std::fs::read_dir(runs_dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(listing),
        Err(source) => {
            return Err(StoreError::Io {
                path: runs_dir.to_path_buf(),
                source,
            });
        }
    };
    let mut candidates = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        // The sweep records' folder belongs to the store; it is not a stray entry.
        if name == super::SWEEPS_DIR {
            continue;
        }
        if !path.is_dir() || name.starts_with('.') || !path.join(EVENTS_FILE).exists() {
            listing.not_runs += 1;
            continue;
        }
        candidates.push((path, name));
    }
    // Building missing summaries parses whole logs: spread that over the cores.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = candidates.len().div_ceil(threads).max(1);
    listing.runs = std::thread::scope(|scope| {
        let workers: Vec<_> = candidates
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|(path, name)| summary_of(path, name))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .zip(candidates.chunks(chunk))
            .flat_map(|(worker, part)| {
                worker.join().unwrap_or_else(|_| {
                    part.iter()
                        .map(|(path, name)| {
                            RunSummary::unreadable(name, path.clone(), "could not be read".into())
                        })
                        .collect()
                })
            })
            .collect()
    });
    listing.runs.sort_by(|a, b| b.id.cmp(&a.id));
    Ok(listing)
}

/// The summary of one run directory: from the cache when it matches the log, else rebuilt.
pub fn summary_of(path: &Path, id: &str) -> RunSummary {
    let log = path.join(EVENTS_FILE);
    let stamp = std::fs::metadata(&log).map(|m| {
        let modified = m
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        (m.len(), modified)
    });
    let Ok((log_bytes, log_modified_ns)) = stamp else {
        return RunSummary::unreadable(id, path.to_path_buf(), "no readable event log".into());
    };
    let cache_path = path.join(SUMMARY_FILE);
    let cached = std::fs::read(&cache_path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<CachedSummary>(&bytes).ok())
        .filter(|c| {
            c.format == SUMMARY_FORMAT
                && c.log_bytes == log_bytes
                && c.log_modified_ns == log_modified_ns
        });
    let mut summary = match cached {
        Some(cached) => cached.summary,
        None => match read_events_without_batches(&log) {
            Ok(contents) => {
                let mut summary = summarise(id, &contents.events);
                if contents.skipped_lines > 0 {
                    summary.problem = Some(format!(
                        "{} unreadable line(s) skipped",
                        contents.skipped_lines
                    ));
                }
                let cache = CachedSummary {
                    format: SUMMARY_FORMAT,
                    log_bytes,
                    log_modified_ns,
                    summary: summary.clone(),
                };
                // A read-only runs folder still lists, only without the cache.
                if let Ok(json) = serde_json::to_vec(&cache) {
                    let _ = std::fs::write(&cache_path, json);
                }
                summary
            }
            Err(err) => RunSummary::unreadable(id, path.to_path_buf(), err.to_string()),
        },
    };
    summary.id = id.to_string();
    summary.path = path.to_path_buf();
    if summary.state == RunState::Interrupted && is_alive(path) {
        summary.state = RunState::Running;
    }
    summary
}

/// Bytes of the files under `dir`, folders included (a run: its log, checkpoints, cache).
pub fn disk_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .map(|entry| match entry.file_type() {
                Ok(kind) if kind.is_dir() => disk_bytes(&entry.path()),
                Ok(kind) if kind.is_file() => entry.metadata().map_or(0, |m| m.len()),
                _ => 0,
            })
            .sum()
    })
}

/// The epochs of run `id` that runs in `runs_dir` were forked from (their checkpoints are the
/// forks' lineage, so retention keeps them).
pub fn forked_epochs(runs_dir: &Path, id: &str) -> Vec<usize> {
    list_runs(runs_dir).map_or_else(
        |_| Vec::new(),
        |listing| {
            listing
                .runs
                .iter()
                .filter_map(|run| run.parent.as_ref())
                .filter(|parent| parent.run_id == id)
                .map(|parent| parent.epoch)
                .collect()
        },
    )
}

/// A run by id, unique id prefix, or path to its directory.
pub fn resolve_run(runs_dir: &Path, query: &str) -> Result<PathBuf, StoreError> {
    let as_path = Path::new(query);
    if as_path.join(EVENTS_FILE).exists() {
        return Ok(as_path.to_path_buf());
    }
    let listing = list_runs(runs_dir)?;
    if let Some(exact) = listing.runs.iter().find(|r| r.id == query) {
        return Ok(exact.path.clone());
    }
    let matches: Vec<&RunSummary> = listing
        .runs
        .iter()
        .filter(|r| r.id.starts_with(query))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.path.clone()),
        [] => Err(StoreError::NotFound {
            query: query.to_string(),
            runs_dir: runs_dir.to_path_buf(),
            known: listing.runs.iter().map(|r| r.id.clone()).collect(),
        }),
        many => Err(StoreError::Ambiguous {
            query: query.to_string(),
            matches: many.iter().map(|r| r.id.clone()).collect(),
        }),
    }
}

/// Deletes a run directory (only one that holds an event log).
pub fn delete_run(run: &Path) -> Result<(), StoreError> {
    if !run.join(EVENTS_FILE).exists() {
        return Err(StoreError::NotARun {
            path: run.to_path_buf(),
        });
    }
    std::fs::remove_dir_all(run).map_err(io(run))
}

/// Renames a run directory within its folder; returns the new path.
pub fn rename_run(run: &Path, new_id: &str) -> Result<PathBuf, StoreError> {
    if !run.join(EVENTS_FILE).exists() {
        return Err(StoreError::NotARun {
            path: run.to_path_buf(),
        });
    }
    let new_id = sanitise(new_id);
    let target = run.with_file_name(&new_id);
    if target.exists() {
        return Err(StoreError::Exists(new_id));
    }
    std::fs::rename(run, &target).map_err(io(run))?;
    Ok(target)
}

/// A past run read in full: its summary, events and resolved settings.
#[derive(Debug, Clone)]
pub struct OpenedRun {
    pub summary: RunSummary,
    pub events: Vec<crate::protocol::Event>,
    /// `experiment.toml` flattened to dotted keys (empty if missing).
    pub settings: std::collections::BTreeMap<String, String>,
}

/// Reads a whole run directory.
pub fn open_run(path: &Path) -> Result<OpenedRun, StoreError> {
    let log = path.join(EVENTS_FILE);
    if !log.exists() {
        return Err(StoreError::NotARun {
            path: path.to_path_buf(),
        });
    }
    let contents = read_events(&log).map_err(io(&log))?;
    let id = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut summary = summarise(&id, &contents.events);
    summary.path = path.to_path_buf();
    if contents.skipped_lines > 0 {
        summary.problem = Some(format!(
            "{} unreadable line(s) skipped",
            contents.skipped_lines
        ));
    }
    if summary.state == RunState::Interrupted && is_alive(path) {
        summary.state = RunState::Running;
    }
    let settings = std::fs::read_to_string(path.join(super::EXPERIMENT_FILE))
        .map(|text| super::flatten_experiment(&text))
        .unwrap_or_default();
    Ok(OpenedRun {
        summary,
        events: contents.events,
        settings,
    })
}
