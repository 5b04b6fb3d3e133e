//! The browser's file work: listing the runs folder, opening runs into the views, deleting and
//! renaming, reading sweeps. [`perform`] does what `update` asked for and answers with what it
//! found ([`Loaded`]), which `update` applies: the browser's state changes there only.

use std::collections::HashMap;

use super::{Browser, BrowserMessage, ComparedRun, Effect, SweepTable, update};
use crate::gallery::Pictures;
use crate::monitor::RunView;
use crate::runs::{self, Listing};
use crate::sweep::{self, SweepRecord, SweepRow};
use crate::tui::app::App;
use crate::tui::pictures::Encoded;

/// What the file work found.
#[derive(Debug, Clone, PartialEq)]
pub enum Loaded {
    /// The runs folder read again, and the disk use measured now (by run id).
    Listing(Result<(Listing, HashMap<String, u64>), String>),
    /// A past run, replayed into the run screen's state.
    Review(Result<Box<App>, String>),
    Compared(Result<Vec<ComparedRun>, String>),
    /// A delete or rename, said in a notice (or why it failed); the folder read after it.
    Changed {
        notice: String,
        listing: Box<Loaded>,
    },
    Sweep(Result<SweepTable, String>),
    /// The opened sweep's rows read again (`None`: its record could not be read).
    SweepRows {
        id: String,
        rows: Option<Vec<SweepRow>>,
    },
    Gallery {
        request: u64,
        result: Result<(Pictures, Encoded), String>,
    },
}

/// Does the file work an update asked for and applies what it found (through `update`).
pub fn execute(browser: &mut Browser, effect: Effect) {
    let loaded = perform(browser, effect);
    let _ = update(browser, BrowserMessage::Loaded(loaded));
}

/// Does the file work `effect` asks for, reading only the browser (what to measure again).
pub fn perform(browser: &Browser, effect: Effect) -> Loaded {
    match effect {
        Effect::Refresh => listing(browser),
        Effect::Gallery { run, kind, request } => Loaded::Gallery {
            request,
            result: crate::tui::pictures::gallery(&run, kind, request),
        },
        Effect::Open(path) => Loaded::Review(
            runs::open_run(&path)
                .map(|run| {
                    let mut app = App::review(run.summary.state);
                    for event in &run.events {
                        app.run.apply(event);
                    }
                    Box::new(app)
                })
                .map_err(|err| err.to_string()),
        ),
        Effect::Compare(paths) => Loaded::Compared(
            paths
                .iter()
                .map(|path| {
                    runs::open_run(path).map(|run| ComparedRun {
                        view: RunView::replay(&run.events),
                        summary: run.summary,
                        settings: run.settings,
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|err| err.to_string()),
        ),
        Effect::Delete(path) => Loaded::Changed {
            notice: match runs::delete_run(&path) {
                Ok(()) => format!("deleted {}", path.display()),
                Err(err) => err.to_string(),
            },
            listing: Box::new(listing(browser)),
        },
        Effect::Rename(path, name) => Loaded::Changed {
            notice: match runs::rename_run(&path, &name) {
                Ok(new) => format!("renamed to {}", new.display()),
                Err(err) => err.to_string(),
            },
            listing: Box::new(listing(browser)),
        },
        Effect::Sweep(run) => Loaded::Sweep(sweep_table(browser, run.as_deref())),
        Effect::RefreshSweep => {
            let id = match &browser.opened {
                Some(super::Opened::Sweep(table)) => table.id.clone(),
                _ => String::new(),
            };
            let rows = SweepRecord::load(&browser.runs_dir, &id)
                .ok()
                .map(|record| sweep::rows(&record, &browser.runs_dir));
            Loaded::SweepRows { id, rows }
        }
    }
}

/// The sweep that holds `run`, else the newest; a message when there is none.
fn sweep_table(browser: &Browser, run: Option<&str>) -> Result<SweepTable, String> {
    let records: Vec<SweepRecord> = sweep::list(&browser.runs_dir)
        .iter()
        .filter_map(|id| SweepRecord::load(&browser.runs_dir, id).ok())
        .collect();
    let holding = run.and_then(|run| {
        records
            .iter()
            .rev()
            .find(|record| sweep::holds(record, run, &browser.runs_dir))
    });
    let Some(record) = holding.or(records.last()) else {
        return Err(format!(
            "no sweeps in {} (kiln sweep starts one)",
            browser.runs_dir.display()
        ));
    };
    Ok(SweepTable::new(
        record.id.clone(),
        record.keys.clone(),
        sweep::rows(record, &browser.runs_dir),
        record.slurm.as_ref().map(|job| job.job_id.clone()),
    ))
}

/// The runs folder, with the disk use of each run not measured yet or still training (a
/// finished run's size changes only by `kiln prune` or a delete: measured once).
fn listing(browser: &Browser) -> Loaded {
    Loaded::Listing(
        runs::list_runs(&browser.runs_dir)
            .map(|listing| {
                let measured = listing
                    .runs
                    .iter()
                    .filter(|run| {
                        run.state == runs::RunState::Running || !browser.disk.contains_key(&run.id)
                    })
                    .map(|run| (run.id.clone(), runs::disk_bytes(&run.path)))
                    .collect();
                (listing, measured)
            })
            .map_err(|err| err.to_string()),
    )
}
