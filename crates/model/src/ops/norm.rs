//! [`BatchNorm2d`]: batch normalisation over the channels of `n × c × h × w` maps. On the CPU
//! in training, one fused candle op computes the batch statistics and the normalised output
//! in two passes, and its backward the three gradients in two more; candle's own layer runs
//! about ten whole-tensor operations each way. Elsewhere, and in evaluation, it is candle's
//! `BatchNorm` (the same parameters, so checkpoints do not depend on the path).

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp1, CustomOp3, Layout, ModuleT, Result, Shape, Tensor, Var};
use candle_nn::VarBuilder;
use rayon::prelude::*;

use crate::ops::storage::{f32_slice, par_filled};

/// A batch-norm layer with learned scale and shift and running statistics.
pub struct BatchNorm2d {
    inner: candle_nn::BatchNorm,
    eps: f64,
}

/// Builds the layer; parameter names match candle-nn's `batch_norm`.
pub fn batch_norm2d(channels: usize, eps: f64, vb: VarBuilder) -> Result<BatchNorm2d> {
    Ok(BatchNorm2d {
        inner: candle_nn::batch_norm(channels, eps, vb)?,
        eps,
    })
}

/// `x · scale[c] + shift[c]` over each channel plane (then a ReLU when `relu`), the one pass
/// that both the training and the evaluation forward make.
fn affine_per_channel(
    x: &[f32],
    c: usize,
    plane: usize,
    scale: &[f32],
    shift: &[f32],
    relu: bool,
) -> Vec<f32> {
    let floor = if relu { 0.0 } else { f32::NEG_INFINITY };
    // SAFETY: each part (one channel plane) is written whole from the plane of `x` beside it.
    unsafe {
        par_filled(x.len(), plane, |row, out| {
            let ch = row % c;
            for (o, &v) in out.iter_mut().zip(&x[row * plane..(row + 1) * plane]) {
                o.write((v * scale[ch] + shift[ch]).max(floor));
            }
        })
    }
}

/// Per-channel mean and biased variance of `x` (`n × c × plane`), in f64 sums.
fn channel_stats(x: &[f32], n: usize, c: usize, plane: usize) -> Vec<(f32, f32)> {
    (0..c)
        .into_par_iter()
        .map(|ch| {
            let (mut sum, mut sq) = (0f64, 0f64);
            for i in 0..n {
                for &v in &x[(i * c + ch) * plane..(i * c + ch + 1) * plane] {
                    sum += v as f64;
                    sq += v as f64 * v as f64;
                }
            }
            let count = (n * plane) as f64;
            let mean = sum / count;
            (mean as f32, (sq / count - mean * mean).max(0.0) as f32)
        })
        .collect()
}

/// Training forward: `y = γ · (x − mean) / √(var + ε) + β` with the batch's statistics (then
/// a ReLU when `relu`), which it leaves in `stats` for the running averages.
struct Train {
    eps: f32,
    relu: bool,
    stats: Arc<Mutex<Vec<(f32, f32)>>>,
}

impl CustomOp3 for Train {
    fn name(&self) -> &'static str {
        "sweep-batch-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, c, h, w) = l1.shape().dims4()?;
        let plane = h * w;
        let x = f32_slice(s1, l1, "batch norm", "the input")?;
        let (gamma, beta) = (
            f32_slice(s2, l2, "batch norm", "the scale")?,
            f32_slice(s3, l3, "batch norm", "the shift")?,
        );
        let stats = channel_stats(x, n, c, plane);
        let scale: Vec<f32> = (0..c)
            .map(|ch| gamma[ch] / (stats[ch].1 + self.eps).sqrt())
            .collect();
        let shift: Vec<f32> = (0..c)
            .map(|ch| beta[ch] - stats[ch].0 * scale[ch])
            .collect();
        let y = affine_per_channel(x, c, plane, &scale, &shift, self.relu);
        *self
            .stats
            .lock()
            .expect("the statistics lock is never poisoned") = stats;
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, c, h, w) = x.dims4()?;
        let dy = if self.relu {
            crate::ops::activation::relu_mask(dy, y)?
        } else {
            dy.contiguous()?
        };
        // The batch statistics of this forward, so the backward need not measure them again.
        let stats = self
            .stats
            .lock()
            .expect("the statistics lock is never poisoned")
            .clone();
        let packed = x.apply_op3_no_bwd(
            gamma,
            &dy,
            &Backward {
                eps: self.eps,
                stats,
            },
        )?;
        let count = n * c * h * w;
        let dx = packed.narrow(0, 0, count)?.reshape((n, c, h, w))?;
        let dgamma = packed.narrow(0, count, c)?;
        let dbeta = packed.narrow(0, count + c, c)?;
        Ok((Some(dx), Some(dgamma), Some(dbeta)))
    }
}

/// The three gradients of [`Train`], packed as `[dx, dγ, dβ]`:
/// `dx = γ / √(var + ε) · (dy − mean(dy) − x̂ · mean(dy · x̂))`.
struct Backward {
    eps: f32,
    /// Per channel: the forward's batch mean and biased variance.
    stats: Vec<(f32, f32)>,
}

impl CustomOp3 for Backward {
    fn name(&self) -> &'static str {
        "sweep-batch-norm-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, c, h, w) = l1.shape().dims4()?;
        let plane = h * w;
        let x = f32_slice(s1, l1, "batch norm", "the input")?;
        let gamma = f32_slice(s2, l2, "batch norm", "the scale")?;
        let dy = f32_slice(s3, l3, "batch norm", "the output gradient")?;
        let stats = &self.stats;
        let count = (n * plane) as f64;
        // Per channel: Σ dy and Σ dy · x̂.
        let sums: Vec<(f32, f32)> = (0..c)
            .into_par_iter()
            .map(|ch| {
                let (mean, var) = stats[ch];
                let inv = 1.0 / (var + self.eps).sqrt();
                let (mut s, mut sx) = (0f64, 0f64);
                for i in 0..n {
                    let range = (i * c + ch) * plane..(i * c + ch + 1) * plane;
                    for (&g, &v) in dy[range.clone()].iter().zip(&x[range]) {
                        s += g as f64;
                        sx += g as f64 * ((v - mean) * inv) as f64;
                    }
                }
                (s as f32, sx as f32)
            })
            .collect();
        let mut out = vec![0f32; x.len() + 2 * c];
        let (dx, rest) = out.split_at_mut(x.len());
        dx.par_chunks_mut(plane).enumerate().for_each(|(row, o)| {
            let ch = row % c;
            let (mean, var) = stats[ch];
            let inv = 1.0 / (var + self.eps).sqrt();
            let (s, sx) = sums[ch];
            let (mean_dy, mean_dyx) = ((s as f64 / count) as f32, (sx as f64 / count) as f32);
            let k = gamma[ch] * inv;
            let range = row * plane..(row + 1) * plane;
            for ((o, &g), &v) in o.iter_mut().zip(&dy[range.clone()]).zip(&x[range]) {
                *o = k * (g - mean_dy - (v - mean) * inv * mean_dyx);
            }
        });
        for ch in 0..c {
            rest[ch] = sums[ch].1;
            rest[c + ch] = sums[ch].0;
        }
        Ok((CpuStorage::F32(out), Shape::from(x.len() + 2 * c)))
    }
}

/// Evaluation: the per-channel affine map of the running statistics, one pass.
struct Eval {
    scale: Vec<f32>,
    shift: Vec<f32>,
    relu: bool,
}

impl CustomOp1 for Eval {
    fn name(&self) -> &'static str {
        "sweep-batch-norm-eval"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout) -> Result<(CpuStorage, Shape)> {
        let (_, c, h, w) = l1.shape().dims4()?;
        let plane = h * w;
        let x = f32_slice(s1, l1, "batch norm", "the input")?;
        let y = affine_per_channel(x, c, plane, &self.scale, &self.shift, self.relu);
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }
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
    pub fn eval_epilogue(&self, relu: bool) -> Result<Option<crate::ops::conv::Epilogue>> {
        let Some((gamma, beta)) = self.inner.weight_and_bias() else {
            return Ok(None);
        };
        let (scale, shift) = self.eval_affine(gamma, beta)?;
        Ok(Some(crate::ops::conv::Epilogue { scale, shift, relu }))
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

    fn forward_fused(&self, x: &Tensor, train: bool, relu: bool) -> Result<Tensor> {
        let unfused = || {
            let y = self.inner.forward_t(x, train)?;
            if relu {
                y.relu()
            } else {
                Ok(y)
            }
        };
        let Some((gamma, beta)) = self.inner.weight_and_bias() else {
            return unfused();
        };
        if !x.device().is_cpu() || x.dtype() != candle_core::DType::F32 || x.rank() != 4 {
            return unfused();
        }
        let eps = self.eps as f32;
        if !train {
            let (scale, shift) = self.eval_affine(gamma, beta)?;
            return x
                .contiguous()?
                .apply_op1_no_bwd(&Eval { scale, shift, relu });
        }
        let stats = Arc::new(Mutex::new(Vec::new()));
        let y = x.contiguous()?.apply_op3(
            gamma,
            beta,
            Train {
                eps,
                relu,
                stats: stats.clone(),
            },
        )?;
        // The running averages, as candle's layer keeps them (unbiased variance).
        let (n, _, h, w) = x.dims4()?;
        let count = (n * h * w) as f32;
        let momentum = self.inner.momentum() as f32;
        let stats = stats.lock().expect("the statistics lock is never poisoned");
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
        running_mean.set(&Tensor::new(new_mean, x.device())?)?;
        running_var.set(&Tensor::new(new_var, x.device())?)?;
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::max_rel_err;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    #[test]
    fn matches_candles_batch_norm_in_both_passes_with_gradients_and_running_stats() {
        let dev = Device::Cpu;
        for &(n, c, hw) in &[(4, 3, 5), (1, 6, 4), (7, 5, 1), (3, 9, 8)] {
            let case = format!("{n}×{c}×{hw}×{hw}");
            let (ours_vars, theirs_vars) = (VarMap::new(), VarMap::new());
            let ours = batch_norm2d(
                c,
                1e-5,
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
            let g_ours = (&y_ours * &weights)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let g_theirs = (&y_theirs * &weights)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
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
            let g_ours = (&r_ours * &weights)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let g_theirs = (&r_theirs * &weights)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
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
}
