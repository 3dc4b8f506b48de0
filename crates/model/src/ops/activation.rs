//! Fused ReLU ops for the CPU over [`sweep_kernels::activation`]: [`add_relu`] (a residual
//! block's `relu(a + b)` in one pass each way) and [`relu_mask`] (a gradient through a ReLU,
//! from the ReLU's output). Other devices use candle's ops.

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use sweep_kernels::activation as kernel;

use crate::ops::storage::f32_slice;

/// `relu(a + b)`.
struct AddRelu;

impl CustomOp2 for AddRelu {
    fn name(&self) -> &'static str {
        "sweep-add-relu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let a = f32_slice(s1, l1, "add-relu", "the input")?;
        let b = f32_slice(s2, l2, "add-relu", "the skip")?;
        let y = kernel::add_relu(a, b);
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _a: &Tensor,
        _b: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = relu_mask(dy, y)?;
        Ok((Some(g.clone()), Some(g)))
    }
}

/// `dy` where the ReLU's output `y` is positive, 0 elsewhere.
struct ReluMask;

impl CustomOp2 for ReluMask {
    fn name(&self) -> &'static str {
        "sweep-relu-mask"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let dy = f32_slice(s1, l1, "relu-mask", "the gradient")?;
        let y = f32_slice(s2, l2, "relu-mask", "the output")?;
        let g = kernel::relu_mask(dy, y);
        Ok((CpuStorage::F32(g), l1.shape().clone()))
    }
}

fn fusable(t: &Tensor) -> bool {
    t.device().is_cpu() && t.dtype() == candle_core::DType::F32
}

/// `relu(a + b)` for two tensors of one shape.
pub fn add_relu(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if !fusable(a) || a.shape() != b.shape() {
        return (a + b)?.relu();
    }
    a.contiguous()?.apply_op2(&b.contiguous()?, AddRelu)
}

/// The gradient through a ReLU whose output was `y`: `dy · [y > 0]` (no backward of its own).
pub fn relu_mask(dy: &Tensor, y: &Tensor) -> Result<Tensor> {
    if !fusable(dy) {
        return dy * y.gt(0f32)?.to_dtype(dy.dtype())?;
    }
    dy.contiguous()?
        .apply_op2_no_bwd(&y.contiguous()?, &ReluMask)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::weighted_grads;
    use candle_core::{Device, Var};

    #[test]
    fn add_relu_matches_candle_with_gradients() {
        let dev = Device::Cpu;
        let a = Var::randn(0f32, 1.0, (3, 5, 7, 9), &dev).unwrap();
        let b = Var::randn(0f32, 1.0, (3, 5, 7, 9), &dev).unwrap();
        let w = Tensor::randn(0f32, 1.0, (3, 5, 7, 9), &dev).unwrap();
        let ours = add_relu(a.as_tensor(), b.as_tensor()).unwrap();
        let theirs = (a.as_tensor() + b.as_tensor()).unwrap().relu().unwrap();
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(flat(&ours), flat(&theirs));
        let g1 = weighted_grads(&ours, &w);
        let g2 = weighted_grads(&theirs, &w);
        for v in [&a, &b] {
            assert_eq!(
                flat(g1.get(v.as_tensor()).unwrap()),
                flat(g2.get(v.as_tensor()).unwrap())
            );
        }
    }
}
