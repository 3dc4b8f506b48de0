//! [`Mlp`]: flatten → dense + ReLU per hidden layer → dropout → dense output, the seed's
//! baseline network.

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use crate::data::CHANNELS;
use crate::nn::config::ModelConfig;
use crate::nn::dense::{dense, Dense};
use crate::nn::pass::{dropout, Pass};

/// A multi-layer perceptron over the flattened pixels.
pub struct Mlp {
    hidden: Vec<Dense>,
    dropout: f64,
    output: Dense,
}

impl Mlp {
    /// Hidden widths are `neurons` then each of `hidden`; the input is `size × size × 3`.
    pub fn new(config: &ModelConfig, size: usize, classes: usize, vb: VarBuilder) -> Result<Self> {
        let widths: Vec<usize> = std::iter::once(config.neurons)
            .chain(config.hidden.iter().copied())
            .collect();
        let mut inputs = size * size * CHANNELS;
        let mut hidden = Vec::with_capacity(widths.len());
        for (i, &width) in widths.iter().enumerate() {
            hidden.push(dense(
                inputs,
                width,
                config.init,
                vb.pp(format!("dense{i}")),
            )?);
            inputs = width;
        }
        Ok(Self {
            hidden,
            dropout: config.dropout,
            output: dense(inputs, classes, config.init, vb.pp("output"))?,
        })
    }

    /// The logits for a batch of images.
    pub fn forward(&self, xs: &Tensor, pass: &mut Pass) -> Result<Tensor> {
        let mut xs = xs.flatten_from(1)?;
        for layer in &self.hidden {
            xs = layer.forward(&xs)?.relu()?;
        }
        self.output.forward(&dropout(&xs, self.dropout, pass)?)
    }
}
