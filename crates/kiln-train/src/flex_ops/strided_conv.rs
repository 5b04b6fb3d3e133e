//! 2-D convolution with any stride and symmetric zero padding on f32 NCHW slices: the layers
//! `conv` (stride 1, half-kernel padding) does not take — a ResNet's stem (7×7, stride 2), its
//! stride-2 3×3 and 1×1 down-sampling layers. Whole images are unfolded (im2col), several side by
//! side when they are small, and multiplied in one gemm per group; the input gradient is the
//! weights' transpose times the output gradient, folded back onto the image (col2im).

use rayon::prelude::*;

use super::conv::{
    ImageGroup, Matrices, SharedOutput, forward_group, gemm, images_per_item, per_thread_items,
    transpose,
};
use super::scratch::with_scratch;

/// Stride and padding of a convolution, `[vertical, horizontal]`: `padding` zeros on each side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stepping {
    pub stride: [usize; 2],
    pub padding: [usize; 2],
}

/// The sizes of one convolution: `[batch, in, h, w]` through `[out, in, kh, kw]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub batch: usize,
    pub in_channels: usize,
    pub out_channels: usize,
    pub height: usize,
    pub width: usize,
    pub kernel: [usize; 2],
    pub stepping: Stepping,
}

impl Geometry {
    /// Output rows and columns.
    pub fn out_size(&self) -> [usize; 2] {
        let [kh, kw] = self.kernel;
        let Stepping { stride, padding } = self.stepping;
        [
            (self.height + 2 * padding[0] - kh) / stride[0] + 1,
            (self.width + 2 * padding[1] - kw) / stride[1] + 1,
        ]
    }

    fn out_plane(&self) -> usize {
        let [h, w] = self.out_size();
        h * w
    }

    fn in_plane(&self) -> usize {
        self.height * self.width
    }

    /// Rows of one image's unfolded input: one per (input channel, kernel row, kernel column).
    fn patch(&self) -> usize {
        self.in_channels * self.kernel[0] * self.kernel[1]
    }

    pub fn input_len(&self) -> usize {
        self.batch * self.in_channels * self.in_plane()
    }

    pub fn output_len(&self) -> usize {
        self.batch * self.out_channels * self.out_plane()
    }

    pub fn weight_len(&self) -> usize {
        self.out_channels * self.patch()
    }

    /// Images per work item (see [`images_per_item`]).
    fn group(&self) -> usize {
        images_per_item(self.batch, self.out_plane(), self.patch())
    }

    /// The images of work item `item`: the first, and how many.
    fn images_of(&self, item: usize, group: usize) -> (usize, usize) {
        let first = item * group;
        (first, group.min(self.batch - first))
    }
}

/// `out = conv(x, weight) + bias`; `out` is overwritten.
pub fn forward(g: Geometry, x: &[f32], weight: &[f32], bias: Option<&[f32]>, out: &mut [f32]) {
    assert_eq!(x.len(), g.input_len(), "conv input length");
    assert_eq!(weight.len(), g.weight_len(), "conv weight length");
    assert_eq!(out.len(), g.output_len(), "conv output length");
    let (plane, patch, channels) = (g.out_plane(), g.patch(), g.out_channels);
    let image_in = g.in_channels * g.in_plane();
    let group = g.group();
    let output = SharedOutput(out.as_mut_ptr());
    per_thread_items(g.batch.div_ceil(group))
        .into_par_iter()
        .for_each(|items| {
            let lens = [patch * group * plane, channels * group * plane];
            with_scratch(lens, |cols, staged| {
                for item in items {
                    let (first, images) = g.images_of(item, group);
                    let len = images * plane;
                    for i in 0..images {
                        let image = &x[(first + i) * image_in..][..image_in];
                        im2col(g, image, cols, len, i * plane);
                    }
                    let part = ImageGroup {
                        out_channels: channels,
                        patch,
                        plane,
                        first,
                        images,
                    };
                    forward_group(part, weight, bias, cols, staged, output);
                }
            });
        });
}

/// The gradients with respect to the weights `[out, in, kh, kw]` and the bias `[out]`.
pub fn weight_and_bias_grad(g: Geometry, x: &[f32], grad_out: &[f32]) -> (Vec<f32>, Vec<f32>) {
    assert_eq!(x.len(), g.input_len(), "conv input length");
    assert_eq!(
        grad_out.len(),
        g.output_len(),
        "conv output gradient length"
    );
    let (plane, patch, out) = (g.out_plane(), g.patch(), g.out_channels);
    let image_in = g.in_channels * g.in_plane();
    let group = g.group();
    // Each thread sums its items' products, weight_gradᵀ [patch, out] += cols [patch, len] ·
    // gradᵀ [len, out] (gemm is fastest with a row-major right operand); the partial sums are
    // added at the end, in the same order on every run.
    let partials: Vec<(Vec<f32>, Vec<f32>)> = per_thread_items(g.batch.div_ceil(group))
        .into_par_iter()
        .map(|items| {
            let mut sum = vec![0.0; g.weight_len()];
            let mut bias_grad = vec![0.0; out];
            with_scratch(
                [patch * group * plane, group * plane * out],
                |cols, grad_t| {
                    for (index, item) in items.enumerate() {
                        let (first, images) = g.images_of(item, group);
                        let len = images * plane;
                        for i in 0..images {
                            let image = &x[(first + i) * image_in..][..image_in];
                            im2col(g, image, cols, len, i * plane);
                            let grad = &grad_out[(first + i) * out * plane..][..out * plane];
                            transpose(
                                grad,
                                out,
                                plane,
                                plane,
                                &mut grad_t[i * plane * out..][..plane * out],
                            );
                            for (channel, sum) in bias_grad.iter_mut().enumerate() {
                                *sum += grad[channel * plane..][..plane].iter().sum::<f32>();
                            }
                        }
                        // SAFETY: cols holds patch·len values, grad_t len·out and sum patch·out.
                        unsafe {
                            gemm(
                                Matrices {
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
                                },
                                gemm::Parallelism::None,
                            )
                        };
                    }
                },
            );
            (sum, bias_grad)
        })
        .collect();
    let mut total = vec![0.0; g.weight_len()];
    let mut bias_grad = vec![0.0; out];
    for (sum, bias) in partials {
        total.iter_mut().zip(sum).for_each(|(t, v)| *t += v);
        bias_grad.iter_mut().zip(bias).for_each(|(t, v)| *t += v);
    }
    let mut weight_grad = vec![0.0; g.weight_len()];
    transpose(&total, patch, out, out, &mut weight_grad);
    (weight_grad, bias_grad)
}

/// The gradient of the loss with respect to the convolution's input: `weightᵀ · grad_out`
/// unfolded, folded back onto each image (the adjoint of [`im2col`]).
pub fn input_grad(g: Geometry, grad_out: &[f32], weight: &[f32]) -> Vec<f32> {
    assert_eq!(
        grad_out.len(),
        g.output_len(),
        "conv output gradient length"
    );
    assert_eq!(weight.len(), g.weight_len(), "conv weight length");
    let (plane, patch, out) = (g.out_plane(), g.patch(), g.out_channels);
    let image_in = g.in_channels * g.in_plane();
    let group = g.group();
    let mut grad_in = vec![0.0; g.input_len()];
    let input = SharedOutput(grad_in.as_mut_ptr());
    per_thread_items(g.batch.div_ceil(group))
        .into_par_iter()
        .for_each(|items| {
            with_scratch(
                [out * group * plane, patch * group * plane],
                |staged, cols| {
                    for item in items {
                        let (first, images) = g.images_of(item, group);
                        let len = images * plane;
                        for i in 0..images {
                            let grad = &grad_out[(first + i) * out * plane..][..out * plane];
                            for (channel, row) in grad.chunks_exact(plane).enumerate() {
                                staged[channel * len + i * plane..][..plane].copy_from_slice(row);
                            }
                        }
                        // weightᵀ [patch, out] (read through swapped strides) · staged [out, len] into
                        // cols [patch, len].
                        // SAFETY: weight holds out·patch values, staged out·len, cols patch·len.
                        unsafe {
                            gemm(
                                Matrices {
                                    m: patch,
                                    n: len,
                                    k: out,
                                    dst: cols.as_mut_ptr(),
                                    dst_rs: len as isize,
                                    dst_cs: 1,
                                    accumulate: false,
                                    lhs: weight.as_ptr(),
                                    lhs_rs: 1,
                                    lhs_cs: patch as isize,
                                    rhs: staged.as_ptr(),
                                    rhs_rs: len as isize,
                                    rhs_cs: 1,
                                },
                                gemm::Parallelism::None,
                            )
                        };
                        for i in 0..images {
                            // SAFETY: image `first + i`'s input gradient, which no other item writes.
                            let image = unsafe {
                                std::slice::from_raw_parts_mut(
                                    input.at((first + i) * image_in),
                                    image_in,
                                )
                            };
                            col2im(g, cols, len, i * plane, image);
                        }
                    }
                },
            );
        });
    grad_in
}

/// For each (input channel, kernel row, kernel column) and output row: the input row it reads,
/// if inside the image.
fn source_row(g: Geometry, ky: usize, out_row: usize) -> Option<usize> {
    let row = (out_row * g.stepping.stride[0] + ky) as isize - g.stepping.padding[0] as isize;
    (0..g.height as isize)
        .contains(&row)
        .then_some(row as usize)
}

/// The output columns whose tap `kx` reads inside the image, and the input column of the first.
fn inside_columns(g: Geometry, kx: usize) -> (std::ops::Range<usize>, usize) {
    let [_, out_w] = g.out_size();
    let (stride, pad) = (g.stepping.stride[1], g.stepping.padding[1]);
    // Input column of output column x: x·stride + kx − pad, inside [0, width).
    let first = pad.saturating_sub(kx).div_ceil(stride);
    let past = if g.width + pad > kx {
        ((g.width + pad - kx - 1) / stride + 1).min(out_w)
    } else {
        0
    };
    let first = first.min(past);
    (first..past, (first * stride + kx).saturating_sub(pad))
}

/// Unfolds one `[in, h, w]` image into `[in·kh·kw, out_h·out_w]` columns `offset..` of `cols`
/// (rows `stride` apart): row `(c, ky, kx)` holds, for each output position, the input its tap
/// reads, zero where that lies in the padding.
fn im2col(g: Geometry, image: &[f32], cols: &mut [f32], stride: usize, offset: usize) {
    let [kh, kw] = g.kernel;
    let [out_h, out_w] = g.out_size();
    let step = g.stepping.stride[1];
    let mut tap = 0;
    for channel in image.chunks_exact(g.in_plane()) {
        for ky in 0..kh {
            for kx in 0..kw {
                let row = &mut cols[tap * stride + offset..][..out_h * out_w];
                tap += 1;
                let (inside, from) = inside_columns(g, kx);
                for (oy, out_row) in row.chunks_exact_mut(out_w).enumerate() {
                    let Some(y) = source_row(g, ky, oy) else {
                        out_row.fill(0.0);
                        continue;
                    };
                    let source = &channel[y * g.width..][..g.width];
                    out_row[..inside.start].fill(0.0);
                    out_row[inside.end..].fill(0.0);
                    for (n, value) in out_row[inside.clone()].iter_mut().enumerate() {
                        *value = source[from + n * step];
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: adds each unfolded value onto the input position it came from
/// (padding positions are dropped), onto what `image` holds (zeros, from [`input_grad`]).
fn col2im(g: Geometry, cols: &[f32], stride: usize, offset: usize, image: &mut [f32]) {
    let [kh, kw] = g.kernel;
    let [out_h, out_w] = g.out_size();
    let step = g.stepping.stride[1];
    let mut tap = 0;
    for channel in image.chunks_exact_mut(g.in_plane()) {
        for ky in 0..kh {
            for kx in 0..kw {
                let row = &cols[tap * stride + offset..][..out_h * out_w];
                tap += 1;
                let (inside, from) = inside_columns(g, kx);
                for (oy, out_row) in row.chunks_exact(out_w).enumerate() {
                    let Some(y) = source_row(g, ky, oy) else {
                        continue;
                    };
                    let target = &mut channel[y * g.width..][..g.width];
                    for (n, value) in out_row[inside.clone()].iter().enumerate() {
                        target[from + n * step] += value;
                    }
                }
            }
        }
    }
}
