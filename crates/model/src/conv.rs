//! [`conv2d`]: a 2-D convolution whose CPU forward and backward are im2col/col2im around a
//! fast gemm, as a candle custom op. candle's own CPU backward computes the input gradient
//! with a plain-loop `conv_transpose2d` and the weight gradient as a convolution with a huge
//! dilated kernel (≈ 7 GFLOP/s on the stem); here all three products run at the gemm's rate,
//! and no gradient is computed for an input that nothing trains (the images).
//!
//! On other devices the call goes to candle's `conv2d` (cuDNN's forward on CUDA). The three
//! products (forward, input gradient, weight gradient) are separate ops so that a CUDA
//! backward (cuDNN's backward-data/backward-filter or im2col + cuBLAS) can be added beside the
//! CPU one.

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// The shape of one convolution: input `n × c × h × w`, kernel `o × c × k × k`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
}

impl Geometry {
    fn oh(&self) -> usize {
        (self.h + 2 * self.pad - self.k) / self.stride + 1
    }
    fn ow(&self) -> usize {
        (self.w + 2 * self.pad - self.k) / self.stride + 1
    }
    /// Rows of the unfolded input: one per (channel, kernel row, kernel column).
    fn ckk(&self) -> usize {
        self.c * self.k * self.k
    }
    /// Columns of the unfolded input: one per output pixel.
    fn pixels(&self) -> usize {
        self.oh() * self.ow()
    }
    /// Whether the unfolded input is the input itself (1×1, stride 1, no padding).
    fn is_pointwise(&self) -> bool {
        self.k == 1 && self.stride == 1 && self.pad == 0
    }
}

/// `dst (m × n) = [dst +] lhs (m × k) · rhs (k × n)`, all f32, with explicit row and column
/// strides, on this thread only.
#[allow(clippy::too_many_arguments)]
fn gemm(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    accumulate: bool,
    lhs: &[f32],
    lhs_rs: usize,
    lhs_cs: usize,
    rhs: &[f32],
    rhs_rs: usize,
    rhs_cs: usize,
    threads: usize,
) {
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the slices hold the m × n, m × k and k × n matrices described by the strides,
    // as every caller sizes them from one Geometry.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// Unfolds one image (`c × h × w`) into `ckk × pixels` columns.
fn im2col(x: &[f32], g: &Geometry, cols: &mut [f32]) {
    let (oh, ow) = (g.oh(), g.ow());
    let pixels = oh * ow;
    for c in 0..g.c {
        let plane = &x[c * g.h * g.w..(c + 1) * g.h * g.w];
        for ki in 0..g.k {
            for kj in 0..g.k {
                let row = (c * g.k + ki) * g.k + kj;
                let out = &mut cols[row * pixels..(row + 1) * pixels];
                for oy in 0..oh {
                    let iy = (oy * g.stride + ki) as isize - g.pad as isize;
                    let line = &mut out[oy * ow..(oy + 1) * ow];
                    if iy < 0 || iy >= g.h as isize {
                        line.fill(0.0);
                        continue;
                    }
                    let src = &plane[iy as usize * g.w..(iy as usize + 1) * g.w];
                    if g.stride == 1 {
                        // The valid columns are one contiguous run.
                        let start = g.pad.saturating_sub(kj).min(ow);
                        let end = (g.w + g.pad).saturating_sub(kj).min(ow).max(start);
                        line[..start].fill(0.0);
                        line[end..].fill(0.0);
                        let from = start + kj - g.pad;
                        line[start..end].copy_from_slice(&src[from..from + end - start]);
                    } else {
                        for (ox, v) in line.iter_mut().enumerate() {
                            let ix = (ox * g.stride + kj) as isize - g.pad as isize;
                            *v = if ix < 0 || ix >= g.w as isize { 0.0 } else { src[ix as usize] };
                        }
                    }
                }
            }
        }
    }
}

/// Folds `ckk × pixels` columns back onto one image, adding where windows overlap.
fn col2im_add(cols: &[f32], g: &Geometry, dx: &mut [f32]) {
    let (oh, ow) = (g.oh(), g.ow());
    let pixels = oh * ow;
    for c in 0..g.c {
        let plane = &mut dx[c * g.h * g.w..(c + 1) * g.h * g.w];
        for ki in 0..g.k {
            for kj in 0..g.k {
                let row = (c * g.k + ki) * g.k + kj;
                let src = &cols[row * pixels..(row + 1) * pixels];
                for oy in 0..oh {
                    let iy = (oy * g.stride + ki) as isize - g.pad as isize;
                    if iy < 0 || iy >= g.h as isize {
                        continue;
                    }
                    let out = &mut plane[iy as usize * g.w..(iy as usize + 1) * g.w];
                    for ox in 0..ow {
                        let ix = (ox * g.stride + kj) as isize - g.pad as isize;
                        if ix >= 0 && ix < g.w as isize {
                            out[ix as usize] += src[oy * ow + ox];
                        }
                    }
                }
            }
        }
    }
}

/// Runs `f(image, scratch)` for every image: in parallel over images with single-threaded
/// gemms when the batch is large enough, else image by image with parallel gemms.
fn per_image<T: Send>(n: usize, scratch: usize, f: impl Fn(usize, &mut [f32], usize) -> T + Sync) -> Vec<T> {
    let threads = candle_core::utils::get_num_threads().max(1);
    if n >= 2 * threads && threads > 1 {
        (0..n)
            .into_par_iter()
            .map_init(|| vec![0f32; scratch], |buf, i| f(i, buf, 1))
            .collect()
    } else {
        let mut buf = vec![0f32; scratch];
        (0..n).map(|i| f(i, &mut buf, threads)).collect()
    }
}

fn contiguous<'a>(storage: &'a CpuStorage, layout: &Layout, what: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        candle_core::bail!("conv2d: {what} must be f32")
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("conv2d: {what} must be contiguous"),
    }
}

/// `y = conv(x, w)`.
struct Forward(Geometry);

impl CustomOp2 for Forward {
    fn name(&self) -> &'static str {
        "sweep-conv2d"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let x = contiguous(s1, l1, "the input")?;
        let w = contiguous(s2, l2, "the kernel")?;
        let (pixels, ckk) = (g.pixels(), g.ckk());
        let image = g.c * g.h * g.w;
        let scratch = if g.is_pointwise() { 0 } else { ckk * pixels };
        let outputs = per_image(g.n, scratch, |i, cols, threads| {
            let x = &x[i * image..(i + 1) * image];
            let cols: &[f32] = if g.is_pointwise() {
                x
            } else {
                im2col(x, &g, cols);
                cols
            };
            let mut y = vec![0f32; g.o * pixels];
            gemm(g.o, pixels, ckk, &mut y, false, w, ckk, 1, cols, pixels, 1, threads);
            y
        });
        Ok((CpuStorage::F32(outputs.concat()), Shape::from((g.n, g.o, g.oh(), g.ow()))))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
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

/// `dx` from `dy` and `w`: `wᵀ · dy` per image, folded back with col2im.
struct InputGrad(Geometry);

impl CustomOp2 for InputGrad {
    fn name(&self) -> &'static str {
        "sweep-conv2d-input-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let dy = contiguous(s1, l1, "the output gradient")?;
        let w = contiguous(s2, l2, "the kernel")?;
        let (pixels, ckk) = (g.pixels(), g.ckk());
        let image = g.c * g.h * g.w;
        let grads = per_image(g.n, ckk * pixels, |i, dcols, threads| {
            let dy = &dy[i * g.o * pixels..(i + 1) * g.o * pixels];
            gemm(ckk, pixels, g.o, dcols, false, w, 1, ckk, dy, pixels, 1, threads);
            if g.is_pointwise() {
                dcols.to_vec()
            } else {
                let mut dx = vec![0f32; image];
                col2im_add(dcols, &g, &mut dx);
                dx
            }
        });
        Ok((CpuStorage::F32(grads.concat()), Shape::from((g.n, g.c, g.h, g.w))))
    }
}

/// Images per partial sum of the weight gradient: a fixed split, so the sum is the same
/// whatever the thread count (bit-for-bit determinism).
const WEIGHT_GRAD_CHUNK: usize = 8;

/// `dw` from `x` and `dy`: `Σ dy · colsᵀ` over the images.
struct WeightGrad(Geometry);

impl CustomOp2 for WeightGrad {
    fn name(&self) -> &'static str {
        "sweep-conv2d-weight-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let x = contiguous(s1, l1, "the input")?;
        let dy = contiguous(s2, l2, "the output gradient")?;
        let (pixels, ckk) = (g.pixels(), g.ckk());
        let image = g.c * g.h * g.w;
        let chunks = g.n.div_ceil(WEIGHT_GRAD_CHUNK);
        let threads = candle_core::utils::get_num_threads().max(1);
        let inner_threads = if chunks >= 2 * threads { 1 } else { threads };
        let partial = |chunk: usize| {
            let mut dw = vec![0f32; g.o * ckk];
            let mut cols = vec![0f32; if g.is_pointwise() { 0 } else { ckk * pixels }];
            let images = chunk * WEIGHT_GRAD_CHUNK..((chunk + 1) * WEIGHT_GRAD_CHUNK).min(g.n);
            for (j, i) in images.enumerate() {
                let xi = &x[i * image..(i + 1) * image];
                let cols: &[f32] = if g.is_pointwise() {
                    xi
                } else {
                    im2col(xi, &g, &mut cols);
                    &cols
                };
                let dyi = &dy[i * g.o * pixels..(i + 1) * g.o * pixels];
                gemm(g.o, ckk, pixels, &mut dw, j > 0, dyi, pixels, 1, cols, 1, pixels, inner_threads);
            }
            dw
        };
        let partials: Vec<Vec<f32>> = if inner_threads == 1 {
            (0..chunks).into_par_iter().map(partial).collect()
        } else {
            (0..chunks).map(partial).collect()
        };
        let mut total = partials.first().cloned().unwrap_or_else(|| vec![0f32; g.o * ckk]);
        for p in partials.iter().skip(1) {
            total.iter_mut().zip(p).for_each(|(t, v)| *t += v);
        }
        Ok((CpuStorage::F32(total), Shape::from((g.o, g.c, g.k, g.k))))
    }
}

/// `conv(x, w)` with square kernels: `x` is `n × c × h × w`, `w` is `o × c × k × k`.
pub fn conv2d(x: &Tensor, w: &Tensor, stride: usize, pad: usize) -> Result<Tensor> {
    if !x.device().is_cpu() || x.dtype() != candle_core::DType::F32 {
        return x.conv2d(w, pad, stride, 1, 1);
    }
    let (n, c, h, wd) = x.dims4()?;
    let (o, c2, k, k2) = w.dims4()?;
    if c != c2 || k != k2 {
        candle_core::bail!("conv2d: input {:?} and kernel {:?} do not match", x.dims(), w.dims())
    }
    let g = Geometry { n, c, h, w: wd, o, k, stride, pad };
    x.contiguous()?.apply_op2(&w.contiguous()?, Forward(g))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn max_rel_err(a: &Tensor, b: &Tensor) -> f32 {
        let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(a.len(), b.len());
        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
        a.iter().zip(&b).fold(0f32, |m, (x, y)| m.max((x - y).abs() / scale))
    }

    /// Output, input gradient and weight gradient against candle's own conv2d.
    fn check(n: usize, c: usize, hw: usize, o: usize, k: usize, stride: usize, pad: usize) {
        let dev = Device::Cpu;
        let x = Var::randn(0f32, 1.0, (n, c, hw, hw), &dev).unwrap();
        let w = Var::randn(0f32, 0.5, (o, c, k, k), &dev).unwrap();
        let ours = conv2d(x.as_tensor(), w.as_tensor(), stride, pad).unwrap();
        let theirs = x.as_tensor().conv2d(w.as_tensor(), pad, stride, 1, 1).unwrap();
        let case = format!("n{n} c{c} {hw}x{hw} o{o} k{k} s{stride} p{pad}");
        assert_eq!(ours.dims(), theirs.dims(), "{case}");
        assert!(max_rel_err(&ours, &theirs) <= 1e-4, "output {case}: {}", max_rel_err(&ours, &theirs));
        // A loss that weights every output differently, so every gradient entry is tested.
        let weights = Tensor::randn(0f32, 1.0, ours.dims(), &dev).unwrap();
        let g_ours = (&ours * &weights).unwrap().sum_all().unwrap().backward().unwrap();
        let g_theirs = (&theirs * &weights).unwrap().sum_all().unwrap().backward().unwrap();
        for (name, var) in [("input", &x), ("weight", &w)] {
            let (a, b) = (g_ours.get(var.as_tensor()).unwrap(), g_theirs.get(var.as_tensor()).unwrap());
            assert!(max_rel_err(a, b) <= 1e-4, "{name} gradient {case}: {}", max_rel_err(a, b));
        }
    }

    #[test]
    fn matches_candle_on_many_shapes() {
        for &(n, c, hw, o, k, stride, pad) in &[
            (1, 3, 9, 5, 7, 2, 3),
            (2, 3, 16, 8, 7, 2, 3),
            (3, 5, 7, 6, 3, 1, 1),
            (1, 4, 8, 4, 3, 2, 1),
            (17, 6, 5, 9, 3, 1, 1),
            (2, 7, 6, 3, 1, 1, 0),
            (4, 6, 9, 10, 1, 2, 0),
            (2, 3, 10, 2, 3, 1, 0),
            (1, 2, 11, 3, 3, 2, 0),
            (20, 3, 12, 7, 3, 2, 1),
        ] {
            check(n, c, hw, o, k, stride, pad);
        }
    }

    #[test]
    fn the_images_get_no_gradient() {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (2, 3, 8, 8), &dev).unwrap();
        let w = Var::randn(0f32, 1.0, (4, 3, 3, 3), &dev).unwrap();
        let grads = conv2d(&x, w.as_tensor(), 1, 1).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(grads.get(&x).is_none());
        assert!(grads.get(w.as_tensor()).is_some());
    }

    #[test]
    fn the_weight_gradient_does_not_depend_on_the_thread_count() {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (40, 3, 8, 8), &dev).unwrap();
        let dy = Tensor::randn(0f32, 1.0, (40, 4, 8, 8), &dev).unwrap();
        let g = Geometry { n: 40, c: 3, h: 8, w: 8, o: 4, k: 3, stride: 1, pad: 1 };
        let pool = |threads| rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let one = pool(1).install(|| x.apply_op2_no_bwd(&dy, &WeightGrad(g)).unwrap());
        let three = pool(3).install(|| x.apply_op2_no_bwd(&dy, &WeightGrad(g)).unwrap());
        assert_eq!(one.flatten_all().unwrap().to_vec1::<f32>().unwrap(), three.flatten_all().unwrap().to_vec1::<f32>().unwrap());
    }
}
