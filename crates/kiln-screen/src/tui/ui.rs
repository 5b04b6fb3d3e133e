//! Everything the terminal shows at once: a run's screen and, over it, the run browser.

use super::app::App;
use super::browser::Browser;

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
