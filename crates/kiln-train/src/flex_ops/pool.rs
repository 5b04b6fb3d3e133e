//! 2×2 max pooling with stride 2 on f32 NCHW slices, remembering which of the four won so the
//! backward pass is one scatter.
//!
//! burn-flex's max pooling is general (any window, stride, padding, dilation) and keeps an i64
//! index per output; the model's pooling is always this one case.

use rayon::prelude::*;

/// `[planes, h, w]` in (`planes` = batch · channels), `[planes, h / 2, w / 2]` out; an odd last
/// row or column is left out, as burn's pooling without padding does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolShape {
    pub planes: usize,
    pub height: usize,
    pub width: usize,
}

impl PoolShape {
    pub fn out_height(&self) -> usize {
        self.height / 2
    }

    pub fn out_width(&self) -> usize {
        self.width / 2
    }

    fn out_plane(&self) -> usize {
        self.out_height() * self.out_width()
    }
}

/// The pooled values and, for each, which of its window's four won (0..4, row-major; the first
/// of equal values).
pub fn forward(shape: PoolShape, x: &[f32]) -> (Vec<f32>, Vec<u8>) {
    assert_eq!(
        x.len(),
        shape.planes * shape.height * shape.width,
        "pool input length"
    );
    let (w, ow) = (shape.width, shape.out_width());
    let out_plane = shape.out_plane();
    let mut out = vec![0.0; shape.planes * out_plane];
    let mut which = vec![0u8; out.len()];
    if out_plane == 0 {
        return (out, which);
    }
    out.par_chunks_mut(out_plane)
        .zip(which.par_chunks_mut(out_plane))
        .zip(x.par_chunks(shape.height * w))
        .for_each(|((out, which), plane)| {
            let rows = out.chunks_exact_mut(ow).zip(which.chunks_exact_mut(ow));
            for (oy, (out, which)) in rows.enumerate() {
                let top = &plane[2 * oy * w..][..w];
                let bottom = &plane[(2 * oy + 1) * w..][..w];
                for ox in 0..ow {
                    let window = [
                        top[2 * ox],
                        top[2 * ox + 1],
                        bottom[2 * ox],
                        bottom[2 * ox + 1],
                    ];
                    let (mut best, mut at) = (window[0], 0u8);
                    for (i, &v) in window.iter().enumerate().skip(1) {
                        if v > best {
                            (best, at) = (v, i as u8);
                        }
                    }
                    out[ox] = best;
                    which[ox] = at;
                }
            }
        });
    (out, which)
}

/// The input's gradient: each output's gradient sent to the element that won its window.
pub fn backward(shape: PoolShape, grad_out: &[f32], which: &[u8]) -> Vec<f32> {
    let (w, ow) = (shape.width, shape.out_width());
    let out_plane = shape.out_plane();
    assert_eq!(
        grad_out.len(),
        shape.planes * out_plane,
        "pool gradient length"
    );
    let mut grad_in = vec![0.0; shape.planes * shape.height * w];
    if out_plane == 0 {
        return grad_in;
    }
    grad_in
        .par_chunks_mut(shape.height * w)
        .zip(
            grad_out
                .par_chunks(out_plane)
                .zip(which.par_chunks(out_plane)),
        )
        .for_each(|(plane, (grad, which))| {
            let rows = grad.chunks_exact(ow).zip(which.chunks_exact(ow));
            for (oy, (grad, which)) in rows.enumerate() {
                for ox in 0..ow {
                    let (dy, dx) = ((which[ox] >> 1) as usize, (which[ox] & 1) as usize);
                    plane[(2 * oy + dy) * w + 2 * ox + dx] = grad[ox];
                }
            }
        });
    grad_in
}
