//! Same-padded, stride-1 2-D convolution on f32 NCHW slices: each image unfolded (im2col) a band
//! of rows at a time and multiplied by the weights in one gemm per band, the bands of the batch's
//! images spread over rayon's threads.
//!
//! burn-flex runs a 2-D convolution as a 3-D one through NHWC copies and tiles of small gemm
//! calls, and burn-backend computes the weight gradient as a convolution whose kernel is the
//! whole output gradient (a gemm with a tiny M×N and a huge K). Here all three passes are one
//! well-shaped gemm per band: forward `W · cols`, weight gradient `Σ dout · colsᵀ`, and the input
//! gradient as the forward pass of the output gradient through the flipped, transposed kernel.
//! A band's unfolded input stays in a core's L2 cache between im2col writing it and gemm reading
//! it; a whole image's does not once the image is large (7 MB for the case study's second layer).

use rayon::prelude::*;

use super::scratch::with_scratch;

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

/// How much unfolded input one band may hold: 256 KiB of f32, a quarter of a typical L2 (gemm's
/// packed operands need room there too).
const BAND_BUDGET: usize = 64 * 1024;

/// Unfolded rows per image (input channels × kernel taps) up to which the weight gradient reads
/// its unfolded input through swapped strides rather than transpose the output gradient: a
/// 3-channel 3×3 layer's band took 34 µs that way against 19 µs of gemm plus ~20 µs of transpose,
/// a 1-channel one 1.6 against 2.4 + ~8 µs, while 144 rows were even (`gemm` crate, one thread).
const FEW_TAPS: usize = 32;

/// Output positions one product should cover at least when whole images are small (a ResNet's
/// last layers: 4×4 or 2×2 planes). One image's 2×2 plane made a gemm of 4 columns that read
/// all 9 MB of a 512-channel layer's weights for 4 positions, image after image; several images
/// side by side read them once for all.
const GROUP_COLUMNS: usize = 256;

/// The most unfolded input a work item of several images holds: 1 Mi f32 (4 MiB).
const GROUP_BUDGET: usize = 1 << 20;

/// Whole images per work item, for images of `plane` output positions and `patch` unfolded rows:
/// enough positions for a well-shaped product, within the unfolding budget, and no fewer items
/// than threads (every thread keeps work).
pub(super) fn images_per_item(batch: usize, plane: usize, patch: usize) -> usize {
    let plane = plane.max(1);
    let wanted = GROUP_COLUMNS.div_ceil(plane);
    let threads = rayon::current_num_threads().max(1);
    let fair = (batch / threads).max(1);
    let fits = (GROUP_BUDGET / (patch * plane).max(1)).max(1);
    wanted.min(fair).min(fits)
}

/// The split of each image into bands of whole rows, and of the batch into work items: one band
/// of one image each, or, when a whole image is one band, a group of whole images side by side.
#[derive(Debug, Clone, Copy)]
struct Bands {
    /// Image rows per band (the last band may have fewer).
    rows: usize,
    /// Bands per image.
    count: usize,
    /// Images per work item (the last item may have fewer); above 1 only with one band an
    /// image.
    images: usize,
    shape: ConvShape,
}

impl Bands {
    fn of(shape: ConvShape) -> Self {
        let per_row = (shape.patch() * shape.width).max(1);
        let rows = (BAND_BUDGET / per_row).clamp(1, shape.height.max(1));
        let count = shape.height.div_ceil(rows);
        let images = if count == 1 {
            images_per_item(shape.batch, shape.plane(), shape.patch())
        } else {
            1
        };
        Self {
            rows,
            count,
            images,
            shape,
        }
    }

    fn items(&self) -> usize {
        if self.images > 1 {
            self.shape.batch.div_ceil(self.images)
        } else {
            self.shape.batch * self.count
        }
    }

    /// Columns of one work item's unfolded input: output positions of its band or images.
    fn max_len(&self) -> usize {
        self.rows * self.shape.width * self.images
    }

    /// Unfolds work item `item` of the batch `x` into the front of `cols`: `[patch, len]`, each
    /// image's positions side by side.
    fn unfold(&self, x: &[f32], item: usize, cols: &mut [f32]) -> Band {
        let shape = self.shape;
        let image_len = shape.in_channels * shape.plane();
        if self.images > 1 {
            let first = item * self.images;
            let images = self.images.min(shape.batch - first);
            let plane = shape.plane();
            let len = images * plane;
            for i in 0..images {
                let image = &x[(first + i) * image_len..][..image_len];
                im2col(shape, image, 0, shape.height, cols, len, i * plane);
            }
            return Band {
                image: first,
                images,
                start: 0,
                len,
            };
        }
        let (image, band) = (item / self.count, item % self.count);
        let first_row = band * self.rows;
        let rows = self.rows.min(shape.height - first_row);
        let len = rows * shape.width;
        im2col(
            shape,
            &x[image * image_len..][..image_len],
            first_row,
            rows,
            cols,
            len,
            0,
        );
        Band {
            image,
            images: 1,
            start: first_row * shape.width,
            len,
        }
    }
}

/// Where one work item lies: its (first) image, how many images side by side, and the run of
/// output positions (row-major within each image's plane) that it covers; `len` counts the
/// columns of all its images.
struct Band {
    image: usize,
    images: usize,
    start: usize,
    len: usize,
}

impl Band {
    /// Output positions per image.
    fn per_image(&self) -> usize {
        self.len / self.images
    }
}

/// The work items each thread takes, in order: the same split for the same thread count, so
/// the gradients' sums are added in the same order on every run.
pub(super) fn per_thread_items(items: usize) -> Vec<std::ops::Range<usize>> {
    let threads = rayon::current_num_threads().clamp(1, items.max(1));
    let each = items.div_ceil(threads).max(1);
    (0..threads)
        .map(|t| (t * each).min(items)..((t + 1) * each).min(items))
        .filter(|range| !range.is_empty())
        .collect()
}

/// The output slice's base pointer, shared by threads that each write disjoint bands of it.
#[derive(Clone, Copy)]
pub(super) struct SharedOutput(pub(super) *mut f32);

// SAFETY: threads write through it only at disjoint positions (one band of one image each).
unsafe impl Send for SharedOutput {}
unsafe impl Sync for SharedOutput {}

impl SharedOutput {
    /// # Safety
    /// `offset` must lie within the slice the pointer was taken from.
    pub(super) unsafe fn at(self, offset: usize) -> *mut f32 {
        unsafe { self.0.add(offset) }
    }
}

/// `out = conv(x, weight) + bias`; `out` is overwritten.
pub fn forward(shape: ConvShape, x: &[f32], weight: &[f32], bias: Option<&[f32]>, out: &mut [f32]) {
    assert_eq!(x.len(), shape.input_len(), "conv input length");
    assert_eq!(weight.len(), shape.weight_len(), "conv weight length");
    assert_eq!(out.len(), shape.output_len(), "conv output length");
    let (plane, patch) = (shape.plane(), shape.patch());
    let image_out = shape.out_channels * plane;
    let bands = Bands::of(shape);
    let output = SharedOutput(out.as_mut_ptr());
    per_thread_items(bands.items())
        .into_par_iter()
        .for_each(|items| {
            let staged = if bands.images > 1 {
                shape.out_channels * bands.max_len()
            } else {
                0
            };
            with_scratch([patch * bands.max_len(), staged], |cols, staged| {
                for item in items {
                    let band = bands.unfold(x, item, cols);
                    if band.images > 1 {
                        let part = ImageGroup {
                            out_channels: shape.out_channels,
                            patch,
                            plane,
                            first: band.image,
                            images: band.images,
                        };
                        forward_group(part, weight, bias, cols, staged, output);
                        continue;
                    }
                    let Band {
                        image, start, len, ..
                    } = band;
                    // SAFETY: the band starts inside this image's output.
                    let dst = unsafe { output.at(image * image_out + start) };
                    // SAFETY: dst is this band's [out, len] block of the image's [out, plane]
                    // output (row stride plane), which no other item writes.
                    unsafe {
                        weights_times_cols(shape.out_channels, patch, len, weight, cols, dst, plane)
                    };
                    if let Some(bias) = bias {
                        for (channel, &b) in bias.iter().enumerate() {
                            // SAFETY: one row of this item's block, as above.
                            let row = unsafe {
                                std::slice::from_raw_parts_mut(dst.add(channel * plane), len)
                            };
                            row.iter_mut().for_each(|v| *v += b);
                        }
                    }
                }
            });
        });
}

/// `dst [out, len] = weight [out, patch] · cols [patch, len]` (row-major), `dst`'s rows
/// `dst_stride` apart.
///
/// # Safety
/// `dst` must be valid for `out` rows of `len` values, `dst_stride` apart, overlapping neither
/// operand.
unsafe fn weights_times_cols(
    out: usize,
    patch: usize,
    len: usize,
    weight: &[f32],
    cols: &[f32],
    dst: *mut f32,
    dst_stride: usize,
) {
    assert!(weight.len() >= out * patch && cols.len() >= patch * len);
    // SAFETY: the operands hold the matrices asserted above; dst as the caller promises.
    unsafe {
        gemm(
            Matrices {
                m: out,
                n: len,
                k: patch,
                dst,
                dst_rs: dst_stride as isize,
                dst_cs: 1,
                accumulate: false,
                lhs: weight.as_ptr(),
                lhs_rs: patch as isize,
                lhs_cs: 1,
                rhs: cols.as_ptr(),
                rhs_rs: len as isize,
                rhs_cs: 1,
            },
            gemm::Parallelism::None,
        )
    }
}

/// Several whole images' outputs at once: `[out, len]` positions of `images` images, the first
/// `first`, each with `plane` output positions, from `[patch, len]` unfolded input.
#[derive(Debug, Clone, Copy)]
pub(super) struct ImageGroup {
    pub(super) out_channels: usize,
    pub(super) patch: usize,
    pub(super) plane: usize,
    pub(super) first: usize,
    pub(super) images: usize,
}

/// `staged [out, len] = weight · cols`, then each image's `[out, plane]` block (plus the bias)
/// into its place in the output.
pub(super) fn forward_group(
    group: ImageGroup,
    weight: &[f32],
    bias: Option<&[f32]>,
    cols: &[f32],
    staged: &mut [f32],
    output: SharedOutput,
) {
    let ImageGroup {
        out_channels: out,
        patch,
        plane,
        first,
        images,
    } = group;
    let len = images * plane;
    assert!(staged.len() >= out * len, "staged holds the group's output");
    // SAFETY: staged holds [out, len], row-major.
    unsafe { weights_times_cols(out, patch, len, weight, cols, staged.as_mut_ptr(), len) };
    for i in 0..images {
        // SAFETY: image `first + i`'s whole [out, plane] output, which no other item writes.
        let block = unsafe {
            std::slice::from_raw_parts_mut(output.at((first + i) * out * plane), out * plane)
        };
        for (channel, row) in block.chunks_exact_mut(plane).enumerate() {
            row.copy_from_slice(&staged[channel * len + i * plane..][..plane]);
            if let Some(bias) = bias {
                row.iter_mut().for_each(|v| *v += bias[channel]);
            }
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
    let (plane, patch, out) = (shape.plane(), shape.patch(), shape.out_channels);
    let image_out = out * plane;
    let bands = Bands::of(shape);
    // Each thread sums its own bands' products; the partial sums are added at the end.
    // gemm runs near its peak only when its right operand is row-major, so each band's output
    // gradient is transposed to [len, out] (small) and the sum is built as
    // weight_gradᵀ [patch, out] += cols [patch, len] · gradᵀ [len, out] (3–4× faster here
    // than reading colsᵀ through swapped strides). With few input channels the transpose costs
    // more than it saves, and the sum is built as weight_grad [out, patch] += grad · colsᵀ.
    let transposed = patch > FEW_TAPS;
    let partials: Vec<(Vec<f32>, Vec<f32>)> = per_thread_items(bands.items())
        .into_par_iter()
        .map(|items| {
            let mut sum = vec![0.0; shape.weight_len()];
            let mut bias_grad = vec![0.0; out];
            let grad_t = if transposed { bands.max_len() * out } else { 0 };
            with_scratch([patch * bands.max_len(), grad_t], |cols, grad_t| {
                for (index, item) in items.enumerate() {
                    let band = bands.unfold(x, item, cols);
                    let (len, per) = (band.len, band.per_image());
                    // Image i's [out, per] block of its [out, plane] gradient.
                    let grad_of = |i: usize| {
                        &grad_out[(band.image + i) * image_out + band.start..]
                            [..(out - 1) * plane + per]
                    };
                    for i in 0..band.images {
                        let grad = grad_of(i);
                        for (channel, sum) in bias_grad.iter_mut().enumerate() {
                            *sum += grad[channel * plane..][..per].iter().sum::<f32>();
                        }
                    }
                    if !transposed {
                        for i in 0..band.images {
                            // grad [out, per] (row stride plane) · image i's colsᵀ [per, patch]
                            // into sum [out, patch].
                            let product = Matrices {
                                m: out,
                                n: patch,
                                k: per,
                                dst: sum.as_mut_ptr(),
                                dst_rs: patch as isize,
                                dst_cs: 1,
                                accumulate: index > 0 || i > 0,
                                lhs: grad_of(i).as_ptr(),
                                lhs_rs: plane as isize,
                                lhs_cs: 1,
                                // SAFETY: image i's columns start i·per into each cols row.
                                rhs: unsafe { cols.as_ptr().add(i * per) },
                                rhs_rs: 1,
                                rhs_cs: len as isize,
                            };
                            // SAFETY: cols holds patch rows of len values, sum out·patch, and the
                            // gradient the image's out rows of per values, plane apart.
                            unsafe { gemm(product, gemm::Parallelism::None) };
                        }
                        continue;
                    }
                    let grad_t = &mut grad_t[..len * out];
                    for i in 0..band.images {
                        transpose(
                            grad_of(i),
                            out,
                            per,
                            plane,
                            &mut grad_t[i * per * out..][..per * out],
                        );
                    }
                    // cols [patch, len] · grad_t [len, out] into sum [patch, out].
                    let product = Matrices {
                        m: patch,
                        n: out,
                        k: len,
                        dst: sum.as_mut_ptr(),
                        dst_rs: out as isize,
                        dst_cs: 1,
                        accumulate: index > 0,
                        lhs: cols.as_ptr(),
                        lhs_rs: len as isize,
                        lhs_cs: 1,
                        rhs: grad_t.as_ptr(),
                        rhs_rs: out as isize,
                        rhs_cs: 1,
                    };
                    // SAFETY: cols holds patch·len values, grad_t len·out and sum patch·out.
                    unsafe { gemm(product, gemm::Parallelism::None) };
                }
            });
            (sum, bias_grad)
        })
        .collect();
    let mut partials = partials.into_iter();
    let (mut sum, mut bias_grad) = partials
        .next()
        .unwrap_or_else(|| (vec![0.0; shape.weight_len()], vec![0.0; out]));
    for (w, b) in partials {
        sum.iter_mut().zip(w).for_each(|(total, v)| *total += v);
        bias_grad
            .iter_mut()
            .zip(b)
            .for_each(|(total, v)| *total += v);
    }
    if !transposed {
        return (sum, bias_grad);
    }
    let mut weight_grad = vec![0.0; shape.weight_len()];
    transpose(&sum, patch, out, out, &mut weight_grad);
    (weight_grad, bias_grad)
}

/// `dst [cols, rows] = srcᵀ` for a row-major `src [rows, cols]` whose rows start `stride` apart,
/// sixteen source columns at a time so the destination rows being written stay in cache
/// (1.4–2× a square-tiled loop on the gradients' shapes here).
pub(super) fn transpose(src: &[f32], rows: usize, cols: usize, stride: usize, dst: &mut [f32]) {
    const BLOCK: usize = 16;
    for c0 in (0..cols).step_by(BLOCK) {
        let width = BLOCK.min(cols - c0);
        let block = &mut dst[c0 * rows..(c0 + width) * rows];
        for r in 0..rows {
            let row = &src[r * stride + c0..][..width];
            for (i, &v) in row.iter().enumerate() {
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

/// Unfolds image rows `first_row..first_row + rows` of one `[in, h, w]` image into
/// `[in·k·k, rows·w]` columns `offset..` of `cols` (rows `stride` apart): row `(c, ky, kx)` holds,
/// for each of the band's output positions, the input at the tap's offset from it, zero where
/// that offset leaves the image.
///
/// A shift by `(dy, dx)` is one offset `dy·w + dx` into the flattened plane: each row is one
/// long copy, then the `|dx|` columns that wrapped around from the neighbouring image row are
/// zeroed (copying row by row instead cost a short `memmove` per image row, a fifth of a
/// training step here).
fn im2col(
    shape: ConvShape,
    image: &[f32],
    first_row: usize,
    rows: usize,
    cols: &mut [f32],
    stride: usize,
    offset: usize,
) {
    let (h, w, k) = (shape.height, shape.width, shape.kernel);
    let pad = (k / 2) as isize;
    let plane = (h * w) as isize;
    let (start, len) = ((first_row * w) as isize, rows * w);
    let mut tap = 0;
    for channel in image.chunks_exact(h * w) {
        for ky in 0..k {
            let dy = ky as isize - pad;
            for kx in 0..k {
                let dx = kx as isize - pad;
                let row = &mut cols[tap * stride + offset..][..len];
                tap += 1;
                let shift = dy * w as isize + dx;
                // Band positions whose source position lies inside the flattened plane.
                let lo = (-shift - start).clamp(0, len as isize) as usize;
                let hi = (plane - shift - start).clamp(lo as isize, len as isize) as usize;
                row[..lo].fill(0.0);
                row[hi..].fill(0.0);
                if hi > lo {
                    let from = (start + lo as isize + shift) as usize;
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
pub(super) struct Matrices {
    pub(super) m: usize,
    pub(super) n: usize,
    pub(super) k: usize,
    pub(super) dst: *mut f32,
    pub(super) dst_rs: isize,
    pub(super) dst_cs: isize,
    pub(super) accumulate: bool,
    pub(super) lhs: *const f32,
    pub(super) lhs_rs: isize,
    pub(super) lhs_cs: isize,
    pub(super) rhs: *const f32,
    pub(super) rhs_rs: isize,
    pub(super) rhs_cs: isize,
}

/// # Safety
/// Each pointer must be valid for its matrix at the given sizes and strides, and `dst` must not
/// overlap the operands.
pub(super) unsafe fn gemm(p: Matrices, parallelism: gemm::Parallelism) {
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
