//! The product under a dense layer ([`Dense`](crate::nn::dense::Dense)), `x · wᵀ`, as a
//! candle custom op whose CPU forward and backward are [`sweep_kernels::matmul`]'s products. candle's matmul
//! backward always computes both gradients, so the first layer of the MLP spent a third of
//! its step on a gradient for the input images (a `batch × pixels` product, its zero-filled
//! buffer and the add into it); here the input gradient is computed only when something
//! upstream trains. On other devices the product is candle's matmul.

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};
use sweep_kernels::matmul;

use crate::ops::cpu;
use crate::ops::storage::f32_slice;

/// `x · wᵀ` for `x` of shape `batch × inputs` and `w` of shape `outputs × inputs`.
pub(crate) fn product(x: &Tensor, weight: &Tensor) -> Result<Tensor> {
    if !(x.device().is_cpu() && x.dtype() == DType::F32) {
        return x.matmul(&weight.t()?);
    }
    let (batch, inputs) = x.dims2()?;
    let (outputs, inputs2) = weight.dims2()?;
    if inputs != inputs2 {
        candle_core::bail!(
            "dense: input {:?} and weight {:?} do not match",
            x.dims(),
            weight.dims()
        )
    }
    x.contiguous()?.apply_op2(
        &weight.contiguous()?,
        Product(Dims {
            batch,
            inputs,
            outputs,
        }),
    )
}

/// `dyᵀ · x`, the weight's gradient of [`product`] for its input `x` (`batch × inputs`) and
/// output gradient `dy` (`batch × outputs`).
pub(crate) fn weight_grad(x: &Tensor, dy: &Tensor) -> Result<Tensor> {
    if !(x.device().is_cpu() && x.dtype() == DType::F32) {
        return dy.t()?.matmul(x);
    }
    let (batch, inputs) = x.dims2()?;
    let (_, outputs) = dy.dims2()?;
    let dims = Dims {
        batch,
        inputs,
        outputs,
    };
    dy.contiguous()?
        .apply_op2_no_bwd(&x.contiguous()?, &Grad(dims, Of::Weight))
}

#[derive(Debug, Clone, Copy)]
struct Dims {
    batch: usize,
    inputs: usize,
    outputs: usize,
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
        matmul::gemm_nt((batch, outputs, inputs), &mut y, x, w, cpu());
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
        let grad = matmul::product(
            (rows, inputs, product),
            (dy, dy_strides),
            (rhs, (inputs, 1)),
            cpu().threads(),
        );
        Ok((CpuStorage::F32(grad), Shape::from((rows, inputs))))
    }
}
