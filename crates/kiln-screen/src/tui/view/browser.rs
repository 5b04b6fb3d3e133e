//! The run browser: a table of past runs with the sort column marked, marks for comparison,
//! the filter and the footer; an opened run is drawn with the live screen's own views.
//!
//! ```text
//! ┌ runs · runs/ · 12 runs, 1 running ──────────────────── sorted by started ↓ ┐
//! │   run                     experiment  state     ep     best val  gap   …  │
//! │ ● 20261127-192621-baseline baseline   finished  20/20  0.943@16  +0.06    │
//! └────────────────────────────────────────────────────────────────────────────┘
//!  Enter open · space mark · c compare · / filter · s sort · d delete · R rename · w sweep · q back
//! ```

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState};

use crate::runs::{RunState, RunSummary};
use crate::tui::browser::{Browser, BrowserMode, Opened};
use crate::tui::theme::Theme;

use super::compare;

pub fn draw(frame: &mut Frame, browser: &Browser, theme: &Theme) {
    match &browser.opened {
        Some(Opened::Review(app)) => super::draw_screen(frame, app, theme),
        Some(Opened::Compare(runs)) => compare::draw(frame, frame.area(), runs, theme),
        Some(Opened::Sweep(table)) => super::sweep::draw(frame, table, theme),
        None => draw_list(frame, browser, theme),
    }
}

fn state_style(state: RunState, theme: &Theme) -> Style {
    match state {
        RunState::Running => theme.accent(),
        RunState::Finished => theme.good(),
        RunState::Stopped => Style::new(),
        RunState::Failed => theme.bad(),
        RunState::Interrupted | RunState::TimedOut => theme.warn(),
    }
}

fn draw_list(frame: &mut Frame, browser: &Browser, theme: &Theme) {
    let [table_area, footer_area] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(1)]).areas(frame.area());
    let visible = browser.visible();
    let running = browser
        .listing
        .runs
        .iter()
        .filter(|r| r.state == RunState::Running)
        .count();
    let mut title = format!(
        " runs · {} · {} run{}",
        browser.runs_dir.display(),
        browser.listing.runs.len(),
        if browser.listing.runs.len() == 1 {
            ""
        } else {
            "s"
        }
    );
    if running > 0 {
        title.push_str(&format!(", {running} running"));
    }
    if !browser.filter.is_empty() {
        title.push_str(&format!(" · {} shown", visible.len()));
    }
    if browser.listing.not_runs > 0 {
        title.push_str(&format!(
            " · {} other entries skipped",
            browser.listing.not_runs
        ));
    }
    title.push(' ');
    let order = format!(
        " sorted by {} {} ",
        browser.sort.title(),
        if browser.descending { "↓" } else { "↑" }
    );

    // Fixed columns first; the optional ones join as the width allows.
    let id_width = visible
        .iter()
        .map(|r| r.id.chars().count())
        .max()
        .unwrap_or(3)
        .clamp(3, 40) as u16;
    let mut header = vec![
        "",
        "run",
        "experiment",
        "state",
        "epochs",
        "best val",
        "gap",
    ];
    let mut widths = vec![
        Constraint::Length(1),
        Constraint::Length(id_width),
        Constraint::Length(12),
        Constraint::Length(11),
        Constraint::Length(7),
        Constraint::Length(9),
        Constraint::Length(7),
    ];
    let fixed: u16 = 1 + id_width + 12 + 11 + 7 + 9 + 7 + 7;
    let room = table_area.width.saturating_sub(2 + fixed);
    let extras = if room >= 46 {
        3
    } else if room >= 32 {
        2
    } else {
        0
    };
    if extras >= 2 {
        header.extend(["tricks", "time"]);
        widths.extend([Constraint::Length(22), Constraint::Length(7)]);
    }
    if extras == 3 {
        // Where a run came from (a fork's parent and epoch, resumes) takes what is left.
        header.extend(["dataset", "from"]);
        widths.extend([Constraint::Length(12), Constraint::Min(8)]);
    }
    let rows = visible.iter().map(|run| row(run, browser, theme, extras));
    // Disk use in the frame rather than a column: the table keeps its width for the lineage.
    let total: u64 = browser.disk.values().sum();
    let selected = browser
        .selected_run()
        .and_then(|run| browser.disk.get(&run.id));
    let disk = match selected {
        Some(&bytes) => format!(
            " disk: {} selected · {} all runs (kiln prune frees checkpoints) ",
            megabytes(bytes),
            megabytes(total)
        ),
        None => format!(" disk: {} all runs ", megabytes(total)),
    };
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(theme.strong()))
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .column_spacing(1)
        .block(
            Block::bordered()
                .title(title)
                .title(Line::from(order).right_aligned())
                .title_bottom(Line::from(disk).style(theme.dim())),
        );
    let mut state = TableState::default().with_selected(Some(browser.selected));
    frame.render_stateful_widget(table, table_area, &mut state);
    if visible.is_empty() {
        let text = if browser.listing.runs.is_empty() {
            "no runs yet: `kiln train` creates one"
        } else {
            "no run matches the filter (Esc clears it)"
        };
        let inner = Rect {
            y: table_area.y + 2,
            height: 1,
            x: table_area.x + 2,
            width: table_area.width.saturating_sub(4),
        };
        frame.render_widget(Paragraph::new(Span::styled(text, theme.dim())), inner);
    }
    frame.render_widget(Paragraph::new(footer(browser, theme)), footer_area);
}

fn row<'a>(run: &'a RunSummary, browser: &Browser, theme: &Theme, extras: usize) -> Row<'a> {
    let mark = if browser.marked.contains(&run.id) {
        "●"
    } else {
        " "
    };
    let best = match (run.best_validation_accuracy, run.best_epoch) {
        (Some(acc), Some(epoch)) => format!("{acc:.3}@{epoch}"),
        _ => "–".into(),
    };
    let state = match (&run.problem, run.state) {
        (Some(_), state) => format!("{}!", state.label()),
        (None, state) => state.label().to_string(),
    };
    let mut cells = vec![
        Cell::from(mark),
        Cell::from(run.id.as_str()),
        Cell::from(run.experiment.as_str()),
        Cell::from(Span::styled(state, state_style(run.state, theme))),
        Cell::from(format!("{}/{}", run.epochs_done, run.epochs_planned)),
        Cell::from(best),
        Cell::from(run.final_gap.map_or("–".into(), |g| format!("{g:+.3}"))),
    ];
    if extras >= 2 {
        cells.extend([
            Cell::from(run.tricks()),
            Cell::from(crate::format::duration(run.seconds)),
        ]);
    }
    if extras == 3 {
        cells.push(Cell::from(run.dataset.as_str()));
        cells.push(Cell::from(Span::styled(
            run.lineage().unwrap_or_default(),
            theme.dim(),
        )));
    }
    Row::new(cells)
}

fn footer(browser: &Browser, theme: &Theme) -> Line<'static> {
    let keys = |pairs: &[(&str, &str)]| super::footer::hints(None, pairs, theme);
    let mut spans = match &browser.mode {
        BrowserMode::Filter => vec![
            Span::styled(" filter: ", theme.strong()),
            Span::styled(format!("{}_", browser.filter), theme.accent()),
            Span::styled("  Enter keep · Esc clear", theme.dim()),
        ],
        BrowserMode::ConfirmDelete(id) => vec![Span::styled(
            format!(" Delete run {id} and all its files? y: delete · n: keep"),
            theme.warn(),
        )],
        BrowserMode::Rename { input, .. } => vec![
            Span::styled(" rename to: ", theme.strong()),
            Span::styled(format!("{input}_"), theme.accent()),
            Span::styled("  Enter rename · Esc cancel", theme.dim()),
        ],
        BrowserMode::List => keys(&[
            ("Enter", "open"),
            ("space", "mark"),
            ("c", "compare"),
            ("/", "filter"),
            ("s/S", "sort"),
            ("d", "delete"),
            ("R", "rename"),
            ("w", "sweep"),
            ("q", "back"),
        ]),
    };
    if let (BrowserMode::List, Some(message)) = (&browser.mode, &browser.message) {
        spans.push(Span::styled(format!("   {message}"), theme.warn()));
    }
    Line::from(spans)
}

/// Bytes as megabytes with one decimal (`12.4 MB`), or gigabytes from 10 GB on.
fn megabytes(bytes: u64) -> String {
    let mb = bytes as f64 / 1e6;
    if mb >= 10_000.0 {
        format!("{:.1} GB", mb / 1000.0)
    } else {
        format!("{mb:.1} MB")
    }
}
