//! Fused ReLU ops for the CPU: [`add_relu`] (a residual block's `relu(a + b)` in one pass
//! each way) and [`relu_mask`] (a gradient through a ReLU, from the ReLU's output). Other
//! devices use candle's ops.

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};

use rayon::prelude::*;

use crate::ops::storage::{f32_slice, par_filled};

/// Elements per parallel task: large enough that scheduling costs nothing beside the work.
const CHUNK: usize = 1 << 14;

/// `f(a[i], b[i])` for every element, in parallel chunks.
fn zip_map(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) -> Vec<f32> {
    // SAFETY: each part is written whole: `a` and `b` give exactly as many values as the
    // part holds (or the slicing panics).
    unsafe {
        par_filled(a.len(), CHUNK, |k, out| {
            let range = k * CHUNK..k * CHUNK + out.len();
            for ((o, &x), &y) in out.iter_mut().zip(&a[range.clone()]).zip(&b[range]) {
                o.write(f(x, y));
            }
        })
    }
}

/// `a[i] = f(a[i], b[i])` for every element, in place, in parallel chunks.
fn zip_in_place(a: &mut [f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) {
    assert_eq!(
        a.len(),
        b.len(),
        "zip_in_place: operands of different lengths"
    );
    a.par_chunks_mut(CHUNK)
        .zip(b.par_chunks(CHUNK))
        .for_each(|(a, b)| a.iter_mut().zip(b).for_each(|(x, &y)| *x = f(*x, y)));
}

/// `a = relu(a + b)` on CPU values: a residual block's output, written over its main branch.
pub(crate) fn add_relu_in_place(a: &mut [f32], b: &[f32]) {
    zip_in_place(a, b, |x, s| (x + s).max(0.0));
}

/// `dy = 0` wherever the ReLU's output `y` is not positive, on CPU values.
pub(crate) fn relu_mask_in_place(dy: &mut [f32], y: &[f32]) {
    zip_in_place(dy, y, |g, v| if v > 0.0 { g } else { 0.0 });
}

/// `a += b` on CPU values: a second gradient into a map that two layers read.
pub(crate) fn add_in_place(a: &mut [f32], b: &[f32]) {
    zip_in_place(a, b, |x, y| x + y);
}

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
        let y = zip_map(a, b, |x, s| (x + s).max(0.0));
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
        let g = zip_map(dy, y, |d, v| if v > 0.0 { d } else { 0.0 });
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
