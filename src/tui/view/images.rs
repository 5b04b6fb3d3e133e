//! The image view (`a`, `m`): augmented training samples, or the validation images the model
//! gets wrong, as a grid of captioned pictures drawn with half blocks (ratatui-image), or as a
//! text list where pictures cannot be shown (`--ascii`, NO_COLOR, `--images off`).

use image::DynamicImage;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph};
use ratatui_image::picker::{Picker, ProtocolType};
use ratatui_image::{Image, Resize};

use crate::gallery::Kind as GalleryKind;
use crate::gallery::Tile;
use crate::tui::app::{App, Gallery};
use crate::tui::theme::Theme;

/// A picture's cells (half blocks: two pixels a cell, one above the other) and its caption's.
const PICTURE_WIDTH: u16 = 12;
const PICTURE_HEIGHT: u16 = 6;
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
    let shown = &content.tiles[gallery.first.min(content.tiles.len())..];
    if theme.pictures {
        grid(frame, inner, shown, theme);
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
fn grid(frame: &mut Frame, area: Rect, tiles: &[Tile], theme: &Theme) {
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
    // Half blocks only: pixels of 1×2 cells, whatever the terminal could do, so the picture is
    // the same over SSH and in tmux.
    let mut picker = Picker::from_fontsize((1, 2));
    picker.set_protocol_type(ProtocolType::Halfblocks);
    for (i, tile) in tiles.iter().take((columns * rows) as usize).enumerate() {
        let (column, row) = (i as u16 % columns, i as u16 / columns);
        let x = area.x + column * TILE_WIDTH;
        let y = area.y + row * TILE_HEIGHT;
        let picture = Rect::new(x, y, PICTURE_WIDTH, PICTURE_HEIGHT);
        let image = DynamicImage::ImageRgb8(tile.image.clone());
        if let Ok(protocol) = picker.new_protocol(image, picture, Resize::Fit(None)) {
            frame.render_widget(Image::new(&protocol), picture);
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
