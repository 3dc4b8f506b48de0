//! [`Conv2d`]: a square convolution through [`ops::conv`](crate::ops::conv) (the kernels of
//! `sweep-kernels` on the CPU, candle's elsewhere), with its parameters named and initialised
//! as candle-nn's `conv2d`; in evaluation a following batch norm becomes the convolution's
//! epilogue.

use candle_core::{ModuleT, Result, Tensor};
use candle_nn::VarBuilder;

use crate::nn::batch_norm::BatchNorm2d;
use crate::nn::config::WeightInit;
use crate::nn::init::hints;
use sweep_kernels::{Epilogue, Geometry};

use crate::ops::conv::{self as op, checked_geometry};

/// How a [`Conv2d`] is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dConfig {
    pub stride: usize,
    /// Zero pixels added on each side.
    pub padding: usize,
    /// Whether the layer learns a bias per output channel.
    pub bias: bool,
    /// How the weight and bias are first drawn.
    pub init: WeightInit,
}

impl Default for Conv2dConfig {
    fn default() -> Self {
        Self {
            stride: 1,
            padding: 0,
            bias: true,
            init: WeightInit::Kaiming,
        }
    }
}

/// A square 2-D convolution.
pub struct Conv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    stride: usize,
    padding: usize,
}

/// A `kernel × kernel` convolution from `c_in` to `c_out` channels; the weight and bias have
/// candle-nn's `conv2d` names and shapes (and its initialisation with `WeightInit::Kaiming`).
pub fn conv2d(
    c_in: usize,
    c_out: usize,
    kernel: usize,
    config: Conv2dConfig,
    vb: VarBuilder,
) -> Result<Conv2d> {
    let (weight_init, bias_init) = hints(config.init, c_out, c_in, kernel * kernel);
    let weight = vb.get_with_hints((c_out, c_in, kernel, kernel), "weight", weight_init)?;
    let bias = config
        .bias
        .then(|| vb.get_with_hints(c_out, "bias", bias_init))
        .transpose()?;
    Ok(Conv2d {
        weight,
        bias,
        stride: config.stride,
        padding: config.padding,
    })
}

impl ModuleT for Conv2d {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_biased(xs, train, false)
    }
}

impl Conv2d {
    /// The kernels, `c_out × c_in × kernel × kernel`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The product's shape on an input of `dims` (`n × c × h × w`).
    pub(crate) fn geometry(&self, dims: (usize, usize, usize, usize)) -> Result<Geometry> {
        checked_geometry(dims, self.weight.dims4()?, self.stride, self.padding)
    }

    /// The bias per output channel, if the layer has one.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// `relu(conv(xs) + bias)`; in evaluation the bias and the ReLU are the convolution's
    /// epilogue.
    pub fn forward_relu(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_biased(xs, train, true)
    }

    fn forward_biased(&self, xs: &Tensor, train: bool, relu: bool) -> Result<Tensor> {
        if let (false, Some(bias)) = (train, &self.bias) {
            let shift = bias.to_vec1::<f32>()?;
            let epilogue = Epilogue {
                scale: vec![1.0; shift.len()],
                shift,
                relu,
            };
            return op::conv2d_eval(xs, &self.weight, self.stride, self.padding, epilogue);
        }
        let ys = op::conv2d(xs, &self.weight, self.stride, self.padding)?;
        let ys = match &self.bias {
            Some(bias) => ys.broadcast_add(&bias.reshape((1, (), 1, 1))?)?,
            None => ys,
        };
        if relu {
            ys.relu()
        } else {
            Ok(ys)
        }
    }

    /// `bn(conv(xs))`, then a ReLU when `relu`; in evaluation the normalisation is the
    /// convolution's epilogue (this layer has no bias when a batch norm follows it). A ResNet
    /// trained on the CPU does not come here: its trunk runs on its own tape
    /// ([`trunk`](crate::nn::trunk)).
    pub fn forward_bn(
        &self,
        xs: &Tensor,
        bn: &BatchNorm2d,
        relu: bool,
        train: bool,
    ) -> Result<Tensor> {
        if !train && self.bias.is_none() {
            if let Some(epilogue) = bn.eval_epilogue(relu)? {
                return op::conv2d_eval(xs, &self.weight, self.stride, self.padding, epilogue);
            }
        }
        let ys = self.forward_t(xs, train)?;
        if relu {
            bn.forward_relu(&ys, train)
        } else {
            bn.forward_t(&ys, train)
        }
    }
}
