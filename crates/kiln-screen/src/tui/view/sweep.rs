//! A sweep opened in the run browser: the swept keys as columns against best validation
//! accuracy, gap and state (Slurm's, while a task waits or trains), the sort column marked.
//!
//! ```text
//! ┌ sweep 20261201-214623-digits · 4 runs, 1 running · Slurm job 40 ─── sorted by best val ↓ ┐
//! │ model.dropout  train.learning_rate  best val  gap     state         task  run           │
//! │ 0.0            3e-3                 0.9387    -0.032  finished      40_1  2026…-lr3e-3  │
//! └─────────────────────────────────────────────────────────────────────────────────────────┘
//!  s/S sort · q back
//! ```

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table};

use crate::format::{or_dash, token};
use crate::sweep::SweepRow;
use crate::tui::browser::SweepTable;
use crate::tui::theme::Theme;

pub fn draw(frame: &mut Frame, table: &SweepTable, theme: &Theme) {
    let [table_area, footer_area] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(1)]).areas(frame.area());
    let live = table
        .rows
        .iter()
        .filter(|r| r.state.starts_with("running"))
        .count();
    let mut title = format!(
        " sweep {} · {} run{}",
        table.id,
        table.rows.len(),
        if table.rows.len() == 1 { "" } else { "s" }
    );
    if live > 0 {
        title.push_str(&format!(", {live} running"));
    }
    if let Some(job) = &table.job {
        title.push_str(&format!(" · Slurm job {job}"));
    }
    title.push(' ');
    let order = format!(
        " sorted by {} {} ",
        table.sort_title(),
        if table.descending { "↓" } else { "↑" }
    );

    let mut header = table.column_titles();
    if table.job.is_some() {
        header.push("task".into());
    }
    header.push("run".into());
    let cells: Vec<Vec<String>> = table.rows.iter().map(|row| cells(row, table)).collect();
    // Each column as wide as its widest cell; the run id takes what is left.
    let widths: Vec<Constraint> = (0..header.len())
        .map(|c| {
            let widest = std::iter::once(&header[c])
                .chain(cells.iter().map(|row| &row[c]))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(1) as u16;
            if c + 1 == header.len() {
                Constraint::Min(widest.min(8))
            } else {
                Constraint::Length(widest)
            }
        })
        .collect();
    let rows = table.rows.iter().zip(cells).map(|(row, cells)| {
        Row::new(cells.into_iter().enumerate().map(|(c, text)| {
            if c == table.keys.len() + 2 {
                Cell::from(Span::styled(text, state_style(&row.state, theme)))
            } else {
                Cell::from(text)
            }
        }))
    });
    let widget = Table::new(rows, widths)
        .header(Row::new(header).style(theme.strong()))
        .block(
            Block::bordered()
                .title(Line::from(title).style(theme.strong()))
                .title(Line::from(order).right_aligned().style(theme.dim())),
        );
    frame.render_widget(widget, table_area);
    let keys = super::footer::hints(None, &[("s/S", "sort"), ("q", "back")], theme);
    frame.render_widget(Paragraph::new(Line::from(keys)), footer_area);
}

fn cells(row: &SweepRow, table: &SweepTable) -> Vec<String> {
    let mut cells: Vec<String> = row.settings.iter().map(|(_, v)| token(v)).collect();
    cells.resize(table.keys.len(), String::new());
    cells.extend([
        or_dash(row.best_validation_accuracy.map(|a| format!("{a:.4}"))),
        or_dash(row.final_gap.map(|g| format!("{g:+.4}"))),
        row.state.clone(),
    ]);
    if let Some(job) = &table.job {
        cells.push(or_dash(row.task.map(|t| format!("{job}_{t}"))));
    }
    cells.push(or_dash(row.run_id.clone()));
    cells
}

fn state_style(state: &str, theme: &Theme) -> ratatui::style::Style {
    match state {
        "finished" => theme.good(),
        "failed" => theme.bad(),
        s if s.starts_with("running") => theme.accent(),
        s if s.starts_with("pending") || s == "timed out" || s == "cancelled" => theme.warn(),
        _ => ratatui::style::Style::new(),
    }
}
