//! [`Mlp`]: flatten → dense + ReLU per hidden layer → dropout → dense output, the seed's
//! baseline network.

use std::sync::Mutex;

use candle_core::backprop::GradStore;
use candle_core::{Module, Result, Tensor, Var};
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
    /// The last training forward's first layer, when it ran outside candle's graph, for
    /// [`Mlp::backward_first`].
    first: Mutex<Option<First>>,
}

/// The first layer's training forward, kept for its backward: its input (the flattened
/// images) and its output, the variable the rest of the graph starts from.
///
/// The first layer's weight (`neurons × pixels`: 24 × 12,288 on the seed's MLP) is by far
/// the network's largest gradient. Through candle's graph it arrives as a fresh zero-filled
/// tensor plus an add (how candle's `backward` gathers every gradient), ≈ 8% of the MLP's
/// step on the CPU; here its backward writes it once.
struct First {
    input: Tensor,
    output: Var,
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
            first: Mutex::new(None),
        })
    }

    /// The logits for a batch of images.
    pub fn forward(&self, xs: &Tensor, pass: &mut Pass) -> Result<Tensor> {
        self.forward_with(xs, pass, xs.device().is_cpu())
    }

    /// [`Mlp::forward`], the first layer trained outside candle's graph when `own_first`
    /// ([`First`]).
    fn forward_with(&self, xs: &Tensor, pass: &mut Pass, own_first: bool) -> Result<Tensor> {
        let mut xs = xs.flatten_from(1)?;
        let mut first = self
            .first
            .lock()
            .expect("the first layer's lock is never poisoned");
        *first = None;
        for (i, layer) in self.hidden.iter().enumerate() {
            let ys = if i == 0 && own_first && pass.is_train() {
                let output = Var::from_tensor(&layer.forward_detached(&xs)?)?;
                let ys = output.as_tensor().clone();
                *first = Some(First { input: xs, output });
                ys
            } else {
                layer.forward(&xs)?
            };
            xs = ys.relu()?;
        }
        drop(first);
        self.output.forward(&dropout(&xs, self.dropout, pass)?)
    }

    /// Adds the first layer's gradients to `grads` (the backward of a loss on the last
    /// training forward), when that forward ran it outside candle's graph; otherwise
    /// candle's backward has computed them already.
    pub fn backward_first(&self, grads: &mut GradStore) -> Result<()> {
        let first = self
            .first
            .lock()
            .expect("the first layer's lock is never poisoned")
            .take();
        let Some(First { input, output }) = first else {
            return Ok(());
        };
        match grads.remove(output.as_tensor()) {
            Some(dy) => self.hidden[0].file_gradients(&input, &dy, grads),
            // The loss does not depend on the layer: nothing to add.
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::config::Arch;
    use crate::rng::Rng;
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
                let mut rng = Rng::new(1);
                let logits = mlp
                    .forward_with(&xs, &mut Pass::Train(&mut rng), own)
                    .unwrap();
                let loss = candle_nn::loss::cross_entropy(&logits, &ys).unwrap();
                let mut grads = loss.backward().unwrap();
                mlp.backward_first(&mut grads).unwrap();
                (logits, grads)
            };
            let (graph_logits, graph) = step(false);
            let (own_logits, own) = step(true);
            assert!(max_rel_err(&own_logits, &graph_logits) < 1e-6);
            let checked = assert_same_gradients(&vars, &own, &graph, 1e-5, "the MLP");
            assert_eq!(checked, 2 * (config.hidden.len() + 2));
        }
    }
}
