//! [`max_pool2x2`]: the ResNet stem's 2×2/2 max pool as a CPU custom op over
//! [`sweep_kernels::pool`]. candle's backward for it upsamples the output, compares it with
//! the input, average-pools the mask and upsamples again: six passes over the stem's
//! activations (its largest tensor) where one will do, and its result is a quarter of the
//! gradient (it multiplies by the share of the window that ties for the maximum where it
//! means to divide by the count of ties). Here the whole gradient goes to the window's first
//! maximum, as in PyTorch. Other devices use candle's op, its gradient scaled back to the
//! whole.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor};
use sweep_kernels::pool as kernel;

use crate::ops::storage::f32_slice;

/// `n × c × h × w` as planes, and the output plane's size.
#[derive(Debug, Clone, Copy)]
struct Planes {
    h: usize,
    w: usize,
}

impl Planes {
    fn out(&self) -> (usize, usize) {
        (self.h / 2, self.w / 2)
    }
}

struct MaxPool(Planes);

impl CustomOp1 for MaxPool {
    fn name(&self) -> &'static str {
        "sweep-max-pool-2x2"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let p = self.0;
        let x = f32_slice(s, l, "max-pool", "the input")?;
        let y = kernel::max_pool2x2(x, (p.h, p.w));
        let (n, c, _, _) = l.shape().dims4()?;
        let (oh, ow) = p.out();
        Ok((CpuStorage::F32(y), Shape::from((n, c, oh, ow))))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(x.apply_op2_no_bwd(
            &dy.contiguous()?,
            &MaxPoolGrad(self.0),
        )?))
    }
}

/// `dx`: each output's gradient at its window's first maximum, 0 elsewhere.
struct MaxPoolGrad(Planes);

impl CustomOp2 for MaxPoolGrad {
    fn name(&self) -> &'static str {
        "sweep-max-pool-2x2-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let p = self.0;
        let x = f32_slice(s1, l1, "max-pool", "the input")?;
        let dy = f32_slice(s2, l2, "max-pool", "the output gradient")?;
        let dx = kernel::max_pool2x2_grad(x, dy, (p.h, p.w));
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}

/// A 2×2 max pool with stride 2 over `n × c × h × w` (odd rows and columns at the end are
/// dropped, as candle and PyTorch do).
pub fn max_pool2x2(x: &Tensor) -> Result<Tensor> {
    if !x.device().is_cpu() || x.dtype() != DType::F32 {
        return candle_max_pool2x2(x);
    }
    let (_, _, h, w) = x.dims4()?;
    if h < 2 || w < 2 {
        candle_core::bail!("max-pool: a 2×2 window does not fit in {h}×{w}")
    }
    x.contiguous()?.apply_op1(MaxPool(Planes { h, w }))
}

/// candle's max pool with its gradient made whole: `y + 3 · (y − y)`, the second `y`
/// detached, is `y` exactly (for finite `y`), and its gradient is four times candle's
/// quarter. A window with `t` tied maxima sends `t` times the gradient to each of them (where
/// candle sends `t / 4`); ties are rare outside all-zero windows after a ReLU, whose gradient
/// the ReLU stops anyway.
fn candle_max_pool2x2(x: &Tensor) -> Result<Tensor> {
    let y = x.max_pool2d(2)?;
    let zero = (&y - y.detach())?;
    y + zero.affine(3.0, 0.0)?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{max_rel_err, weighted_grads};
    use candle_core::{Device, Var};

    #[test]
    fn matches_candle_forward_and_routes_the_gradient_to_the_maximum() {
        let dev = Device::Cpu;
        for &(n, c, h, w) in &[
            (1, 1, 2, 2),
            (2, 3, 8, 8),
            (3, 2, 7, 5),
            (1, 4, 2, 3),
            (4, 5, 16, 9),
        ] {
            let x = Var::randn(0f32, 1.0, (n, c, h, w), &dev).unwrap();
            let ours = max_pool2x2(x.as_tensor()).unwrap();
            let theirs = x.as_tensor().max_pool2d(2).unwrap();
            let case = format!("{n}×{c}×{h}×{w}");
            assert_eq!(ours.dims(), theirs.dims(), "{case}");
            if ours.elem_count() == 0 {
                continue;
            }
            assert_eq!(max_rel_err(&ours, &theirs), 0.0, "output {case}");
            // The gradient of Σ weights · y: each window's weight at its maximum. (candle's
            // own backward gives a quarter of it: it scales by the tie count over the window
            // size instead of dividing by the count.)
            let weights = Tensor::randn(0f32, 1.0, ours.dims(), &dev).unwrap();
            let g = weighted_grads(&ours, &weights);
            let got = g.get(x.as_tensor()).unwrap().flatten_all().unwrap();
            let got = got.to_vec1::<f32>().unwrap();
            let xs = x
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let ws = weights.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let mut expected = vec![0f32; xs.len()];
            let (oh, ow) = (h / 2, w / 2);
            for plane in 0..n * c {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let cells = [(0, 0), (0, 1), (1, 0), (1, 1)]
                            .map(|(dy, dx)| plane * h * w + (2 * oy + dy) * w + 2 * ox + dx);
                        let best =
                            cells
                                .into_iter()
                                .fold(cells[0], |b, i| if xs[i] > xs[b] { i } else { b });
                        expected[best] = ws[(plane * oh + oy) * ow + ox];
                    }
                }
            }
            assert_eq!(got, expected, "gradient {case}");
        }
    }

    #[test]
    fn the_other_devices_path_gives_the_same_values_and_gradient() {
        let dev = Device::Cpu;
        let x = Var::randn(0f32, 1.0, (2, 3, 8, 6), &dev).unwrap();
        let (ours, theirs) = (
            max_pool2x2(x.as_tensor()).unwrap(),
            candle_max_pool2x2(x.as_tensor()).unwrap(),
        );
        assert_eq!(max_rel_err(&theirs, &ours), 0.0);
        let weights = Tensor::randn(0f32, 1.0, ours.dims(), &dev).unwrap();
        let grad = |y: &Tensor| {
            let g = weighted_grads(y, &weights);
            g.get(x.as_tensor()).unwrap().clone()
        };
        assert!(max_rel_err(&grad(&theirs), &grad(&ours)) <= 1e-6);
    }

    #[test]
    fn a_picture_smaller_than_the_window_is_an_error() {
        let x = Tensor::zeros((1, 4, 1, 6), DType::F32, &Device::Cpu).unwrap();
        assert!(max_pool2x2(&x).is_err());
    }

    #[test]
    fn a_tie_sends_the_gradient_to_the_first_maximum() {
        let dev = Device::Cpu;
        let x = Var::from_vec(vec![1f32, 3.0, 3.0, 0.0], (1, 1, 2, 2), &dev).unwrap();
        let y = max_pool2x2(x.as_tensor()).unwrap();
        assert_eq!(y.flatten_all().unwrap().to_vec1::<f32>().unwrap(), [3.0]);
        let grads = (y * 5.0).unwrap().sum_all().unwrap().backward().unwrap();
        let dx = grads.get(x.as_tensor()).unwrap();
        assert_eq!(
            dx.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            [0.0, 5.0, 0.0, 0.0]
        );
    }
}
