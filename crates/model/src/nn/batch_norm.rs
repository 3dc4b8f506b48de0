//! [`BatchNorm2d`]: batch normalisation over the channels of `n × c × h × w` maps, with the
//! fused CPU ops of [`ops::norm`](crate::ops::norm) (the ReLU after it fused too). Elsewhere
//! it is candle's `BatchNorm`, with the same parameters, so checkpoints do not depend on the
//! path.

use candle_core::{ModuleT, Result, Tensor, Var};
use candle_nn::VarBuilder;

use sweep_kernels::Epilogue;

use crate::nn::config::{BN_EPS, BN_MOMENTUM};
use crate::ops::norm::{eval_forward, train_forward, train_forward_pooled};
use crate::ops::pool::max_pool2x2;

/// How a [`BatchNorm2d`] is built.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchNormConfig {
    /// Added to the variance before its square root.
    pub eps: f64,
    /// The fraction of each batch's statistics the running averages take (PyTorch's sense).
    pub momentum: f64,
}

impl Default for BatchNormConfig {
    fn default() -> Self {
        Self {
            eps: BN_EPS,
            momentum: BN_MOMENTUM,
        }
    }
}

/// A batch-norm layer with learned scale and shift and running statistics.
pub struct BatchNorm2d {
    inner: candle_nn::BatchNorm,
    eps: f64,
}

/// Builds the layer; parameter names match candle-nn's `batch_norm`.
pub fn batch_norm(channels: usize, config: BatchNormConfig, vb: VarBuilder) -> Result<BatchNorm2d> {
    Ok(BatchNorm2d {
        inner: candle_nn::batch_norm(
            channels,
            candle_nn::BatchNormConfig {
                eps: config.eps,
                momentum: config.momentum,
                ..candle_nn::BatchNormConfig::default()
            },
            vb,
        )?,
        eps: config.eps,
    })
}

impl ModuleT for BatchNorm2d {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_fused(x, train, false)
    }
}

impl BatchNorm2d {
    /// The layer in evaluation as a per-channel map `x · scale + shift` (from the running
    /// statistics), for a convolution to apply as it writes its output; `None` without
    /// learned scale and shift.
    pub fn eval_epilogue(&self, relu: bool) -> Result<Option<Epilogue>> {
        let Some((gamma, beta)) = self.inner.weight_and_bias() else {
            return Ok(None);
        };
        let (scale, shift) = self.eval_affine(gamma, beta)?;
        Ok(Some(Epilogue { scale, shift, relu }))
    }

    fn eval_affine(&self, gamma: &Tensor, beta: &Tensor) -> Result<(Vec<f32>, Vec<f32>)> {
        let eps = self.eps as f32;
        let mean = self.inner.running_mean().to_vec1::<f32>()?;
        let var = self.inner.running_var().to_vec1::<f32>()?;
        let (gamma, beta) = (gamma.to_vec1::<f32>()?, beta.to_vec1::<f32>()?);
        let scale: Vec<f32> = gamma
            .iter()
            .zip(&var)
            .map(|(g, v)| g / (v + eps).sqrt())
            .collect();
        let shift = beta
            .iter()
            .zip(&mean)
            .zip(&scale)
            .map(|((b, m), s)| b - m * s)
            .collect();
        Ok((scale, shift))
    }

    /// `relu(batch_norm(x))`, the ReLU fused into the normalisation on the CPU.
    pub fn forward_relu(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_fused(x, train, true)
    }

    /// `max_pool2x2(relu(batch_norm(x)))` for maps of at least 2×2 (a ResNet's stem): in
    /// training on the CPU one op, which never writes the normalised maps.
    pub fn forward_relu_pool(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_fused_pooled(x, train, true, true)
    }

    fn forward_fused(&self, x: &Tensor, train: bool, relu: bool) -> Result<Tensor> {
        self.forward_fused_pooled(x, train, relu, false)
    }

    fn forward_fused_pooled(
        &self,
        x: &Tensor,
        train: bool,
        relu: bool,
        pool: bool,
    ) -> Result<Tensor> {
        let pooled = |y: Tensor| if pool { max_pool2x2(&y) } else { Ok(y) };
        let unfused = || {
            let y = self.inner.forward_t(x, train)?;
            pooled(if relu { y.relu()? } else { y })
        };
        let Some((gamma, beta, eps)) = self.fused_parts(x) else {
            return unfused();
        };
        if !train {
            let (scale, shift) = self.eval_affine(gamma, beta)?;
            return pooled(eval_forward(x, scale, shift, relu)?);
        }
        let (y, stats) = if pool {
            train_forward_pooled(x, gamma, beta, eps, relu)?
        } else {
            train_forward(x, gamma, beta, eps, relu)?
        };
        let (n, _, h, w) = x.dims4()?;
        self.update_running(&stats, n * h * w)?;
        Ok(y)
    }

    /// `γ`, `β` and ε for the layer's fused CPU op, where the layer has them and the input
    /// is a CPU f32 map.
    fn fused_parts(&self, x: &Tensor) -> Option<(&Tensor, &Tensor, f32)> {
        (x.device().is_cpu() && x.dtype() == candle_core::DType::F32 && x.rank() == 4)
            .then(|| self.affine())
            .flatten()
    }

    /// `γ`, `β` and ε, where the layer learns them.
    pub(crate) fn affine(&self) -> Option<(&Tensor, &Tensor, f32)> {
        let (gamma, beta) = self.inner.weight_and_bias()?;
        Some((gamma, beta, self.eps as f32))
    }

    /// Moves the running averages towards a training batch's statistics (per channel: mean,
    /// biased variance over `count` values), as candle's layer keeps them (unbiased variance).
    pub fn update_running(&self, stats: &[(f32, f32)], count: usize) -> Result<()> {
        let count = count as f32;
        let momentum = self.inner.momentum() as f32;
        let running_mean = Var::from_tensor(self.inner.running_mean())?;
        let running_var = Var::from_tensor(self.inner.running_var())?;
        let old_mean = running_mean.to_vec1::<f32>()?;
        let old_var = running_var.to_vec1::<f32>()?;
        let unbiased = if count > 1.0 {
            count / (count - 1.0)
        } else {
            1.0
        };
        let new_mean: Vec<f32> = old_mean
            .iter()
            .zip(stats.iter())
            .map(|(r, (m, _))| (1.0 - momentum) * r + momentum * m)
            .collect();
        let new_var: Vec<f32> = old_var
            .iter()
            .zip(stats.iter())
            .map(|(r, (_, v))| (1.0 - momentum) * r + momentum * v * unbiased)
            .collect();
        let device = running_mean.device().clone();
        running_mean.set(&Tensor::new(new_mean, &device)?)?;
        running_var.set(&Tensor::new(new_var, &device)?)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{max_rel_err, weighted_grads};
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    #[test]
    fn matches_candles_batch_norm_in_both_passes_with_gradients_and_running_stats() {
        let dev = Device::Cpu;
        for &(n, c, hw) in &[(4, 3, 5), (1, 6, 4), (7, 5, 1), (3, 9, 8)] {
            let case = format!("{n}×{c}×{hw}×{hw}");
            let (ours_vars, theirs_vars) = (VarMap::new(), VarMap::new());
            let ours = batch_norm(
                c,
                BatchNormConfig::default(),
                VarBuilder::from_varmap(&ours_vars, DType::F32, &dev),
            )
            .unwrap();
            let theirs = candle_nn::batch_norm(
                c,
                1e-5,
                VarBuilder::from_varmap(&theirs_vars, DType::F32, &dev),
            )
            .unwrap();
            // Non-trivial scale and shift, the same in both.
            for vars in [&ours_vars, &theirs_vars] {
                let data = vars.data().lock().unwrap();
                let gamma: Vec<f32> = (0..c).map(|i| 0.5 + i as f32 * 0.3).collect();
                let beta: Vec<f32> = (0..c).map(|i| i as f32 * 0.2 - 0.4).collect();
                data["weight"]
                    .set(&Tensor::new(gamma, &dev).unwrap())
                    .unwrap();
                data["bias"].set(&Tensor::new(beta, &dev).unwrap()).unwrap();
            }
            let x = Var::randn(1f32, 2.0, (n, c, hw, hw), &dev).unwrap();
            let weights = Tensor::randn(0f32, 1.0, (n, c, hw, hw), &dev).unwrap();
            let y_ours = ours.forward_t(x.as_tensor(), true).unwrap();
            let y_theirs = theirs.forward_t(x.as_tensor(), true).unwrap();
            assert!(max_rel_err(&y_ours, &y_theirs) <= 1e-4, "forward {case}");
            let g_ours = weighted_grads(&y_ours, &weights);
            let g_theirs = weighted_grads(&y_theirs, &weights);
            let ours_data = ours_vars.data().lock().unwrap();
            let theirs_data = theirs_vars.data().lock().unwrap();
            for name in ["weight", "bias"] {
                let (a, b) = (
                    g_ours.get(ours_data[name].as_tensor()).unwrap(),
                    g_theirs.get(theirs_data[name].as_tensor()).unwrap(),
                );
                assert!(max_rel_err(a, b) <= 1e-4, "{name} gradient {case}");
            }
            let (a, b) = (
                g_ours.get(x.as_tensor()).unwrap(),
                g_theirs.get(x.as_tensor()).unwrap(),
            );
            assert!(
                max_rel_err(a, b) <= 1e-3,
                "input gradient {case}: {}",
                max_rel_err(a, b)
            );
            for name in ["running_mean", "running_var"] {
                assert!(
                    max_rel_err(ours_data[name].as_tensor(), theirs_data[name].as_tensor()) <= 1e-5,
                    "{name} {case}"
                );
            }
            drop((ours_data, theirs_data));
            let e_ours = ours.forward_t(x.as_tensor(), false).unwrap();
            let e_theirs = theirs.forward_t(x.as_tensor(), false).unwrap();
            assert!(max_rel_err(&e_ours, &e_theirs) <= 1e-4, "evaluation {case}");
            let r_ours = ours.forward_relu(x.as_tensor(), false).unwrap();
            let r_theirs = theirs
                .forward_t(x.as_tensor(), false)
                .unwrap()
                .relu()
                .unwrap();
            assert!(
                max_rel_err(&r_ours, &r_theirs) <= 1e-4,
                "evaluation with relu {case}"
            );
            // Training with the ReLU fused: output and input gradient.
            let r_ours = ours.forward_relu(x.as_tensor(), true).unwrap();
            let r_theirs = theirs
                .forward_t(x.as_tensor(), true)
                .unwrap()
                .relu()
                .unwrap();
            assert!(
                max_rel_err(&r_ours, &r_theirs) <= 1e-4,
                "training with relu {case}"
            );
            let g_ours = weighted_grads(&r_ours, &weights);
            let g_theirs = weighted_grads(&r_theirs, &weights);
            let (a, b) = (
                g_ours.get(x.as_tensor()).unwrap(),
                g_theirs.get(x.as_tensor()).unwrap(),
            );
            assert!(
                max_rel_err(a, b) <= 1e-3,
                "input gradient with relu {case}: {}",
                max_rel_err(a, b)
            );
        }
    }

    #[test]
    fn the_pooled_normalisation_equals_normalisation_relu_and_pool_with_gradients() {
        let dev = Device::Cpu;
        // Odd sides (the last row or column dropped), a 2×2 map, and ties: a channel whose
        // values are all equal, and one the ReLU zeroes.
        for &(n, c, h, w) in &[(3, 4, 6, 6), (2, 3, 5, 7), (4, 2, 2, 2), (1, 5, 9, 8)] {
            let case = format!("{n}×{c}×{h}×{w}");
            let (fused_vars, plain_vars) = (VarMap::new(), VarMap::new());
            let make = |vars: &VarMap| {
                let bn = batch_norm(
                    c,
                    BatchNormConfig::default(),
                    VarBuilder::from_varmap(vars, DType::F32, &dev),
                )
                .unwrap();
                let data = vars.data().lock().unwrap();
                let gamma: Vec<f32> = (0..c).map(|i| 0.5 + i as f32 * 0.3).collect();
                let beta: Vec<f32> = (0..c).map(|i| i as f32 * 0.2 - 0.4).collect();
                data["weight"]
                    .set(&Tensor::new(gamma, &dev).unwrap())
                    .unwrap();
                data["bias"].set(&Tensor::new(beta, &dev).unwrap()).unwrap();
                bn
            };
            let (fused, plain) = (make(&fused_vars), make(&plain_vars));
            let mut values = Tensor::randn(1f32, 2.0, (n, c, h, w), &dev)
                .unwrap()
                .to_dtype(DType::F32)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            // Channel 0 of image 0 constant (every window a tie); channel 1 very negative in
            // image 0 (below the ReLU after normalisation).
            values[..h * w].fill(0.25);
            if c > 1 {
                values[h * w..2 * h * w].iter_mut().for_each(|v| *v -= 40.0);
            }
            let x = Var::from_vec(values, (n, c, h, w), &dev).unwrap();
            let y_fused = fused.forward_relu_pool(x.as_tensor(), true).unwrap();
            let y_plain = max_pool2x2(&plain.forward_relu(x.as_tensor(), true).unwrap()).unwrap();
            assert_eq!(y_fused.dims(), y_plain.dims(), "{case}");
            assert!(max_rel_err(&y_fused, &y_plain) <= 1e-6, "forward {case}");
            let weights = Tensor::randn(0f32, 1.0, y_plain.dims(), &dev).unwrap();
            let grads = |y: &Tensor| weighted_grads(y, &weights);
            let (g_fused, g_plain) = (grads(&y_fused), grads(&y_plain));
            let (a, b) = (
                g_fused.get(x.as_tensor()).unwrap(),
                g_plain.get(x.as_tensor()).unwrap(),
            );
            assert!(
                max_rel_err(a, b) <= 1e-5,
                "input gradient {case}: {}",
                max_rel_err(a, b)
            );
            let fused_data = fused_vars.data().lock().unwrap();
            let plain_data = plain_vars.data().lock().unwrap();
            for name in ["weight", "bias"] {
                let (a, b) = (
                    g_fused.get(fused_data[name].as_tensor()).unwrap(),
                    g_plain.get(plain_data[name].as_tensor()).unwrap(),
                );
                assert!(max_rel_err(a, b) <= 1e-5, "{name} gradient {case}");
            }
            for name in ["running_mean", "running_var"] {
                assert_eq!(
                    fused_data[name].as_tensor().to_vec1::<f32>().unwrap(),
                    plain_data[name].as_tensor().to_vec1::<f32>().unwrap(),
                    "{name} {case}"
                );
            }
            drop((fused_data, plain_data));
            // Evaluation: the same pool over the running statistics.
            let e_fused = fused.forward_relu_pool(x.as_tensor(), false).unwrap();
            let e_plain = max_pool2x2(&plain.forward_relu(x.as_tensor(), false).unwrap()).unwrap();
            assert!(max_rel_err(&e_fused, &e_plain) <= 1e-6, "evaluation {case}");
        }
    }
}
