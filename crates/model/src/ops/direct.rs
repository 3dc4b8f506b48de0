//! A direct convolution for the shape most of a ResNet's products have: stride 1 and "same"
//! padding (`pad = k / 2`, odd `k`, the output as large as the input), on CPUs with AVX-512F.
//!
//! The im2col path ([`conv`](crate::ops::conv)) unfolds each image into a `c·k² × pixels`
//! matrix and hands it to the `gemm` crate, which copies it once more into its packed layout:
//! on the seed's ResNet the unfolding, the packing and the transposes around the product were
//! ≈ 20% of a training step. With stride 1, the input that kernel offset `(di, dj)` reads for
//! 16 consecutive output pixels is 16 consecutive input pixels shifted by `di · w + dj`, except
//! the pixels whose window leaves the picture. So the kernel here loads those 16 values
//! straight from the image with a masked load (the mask zeroes the pixels outside, and masked
//! lanes are never read), multiplies them by 8 output channels' weights at once, and writes
//! the output in the tensor's own layout: no unfolded copy, no packing, no transpose.
//!
//! The input gradient of such a convolution is the same convolution of the output gradient
//! with the kernel flipped and its two channel axes swapped, so [`input_grad`] runs the same
//! kernel. No crate we can reach has this kernel (the `gemm` crate only multiplies matrices
//! it is given), so it is written here.
//!
//! The weight gradient of every convolution (any stride and padding) has its own kernel,
//! [`weight_grad_add`]: it reads a zero-padded copy of the images instead of unfolding them,
//! and runs its vectors along the output channels of the transposed output gradient.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::ops::conv::{Epilogue, Geometry};

/// Lanes of a vector: pixels per masked load.
const LANES: usize = 16;
/// Output channels per tile: 8 broadcast weights per kernel offset.
const OUTS: usize = 8;
/// Pixel vectors per tile: `OUTS · VECS` = 24 accumulators of the 32 vector registers.
const VECS: usize = 3;
/// The smallest picture the kernel takes: on 4×4 pictures (one vector per image) it ran at
/// 0.85× the im2col path (221 against 258 GFLOP/s for 256 channels on 2 threads), on 8×8
/// and 16×16 at 1.1–1.2× (275–295 against 240–260).
const MIN_PIXELS: usize = 64;
/// Input channels per pass over the tiles: a block of 8 output channels' weights for them
/// (`9 · 64 · 8` floats for a 3×3 kernel) and a tile's inputs stay in the first-level cache.
/// Deeper layers (256 channels of 4×4 pictures) ran at 2/3 of the rate without it.
const CHANNEL_BLOCK: usize = 64;

/// Whether [`forward`] and [`input_grad`] handle `g` on this CPU.
pub(crate) fn supports(g: &Geometry) -> bool {
    g.stride == 1 && g.k % 2 == 1 && g.pad == g.k / 2 && g.h * g.w >= MIN_PIXELS && avx512()
}

/// Whether [`weight_grad_add`] runs on this CPU (any geometry).
pub(crate) fn supports_weight_grad() -> bool {
    avx512()
}

fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// For one position of a 16-pixel vector in the plane and one kernel offset: which lanes read
/// inside the picture, and how far the input they read is from the output pixels.
#[derive(Debug, Clone, Copy)]
struct Shift {
    mask: u16,
    offset: isize,
}

/// The shape the kernel runs over: `planes` input channels of `h × w` pixels, `outs` output
/// channels, a `k × k` kernel with stride 1 and padding `k / 2`.
struct Plan {
    h: usize,
    w: usize,
    k: usize,
    /// Vectors per plane (the last may be partial).
    vectors: usize,
    /// `shifts[v * k² + s]`: vector `v` of the plane at kernel offset `s`.
    shifts: Vec<Shift>,
    /// `tails[v]`: the lanes of vector `v` inside the plane.
    tails: Vec<u16>,
}

impl Plan {
    fn new(h: usize, w: usize, k: usize) -> Self {
        let plane = h * w;
        let vectors = plane.div_ceil(LANES);
        let pad = (k / 2) as isize;
        let mut shifts = Vec::with_capacity(vectors * k * k);
        let mut tails = Vec::with_capacity(vectors);
        for v in 0..vectors {
            let mut tail = 0u16;
            for lane in 0..LANES {
                if v * LANES + lane < plane {
                    tail |= 1 << lane;
                }
            }
            tails.push(tail);
            for ki in 0..k {
                for kj in 0..k {
                    let (di, dj) = (ki as isize - pad, kj as isize - pad);
                    let mut mask = 0u16;
                    for lane in 0..LANES {
                        let p = v * LANES + lane;
                        if p >= plane {
                            continue;
                        }
                        let (y, x) = ((p / w) as isize, (p % w) as isize);
                        if (0..h as isize).contains(&(y + di))
                            && (0..w as isize).contains(&(x + dj))
                        {
                            mask |= 1 << lane;
                        }
                    }
                    shifts.push(Shift {
                        mask,
                        offset: di * w as isize + dj,
                    });
                }
            }
        }
        Self {
            h,
            w,
            k,
            vectors,
            shifts,
            tails,
        }
    }
}

/// `w` (`o × c × k²`) repacked for the kernel: `[o / OUTS][k²][c][OUTS]`, the missing output
/// channels of the last block zero.
fn pack_weights(w: &[f32], o: usize, c: usize, kk: usize) -> Vec<f32> {
    let blocks = o.div_ceil(OUTS);
    let mut packed = vec![0f32; blocks * c * kk * OUTS];
    for oc in 0..o {
        let (block, j) = (oc / OUTS, oc % OUTS);
        for ch in 0..c {
            for s in 0..kk {
                packed[((block * kk + s) * c + ch) * OUTS + j] = w[(oc * c + ch) * kk + s];
            }
        }
    }
    packed
}

/// `y = conv(x, w)` for `x` of `g.n × g.c × h × w` and `w` of `g.o × g.c × k × k`, then the
/// epilogue if there is one, applied to each vector as it is stored: all of `y`
/// (`g.n × g.o × h × w`) is written. [`supports`] must hold for `g`.
pub(crate) fn forward(
    x: &[f32],
    w: &[f32],
    g: &Geometry,
    epilogue: Option<&Epilogue>,
    y: &mut [MaybeUninit<f32>],
) {
    let kk = g.k * g.k;
    if let Some(e) = epilogue {
        assert!(e.scale.len() == g.o && e.shift.len() == g.o);
    }
    run(
        x,
        &pack_weights(w, g.o, g.c, kk),
        (g.c, g.o),
        g,
        epilogue,
        y,
    );
}

/// `dx` for `dy` (`g.n × g.o × h × w`) and `w` (`g.o × g.c × k × k`): the convolution of `dy`
/// with `w` flipped in both spatial axes and its channel axes swapped. All of `dx`
/// (`g.n × g.c × h × w`) is written. [`supports`] must hold for `g`.
pub(crate) fn input_grad(dy: &[f32], w: &[f32], g: &Geometry, dx: &mut [MaybeUninit<f32>]) {
    let kk = g.k * g.k;
    let mut flipped = vec![0f32; w.len()];
    for oc in 0..g.o {
        for ch in 0..g.c {
            for s in 0..kk {
                flipped[(ch * g.o + oc) * kk + (kk - 1 - s)] = w[(oc * g.c + ch) * kk + s];
            }
        }
    }
    run(
        dy,
        &pack_weights(&flipped, g.c, g.o, kk),
        (g.o, g.c),
        g,
        None,
        dx,
    );
}

/// `out (n × outs × plane) = conv(input (n × ins × plane), packed weights)`.
fn run(
    input: &[f32],
    packed: &[f32],
    (ins, outs): (usize, usize),
    g: &Geometry,
    epilogue: Option<&Epilogue>,
    out: &mut [MaybeUninit<f32>],
) {
    assert!(supports(g), "direct conv: an unsupported geometry {g:?}");
    let plan = Plan::new(g.h, g.w, g.k);
    let plane = g.h * g.w;
    assert_eq!(input.len(), g.n * ins * plane);
    assert_eq!(out.len(), g.n * outs * plane);
    assert_eq!(packed.len(), outs.div_ceil(OUTS) * ins * g.k * g.k * OUTS);
    // Whole images per parallel task: `VECS` of them make whole tiles of any picture size
    // (one image when its vectors already do), and leave enough tasks to balance the threads.
    let per_task = if plan.vectors.is_multiple_of(VECS) {
        1
    } else {
        VECS
    };
    out.par_chunks_mut(per_task * outs * plane)
        .enumerate()
        .for_each(|(task, out)| {
            let first = task * per_task;
            let images = out.len() / (outs * plane);
            let input = &input[first * ins * plane..(first + images) * ins * plane];
            // SAFETY: `supports` checked that the CPU has AVX-512F; the slices' lengths match
            // the plan (asserted above and in `images`).
            unsafe { task_avx512(input, packed, (ins, outs), &plan, epilogue, images, out) };
        });
}

/// One task: `images` whole images of `input` into `out`, every element written.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn task_avx512(
    input: &[f32],
    packed: &[f32],
    (ins, outs): (usize, usize),
    plan: &Plan,
    epilogue: Option<&Epilogue>,
    images: usize,
    out: &mut [MaybeUninit<f32>],
) {
    use std::arch::x86_64::*;
    let floor = _mm512_set1_ps(match epilogue {
        Some(Epilogue { relu: true, .. }) => 0.0,
        _ => f32::NEG_INFINITY,
    });
    let plane = plan.h * plan.w;
    let kk = plan.k * plan.k;
    assert!(input.len() >= images * ins * plane && out.len() >= images * outs * plane);
    // The task's vectors, image by image: (image, vector of the plane).
    let vectors: Vec<(usize, usize)> = (0..images)
        .flat_map(|i| (0..plan.vectors).map(move |v| (i, v)))
        .collect();
    let out_ptr = out.as_mut_ptr() as *mut f32;
    for c0 in (0..ins).step_by(CHANNEL_BLOCK) {
        let channels = c0..(c0 + CHANNEL_BLOCK).min(ins);
        for block in 0..outs.div_ceil(OUTS) {
            let weights = &packed[block * kk * ins * OUTS..(block + 1) * kk * ins * OUTS];
            let valid_outs = OUTS.min(outs - block * OUTS);
            for tile in vectors.chunks(VECS) {
                let mut acc = [[_mm512_setzero_ps(); OUTS]; VECS];
                let n = tile.len();
                // The first channel's plane of each vector (a short tile repeats its last vector;
                // those sums are dropped).
                let mut bases = [std::ptr::null::<f32>(); VECS];
                for (t, base) in bases.iter_mut().enumerate() {
                    let (i, v) = tile[t.min(n - 1)];
                    *base = input[i * ins * plane + v * LANES..].as_ptr();
                }
                // Kernel offset by kernel offset, so that each vector's mask and shift stay in
                // registers while the loop runs over the channels.
                for s in 0..kk {
                    let mut shifts = [Shift { mask: 0, offset: 0 }; VECS];
                    for (t, shift) in shifts.iter_mut().enumerate() {
                        *shift = plan.shifts[tile[t.min(n - 1)].1 * kk + s];
                    }
                    let w_s = &weights
                        [(s * ins + channels.start) * OUTS..(s * ins + channels.end) * OUTS];
                    for (ch, w_ch) in (channels.clone()).zip(w_s.chunks_exact(OUTS)) {
                        let mut xv = [_mm512_setzero_ps(); VECS];
                        for t in 0..VECS {
                            // SAFETY: the lanes the mask keeps are pixels of plane `ch` of the
                            // vector's image (the plan checked `0 ≤ y + di < h`,
                            // `0 ≤ x + dj < w`); masked-off lanes are not read, so the address
                            // may lie outside.
                            xv[t] = unsafe {
                                _mm512_maskz_loadu_ps(
                                    shifts[t].mask,
                                    bases[t]
                                        .wrapping_add(ch * plane)
                                        .wrapping_offset(shifts[t].offset),
                                )
                            };
                        }
                        for j in 0..OUTS {
                            let wv = _mm512_set1_ps(w_ch[j]);
                            for t in 0..VECS {
                                acc[t][j] = _mm512_fmadd_ps(xv[t], wv, acc[t][j]);
                            }
                        }
                    }
                }
                for (t, &(i, v)) in tile.iter().enumerate() {
                    for (j, acc) in acc[t].iter().enumerate().take(valid_outs) {
                        let at = (i * outs + block * OUTS + j) * plane + v * LANES;
                        let tail = plan.tails[v];
                        // SAFETY: the tail mask keeps the lanes inside plane `(i, oc)` of `out`,
                        // which holds `images · outs · plane` floats (asserted above); the first
                        // block of channels wrote them before a later one reads them.
                        unsafe {
                            let mut sum = if c0 == 0 {
                                *acc
                            } else {
                                _mm512_add_ps(_mm512_maskz_loadu_ps(tail, out_ptr.add(at)), *acc)
                            };
                            if let (Some(e), true) = (epilogue, channels.end == ins) {
                                // As `Epilogue::apply`: a product and a sum, not fused, then
                                // the floor (−∞ without a ReLU).
                                let oc = block * OUTS + j;
                                let scaled = _mm512_mul_ps(sum, _mm512_set1_ps(e.scale[oc]));
                                sum = _mm512_add_ps(scaled, _mm512_set1_ps(e.shift[oc]));
                                sum = _mm512_max_ps(sum, floor);
                            }
                            _mm512_mask_storeu_ps(out_ptr.add(at), tail, sum)
                        };
                    }
                }
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn task_avx512(
    _input: &[f32],
    _packed: &[f32],
    _channels: (usize, usize),
    _plan: &Plan,
    _epilogue: Option<&Epilogue>,
    _images: usize,
    _out: &mut [MaybeUninit<f32>],
) {
    unreachable!("direct conv: `supports` is false without AVX-512F")
}

/// Rows of `dwᵀ` (kernel positions `(c, ki, kj)`) per tile of [`weight_grad_add`]: 8 rows
/// of 2 vectors are 16 accumulators, and their 8 pointers into the image stay in registers.
/// With 12 the compiler reloaded 4 pointers from the stack on every pixel (20 loads for 24
/// multiply-adds), and the ResNet step ran ≈ 3% slower (paired, 3 rounds; 10 rows: level
/// with 8).
const GRAD_ROWS: usize = 8;

/// `x` (`g.n × g.c × h × w`) with `g.pad` zeros around each plane, into `xpad`
/// (`g.n × g.c × (h + 2·pad) × (w + 2·pad)`, every element written): what
/// [`weight_grad_add`] reads, so that no window needs a bounds test.
pub(crate) fn pad_images(x: &[f32], g: &Geometry, xpad: &mut [f32]) {
    let (hp, wp) = (g.h + 2 * g.pad, g.w + 2 * g.pad);
    assert_eq!(x.len(), g.n * g.c * g.h * g.w);
    assert_eq!(xpad.len(), g.n * g.c * hp * wp);
    for (plane, out) in x.chunks(g.h * g.w).zip(xpad.chunks_mut(hp * wp)) {
        out[..g.pad * wp].fill(0.0);
        out[(g.pad + g.h) * wp..].fill(0.0);
        for (line, row) in plane.chunks(g.w).zip(out[g.pad * wp..].chunks_mut(wp)) {
            row[..g.pad].fill(0.0);
            row[g.pad..g.pad + g.w].copy_from_slice(line);
            row[g.pad + g.w..].fill(0.0);
        }
    }
}

/// `dwt += Σ dyᵀ · cols`: the weight gradient of a chunk of `g.n` images, as `ckk × o` (rows
/// `(c, ki, kj)`, the layout the caller transposes at the end), from the padded images
/// `xpad` ([`pad_images`]) and `dyt`, each image's output gradient transposed (`pixels × o`,
/// images one after another).
///
/// The im2col path unfolds the images (9× their size for a 3×3 kernel) for the `gemm`
/// crate, which copies them once more into its packed layout; on the seed's ResNet that
/// unfolding was ≈ 4.5% of a step and the packing ≈ 1.5%. Here a tile of `GRAD_ROWS` kernel positions × 32 output channels keeps its
/// sums in registers while it runs over the chunk's pixels: for each pixel, two vectors of
/// `dyt`'s row and, for each kernel position, one value of the padded image (at a fixed
/// offset from the pixel, so no bounds test), broadcast and multiplied into both. Vectors run
/// along the output channels, so no sum crosses lanes.
pub(crate) fn weight_grad_add(xpad: &[f32], dyt: &[f32], g: &Geometry, dwt: &mut [f32]) {
    let (hp, wp) = (g.h + 2 * g.pad, g.w + 2 * g.pad);
    let (kk, pixels) = (g.k * g.k, g.oh() * g.ow());
    let ckk = g.c * kk;
    assert_eq!(xpad.len(), g.n * g.c * hp * wp);
    assert_eq!(dyt.len(), g.n * pixels * g.o);
    assert_eq!(dwt.len(), ckk * g.o);
    assert!(
        avx512(),
        "direct conv: the weight gradient's kernel needs AVX-512F"
    );
    // Each kernel position's offset in a padded image; every window then lies inside it.
    let offsets: Vec<usize> = (0..ckk)
        .map(|r| {
            let (c, ki, kj) = (r / kk, (r % kk) / g.k, r % g.k);
            (c * hp + ki) * wp + kj
        })
        .collect();
    // SAFETY: `avx512` holds; the lengths are asserted above, and the kernel reads the padded
    // images only at a position's offset plus a window's origin, both inside an image.
    unsafe { weight_grad_avx512(xpad, dyt, g, &offsets, dwt) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn weight_grad_avx512(xpad: &[f32], dyt: &[f32], g: &Geometry, offsets: &[usize], dwt: &mut [f32]) {
    use std::arch::x86_64::*;
    let (hp, wp) = (g.h + 2 * g.pad, g.w + 2 * g.pad);
    let (oh, ow, o) = (g.oh(), g.ow(), g.o);
    let pixels = oh * ow;
    let image = g.c * hp * wp;
    // The furthest a window reaches from a position's offset, and from the image's start.
    let reach = ((oh - 1) * g.stride) * wp + (ow - 1) * g.stride;
    assert!(offsets.iter().all(|&off| off + reach < image));
    let mask = |lanes: usize| -> u16 {
        if lanes >= LANES {
            u16::MAX
        } else {
            (1u16 << lanes) - 1
        }
    };
    for r0 in (0..offsets.len()).step_by(GRAD_ROWS) {
        let rows = GRAD_ROWS.min(offsets.len() - r0);
        // A short tile repeats its last position; those sums are dropped.
        let mut off = [0usize; GRAD_ROWS];
        for (i, off) in off.iter_mut().enumerate() {
            *off = offsets[r0 + i.min(rows - 1)];
        }
        for o0 in (0..o).step_by(2 * LANES) {
            let (m0, m1) = (mask(o - o0), mask((o - o0).saturating_sub(LANES)));
            let mut acc = [[_mm512_setzero_ps(); 2]; GRAD_ROWS];
            for i in 0..g.n {
                let x = xpad[i * image..(i + 1) * image].as_ptr();
                let dy = dyt[i * pixels * o..(i + 1) * pixels * o].as_ptr();
                for y in 0..oh {
                    for xx in 0..ow {
                        let p = y * ow + xx;
                        let origin = y * g.stride * wp + xx * g.stride;
                        // SAFETY: `p · o + o0 + lane` for the masked lanes is inside this
                        // image's `pixels × o` block of `dyt`; `off + origin ≤ off + reach`
                        // lies inside the padded image (asserted above).
                        unsafe {
                            let d0 = _mm512_maskz_loadu_ps(m0, dy.add(p * o + o0));
                            let d1 = _mm512_maskz_loadu_ps(m1, dy.wrapping_add(p * o + o0 + LANES));
                            for t in 0..GRAD_ROWS {
                                let b = _mm512_set1_ps(*x.add(off[t] + origin));
                                acc[t][0] = _mm512_fmadd_ps(b, d0, acc[t][0]);
                                acc[t][1] = _mm512_fmadd_ps(b, d1, acc[t][1]);
                            }
                        }
                    }
                }
            }
            for (t, acc) in acc.iter().enumerate().take(rows) {
                let at = (r0 + t) * o + o0;
                // SAFETY: the masked lanes are columns `o0..o` of row `r0 + t` of `dwt`
                // (`ckk × o`, its length asserted by the caller).
                unsafe {
                    let out = dwt.as_mut_ptr().add(at);
                    let s0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, out), acc[0]);
                    _mm512_mask_storeu_ps(out, m0, s0);
                    let out = out.wrapping_add(LANES);
                    let s1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, out), acc[1]);
                    _mm512_mask_storeu_ps(out, m1, s1);
                }
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn weight_grad_avx512(
    _xpad: &[f32],
    _dyt: &[f32],
    _g: &Geometry,
    _offsets: &[usize],
    _dwt: &mut [f32],
) {
    unreachable!("direct conv: no AVX-512F here")
}
