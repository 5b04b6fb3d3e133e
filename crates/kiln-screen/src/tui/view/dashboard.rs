//! The dashboard panels: loss sparklines, the diagnosis (overfitting) panel, the epoch table and
//! the activity log.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Wrap};

use crate::format::{lr, on_off};
use crate::monitor::{Level, RunView};
use crate::protocol::{Finding, Problem};
use crate::tui::app::{App, NoticeState};
use crate::tui::theme::Theme;

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(47), Constraint::Percentage(53)]).areas(area);
    // A scheduled rate gets a line of its own in the loss panel.
    let loss_lines = if app.run.planned_rates().is_some() {
        6
    } else {
        5
    };
    let [loss_area, diagnosis_area] =
        Layout::vertical([Constraint::Length(loss_lines), Constraint::Min(3)]).areas(left);
    draw_loss(frame, loss_area, &app.run, theme);
    draw_diagnosis(frame, diagnosis_area, &app.run, theme);
    draw_table(frame, right, app, theme);
}

fn draw_loss(frame: &mut Frame, area: Rect, run: &RunView, theme: &Theme) {
    let inner = area.width.saturating_sub(2) as usize;
    // "train " + sparkline + " 0.1234 ↑"
    let spark_width = inner.saturating_sub(16).max(1);
    let per_epoch = run.batches_per_epoch().max(1);
    let train_now = run.train_loss.last().copied();
    let train_before = run
        .train_loss
        .len()
        .checked_sub(per_epoch + 1)
        .map(|i| run.train_loss[i]);
    let val: Vec<f64> = run.epochs.iter().map(|m| m.validation_loss).collect();
    let val_now = val.last().copied();
    let val_before = val.len().checked_sub(2).map(|i| val[i]);
    let line = |label: &str, values: &[f64], now: Option<f64>, before: Option<f64>, style| {
        let trend = match (now, before) {
            (Some(a), Some(b)) if a > b * 1.001 => Some(true),
            (Some(a), Some(b)) if a < b * 0.999 => Some(false),
            _ => None,
        };
        let value = now.map_or_else(|| "  –   ".to_string(), |v| format!("{v:.4}"));
        Line::from(vec![
            Span::raw(format!("{label:<6}")),
            Span::styled(
                format!("{:<spark_width$}", theme.sparkline(values, spark_width)),
                style,
            ),
            Span::raw(format!(" {value} ")),
            Span::styled(
                theme.arrow(trend).to_string(),
                if trend == Some(true) {
                    theme.warn()
                } else {
                    theme.dim()
                },
            ),
        ])
    };
    let (bn, aug) = run
        .started
        .as_ref()
        .map_or((false, false), |s| (s.batch_norm, s.augmentation));
    // A scheduled rate has its own line above; a constant one is named here.
    let rate = match run.planned_rates() {
        Some(_) => String::new(),
        None => format!("lr {}  ", lr(run.learning_rate)),
    };
    let patience = run.patience().map_or_else(String::new, |(waited, of)| {
        format!("  patience {waited}/{of}")
    });
    let settings = Line::styled(
        format!(
            "{rate}drop {:.2}  bn {}  aug {}{patience}",
            run.dropout,
            on_off(bn),
            on_off(aug)
        ),
        theme.dim(),
    );
    let mut lines = vec![
        line(
            "train",
            &run.train_loss,
            train_now,
            train_before,
            theme.accent(),
        ),
        line("val", &val, val_now, val_before, theme.second()),
    ];
    lines.extend(rate_line(run, spark_width, theme));
    lines.push(settings);
    // Early stopping's count where it reads at a glance: in the panel's title.
    let title = run.patience().map_or_else(
        || " loss ".to_string(),
        |(waited, of)| format!(" loss · patience {waited}/{of} "),
    );
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(title)),
        area,
    );
}

/// The learning rate over the whole run as scheduled: the steps taken in the accent colour,
/// the planned rest dim; then the rate in force.
fn rate_line(run: &RunView, width: usize, theme: &Theme) -> Option<Line<'static>> {
    let rates = run.planned_rates()?;
    let spark: Vec<char> = theme.sparkline(&rates, width).chars().collect();
    let done = (spark.len() * (run.step as usize).min(rates.len())).div_ceil(rates.len().max(1));
    let (past, rest) = spark.split_at(done.min(spark.len()));
    Some(Line::from(vec![
        Span::raw(format!("{:<6}", "lr")),
        Span::styled(past.iter().collect::<String>(), theme.accent()),
        Span::styled(
            format!(
                "{:<w$}",
                rest.iter().collect::<String>(),
                w = width - past.len()
            ),
            theme.dim(),
        ),
        Span::raw(format!(
            " {}",
            lr(rates
                .get(run.step as usize)
                .copied()
                .unwrap_or(run.learning_rate))
        )),
    ]))
}

fn draw_diagnosis(frame: &mut Frame, area: Rect, run: &RunView, theme: &Theme) {
    let findings = run.findings();
    let (title, style, lines) = match findings.first() {
        None if run.epochs.is_empty() => (
            " diagnosis ".to_string(),
            theme.dim(),
            vec![Line::styled("waiting for the first epoch…", theme.dim())],
        ),
        None => {
            let last = &run.epochs[run.epochs.len() - 1];
            (
                format!(" {} healthy ", theme.healthy_mark()),
                theme.good(),
                vec![Line::from(format!(
                    "train {:.1}% · val {:.1}% · gap {:.1} pts: no sign of over- or underfitting.",
                    last.train_accuracy * 100.0,
                    last.validation_accuracy * 100.0,
                    last.gap() * 100.0
                ))],
            )
        }
        Some(first) => {
            let style = if first.problem == Problem::Divergence {
                theme.bad()
            } else {
                theme.warn()
            };
            let mut lines = finding_lines(first, theme);
            for other in &findings[1..] {
                lines.push(Line::styled(
                    format!(
                        "also {} since epoch {}",
                        other.problem.title(),
                        other.since_epoch
                    ),
                    style,
                ));
            }
            (
                format!(
                    " {} {} since epoch {} ",
                    theme.warning_mark(),
                    first.problem.title(),
                    first.since_epoch
                ),
                style,
                lines,
            )
        }
    };
    let block = Block::bordered()
        .title(Line::from(Span::styled(title, style)))
        .border_style(style);
    frame.render_widget(
        Paragraph::new(lines).block(block).wrap(Wrap { trim: true }),
        area,
    );
}

fn finding_lines(finding: &Finding, theme: &Theme) -> Vec<Line<'static>> {
    let mut lines: Vec<Line> = finding
        .evidence
        .split("; ")
        .map(|part| Line::from(format!("{part}.")))
        .collect();
    // Numbered: the number applies the remedy (f applies the first).
    let mut tries = vec![Span::styled("Try: ", theme.strong())];
    for (i, remedy) in finding.remedies.iter().enumerate() {
        if i > 0 {
            tries.push(Span::raw(" · "));
        }
        tries.push(Span::styled(format!("{} ", i + 1), theme.accent()));
        tries.push(Span::raw(remedy.text.clone()));
        if !remedy.fix.is_live() {
            tries.push(Span::styled(" (new file)", theme.dim()));
        }
    }
    lines.push(Line::from(tries));
    lines
}

/// A table column: title, width, and how to fill it.
struct Column {
    title: &'static str,
    width: u16,
    cell: fn(&RunView, usize) -> String,
}

const COLUMNS: &[Column] = &[
    Column {
        title: "train",
        width: 6,
        cell: |run, i| format!("{:.3}", run.epochs[i].train_accuracy),
    },
    Column {
        title: "val",
        width: 6,
        cell: |run, i| format!("{:.3}", run.epochs[i].validation_accuracy),
    },
    Column {
        title: "gap",
        width: 6,
        cell: |run, i| format!("{:+.3}", run.epochs[i].gap()),
    },
    Column {
        title: "val loss",
        width: 8,
        cell: |run, i| format!("{:.4}", run.epochs[i].validation_loss),
    },
    Column {
        title: "time",
        width: 6,
        cell: |run, i| format!("{:.1}s", run.epochs[i].seconds),
    },
    Column {
        title: "trn loss",
        width: 8,
        cell: |run, i| format!("{:.4}", run.epochs[i].train_loss),
    },
    Column {
        title: "lr",
        width: 8,
        cell: |run, i| lr(run.epochs[i].learning_rate),
    },
    Column {
        title: "drop",
        width: 5,
        cell: |run, i| format!("{:.2}", run.epochs[i].dropout),
    },
];

fn draw_table(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let run = &app.run;
    let inner_width = area.width.saturating_sub(2);
    // Epoch column plus as many metric columns as fit, in order of importance.
    let mut used = 6;
    let columns: Vec<&Column> = COLUMNS
        .iter()
        .take_while(|c| {
            used += c.width + 1;
            used <= inner_width
        })
        .collect();
    let notes_width = inner_width.saturating_sub(used);

    let visible = area.height.saturating_sub(3) as usize;
    let end = run.epochs.len().saturating_sub(app.table_scroll);
    let start = end.saturating_sub(visible);
    let best = run.best_epoch();
    let rows = (start..end).map(|i| {
        let epoch = i + 1;
        let changes: Vec<String> = run.changes_in(epoch).map(|c| c.describe()).collect();
        let best_mark = if best == Some(epoch) {
            theme.best_mark()
        } else {
            " "
        };
        let change_mark = if changes.is_empty() {
            " "
        } else {
            theme.change_mark()
        };
        let mut cells = vec![Cell::from(format!("{epoch:>3}{best_mark}{change_mark}"))];
        cells.extend(columns.iter().map(|c| Cell::from((c.cell)(run, i))));
        if notes_width >= 8 {
            cells.push(Cell::from(changes.join(", ")));
        }
        let style = if best == Some(epoch) {
            theme.good().add_modifier(ratatui::style::Modifier::BOLD)
        } else {
            Style::new()
        };
        Row::new(cells).style(style)
    });
    let mut widths = vec![Constraint::Length(5)];
    widths.extend(columns.iter().map(|c| Constraint::Length(c.width)));
    let mut header: Vec<&str> = vec![" ep"];
    header.extend(columns.iter().map(|c| c.title));
    if notes_width >= 8 {
        widths.push(Constraint::Min(8));
        header.push("changes");
    }
    let scrolled = if app.table_scroll > 0 {
        format!(" ↑{} more below (End) ", app.table_scroll)
    } else {
        String::new()
    };
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(theme.strong()))
        .column_spacing(1)
        .block(
            Block::bordered()
                .title(" epochs ")
                .title_bottom(Line::from(scrolled).right_aligned()),
        );
    frame.render_widget(table, area);
}

pub fn draw_activity(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let notice = app.notice.as_ref().map(|notice| {
        let (mark, style) = match notice.state {
            NoticeState::Pending => ("…", theme.accent()),
            NoticeState::Confirmed => (theme.healthy_mark(), theme.good()),
            NoticeState::Rejected => (theme.warning_mark(), theme.warn()),
        };
        (format!(" {mark} {} ", notice.text), style)
    });
    let mut block = Block::bordered().title(" activity ");
    let inner = block.inner(area);
    let width = inner.width.max(1) as usize;
    // A notice that fits sits on the bottom border; a longer one (the command a remedy's new
    // file is started with) is wrapped inside the box, so its end is never cut off.
    let (log_area, wrapped) = match notice {
        Some((text, style)) if text.chars().count() > width => {
            let rows = wrapped_lines(text.trim(), width).min(inner.height as usize) as u16;
            let [log, below] =
                Layout::vertical([Constraint::Min(0), Constraint::Length(rows)]).areas(inner);
            (log, Some((text, style, below)))
        }
        Some((text, style)) => {
            block = block.title_bottom(Line::from(Span::styled(text, style)));
            (inner, None)
        }
        None => (inner, None),
    };
    let visible = log_area.height as usize;
    let entries = &app.run.activity[app.run.activity.len().saturating_sub(visible)..];
    let lines: Vec<Line> = entries
        .iter()
        .map(|a| {
            let at = match (a.epoch, a.step) {
                (Some(e), Some(s)) => format!("e{e} s{s}"),
                (None, Some(s)) => format!("s{s}"),
                _ => String::new(),
            };
            let style = match a.level {
                Level::Info => Style::new(),
                Level::Warning => theme.warn(),
                Level::Error => theme.bad(),
            };
            Line::from(vec![
                Span::styled(format!("{at:<10}"), theme.dim()),
                Span::styled(a.text.clone(), style),
            ])
        })
        .collect();
    frame.render_widget(block, area);
    frame.render_widget(Paragraph::new(lines), log_area);
    if let Some((text, style, below)) = wrapped {
        frame.render_widget(
            Paragraph::new(Line::from(Span::styled(text.trim().to_string(), style)))
                .wrap(Wrap { trim: true }),
            below,
        );
    }
}

/// How many lines word wrapping `text` at `width` columns takes (a word longer than a line is
/// broken, as ratatui's wrap does).
fn wrapped_lines(text: &str, width: usize) -> usize {
    let mut lines = 1;
    let mut used = 0;
    for word in text.split(' ') {
        let len = word.chars().count();
        let needed = if used == 0 { len } else { used + 1 + len };
        if needed <= width {
            used = needed;
        } else {
            lines += 1 + len.saturating_sub(1) / width.max(1);
            used = len % width.max(1);
        }
    }
    lines
}
