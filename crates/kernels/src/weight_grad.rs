//! The weight gradient of a convolution (any stride and padding), on CPUs with AVX-512F, its
//! vectors along the output channels of the transposed output gradient: [`channels_add`]
//! for layers whose channels come in whole tiles of 8 (reading the images transposed,
//! pixels × channels, and skipping the windows' taps outside the picture), [`padded_add`]
//! for the others (the stem's 3 channels; reading a zero-padded copy of the images, made by
//! [`pad_images`]). Neither unfolds the images. The forward and the input gradient have their
//! own kernel, [`implicit_gemm`](crate::implicit_gemm). No crate we can reach has these (the
//! `gemm` crate only multiplies matrices it is given), so they are written here.

use crate::cpu::Cpu;
use crate::geometry::{valid, Geometry};

/// Lanes of a vector: output channels per vector.
const LANES: usize = 16;

/// Rows of `dwᵀ` (kernel positions `(c, ki, kj)`) per tile of [`padded_add`]: 8 rows
/// of 2 vectors are 16 accumulators, and their 8 pointers into the image stay in registers.
/// With 12 the compiler reloaded 4 pointers from the stack on every pixel (20 loads for 24
/// multiply-adds), and the ResNet step ran ≈ 3% slower (paired, 3 rounds; 10 rows: level
/// with 8).
const GRAD_ROWS: usize = 8;

/// `x` (`g.n × g.c × h × w`) with `g.pad` zeros around each plane, into `xpad`
/// (`g.n × g.c × (h + 2·pad) × (w + 2·pad)`, every element written): what
/// [`padded_add`] reads, so that no window needs a bounds test.
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
/// along the output channels, so no sum crosses lanes. Only where `cpu` has AVX-512F.
pub(crate) fn padded_add(xpad: &[f32], dyt: &[f32], g: &Geometry, dwt: &mut [f32], cpu: Cpu) {
    let (hp, wp) = (g.h + 2 * g.pad, g.w + 2 * g.pad);
    let (kk, pixels) = (g.k * g.k, g.oh() * g.ow());
    let ckk = g.c * kk;
    assert_eq!(xpad.len(), g.n * g.c * hp * wp);
    assert_eq!(dyt.len(), g.n * pixels * g.o);
    assert_eq!(dwt.len(), ckk * g.o);
    assert!(cpu.avx512f(), "weight gradient: the kernel needs AVX-512F");
    // Each kernel position's offset in a padded image; every window then lies inside it.
    let offsets: Vec<usize> = (0..ckk)
        .map(|r| {
            let (c, ki, kj) = (r / kk, (r % kk) / g.k, r % g.k);
            (c * hp + ki) * wp + kj
        })
        .collect();
    // SAFETY: the CPU has AVX-512F (`Cpu` says so only where it detected it); the lengths are
    // asserted above, and the kernel reads the padded images only at a position's offset plus
    // a window's origin, both inside an image.
    unsafe { padded_avx512(xpad, dyt, g, &offsets, dwt) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn padded_avx512(xpad: &[f32], dyt: &[f32], g: &Geometry, offsets: &[usize], dwt: &mut [f32]) {
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

/// Channels per tile of [`channels_add`], and what their count must be a multiple of.
pub(crate) const CHANNEL_ROWS: usize = 8;
/// Vectors of output channels per tile of [`channels_add`].
const CHANNEL_VECS: usize = 2;

/// [`padded_add`] for layers whose channels are a multiple of [`CHANNEL_ROWS`], from
/// `xt`, the images transposed (`pixels × c` each, no padding): a tile is `CHANNEL_ROWS`
/// consecutive channels at one kernel offset × 32 output channels, and runs over the output
/// pixels whose window has that offset inside the picture (a rectangle of them), so the
/// padding's zeros cost nothing (a third of a 3×3 kernel's work on a 4×4 picture). The tile's
/// channels are consecutive values of the transposed image: one pointer, its broadcasts at
/// fixed offsets from it. Only where `cpu` has AVX-512F.
pub(crate) fn channels_add(xt: &[f32], dyt: &[f32], g: &Geometry, dwt: &mut [f32], cpu: Cpu) {
    let pixels = g.oh() * g.ow();
    assert!(g.c.is_multiple_of(CHANNEL_ROWS));
    assert_eq!(xt.len(), g.n * g.c * g.h * g.w);
    assert_eq!(dyt.len(), g.n * pixels * g.o);
    assert_eq!(dwt.len(), g.c * g.k * g.k * g.o);
    assert!(cpu.avx512f(), "weight gradient: the kernel needs AVX-512F");
    // SAFETY: the CPU has AVX-512F (`Cpu` says so only where it detected it); the lengths are
    // asserted above, and the kernel reads an image only at the input pixels of the valid
    // windows (`geometry::valid`).
    unsafe { channels_avx512(xt, dyt, g, dwt) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn channels_avx512(xt: &[f32], dyt: &[f32], g: &Geometry, dwt: &mut [f32]) {
    use std::arch::x86_64::*;
    let (oh, ow, o, k, c, stride) = (g.oh(), g.ow(), g.o, g.k, g.c, g.stride);
    let (image, pixels, kk) = (g.h * g.w * c, oh * ow, k * k);
    let mask = |lanes: usize| -> u16 {
        if lanes >= LANES {
            u16::MAX
        } else {
            (1u16 << lanes) - 1
        }
    };
    for s in 0..kk {
        let (ki, kj) = (s / k, s % k);
        let (di, dj) = (ki as isize - g.pad as isize, kj as isize - g.pad as isize);
        let (ys, xs) = (valid(oh, g.h, stride, di), valid(ow, g.w, stride, dj));
        if ys.is_empty() || xs.is_empty() {
            continue;
        }
        for c0 in (0..c).step_by(CHANNEL_ROWS) {
            for o0 in (0..o).step_by(CHANNEL_VECS * LANES) {
                let mut m = [0u16; CHANNEL_VECS];
                for (v, m) in m.iter_mut().enumerate() {
                    *m = mask((o - o0).saturating_sub(v * LANES));
                }
                let mut acc = [[_mm512_setzero_ps(); CHANNEL_VECS]; CHANNEL_ROWS];
                for i in 0..g.n {
                    for oy in ys.clone() {
                        let iy = ((oy * stride) as isize + di) as usize;
                        let ix = ((xs.start * stride) as isize + dj) as usize;
                        let mut x = xt[i * image + (iy * g.w + ix) * c + c0..].as_ptr();
                        let mut dy = dyt[(i * pixels + oy * ow + xs.start) * o + o0..].as_ptr();
                        for _ in xs.clone() {
                            // SAFETY: `x` is the tile's first channel at an input pixel of a
                            // valid window (`ys`, `xs`), and the tile's channels follow it;
                            // the masked lanes of `dy` are channels `o0..o` of an output
                            // pixel's gradient.
                            unsafe {
                                let mut d = [_mm512_setzero_ps(); CHANNEL_VECS];
                                for (v, d) in d.iter_mut().enumerate() {
                                    *d = _mm512_maskz_loadu_ps(m[v], dy.wrapping_add(v * LANES));
                                }
                                for (t, acc) in acc.iter_mut().enumerate() {
                                    let b = _mm512_set1_ps(*x.add(t));
                                    for v in 0..CHANNEL_VECS {
                                        acc[v] = _mm512_fmadd_ps(b, d[v], acc[v]);
                                    }
                                }
                            }
                            x = x.wrapping_add(stride * c);
                            dy = dy.wrapping_add(o);
                        }
                    }
                }
                for (t, acc) in acc.iter().enumerate() {
                    let at = ((c0 + t) * kk + s) * o + o0;
                    for v in 0..CHANNEL_VECS {
                        // SAFETY: the masked lanes are columns `o0..o` of row `(c0 + t, s)`
                        // of `dwt` (`ckk × o`, its length asserted by the caller).
                        unsafe {
                            let out = dwt.as_mut_ptr().wrapping_add(at + v * LANES);
                            let sum = _mm512_add_ps(_mm512_maskz_loadu_ps(m[v], out), acc[v]);
                            _mm512_mask_storeu_ps(out, m[v], sum);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn channels_avx512(_xt: &[f32], _dyt: &[f32], _g: &Geometry, _dwt: &mut [f32]) {
    unreachable!("weight gradient: no AVX-512F here")
}

#[cfg(not(target_arch = "x86_64"))]
fn padded_avx512(_xpad: &[f32], _dyt: &[f32], _g: &Geometry, _offsets: &[usize], _dwt: &mut [f32]) {
    unreachable!("weight gradient: no AVX-512F here")
}
