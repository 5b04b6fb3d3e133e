//! kiln's front ends: the live screen ([`tui`]: the run screen, the run browser, their keys and
//! views), the plain progress lines of a headless run ([`headless`]) and the learning-rate
//! finder's text chart ([`lr_plot`]).
//!
//! The rule of this crate: it depends on kiln-core and a terminal library, never on burn, so
//! `cargo test -p kiln-screen` builds in seconds (kiln's tests check the rule:
//! `tests/crate_rules.rs`). What needs a model (the image view's pictures) reaches it through
//! [`tui::pictures::PictureSource`], which the binary provides.

pub mod headless;
pub mod lr_plot;
pub mod tui;

// kiln-core's modules under their own names, as the screen's code has always named them.
use kiln_core::{fixes, format, gallery, metrics, monitor, protocol, runs, sweep};
