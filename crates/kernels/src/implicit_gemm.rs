//! An implicit-gemm convolution: the forward and the input gradient of every convolution of
//! the seed's networks but the 1×1 forwards, on CPUs with AVX-512F ([`Kernel`] chooses).
//!
//! The im2col path unfolds the images, a window's zeros included, and the `gemm` crate
//! copies them once more into its packed layout. A kernel with its vectors along a plane's
//! pixels (the one this replaced) masks the lanes whose window leaves the picture (on a 4×4
//! picture a 3×3 kernel's masked lanes are a third of its work) and cannot express a stride
//! as a shifted load. Here the vectors run along the output channels: for each output pixel
//! the kernel walks a list of the input it reads (runs of consecutive values of an image
//! transposed to pixels × channels, each against consecutive rows of the packed weights), so
//! a window's taps outside the picture are not in the list and cost nothing, any stride is
//! only another list, and the input gradient of a strided convolution (a transposed
//! convolution) is one too. A tile of `IMAGES` images at the same pixel shares the list and
//! each weight vector. No crate we can reach has such a kernel (the `gemm` crate multiplies
//! the matrices it is given), so it is written here.
//!
//! [`Kernel`]: crate::conv::Kernel

use crate::cpu::Cpu;
use crate::geometry::{Epilogue, Geometry};

/// Lanes of a vector: output channels per vector.
const LANES: usize = 16;
/// Vectors of output channels per tile.
const VECS: usize = 2;
/// Output channels per tile.
pub(crate) const OUTS: usize = VECS * LANES;
/// Images per tile: `IMAGES × 2` = 16 accumulators, and the images' 8 pointers stay in
/// registers beside the weights' pointer and the run's index.
pub(crate) const IMAGES: usize = 8;

/// `len` consecutive rows of the packed weights from `row`, against `len` consecutive values
/// of a transposed image from `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    row: u32,
    at: u32,
    len: u32,
}

/// What one product reads: for each output pixel, its runs.
#[derive(Debug)]
pub(crate) struct Plan {
    /// Runs of output pixel `p`: `runs[starts[p]..starts[p + 1]]`.
    starts: Vec<usize>,
    runs: Vec<Run>,
    /// Rows of the packed weights (the product's inner dimension).
    rows: usize,
    /// Values of one transposed input image.
    image: usize,
    /// Output pixels.
    pixels: usize,
}

impl Plan {
    fn new(
        rows: usize,
        image: usize,
        pixels: usize,
        mut runs_of: impl FnMut(usize, &mut Vec<Run>),
    ) -> Self {
        assert!(
            rows <= u32::MAX as usize && image <= u32::MAX as usize,
            "implicit conv: an image or a kernel too large for the kernel's offsets"
        );
        let mut starts = Vec::with_capacity(pixels + 1);
        let mut runs = Vec::new();
        for p in 0..pixels {
            starts.push(runs.len());
            runs_of(p, &mut runs);
        }
        starts.push(runs.len());
        assert!(
            runs.iter().all(|r| r.row as usize + r.len as usize <= rows
                && r.at as usize + r.len as usize <= image),
            "implicit conv: a run outside the weights or the image"
        );
        Self {
            starts,
            runs,
            rows,
            image,
            pixels,
        }
    }

    /// Output pixels of one image.
    pub(crate) fn pixels(&self) -> usize {
        self.pixels
    }

    /// `y = conv(x, w)`: output pixel `(oy, ox)` reads, for each kernel row `ki` inside the
    /// picture, the kernel columns inside it as one run (consecutive pixels of the input row,
    /// all their channels), against the weights' rows `(ki, kj, c)`.
    pub(crate) fn forward(g: &Geometry) -> Self {
        let (k, c, s, pad) = (g.k, g.c, g.stride as isize, g.pad as isize);
        let ow = g.ow();
        Self::new(k * k * c, g.h * g.w * c, g.oh() * ow, |p, runs| {
            let (oy, ox) = ((p / ow) as isize, (p % ow) as isize);
            let kjs = inside(ox * s - pad, k, g.w);
            if kjs.is_empty() {
                return;
            }
            for ki in inside(oy * s - pad, k, g.h) {
                let (iy, ix) = (
                    (oy * s - pad) as usize + ki,
                    (ox * s - pad) as usize + kjs.start,
                );
                runs.push(Run {
                    row: ((ki * k + kjs.start) * c) as u32,
                    at: ((iy * g.w + ix) * c) as u32,
                    len: (kjs.len() * c) as u32,
                });
            }
        })
    }

    /// `dx` of `conv(x, w)`: input pixel `(iy, ix)` reads, for each kernel offset `(ki, kj)`
    /// that some output pixel `(oy, ox)` reaches it through (`oy · stride + ki − pad = iy`),
    /// that output pixel's gradient, all its channels, against the weights' rows `(ki, kj, o)`.
    pub(crate) fn input_grad(g: &Geometry) -> Self {
        let (k, o, s, pad) = (g.k, g.o, g.stride, g.pad);
        let (oh, ow) = (g.oh(), g.ow());
        Self::new(k * k * o, oh * ow * o, g.h * g.w, |q, runs| {
            let (iy, ix) = (q / g.w, q % g.w);
            // The output position that reaches input position `i` through kernel offset `ki`.
            let source = |i: usize, ki: usize, outputs: usize| {
                let at = i + pad;
                (at >= ki && (at - ki).is_multiple_of(s) && (at - ki) / s < outputs)
                    .then(|| (at - ki) / s)
            };
            for ki in 0..k {
                let Some(oy) = source(iy, ki, oh) else {
                    continue;
                };
                for kj in 0..k {
                    let Some(ox) = source(ix, kj, ow) else {
                        continue;
                    };
                    runs.push(Run {
                        row: ((ki * k + kj) * o) as u32,
                        at: ((oy * ow + ox) * o) as u32,
                        len: o as u32,
                    });
                }
            }
        })
    }
}

/// The offsets `0..k` of a window starting at `start` that land inside `0..size`.
fn inside(start: isize, k: usize, size: usize) -> std::ops::Range<usize> {
    let lo = (-start).clamp(0, k as isize) as usize;
    let hi = (size as isize - start).clamp(lo as isize, k as isize) as usize;
    lo..hi
}

/// `w` (`o × c × k × k`) packed for [`Plan::forward`]: `[o / OUTS][(ki, kj, c)][OUTS]`, the
/// missing output channels of the last block zero.
pub(crate) fn pack_forward(w: &[f32], g: &Geometry) -> Vec<f32> {
    let (c, kk) = (g.c, g.k * g.k);
    // Row `(s, ch)`, output channel `oc`: `w[(oc · c + ch) · kk + s]`.
    pack(w, (kk * c, g.o), |row| ((row % c) * kk + row / c, c * kk))
}

/// `w` packed for [`Plan::input_grad`]: `[c / OUTS][(ki, kj, o)][OUTS]`.
pub(crate) fn pack_input_grad(w: &[f32], g: &Geometry) -> Vec<f32> {
    let (c, o, kk) = (g.c, g.o, g.k * g.k);
    // Row `(s, oc)`, input channel `ch`: `w[(oc · c + ch) · kk + s]`.
    pack(w, (kk * o, c), |row| ((row % o) * c * kk + row / o, kk))
}

/// `w` packed as `[lanes / OUTS][rows][OUTS]`: `of(row)` gives where the row's first lane is
/// in `w` and how far apart its lanes are. The packing runs twice per layer and step (the
/// seed's ResNet packs ≈ 5 M weights a step), so its index arithmetic is per row: with a
/// row and a channel computed per weight the step ran ≈ 3% slower, and written in `w`'s
/// order (three divisions per weight, scattered stores) ≈ 10% slower.
fn pack(
    w: &[f32],
    (rows, lanes): (usize, usize),
    of: impl Fn(usize) -> (usize, usize),
) -> Vec<f32> {
    let mut packed = vec![0f32; lanes.div_ceil(OUTS) * rows * OUTS];
    for (b, block) in packed.chunks_mut(rows * OUTS).enumerate() {
        let first = b * OUTS;
        let count = OUTS.min(lanes - first);
        for (row, line) in block.chunks_mut(OUTS).enumerate() {
            let (start, step) = of(row);
            let from = start + first * step;
            for (j, v) in line[..count].iter_mut().enumerate() {
                *v = w[from + j * step];
            }
        }
    }
    packed
}

/// `out` (`images × plan.pixels × channels.len()`, every element written): output channels
/// `channels` (of `outs`; the range starts at a multiple of [`OUTS`]) from `xt` (`images`
/// transposed images of `plan.image` values, pixels × channels) and the packed weights, then
/// the epilogue if there is one; at most [`IMAGES`] images. Only where `cpu` has AVX-512F.
///
/// The output is pixels × channels like the input, each tile's vectors stored whole; the
/// caller transposes it. Scattering each vector into the tensor layout's planes instead cost
/// ≈ half the rate on layers with few rows per pixel (the 1×1 skips, the stem).
pub(crate) fn gathered(
    xt: &[f32],
    packed: &[f32],
    plan: &Plan,
    (outs, channels): (usize, std::ops::Range<usize>),
    epilogue: Option<&Epilogue>,
    out: &mut [f32],
    cpu: Cpu,
) {
    let width = channels.len();
    let images = out.len() / (width * plan.pixels).max(1);
    assert!(
        (1..=IMAGES).contains(&images),
        "implicit conv: 1 to {IMAGES} images per tile"
    );
    assert!(channels.start.is_multiple_of(OUTS) && channels.end <= outs);
    assert_eq!(out.len(), images * width * plan.pixels);
    assert!(xt.len() >= images * plan.image);
    assert_eq!(packed.len(), outs.div_ceil(OUTS) * plan.rows * OUTS);
    if let Some(e) = epilogue {
        assert!(e.scale.len() == outs && e.shift.len() == outs);
    }
    assert!(cpu.avx512f(), "implicit conv: the kernel needs AVX-512F");
    // SAFETY: the CPU has AVX-512F (`Cpu` says so only where it detected it); the lengths are asserted above and the plan's runs lie
    // inside the weights' rows and an image (asserted when it was built).
    unsafe { gathered_avx512(xt, packed, plan, (images, channels), epilogue, out) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn gathered_avx512(
    xt: &[f32],
    packed: &[f32],
    plan: &Plan,
    (images, channels): (usize, std::ops::Range<usize>),
    epilogue: Option<&Epilogue>,
    out: &mut [f32],
) {
    use std::arch::x86_64::*;
    let width = channels.len();
    let mask = |lanes: usize| -> u16 {
        if lanes >= LANES {
            u16::MAX
        } else {
            (1u16 << lanes) - 1
        }
    };
    let floor = _mm512_set1_ps(match epilogue {
        Some(Epilogue { relu: true, .. }) => 0.0,
        _ => f32::NEG_INFINITY,
    });
    // A short tile repeats its last image; those sums are dropped.
    let mut bases = [std::ptr::null::<f32>(); IMAGES];
    for (t, base) in bases.iter_mut().enumerate() {
        *base = xt[t.min(images - 1) * plan.image..].as_ptr();
    }
    let out_ptr = out.as_mut_ptr();
    for o0 in channels.clone().step_by(OUTS) {
        let weights = packed[o0 / OUTS * plan.rows * OUTS..].as_ptr();
        let mut m = [0u16; VECS];
        for (v, m) in m.iter_mut().enumerate() {
            *m = mask((channels.end - o0).saturating_sub(v * LANES));
        }
        let mut scale = [_mm512_set1_ps(1.0); VECS];
        let mut shift = [_mm512_setzero_ps(); VECS];
        if let Some(e) = epilogue {
            for v in 0..VECS {
                // SAFETY: the masked lanes are channels below `outs`, inside `e.scale` and
                // `e.shift` (asserted by the caller).
                unsafe {
                    let at = o0 + v * LANES;
                    scale[v] = _mm512_maskz_loadu_ps(m[v], e.scale.as_ptr().wrapping_add(at));
                    shift[v] = _mm512_maskz_loadu_ps(m[v], e.shift.as_ptr().wrapping_add(at));
                }
            }
        }
        for p in 0..plan.pixels {
            let mut acc = [[_mm512_setzero_ps(); VECS]; IMAGES];
            for run in &plan.runs[plan.starts[p]..plan.starts[p + 1]] {
                // SAFETY: rows `run.row..run.row + run.len` are inside this block of the
                // packed weights, and values `run.at..run.at + run.len` inside each image
                // (the plan asserted both).
                unsafe {
                    let w = weights.add(run.row as usize * OUTS);
                    let at = run.at as usize;
                    for r in 0..run.len as usize {
                        let mut wv = [_mm512_setzero_ps(); VECS];
                        for (v, wv) in wv.iter_mut().enumerate() {
                            *wv = _mm512_loadu_ps(w.add(r * OUTS + v * LANES));
                        }
                        for t in 0..IMAGES {
                            let x = _mm512_set1_ps(*bases[t].add(at + r));
                            for v in 0..VECS {
                                acc[t][v] = _mm512_fmadd_ps(x, wv[v], acc[t][v]);
                            }
                        }
                    }
                }
            }
            for (t, acc) in acc.iter().enumerate().take(images) {
                for (v, &sum) in acc.iter().enumerate() {
                    // As `Epilogue::apply`: a product and a sum, not fused, then the floor
                    // (−∞ without a ReLU); the identity without an epilogue.
                    let y = if epilogue.is_some() {
                        let scaled = _mm512_mul_ps(sum, scale[v]);
                        _mm512_max_ps(_mm512_add_ps(scaled, shift[v]), floor)
                    } else {
                        sum
                    };
                    // SAFETY: the masked lanes are channels of `channels` for pixel `p` of
                    // image `t`, inside `out` (asserted by the caller).
                    unsafe {
                        let at = (t * plan.pixels + p) * width + o0 - channels.start + v * LANES;
                        let at = out_ptr.wrapping_add(at);
                        _mm512_mask_storeu_ps(at, m[v], y)
                    };
                }
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn gathered_avx512(
    _xt: &[f32],
    _packed: &[f32],
    _plan: &Plan,
    _shape: (usize, std::ops::Range<usize>),
    _epilogue: Option<&Epilogue>,
    _out: &mut [f32],
) {
    unreachable!("implicit conv: no AVX-512F here")
}
