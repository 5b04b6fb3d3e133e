//! Seeded random augmentation of training images: rotation, shear, shift, zoom and flips, as one
//! affine warp per image through imageproc.

use image::{GrayImage, ImageBuffer, Pixel, Rgb, RgbImage};
use imageproc::geometric_transformations::{Interpolation, Projection, warp_into};
use rand::Rng;

use crate::experiment::AugmentConfig;

/// The random choices for one image.
struct Draw {
    angle: f32,
    shear: f32,
    zoom: f32,
    shift: (f32, f32),
    flip_x: bool,
    flip_y: bool,
    warps: bool,
}

/// Applies an [`AugmentConfig`] to planar images of a fixed shape.
#[derive(Debug, Clone)]
pub struct Augmenter {
    config: AugmentConfig,
    height: usize,
    width: usize,
}

impl Augmenter {
    pub fn new(config: AugmentConfig, height: usize, width: usize) -> Self {
        Self {
            config,
            height,
            width,
        }
    }

    pub fn is_active(&self) -> bool {
        self.config.is_active()
    }

    /// A randomly transformed copy of `image` (planar bytes); every channel gets the same
    /// transform.
    pub fn apply(&self, image: &[u8], rng: &mut impl Rng) -> Vec<u8> {
        let c = &self.config;
        let symmetric = |rng: &mut dyn rand::RngCore, max: f64| -> f32 {
            if max > 0.0 {
                rng.random_range(-max..=max) as f32
            } else {
                0.0
            }
        };
        let angle = symmetric(rng, c.rotation).to_radians();
        let shear = symmetric(rng, c.shear).to_radians().tan();
        let zoom = 1.0 + symmetric(rng, c.zoom);
        let dx = symmetric(rng, c.shift) * self.width as f32;
        let dy = symmetric(rng, c.shift) * self.height as f32;
        let flip_x = c.horizontal_flip && rng.random_bool(0.5);
        let flip_y = c.vertical_flip && rng.random_bool(0.5);
        let warps = c.rotation > 0.0 || c.shear > 0.0 || c.zoom > 0.0 || c.shift > 0.0;

        let draw = Draw {
            angle,
            shear,
            zoom,
            shift: (dx, dy),
            flip_x,
            flip_y,
            warps,
        };
        let plane = self.width * self.height;
        let (w, h) = (self.width as u32, self.height as u32);
        if image.len() == 3 * plane {
            // One warp of the colour image rather than three of its planes: the inverse
            // projection and the interpolation weights are computed once per pixel.
            let rgb = RgbImage::from_fn(w, h, |x, y| {
                let i = y as usize * self.width + x as usize;
                Rgb([image[i], image[plane + i], image[2 * plane + i]])
            });
            let rgb = self.transform(rgb, &draw);
            let mut out = vec![0u8; image.len()];
            for (i, pixel) in rgb.pixels().enumerate() {
                out[i] = pixel[0];
                out[plane + i] = pixel[1];
                out[2 * plane + i] = pixel[2];
            }
            return out;
        }
        let mut out = Vec::with_capacity(image.len());
        for channel in image.chunks_exact(plane) {
            let pixels = GrayImage::from_raw(w, h, channel.to_vec())
                .expect("planar image has width × height bytes per channel");
            out.extend_from_slice(self.transform(pixels, &draw).as_raw());
        }
        out
    }

    /// One image's draw applied: the warp, then the exact flips.
    fn transform<P>(&self, pixels: ImageBuffer<P, Vec<u8>>, draw: &Draw) -> ImageBuffer<P, Vec<u8>>
    where
        P: Pixel<Subpixel = u8> + Send + Sync,
    {
        let mut pixels = if draw.warps {
            self.warp(&pixels, draw.angle, draw.shear, draw.zoom, draw.shift)
        } else {
            pixels
        };
        // Flips are exact pixel moves; a warp would blur them and lose the border.
        if draw.flip_x {
            image::imageops::flip_horizontal_in_place(&mut pixels);
        }
        if draw.flip_y {
            image::imageops::flip_vertical_in_place(&mut pixels);
        }
        pixels
    }

    fn warp<P>(
        &self,
        source: &ImageBuffer<P, Vec<u8>>,
        angle: f32,
        shear: f32,
        zoom: f32,
        shift: (f32, f32),
    ) -> ImageBuffer<P, Vec<u8>>
    where
        P: Pixel<Subpixel = u8> + Send + Sync,
    {
        // About the image centre, so rotation, shear and zoom keep the subject in frame.
        let (cx, cy) = (
            (self.width as f32 - 1.0) / 2.0,
            (self.height as f32 - 1.0) / 2.0,
        );
        let shear_matrix = Projection::from_matrix([1.0, shear, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0])
            .expect("a shear matrix is invertible");
        let projection = Projection::translate(-cx, -cy)
            .and_then(shear_matrix)
            .and_then(Projection::rotate(angle))
            .and_then(Projection::scale(zoom, zoom))
            .and_then(Projection::translate(cx + shift.0, cy + shift.1));
        let mut target = ImageBuffer::new(self.width as u32, self.height as u32);
        let black = *P::from_slice(&[0; 4][..P::CHANNEL_COUNT as usize]);
        warp_into(
            source,
            &projection,
            Interpolation::Bilinear,
            black,
            &mut target,
        );
        target
    }
}
