//! The header: experiment, dataset and backend, run state, epoch and run progress, speed, ETA.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use crate::monitor::RunStatus;
use crate::protocol::Outcome;
use crate::tui::app::App;
use crate::tui::theme::Theme;

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let run = &app.run;
    let title = match &run.started {
        Some(s) => format!(" kiln · {} · {} ", s.experiment, s.dataset.name),
        None => " kiln ".to_string(),
    };
    let (status, style) = status(app, theme);
    let block = Block::bordered()
        .title(Line::from(Span::styled(title, theme.strong())))
        .title(Line::from(Span::styled(format!(" {status} "), style)).right_aligned());
    let inner_width = area.width.saturating_sub(2) as usize;
    let lines = vec![
        progress_line(app, theme, inner_width),
        about_line(app, inner_width),
    ];
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn status(app: &App, theme: &Theme) -> (String, Style) {
    let reversed = |style: Style| style.add_modifier(Modifier::REVERSED);
    if let Some(state) = app.reviewed() {
        return (
            format!("PAST RUN: {}", state.label().to_uppercase()),
            reversed(theme.accent()),
        );
    }
    match &app.run.status {
        _ if app.stopping() && app.run.is_active() => ("STOPPING".into(), reversed(theme.warn())),
        RunStatus::Starting => ("STARTING".into(), theme.accent()),
        RunStatus::Running => ("RUNNING".into(), theme.good()),
        RunStatus::Paused => ("PAUSED".into(), reversed(theme.warn())),
        RunStatus::Diverged => ("PAUSED: DIVERGED".into(), reversed(theme.bad())),
        RunStatus::Finished(Outcome::Completed) => ("FINISHED".into(), reversed(theme.good())),
        RunStatus::Finished(Outcome::Stopped) => ("STOPPED".into(), reversed(theme.accent())),
        RunStatus::Finished(Outcome::TimeLimit) => ("TIME LIMIT".into(), reversed(theme.warn())),
        RunStatus::Finished(Outcome::EarlyStopped) => {
            ("STOPPED EARLY".into(), reversed(theme.good()))
        }
        RunStatus::Failed(_) => ("FAILED".into(), reversed(theme.bad())),
    }
}

/// `epoch 7/20 ▕███▌  ▏ 12/32  run ▕██    ▏ 33%  1840 img/s  ETA 1m12s`, bars sized to fit.
fn progress_line(app: &App, theme: &Theme, width: usize) -> Line<'static> {
    let run = &app.run;
    if let RunStatus::Failed(error) = &run.status {
        return Line::from(Span::styled(format!("failed: {error}"), theme.bad()));
    }
    let total = run.total_epochs();
    let epoch = run.epoch.max(1).min(total.max(1));
    let epoch_text = format!("epoch {epoch}/{total} ");
    let batch_text = format!(" {}/{}  run ", run.batch, run.batches_per_epoch());
    let percent = format!(" {:.0}%", run.progress() * 100.0);
    let speed = run
        .throughput
        .map(|s| format!("  {s:.0} img/s"))
        .unwrap_or_default();
    let eta = run
        .eta_seconds()
        .map(|s| format!("  ETA {}", crate::format::duration(s)))
        .unwrap_or_default();
    let fixed = epoch_text.chars().count()
        + batch_text.chars().count()
        + percent.chars().count()
        + speed.chars().count()
        + eta.chars().count()
        + 4; // the bars' end caps
    let bar = (width.saturating_sub(fixed) / 2).clamp(3, 20);
    Line::from(vec![
        Span::raw(epoch_text),
        Span::styled(theme.bar(run.epoch_progress(), bar), theme.accent()),
        Span::raw(batch_text),
        Span::styled(theme.bar(run.progress(), bar), theme.accent()),
        Span::raw(percent),
        Span::raw(speed),
        Span::styled(eta, theme.dim()),
    ])
}

/// Backend and data, dropping the least useful pieces when the line is too narrow.
fn about_line(app: &App, width: usize) -> Line<'static> {
    let Some(s) = &app.run.started else {
        return Line::from("loading the dataset and choosing a backend…");
    };
    let d = &s.dataset;
    // The machine right after the backend: live figures first, facts of the run after.
    let (gpu, process, loader) = machine_pieces(app.run.machine.as_ref());
    let pieces = [
        format!("{}: {}", s.backend.name, s.backend.device),
        precision_piece(&s.backend.precision),
        gpu,
        process,
        loader,
        frozen_piece(&app.run),
        format!("{} train / {} val", d.train_images, d.validation_images),
        format!("{} classes", d.classes.len()),
        format!("{}×{}×{}", d.channels, d.height, d.width),
        format!("{} params", crate::format::count(s.parameters)),
        app.run
            .last_checkpoint
            .map_or_else(String::new, |epoch| format!("checkpoint e{epoch}")),
        // Last: the first piece dropped on a narrow screen (the activity list keeps it).
        skipped_backends(&s.backend.skipped),
    ];
    let mut text = String::new();
    for piece in pieces.into_iter().filter(|p| !p.is_empty()) {
        let joined = if text.is_empty() {
            piece
        } else {
            format!("{text} · {piece}")
        };
        if joined.chars().count() > width {
            break;
        }
        text = joined;
    }
    Line::from(text)
}

/// `GPU 97% 12.3/140.0 GB 61°C`, `CPU 185% 310 MB` and, when the trainer waits on its loader
/// for a tenth of the time or more, `loader-bound 35%`; empty without a sample.
fn machine_pieces(sample: Option<&crate::protocol::MachineSample>) -> (String, String, String) {
    let Some(m) = sample else {
        return Default::default();
    };
    let gpu = m.gpu.as_ref().map_or_else(String::new, |g| {
        format!(
            "GPU {}% {:.1}/{:.1} GB {}°C",
            g.utilization_percent,
            g.memory_used_mb / 1024.0,
            g.memory_total_mb / 1024.0,
            g.temperature_c
        )
    });
    let process = format!("CPU {:.0}% {:.0} MB", m.cpu_percent, m.memory_mb);
    let loader = if m.loader_wait >= 0.1 {
        format!("loader-bound {:.0}%", m.loader_wait * 100.0)
    } else {
        String::new()
    };
    (gpu, process, loader)
}

/// `skipped cuda (no libcuda.so.1)`, for each faster backend passed over.
fn skipped_backends(skipped: &[String]) -> String {
    if skipped.is_empty() {
        return String::new();
    }
    let each: Vec<String> = skipped
        .iter()
        .map(|entry| match entry.split_once(": ") {
            Some((name, why)) => format!("{name} ({why})"),
            None => entry.clone(),
        })
        .collect();
    format!("skipped {}", each.join(", "))
}

/// The precision in a word or two: `f32`, `TF32`, `bf16 mixed`.
fn precision_piece(precision: &str) -> String {
    if precision.contains("TF32") {
        "TF32".into()
    } else {
        precision.split(" (").next().unwrap_or_default().to_string()
    }
}

/// `backbone frozen: 11.2M` while a backbone is frozen (ahead of the data's pieces: a control in
/// force matters more than sizes the user set); empty otherwise.
fn frozen_piece(run: &crate::monitor::RunView) -> String {
    match run.parameter_split() {
        Some((_, frozen)) if frozen > 0 => {
            format!("backbone frozen: {}", crate::format::count(frozen))
        }
        _ => String::new(),
    }
}
