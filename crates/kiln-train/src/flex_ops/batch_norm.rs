//! Batch normalisation in training on f32 NCHW slices: each channel's statistics in one parallel
//! pass, then one pass to write the output; the backward the same way round.
//!
//! burn-backend's default `batch_norm_train` and its backward compose about ten full-tensor
//! passes with four `swap_dims` copies; these make two each way.

use rayon::prelude::*;

/// `[batch, channels, plane]`: an NCHW tensor with its spatial dimensions flattened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NormShape {
    pub batch: usize,
    pub channels: usize,
    pub plane: usize,
}

impl NormShape {
    fn len(&self) -> usize {
        self.batch * self.channels * self.plane
    }

    /// How many values each channel's statistics are taken over.
    fn per_channel(&self) -> f64 {
        (self.batch * self.plane) as f64
    }

    /// The `plane`-long runs of one channel, one per image.
    fn planes_of<'a>(&self, data: &'a [f32], channel: usize) -> impl Iterator<Item = &'a [f32]> {
        let (plane, stride) = (self.plane, self.channels * self.plane);
        (0..self.batch).map(move |n| &data[n * stride + channel * plane..][..plane])
    }
}

/// What the forward pass computed: the output and each channel's mean and biased variance.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    pub output: Vec<f32>,
    pub mean: Vec<f32>,
    pub variance: Vec<f32>,
}

/// The gradients with respect to the input, `gamma` and `beta`.
#[derive(Debug, Clone, PartialEq)]
pub struct NormGrads {
    pub input: Vec<f32>,
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
}

/// `gamma · (x − mean) / √(variance + epsilon) + beta`, with the batch's own statistics.
pub fn forward(
    shape: NormShape,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
) -> Normalized {
    assert_eq!(x.len(), shape.len(), "batch norm input length");
    let count = shape.per_channel();
    // Each plane summed in f32 (vectorised), the planes' sums added in f64.
    let (mean, variance): (Vec<f32>, Vec<f32>) = (0..shape.channels)
        .into_par_iter()
        .map(|c| {
            let sum: f64 = shape
                .planes_of(x, c)
                .map(|p| p.iter().sum::<f32>() as f64)
                .sum();
            let mean = (sum / count) as f32;
            let squares: f64 = shape
                .planes_of(x, c)
                .map(|p| p.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() as f64)
                .sum();
            (mean, (squares / count) as f32)
        })
        .unzip();
    let (scale, shift): (Vec<f32>, Vec<f32>) = (0..shape.channels)
        .map(|c| {
            let scale = gamma[c] / (variance[c] as f64 + epsilon).sqrt() as f32;
            (scale, beta[c] - mean[c] * scale)
        })
        .unzip();
    let mut output = vec![0.0; x.len()];
    output
        .par_chunks_mut(shape.plane)
        .zip(x.par_chunks(shape.plane))
        .enumerate()
        .for_each(|(i, (out, x))| {
            let c = i % shape.channels;
            let (a, b) = (scale[c], shift[c]);
            out.iter_mut().zip(x).for_each(|(o, &v)| *o = v * a + b);
        });
    Normalized {
        output,
        mean,
        variance,
    }
}

/// The gradients of [`forward`] given its output's gradient and the statistics it returned.
pub fn backward(
    shape: NormShape,
    x: &[f32],
    gamma: &[f32],
    mean: &[f32],
    variance: &[f32],
    epsilon: f64,
    grad_out: &[f32],
) -> NormGrads {
    assert_eq!(x.len(), shape.len(), "batch norm input length");
    assert_eq!(
        grad_out.len(),
        shape.len(),
        "batch norm output gradient length"
    );
    let count = shape.per_channel();
    let inv_std: Vec<f32> = variance
        .iter()
        .map(|&v| (1.0 / (v as f64 + epsilon).sqrt()) as f32)
        .collect();
    // Σ dy and Σ dy · (x − mean) for each channel.
    let (sum_grad, sum_grad_centred): (Vec<f64>, Vec<f64>) = (0..shape.channels)
        .into_par_iter()
        .map(|c| {
            let m = mean[c];
            shape
                .planes_of(grad_out, c)
                .zip(shape.planes_of(x, c))
                .fold((0.0, 0.0), |(dy, dyx), (g, x)| {
                    let (s, sx) = g.iter().zip(x).fold((0.0f32, 0.0f32), |(s, sx), (&g, &x)| {
                        (s + g, sx + g * (x - m))
                    });
                    (dy + s as f64, dyx + sx as f64)
                })
        })
        .unzip();
    let beta_grad: Vec<f32> = sum_grad.iter().map(|&s| s as f32).collect();
    let gamma_grad: Vec<f32> = (0..shape.channels)
        .map(|c| (sum_grad_centred[c] * inv_std[c] as f64) as f32)
        .collect();
    // dx = γ/σ · (dy − Σdy/M − x̂ · Σ(dy·x̂)/M), written as a · dy + b · x + k per channel.
    let coefficients: Vec<(f32, f32, f32)> = (0..shape.channels)
        .map(|c| {
            let a = gamma[c] as f64 * inv_std[c] as f64;
            let inv = inv_std[c] as f64;
            let b = -a * inv * inv * sum_grad_centred[c] / count;
            let k = -a * sum_grad[c] / count - b * mean[c] as f64;
            (a as f32, b as f32, k as f32)
        })
        .collect();
    let mut input = vec![0.0; x.len()];
    input
        .par_chunks_mut(shape.plane)
        .zip(
            grad_out
                .par_chunks(shape.plane)
                .zip(x.par_chunks(shape.plane)),
        )
        .enumerate()
        .for_each(|(i, (dx, (dy, x)))| {
            let (a, b, k) = coefficients[i % shape.channels];
            dx.iter_mut()
                .zip(dy.iter().zip(x))
                .for_each(|(d, (&g, &v))| *d = a * g + b * v + k);
        });
    NormGrads {
        input,
        gamma: gamma_grad,
        beta: beta_grad,
    }
}
