//! Drawing the screen into a fixed-size test terminal, as text (colours are checked apart).

use kiln_screen::tui::theme::Theme;
use kiln_screen::tui::{Ui, view};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;

pub fn render_ui(ui: &Ui, width: u16, height: u16, theme: Theme) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| view::draw(frame, ui, &theme))
        .unwrap();
    text(terminal.backend().buffer())
}

/// The buffer as lines of text (colours are checked separately).
pub fn text(buffer: &Buffer) -> String {
    let width = buffer.area.width as usize;
    let mut out = String::new();
    for (i, cell) in buffer.content.iter().enumerate() {
        out.push_str(cell.symbol());
        if (i + 1) % width == 0 {
            out.push('\n');
        }
    }
    out
}
