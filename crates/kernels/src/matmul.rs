//! The f32 matrix products under the convolutions' im2col path ([`conv`](crate::conv)) and
//! the dense layers: [`gemm`], [`gemm_into`] and [`product`] call the `gemm` crate (the
//! kernels candle's CPU matmul uses, with its AVX-512 ones enabled by the `x86-v4` feature and
//! chosen at run time) with explicit strides, so transposed operands are read in place;
//! [`gemm_nt`] is our own kernel for the one shape that crate handles badly.
//!
//! An operand is `(values, (row stride, column stride))`; `dims` are `(m, n, k)` for a
//! product of `m × k` by `k × n`. `threads > 1` splits a product over rayon's pool.

use std::mem::MaybeUninit;
use std::ops::Range;

use crate::cpu::Cpu;

/// `dst (m × n) = lhs (m × k) · rhs (k × n)`, all f32, with explicit row and column strides;
/// `dst` is dense and row-major and is overwritten.
pub fn gemm(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    lhs: (&[f32], (usize, usize)),
    rhs: (&[f32], (usize, usize)),
    threads: usize,
) {
    gemm_into((m, n, k), (dst, (n, 1)), lhs, rhs, threads)
}

/// [`gemm`] into a new dense row-major `m × n` matrix, which the product writes whole (it is
/// not zero-filled first: a dense layer's weight gradient is 0.3 M floats on the seed's MLP).
pub fn product(
    (m, n, k): (usize, usize, usize),
    lhs: (&[f32], (usize, usize)),
    rhs: (&[f32], (usize, usize)),
    threads: usize,
) -> Vec<f32> {
    let len = m * n;
    let mut dst = Vec::with_capacity(len);
    gemm_into_uninit(
        (m, n, k),
        (&mut dst.spare_capacity_mut()[..len], (n, 1)),
        lhs,
        rhs,
        threads,
    );
    // SAFETY: the product wrote all `m · n` elements its dense strides address.
    unsafe { dst.set_len(len) };
    dst
}

/// [`gemm`] with `dst`'s row and column strides given too. The kernels run fastest when the
/// operand along `dst`'s contiguous dimension is contiguous along it as well, so callers
/// choose `dst`'s layout by that. Measured on one thread for the conv weight gradient
/// (`o × ckk × width` = 64 × 576 × 512): 45–69 GFLOP/s with both operands contiguous along
/// the sum, 126–165 GFLOP/s with `dst` and `dy` both contiguous along `o`.
pub(crate) fn gemm_into(
    dims: (usize, usize, usize),
    (dst, dst_strides): (&mut [f32], (usize, usize)),
    lhs: (&[f32], (usize, usize)),
    rhs: (&[f32], (usize, usize)),
    threads: usize,
) {
    // SAFETY: `dst` is an exclusively borrowed slice of `dst.len()` floats.
    unsafe {
        gemm_raw(
            dims,
            (dst.as_mut_ptr(), dst.len(), dst_strides),
            lhs,
            rhs,
            threads,
        )
    }
}

/// [`gemm_into`] into memory not yet initialised: the product writes every element of the
/// `m × n` matrix its strides address (and reads none of `dst`), so a caller whose strides
/// cover all of `dst` may take it as initialised afterwards.
pub(crate) fn gemm_into_uninit(
    dims: (usize, usize, usize),
    (dst, dst_strides): (&mut [MaybeUninit<f32>], (usize, usize)),
    lhs: (&[f32], (usize, usize)),
    rhs: (&[f32], (usize, usize)),
    threads: usize,
) {
    // SAFETY: `dst` is an exclusively borrowed slice of `dst.len()` floats (`MaybeUninit<f32>`
    // has the layout of `f32`), and the product only writes it.
    unsafe {
        gemm_raw(
            dims,
            (dst.as_mut_ptr().cast(), dst.len(), dst_strides),
            lhs,
            rhs,
            threads,
        )
    }
}

/// [`gemm_into`] adding the product to `dst` (`dst += lhs · rhs`) instead of overwriting it.
pub(crate) fn gemm_add_into(
    dims: (usize, usize, usize),
    (dst, dst_strides): (&mut [f32], (usize, usize)),
    lhs: (&[f32], (usize, usize)),
    rhs: (&[f32], (usize, usize)),
    threads: usize,
) {
    // SAFETY: `dst` is an exclusively borrowed slice of `dst.len()` initialised floats.
    unsafe {
        gemm_raw_with(
            dims,
            (dst.as_mut_ptr(), dst.len(), dst_strides),
            lhs,
            rhs,
            threads,
            true,
        )
    }
}

/// The product of [`gemm_into`] into `dst_len` floats at `dst`, after checking that the
/// strides stay inside every buffer.
///
/// # Safety
///
/// `dst` must be valid for writes of `dst_len` floats, and nothing else may read or write
/// them during the call.
unsafe fn gemm_raw(
    dims: (usize, usize, usize),
    dst: (*mut f32, usize, (usize, usize)),
    lhs: (&[f32], (usize, usize)),
    rhs: (&[f32], (usize, usize)),
    threads: usize,
) {
    // SAFETY: as the caller vouches; without `add`, `dst` is only written.
    unsafe { gemm_raw_with(dims, dst, lhs, rhs, threads, false) }
}

/// [`gemm_raw`], adding the product to `dst` with `add`.
///
/// # Safety
///
/// As [`gemm_raw`]; with `add`, the `dst_len` floats must also be initialised.
unsafe fn gemm_raw_with(
    (m, n, k): (usize, usize, usize),
    (dst, dst_len, (dst_rs, dst_cs)): (*mut f32, usize, (usize, usize)),
    (lhs, (lhs_rs, lhs_cs)): (&[f32], (usize, usize)),
    (rhs, (rhs_rs, rhs_cs)): (&[f32], (usize, usize)),
    threads: usize,
    add: bool,
) {
    // The index of the last element a matrix's strides address (checked: a wrapped product
    // must not slip past the asserts).
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| {
        (rows.max(1) - 1)
            .checked_mul(rs)
            .and_then(|r| {
                (cols.max(1) - 1)
                    .checked_mul(cs)
                    .and_then(|c| r.checked_add(c))
            })
            .expect("gemm: strides overflow")
    };
    if m.checked_mul(n).expect("gemm: size overflows") > 0 {
        assert!(last(m, n, dst_rs, dst_cs) < dst_len, "gemm: dst too short");
        assert!(
            k == 0 || last(m, k, lhs_rs, lhs_cs) < lhs.len(),
            "gemm: lhs too short"
        );
        assert!(
            k == 0 || last(k, n, rhs_rs, rhs_cs) < rhs.len(),
            "gemm: rhs too short"
        );
    }
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the asserts above check that every element the strides address lies inside its
    // buffer; the caller vouches that `dst` holds `dst_len` floats that only this call
    // touches, and with `read_dst` false the product only writes them (with `add`, the
    // caller vouches that they are initialised).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            dst_cs as isize,
            dst_rs as isize,
            add,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            // `dst = alpha · dst + beta · lhs · rhs`, alpha read only with `read_dst`.
            if add { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// Lanes per accumulator, and the tile of [`gemm_nt`]: `ROWS` rows of `x` against `OUTS` rows
/// of `w`, `ROWS · OUTS` accumulators (24 of 32 vector registers with AVX-512, 11 loads for
/// 24 multiply-adds).
const LANES: usize = 16;
const ROWS: usize = 8;
const OUTS: usize = 3;

/// `y (rows × outs) = x (rows × k) · wᵀ` for `w` of `outs × k`, both contiguous along `k`:
/// a dense layer's forward. The `gemm` crate handles this shape (a long sum, a small output:
/// the MLP's first layer is 64 × 24 × 12,288) at ≈ 30 GFLOP/s on one thread and slower on
/// two, since both operands run along the sum and it blocks and packs for large outputs; no
/// crate we can reach has a kernel for it, so here it is by hand: a tile of dot products with
/// vector-wide accumulators, whole sums in a fixed order (the result does not depend on the
/// thread count), parallel over blocks of rows: the AVX-512 tile where `cpu` has it, the same
/// sums in portable code elsewhere.
pub fn gemm_nt(
    (rows, outs, k): (usize, usize, usize),
    y: &mut [f32],
    x: &[f32],
    w: &[f32],
    cpu: Cpu,
) {
    use rayon::prelude::*;
    assert!(y.len() >= rows * outs && x.len() >= rows * k && w.len() >= outs * k);
    if rows * outs == 0 {
        return;
    }
    let threads = cpu.threads();
    // Whole tiles of rows per thread; which thread takes a row changes no sum.
    let tiles = rows.div_ceil(ROWS);
    let per_thread = tiles.div_ceil(threads.max(1)) * ROWS;
    let groups = y[..rows * outs].chunks_mut(per_thread * outs).enumerate();
    let group = |(g, y): (usize, &mut [f32])| {
        let first = g * per_thread;
        rows_group(
            first..(first + per_thread).min(rows),
            (rows, outs, k),
            y,
            x,
            w,
            cpu,
        )
    };
    if threads > 1 {
        groups.collect::<Vec<_>>().into_par_iter().for_each(group);
    } else {
        groups.for_each(group);
    }
}

/// One tile's accumulators: `ROWS × OUTS` vectors of `LANES` partial sums.
type Acc = [[[f32; LANES]; OUTS]; ROWS];

/// Adds `x[i][at] · w[j][at]` over `range` (whole vectors) to the tile's accumulators, with
/// AVX-512 fused multiply-adds, the 24 accumulators held in registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn tile_avx512(xs: &[&[f32]; ROWS], ws: &[&[f32]; OUTS], range: Range<usize>, acc: &mut Acc) {
    use std::arch::x86_64::*;
    assert!(range.len().is_multiple_of(LANES));
    assert!(xs.iter().chain(ws).all(|row| row.len() >= range.end));
    let xp: [*const f32; ROWS] = std::array::from_fn(|i| xs[i].as_ptr());
    let wp: [*const f32; OUTS] = std::array::from_fn(|j| ws[j].as_ptr());
    let mut regs = [[_mm512_setzero_ps(); OUTS]; ROWS];
    for i in 0..ROWS {
        for j in 0..OUTS {
            // SAFETY: an accumulator is LANES floats.
            regs[i][j] = unsafe { _mm512_loadu_ps(acc[i][j].as_ptr()) };
        }
    }
    for at in range.step_by(LANES) {
        // SAFETY: `at + LANES <= range.end`, and every row is at least that long (asserted
        // above), so each load reads LANES floats inside its row.
        unsafe {
            let mut wv = [_mm512_setzero_ps(); OUTS];
            for j in 0..OUTS {
                wv[j] = _mm512_loadu_ps(wp[j].add(at));
            }
            for i in 0..ROWS {
                let xv = _mm512_loadu_ps(xp[i].add(at));
                for j in 0..OUTS {
                    regs[i][j] = _mm512_fmadd_ps(xv, wv[j], regs[i][j]);
                }
            }
        }
    }
    for i in 0..ROWS {
        for j in 0..OUTS {
            // SAFETY: as for the loads.
            unsafe { _mm512_storeu_ps(acc[i][j].as_mut_ptr(), regs[i][j]) };
        }
    }
}

/// [`tile_avx512`] on any CPU: the same sums in the same order, without fused rounding.
fn tile_portable(xs: &[&[f32]; ROWS], ws: &[&[f32]; OUTS], range: Range<usize>, acc: &mut Acc) {
    for at in range.step_by(LANES) {
        for i in 0..ROWS {
            for j in 0..OUTS {
                let (xv, wv) = (&xs[i][at..at + LANES], &ws[j][at..at + LANES]);
                for l in 0..LANES {
                    acc[i][j][l] += xv[l] * wv[l];
                }
            }
        }
    }
}

/// The sum is taken in blocks of this many elements, each block of every tile in turn, so that
/// the block of `w` (all outputs) and of `x` (this thread's rows) stay in cache while they are
/// used: `w` is read once per thread rather than once per tile of rows.
const K_BLOCK: usize = 512;

/// Rows `range` of `y` (`y` is those rows).
fn rows_group(
    range: Range<usize>,
    (rows, outs, k): (usize, usize, usize),
    y: &mut [f32],
    x: &[f32],
    w: &[f32],
    cpu: Cpu,
) {
    // Rows and outputs past the end repeat the last one; their results are dropped.
    let row_tiles: Vec<[&[f32]; ROWS]> = range
        .clone()
        .step_by(ROWS)
        .map(|r0| {
            std::array::from_fn(|i| {
                let r = (r0 + i).min(rows - 1);
                &x[r * k..(r + 1) * k]
            })
        })
        .collect();
    let out_tiles: Vec<[&[f32]; OUTS]> = (0..outs)
        .step_by(OUTS)
        .map(|o0| {
            std::array::from_fn(|j| {
                let o = (o0 + j).min(outs - 1);
                &w[o * k..(o + 1) * k]
            })
        })
        .collect();
    let mut accs = vec![[[[0f32; LANES]; OUTS]; ROWS]; row_tiles.len() * out_tiles.len()];
    let whole = k / LANES * LANES;
    for start in (0..whole).step_by(K_BLOCK) {
        let block = start..(start + K_BLOCK).min(whole);
        let mut acc = accs.iter_mut();
        for xs in &row_tiles {
            for ws in &out_tiles {
                let acc = acc.next().expect("one accumulator per pair of tiles");
                #[cfg(target_arch = "x86_64")]
                if cpu.avx512f() {
                    // SAFETY: `Cpu` says AVX-512F only where it detected it.
                    unsafe { tile_avx512(xs, ws, block.clone(), acc) };
                    continue;
                }
                tile_portable(xs, ws, block.clone(), acc);
            }
        }
    }
    let mut acc = accs.iter();
    for (t, xs) in row_tiles.iter().enumerate() {
        for (u, ws) in out_tiles.iter().enumerate() {
            let acc = acc.next().expect("one accumulator per pair of tiles");
            let (r0, o0) = (t * ROWS, u * OUTS);
            for i in 0..ROWS.min(range.len() - r0) {
                for j in 0..OUTS.min(outs - o0) {
                    let tail: f32 = (whole..k).map(|at| xs[i][at] * ws[j][at]).sum();
                    y[(r0 + i) * outs + o0 + j] = acc[i][j].iter().sum::<f32>() + tail;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemm_nt_matches_a_float64_product() {
        let mut seed = 7u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        };
        for &(rows, outs, k) in &[
            (1, 1, 1),
            (5, 7, 33),
            (64, 24, 12288),
            (3, 100, 15),
            (9, 2, 64),
        ] {
            let x: Vec<f32> = (0..rows * k).map(|_| next()).collect();
            let w: Vec<f32> = (0..outs * k).map(|_| next()).collect();
            let cpus = [1, 2].map(Cpu::detect);
            for cpu in cpus.into_iter().flat_map(|cpu| [cpu, cpu.portable()]) {
                let mut y = vec![f32::NAN; rows * outs];
                gemm_nt((rows, outs, k), &mut y, &x, &w, cpu);
                for r in 0..rows {
                    for o in 0..outs {
                        let exact: f64 = (0..k)
                            .map(|i| x[r * k + i] as f64 * w[o * k + i] as f64)
                            .sum();
                        let scale = (k as f64).sqrt() * 0.25;
                        let err = (y[r * outs + o] as f64 - exact).abs() / scale;
                        assert!(
                            err < 1e-5,
                            "{rows}×{outs}×{k} [{r}, {o}]: {} vs {exact}",
                            y[r * outs + o]
                        );
                    }
                }
            }
        }
    }
}
