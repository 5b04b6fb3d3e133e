//! The image view (`a`, `m`): augmented training samples, or the validation images the model
//! gets wrong, as a grid of captioned pictures drawn with half blocks (ratatui-image), or as a
//! text list where pictures cannot be shown (`--ascii`, NO_COLOR, `--images off`).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph};
use ratatui_image::Image;

use crate::gallery::Kind as GalleryKind;
use crate::gallery::Tile;
use crate::tui::app::{App, Gallery};
use crate::tui::theme::Theme;

use crate::tui::pictures::{self, Encoded, PICTURE_HEIGHT, PICTURE_WIDTH};

/// A tile: its picture, a caption line and a column of space.
const TILE_WIDTH: u16 = PICTURE_WIDTH + 2;
const TILE_HEIGHT: u16 = PICTURE_HEIGHT + 1;

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let Some(gallery) = &app.gallery else {
        return;
    };
    let block = Block::bordered().title(title(gallery));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let content = match &gallery.content {
        None => {
            let what = match gallery.kind {
                GalleryKind::Augmented => "drawing augmented samples…",
                GalleryKind::Mistakes => {
                    "classifying the validation images with the newest checkpoint…"
                }
            };
            frame.render_widget(Paragraph::new(what).style(theme.dim()), inner);
            return;
        }
        Some(Err(err)) => {
            frame.render_widget(Paragraph::new(err.as_str()).style(theme.bad()), inner);
            return;
        }
        Some(Ok(content)) => content,
    };
    if content.tiles.is_empty() {
        let text = match gallery.kind {
            GalleryKind::Augmented => "no training images to show",
            GalleryKind::Mistakes => "no mistakes: every validation image is classified right",
        };
        frame.render_widget(Paragraph::new(text).style(theme.good()), inner);
        return;
    }
    let first = gallery.first.min(content.tiles.len());
    let shown = &content.tiles[first..];
    if theme.pictures {
        grid(frame, inner, shown, &gallery.encoded, first, theme);
    } else {
        list(frame, inner, shown);
    }
}

fn title(gallery: &Gallery) -> String {
    let count = match &gallery.content {
        Some(Ok(content)) => content.tiles.len(),
        _ => 0,
    };
    let position = if count > 0 {
        format!(" · from {} of {count} · ↑/↓ more", gallery.first + 1)
    } else {
        String::new()
    };
    match (gallery.kind, &gallery.content) {
        (GalleryKind::Augmented, Some(Ok(content))) if content.note.is_some() => format!(
            " augmented samples · {}{position} · g: back ",
            content.note.as_deref().unwrap_or_default()
        ),
        (GalleryKind::Augmented, _) => {
            format!(" augmented samples (the run's settings) · a: draw again{position} · g: back ")
        }
        (GalleryKind::Mistakes, Some(Ok(content))) => format!(
            " mistakes after epoch {}, most confident first{position} · g: back ",
            content.epoch.unwrap_or(0)
        ),
        (GalleryKind::Mistakes, _) => " mistakes · g: back ".to_string(),
    }
}

/// As many tiles as fit, row by row.
fn grid(
    frame: &mut Frame,
    area: Rect,
    tiles: &[Tile],
    encoded: &Encoded,
    first: usize,
    theme: &Theme,
) {
    let columns = area.width / TILE_WIDTH;
    let rows = area.height / TILE_HEIGHT;
    if columns == 0 || rows == 0 {
        let text = format!(
            "terminal too small for the pictures: they need {}×{} cells here",
            TILE_WIDTH, TILE_HEIGHT
        );
        frame.render_widget(Paragraph::new(text).style(theme.warn()), area);
        return;
    }
    for (i, tile) in tiles.iter().take((columns * rows) as usize).enumerate() {
        let (column, row) = (i as u16 % columns, i as u16 / columns);
        let x = area.x + column * TILE_WIDTH;
        let y = area.y + row * TILE_HEIGHT;
        let picture = Rect::new(x, y, PICTURE_WIDTH, PICTURE_HEIGHT);
        // Encoded when the gallery arrived; a tile without (a test's) is encoded here.
        match encoded.get(first + i) {
            Some(protocol) => frame.render_widget(Image::new(protocol), picture),
            None => {
                if let Some(protocol) = pictures::encode(tile) {
                    frame.render_widget(Image::new(&protocol), picture);
                }
            }
        }
        let caption: String = tile.caption.chars().take(TILE_WIDTH as usize - 1).collect();
        frame.render_widget(
            Paragraph::new(Line::from(caption)).style(theme.dim()),
            Rect::new(x, y + PICTURE_HEIGHT, TILE_WIDTH - 1, 1),
        );
    }
}

/// One caption a line, for terminals that do not show pictures.
fn list(frame: &mut Frame, area: Rect, tiles: &[Tile]) {
    let lines: Vec<Line> = tiles
        .iter()
        .take(area.height as usize)
        .map(|tile| Line::from(tile.caption.clone()))
        .collect();
    frame.render_widget(Paragraph::new(lines), area);
}
