//! Full charts of the whole run: loss and accuracy against epochs, with a vertical marker where
//! each hyper-parameter change happened. x is in epochs: batch k of epoch e sits at e − 1 + k/n.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::Span;
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, LegendPosition};

use crate::monitor::axis_range;
use crate::tui::app::{App, ChartScale};
use crate::tui::theme::Theme;

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let [top, bottom] =
        Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(area);
    let run = &app.run;
    let per_epoch = run.batches_per_epoch().max(1) as f64;
    let mut train_loss: Vec<(f64, f64)> = run
        .train_loss
        .iter()
        .enumerate()
        .map(|(i, &v)| ((i + 1) as f64 / per_epoch, v))
        .filter(|(_, v)| v.is_finite())
        .collect();
    let mut val_loss = run.epoch_series(|m| m.validation_loss);
    let train_acc = run.epoch_series(|m| m.train_accuracy);
    let val_acc = run.epoch_series(|m| m.validation_accuracy);
    let x_max = (run.total_epochs().max(1) as f64).max(run.step as f64 / per_epoch);

    let log = app.scale == ChartScale::LogLoss;
    if log {
        // Plotted as log10; the axis labels turn them back into losses.
        for series in [&mut train_loss, &mut val_loss] {
            series.retain(|p| p.1 > 0.0);
            series.iter_mut().for_each(|p| p.1 = p.1.log10());
        }
    }
    let loss_range = if app.scale == ChartScale::Full {
        let max = train_loss
            .iter()
            .chain(&val_loss)
            .map(|p| p.1)
            .fold(0.0f64, f64::max);
        [0.0, max.max(1e-3) * 1.05]
    } else {
        axis_range(
            train_loss.iter().chain(&val_loss).map(|p| p.1),
            if log { 0.05 } else { 1e-3 },
        )
    };
    // A 0–1 axis makes a 94% vs 100% gap a few dots: by default the axis spans the data.
    let accuracy_range = if app.scale == ChartScale::Full {
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
    let range_key = app.scale.next_label();
    let loss = series_chart(
        theme,
        if log { "loss, log scale" } else { "loss" },
        range_key,
        &[
            ("train", &train_loss, theme.accent()),
            ("val", &val_loss, theme.second()),
        ],
        &loss_markers,
        [0.0, x_max],
        YAxis {
            bounds: loss_range,
            label: if log { log_label } else { linear_label },
        },
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
        YAxis {
            bounds: accuracy_range,
            label: linear_label,
        },
    );
    frame.render_widget(accuracy, bottom);
}

/// A chart's y axis: its bounds (in plotted units) and how a plotted value is labelled.
struct YAxis {
    bounds: [f64; 2],
    label: fn(f64) -> String,
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
    y: YAxis,
) -> Chart<'a> {
    let YAxis { bounds: y, label } = y;
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
    let label = |v: f64| Span::raw(label(v));
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

fn linear_label(value: f64) -> String {
    format!("{value:.2}")
}

/// A log10-plotted value as the loss it stands for; small losses need more than two decimals.
fn log_label(log10: f64) -> String {
    let value = 10f64.powf(log10);
    if value < 0.1 {
        format!("{value:.1e}")
    } else {
        format!("{value:.2}")
    }
}
