//! [`Mlp`]: flatten → dense + ReLU per hidden layer → dropout → dense output, the seed's
//! baseline network.

use candle_core::backprop::GradStore;
use candle_core::{Module, Result, Tensor, Var};
use candle_nn::VarBuilder;

use crate::data::CHANNELS;
use crate::nn::config::ModelConfig;
use crate::nn::dense::{dense, Dense};
use crate::nn::pass::{dropout, Pass};
use crate::nn::tape::{not_from_this_forward, FirstLayer, Kept, Tape};
use crate::rng::Rng;

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

    /// The logits for a batch of images, in evaluation (no dropout).
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.layers_from(0, xs.flatten_from(1)?, &mut Pass::Eval)
    }

    /// The logits for a batch of images in training (dropout drawn from `rng`), and the tape
    /// [`Mlp::backward`] takes.
    pub fn forward_train(&self, xs: &Tensor, rng: &mut Rng) -> Result<(Tensor, Tape)> {
        self.forward_train_with(xs, rng, xs.device().is_cpu())
    }

    /// [`Mlp::forward_train`], the first layer run outside candle's graph when `own_first`
    /// ([`FirstLayer`]).
    fn forward_train_with(
        &self,
        xs: &Tensor,
        rng: &mut Rng,
        own_first: bool,
    ) -> Result<(Tensor, Tape)> {
        let xs = xs.flatten_from(1)?;
        let mut pass = Pass::Train(rng);
        if !own_first {
            return Ok((self.layers_from(0, xs, &mut pass)?, Tape(Kept::Graph)));
        }
        let output = Var::from_tensor(&self.hidden[0].forward_detached(&xs)?)?;
        let logits = self.layers_from(1, output.as_tensor().relu()?, &mut pass)?;
        let first = FirstLayer { input: xs, output };
        Ok((logits, Tape(Kept::FirstLayer(first))))
    }

    /// The hidden layers from the `first`-th on (dense + ReLU each), then dropout and the
    /// output layer.
    fn layers_from(&self, first: usize, mut xs: Tensor, pass: &mut Pass) -> Result<Tensor> {
        for layer in &self.hidden[first..] {
            xs = layer.forward(&xs)?.relu()?;
        }
        self.output.forward(&dropout(&xs, self.dropout, pass)?)
    }

    /// The gradients of `loss`, computed from the logits of the training forward that
    /// returned `tape`, for every variable: candle's backward, plus the first layer's own
    /// when that forward ran it outside candle's graph.
    pub fn backward(&self, loss: &Tensor, tape: Tape) -> Result<GradStore> {
        let mut grads = loss.backward()?;
        match tape.0 {
            Kept::Graph => {}
            Kept::FirstLayer(FirstLayer { input, output }) => {
                let dy = grads
                    .remove(output.as_tensor())
                    .ok_or_else(|| not_from_this_forward("mlp"))?;
                self.hidden[0].file_gradients(&input, &dy, &mut grads)?;
            }
            Kept::Trunk(_) => {
                candle_core::bail!("mlp: the backward was given the tape of a ResNet")
            }
        }
        Ok(grads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::config::Arch;
    use crate::testing::{assert_same_gradients, max_rel_err};
    use candle_core::Device;
    use candle_nn::{VarBuilder, VarMap};

    /// The first layer's own backward must give candle's graph's gradients for every
    /// parameter, with one hidden layer and with two.
    #[test]
    fn the_first_layers_own_backward_equals_candles_graph() {
        for hidden in [vec![], vec![7]] {
            let config = ModelConfig {
                arch: Arch::Mlp,
                neurons: 6,
                hidden,
                dropout: 0.0,
                ..ModelConfig::default()
            };
            let vars = VarMap::new();
            let vb = VarBuilder::from_varmap(&vars, candle_core::DType::F32, &Device::Cpu);
            let mlp = Mlp::new(&config, 5, 4, vb).unwrap();
            let xs = Tensor::randn(0f32, 1.0, (3, 3, 5, 5), &Device::Cpu).unwrap();
            let ys = Tensor::new(&[0u32, 3, 1], &Device::Cpu).unwrap();
            let step = |own: bool| {
                let (logits, tape) = mlp.forward_train_with(&xs, &mut Rng::new(1), own).unwrap();
                let loss = candle_nn::loss::cross_entropy(&logits, &ys).unwrap();
                (logits, mlp.backward(&loss, tape).unwrap())
            };
            let (graph_logits, graph) = step(false);
            let (own_logits, own) = step(true);
            assert!(max_rel_err(&own_logits, &graph_logits) < 1e-6);
            let checked = assert_same_gradients(&vars, &own, &graph, 1e-5, "the MLP");
            assert_eq!(checked, 2 * (config.hidden.len() + 2));
        }
    }
}
