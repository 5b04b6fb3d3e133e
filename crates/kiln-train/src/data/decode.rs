//! Turning image files and raw grey pixels into the model's input size and channel count.

use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use image::{DynamicImage, GrayImage};

/// The size every image is brought to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub side: usize,
    pub channels: usize,
}

impl Shape {
    pub fn image_len(self) -> usize {
        self.channels * self.side * self.side
    }
}

/// Resizes and converts a decoded image, returning planar `[channels, side, side]` bytes.
pub fn convert(image: DynamicImage, shape: Shape) -> Vec<u8> {
    let side = shape.side as u32;
    let resized = if image.width() == side && image.height() == side {
        image
    } else {
        image.resize_exact(side, side, FilterType::Triangle)
    };
    match shape.channels {
        1 => resized.to_luma8().into_raw(),
        _ => planar_from_interleaved(&resized.to_rgb8().into_raw(), 3),
    }
}

/// A square grey image of `native` side as planar bytes of `shape`.
pub fn from_grey(pixels: Vec<u8>, native: usize, shape: Shape) -> Vec<u8> {
    let grey = if native == shape.side {
        pixels
    } else {
        let image = GrayImage::from_raw(native as u32, native as u32, pixels)
            .expect("caller passes native×native pixels");
        let side = shape.side as u32;
        image::imageops::resize(&image, side, side, FilterType::Triangle).into_raw()
    };
    // Grey repeated into each channel, so a 3-channel model sees the same picture.
    grey.repeat(shape.channels)
}

fn planar_from_interleaved(interleaved: &[u8], channels: usize) -> Vec<u8> {
    let pixels = interleaved.len() / channels;
    let mut planar = vec![0u8; interleaved.len()];
    for (i, px) in interleaved.chunks_exact(channels).enumerate() {
        for (c, value) in px.iter().enumerate() {
            planar[c * pixels + i] = *value;
        }
    }
    planar
}

/// Decodes files on all cores; `None` for a file that cannot be read or decoded.
pub fn decode_files(paths: &[PathBuf], shape: Shape) -> Vec<Option<Vec<u8>>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = paths.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = paths
            .chunks(chunk)
            .map(|part| {
                let worker = scope.spawn(move || {
                    part.iter()
                        .map(|path| decode_file(path, shape))
                        .collect::<Vec<_>>()
                });
                (part.len(), worker)
            })
            .collect();
        // A decoder that panics on a hostile file loses only its own chunk, counted as skipped.
        workers
            .into_iter()
            .flat_map(|(len, worker)| worker.join().unwrap_or_else(|_| vec![None; len]))
            .collect()
    })
}

fn decode_file(path: &Path, shape: Shape) -> Option<Vec<u8>> {
    decode_image(path, shape).ok()
}

/// One image file brought to `shape`; the error says why it could not be read or decoded.
pub fn decode_image(path: &Path, shape: Shape) -> Result<Vec<u8>, String> {
    let image = image::ImageReader::open(path)
        .map_err(|err| err.to_string())?
        .with_guessed_format()
        .map_err(|err| err.to_string())?
        .decode()
        .map_err(|err| format!("not a readable image: {err}"))?;
    Ok(convert(image, shape))
}
