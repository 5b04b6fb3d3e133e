//! The backend extension that routes kiln's CPU kernels through burn's `Dispatch`: one
//! implementation for flex, one for autodiff over flex with the hand-written backward passes.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex, TensorMetadata, backend_extension};
use burn::tensor::TensorData;

use super::batch_norm::{self, NormShape};
use super::conv::{self, ConvShape};
use super::pool::{self, PoolShape};
use super::strided_conv::{self, Geometry, Stepping};

#[backend_extension(Flex, Autodiff)]
pub trait KilnCpuOps: Backend {
    /// Convolution of `[batch, in, h, w]` by `[out, in, kh, kw]` plus `bias` `[out]`, by the
    /// kernel `kernel` names.
    fn conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        kernel: ConvKernel,
    ) -> FloatTensor<Self>;

    /// Batch norm in training over `[batch, channels, h, w]`: the output, then each channel's
    /// mean and biased variance (not tracked).
    fn batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// 2×2 max pooling with stride 2 over `[batch, channels, h, w]`.
    fn max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

impl KilnCpuOps for Flex {
    fn conv2d(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        kernel: ConvKernel,
    ) -> FlexTensor {
        conv_forward(&x, &weight, &bias, kernel)
    }

    fn batch_norm_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        norm_forward(&x, &gamma, &beta, epsilon)
    }

    fn max_pool2x2(x: FlexTensor) -> FlexTensor {
        pool_forward(&x).0
    }
}

/// An autodiff tensor over flex (burn does not export the type by name).
type AutodiffTensor<C> = FloatTensor<Autodiff<Flex, C>>;

impl<C: CheckpointStrategy> KilnCpuOps for Autodiff<Flex, C> {
    fn conv2d(
        x: AutodiffTensor<C>,
        weight: AutodiffTensor<C>,
        bias: AutodiffTensor<C>,
        kernel: ConvKernel,
    ) -> AutodiffTensor<C> {
        match ConvBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let x = x.primitive().clone();
                let weight = weight.primitive().clone();
                let output = conv_forward(&x, &weight, bias.primitive(), kernel);
                prep.finish((x, weight, kernel), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(conv_forward(
                x.primitive(),
                weight.primitive(),
                bias.primitive(),
                kernel,
            )),
        }
    }

    fn batch_norm_train(
        x: AutodiffTensor<C>,
        gamma: AutodiffTensor<C>,
        beta: AutodiffTensor<C>,
        epsilon: f64,
    ) -> (AutodiffTensor<C>, AutodiffTensor<C>, AutodiffTensor<C>) {
        let prepared = BatchNormBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful();
        let (output, mean, variance) =
            norm_forward(x.primitive(), gamma.primitive(), beta.primitive(), epsilon);
        let output = match prepared {
            OpsKind::Tracked(prep) => {
                let state = NormState {
                    x: x.primitive().clone(),
                    gamma: gamma.primitive().clone(),
                    mean: mean.clone(),
                    variance: variance.clone(),
                    epsilon,
                };
                prep.finish(state, output)
            }
            OpsKind::UnTracked(prep) => prep.finish(output),
        };
        (
            output,
            AutodiffTensor::<C>::new(mean),
            AutodiffTensor::<C>::new(variance),
        )
    }

    fn max_pool2x2(x: AutodiffTensor<C>) -> AutodiffTensor<C> {
        match MaxPoolBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (output, which) = pool_forward(x.primitive());
                let state = PoolState {
                    shape: pool_shape(x.primitive()),
                    input_dims: x.primitive().shape().as_slice().to_vec(),
                    which: Arc::new(which),
                };
                prep.finish(state, output)
            }
            OpsKind::UnTracked(prep) => prep.finish(pool_forward(x.primitive()).0),
        }
    }
}

/// Which of kiln's convolution kernels runs a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvKernel {
    /// Stride 1, odd square kernel, half of it padded on every side: the output is the input's
    /// size (kiln's fastest kernel, banded by image rows).
    Same,
    /// Any stride and symmetric padding.
    Strided(Stepping),
}

#[derive(Debug)]
struct ConvBackward;

impl Backward<Flex, 3> for ConvBackward {
    /// The forward pass's input, weights and kernel.
    type State = (FlexTensor, FlexTensor, ConvKernel);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_weight, node_bias] = ops.parents;
        let grad_out = grads.consume::<Flex>(&ops.node).to_contiguous();
        let (x, weight, kernel) = ops.state;
        let grad = f32s(&grad_out);
        if let Some(node) = node_x {
            let contiguous = weight.to_contiguous();
            let weights = f32s(&contiguous);
            let grad_in = match kernel {
                ConvKernel::Same => conv::input_grad(conv_shape(&x, &weight), grad, weights),
                ConvKernel::Strided(stepping) => {
                    strided_conv::input_grad(geometry(&x, &weight, stepping), grad, weights)
                }
            };
            grads.register::<Flex>(node.id, flex_tensor(grad_in, x.shape().as_slice()));
        }
        if node_weight.is_some() || node_bias.is_some() {
            let contiguous = x.to_contiguous();
            let input = f32s(&contiguous);
            let (grad_weight, grad_bias) = match kernel {
                ConvKernel::Same => {
                    conv::weight_and_bias_grad(conv_shape(&x, &weight), input, grad)
                }
                ConvKernel::Strided(stepping) => {
                    strided_conv::weight_and_bias_grad(geometry(&x, &weight, stepping), input, grad)
                }
            };
            let dims = weight.shape();
            if let Some(node) = node_weight {
                grads.register::<Flex>(node.id, flex_tensor(grad_weight, dims.as_slice()));
            }
            if let Some(node) = node_bias {
                grads.register::<Flex>(node.id, flex_tensor(grad_bias, &dims.as_slice()[..1]));
            }
        }
    }
}

#[derive(Debug, Clone)]
struct NormState {
    x: FlexTensor,
    gamma: FlexTensor,
    mean: FlexTensor,
    variance: FlexTensor,
    epsilon: f64,
}

#[derive(Debug)]
struct BatchNormBackward;

impl Backward<Flex, 3> for BatchNormBackward {
    type State = NormState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad_out = grads.consume::<Flex>(&ops.node).to_contiguous();
        let state = ops.state;
        let x = state.x.to_contiguous();
        let [gamma, mean, variance] =
            [&state.gamma, &state.mean, &state.variance].map(FlexTensor::to_contiguous);
        let grads_of = batch_norm::backward(
            norm_shape(&x),
            f32s(&x),
            f32s(&gamma),
            f32s(&mean),
            f32s(&variance),
            state.epsilon,
            f32s(&grad_out),
        );
        let channels = [grads_of.gamma.len()];
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, flex_tensor(grads_of.input, x.shape().as_slice()));
        }
        if let Some(node) = node_gamma {
            grads.register::<Flex>(node.id, flex_tensor(grads_of.gamma, &channels));
        }
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, flex_tensor(grads_of.beta, &channels));
        }
    }
}

#[derive(Debug, Clone)]
struct PoolState {
    shape: PoolShape,
    input_dims: Vec<usize>,
    /// Which of each window's four won, from the forward pass.
    which: Arc<Vec<u8>>,
}

#[derive(Debug)]
struct MaxPoolBackward;

impl Backward<Flex, 1> for MaxPoolBackward {
    type State = PoolState;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let grad_out = grads.consume::<Flex>(&ops.node).to_contiguous();
        if let Some(node) = node_x {
            let state = ops.state;
            let grad_in = pool::backward(state.shape, f32s(&grad_out), &state.which);
            grads.register::<Flex>(node.id, flex_tensor(grad_in, &state.input_dims));
        }
    }
}

fn pool_forward(x: &FlexTensor) -> (FlexTensor, Vec<u8>) {
    let shape = pool_shape(x);
    let x = x.to_contiguous();
    let (output, which) = pool::forward(shape, f32s(&x));
    let [batch, channels, _, _] = x.shape().dims::<4>();
    let dims = [batch, channels, shape.out_height(), shape.out_width()];
    (flex_tensor(output, &dims), which)
}

fn pool_shape(x: &FlexTensor) -> PoolShape {
    let [batch, channels, height, width] = x.shape().dims::<4>();
    PoolShape {
        planes: batch * channels,
        height,
        width,
    }
}

fn conv_forward(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: &FlexTensor,
    kernel: ConvKernel,
) -> FlexTensor {
    let (input, weights, bias) = (
        x.to_contiguous(),
        weight.to_contiguous(),
        bias.to_contiguous(),
    );
    let (input, weights, bias) = (f32s(&input), f32s(&weights), Some(f32s(&bias)));
    match kernel {
        ConvKernel::Same => {
            let shape = conv_shape(x, weight);
            let mut out = vec![0.0; shape.output_len()];
            conv::forward(shape, input, weights, bias, &mut out);
            let dims = [shape.batch, shape.out_channels, shape.height, shape.width];
            flex_tensor(out, &dims)
        }
        ConvKernel::Strided(stepping) => {
            let geometry = geometry(x, weight, stepping);
            let mut out = vec![0.0; geometry.output_len()];
            strided_conv::forward(geometry, input, weights, bias, &mut out);
            let [out_h, out_w] = geometry.out_size();
            flex_tensor(out, &[geometry.batch, geometry.out_channels, out_h, out_w])
        }
    }
}

fn geometry(x: &FlexTensor, weight: &FlexTensor, stepping: Stepping) -> Geometry {
    let [batch, in_channels, height, width] = x.shape().dims::<4>();
    let [out_channels, weight_in, kh, kw] = weight.shape().dims::<4>();
    debug_assert_eq!(in_channels, weight_in, "conv channels");
    Geometry {
        batch,
        in_channels,
        out_channels,
        height,
        width,
        kernel: [kh, kw],
        stepping,
    }
}

fn norm_forward(
    x: &FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
    epsilon: f64,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let (x, gamma, beta) = (
        x.to_contiguous(),
        gamma.to_contiguous(),
        beta.to_contiguous(),
    );
    let result = batch_norm::forward(norm_shape(&x), f32s(&x), f32s(&gamma), f32s(&beta), epsilon);
    let channels = [result.mean.len()];
    (
        flex_tensor(result.output, x.shape().as_slice()),
        flex_tensor(result.mean, &channels),
        flex_tensor(result.variance, &channels),
    )
}

fn conv_shape(x: &FlexTensor, weight: &FlexTensor) -> ConvShape {
    let [batch, in_channels, height, width] = x.shape().dims::<4>();
    let [out_channels, weight_in, kernel, _] = weight.shape().dims::<4>();
    debug_assert_eq!(in_channels, weight_in, "conv channels");
    ConvShape {
        batch,
        in_channels,
        out_channels,
        height,
        width,
        kernel,
    }
}

fn norm_shape(x: &FlexTensor) -> NormShape {
    let dims = x.shape();
    let dims = dims.as_slice();
    NormShape {
        batch: dims[0],
        channels: dims[1],
        plane: dims[2..].iter().product(),
    }
}

/// A contiguous f32 tensor's elements.
fn f32s(tensor: &FlexTensor) -> &[f32] {
    tensor
        .as_slice::<f32>()
        .expect("kiln's CPU kernels run on contiguous f32 tensors only")
}

fn flex_tensor(values: Vec<f32>, dims: &[usize]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, dims.to_vec()))
}
