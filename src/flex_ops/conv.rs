//! Same-padded, stride-1 2-D convolution on f32 NCHW slices: each image unfolded once (im2col)
//! and multiplied by the weights in one gemm, images spread over rayon's threads.
//!
//! burn-flex runs a 2-D convolution as a 3-D one through NHWC copies and tiles of small gemm
//! calls, and burn-backend computes the weight gradient as a convolution whose kernel is the
//! whole output gradient (a gemm with a tiny M×N and a huge K). Here all three passes are one
//! well-shaped gemm per image: forward `W · cols`, weight gradient `Σ dout · colsᵀ`, and the input
//! gradient as the forward pass of the output gradient through the flipped, transposed kernel.

use rayon::prelude::*;

/// The sizes of one convolution: `[batch, in, h, w]` through `[out, in, k, k]` gives
/// `[batch, out, h, w]` (odd `k`, padding `k / 2` on every side).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvShape {
    pub batch: usize,
    pub in_channels: usize,
    pub out_channels: usize,
    pub height: usize,
    pub width: usize,
    pub kernel: usize,
}

impl ConvShape {
    fn plane(&self) -> usize {
        self.height * self.width
    }

    /// Rows of one image's unfolded input: one per (input channel, kernel row, kernel column).
    fn patch(&self) -> usize {
        self.in_channels * self.kernel * self.kernel
    }

    pub fn input_len(&self) -> usize {
        self.batch * self.in_channels * self.plane()
    }

    pub fn output_len(&self) -> usize {
        self.batch * self.out_channels * self.plane()
    }

    pub fn weight_len(&self) -> usize {
        self.out_channels * self.patch()
    }

    /// The convolution that carries the output gradient back to the input.
    fn transposed(&self) -> Self {
        Self {
            in_channels: self.out_channels,
            out_channels: self.in_channels,
            ..*self
        }
    }
}

/// `out = conv(x, weight) + bias`; `out` is overwritten.
pub fn forward(shape: ConvShape, x: &[f32], weight: &[f32], bias: Option<&[f32]>, out: &mut [f32]) {
    assert_eq!(x.len(), shape.input_len(), "conv input length");
    assert_eq!(weight.len(), shape.weight_len(), "conv weight length");
    assert_eq!(out.len(), shape.output_len(), "conv output length");
    let (plane, patch) = (shape.plane(), shape.patch());
    let image_in = shape.in_channels * plane;
    let image_out = shape.out_channels * plane;
    let one_image = |cols: &mut Vec<f32>, (image, out): (&[f32], &mut [f32]), parallelism| {
        im2col(shape, image, cols);
        // SAFETY: every pointer covers its matrix at the strides given: weight is
        // [out, patch], cols [patch, plane] and out [out, plane], all row-major.
        unsafe {
            gemm(
                Matrices {
                    m: shape.out_channels,
                    n: plane,
                    k: patch,
                    dst: out.as_mut_ptr(),
                    dst_rs: plane as isize,
                    dst_cs: 1,
                    accumulate: false,
                    lhs: weight.as_ptr(),
                    lhs_rs: patch as isize,
                    lhs_cs: 1,
                    rhs: cols.as_ptr(),
                    rhs_rs: plane as isize,
                    rhs_cs: 1,
                },
                parallelism,
            )
        };
        if let Some(bias) = bias {
            for (row, &b) in out.chunks_exact_mut(plane).zip(bias) {
                row.iter_mut().for_each(|v| *v += b);
            }
        }
    };
    if shape.batch >= rayon::current_num_threads() {
        x.par_chunks_exact(image_in)
            .zip(out.par_chunks_exact_mut(image_out))
            .for_each_init(
                || vec![0.0; patch * plane],
                |cols, pair| one_image(cols, pair, gemm::Parallelism::None),
            );
    } else {
        // Too few images to give every thread one: let gemm split each image's product instead.
        let mut cols = vec![0.0; patch * plane];
        for pair in x
            .chunks_exact(image_in)
            .zip(out.chunks_exact_mut(image_out))
        {
            one_image(&mut cols, pair, gemm::Parallelism::Rayon(0));
        }
    }
}

/// The gradient of the loss with respect to the convolution's input.
pub fn input_grad(shape: ConvShape, grad_out: &[f32], weight: &[f32]) -> Vec<f32> {
    let flipped = flip_kernel(shape, weight);
    let mut grad_in = vec![0.0; shape.input_len()];
    forward(shape.transposed(), grad_out, &flipped, None, &mut grad_in);
    grad_in
}

/// The gradients with respect to the weights `[out, in, k, k]` and the bias `[out]`.
pub fn weight_and_bias_grad(shape: ConvShape, x: &[f32], grad_out: &[f32]) -> (Vec<f32>, Vec<f32>) {
    assert_eq!(x.len(), shape.input_len(), "conv input length");
    assert_eq!(
        grad_out.len(),
        shape.output_len(),
        "conv output gradient length"
    );
    let (plane, patch) = (shape.plane(), shape.patch());
    let image_in = shape.in_channels * plane;
    let image_out = shape.out_channels * plane;
    let threads = rayon::current_num_threads().clamp(1, shape.batch.max(1));
    let per_thread = shape.batch.div_ceil(threads).max(1);
    let parallelism = if threads == 1 {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // Each thread sums its own images' products; the partial sums are added at the end.
    // gemm runs near its peak only when its right operand is row-major, so each image's output
    // gradient is transposed to [plane, out] (small) and the sum is built as
    // weight_gradᵀ [patch, out] += cols [patch, plane] · gradᵀ [plane, out] (3–4× faster here
    // than reading colsᵀ through swapped strides).
    let partials: Vec<(Vec<f32>, Vec<f32>)> = x
        .par_chunks(image_in * per_thread)
        .zip(grad_out.par_chunks(image_out * per_thread))
        .map(|(images, grads)| {
            let mut transposed_sum = vec![0.0; shape.weight_len()];
            let mut bias_grad = vec![0.0; shape.out_channels];
            let mut cols = vec![0.0; patch * plane];
            let mut grad_t = vec![0.0; plane * shape.out_channels];
            let pairs = images
                .chunks_exact(image_in)
                .zip(grads.chunks_exact(image_out));
            for (index, (image, grad)) in pairs.enumerate() {
                im2col(shape, image, &mut cols);
                transpose(grad, shape.out_channels, plane, &mut grad_t);
                // SAFETY: cols is [patch, plane], grad_t [plane, out] and transposed_sum
                // [patch, out], all row-major and of those lengths.
                unsafe {
                    gemm(
                        Matrices {
                            m: patch,
                            n: shape.out_channels,
                            k: plane,
                            dst: transposed_sum.as_mut_ptr(),
                            dst_rs: shape.out_channels as isize,
                            dst_cs: 1,
                            accumulate: index > 0,
                            lhs: cols.as_ptr(),
                            lhs_rs: plane as isize,
                            lhs_cs: 1,
                            rhs: grad_t.as_ptr(),
                            rhs_rs: shape.out_channels as isize,
                            rhs_cs: 1,
                        },
                        parallelism,
                    )
                };
                for (sum, row) in bias_grad.iter_mut().zip(grad.chunks_exact(plane)) {
                    *sum += row.iter().sum::<f32>();
                }
            }
            (transposed_sum, bias_grad)
        })
        .collect();
    let mut partials = partials.into_iter();
    let (mut transposed_sum, mut bias_grad) = partials
        .next()
        .unwrap_or_else(|| (vec![0.0; shape.weight_len()], vec![0.0; shape.out_channels]));
    for (w, b) in partials {
        transposed_sum
            .iter_mut()
            .zip(w)
            .for_each(|(sum, v)| *sum += v);
        bias_grad.iter_mut().zip(b).for_each(|(sum, v)| *sum += v);
    }
    let mut weight_grad = vec![0.0; shape.weight_len()];
    transpose(&transposed_sum, patch, shape.out_channels, &mut weight_grad);
    (weight_grad, bias_grad)
}

/// `dst [cols, rows] = srcᵀ` for a row-major `src [rows, cols]`, sixteen source columns at a
/// time so the destination rows being written stay in cache (1.4–2× a square-tiled loop on the
/// gradients' shapes here).
fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    const BLOCK: usize = 16;
    for c0 in (0..cols).step_by(BLOCK) {
        let width = BLOCK.min(cols - c0);
        let block = &mut dst[c0 * rows..(c0 + width) * rows];
        for (r, row) in src.chunks_exact(cols).enumerate() {
            for (i, &v) in row[c0..c0 + width].iter().enumerate() {
                block[i * rows + r] = v;
            }
        }
    }
}

/// `[out, in, k, k]` → `[in, out, k, k]` with each kernel turned 180°: the weights that carry an
/// output gradient back to the input as an ordinary same-padded convolution.
fn flip_kernel(shape: ConvShape, weight: &[f32]) -> Vec<f32> {
    let k = shape.kernel;
    let taps = k * k;
    let mut flipped = vec![0.0; weight.len()];
    for o in 0..shape.out_channels {
        for i in 0..shape.in_channels {
            let src = &weight[(o * shape.in_channels + i) * taps..][..taps];
            let dst = &mut flipped[(i * shape.out_channels + o) * taps..][..taps];
            for (d, s) in dst.iter_mut().zip(src.iter().rev()) {
                *d = *s;
            }
        }
    }
    flipped
}

/// Unfolds one `[in, h, w]` image into `[in·k·k, h·w]`: row `(c, ky, kx)` holds the input shifted
/// by the tap's offset, zero where the shift leaves the image.
///
/// A shift by `(dy, dx)` is one offset `dy·w + dx` into the flattened plane: each row is one
/// long copy, then the `|dx|` columns that wrapped around from the neighbouring image row are
/// zeroed (copying row by row instead cost a short `memmove` per image row, a fifth of a
/// training step here).
fn im2col(shape: ConvShape, image: &[f32], cols: &mut [f32]) {
    let (h, w, k) = (shape.height, shape.width, shape.kernel);
    let pad = (k / 2) as isize;
    let plane = h * w;
    let mut rows = cols.chunks_exact_mut(plane);
    for channel in image.chunks_exact(plane) {
        for ky in 0..k {
            let dy = ky as isize - pad;
            for kx in 0..k {
                let dx = kx as isize - pad;
                let row = rows.next().expect("cols holds in·k·k rows");
                let shift = dy * w as isize + dx;
                // Output positions whose source position lies inside the flattened plane.
                let lo = (-shift).clamp(0, plane as isize) as usize;
                let hi = (plane as isize - shift).clamp(lo as isize, plane as isize) as usize;
                row[..lo].fill(0.0);
                row[hi..].fill(0.0);
                if hi > lo {
                    let from = (lo as isize + shift) as usize;
                    row[lo..hi].copy_from_slice(&channel[from..from + (hi - lo)]);
                }
                // Output columns whose source column x + dx lies outside the image.
                let (x0, x1) = if dx < 0 {
                    (0, (-dx as usize).min(w))
                } else {
                    (w - (dx as usize).min(w), w)
                };
                if x1 > x0 {
                    for image_row in row.chunks_exact_mut(w) {
                        image_row[x0..x1].fill(0.0);
                    }
                }
            }
        }
    }
}

/// One product `dst[m×n] (+)= lhs[m×k] · rhs[k×n]`, each operand at its own row and column
/// strides.
struct Matrices {
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: isize,
    dst_cs: isize,
    accumulate: bool,
    lhs: *const f32,
    lhs_rs: isize,
    lhs_cs: isize,
    rhs: *const f32,
    rhs_rs: isize,
    rhs_cs: isize,
}

/// # Safety
/// Each pointer must be valid for its matrix at the given sizes and strides, and `dst` must not
/// overlap the operands.
unsafe fn gemm(p: Matrices, parallelism: gemm::Parallelism) {
    unsafe {
        gemm::gemm(
            p.m,
            p.n,
            p.k,
            p.dst,
            p.dst_cs,
            p.dst_rs,
            p.accumulate,
            p.lhs,
            p.lhs_cs,
            p.lhs_rs,
            p.rhs,
            p.rhs_cs,
            p.rhs_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}
