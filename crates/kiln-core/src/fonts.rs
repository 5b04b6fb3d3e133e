//! The font kiln draws text in PNG files with (DejaVu Sans, bundled: no system fonts needed on
//! a bare server), registered with plotters once per process.

use std::sync::Once;

use plotters::style::FontStyle;

const FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");

/// Makes `"sans-serif"` available to plotters' text.
pub fn register() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}
