//! [`Net`]: the classifier a trial trains, an [`Mlp`] or a [`ResNet`] as its
//! [`ModelConfig`] says.

use candle_core::backprop::GradStore;
use candle_core::{Device, Result, Tensor};
use candle_nn::VarMap;

use crate::nn::config::{Arch, ModelConfig};
use crate::nn::init::seeded_var_builder;
use crate::nn::mlp::Mlp;
use crate::nn::pass::Pass;
use crate::nn::resnet::ResNet;

/// A classifier of square RGB images into `classes` labels.
pub enum Net {
    Mlp(Mlp),
    ResNet(ResNet),
}

impl Net {
    /// Builds the network for `size × size` images, its weights drawn from `seed` (the same
    /// seed gives the same weights on every run) and registered in `vars`.
    pub fn new(
        config: &ModelConfig,
        size: usize,
        classes: usize,
        seed: u64,
        vars: &VarMap,
        device: &Device,
    ) -> Result<Self> {
        let vb = seeded_var_builder(vars, seed, device);
        Ok(match config.arch {
            Arch::Mlp => Net::Mlp(Mlp::new(config, size, classes, vb)?),
            Arch::Resnet => Net::ResNet(ResNet::new(config, classes, vb)?),
        })
    }

    /// The logits (batch × classes) for a batch of normalised images (batch × 3 × size × size).
    pub fn forward(&self, xs: &Tensor, pass: &mut Pass) -> Result<Tensor> {
        match self {
            Net::Mlp(m) => m.forward(xs, pass),
            Net::ResNet(r) => r.forward(xs, pass),
        }
    }

    /// The gradients of `loss`, computed from the last training forward, for every
    /// variable: candle's backward through its graph, then, on the CPU, the ResNet's trunk's
    /// own backward or the MLP's first layer's (which that forward recorded instead of a
    /// graph).
    pub fn backward(&self, loss: &Tensor) -> Result<GradStore> {
        let mut grads = loss.backward()?;
        match self {
            Net::Mlp(m) => m.backward_first(&mut grads)?,
            Net::ResNet(r) => r.backward_trunk(&mut grads)?,
        }
        Ok(grads)
    }
}
