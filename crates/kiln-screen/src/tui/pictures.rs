//! How pictures reach the terminal: half blocks (coloured `▀`, in every terminal, over SSH and
//! in tmux), or a graphics protocol (sixel, kitty, iTerm2) when asked for or when the terminal
//! answers that it has one. A gallery's tiles are encoded once, off the screen's thread, and
//! kept: kitty transmits an image once and then only places it. The pictures themselves come
//! from a [`PictureSource`], which the binary provides: building them loads data and runs a
//! model, the training side's work.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use image::DynamicImage;
use image::imageops::FilterType;
use ratatui::layout::Rect;
use ratatui_image::Resize;
use ratatui_image::picker::{Picker, ProtocolType};
use ratatui_image::protocol::Protocol;
use ratatui_image::protocol::halfblocks::Halfblocks;

use super::theme::ImagesChoice;
use crate::gallery::{Kind, Pictures, Tile};

/// What the screen asks of the training side for its pictures.
pub trait PictureSource: Send + Sync {
    /// The `kind` gallery of the run in `run`; `seed` draws the augmentation.
    fn gallery(&self, run: &Path, kind: Kind, seed: u64) -> Result<Pictures, String>;

    /// For an experiment file a remedy wrote, its augmentation preview beside it (`FILE.png`);
    /// `None` when the remedy's `settings` do not touch augmentation.
    fn augmentation_preview(
        &self,
        file: &Path,
        settings: &[(String, String)],
    ) -> Option<Result<PathBuf, String>>;
}

static SOURCE: OnceLock<Box<dyn PictureSource>> = OnceLock::new();

/// Makes `source` the process's picture source (the first one provided stays).
pub fn provide(source: Box<dyn PictureSource>) {
    let _ = SOURCE.set(source);
}

fn source() -> Result<&'static dyn PictureSource, String> {
    SOURCE
        .get()
        .map(|source| source.as_ref())
        .ok_or_else(|| "pictures are not available in this program".to_string())
}

/// The augmentation preview of a remedy's new experiment file, if it has one (see
/// [`PictureSource::augmentation_preview`]).
pub fn augmentation_preview(
    file: &Path,
    settings: &[(String, String)],
) -> Option<Result<PathBuf, String>> {
    match source() {
        Ok(source) => source.augmentation_preview(file, settings),
        Err(err) => Some(Err(err)),
    }
}

/// A picture's cells (half blocks: two pixels a cell, one above the other).
pub const PICTURE_WIDTH: u16 = 12;
pub const PICTURE_HEIGHT: u16 = 6;

/// The terminal's graphics protocol, once found; `None`: half blocks.
static GRAPHICS: OnceLock<Option<Picker>> = OnceLock::new();

/// Decides how pictures are drawn for this process. Call once the terminal is in raw mode on
/// the alternate screen and before its input is read: asking the terminal what it supports
/// writes a query and reads the answer.
pub fn init(choice: ImagesChoice) {
    let _ = GRAPHICS.set(graphics(choice));
}

fn graphics(choice: ImagesChoice) -> Option<Picker> {
    let wanted = match choice {
        ImagesChoice::Off | ImagesChoice::Halfblocks => return None,
        // Inside tmux graphics reach the outer terminal only through passthrough, which is the
        // user's to turn on: without it, half blocks.
        ImagesChoice::Auto if in_tmux() && !tmux_passthrough() => return None,
        ImagesChoice::Auto => None,
        ImagesChoice::Sixel => Some(ProtocolType::Sixel),
        ImagesChoice::Kitty => Some(ProtocolType::Kitty),
    };
    // The query also measures the font, which a graphics protocol needs to size a picture.
    let mut picker = Picker::from_query_stdio().ok()?;
    if let Some(protocol) = wanted {
        picker.set_protocol_type(protocol);
    }
    (picker.protocol_type() != ProtocolType::Halfblocks).then_some(picker)
}

fn in_tmux() -> bool {
    std::env::var_os("TMUX").is_some()
}

fn tmux_passthrough() -> bool {
    std::process::Command::new("tmux")
        // -A: the value in force, inherited from the window or the server if not set here.
        .args(["show", "-pvA", "allow-passthrough"])
        .output()
        .is_ok_and(|out| {
            let value = String::from_utf8_lossy(&out.stdout);
            matches!(value.trim(), "on" | "all")
        })
}

/// A gallery's tiles encoded for the terminal, in tile order.
#[derive(Clone, Default)]
pub struct Encoded(Arc<Vec<Option<Protocol>>>);

impl Encoded {
    pub fn get(&self, tile: usize) -> Option<&Protocol> {
        self.0.get(tile).and_then(Option::as_ref)
    }
}

// Encoded pictures are a cache of the tiles: they say nothing of the state beyond them.
impl fmt::Debug for Encoded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Encoded({} pictures)", self.0.len())
    }
}

impl PartialEq for Encoded {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len()
    }
}

/// The `kind` gallery of the run in `run`, its tiles encoded for the terminal.
pub fn gallery(run: &Path, kind: Kind, seed: u64) -> Result<(Pictures, Encoded), String> {
    let built = source()?.gallery(run, kind, seed)?;
    let encoded = encode_all(&built.tiles);
    Ok((built, encoded))
}

/// Every tile encoded for a picture's cells, with the process's protocol.
pub fn encode_all(tiles: &[Tile]) -> Encoded {
    Encoded(Arc::new(tiles.iter().map(encode).collect()))
}

fn area() -> Rect {
    Rect::new(0, 0, PICTURE_WIDTH, PICTURE_HEIGHT)
}

/// One tile, for a picture's cells.
pub fn encode(tile: &Tile) -> Option<Protocol> {
    let image = DynamicImage::ImageRgb8(tile.image.clone());
    match GRAPHICS.get() {
        Some(Some(picker)) => picker.new_protocol(image, area(), Resize::Scale(None)).ok(),
        _ => {
            // Two pixels a cell; nearest neighbour keeps small images' pixels crisp.
            let (w, h) = (PICTURE_WIDTH as u32, PICTURE_HEIGHT as u32 * 2);
            let resized = image.resize(w, h, FilterType::Nearest);
            Halfblocks::new(resized, area())
                .ok()
                .map(Protocol::Halfblocks)
        }
    }
}
