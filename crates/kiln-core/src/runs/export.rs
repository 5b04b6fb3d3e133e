//! Exports of a run for reports: per-epoch metrics as CSV, and loss and accuracy curves with
//! hyper-parameter change markers as a PNG drawn with plotters.

use std::path::Path;

use plotters::prelude::*;

use crate::diagnose::best_epoch;
use crate::monitor::axis_range;
use crate::protocol::{EpochMetrics, Event, EventKind, HyperParameter, class_names, epoch_events};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{path}: {message}")]
    Write { path: String, message: String },
    #[error("the run has no finished epoch to export")]
    NoEpochs,
}

fn write_error(path: &Path, message: impl ToString) -> ExportError {
    ExportError::Write {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// Writes a header and rows; returns how many rows.
fn write_csv(
    path: &Path,
    header: &[&str],
    rows: impl IntoIterator<Item = Vec<String>>,
) -> Result<usize, ExportError> {
    let fail = |e: csv::Error| write_error(path, e);
    let mut writer = csv::Writer::from_path(path).map_err(fail)?;
    writer.write_record(header).map_err(fail)?;
    let mut count = 0;
    for row in rows {
        writer.write_record(&row).map_err(fail)?;
        count += 1;
    }
    writer.flush().map_err(|e| write_error(path, e))?;
    Ok(count)
}

/// One row per finished epoch, with a header row.
pub fn export_csv(events: &[Event], path: &Path) -> Result<usize, ExportError> {
    let header = [
        "epoch",
        "step",
        "train_loss",
        "train_accuracy",
        "validation_loss",
        "validation_accuracy",
        "gap",
        "learning_rate",
        "dropout",
        "seconds",
        "images_per_second",
    ];
    let rows = epoch_events(events)
        .into_iter()
        .enumerate()
        .map(|(i, (event, m))| {
            vec![
                event.epoch.unwrap_or(i + 1).to_string(),
                event.step.unwrap_or(0).to_string(),
                m.train_loss.to_string(),
                m.train_accuracy.to_string(),
                m.validation_loss.to_string(),
                m.validation_accuracy.to_string(),
                m.gap().to_string(),
                m.learning_rate.to_string(),
                m.dropout.to_string(),
                m.seconds.to_string(),
                m.images_per_second.to_string(),
            ]
        });
    write_csv(path, &header, rows)
}

/// One row per epoch and class: the per-class validation counts and scores. Epochs logged
/// without class counts (older runs) have no rows.
pub fn export_classes_csv(events: &[Event], path: &Path) -> Result<usize, ExportError> {
    let classes = class_names(events);
    let header = [
        "epoch",
        "class",
        "support",
        "correct",
        "predicted",
        "recall",
        "precision",
        "f1",
    ];
    let mut rows = Vec::new();
    for (i, (event, m)) in epoch_events(events).into_iter().enumerate() {
        let Some(counts) = &m.classes else { continue };
        for score in crate::metrics::scores(counts) {
            rows.push(vec![
                event.epoch.unwrap_or(i + 1).to_string(),
                classes
                    .get(score.class)
                    .cloned()
                    .unwrap_or_else(|| score.class.to_string()),
                score.support.to_string(),
                counts.correct[score.class].to_string(),
                counts.predicted[score.class].to_string(),
                score.recall.to_string(),
                score.precision.to_string(),
                score.f1.to_string(),
            ]);
        }
    }
    write_csv(path, &header, rows)
}

/// Image size of the PNG export.
pub const PNG_SIZE: (u32, u32) = (1200, 800);

/// Loss (top) and accuracy (bottom) against epochs, with a dashed line and label at each
/// hyper-parameter change.
pub fn export_png(events: &[Event], title: &str, path: &Path) -> Result<(), ExportError> {
    crate::fonts::register();
    let epochs: Vec<(usize, EpochMetrics)> = epoch_events(events)
        .into_iter()
        .enumerate()
        .map(|(i, (event, m))| (event.epoch.unwrap_or(i + 1), m.clone()))
        .collect();
    let mut batches_per_epoch = 1.0f64;
    let mut changes = Vec::new();
    for event in events {
        match &event.kind {
            EventKind::RunStarted(start) => {
                batches_per_epoch = start.batches_per_epoch.max(1) as f64
            }
            EventKind::HyperParameterChanged {
                parameter,
                from,
                to,
            } => {
                let name = match parameter {
                    HyperParameter::Dropout => format!("dropout {from:.2}→{to:.2}"),
                    HyperParameter::LearningRate => format!("lr {from:e}→{to:e}"),
                    HyperParameter::BackboneFrozen => {
                        parameter.switched(*to).unwrap_or_default().to_string()
                    }
                };
                changes.push((event.step.unwrap_or(0) as f64 / batches_per_epoch, name));
            }
            _ => {}
        }
    }
    if epochs.is_empty() {
        return Err(ExportError::NoEpochs);
    }
    let root = BitMapBackend::new(path, PNG_SIZE).into_drawing_area();
    draw_png(&root, title, &epochs, &changes).map_err(|e| write_error(path, e))?;
    root.present().map_err(|e| write_error(path, e))
}

type Epochs = [(usize, EpochMetrics)];

/// A named series: how to read one value from an epoch's metrics.
type Series = (&'static str, fn(&crate::protocol::EpochMetrics) -> f64);

/// One chart of the PNG: where it goes, its y label and range, and its two series.
type Panel<'a, 'b> = (
    &'a DrawingArea<BitMapBackend<'b>, plotters::coord::Shift>,
    &'static str,
    [f64; 2],
    [Series; 2],
);

fn draw_png(
    root: &DrawingArea<BitMapBackend, plotters::coord::Shift>,
    title: &str,
    epochs: &Epochs,
    changes: &[(f64, String)],
) -> Result<(), Box<dyn std::error::Error>> {
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 26))?;
    let (top, bottom) = root.split_vertically(PNG_SIZE.1 / 2 - 20);
    let last = epochs.last().map_or(1, |(e, _)| *e).max(1) as f64;
    let values = |f: fn(&EpochMetrics) -> [f64; 2]| {
        epochs
            .iter()
            .flat_map(move |(_, m)| f(m))
            .filter(|v| v.is_finite())
    };
    let loss_range = axis_range(values(|m| [m.train_loss, m.validation_loss]), 1e-3);
    let accuracy_range = axis_range(values(|m| [m.train_accuracy, m.validation_accuracy]), 0.02);
    let accuracy_range = [accuracy_range[0].max(0.0), accuracy_range[1].min(1.0)];
    let panels: [Panel; 2] = [
        (
            &top,
            "loss",
            loss_range,
            [
                ("train loss", |m| m.train_loss),
                ("validation loss", |m| m.validation_loss),
            ],
        ),
        (
            &bottom,
            "accuracy",
            accuracy_range,
            [
                ("train accuracy", |m| m.train_accuracy),
                ("validation accuracy", |m| m.validation_accuracy),
            ],
        ),
    ];
    let best = best_epoch(&epochs.iter().map(|(_, m)| m.clone()).collect::<Vec<_>>());
    for (area, label, [y_min, y_max], series) in panels {
        let mut chart = ChartBuilder::on(area)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..last, y_min..y_max)?;
        // Epochs are whole numbers: a tick between two of them gets no label.
        let whole = |x: &f64| {
            if (x - x.round()).abs() < 1e-9 {
                format!("{x:.0}")
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc(label)
            .x_labels((last as usize + 1).min(21))
            .x_label_formatter(&whole)
            .label_style(("sans-serif", 16))
            .draw()?;
        for ((name, value), colour) in series.into_iter().zip([BLUE, RED]) {
            chart
                .draw_series(LineSeries::new(
                    epochs
                        .iter()
                        .map(|(e, m)| (*e as f64, value(m)))
                        .filter(|p| p.1.is_finite()),
                    colour.stroke_width(2),
                ))?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2))
                });
        }
        if let Some(best) = best.filter(|_| label == "accuracy") {
            let accuracy = epochs[best - 1].1.validation_accuracy;
            let point = (epochs[best - 1].0 as f64, accuracy);
            chart.draw_series(std::iter::once(Circle::new(point, 6, RED.filled())))?;
            chart.draw_series(std::iter::once(Text::new(
                format!("best: epoch {}", epochs[best - 1].0),
                // Left of the point near the right edge, so the label is not cut off.
                (
                    if point.0 > last * 0.7 {
                        point.0 - last * 0.15
                    } else {
                        point.0
                    },
                    accuracy - (y_max - y_min) * 0.08,
                ),
                ("sans-serif", 15).into_font().color(&RED),
            )))?;
        }
        for (at, name) in changes {
            chart.draw_series(DashedLineSeries::new(
                [(*at, y_min), (*at, y_max)],
                6,
                4,
                RGBColor(230, 140, 0).stroke_width(2),
            ))?;
            chart.draw_series(std::iter::once(Text::new(
                name.clone(),
                (*at, y_max - (y_max - y_min) * 0.05),
                ("sans-serif", 15).into_font().color(&RGBColor(170, 90, 0)),
            )))?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 15))
            .draw()?;
    }
    Ok(())
}
