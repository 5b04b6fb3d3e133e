//! The per-class view (`p`): the latest epoch's per-class scores, worst recall first, beside
//! the confusion matrix as coloured cells with counts (rows: true class).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Row, Table};

use crate::metrics;
use crate::protocol::ClassCounts;
use crate::tui::app::App;
use crate::tui::theme::Theme;

/// Class names are cut to this many characters in both panels.
const NAME_WIDTH: usize = 10;

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let Some((epoch, counts)) = app.run.latest_classes() else {
        let text = if app.run.epochs.is_empty() {
            "per-class scores appear after the first epoch"
        } else {
            "this run's log has no per-class counts (it predates them)"
        };
        let block = Block::bordered().title(" per class ");
        frame.render_widget(Paragraph::new(text).style(theme.dim()).block(block), area);
        return;
    };
    let names = app.run.class_names();
    let table_width = 40u16;
    let cells = counts.confusion.as_ref().map(|m| {
        MatrixLayout::new(
            names,
            counts,
            m.len(),
            area.width.saturating_sub(table_width),
        )
    });
    match cells {
        Some(cells) if cells.width() + table_width <= area.width => {
            let [left, right] = Layout::horizontal([
                Constraint::Min(table_width),
                Constraint::Length(cells.width()),
            ])
            .areas(area);
            draw_table(frame, left, epoch, names, counts, theme);
            draw_matrix(frame, right, names, counts, cells, theme);
        }
        _ => draw_table(frame, area, epoch, names, counts, theme),
    }
}

fn short(name: &str) -> String {
    name.chars().take(NAME_WIDTH).collect()
}

fn draw_table(
    frame: &mut Frame,
    area: Rect,
    epoch: usize,
    names: &[String],
    counts: &ClassCounts,
    theme: &Theme,
) {
    let scores = metrics::worst_first(counts);
    let mean = metrics::mean_recall(counts);
    let visible = area.height.saturating_sub(3) as usize;
    let hidden = scores.len().saturating_sub(visible);
    let rows = scores.iter().take(visible).map(|s| {
        // A class well below the mean recall is what the user should look at first.
        let style = if s.recall + 0.1 < mean {
            theme.bad()
        } else {
            Style::new()
        };
        Row::new(vec![
            short(names.get(s.class).map_or("?", String::as_str)),
            s.support.to_string(),
            format!("{:.3}", s.recall),
            format!("{:.3}", s.precision),
            format!("{:.3}", s.f1),
        ])
        .style(style)
    });
    let header = Row::new(["class", "n", "recall", "prec", "f1"]).style(theme.strong());
    let widths = [
        Constraint::Length(NAME_WIDTH as u16),
        Constraint::Length(5),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(6),
    ];
    let bottom = if hidden > 0 {
        format!(" {hidden} more · kiln evaluate for all ")
    } else {
        format!(" mean recall {mean:.3} ")
    };
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .block(
            Block::bordered()
                .title(format!(" per class · epoch {epoch} · worst recall first "))
                .title_bottom(Line::from(bottom).right_aligned()),
        );
    frame.render_widget(table, area);
}

/// Column widths of the matrix: the row labels, and the cells (wide enough for the largest
/// count, and for the class names too when there is room).
#[derive(Debug, Clone, Copy)]
struct MatrixLayout {
    label: usize,
    cell: usize,
    classes: usize,
}

const MATRIX_TITLE: &str = " confusion (rows: true) ";

impl MatrixLayout {
    fn new(names: &[String], counts: &ClassCounts, classes: usize, room: u16) -> Self {
        let name_len = |c: usize| {
            short(names.get(c).map_or("?", String::as_str))
                .chars()
                .count()
        };
        let longest = (0..classes).map(name_len).max().unwrap_or(1);
        let widest_count = counts.support.iter().max().copied().unwrap_or(0);
        let narrow = widest_count.to_string().len().max(2) + 1;
        let label = longest.max(4) + 1;
        let wide = narrow.max(longest + 1);
        let fits = |cell: usize| label + classes * cell + 2 <= room as usize;
        let cell = if fits(wide) { wide } else { narrow };
        Self {
            label,
            cell,
            classes,
        }
    }

    fn width(&self) -> u16 {
        let cells = self.label + self.classes * self.cell + 2;
        cells.max(MATRIX_TITLE.chars().count() + 2) as u16
    }
}

fn draw_matrix(
    frame: &mut Frame,
    area: Rect,
    names: &[String],
    counts: &ClassCounts,
    layout: MatrixLayout,
    theme: &Theme,
) {
    let Some(matrix) = &counts.confusion else {
        return;
    };
    let MatrixLayout { cell, label, .. } = layout;
    let name = |c: usize| short(names.get(c).map_or("?", String::as_str));
    // Column heads: the predicted class, cut to the cell.
    let mut lines = vec![Line::from(
        std::iter::once(Span::styled(format!("{:<label$}", "t\\p"), theme.dim()))
            .chain((0..matrix.len()).map(|c| {
                let head: String = name(c).chars().take(cell - 1).collect();
                Span::styled(format!("{head:>cell$}"), theme.strong())
            }))
            .collect::<Vec<_>>(),
    )];
    for (truth, row) in matrix.iter().enumerate() {
        let total = row.iter().sum::<u64>().max(1) as f64;
        let mut spans = vec![Span::styled(
            format!("{:<label$}", name(truth)),
            theme.strong(),
        )];
        for (predicted, &count) in row.iter().enumerate() {
            let share = count as f64 / total;
            let style = match (truth == predicted, count) {
                (_, 0) => theme.dim(),
                (true, _) => theme.good(),
                // Off the diagonal: a confusion that takes a tenth of a class stands out.
                (false, _) if share >= 0.1 => theme.bad(),
                (false, _) => theme.warn(),
            };
            let text = if count == 0 {
                "·".to_string()
            } else {
                count.to_string()
            };
            spans.push(Span::styled(format!("{text:>cell$}"), style));
        }
        lines.push(Line::from(spans));
    }
    let block = Block::bordered().title(MATRIX_TITLE);
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
