//! Changes of layout between the tensors' `n × channels × pixels` and what a kernel reads:
//! [`transpose`] (to the pixels × channels images of the implicit gemm and the weight
//! gradients, and back) and the im2col path's channel-major blocks ([`to_channel_major`],
//! [`to_image_major`]).

use std::mem::MaybeUninit;

use crate::cpu::Cpu;

/// `n × o × pixels` (the tensor layout) to `o × (n · pixels)` (the gemm layout).
pub(crate) fn to_channel_major(t: &[f32], n: usize, o: usize, pixels: usize, out: &mut [f32]) {
    for (ch, row) in out[..t.len()].chunks_mut(n * pixels).enumerate() {
        for (i, block) in row.chunks_mut(pixels).enumerate() {
            block.copy_from_slice(&t[(i * o + ch) * pixels..(i * o + ch + 1) * pixels]);
        }
    }
}

/// `o × (n · pixels)` back to `n × o × pixels`; writes all of `out` (`t.len()` values).
pub(crate) fn to_image_major(
    t: &[f32],
    n: usize,
    o: usize,
    pixels: usize,
    out: &mut [MaybeUninit<f32>],
) {
    assert_eq!(out.len(), t.len());
    for (i, image) in out.chunks_mut(o * pixels).enumerate() {
        for (ch, block) in image.chunks_mut(pixels).enumerate() {
            let src = &t[(ch * n + i) * pixels..(ch * n + i + 1) * pixels];
            for (d, s) in block.iter_mut().zip(src) {
                d.write(*s);
            }
        }
    }
}

/// `out (cols × rows) = tᵀ` for `t` of `rows × cols`, in tiles that stay in cache: 8×8 blocks
/// in AVX registers where `cpu` has AVX (the weight gradient transposes every `dy`; element
/// by element that was ≈ 3% of a ResNet step), the edges element by element.
pub(crate) fn transpose(t: &[f32], dims: (usize, usize), out: &mut [f32], cpu: Cpu) {
    // SAFETY: `MaybeUninit<f32>` has the layout of `f32`, and `transpose_uninit` writes only
    // initialised values.
    let out = unsafe { &mut *(out as *mut [f32] as *mut [MaybeUninit<f32>]) };
    transpose_uninit(t, dims, out, cpu);
}

/// [`transpose`] into memory that may be uninitialised: all of `out[..rows · cols]` is
/// written.
pub(crate) fn transpose_uninit(
    t: &[f32],
    (rows, cols): (usize, usize),
    out: &mut [MaybeUninit<f32>],
    cpu: Cpu,
) {
    assert!(t.len() >= rows * cols && out.len() >= rows * cols);
    let (mut r8, mut c8) = (0, 0);
    #[cfg(target_arch = "x86_64")]
    if cpu.avx() {
        (r8, c8) = (rows / 8 * 8, cols / 8 * 8);
        // SAFETY: the CPU has AVX (`Cpu` says so only where it detected it); the blocks lie
        // inside the first `r8` rows and `c8` columns of `t` and their transposes inside `out`
        // (both at least `rows · cols`, asserted).
        unsafe { transpose_blocks_avx(t, (rows, cols), (r8, c8), out) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = cpu;
    // What the blocks left: the columns from `c8` of the first `r8` rows, then the rows
    // from `r8` (all of `t` without AVX), in tiles.
    transpose_tiles(t, (rows, cols), (0..r8, c8..cols), out);
    transpose_tiles(t, (rows, cols), (r8..rows, 0..cols), out);
}

/// Rows `rs` × columns `cs` of [`transpose`], element by element in 16×16 tiles.
fn transpose_tiles(
    t: &[f32],
    (rows, cols): (usize, usize),
    (rs, cs): (std::ops::Range<usize>, std::ops::Range<usize>),
    out: &mut [MaybeUninit<f32>],
) {
    const TILE: usize = 16;
    for r0 in rs.clone().step_by(TILE) {
        for c0 in cs.clone().step_by(TILE) {
            for c in c0..(c0 + TILE).min(cs.end) {
                for r in r0..(r0 + TILE).min(rs.end) {
                    out[c * rows + r].write(t[r * cols + c]);
                }
            }
        }
    }
}

/// The 8×8 blocks of [`transpose`] over rows `0..r8` and columns `0..c8` (multiples of 8).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn transpose_blocks_avx(
    t: &[f32],
    (rows, cols): (usize, usize),
    (r8, c8): (usize, usize),
    out: &mut [MaybeUninit<f32>],
) {
    use std::arch::x86_64::*;
    assert!(r8 <= rows && c8 <= cols && t.len() >= rows * cols && out.len() >= rows * cols);
    for r0 in (0..r8).step_by(8) {
        for c0 in (0..c8).step_by(8) {
            // SAFETY: rows `r0..r0 + 8` and columns `c0..c0 + 8` are inside `t` (`r0 + 8 ≤ r8
            // ≤ rows`, `c0 + 8 ≤ c8 ≤ cols`), and their transpose inside `out`.
            unsafe {
                let row = |i: usize| _mm256_loadu_ps(t.as_ptr().add((r0 + i) * cols + c0));
                let (a0, a1, a2, a3) = (row(0), row(1), row(2), row(3));
                let (a4, a5, a6, a7) = (row(4), row(5), row(6), row(7));
                let (b0, b1) = (_mm256_unpacklo_ps(a0, a1), _mm256_unpackhi_ps(a0, a1));
                let (b2, b3) = (_mm256_unpacklo_ps(a2, a3), _mm256_unpackhi_ps(a2, a3));
                let (b4, b5) = (_mm256_unpacklo_ps(a4, a5), _mm256_unpackhi_ps(a4, a5));
                let (b6, b7) = (_mm256_unpacklo_ps(a6, a7), _mm256_unpackhi_ps(a6, a7));
                let c0v = _mm256_shuffle_ps::<0x44>(b0, b2);
                let c1v = _mm256_shuffle_ps::<0xEE>(b0, b2);
                let c2v = _mm256_shuffle_ps::<0x44>(b1, b3);
                let c3v = _mm256_shuffle_ps::<0xEE>(b1, b3);
                let c4v = _mm256_shuffle_ps::<0x44>(b4, b6);
                let c5v = _mm256_shuffle_ps::<0xEE>(b4, b6);
                let c6v = _mm256_shuffle_ps::<0x44>(b5, b7);
                let c7v = _mm256_shuffle_ps::<0xEE>(b5, b7);
                let dst = out.as_mut_ptr() as *mut f32;
                let store =
                    |j: usize, v: __m256| _mm256_storeu_ps(dst.add((c0 + j) * rows + r0), v);
                store(0, _mm256_permute2f128_ps::<0x20>(c0v, c4v));
                store(1, _mm256_permute2f128_ps::<0x20>(c1v, c5v));
                store(2, _mm256_permute2f128_ps::<0x20>(c2v, c6v));
                store(3, _mm256_permute2f128_ps::<0x20>(c3v, c7v));
                store(4, _mm256_permute2f128_ps::<0x31>(c0v, c4v));
                store(5, _mm256_permute2f128_ps::<0x31>(c1v, c5v));
                store(6, _mm256_permute2f128_ps::<0x31>(c2v, c6v));
                store(7, _mm256_permute2f128_ps::<0x31>(c3v, c7v));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_moves_every_element_for_any_shape() {
        for cpu in [Cpu::detect(1), Cpu::detect(1).portable()] {
            for (rows, cols) in [
                (1, 1),
                (8, 8),
                (16, 24),
                (9, 17),
                (64, 256),
                (3, 40),
                (37, 8),
            ] {
                let t: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
                let mut out = vec![f32::NAN; rows * cols];
                transpose(&t, (rows, cols), &mut out, cpu);
                for r in 0..rows {
                    for c in 0..cols {
                        assert_eq!(
                            out[c * rows + r],
                            t[r * cols + c],
                            "{rows}×{cols} [{r}, {c}] on {cpu:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_channel_major_blocks_go_there_and_back() {
        let (n, o, pixels) = (3, 4, 5);
        let t: Vec<f32> = (0..n * o * pixels).map(|i| i as f32).collect();
        let mut gemm = vec![f32::NAN; t.len()];
        to_channel_major(&t, n, o, pixels, &mut gemm);
        for (ch, i, p) in
            (0..o).flat_map(|ch| (0..n).flat_map(move |i| (0..pixels).map(move |p| (ch, i, p))))
        {
            assert_eq!(
                gemm[(ch * n + i) * pixels + p],
                t[(i * o + ch) * pixels + p]
            );
        }
        let mut back = vec![MaybeUninit::uninit(); t.len()];
        to_image_major(&gemm, n, o, pixels, &mut back);
        // SAFETY: `to_image_major` wrote every element.
        let back: Vec<f32> = back.iter().map(|v| unsafe { v.assume_init() }).collect();
        assert_eq!(back, t);
    }
}
