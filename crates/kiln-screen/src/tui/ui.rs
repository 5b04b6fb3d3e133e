//! Everything the terminal shows at once (a run's screen and, over it, the run browser), and
//! its one `update`: keys and results become [`UiMessage`]s, and this is where they change the
//! state; what they ask the outside world to do comes back as [`UiEffect`]s.

use super::app::{self, App, Phase};
use super::browser::{self, Browser, BrowserMessage, Outcome};

/// Everything the terminal shows: a run's screen and, over it, the run browser when open.
#[derive(Debug, Clone, PartialEq)]
pub struct Ui {
    pub app: App,
    /// The run browser, when open; it takes the keys and the screen.
    pub browser: Option<Box<Browser>>,
    /// Opened for the browser alone (`kiln runs`, `show`, `compare`): closing it ends the screen.
    pub(super) standalone: bool,
}

impl Ui {
    /// A run's screen, without the browser.
    pub fn new(app: App) -> Self {
        Self {
            app,
            browser: None,
            standalone: false,
        }
    }

    /// The browser on its own; closing it quits.
    pub fn browsing(browser: Browser) -> Self {
        Self {
            app: App::new(),
            browser: Some(Box::new(browser)),
            standalone: true,
        }
    }
}

/// Everything that can change what the terminal shows.
#[derive(Debug, Clone, PartialEq)]
pub enum UiMessage {
    /// For the run's screen (also where the browser is open: trainer events, Ctrl-C).
    Run(app::Message),
    /// For the browser: a key's action, or what its file work found.
    Browser(BrowserMessage),
    /// The browser, its runs folder to be read, opened over the run's screen.
    BrowserOpened(Box<Browser>),
}

/// Work for the event loop.
#[derive(Debug, Clone, PartialEq)]
pub enum UiEffect {
    Run(app::Effect),
    Browser(browser::Effect),
}

/// Applies a message; the only place the screen's state changes.
pub fn update(ui: &mut Ui, message: UiMessage) -> Vec<UiEffect> {
    match message {
        UiMessage::Run(message) => app::update(&mut ui.app, message)
            .into_iter()
            .map(UiEffect::Run)
            .collect(),
        UiMessage::BrowserOpened(browser) => {
            ui.browser = Some(browser);
            vec![UiEffect::Browser(browser::Effect::Refresh)]
        }
        UiMessage::Browser(message) => {
            let Some(open) = ui.browser.as_deref_mut() else {
                return Vec::new();
            };
            let (effects, outcome) = browser::update(open, message);
            if outcome == Outcome::Close {
                ui.browser = None;
                if ui.standalone {
                    ui.app.phase = Phase::Quit;
                }
            }
            effects.into_iter().map(UiEffect::Browser).collect()
        }
    }
}
