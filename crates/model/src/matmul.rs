//! The one f32 matrix product under the CPU custom ops of [`conv`](crate::conv) and
//! [`dense`](crate::dense): the `gemm` crate (the same kernels candle's CPU matmul uses, with
//! its AVX-512 ones enabled), called with explicit strides so that transposed operands are
//! read in place rather than copied.

/// `dst (m × n) = lhs (m × k) · rhs (k × n)`, all f32, with explicit row and column strides;
/// `dst` is dense and row-major and is overwritten. `threads > 1` splits the product over
/// rayon's pool.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    lhs: &[f32],
    lhs_strides: (usize, usize),
    rhs: &[f32],
    rhs_strides: (usize, usize),
    threads: usize,
) {
    gemm_into(
        (m, n, k),
        (dst, (n, 1)),
        (lhs, lhs_strides),
        (rhs, rhs_strides),
        threads,
    )
}

/// [`gemm`] with `dst`'s row and column strides given too. The kernels run fastest when the
/// operand along `dst`'s contiguous dimension is contiguous along it as well, so callers
/// choose `dst`'s layout by that. Measured on one thread for the conv weight gradient
/// (`o × ckk × width` = 64 × 576 × 512): 45–69 GFLOP/s with both operands contiguous along
/// the sum, 126–165 GFLOP/s with `dst` and `dy` both contiguous along `o`.
pub(crate) fn gemm_into(
    (m, n, k): (usize, usize, usize),
    (dst, (dst_rs, dst_cs)): (&mut [f32], (usize, usize)),
    (lhs, (lhs_rs, lhs_cs)): (&[f32], (usize, usize)),
    (rhs, (rhs_rs, rhs_cs)): (&[f32], (usize, usize)),
    threads: usize,
) {
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| {
        (rows.max(1) - 1) * rs + (cols.max(1) - 1) * cs
    };
    if m * n > 0 {
        assert!(
            last(m, n, dst_rs, dst_cs) < dst.len(),
            "gemm: dst too short"
        );
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
    // slice, and `dst` is a distinct, exclusively borrowed slice.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_cs as isize,
            dst_rs as isize,
            false,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}
