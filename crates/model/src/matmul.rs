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
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: &[f32],
    (rhs_rs, rhs_cs): (usize, usize),
    threads: usize,
) {
    assert!(
        dst.len() >= m * n,
        "gemm: dst holds {} < {m} × {n}",
        dst.len()
    );
    if m * n > 0 {
        let last = |rows: usize, cols: usize, rs: usize, cs: usize| {
            (rows.max(1) - 1) * rs + (cols.max(1) - 1) * cs
        };
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
            1,
            n as isize,
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
