//! `kiln augment-preview`: what the model is fed. Training images, each beside draws of the
//! experiment's augmentation, as a PNG grid with the row's class, so rotation, shear, shift,
//! zoom and flips can be tuned by eye (a ±40° rotation that turns a 6 into a 9 shows).

use std::path::Path;

use image::RgbImage;
use plotters::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::data::{Augmenter, Dataset};
use crate::experiment::Experiment;

/// What to draw: how many images, how many draws beside each, from which seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreviewOptions {
    pub images: usize,
    pub draws: usize,
    pub seed: u64,
}

impl Default for PreviewOptions {
    fn default() -> Self {
        Self {
            images: 8,
            draws: 5,
            seed: 0,
        }
    }
}

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub layout: GridLayout,
    pub images: usize,
    /// Whether the experiment augments at all (without, the draws are the originals).
    pub active: bool,
}

/// Loads `experiment`'s data and writes its preview grid to `out`.
pub fn write_for(
    experiment: &Experiment,
    options: PreviewOptions,
    out: &Path,
) -> anyhow::Result<Written> {
    let dataset = crate::data::load(&experiment.data)?;
    let split = crate::train::split(&dataset, experiment)?;
    let images = pick(&dataset, &split.train, options.images);
    let augmenter = Augmenter::new(experiment.augment.clone(), dataset.height, dataset.width);
    let (canvas, layout) = render(&dataset, &augmenter, &images, options.draws, options.seed)
        .map_err(anyhow::Error::msg)?;
    save(&canvas, out).map_err(anyhow::Error::msg)?;
    Ok(Written {
        layout,
        images: images.len(),
        active: augmenter.is_active(),
    })
}

/// Smallest side a cell is drawn at: small images are scaled up (nearest neighbour, so their
/// pixels stay visible).
const MIN_CELL: usize = 64;
const GAP: u32 = 4;
const LABEL_WIDTH: u32 = 110;
const HEADER: u32 = 24;

/// Where things are in the grid, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GridLayout {
    /// Pixels per image pixel.
    pub scale: u32,
    /// A cell's side (the scaled image, without the gap).
    pub cell: u32,
    pub rows: u32,
    /// The original plus the draws.
    pub columns: u32,
    pub width: u32,
    pub height: u32,
}

impl GridLayout {
    pub fn new(side: usize, rows: usize, draws: usize) -> Self {
        let scale = MIN_CELL.div_ceil(side.max(1)).max(1) as u32;
        let cell = side as u32 * scale;
        let columns = draws as u32 + 1;
        Self {
            scale,
            cell,
            rows: rows as u32,
            columns,
            width: LABEL_WIDTH + columns * (cell + GAP) + GAP,
            height: HEADER + rows as u32 * (cell + GAP) + GAP,
        }
    }

    /// The top-left pixel of cell (`row`, `column`); column 0 is the original.
    pub fn origin(&self, row: u32, column: u32) -> (u32, u32) {
        (
            LABEL_WIDTH + GAP + column * (self.cell + GAP),
            HEADER + GAP + row * (self.cell + GAP),
        )
    }
}

/// Training images to show: one per class in turn (in the order `candidates` lists them), so a
/// grid of ten rows of digits shows ten digits.
pub fn pick(dataset: &Dataset, candidates: &[usize], rows: usize) -> Vec<usize> {
    let classes = dataset.classes.len().max(1);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for &i in candidates {
        by_class[dataset.labels[i]].push(i);
    }
    let mut picked = Vec::new();
    let mut depth = 0;
    while picked.len() < rows && by_class.iter().any(|c| c.len() > depth) {
        for class in &by_class {
            if let Some(&i) = class.get(depth)
                && picked.len() < rows
            {
                picked.push(i);
            }
        }
        depth += 1;
    }
    picked
}

/// The grid for `images`: each original, then `draws` augmented copies drawn from `seed`.
pub fn render(
    dataset: &Dataset,
    augmenter: &Augmenter,
    images: &[usize],
    draws: usize,
    seed: u64,
) -> Result<(RgbImage, GridLayout), String> {
    let side = dataset.height.max(dataset.width);
    let layout = GridLayout::new(side, images.len(), draws);
    let mut canvas = RgbImage::from_pixel(layout.width, layout.height, image::Rgb([255, 255, 255]));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for (row, &index) in images.iter().enumerate() {
        let original = dataset.image(index);
        paste(&mut canvas, &layout, row as u32, 0, dataset, original);
        for column in 1..=draws {
            let augmented = augmenter.apply(original, &mut rng);
            paste(
                &mut canvas,
                &layout,
                row as u32,
                column as u32,
                dataset,
                &augmented,
            );
        }
    }
    label(&mut canvas, &layout, dataset, images, augmenter.is_active())?;
    Ok((canvas, layout))
}

/// Copies one planar image into its cell, scaled up by whole pixels.
fn paste(
    canvas: &mut RgbImage,
    layout: &GridLayout,
    row: u32,
    column: u32,
    dataset: &Dataset,
    planar: &[u8],
) {
    let (x0, y0) = layout.origin(row, column);
    let picture = dataset.rgb_image(planar);
    let (w, h) = (
        picture.width() * layout.scale,
        picture.height() * layout.scale,
    );
    let scaled = image::imageops::resize(&picture, w, h, image::imageops::FilterType::Nearest);
    image::imageops::replace(canvas, &scaled, x0.into(), y0.into());
}

/// The column heads and each row's class, drawn onto the canvas.
fn label(
    canvas: &mut RgbImage,
    layout: &GridLayout,
    dataset: &Dataset,
    images: &[usize],
    active: bool,
) -> Result<(), String> {
    crate::fonts::register();
    let (width, height) = (layout.width, layout.height);
    let root = BitMapBackend::with_buffer(canvas.as_mut(), (width, height)).into_drawing_area();
    let font = ("sans-serif", 14).into_font().color(&BLACK);
    let fail = |e: DrawingAreaErrorKind<_>| e.to_string();
    let head = if active {
        "augmented"
    } else {
        "augmentation is off"
    };
    root.draw(&Text::new(
        "original",
        (layout.origin(0, 0).0 as i32, 4),
        font.clone(),
    ))
    .map_err(fail)?;
    root.draw(&Text::new(
        head,
        (layout.origin(0, 1).0 as i32, 4),
        font.clone(),
    ))
    .map_err(fail)?;
    for (row, &index) in images.iter().enumerate() {
        let name: String = dataset.classes[dataset.labels[index]]
            .chars()
            .take(12)
            .collect();
        let (_, y) = layout.origin(row as u32, 0);
        let y = (y + layout.cell / 2) as i32 - 7;
        root.draw(&Text::new(name, (6, y), font.clone()))
            .map_err(fail)?;
    }
    root.present().map_err(|e| e.to_string())
}

/// Writes the grid as a PNG.
pub fn save(canvas: &RgbImage, path: &Path) -> Result<(), String> {
    canvas
        .save(path)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// For a new experiment file written by a remedy that changes augmentation, its preview beside
/// it (`FILE.png`, the default options), so the user can look before training on it. `None`
/// when the fix does not touch `augment.*`.
pub fn for_fix(
    file: &Path,
    settings: &[(String, String)],
) -> Option<anyhow::Result<std::path::PathBuf>> {
    if !settings.iter().any(|(key, _)| key.starts_with("augment.")) {
        return None;
    }
    let out = file.with_extension("png");
    let written = Experiment::load(file, &[])
        .map_err(anyhow::Error::from)
        .and_then(|experiment| write_for(&experiment, PreviewOptions::default(), &out));
    Some(written.map(|_| out))
}
