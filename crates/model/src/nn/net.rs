//! [`Net`]: the classifier a trial trains, an [`Mlp`] or a [`ResNet`] as its
//! [`ModelConfig`] says.

use candle_core::backprop::GradStore;
use candle_core::{Device, Result, Tensor};
use candle_nn::VarMap;

use crate::nn::config::{Arch, ModelConfig};
use crate::nn::init::seeded_var_builder;
use crate::nn::mlp::Mlp;
use crate::nn::resnet::ResNet;
use crate::nn::tape::Tape;
use crate::rng::Rng;

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

    /// The logits (batch × classes) for a batch of normalised images (batch × 3 × size ×
    /// size), in evaluation (running statistics, no dropout).
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        match self {
            Net::Mlp(m) => m.forward(xs),
            Net::ResNet(r) => r.forward(xs),
        }
    }

    /// The logits in training (batch statistics, which also move the running ones, and
    /// dropout drawn from `rng`), and the [`Tape`] that [`Net::backward`] takes.
    pub fn forward_train(&self, xs: &Tensor, rng: &mut Rng) -> Result<(Tensor, Tape)> {
        match self {
            Net::Mlp(m) => m.forward_train(xs, rng),
            Net::ResNet(r) => r.forward_train(xs, rng),
        }
    }

    /// The gradients of `loss`, computed from the logits of the training forward that
    /// returned `tape`, for every variable: candle's backward through its graph, then, on
    /// the CPU, the ResNet's trunk's own backward or the MLP's first layer's (which that
    /// forward kept on the tape instead of a graph).
    pub fn backward(&self, loss: &Tensor, tape: Tape) -> Result<GradStore> {
        match self {
            Net::Mlp(m) => m.backward(loss, tape),
            Net::ResNet(r) => r.backward(loss, tape),
        }
    }
}
