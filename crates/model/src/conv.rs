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

use crate::matmul::gemm;
use crate::storage::f32_slice;

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
}

/// Unfolds every image of `x` (`n × c × h × w`) into one `ckk × (n · pixels)` matrix, image
/// `i` in columns `i · pixels ..`, so that one gemm covers several images.
fn im2col(x: &[f32], g: &Geometry) -> Vec<f32> {
    let (oh, ow) = (g.oh(), g.ow());
    let pixels = oh * ow;
    let width = g.n * pixels;
    let image = g.c * g.h * g.w;
    let mut cols = vec![0f32; g.ckk() * width];
    cols.chunks_mut(width).enumerate().for_each(|(row, out)| {
        let c = row / (g.k * g.k);
        let (ki, kj) = ((row / g.k) % g.k, row % g.k);
        for i in 0..g.n {
            let plane = &x[i * image + c * g.h * g.w..i * image + (c + 1) * g.h * g.w];
            let block = &mut out[i * pixels..(i + 1) * pixels];
            for oy in 0..oh {
                let iy = (oy * g.stride + ki) as isize - g.pad as isize;
                let line = &mut block[oy * ow..(oy + 1) * ow];
                if iy < 0 || iy >= g.h as isize {
                    continue;
                }
                let src = &plane[iy as usize * g.w..(iy as usize + 1) * g.w];
                if g.stride == 1 {
                    // The valid columns are one contiguous run.
                    let start = g.pad.saturating_sub(kj).min(ow);
                    let end = (g.w + g.pad).saturating_sub(kj).min(ow).max(start);
                    let from = start + kj - g.pad;
                    line[start..end].copy_from_slice(&src[from..from + end - start]);
                } else {
                    for (ox, v) in line.iter_mut().enumerate() {
                        let ix = (ox * g.stride + kj) as isize - g.pad as isize;
                        if ix >= 0 && ix < g.w as isize {
                            *v = src[ix as usize];
                        }
                    }
                }
            }
        }
    });
    cols
}

/// Folds a `ckk × (n · pixels)` matrix back onto the images, adding where windows overlap.
fn col2im(cols: &[f32], g: &Geometry) -> Vec<f32> {
    let (oh, ow) = (g.oh(), g.ow());
    let pixels = oh * ow;
    let width = g.n * pixels;
    let image = g.c * g.h * g.w;
    let mut dx = vec![0f32; g.n * image];
    dx.chunks_mut(g.h * g.w)
        .enumerate()
        .for_each(|(plane_index, plane)| {
            let (i, c) = (plane_index / g.c, plane_index % g.c);
            for ki in 0..g.k {
                for kj in 0..g.k {
                    let row = (c * g.k + ki) * g.k + kj;
                    let src = &cols[row * width + i * pixels..row * width + (i + 1) * pixels];
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
        });
    dx
}

/// `n × o × pixels` (the tensor layout) to `o × (n · pixels)` (the gemm layout) and back.
fn to_channel_major(t: &[f32], n: usize, o: usize, pixels: usize) -> Vec<f32> {
    let mut out = vec![0f32; t.len()];
    out.chunks_mut(n * pixels)
        .enumerate()
        .for_each(|(ch, row)| {
            for i in 0..n {
                row[i * pixels..(i + 1) * pixels]
                    .copy_from_slice(&t[(i * o + ch) * pixels..(i * o + ch + 1) * pixels]);
            }
        });
    out
}

fn to_image_major(t: &[f32], n: usize, o: usize, pixels: usize) -> Vec<f32> {
    let mut out = vec![0f32; t.len()];
    out.chunks_mut(o * pixels)
        .enumerate()
        .for_each(|(i, image)| {
            for ch in 0..o {
                image[ch * pixels..(ch + 1) * pixels].copy_from_slice(
                    &t[ch * n * pixels + i * pixels..ch * n * pixels + (i + 1) * pixels],
                );
            }
        });
    out
}

/// Columns per gemm that keep it efficient: layers with few pixels put several images into
/// one product, layers with many keep one image per product, so its operands stay in cache.
const GEMM_COLUMNS: usize = 512;

/// Runs `f` over the batch in chunks of whole images (a chunk's geometry and first image),
/// in parallel with single-threaded gemms when there are enough chunks, else one chunk at a
/// time with parallel gemms. The chunks depend on the geometry only, never on the thread
/// count, so sums over them are the same on every machine.
fn per_chunk<T: Send>(g: &Geometry, f: impl Fn(Geometry, usize, usize) -> T + Sync) -> Vec<T> {
    let per = GEMM_COLUMNS.div_ceil(g.pixels()).clamp(1, g.n.max(1));
    let starts: Vec<usize> = (0..g.n).step_by(per).collect();
    let chunk = |start: usize, threads: usize| {
        let geometry = Geometry {
            n: per.min(g.n - start),
            ..*g
        };
        f(geometry, start, threads)
    };
    let threads = candle_core::utils::get_num_threads().max(1);
    if threads > 1 && starts.len() >= 2 * threads {
        starts
            .into_par_iter()
            .map(|start| chunk(start, 1))
            .collect()
    } else {
        starts
            .into_iter()
            .map(|start| chunk(start, threads))
            .collect()
    }
}

/// `y = conv(x, w)`.
struct Forward(Geometry);

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
        let (pixels, ckk, image) = (g.pixels(), g.ckk(), g.c * g.h * g.w);
        let parts = per_chunk(&g, |gc, start, threads| {
            let width = gc.n * pixels;
            let cols = im2col(&x[start * image..(start + gc.n) * image], &gc);
            let mut y = vec![0f32; g.o * width];
            gemm(
                (g.o, width, ckk),
                &mut y,
                w,
                (ckk, 1),
                &cols,
                (width, 1),
                threads,
            );
            to_image_major(&y, gc.n, g.o, pixels)
        });
        Ok((
            CpuStorage::F32(parts.concat()),
            Shape::from((g.n, g.o, g.oh(), g.ow())),
        ))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
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

/// `dx` from `dy` and `w`: `wᵀ · dy`, folded back onto the images.
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
        let (pixels, ckk, out) = (g.pixels(), g.ckk(), g.o * g.pixels());
        let parts = per_chunk(&g, |gc, start, threads| {
            let width = gc.n * pixels;
            let dy = to_channel_major(&dy[start * out..(start + gc.n) * out], gc.n, g.o, pixels);
            let mut dcols = vec![0f32; ckk * width];
            gemm(
                (ckk, width, g.o),
                &mut dcols,
                w,
                (1, ckk),
                &dy,
                (width, 1),
                threads,
            );
            col2im(&dcols, &gc)
        });
        Ok((
            CpuStorage::F32(parts.concat()),
            Shape::from((g.n, g.c, g.h, g.w)),
        ))
    }
}

/// `dw` from `x` and `dy`: `Σ dy · colsᵀ` over the chunks of the batch, in chunk order.
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
        let (pixels, ckk, image, out) = (g.pixels(), g.ckk(), g.c * g.h * g.w, g.o * g.pixels());
        let parts = per_chunk(&g, |gc, start, threads| {
            let width = gc.n * pixels;
            let cols = im2col(&x[start * image..(start + gc.n) * image], &gc);
            let dy = to_channel_major(&dy[start * out..(start + gc.n) * out], gc.n, g.o, pixels);
            let mut dw = vec![0f32; g.o * ckk];
            gemm(
                (g.o, ckk, width),
                &mut dw,
                &dy,
                (width, 1),
                &cols,
                (1, width),
                threads,
            );
            dw
        });
        let mut total = vec![0f32; g.o * ckk];
        for part in &parts {
            total.iter_mut().zip(part).for_each(|(t, v)| *t += v);
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
        candle_core::bail!(
            "conv2d: input {:?} and kernel {:?} do not match",
            x.dims(),
            w.dims()
        )
    }
    let g = Geometry {
        n,
        c,
        h,
        w: wd,
        o,
        k,
        stride,
        pad,
    };
    x.contiguous()?.apply_op2(&w.contiguous()?, Forward(g))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::max_rel_err;
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
        let g_ours = (&ours * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let g_theirs = (&theirs * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
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
    fn the_weight_gradient_does_not_depend_on_the_thread_count() {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (40, 3, 8, 8), &dev).unwrap();
        let dy = Tensor::randn(0f32, 1.0, (40, 4, 8, 8), &dev).unwrap();
        let g = Geometry {
            n: 40,
            c: 3,
            h: 8,
            w: 8,
            o: 4,
            k: 3,
            stride: 1,
            pad: 1,
        };
        let run = |threads: &str| {
            std::env::set_var("RAYON_NUM_THREADS", threads);
            let dw = x.apply_op2_no_bwd(&dy, &WeightGrad(g)).unwrap();
            dw.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        };
        let (one, three) = (run("1"), run("3"));
        std::env::remove_var("RAYON_NUM_THREADS");
        assert_eq!(one, three);
    }
}
