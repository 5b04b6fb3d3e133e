//! The browser's file work: listing the runs folder, opening runs into the views, deleting
//! and renaming. [`execute`] does what `update` asked for and records the outcome.

use std::collections::BTreeSet;

use super::{Browser, ComparedRun, Effect, Opened, SweepTable};
use crate::monitor::RunView;
use crate::runs;
use crate::sweep::{self, SweepRecord};
use crate::tui::app::{self, App};

/// Does the file work an update asked for, and records the result in the browser.
pub fn execute(browser: &mut Browser, effect: Effect) {
    match effect {
        Effect::Refresh => refresh(browser),
        Effect::Gallery { run, kind, request } => {
            if let Some(Opened::Review(review)) = browser.opened.as_mut() {
                let result = crate::tui::pictures::gallery(&run, kind, request);
                let _ = app::update(review, app::Message::Gallery { request, result });
            }
        }
        Effect::Open(path) => match runs::open_run(&path) {
            Ok(run) => {
                let mut app = App::review(run.summary.state);
                for event in &run.events {
                    app.run.apply(event);
                }
                browser.opened = Some(Opened::Review(Box::new(app)));
            }
            Err(err) => browser.message = Some(err.to_string()),
        },
        Effect::Compare(paths) => {
            let mut compared = Vec::new();
            for path in paths {
                match runs::open_run(&path) {
                    Ok(run) => compared.push(ComparedRun {
                        view: RunView::replay(&run.events),
                        summary: run.summary,
                        settings: run.settings,
                    }),
                    Err(err) => {
                        browser.message = Some(err.to_string());
                        return;
                    }
                }
            }
            browser.opened = Some(Opened::Compare(compared));
        }
        Effect::Delete(path) => {
            match runs::delete_run(&path) {
                Ok(()) => browser.message = Some(format!("deleted {}", path.display())),
                Err(err) => browser.message = Some(err.to_string()),
            }
            refresh(browser);
        }
        Effect::Sweep(run) => open_sweep(browser, run.as_deref()),
        Effect::RefreshSweep => {
            if let Some(Opened::Sweep(table)) = browser.opened.as_mut()
                && let Ok(record) = SweepRecord::load(&browser.runs_dir, &table.id)
            {
                table.replace_rows(sweep::rows(&record, &browser.runs_dir));
            }
        }
        Effect::Rename(path, name) => {
            match runs::rename_run(&path, &name) {
                Ok(new) => browser.message = Some(format!("renamed to {}", new.display())),
                Err(err) => browser.message = Some(err.to_string()),
            }
            refresh(browser);
        }
    }
}

/// The sweep that holds `run`, else the newest; a message when there is none.
fn open_sweep(browser: &mut Browser, run: Option<&str>) {
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
        browser.message = Some(format!(
            "no sweeps in {} (kiln sweep starts one)",
            browser.runs_dir.display()
        ));
        return;
    };
    let rows = sweep::rows(record, &browser.runs_dir);
    browser.opened = Some(Opened::Sweep(SweepTable::new(
        record.id.clone(),
        record.keys.clone(),
        rows,
        record.slurm.as_ref().map(|job| job.job_id.clone()),
    )));
}

fn refresh(browser: &mut Browser) {
    match runs::list_runs(&browser.runs_dir) {
        Ok(listing) => {
            let known: BTreeSet<&String> = listing.runs.iter().map(|r| &r.id).collect();
            browser.marked.retain(|id| known.contains(id));
            browser.disk.retain(|id, _| known.contains(id));
            // A finished run's size changes only by `kiln prune` or a delete: measured once.
            for run in &listing.runs {
                if run.state == runs::RunState::Running || !browser.disk.contains_key(&run.id) {
                    browser
                        .disk
                        .insert(run.id.clone(), runs::disk_bytes(&run.path));
                }
            }
            browser.listing = listing;
        }
        Err(err) => browser.message = Some(err.to_string()),
    }
    browser.clamp_selection();
}
