//! The footer line: the keys, or the value prompt, or the quit confirmation.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::tui::app::{App, Mode, Role};
use crate::tui::theme::Theme;

const KEYS_WIDE: &[(&str, &str)] = &[
    ("space", "pause"),
    ("d/D", "dropout"),
    ("l/L", "lr"),
    ("e", "edit"),
    ("c", "checkpoint"),
    ("s", "stop"),
    ("g", "chart"),
    ("p", "classes"),
    ("a/m", "pictures"),
    ("r", "runs"),
    ("?", "help"),
    ("q", "quit"),
];

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let line = match &app.mode {
        Mode::Prompt(prompt) => {
            let name = prompt.field.label();
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
        Mode::Normal | Mode::Help if app.reviewed().is_some() => Line::from(hints(
            None,
            &[
                ("Esc", "back to the runs"),
                ("g", "chart"),
                ("p", "classes"),
                ("a/m", "pictures"),
                ("↑/↓", "scroll"),
            ],
            theme,
        )),
        Mode::Normal | Mode::Help if !app.run.is_active() => Line::from(hints(
            Some(Span::styled(" the run has ended", theme.dim())),
            &[
                ("g", "chart"),
                ("p", "classes"),
                ("↑/↓", "scroll"),
                ("?", "help"),
                ("q", "quit"),
            ],
            theme,
        )),
        Mode::Normal | Mode::Help => {
            keys_line(area.width as usize, app.role == Role::Attached, theme)
        }
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
    for dropped in ["edit", "pictures", "classes", "runs", "chart", "checkpoint"] {
        if length(&keys) <= width {
            break;
        }
        keys.retain(|(_, what)| *what != dropped);
    }
    Line::from(hints(None, &keys, theme))
}

/// ` key what · key what …`, keys highlighted, after `lead` when there is one.
pub(super) fn hints(
    lead: Option<Span<'static>>,
    keys: &[(&str, &str)],
    theme: &Theme,
) -> Vec<Span<'static>> {
    let mut spans: Vec<Span<'static>> = lead.into_iter().collect();
    for (key, what) in keys {
        spans.push(Span::raw(if spans.is_empty() { " " } else { " · " }));
        spans.push(Span::styled(key.to_string(), theme.accent()));
        spans.push(Span::raw(format!(" {what}")));
    }
    spans
}
