//! `kiln lr-find`: sweeps the learning rate over a short run, draws the loss against the rate
//! in the terminal (and as a PNG), and says which rate to put in the experiment file.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use super::args::{DEFAULT_EXPERIMENT, LrFindArgs};
use super::{BadInput, EXIT_FAILED};
use crate::experiment::Experiment;
use crate::lr_find::{SweepPlan, png::write_png, rate_text};

/// The chart's size when stdout is not a terminal (and its height always).
const WIDTH: u16 = 72;
const HEIGHT: u16 = 18;

pub fn lr_find(args: LrFindArgs) -> anyhow::Result<ExitCode> {
    let path = args
        .experiment
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_EXPERIMENT));
    let mut experiment = Experiment::load(&path, &args.overrides)?;
    if let Some(backend) = args.backend {
        experiment.train.backend = backend;
    }
    let plan = SweepPlan {
        start: args.start,
        end: args.end,
        steps: args.steps,
    };
    if let Some(problem) = plan.problem() {
        return Err(BadInput(problem).into());
    }
    let found = crate::train::lr_find::lr_find(&experiment, plan)?;
    let sweep = &found.sweep;
    let suggestion = sweep.suggestion();
    let width = if std::io::stdout().is_terminal() {
        ratatui::crossterm::terminal::size().map_or(WIDTH, |(w, _)| w.clamp(40, 120))
    } else {
        WIDTH
    };
    let mut text = format!(
        "lr-find · {} · {} steps from {} to {} · batch {} of {} training images · {} on {}\n",
        experiment.name,
        plan.steps,
        rate_text(plan.start),
        rate_text(plan.end),
        experiment.train.batch_size,
        found.train_images,
        found.backend.name,
        found.backend.device,
    );
    text.push_str(&crate::lr_plot::text_chart(
        sweep,
        suggestion.as_ref(),
        width,
        HEIGHT,
        args.ascii,
    ));
    text.push('\n');
    if sweep.rates.len() < plan.steps {
        text.push_str(&format!(
            "stopped after {} of {} steps: the loss blew up past {}\n",
            sweep.rates.len(),
            plan.steps,
            rate_text(*sweep.rates.last().unwrap_or(&plan.start))
        ));
    }
    if let Some(png) = &args.png {
        write_png(
            sweep,
            suggestion.as_ref(),
            &format!("lr-find: {}", experiment.name),
            png,
        )
        .map_err(anyhow::Error::msg)?;
        text.push_str(&format!("curve: {}\n", png.display()));
    }
    let code = match &suggestion {
        Some(s) => {
            let rate = rate_text(s.steepest);
            text.push_str(&format!(
                "suggested learning rate: {rate} (the dotted line: where the loss falls fastest); lowest loss \
                 {:.3} at {} (a tenth of it: {})\n\nin {}:\n\n  [train]\n  learning_rate = \
                 {rate}\n\nor try it: kiln train {} --set train.learning_rate={rate}\n",
                s.lowest_loss,
                rate_text(s.lowest),
                rate_text(s.lowest / 10.0),
                path.display(),
                path.display(),
            ));
            ExitCode::SUCCESS
        }
        None => {
            text.push_str(
                "no rate in the sweep lowered the loss: check the data and its labels, or \
                 sweep from a lower --start or over more --steps\n",
            );
            ExitCode::from(EXIT_FAILED)
        }
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(code)
}
