//! Seeded random augmentation of training images: rotation, shear, shift, zoom and flips, as one
//! affine warp per image on kiln's planar bytes, then exact flips.

use rand::Rng;

use crate::experiment::AugmentConfig;

/// One image's random warp: rotation (radians), shear (tangent), zoom factor, shift (pixels).
struct Warp {
    angle: f32,
    shear: f32,
    zoom: f32,
    shift: (f32, f32),
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

        let mut out = if warps {
            self.warp(
                image,
                &Warp {
                    angle,
                    shear,
                    zoom,
                    shift: (dx, dy),
                },
            )
        } else {
            image.to_vec()
        };
        // Flips are exact pixel moves; a warp would blur them and lose the border.
        let (w, h) = (self.width, self.height);
        for plane in out.chunks_exact_mut(w * h) {
            if flip_x {
                plane.chunks_exact_mut(w).for_each(<[u8]>::reverse);
            }
            if flip_y {
                for y in 0..h / 2 {
                    let (top, bottom) = plane.split_at_mut((h - 1 - y) * w);
                    top[y * w..(y + 1) * w].swap_with_slice(&mut bottom[..w]);
                }
            }
        }
        out
    }

    /// Rotation, shear and zoom about the centre, then the shift, as one affine warp of every
    /// plane with bilinear sampling; outside the source is black. Written for planar bytes
    /// (kiln's layout) so each output pixel's source position is computed once for all
    /// channels, with no conversion to and from interleaved images: the warp is the loader's
    /// hot loop, and a GPU trainer waits on it.
    fn warp(&self, image: &[u8], draw: &Warp) -> Vec<u8> {
        let (w, h) = (self.width, self.height);
        let plane = w * h;
        // Forward: p' = A (p − c) + c + shift, with A = zoom · rotation · shear.
        let (sin, cos) = draw.angle.sin_cos();
        let a = [
            draw.zoom * cos,
            draw.zoom * (cos * draw.shear - sin),
            draw.zoom * sin,
            draw.zoom * (sin * draw.shear + cos),
        ];
        let det = a[0] * a[3] - a[1] * a[2];
        // Each output pixel reads from p = A⁻¹ (p' − c − shift) + c.
        let inverse = [a[3] / det, -a[1] / det, -a[2] / det, a[0] / det];
        let (cx, cy) = ((w as f32 - 1.0) / 2.0, (h as f32 - 1.0) / 2.0);
        let (max_x, max_y) = ((w - 1) as f32, (h - 1) as f32);
        let mut out = vec![0u8; image.len()];
        let sources: Vec<&[u8]> = image.chunks_exact(plane).collect();
        let mut targets: Vec<&mut [u8]> = out.chunks_exact_mut(plane).collect();
        for y in 0..h {
            let dy = y as f32 - cy - draw.shift.1;
            for x in 0..w {
                let dx = x as f32 - cx - draw.shift.0;
                let sx = inverse[0] * dx + inverse[1] * dy + cx;
                let sy = inverse[2] * dx + inverse[3] * dy + cy;
                if !(0.0..=max_x).contains(&sx) || !(0.0..=max_y).contains(&sy) {
                    continue;
                }
                let (x0, y0) = (sx as usize, sy as usize);
                let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
                let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
                let (i00, i01, i10, i11) = (y0 * w + x0, y0 * w + x1, y1 * w + x0, y1 * w + x1);
                let (w00, w01) = ((1.0 - fx) * (1.0 - fy), fx * (1.0 - fy));
                let (w10, w11) = ((1.0 - fx) * fy, fx * fy);
                let at = y * w + x;
                for (source, target) in sources.iter().zip(targets.iter_mut()) {
                    let value = source[i00] as f32 * w00
                        + source[i01] as f32 * w01
                        + source[i10] as f32 * w10
                        + source[i11] as f32 * w11;
                    target[at] = (value + 0.5) as u8;
                }
            }
        }
        out
    }
}
