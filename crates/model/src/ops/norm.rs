//! The batch-norm ops under [`BatchNorm2d`](crate::nn::batch_norm::BatchNorm2d), over the
//! channels of `n × c × h × w` maps, as candle custom ops over [`sweep_kernels::norm`]. On the
//! CPU in training, one fused op computes the batch statistics and the normalised output in
//! two passes, and its backward the three gradients in two more; candle's own layer runs
//! about ten whole-tensor operations each way. In evaluation the layer is one per-channel
//! affine pass.

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp1, CustomOp3, Layout, Result, Shape, Tensor};
use sweep_kernels::norm::{affine_per_channel, gradient_values, normalize, Saved};

use crate::ops::storage::f32_slice;

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
    train_forward_with(x, gamma, beta, eps, relu, false)
}

/// [`train_forward`] then a 2×2 max pool with stride 2 (as [`max_pool2x2`]), in one op: the
/// normalised maps are never written, only their pooled maxima, and the backward routes each
/// window's gradient to its maximum while it computes the normalisation's gradients, where
/// the separate ops write, zero and add three more maps of the input's size (a ResNet stem's
/// are the step's largest). `x` must be at least 2×2.
///
/// [`max_pool2x2`]: crate::ops::pool::max_pool2x2
pub(crate) fn train_forward_pooled(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f32,
    relu: bool,
) -> Result<(Tensor, Vec<(f32, f32)>)> {
    let (_, _, h, w) = x.dims4()?;
    if h < 2 || w < 2 {
        candle_core::bail!("max-pool: a 2×2 window does not fit in {h}×{w}")
    }
    train_forward_with(x, gamma, beta, eps, relu, true)
}

fn train_forward_with(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f32,
    relu: bool,
    pool: bool,
) -> Result<(Tensor, Vec<(f32, f32)>)> {
    let saved = Arc::new(Mutex::new(Saved::default()));
    let y = x.contiguous()?.apply_op3(
        gamma,
        beta,
        Train {
            eps,
            relu,
            pool,
            saved: saved.clone(),
        },
    )?;
    let stats = saved
        .lock()
        .expect("the statistics lock is never poisoned")
        .stats()
        .to_vec();
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

/// Training forward: `y = γ · (x − mean) / √(var + ε) + β` with the batch's statistics (then
/// a ReLU when `relu`, then a 2×2 max pool when `pool`), which it leaves in `saved` for the
/// running averages.
struct Train {
    eps: f32,
    relu: bool,
    pool: bool,
    saved: Arc<Mutex<Saved>>,
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
        let x = f32_slice(s1, l1, "batch norm", "the input")?;
        let (gamma, beta) = (
            f32_slice(s2, l2, "batch norm", "the scale")?,
            f32_slice(s3, l3, "batch norm", "the shift")?,
        );
        let (y, dims, saved) = normalize(
            x,
            l1.shape().dims4()?,
            (gamma, beta),
            self.eps,
            self.relu,
            self.pool,
        );
        *self
            .saved
            .lock()
            .expect("the statistics lock is never poisoned") = saved;
        Ok((CpuStorage::F32(y), Shape::from(dims)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, c, h, w) = x.dims4()?;
        // The batch statistics of this forward, so the backward need not measure them again.
        let saved = self
            .saved
            .lock()
            .expect("the statistics lock is never poisoned")
            .clone();
        let backward = Backward {
            saved,
            eps: self.eps,
            relu: self.relu,
            pool: self.pool,
        };
        let packed = x.apply_op3_no_bwd(gamma, &dy.contiguous()?, &backward)?;
        let count = n * c * h * w;
        let dx = packed.narrow(0, 0, count)?.reshape((n, c, h, w))?;
        let dgamma = packed.narrow(0, count, c)?;
        let dbeta = packed.narrow(0, count + c, c)?;
        Ok((Some(dx), Some(dgamma), Some(dbeta)))
    }
}

/// The three gradients of [`Train`] ([`gradient_values`]), packed as `[dx, dγ, dβ]` in one
/// tensor, from the forward's input, `γ`, the output gradient and what the forward saved.
struct Backward {
    saved: Saved,
    eps: f32,
    relu: bool,
    pool: bool,
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
        let dims = l1.shape().dims4()?;
        let x = f32_slice(s1, l1, "batch norm", "the input")?;
        let gamma = f32_slice(s2, l2, "batch norm", "the scale")?;
        let dy = f32_slice(s3, l3, "batch norm", "the output gradient")?;
        let relu_pool = (self.relu, self.pool);
        let out = gradient_values(x, dims, gamma, dy, &self.saved, self.eps, relu_pool);
        Ok((CpuStorage::F32(out), Shape::from(x.len() + 2 * dims.1)))
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
