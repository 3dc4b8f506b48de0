//! [`conv2d`]: a 2-D convolution as candle custom ops whose CPU forward and backward are the
//! kernels of [`sweep_kernels::conv`] (the implicit gemm and the weight gradients' kernels on
//! CPUs with AVX-512F, im2col/col2im around the `gemm` crate elsewhere). candle's own CPU
//! backward computes the input gradient with a plain-loop `conv_transpose2d` and the weight
//! gradient as a convolution with a huge dilated kernel (≈ 7 GFLOP/s on the stem); here all
//! three products run at the kernels' rate, and no gradient is computed for an input that
//! nothing trains (the images).
//!
//! On other devices the call goes to candle's `conv2d` (cuDNN's forward on CUDA). The three
//! products (forward, input gradient, weight gradient) are separate ops so that a CUDA
//! backward (cuDNN's backward-data/backward-filter or im2col + cuBLAS) can be added beside the
//! CPU one.

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use sweep_kernels::{conv, Epilogue, Geometry};

use crate::ops::cpu;
use crate::ops::storage::f32_slice;

/// `y = conv(x, w)`, then the epilogue if there is one ([`conv::forward`]).
struct Forward(Geometry, Option<Epilogue>);

impl CustomOp2 for Forward {
    fn name(&self) -> &'static str {
        "sweep-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let x = f32_slice(s1, l1, "conv2d", "the input")?;
        let w = f32_slice(s2, l2, "conv2d", "the kernel")?;
        let y = conv::forward(x, w, &g, self.1.as_ref(), cpu());
        Ok((CpuStorage::F32(y), Shape::from((g.n, g.o, g.oh(), g.ow()))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        if self.1.is_some() {
            candle_core::bail!("conv2d: an epilogue is for evaluation and has no backward")
        }
        let dy = dy.contiguous()?;
        // Nothing trains the images: their gradient is never computed.
        let dx = if x.track_op() {
            Some(dy.apply_op2_no_bwd(w, &InputGrad(self.0))?)
        } else {
            None
        };
        let dw = x.apply_op2_no_bwd(&dy, &WeightGrad(self.0))?;
        Ok((dx, Some(dw)))
    }
}

/// `dx` from `dy` and `w` ([`conv::input_grad`]).
struct InputGrad(Geometry);

impl CustomOp2 for InputGrad {
    fn name(&self) -> &'static str {
        "sweep-conv2d-input-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let dy = f32_slice(s1, l1, "conv2d", "the output gradient")?;
        let w = f32_slice(s2, l2, "conv2d", "the kernel")?;
        let dx = conv::input_grad(dy, w, &g, cpu());
        Ok((CpuStorage::F32(dx), Shape::from((g.n, g.c, g.h, g.w))))
    }
}

/// `dw` from `x` and `dy` ([`conv::weight_grad`]).
struct WeightGrad(Geometry);

impl CustomOp2 for WeightGrad {
    fn name(&self) -> &'static str {
        "sweep-conv2d-weight-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let x = f32_slice(s1, l1, "conv2d", "the input")?;
        let dy = f32_slice(s2, l2, "conv2d", "the output gradient")?;
        let dw = conv::weight_grad(x, dy, &g, cpu());
        Ok((CpuStorage::F32(dw), Shape::from((g.o, g.c, g.k, g.k))))
    }
}

/// `conv(x, w)` with square kernels: `x` is `n × c × h × w`, `w` is `o × c × k × k`.
pub fn conv2d(x: &Tensor, w: &Tensor, stride: usize, pad: usize) -> Result<Tensor> {
    if !x.device().is_cpu() || x.dtype() != candle_core::DType::F32 {
        return x.conv2d(w, pad, stride, 1, 1);
    }
    let g = geometry(x, w, stride, pad)?;
    x.contiguous()?
        .apply_op2(&w.contiguous()?, Forward(g, None))
}

/// `epilogue(conv(x, w))` for evaluation, without a gradient: one pass over the output where
/// a separate batch norm (or bias) and ReLU would make another, with its own buffer. On
/// other devices, candle's conv and the map as tensor ops.
pub fn conv2d_eval(
    x: &Tensor,
    w: &Tensor,
    stride: usize,
    pad: usize,
    epilogue: Epilogue,
) -> Result<Tensor> {
    if !x.device().is_cpu() || x.dtype() != candle_core::DType::F32 {
        let o = w.dim(0)?;
        let per_channel = |v: &[f32]| Tensor::from_slice(v, (1, o, 1, 1), x.device());
        let y = x
            .conv2d(w, pad, stride, 1, 1)?
            .broadcast_mul(&per_channel(&epilogue.scale)?)?
            .broadcast_add(&per_channel(&epilogue.shift)?)?;
        return if epilogue.relu { y.relu() } else { Ok(y) };
    }
    let g = geometry(x, w, stride, pad)?;
    if epilogue.scale.len() != g.o || epilogue.shift.len() != g.o {
        candle_core::bail!(
            "conv2d: an epilogue for {} channels on {}",
            epilogue.scale.len(),
            g.o
        )
    }
    x.contiguous()?
        .apply_op2_no_bwd(&w.contiguous()?, &Forward(g, Some(epilogue)))
}

fn geometry(x: &Tensor, w: &Tensor, stride: usize, pad: usize) -> Result<Geometry> {
    checked_geometry(x.dims4()?, w.dims4()?, stride, pad)
}

/// [`Geometry::of`] as candle's error: the convolution of an `n × c × h × w` input with an
/// `o × c × k × k` kernel, checked.
pub(crate) fn checked_geometry(
    input: (usize, usize, usize, usize),
    kernel: (usize, usize, usize, usize),
    stride: usize,
    pad: usize,
) -> Result<Geometry> {
    Geometry::of(input, kernel, stride, pad).map_err(candle_core::Error::wrap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{max_rel_err, weighted_grads};
    use candle_core::{Device, Var};

    /// Output, input gradient and weight gradient against candle's own conv2d.
    fn check(n: usize, c: usize, hw: usize, o: usize, k: usize, stride: usize, pad: usize) {
        let dev = Device::Cpu;
        let x = Var::randn(0f32, 1.0, (n, c, hw, hw), &dev).unwrap();
        let w = Var::randn(0f32, 0.5, (o, c, k, k), &dev).unwrap();
        let ours = conv2d(x.as_tensor(), w.as_tensor(), stride, pad).unwrap();
        let theirs = x
            .as_tensor()
            .conv2d(w.as_tensor(), pad, stride, 1, 1)
            .unwrap();
        let case = format!("n{n} c{c} {hw}x{hw} o{o} k{k} s{stride} p{pad}");
        assert_eq!(ours.dims(), theirs.dims(), "{case}");
        assert!(
            max_rel_err(&ours, &theirs) <= 1e-4,
            "output {case}: {}",
            max_rel_err(&ours, &theirs)
        );
        // A loss that weights every output differently, so every gradient entry is tested.
        let weights = Tensor::randn(0f32, 1.0, ours.dims(), &dev).unwrap();
        let g_ours = weighted_grads(&ours, &weights);
        let g_theirs = weighted_grads(&theirs, &weights);
        for (name, var) in [("input", &x), ("weight", &w)] {
            let (a, b) = (
                g_ours.get(var.as_tensor()).unwrap(),
                g_theirs.get(var.as_tensor()).unwrap(),
            );
            assert!(
                max_rel_err(a, b) <= 1e-4,
                "{name} gradient {case}: {}",
                max_rel_err(a, b)
            );
        }
    }

    /// The custom ops' plumbing (storage, shapes, the backward's two gradients), a shape per
    /// kernel: the kernels' own tests (`sweep-kernels`' `conv.rs`) check every path on many
    /// shapes against the convolution's definition.
    #[test]
    fn matches_candle_on_many_shapes() {
        for &(n, c, hw, o, k, stride, pad) in &[
            // The stem's 7×7/2 on 3 channels (the padded weight gradient).
            (2, 3, 16, 8, 7, 2, 3),
            // A "same" 3×3 on channels in tiles of 8, chunks of 3 images with a short last one.
            (13, 8, 10, 5, 3, 1, 1),
            // A strided 1×1 skip (its forward on the gemm), and a kernel wider than the picture.
            (4, 6, 9, 10, 1, 2, 0),
            (2, 2, 3, 3, 7, 1, 3),
        ] {
            check(n, c, hw, o, k, stride, pad);
        }
    }

    #[test]
    fn the_epilogue_is_the_affine_map_and_relu_of_the_output() {
        let dev = Device::Cpu;
        for &(n, hw, stride, pad, k) in &[(3, 9, 1, 1, 3), (40, 6, 2, 1, 3), (2, 23, 1, 0, 1)] {
            let x = Tensor::randn(0f32, 1.0, (n, 5, hw, hw), &dev).unwrap();
            let w = Tensor::randn(0f32, 0.5, (6, 5, k, k), &dev).unwrap();
            for relu in [false, true] {
                let epilogue = Epilogue {
                    scale: vec![0.5, -1.0, 2.0, 0.0, 1.5, 3.0],
                    shift: vec![0.1, 0.2, -0.3, 0.4, -0.5, 0.0],
                    relu,
                };
                let per_channel = |v: &[f32]| Tensor::from_slice(v, (1, 6, 1, 1), &dev).unwrap();
                let mut expected = x
                    .conv2d(&w, pad, stride, 1, 1)
                    .unwrap()
                    .broadcast_mul(&per_channel(&epilogue.scale))
                    .unwrap()
                    .broadcast_add(&per_channel(&epilogue.shift))
                    .unwrap();
                if relu {
                    expected = expected.relu().unwrap();
                }
                let got = conv2d_eval(&x, &w, stride, pad, epilogue).unwrap();
                let err = max_rel_err(&got, &expected);
                assert!(err <= 1e-4, "n{n} {hw}x{hw} s{stride} relu {relu}: {err}");
            }
        }
    }

    #[test]
    fn the_images_get_no_gradient() {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (2, 3, 8, 8), &dev).unwrap();
        let w = Var::randn(0f32, 1.0, (4, 3, 3, 3), &dev).unwrap();
        let grads = conv2d(&x, w.as_tensor(), 1, 1)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert!(grads.get(&x).is_none());
        assert!(grads.get(w.as_tensor()).is_some());
    }

    #[test]
    fn a_kernel_that_does_not_fit_is_an_error() {
        let dev = Device::Cpu;
        let x = Tensor::zeros((1, 2, 2, 3), candle_core::DType::F32, &dev).unwrap();
        let w = Tensor::zeros((2, 2, 3, 3), candle_core::DType::F32, &dev).unwrap();
        assert!(conv2d(&x, &w, 2, 0).is_err());
        assert!(conv2d(&x, &w, 0, 1).is_err());
        assert!(conv2d(&x, &w, 1, 1).is_ok());
    }
}
