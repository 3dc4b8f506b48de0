//! [`Dense`]: a fully connected layer whose CPU product and backward are our own gemm calls,
//! as a candle custom op. candle's matmul backward always computes both gradients, so the
//! first layer of the MLP spent a third of its step on a gradient for the input images
//! (a `batch × pixels` product, its zero-filled buffer and the add into it); here the input
//! gradient is computed only when something upstream trains.
//!
//! The variables are candle-nn's `linear` ones (same names, shapes and initialisation), so
//! checkpoints are unchanged. On other devices the product is candle's matmul.

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};
use candle_nn::VarBuilder;

use crate::ops::matmul::{gemm, gemm_nt};
use crate::ops::storage::f32_slice;

/// `y = x · wᵀ + b` for `x` of shape `batch × inputs` and `w` of shape `outputs × inputs`.
pub struct Dense {
    weight: Tensor,
    bias: Tensor,
}

impl Dense {
    /// The layer's weight (`outputs × inputs`) and bias, created through `vb` as candle-nn's
    /// `linear` creates them.
    pub fn new(inputs: usize, outputs: usize, vb: VarBuilder) -> Result<Self> {
        let layer = candle_nn::linear(inputs, outputs, vb)?;
        let bias = match layer.bias() {
            Some(bias) => bias.clone(),
            None => candle_core::bail!("dense: candle-nn's linear came without a bias"),
        };
        Ok(Self {
            weight: layer.weight().clone(),
            bias,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = if x.device().is_cpu() && x.dtype() == DType::F32 {
            let (batch, inputs) = x.dims2()?;
            let (outputs, inputs2) = self.weight.dims2()?;
            if inputs != inputs2 {
                candle_core::bail!(
                    "dense: input {:?} and weight {:?} do not match",
                    x.dims(),
                    self.weight.dims()
                )
            }
            x.contiguous()?.apply_op2(
                &self.weight.contiguous()?,
                Product(Dims {
                    batch,
                    inputs,
                    outputs,
                }),
            )?
        } else {
            x.matmul(&self.weight.t()?)?
        };
        y.broadcast_add(&self.bias)
    }
}

#[derive(Debug, Clone, Copy)]
struct Dims {
    batch: usize,
    inputs: usize,
    outputs: usize,
}

fn threads() -> usize {
    candle_core::utils::get_num_threads().max(1)
}

/// `y = x · wᵀ`.
struct Product(Dims);

impl CustomOp2 for Product {
    fn name(&self) -> &'static str {
        "sweep-dense"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let Dims {
            batch,
            inputs,
            outputs,
        } = self.0;
        let x = f32_slice(s1, l1, "dense", "the input")?;
        let w = f32_slice(s2, l2, "dense", "the weight")?;
        let mut y = vec![0f32; batch * outputs];
        gemm_nt((batch, outputs, inputs), &mut y, x, w, threads());
        Ok((CpuStorage::F32(y), Shape::from((batch, outputs))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        // The images' gradient is never computed: nothing trains them.
        let dx = if x.track_op() {
            Some(dy.apply_op2_no_bwd(w, &Grad(self.0, Of::Input))?)
        } else {
            None
        };
        let dw = dy.apply_op2_no_bwd(x, &Grad(self.0, Of::Weight))?;
        Ok((dx, Some(dw)))
    }
}

/// Which gradient a [`Grad`] computes from `dy` and its second operand.
#[derive(Debug, Clone, Copy)]
enum Of {
    /// `dx = dy · w`.
    Input,
    /// `dw = dyᵀ · x`.
    Weight,
}

/// One of the layer's two gradients: `dy` is the first operand, `w` or `x` the second.
struct Grad(Dims, Of);

impl CustomOp2 for Grad {
    fn name(&self) -> &'static str {
        match self.1 {
            Of::Input => "sweep-dense-input-grad",
            Of::Weight => "sweep-dense-weight-grad",
        }
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let Dims {
            batch,
            inputs,
            outputs,
        } = self.0;
        let dy = f32_slice(s1, l1, "dense", "the output gradient")?;
        let (rows, product, rhs, dy_strides) = match self.1 {
            Of::Input => (
                batch,
                outputs,
                f32_slice(s2, l2, "dense", "the weight")?,
                (outputs, 1),
            ),
            Of::Weight => (
                outputs,
                batch,
                f32_slice(s2, l2, "dense", "the input")?,
                (1, outputs),
            ),
        };
        let mut grad = vec![0f32; rows * inputs];
        gemm(
            (rows, inputs, product),
            &mut grad,
            dy,
            dy_strides,
            rhs,
            (inputs, 1),
            threads(),
        );
        Ok((CpuStorage::F32(grad), Shape::from((rows, inputs))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::max_rel_err;
    use candle_core::{Device, Var};
    use candle_nn::{Module, VarMap};

    /// Output and the gradients of input, weight and bias against candle-nn's `Linear`.
    fn check(batch: usize, inputs: usize, outputs: usize) {
        let dev = Device::Cpu;
        let vars = VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, DType::F32, &dev);
        let ours = Dense::new(inputs, outputs, vb.pp("d")).unwrap();
        let theirs = candle_nn::Linear::new(ours.weight.clone(), Some(ours.bias.clone()));
        let x = Var::randn(0f32, 1.0, (batch, inputs), &dev).unwrap();
        let (a, b) = (
            ours.forward(x.as_tensor()).unwrap(),
            theirs.forward(x.as_tensor()).unwrap(),
        );
        let case = format!("{batch}×{inputs} → {outputs}");
        assert!(max_rel_err(&a, &b) <= 1e-5, "output {case}");
        let weights = Tensor::randn(0f32, 1.0, a.dims(), &dev).unwrap();
        let grads = |y: &Tensor| {
            (y * &weights)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap()
        };
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
        let layer = Dense::new(12, 4, vb).unwrap();
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
