//! The weight gradient of a convolution (any stride and padding), on CPUs with AVX-512F:
//! [`weight_grad_add`] reads a zero-padded copy of the images instead of unfolding them, and
//! runs its vectors along the output channels of the transposed output gradient. The
//! forward and the input gradient have their own kernel, [`implicit`](crate::ops::implicit).
//! No crate we can reach has either (the `gemm` crate only multiplies matrices it is given),
//! so they are written here.

use crate::ops::conv::Geometry;

/// Lanes of a vector: output channels per vector.
const LANES: usize = 16;

/// Whether [`weight_grad_add`] runs on this CPU (any geometry).
pub(crate) fn supports_weight_grad() -> bool {
    crate::ops::avx512f()
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
        supports_weight_grad(),
        "direct conv: the weight gradient's kernel needs AVX-512F"
    );
    // Each kernel position's offset in a padded image; every window then lies inside it.
    let offsets: Vec<usize> = (0..ckk)
        .map(|r| {
            let (c, ki, kj) = (r / kk, (r % kk) / g.k, r % g.k);
            (c * hp + ki) * wp + kj
        })
        .collect();
    // SAFETY: the CPU has AVX-512F; the lengths are asserted above, and the kernel reads the padded
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
