//! [`Dense`]: a fully connected layer over [`ops::dense`](crate::ops::dense)'s product. Its
//! variables have candle-nn's `linear` names and shapes (and its initialisation with
//! `WeightInit::Kaiming`), so checkpoints are unchanged.

use candle_core::backprop::GradStore;
use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use crate::nn::config::WeightInit;
use crate::nn::init::hints;
use crate::ops::dense::{product, weight_grad};

/// `y = x · wᵀ + b` for `x` of shape `batch × inputs` and `w` of shape `outputs × inputs`.
pub struct Dense {
    weight: Tensor,
    bias: Tensor,
}

/// The layer's weight (`outputs × inputs`) and bias, created through `vb` and drawn as
/// `init` says.
pub fn dense(inputs: usize, outputs: usize, init: WeightInit, vb: VarBuilder) -> Result<Dense> {
    let (weight_init, bias_init) = hints(init, outputs, inputs, 1);
    Ok(Dense {
        weight: vb.get_with_hints((outputs, inputs), "weight", weight_init)?,
        bias: vb.get_with_hints(outputs, "bias", bias_init)?,
    })
}

impl Dense {
    /// `x · wᵀ + b` outside candle's graph: the values only, for a caller that files the
    /// layer's gradients itself ([`Dense::gradients`]).
    pub(crate) fn forward_detached(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.forward(x)?.detach())
    }

    /// Files the weight's and the bias's gradients in `grads`, from the layer's input `x`
    /// (which trains nothing) and its output's gradient `dy`.
    pub(crate) fn file_gradients(
        &self,
        x: &Tensor,
        dy: &Tensor,
        grads: &mut GradStore,
    ) -> Result<()> {
        grads.insert(&self.weight, weight_grad(x, dy)?);
        grads.insert(&self.bias, dy.sum(0)?);
        Ok(())
    }
}

impl Module for Dense {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        product(x, &self.weight)?.broadcast_add(&self.bias)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{max_rel_err, weighted_grads};
    use candle_core::{DType, Device, Var};
    use candle_nn::VarMap;

    /// Output and the gradients of input, weight and bias against candle-nn's `Linear`.
    fn check(batch: usize, inputs: usize, outputs: usize) {
        let dev = Device::Cpu;
        let vars = VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, DType::F32, &dev);
        let ours = dense(inputs, outputs, WeightInit::Kaiming, vb.pp("d")).unwrap();
        let theirs = candle_nn::Linear::new(ours.weight.clone(), Some(ours.bias.clone()));
        let x = Var::randn(0f32, 1.0, (batch, inputs), &dev).unwrap();
        let (a, b) = (
            ours.forward(x.as_tensor()).unwrap(),
            theirs.forward(x.as_tensor()).unwrap(),
        );
        let case = format!("{batch}×{inputs} → {outputs}");
        assert!(max_rel_err(&a, &b) <= 1e-5, "output {case}");
        let weights = Tensor::randn(0f32, 1.0, a.dims(), &dev).unwrap();
        let grads = |y: &Tensor| weighted_grads(y, &weights);
        let (ga, gb) = (grads(&a), grads(&b));
        for (name, t) in [
            ("input", x.as_tensor()),
            ("weight", &ours.weight),
            ("bias", &ours.bias),
        ] {
            let err = max_rel_err(ga.get(t).unwrap(), gb.get(t).unwrap());
            assert!(err <= 1e-4, "{name} gradient {case}: {err}");
        }
    }

    #[test]
    fn matches_candle_nn_linear() {
        for &(batch, inputs, outputs) in &[
            (1, 1, 1),
            (1, 7, 3),
            (5, 13, 1),
            (64, 300, 24),
            (17, 24, 100),
            (3, 2049, 5),
        ] {
            check(batch, inputs, outputs);
        }
    }

    #[test]
    fn the_images_get_no_gradient() {
        let dev = Device::Cpu;
        let vars = VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, DType::F32, &dev);
        let layer = dense(12, 4, WeightInit::Kaiming, vb).unwrap();
        let x = Tensor::randn(0f32, 1.0, (3, 12), &dev).unwrap();
        let grads = layer
            .forward(&x)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert!(grads.get(&x).is_none());
        assert!(grads.get(&layer.weight).is_some());
        assert!(grads.get(&layer.bias).is_some());
    }
}
