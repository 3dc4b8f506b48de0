//! The ResNet's convolutional trunk, trained on the CPU with a backward pass of its own.
//!
//! Through candle's graph, each map between two ops gets its gradient as a fresh zero-filled
//! tensor plus an add (that is how candle's `backward` gathers gradients), the skips' biases
//! theirs through a broadcast reduction, and every add runs on candle's thread pool beside
//! ours. On the seed's ResNet that was ≈ 10% of a training step. Here the trunk's forward
//! keeps the maps its backward reads (a [`TrunkTape`]), and the backward runs the convolution
//! and batch-norm kernels of [`sweep_kernels`] on them, writing each gradient once. The
//! tape is a value the training forward returns and the backward consumes
//! ([`tape`](super::tape) says why).
//!
//! The head (global pooling, dense layers, dropout, loss) stays in candle's graph: the trunk's
//! output enters it as a variable, and [`TrunkTape::backward`] starts from that variable's
//! gradient and adds the trunk's parameters' gradients to candle's.

use std::sync::Arc;

use candle_core::backprop::GradStore;
use candle_core::{Device, Result, Tensor, Var};

use crate::nn::batch_norm::BatchNorm2d;
use crate::nn::conv::Conv2d;
use sweep_kernels::activation::{add_in_place, add_relu_in_place, relu_mask_in_place};
use sweep_kernels::norm::{channel_sums, gradient_values, normalize, Saved};
use sweep_kernels::{conv, Epilogue, Geometry};

use crate::ops::cpu;
use crate::ops::storage::with_f32;

/// One layer of the trunk, in the order the forward runs them.
pub(crate) enum Layer<'a> {
    /// Convolution → batch norm → ReLU → 2×2 max pool (no pool on maps under 2×2).
    Stem(&'a Conv2d, &'a BatchNorm2d),
    /// conv → BN → ReLU → conv → BN, plus the skip (the input itself, or a 1×1 convolution
    /// with bias), then a ReLU.
    Block {
        conv1: &'a Conv2d,
        bn1: &'a BatchNorm2d,
        conv2: &'a Conv2d,
        bn2: &'a BatchNorm2d,
        skip: Option<&'a Conv2d>,
    },
    /// A 1×1 convolution with bias, then a ReLU.
    Dense(&'a Conv2d),
}

/// Dims of a map: `n × c × h × w`.
type Dims = (usize, usize, usize, usize);

/// A convolution as the tape keeps it: its parameters (the variables' own tensors, which
/// the gradients are filed under) and its shape on this batch.
struct Conv {
    weight: Tensor,
    bias: Option<Tensor>,
    g: Geometry,
}

impl Conv {
    fn new(layer: &Conv2d, dims: Dims) -> Result<Self> {
        Ok(Conv {
            weight: layer.weight().clone(),
            bias: layer.bias().cloned(),
            g: layer.geometry(dims)?,
        })
    }

    fn out_dims(&self) -> Dims {
        (self.g.n, self.g.o, self.g.oh(), self.g.ow())
    }

    /// `conv(x)`, plus the bias when the layer has one, then a ReLU when `relu` (which only
    /// a layer with a bias asks for).
    fn forward(&self, x: &[f32], relu: bool) -> Result<Vec<f32>> {
        debug_assert!(!relu || self.bias.is_some(), "a ReLU without a bias");
        let epilogue = match &self.bias {
            Some(bias) => {
                let shift = bias.to_vec1::<f32>()?;
                Some(Epilogue {
                    scale: vec![1.0; shift.len()],
                    shift,
                    relu,
                })
            }
            None => None,
        };
        with_f32(&self.weight, "conv2d", "the kernel", |w| {
            conv::forward(x, w, &self.g, epilogue.as_ref(), cpu())
        })
    }

    /// Files the weight's (and the bias's) gradient, from the input `x` and the output
    /// gradient `dy`.
    fn file_grads(&self, x: &[f32], dy: &[f32], grads: &mut GradStore) -> Result<()> {
        let dw = conv::weight_grad(x, dy, &self.g, cpu());
        grads.insert(&self.weight, to_tensor(dw, self.weight.dims())?);
        if let Some(bias) = &self.bias {
            let (n, o, oh, ow) = self.out_dims();
            grads.insert(
                bias,
                to_tensor(channel_sums(dy, n, o, oh * ow), bias.dims())?,
            );
        }
        Ok(())
    }

    /// The input's gradient from the output gradient `dy`.
    fn input_grad(&self, dy: &[f32]) -> Result<Vec<f32>> {
        with_f32(&self.weight, "conv2d", "the kernel", |w| {
            conv::input_grad(dy, w, &self.g, cpu())
        })
    }
}

/// A batch norm as the tape keeps it: `γ` (the variable and the values the forward read),
/// `β`, ε and what its forward saved.
struct Norm {
    gamma: Tensor,
    gamma_values: Vec<f32>,
    beta: Tensor,
    eps: f32,
    saved: Saved,
}

impl Norm {
    /// The normalised map of `x` (then the ReLU and the pool when asked) with the batch's
    /// statistics, which also move the layer's running averages.
    fn forward(
        layer: &BatchNorm2d,
        x: &[f32],
        dims: Dims,
        relu: bool,
        pool: bool,
    ) -> Result<(Vec<f32>, Self)> {
        let Some((gamma, beta, eps)) = layer.affine() else {
            candle_core::bail!("batch norm: the trunk's layers learn their scale and shift")
        };
        let (g, b) = (gamma.to_vec1::<f32>()?, beta.to_vec1::<f32>()?);
        let (y, _, saved) = normalize(x, dims, (&g, &b), eps, relu, pool);
        let (n, _, h, w) = dims;
        layer.update_running(saved.stats(), n * h * w)?;
        let norm = Norm {
            gamma: gamma.clone(),
            gamma_values: g,
            beta: beta.clone(),
            eps,
            saved,
        };
        Ok((y, norm))
    }

    /// Files `γ`'s and `β`'s gradients and returns the input's, from the forward's input `x`
    /// and the output gradient `dy` (pooled, with `pool`).
    fn backward(
        &self,
        x: &[f32],
        dims: Dims,
        dy: &[f32],
        relu_pool: (bool, bool),
        grads: &mut GradStore,
    ) -> Result<Vec<f32>> {
        let mut packed = gradient_values(
            x,
            dims,
            &self.gamma_values,
            dy,
            &self.saved,
            self.eps,
            relu_pool,
        );
        let c = dims.1;
        let dbeta = packed.split_off(x.len() + c);
        let dgamma = packed.split_off(x.len());
        grads.insert(&self.gamma, to_tensor(dgamma, c)?);
        grads.insert(&self.beta, to_tensor(dbeta, c)?);
        Ok(packed)
    }
}

fn to_tensor(values: Vec<f32>, shape: impl Into<candle_core::Shape>) -> Result<Tensor> {
    Tensor::from_vec(values, shape, &Device::Cpu)
}

/// What one layer's backward reads. A map that two records share (a block's output is the
/// next one's input) is one `Arc`. A step has a record per layer (a dozen), so the size of
/// the largest variant costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
enum Record {
    Stem {
        images: Tensor,
        conv: Conv,
        norm: Norm,
        /// The convolution's output, and whether the pool ran.
        y: Vec<f32>,
        pool: bool,
    },
    Block {
        x: Arc<Vec<f32>>,
        conv1: Conv,
        /// conv1's output and the normalised map after the ReLU (conv2's input).
        c1: Vec<f32>,
        norm1: Norm,
        a1: Vec<f32>,
        conv2: Conv,
        c2: Vec<f32>,
        norm2: Norm,
        skip: Option<Conv>,
        out: Arc<Vec<f32>>,
    },
    Dense {
        x: Arc<Vec<f32>>,
        conv: Conv,
        out: Arc<Vec<f32>>,
    },
}

/// The trunk's forward on a batch, kept for its backward: the records of its layers, and
/// its output as the variable the head reads.
pub(crate) struct TrunkTape {
    records: Vec<Record>,
    output: Var,
}

/// Whether [`forward`] takes these images: f32 on the CPU (elsewhere candle's graph runs).
pub(crate) fn applies(images: &Tensor) -> bool {
    images.device().is_cpu() && images.dtype() == candle_core::DType::F32 && images.rank() == 4
}

/// Runs the trunk's `layers` on `images` in training mode: its output (a variable of candle's
/// graph, so the head's backward reaches it) and the tape for [`TrunkTape::backward`].
pub(crate) fn forward(layers: &[Layer], images: &Tensor) -> Result<(Tensor, TrunkTape)> {
    let images = images.contiguous()?;
    let mut records = Vec::with_capacity(layers.len());
    let mut dims = images.dims4()?;
    let mut map: Option<Arc<Vec<f32>>> = None;
    for layer in layers {
        match *layer {
            Layer::Stem(conv, bn) => {
                let conv = Conv::new(conv, dims)?;
                let y = with_f32(&images, "conv2d", "the images", |x| conv.forward(x, false))??;
                let (n, c, h, w) = conv.out_dims();
                let pool = h >= 2 && w >= 2;
                let (p, norm) = Norm::forward(bn, &y, (n, c, h, w), true, pool)?;
                dims = if pool {
                    (n, c, h / 2, w / 2)
                } else {
                    (n, c, h, w)
                };
                map = Some(Arc::new(p));
                records.push(Record::Stem {
                    images: images.clone(),
                    conv,
                    norm,
                    y,
                    pool,
                });
            }
            Layer::Block {
                conv1,
                bn1,
                conv2,
                bn2,
                skip,
            } => {
                let x = input(&map)?;
                let conv1 = Conv::new(conv1, dims)?;
                let c1 = conv1.forward(&x, false)?;
                let (a1, norm1) = Norm::forward(bn1, &c1, conv1.out_dims(), true, false)?;
                let conv2 = Conv::new(conv2, conv1.out_dims())?;
                let c2 = conv2.forward(&a1, false)?;
                let (mut out, norm2) = Norm::forward(bn2, &c2, conv2.out_dims(), false, false)?;
                let skip = skip.map(|s| Conv::new(s, dims)).transpose()?;
                match &skip {
                    Some(conv) => add_relu_in_place(&mut out, &conv.forward(&x, false)?),
                    None => add_relu_in_place(&mut out, &x),
                }
                dims = conv2.out_dims();
                let out = Arc::new(out);
                map = Some(out.clone());
                records.push(Record::Block {
                    x,
                    conv1,
                    c1,
                    norm1,
                    a1,
                    conv2,
                    c2,
                    norm2,
                    skip,
                    out,
                });
            }
            Layer::Dense(conv) => {
                let x = input(&map)?;
                let conv = Conv::new(conv, dims)?;
                let out = conv.forward(&x, true)?;
                dims = conv.out_dims();
                let out = Arc::new(out);
                map = Some(out.clone());
                records.push(Record::Dense { x, conv, out });
            }
        }
    }
    let values = input(&map)?.as_ref().clone();
    let output = Var::from_vec(values, dims, &Device::Cpu)?;
    let tensor = output.as_tensor().clone();
    Ok((tensor, TrunkTape { records, output }))
}

/// The map the previous layer wrote (the trunk starts with its stem).
fn input(map: &Option<Arc<Vec<f32>>>) -> Result<Arc<Vec<f32>>> {
    match map {
        Some(map) => Ok(map.clone()),
        None => candle_core::bail!("resnet: the trunk starts with its stem"),
    }
}

impl TrunkTape {
    /// The trunk's output, the variable the head read: the head's backward holds its
    /// gradient, where [`TrunkTape::backward`] starts.
    pub(crate) fn output(&self) -> &Tensor {
        self.output.as_tensor()
    }

    /// Adds the gradients of the trunk's parameters to `grads` (the head's backward), from
    /// `d_output`, the gradient of the trunk's [`output`](TrunkTape::output).
    pub(crate) fn backward(self, d_output: &Tensor, grads: &mut GradStore) -> Result<()> {
        let mut dy: Vec<f32> = d_output.flatten_all()?.to_vec1()?;
        for record in self.records.into_iter().rev() {
            dy = record.backward(dy, grads)?;
        }
        Ok(())
    }
}

impl Record {
    /// Files this layer's parameters' gradients from its output's gradient `dy`, and
    /// returns its input's (nothing for the stem: the images train nothing).
    fn backward(self, mut dy: Vec<f32>, grads: &mut GradStore) -> Result<Vec<f32>> {
        match self {
            Record::Stem {
                images,
                conv,
                norm,
                y,
                pool,
            } => {
                let dconv = norm.backward(&y, conv.out_dims(), &dy, (true, pool), grads)?;
                with_f32(&images, "conv2d", "the images", |x| {
                    conv.file_grads(x, &dconv, grads)
                })??;
                Ok(Vec::new())
            }
            Record::Block {
                x,
                conv1,
                c1,
                norm1,
                a1,
                conv2,
                c2,
                norm2,
                skip,
                out,
            } => {
                // The gradient of the sum before the final ReLU: the main branch's and the
                // skip's.
                relu_mask_in_place(&mut dy, &out);
                drop(out);
                let mut dx = match &skip {
                    Some(conv) => {
                        conv.file_grads(&x, &dy, grads)?;
                        conv.input_grad(&dy)?
                    }
                    None => dy.clone(),
                };
                let dc2 = norm2.backward(&c2, conv2.out_dims(), &dy, (false, false), grads)?;
                drop((dy, c2));
                conv2.file_grads(&a1, &dc2, grads)?;
                let da1 = conv2.input_grad(&dc2)?;
                drop((dc2, a1));
                let dc1 = norm1.backward(&c1, conv1.out_dims(), &da1, (true, false), grads)?;
                drop((da1, c1));
                conv1.file_grads(&x, &dc1, grads)?;
                add_in_place(&mut dx, &conv1.input_grad(&dc1)?);
                Ok(dx)
            }
            Record::Dense { x, conv, out } => {
                relu_mask_in_place(&mut dy, &out);
                conv.file_grads(&x, &dy, grads)?;
                conv.input_grad(&dy)
            }
        }
    }
}
