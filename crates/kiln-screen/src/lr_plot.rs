//! The learning-rate finder's curve as text for the terminal: ratatui's chart drawn into a
//! buffer and printed as lines, so `kiln lr-find` shows it in any terminal or log without
//! opening a screen.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::symbols::Marker;
use ratatui::text::Span;
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Widget};

use kiln_core::lr_find::{Suggestion, Sweep, loss_axis, rate_text};

/// The smoothed loss against the rate (log scale), the suggested rate as a dotted vertical line;
/// `width` × `height` cells, braille dots or, with `ascii`, plain dots.
pub fn text_chart(
    sweep: &Sweep,
    suggestion: Option<&Suggestion>,
    width: u16,
    height: u16,
    ascii: bool,
) -> String {
    let (Some(&first), Some(&last)) = (sweep.rates.first(), sweep.rates.last()) else {
        return String::new();
    };
    let smoothed = sweep.smoothed();
    let y = loss_axis(&smoothed);
    let x = [first.log10(), last.log10().max(first.log10() + 1e-6)];
    let marker = if ascii { Marker::Dot } else { Marker::Braille };
    let curve: Vec<(f64, f64)> = sweep
        .rates
        .iter()
        .zip(&smoothed)
        .map(|(&r, &l)| (r.log10(), l.min(y[1])))
        .collect();
    let mark: Vec<(f64, f64)> = suggestion
        .map(|s| vec![(s.steepest.log10(), y[0]), (s.steepest.log10(), y[1])])
        .unwrap_or_default();
    let mut datasets = vec![
        Dataset::default()
            .name("loss (smoothed)")
            .marker(marker)
            .graph_type(GraphType::Line)
            .data(&curve),
    ];
    if !mark.is_empty() {
        datasets.push(
            Dataset::default()
                .name("suggested")
                .marker(Marker::Dot)
                .graph_type(GraphType::Line)
                .data(&mark),
        );
    }
    let rate_label = |exponent: f64| Span::raw(rate_text(10f64.powf(exponent)));
    // No legend: it would cover the curve's top right, where the loss blows up; the command's
    // text says what the dotted line is.
    let chart = Chart::new(datasets)
        .legend_position(None)
        .x_axis(Axis::default().title("learning rate").bounds(x).labels([
            rate_label(x[0]),
            rate_label((x[0] + x[1]) / 2.0),
            rate_label(x[1]),
        ]))
        .y_axis(Axis::default().title("loss").bounds(y).labels([
            Span::raw(format!("{:.3}", y[0])),
            Span::raw(format!("{:.3}", (y[0] + y[1]) / 2.0)),
            Span::raw(format!("{:.3}", y[1])),
        ]));
    let area = Rect::new(0, 0, width, height);
    let mut buffer = Buffer::empty(area);
    chart.render(area, &mut buffer);
    (0..height)
        .map(|row| {
            let line: String = (0..width)
                .map(|column| buffer[(column, row)].symbol())
                .collect();
            line.trim_end().to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}
