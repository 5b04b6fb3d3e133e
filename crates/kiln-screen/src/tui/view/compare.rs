//! Several runs side by side: validation loss and accuracy overlaid (one colour and legend entry
//! per run), and a table with a column per run holding best and final metrics and only the
//! experiment keys that differ.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Chart, Dataset, GraphType, LegendPosition, Paragraph, Row, Table,
};

use crate::runs::differing_settings;
use crate::tui::browser::ComparedRun;
use crate::tui::theme::Theme;

const PALETTE: [Color; 6] = [
    Color::Cyan,
    Color::Magenta,
    Color::Yellow,
    Color::Green,
    Color::Blue,
    Color::Red,
];

/// `A`, `B`, … so columns and legend entries line up without long ids.
fn letter(i: usize) -> char {
    (b'A' + (i % 26) as u8) as char
}

fn colour(theme: &Theme, i: usize) -> Style {
    if theme.color {
        Style::new().fg(PALETTE[i % PALETTE.len()])
    } else {
        Style::new()
    }
}

pub fn draw(frame: &mut Frame, area: Rect, runs: &[ComparedRun], theme: &Theme) {
    let [charts, table_area, footer] = Layout::vertical([
        Constraint::Percentage(50),
        Constraint::Min(6),
        Constraint::Length(1),
    ])
    .areas(area);
    let [loss_area, accuracy_area] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(charts);

    let series = |f: fn(&crate::protocol::EpochMetrics) -> f64| -> Vec<Vec<(f64, f64)>> {
        runs.iter().map(|r| r.view.epoch_series(f)).collect()
    };
    let losses = series(|m| m.validation_loss);
    let accuracies = series(|m| m.validation_accuracy);
    let x_max = runs
        .iter()
        .map(|r| r.view.epochs.len().max(r.view.total_epochs()))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let loss_max = losses
        .iter()
        .flatten()
        .map(|p| p.1)
        .fold(0.0f64, f64::max)
        .max(1e-3)
        * 1.05;
    let names: Vec<String> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| format!("{} {}", letter(i), r.summary.experiment))
        .collect();
    frame.render_widget(
        overlay(theme, " validation loss ", &names, &losses, x_max, loss_max),
        loss_area,
    );
    frame.render_widget(
        overlay(
            theme,
            " validation accuracy ",
            &names,
            &accuracies,
            x_max,
            1.0,
        ),
        accuracy_area,
    );
    draw_table(frame, table_area, runs, theme);
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(" Esc", theme.accent()),
            Span::raw(" back to the runs"),
        ])),
        footer,
    );
}

fn overlay<'a>(
    theme: &Theme,
    title: &'a str,
    names: &'a [String],
    series: &'a [Vec<(f64, f64)>],
    x_max: f64,
    y_max: f64,
) -> Chart<'a> {
    let datasets = series
        .iter()
        .zip(names)
        .enumerate()
        .map(|(i, (points, name))| {
            Dataset::default()
                .name(name.as_str())
                .marker(theme.marker())
                .graph_type(GraphType::Line)
                .style(colour(theme, i))
                .data(points)
        })
        .collect();
    Chart::new(datasets)
        .block(Block::bordered().title(title))
        .legend_position(Some(LegendPosition::TopRight))
        .hidden_legend_constraints((Constraint::Ratio(2, 3), Constraint::Ratio(1, 1)))
        .x_axis(
            Axis::default()
                .title("epoch")
                .bounds([0.0, x_max])
                .labels([Span::raw("0"), Span::raw(format!("{x_max:.0}"))]),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, y_max])
                .labels([Span::raw("0"), Span::raw(format!("{y_max:.2}"))]),
        )
}

fn draw_table(frame: &mut Frame, area: Rect, runs: &[ComparedRun], theme: &Theme) {
    let mut header = vec![Span::raw("")];
    header.extend(
        runs.iter().enumerate().map(|(i, r)| {
            Span::styled(format!("{} {}", letter(i), r.summary.id), colour(theme, i))
        }),
    );
    let metric = |name: &str, f: &dyn Fn(&ComparedRun) -> String| -> Row<'static> {
        let mut cells = vec![name.to_string()];
        cells.extend(runs.iter().map(f));
        Row::new(cells)
    };
    let dash = || "–".to_string();
    let mut rows = vec![
        metric("state", &|r| r.summary.state.label().to_string()),
        metric("epochs", &|r| {
            format!("{}/{}", r.summary.epochs_done, r.summary.epochs_planned)
        }),
        metric(
            "best val acc",
            &|r| match (r.summary.best_validation_accuracy, r.summary.best_epoch) {
                (Some(a), Some(e)) => format!("{a:.4} @ {e}"),
                _ => dash(),
            },
        ),
        metric("final val acc", &|r| {
            r.summary
                .final_validation_accuracy
                .map_or_else(dash, |a| format!("{a:.4}"))
        }),
        metric("final gap", &|r| {
            r.summary
                .final_gap
                .map_or_else(dash, |g| format!("{g:+.4}"))
        }),
        metric("time", &|r| crate::format::duration(r.summary.seconds)),
        metric("live changes", &|r| {
            let changes: Vec<String> = r
                .view
                .changes
                .iter()
                .map(|c| format!("{} @ e{}", c.describe(), c.epoch))
                .collect();
            if changes.is_empty() {
                "none".into()
            } else {
                changes.join(", ")
            }
        }),
    ];
    let settings: Vec<_> = runs.iter().map(|r| r.settings.clone()).collect();
    let differing = differing_settings(&settings);
    for (key, values) in &differing {
        let mut cells = vec![key.clone()];
        cells.extend(values.iter().map(|v| v.clone().unwrap_or_else(dash)));
        rows.push(Row::new(cells).style(theme.accent()));
    }
    let mut widths = vec![Constraint::Length(22)];
    widths.extend(runs.iter().map(|_| Constraint::Min(12)));
    let title = if differing.is_empty() {
        " compared · the experiments are identical ".to_string()
    } else {
        format!(" compared · {} setting(s) differ ", differing.len())
    };
    frame.render_widget(
        Table::new(rows, widths)
            .header(Row::new(header).style(theme.strong()))
            .column_spacing(1)
            .block(Block::bordered().title(title)),
        area,
    );
}
