//! The learning-rate finder's curve as a PNG: smoothed loss against the rate (log scale), with
//! the suggested rate marked.

use std::path::Path;

use plotters::prelude::*;

use super::{Suggestion, Sweep, loss_axis, rate_text};

/// Draws `sweep` to `path` (1000×600).
pub fn write_png(
    sweep: &Sweep,
    suggestion: Option<&Suggestion>,
    title: &str,
    path: &Path,
) -> Result<(), String> {
    crate::fonts::register();
    let root = BitMapBackend::new(path, (1000, 600)).into_drawing_area();
    draw(&root, sweep, suggestion, title).map_err(|e| format!("{}: {e}", path.display()))?;
    root.present()
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn draw(
    root: &DrawingArea<BitMapBackend, plotters::coord::Shift>,
    sweep: &Sweep,
    suggestion: Option<&Suggestion>,
    title: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    root.fill(&WHITE)?;
    let (Some(&first), Some(&last)) = (sweep.rates.first(), sweep.rates.last()) else {
        return Ok(());
    };
    let smoothed = sweep.smoothed();
    let [low, high] = loss_axis(&smoothed);
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 24))
        .margin(20)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d((first..last.max(first * 1.0001)).log_scale(), low..high)?;
    chart
        .configure_mesh()
        .x_desc("learning rate")
        .y_desc("loss (smoothed)")
        .x_label_formatter(&|v| rate_text(*v))
        .label_style(("sans-serif", 16))
        .draw()?;
    chart
        .draw_series(LineSeries::new(
            sweep
                .rates
                .iter()
                .zip(&smoothed)
                .map(|(&r, &l)| (r, l.min(high))),
            BLUE.stroke_width(2),
        ))?
        .label("smoothed loss")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    if let Some(s) = suggestion {
        chart
            .draw_series(LineSeries::new(
                [(s.steepest, low), (s.steepest, high)],
                RED.stroke_width(1),
            ))?
            .label(format!("suggested {}", rate_text(s.steepest)))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 16))
        .draw()?;
    Ok(())
}
