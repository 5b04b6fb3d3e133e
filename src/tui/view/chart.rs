//! Full charts of the whole run: loss and accuracy against epochs, with a vertical marker where
//! each hyper-parameter change happened. x is in epochs: batch k of epoch e sits at e − 1 + k/n.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::Span;
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, LegendPosition};

use crate::monitor::axis_range;
use crate::tui::app::App;
use crate::tui::theme::Theme;

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let [top, bottom] =
        Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(area);
    let run = &app.run;
    let per_epoch = run.batches_per_epoch().max(1) as f64;
    let train_loss: Vec<(f64, f64)> = run
        .train_loss
        .iter()
        .enumerate()
        .map(|(i, &v)| ((i + 1) as f64 / per_epoch, v))
        .filter(|(_, v)| v.is_finite())
        .collect();
    let val_loss = run.epoch_series(|m| m.validation_loss);
    let train_acc = run.epoch_series(|m| m.train_accuracy);
    let val_acc = run.epoch_series(|m| m.validation_accuracy);
    let x_max = (run.total_epochs().max(1) as f64).max(run.step as f64 / per_epoch);

    let loss_range = if app.full_range {
        let max = train_loss
            .iter()
            .chain(&val_loss)
            .map(|p| p.1)
            .fold(0.0f64, f64::max);
        [0.0, max.max(1e-3) * 1.05]
    } else {
        axis_range(train_loss.iter().chain(&val_loss).map(|p| p.1), 1e-3)
    };
    // A 0–1 axis makes a 94% vs 100% gap a few dots: by default the axis spans the data.
    let accuracy_range = if app.full_range {
        [0.0, 1.0]
    } else {
        let range = axis_range(train_acc.iter().chain(&val_acc).map(|p| p.1), 0.02);
        [range[0].max(0.0), range[1].min(1.0)]
    };
    // One vertical segment per hyper-parameter change, in each chart's own y range.
    let markers = |y: [f64; 2]| -> Vec<(String, [(f64, f64); 2])> {
        run.changes
            .iter()
            .map(|c| {
                let at = c.step as f64 / per_epoch;
                (c.describe(), [(at, y[0]), (at, y[1])])
            })
            .collect()
    };
    let loss_markers = markers(loss_range);
    let accuracy_markers = markers(accuracy_range);
    let range_key = if app.full_range {
        "data range"
    } else {
        "full range"
    };
    let loss = series_chart(
        theme,
        "loss",
        range_key,
        &[
            ("train", &train_loss, theme.accent()),
            ("val", &val_loss, theme.second()),
        ],
        &loss_markers,
        [0.0, x_max],
        loss_range,
    );
    frame.render_widget(loss, top);
    let accuracy = series_chart(
        theme,
        "accuracy",
        range_key,
        &[
            ("train", &train_acc, theme.accent()),
            ("val", &val_acc, theme.second()),
        ],
        &accuracy_markers,
        [0.0, x_max],
        accuracy_range,
    );
    frame.render_widget(accuracy, bottom);
}

/// A named line and its style.
type Series<'a> = (&'a str, &'a [(f64, f64)], Style);

fn series_chart<'a>(
    theme: &Theme,
    title: &str,
    range_key: &str,
    series: &[Series<'a>],
    markers: &'a [(String, [(f64, f64); 2])],
    x: [f64; 2],
    y: [f64; 2],
) -> Chart<'a> {
    let marker = theme.marker();
    let mut datasets: Vec<Dataset<'a>> = series
        .iter()
        .map(|(name, points, style)| {
            Dataset::default()
                .name(*name)
                .marker(marker)
                .graph_type(GraphType::Line)
                .style(*style)
                .data(points)
        })
        .collect();
    datasets.extend(markers.iter().map(|(name, points)| {
        Dataset::default()
            .name(name.as_str())
            .marker(marker)
            .graph_type(GraphType::Line)
            .style(theme.warn())
            .data(points)
    }));
    let label = |v: f64| Span::raw(format!("{v:.2}"));
    Chart::new(datasets)
        .legend_position(Some(LegendPosition::TopRight))
        // Show the legend whenever it fits in half the chart, change markers included.
        .hidden_legend_constraints((Constraint::Ratio(1, 2), Constraint::Ratio(1, 1)))
        .block(Block::bordered().title(format!(" {title} (g: dashboard · z: {}) ", range_key)))
        .x_axis(Axis::default().title("epoch").bounds(x).labels([
            Span::raw("0"),
            Span::raw(format!("{:.0}", x[1] / 2.0)),
            Span::raw(format!("{:.0}", x[1])),
        ]))
        .y_axis(Axis::default().bounds(y).labels([
            label(y[0]),
            label((y[0] + y[1]) / 2.0),
            label(y[1]),
        ]))
}
