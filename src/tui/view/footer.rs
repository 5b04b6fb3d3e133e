//! The footer line: the keys, or the value prompt, or the quit confirmation.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::protocol::HyperParameter;
use crate::tui::app::{App, Mode};
use crate::tui::theme::Theme;

const KEYS_WIDE: &[(&str, &str)] = &[
    ("space", "pause"),
    ("d/D", "dropout"),
    ("l/L", "lr"),
    ("e", "edit"),
    ("c", "checkpoint"),
    ("s", "stop"),
    ("g", "chart"),
    ("r", "runs"),
    ("?", "help"),
    ("q", "quit"),
];

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let line = match &app.mode {
        Mode::Prompt(prompt) => {
            let name = match prompt.field {
                HyperParameter::Dropout => "dropout",
                HyperParameter::LearningRate => "learning rate",
            };
            let mut spans = vec![
                Span::styled(format!(" set {name}: "), theme.strong()),
                Span::styled(format!("{}_", prompt.input), theme.accent()),
                Span::styled("  Enter apply · Tab dropout/lr · Esc cancel", theme.dim()),
            ];
            if let Some(error) = &prompt.error {
                spans.push(Span::styled(format!("  {error}"), theme.bad()));
            }
            Line::from(spans)
        }
        Mode::ConfirmQuit => Line::from(vec![Span::styled(
            " The run is still training. Stop it and quit? y: stop and quit · n: keep training",
            theme.warn(),
        )]),
        Mode::Normal | Mode::Help if app.review.is_some() => Line::from(vec![
            Span::styled(" Esc", theme.accent()),
            Span::raw(" back to the runs · "),
            Span::styled("g", theme.accent()),
            Span::raw(" chart · "),
            Span::styled("↑/↓", theme.accent()),
            Span::raw(" scroll"),
        ]),
        Mode::Normal | Mode::Help if !app.run.is_active() => Line::from(vec![
            Span::styled(" the run has ended", theme.dim()),
            Span::raw(" · "),
            Span::styled("g", theme.accent()),
            Span::raw(" chart · "),
            Span::styled("↑/↓", theme.accent()),
            Span::raw(" scroll · "),
            Span::styled("?", theme.accent()),
            Span::raw(" help · "),
            Span::styled("q", theme.accent()),
            Span::raw(" quit"),
        ]),
        Mode::Normal | Mode::Help => keys_line(area.width as usize, app.attached, theme),
    };
    frame.render_widget(Paragraph::new(line), area);
}

fn keys_line(width: usize, attached: bool, theme: &Theme) -> Line<'static> {
    // Drop the least needed keys until the line fits.
    let mut keys: Vec<(&str, &str)> = KEYS_WIDE.to_vec();
    if attached {
        // Quitting a viewer leaves the run training; say so where the key is shown.
        if let Some(quit) = keys.iter_mut().find(|(key, _)| *key == "q") {
            quit.1 = "detach";
        }
    }
    let length = |keys: &[(&str, &str)]| -> usize {
        keys.iter()
            .map(|(k, what)| k.chars().count() + what.chars().count() + 4)
            .sum::<usize>()
    };
    for dropped in ["edit", "runs", "chart", "checkpoint"] {
        if length(&keys) <= width {
            break;
        }
        keys.retain(|(_, what)| *what != dropped);
    }
    let mut spans = Vec::new();
    for (i, (key, what)) in keys.iter().enumerate() {
        spans.push(Span::raw(if i == 0 { " " } else { " · " }));
        spans.push(Span::styled(key.to_string(), theme.accent()));
        spans.push(Span::raw(format!(" {what}")));
    }
    Line::from(spans)
}
