//! The batch-norm ops under [`BatchNorm2d`](crate::nn::batch_norm::BatchNorm2d), over the
//! channels of `n × c × h × w` maps. On the CPU in training, one fused candle op computes the
//! batch statistics and the normalised output in two passes, and its backward the three
//! gradients in two more; candle's own layer runs about ten whole-tensor operations each way.
//! In evaluation the layer is one per-channel affine pass.

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp1, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::ops::storage::{f32_slice, par_filled};

/// Training forward of a CPU f32 `n × c × h × w` tensor: `γ · (x − mean) / √(var + ε) + β`
/// with the batch's statistics (then a ReLU when `relu`), and those statistics (mean, biased
/// variance) per channel for the running averages.
pub(crate) fn train_forward(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f32,
    relu: bool,
) -> Result<(Tensor, Vec<(f32, f32)>)> {
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
    let stats = stats
        .lock()
        .expect("the statistics lock is never poisoned")
        .clone();
    Ok((y, stats))
}

/// Evaluation of a CPU f32 `n × c × h × w` tensor: `x · scale[c] + shift[c]` (then a ReLU
/// when `relu`), in one pass.
pub(crate) fn eval_forward(
    x: &Tensor,
    scale: Vec<f32>,
    shift: Vec<f32>,
    relu: bool,
) -> Result<Tensor> {
    x.contiguous()?
        .apply_op1_no_bwd(&Eval { scale, shift, relu })
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
