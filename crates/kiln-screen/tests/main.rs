//! kiln-screen's tests, in one binary: the screens drawn from scripted runs (snapshots), and
//! the screen's state under keys and events. They build without burn, so this loop takes
//! seconds: `cargo test --release -p kiln-screen`.

mod render;
mod script;
mod tui_screens;
mod tui_state;
