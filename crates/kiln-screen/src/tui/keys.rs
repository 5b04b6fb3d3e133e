//! Keys to actions, for the run screen and the run browser. Which keys mean what depends on the
//! mode: a prompt takes typed characters, a confirmation takes y / n, everything else uses the
//! keys shown in the footer.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::app::{Action, Message, Mode};
use super::browser::{Browser, BrowserAction, BrowserMessage, BrowserMode, Opened};
use super::ui::{Ui, UiMessage};

/// The message a key sends: to the browser when it is open (Ctrl-C over a run still reaches
/// the run, which it stops), else to the run's screen.
pub fn message_for(ui: &Ui, key: KeyEvent) -> Option<UiMessage> {
    let action = action_for(&ui.app.mode, key);
    let interrupt = action == Some(Action::Interrupt);
    match ui.browser.as_deref() {
        Some(browser) if !interrupt || ui.standalone => browser_action_for(browser, key)
            .map(|action| UiMessage::Browser(BrowserMessage::Action(action))),
        _ => action.map(|action| UiMessage::Run(Message::Action(action))),
    }
}

/// The key list for the footer and the help screen: (keys, what they do).
pub const KEYS: &[(&str, &str)] = &[
    ("space", "pause / resume"),
    ("d / D", "dropout − / + 0.05"),
    ("l / L", "learning rate ÷2 / ×2"),
    ("e", "type an exact dropout or learning rate"),
    ("b", "freeze / unfreeze the backbone (a backbone model)"),
    ("c", "checkpoint now"),
    ("s", "stop the run (checkpoint, keep the screen)"),
    ("g", "chart / dashboard"),
    ("p", "per class: scores and confusion matrix"),
    ("a", "augmented training samples (again: new draws)"),
    ("m", "the validation images the model gets wrong"),
    ("z", "charts: data range / full range / log loss"),
    ("r", "past runs (the run keeps training)"),
    (
        "f / 1-9",
        "apply the first / Nth remedy the diagnosis suggests",
    ),
    ("↑ / ↓", "scroll the epoch table (End: latest)"),
    ("?", "help"),
    ("q", "quit (asks first while training)"),
    ("Ctrl-C", "stop the run and quit"),
];

pub fn action_for(mode: &Mode, key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Some(Action::Interrupt);
    }
    match mode {
        Mode::Prompt(_) => match key.code {
            KeyCode::Char(c) => Some(Action::Type(c)),
            KeyCode::Backspace => Some(Action::Backspace),
            KeyCode::Tab | KeyCode::BackTab => Some(Action::SwitchField),
            KeyCode::Enter => Some(Action::Submit),
            KeyCode::Esc => Some(Action::Cancel),
            _ => None,
        },
        Mode::ConfirmQuit => match key.code {
            KeyCode::Char('y' | 'Y') | KeyCode::Enter => Some(Action::Yes),
            KeyCode::Char('n' | 'N') | KeyCode::Esc => Some(Action::No),
            _ => None,
        },
        Mode::Help => match key.code {
            KeyCode::Esc | KeyCode::Char('?' | 'q') => Some(Action::ToggleHelp),
            _ => None,
        },
        Mode::Normal => match key.code {
            KeyCode::Char(' ') => Some(Action::TogglePause),
            KeyCode::Char('d') => Some(Action::DropoutDown),
            KeyCode::Char('D') => Some(Action::DropoutUp),
            KeyCode::Char('l') => Some(Action::LearningRateDown),
            KeyCode::Char('L') => Some(Action::LearningRateUp),
            KeyCode::Char('e') => Some(Action::EditValue),
            KeyCode::Char('b') => Some(Action::ToggleBackbone),
            KeyCode::Char('c') => Some(Action::Checkpoint),
            KeyCode::Char('s') => Some(Action::Stop),
            KeyCode::Char('q') => Some(Action::Quit),
            KeyCode::Char('g') => Some(Action::ToggleChart),
            KeyCode::Char('p') => Some(Action::ToggleClasses),
            KeyCode::Char('a') => Some(Action::ShowAugmented),
            KeyCode::Char('m') => Some(Action::ShowMistakes),
            KeyCode::Char('z') => Some(Action::ToggleRange),
            KeyCode::Char('r') => Some(Action::OpenBrowser),
            KeyCode::Char('f') => Some(Action::ApplyRemedy(1)),
            KeyCode::Char(c @ '1'..='9') => Some(Action::ApplyRemedy(c as usize - '0' as usize)),
            KeyCode::Char('?') => Some(Action::ToggleHelp),
            KeyCode::Up | KeyCode::Char('k') => Some(Action::ScrollUp),
            KeyCode::Down | KeyCode::Char('j') => Some(Action::ScrollDown),
            KeyCode::End => Some(Action::ScrollToLatest),
            _ => None,
        },
    }
}

/// Keys to browser actions, by mode.
pub fn browser_action_for(browser: &Browser, key: KeyEvent) -> Option<BrowserAction> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Some(BrowserAction::Back);
    }
    if matches!(browser.opened, Some(Opened::Sweep(_))) {
        return match key.code {
            KeyCode::Esc | KeyCode::Char('q' | 'w') | KeyCode::Backspace => {
                Some(BrowserAction::Back)
            }
            KeyCode::Char('s') => Some(BrowserAction::Sort),
            KeyCode::Char('S') => Some(BrowserAction::ReverseSort),
            _ => None,
        };
    }
    if browser.opened.is_some() {
        return match key.code {
            KeyCode::Esc | KeyCode::Char('q') | KeyCode::Backspace => Some(BrowserAction::Back),
            KeyCode::Char('g') => Some(BrowserAction::InRun(Action::ToggleChart)),
            KeyCode::Char('p') => Some(BrowserAction::InRun(Action::ToggleClasses)),
            KeyCode::Char('a') => Some(BrowserAction::InRun(Action::ShowAugmented)),
            KeyCode::Char('m') => Some(BrowserAction::InRun(Action::ShowMistakes)),
            KeyCode::Char('z') => Some(BrowserAction::InRun(Action::ToggleRange)),
            KeyCode::Up | KeyCode::Char('k') => Some(BrowserAction::InRun(Action::ScrollUp)),
            KeyCode::Down | KeyCode::Char('j') => Some(BrowserAction::InRun(Action::ScrollDown)),
            KeyCode::End => Some(BrowserAction::InRun(Action::ScrollToLatest)),
            _ => None,
        };
    }
    match &browser.mode {
        BrowserMode::Filter | BrowserMode::Rename { .. } => match key.code {
            KeyCode::Char(c) => Some(BrowserAction::Type(c)),
            KeyCode::Backspace => Some(BrowserAction::Backspace),
            KeyCode::Enter => Some(BrowserAction::Submit),
            KeyCode::Esc => Some(BrowserAction::Cancel),
            _ => None,
        },
        BrowserMode::ConfirmDelete(_) => match key.code {
            KeyCode::Char('y' | 'Y') => Some(BrowserAction::Yes),
            KeyCode::Char('n' | 'N') | KeyCode::Esc => Some(BrowserAction::No),
            _ => None,
        },
        BrowserMode::List => match key.code {
            KeyCode::Up | KeyCode::Char('k') => Some(BrowserAction::Up),
            KeyCode::Down | KeyCode::Char('j') => Some(BrowserAction::Down),
            KeyCode::PageUp => Some(BrowserAction::PageUp),
            KeyCode::PageDown => Some(BrowserAction::PageDown),
            KeyCode::Enter => Some(BrowserAction::Open),
            KeyCode::Char(' ') => Some(BrowserAction::Mark),
            KeyCode::Char('c') => Some(BrowserAction::Compare),
            KeyCode::Char('/') => Some(BrowserAction::StartFilter),
            KeyCode::Char('s') => Some(BrowserAction::Sort),
            KeyCode::Char('S') => Some(BrowserAction::ReverseSort),
            KeyCode::Char('d') | KeyCode::Delete => Some(BrowserAction::Delete),
            KeyCode::Char('R') => Some(BrowserAction::Rename),
            KeyCode::Char('w') => Some(BrowserAction::Sweep),
            KeyCode::Esc | KeyCode::Char('q' | 'r') => Some(BrowserAction::Back),
            _ => None,
        },
    }
}
