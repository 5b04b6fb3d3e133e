//! Drawing the screen from the app state; nothing here changes state or does I/O.
//!
//! ```text
//! ┌ kiln · baseline · mnist-5k ─────────────────────────────────────── RUNNING ┐
//! │ epoch 7/20 ▕████▌    ▏ 12/32  run ▕███       ▏ 33%  1840 img/s  ETA 1m12s │  header
//! │ flex: CPU, 2 threads · 1000 train / 1000 val · 10 classes · 1×28×28       │
//! └───────────────────────────────────────────────────────────────────────────┘
//! ┌ loss ─────────────────────────┐┌ epochs ──────────────────────────────────┐
//! │ train ▁▂▃▅▇▆▅▄▃▃▂▂▁  0.112 ↓   ││  ep  train   val    gap  val loss   time │
//! │ val   ▇▆▅▄▃▃▃▄▄▅▆   0.341 ↑   ││   5  0.981  0.952  0.029   0.171    3.1s │
//! │ lr 1e-3 · dropout 0.00 · …    ││   6  0.992  0.949  0.043   0.190    3.0s │
//! └───────────────────────────────┘│   7◆ 0.997  0.944  0.053   0.221    3.0s │
//! ┌ ⚠ overfitting ────────────────┐│                                          │
//! │ what is happening, since when,││                                          │
//! │ what to try (with its key)    ││                                          │
//! └───────────────────────────────┘└──────────────────────────────────────────┘
//! ┌ activity ─────────────────────────────────────────────────────────────────┐
//! │ e7 s210  dropout 0.00 → 0.05                                              │
//! └ ✓ dropout 0.00 → 0.05 applied at step 210 ────────────────────────────────┘
//!  space pause · d/D dropout · l/L lr · e edit · c checkpoint · s stop · ? help    footer
//! ```
//!
//! `g` swaps the middle for full loss and accuracy charts, `p` for the per-class view; `?` lays the key list over it all.

mod ascii;
mod browser;
mod chart;
mod classes;
mod compare;
mod dashboard;
mod footer;
mod header;
mod images;
mod sweep;

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Clear, Paragraph, Row, Table};

use super::app::{App, Mode, Screen};
use super::keys::KEYS;
use super::theme::Theme;
use super::ui::Ui;

/// Below this the screen cannot show its panels legibly, so it says so instead.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 18;

/// The whole terminal: the browser when it is open (and fits), else the run screen.
pub fn draw(frame: &mut Frame, ui: &Ui, theme: &Theme) {
    match &ui.browser {
        Some(b) if frame.area().width >= MIN_WIDTH && frame.area().height >= MIN_HEIGHT => {
            browser::draw(frame, b, theme);
        }
        _ => draw_screen(frame, &ui.app, theme),
    }
    if theme.ascii {
        ascii::fallback(frame.buffer_mut());
    }
}

pub(super) fn draw_screen(frame: &mut Frame, app: &App, theme: &Theme) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(frame, area);
        return;
    }
    let [header_area, body, activity, footer_area] = Layout::vertical([
        Constraint::Length(4),
        Constraint::Min(8),
        Constraint::Length(if area.height >= 30 { 7 } else { 5 }),
        Constraint::Length(1),
    ])
    .areas(area);
    header::draw(frame, header_area, app, theme);
    match app.screen {
        Screen::Dashboard => dashboard::draw(frame, body, app, theme),
        Screen::Chart => chart::draw(frame, body, app, theme),
        Screen::Classes => classes::draw(frame, body, app, theme),
        Screen::Images => images::draw(frame, body, app, theme),
    }
    dashboard::draw_activity(frame, activity, app, theme);
    footer::draw(frame, footer_area, app, theme);
    if app.mode == Mode::Help {
        help(frame, area, theme);
    }
}

fn too_small(frame: &mut Frame, area: Rect) {
    if area.width == 0 || area.height == 0 {
        return;
    }
    let text = vec![
        Line::from(format!(
            "terminal too small: {}×{}",
            area.width, area.height
        )),
        Line::from(format!("kiln needs at least {MIN_WIDTH}×{MIN_HEIGHT}")),
    ];
    let top = area.height.saturating_sub(2) / 2;
    let centred = Rect {
        y: area.y + top,
        height: area.height - top,
        ..area
    };
    frame.render_widget(Paragraph::new(text).alignment(Alignment::Center), centred);
}

fn help(frame: &mut Frame, area: Rect, theme: &Theme) {
    let width = 62.min(area.width);
    let height = (KEYS.len() as u16 + 4).min(area.height);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    let rows = KEYS.iter().map(|(keys, what)| Row::new([*keys, *what]));
    let table = Table::new(rows, [Constraint::Length(8), Constraint::Min(10)])
        .block(
            Block::bordered()
                .title(" keys ")
                .title_bottom(Line::from(" Esc or ? to close ").right_aligned())
                .border_style(theme.accent()),
        )
        .column_spacing(2);
    frame.render_widget(Clear, popup);
    frame.render_widget(table, popup);
}
