//! Seeded random augmentation of training images: rotation, shear, shift, zoom and flips, as one
//! bilinear affine sampling per image on kiln's planar bytes (flips alone move whole pixels).

use rand::Rng;

use super::Normalizer;
use crate::experiment::AugmentConfig;

/// Fixed-point precision of a bilinear weight along one axis: positions resolve to 1/128 pixel,
/// and the four weights of a pixel sum to exactly `ONE` (so flat regions stay exactly flat).
const AXIS_ONE: u32 = 128;
const ONE: u32 = AXIS_ONE * AXIS_ONE;

/// One image's random draw: where each output pixel samples the source, and the flips.
struct Draw {
    /// Maps an output offset from the centre (after the shift) to a source offset.
    inverse: [f32; 4],
    shift: (f32, f32),
    flip_x: bool,
    flip_y: bool,
}

/// Where one output pixel reads: the top-left source pixel of its 2×2 neighbourhood and the
/// four weights (top-left, top-right, bottom-left, bottom-right) in units of `1 / ONE`.
#[derive(Debug, Clone, Copy, Default)]
struct Tap {
    index: u32,
    weights: [u16; 4],
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
        let draw = self.draw(rng);
        let channels = image.len() / (self.width * self.height).max(1);
        let mut sampled = vec![0f32; image.len()];
        self.render(
            image,
            &draw,
            &vec![(1.0 / ONE as f32, 0.0); channels],
            &mut sampled,
        );
        sampled.iter().map(|&v| (v + 0.5) as u8).collect()
    }

    /// Writes a randomly transformed copy of `image` into `out` as normalised floats, the same
    /// transform as [`Augmenter::apply`] for the same draws. One pass with no byte image in
    /// between: this is the loader's hot loop, and a GPU trainer waits on it.
    pub fn apply_normalised(
        &self,
        image: &[u8],
        rng: &mut impl Rng,
        normalizer: &Normalizer,
        out: &mut [f32],
    ) {
        let draw = self.draw(rng);
        // (sum / ONE / 255 − mean) / std as one multiply-add per value.
        let affine: Vec<(f32, f32)> = normalizer
            .mean
            .iter()
            .zip(&normalizer.std)
            .map(|(&mean, &std)| (1.0 / (ONE as f32 * 255.0 * std), -mean / std))
            .collect();
        self.render(image, &draw, &affine, out);
    }

    fn draw(&self, rng: &mut impl Rng) -> Draw {
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
        // Forward: p' = A (p − c) + c + shift, with A = zoom · rotation · shear; each output
        // pixel reads from p = A⁻¹ (p' − c − shift) + c. With no warp drawn A is exactly the
        // identity, so flips alone move whole pixels.
        let (sin, cos) = angle.sin_cos();
        let a = [
            zoom * cos,
            zoom * (cos * shear - sin),
            zoom * sin,
            zoom * (sin * shear + cos),
        ];
        let det = a[0] * a[3] - a[1] * a[2];
        Draw {
            inverse: [a[3] / det, -a[1] / det, -a[2] / det, a[0] / det],
            shift: (dx, dy),
            flip_x,
            flip_y,
        }
    }

    /// Samples every plane of `image` through `draw` into `out` (planar, same length):
    /// bilinear, black outside the source; a channel's weighted sum (in units of `1 / ONE` of a
    /// byte) becomes `sum · scale + offset` with that channel's `(scale, offset)` from `affine`.
    /// Source positions are worked out once per pixel for all channels; each channel then runs
    /// a branch-free integer loop over the row.
    fn render(&self, image: &[u8], draw: &Draw, affine: &[(f32, f32)], out: &mut [f32]) {
        let (w, h) = (self.width, self.height);
        let plane = w * h;
        let mut taps = vec![Tap::default(); w];
        // Neighbours to the right and below; a one-pixel-wide (or high) image has none.
        let right = usize::from(w > 1);
        let down = if h > 1 { w } else { 0 };
        for y in 0..h {
            self.row_taps(draw, y, &mut taps);
            for ((source, target), &(scale, offset)) in image
                .chunks_exact(plane)
                .zip(out.chunks_exact_mut(plane))
                .zip(affine)
            {
                for (value, tap) in target[y * w..(y + 1) * w].iter_mut().zip(&taps) {
                    let i = tap.index as usize;
                    let block = &source[i..=i + down + right];
                    let [w00, w01, w10, w11] = tap.weights.map(u32::from);
                    let sum = u32::from(block[0]) * w00
                        + u32::from(block[right]) * w01
                        + u32::from(block[down]) * w10
                        + u32::from(block[down + right]) * w11;
                    *value = sum as f32 * scale + offset;
                }
            }
        }
    }

    /// The taps of output row `y`. A pixel whose source lies outside the image reads pixel 0
    /// with zero weights, i.e. black, so the channel loops need no bounds branch.
    fn row_taps(&self, draw: &Draw, y: usize, taps: &mut [Tap]) {
        let (w, h) = (self.width, self.height);
        let (cx, cy) = ((w as f32 - 1.0) / 2.0, (h as f32 - 1.0) / 2.0);
        let one = AXIS_ONE as i32;
        // Positions in 1/AXIS_ONE pixels; the last column (row) a 2×2 neighbourhood starts at.
        let (max_x, max_y) = ((w as i32 - 1) * one, (h as i32 - 1) * one);
        let (last_x, last_y) = (w.saturating_sub(2) as i32, h.saturating_sub(2) as i32);
        let [i0, i1, i2, i3] = draw.inverse;
        // A flip reads the warped image's mirrored pixel: output x reads column w − 1 − x.
        let y = if draw.flip_y { h - 1 - y } else { y };
        let dy = y as f32 - cy - draw.shift.1;
        let (dx0, step) = if draw.flip_x {
            (cx - draw.shift.0, -1.0)
        } else {
            (-cx - draw.shift.0, 1.0)
        };
        // The source position is linear in x: start + x · slope, in fixed point.
        let scale = AXIS_ONE as f32;
        let start = (
            (i0 * dx0 + i1 * dy + cx) * scale,
            (i2 * dx0 + i3 * dy + cy) * scale,
        );
        let slope = (i0 * step * scale, i2 * step * scale);
        for (x, tap) in taps.iter_mut().enumerate() {
            // Rounded to the nearest fixed-point step (truncation rounds once it is ≥ 0).
            let sx = start.0 + slope.0 * x as f32 + 0.5;
            let sy = start.1 + slope.1 * x as f32 + 0.5;
            if sx < 0.0 || sy < 0.0 {
                *tap = Tap::default();
                continue;
            }
            let (sx, sy) = (sx as i32, sy as i32);
            if sx > max_x || sy > max_y {
                *tap = Tap::default();
                continue;
            }
            let (x0, y0) = ((sx / one).min(last_x), (sy / one).min(last_y));
            let (fx, fy) = ((sx - x0 * one) as u32, (sy - y0 * one) as u32);
            let (gx, gy) = (AXIS_ONE - fx, AXIS_ONE - fy);
            *tap = Tap {
                index: (y0 as usize * w + x0 as usize) as u32,
                weights: [gx * gy, fx * gy, gx * fy, fx * fy].map(|v| v as u16),
            };
        }
    }
}
