//! Element-wise ReLU kernels on CPU values, in parallel chunks: a residual block's
//! `relu(a + b)` ([`add_relu`], [`add_relu_in_place`]), a gradient through a ReLU from the
//! ReLU's output ([`relu_mask`], [`relu_mask_in_place`]) and a second gradient into a map
//! ([`add_in_place`]).

use rayon::prelude::*;

use crate::uninit::par_filled;

/// Elements per parallel task: large enough that scheduling costs nothing beside the work.
const CHUNK: usize = 1 << 14;

/// `f(a[i], b[i])` for every element, in parallel chunks.
fn zip_map(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) -> Vec<f32> {
    assert_eq!(a.len(), b.len(), "zip_map: operands of different lengths");
    // SAFETY: each part is written whole: `a` and `b` give exactly as many values as the
    // part holds (or the slicing panics).
    unsafe {
        par_filled(a.len(), CHUNK, |k, out| {
            let range = k * CHUNK..k * CHUNK + out.len();
            for ((o, &x), &y) in out.iter_mut().zip(&a[range.clone()]).zip(&b[range]) {
                o.write(f(x, y));
            }
        })
    }
}

/// `a[i] = f(a[i], b[i])` for every element, in place, in parallel chunks.
fn zip_in_place(a: &mut [f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) {
    assert_eq!(
        a.len(),
        b.len(),
        "zip_in_place: operands of different lengths"
    );
    a.par_chunks_mut(CHUNK)
        .zip(b.par_chunks(CHUNK))
        .for_each(|(a, b)| a.iter_mut().zip(b).for_each(|(x, &y)| *x = f(*x, y)));
}

/// `relu(a + b)`.
pub fn add_relu(a: &[f32], b: &[f32]) -> Vec<f32> {
    zip_map(a, b, |x, s| (x + s).max(0.0))
}

/// `dy` where the ReLU's output `y` is positive, 0 elsewhere.
pub fn relu_mask(dy: &[f32], y: &[f32]) -> Vec<f32> {
    zip_map(dy, y, |d, v| if v > 0.0 { d } else { 0.0 })
}

/// `a = relu(a + b)`: a residual block's output, written over its main branch.
pub fn add_relu_in_place(a: &mut [f32], b: &[f32]) {
    zip_in_place(a, b, |x, s| (x + s).max(0.0));
}

/// `dy = 0` wherever the ReLU's output `y` is not positive.
pub fn relu_mask_in_place(dy: &mut [f32], y: &[f32]) {
    zip_in_place(dy, y, |g, v| if v > 0.0 { g } else { 0.0 });
}

/// `a += b`: a second gradient into a map that two layers read.
pub fn add_in_place(a: &mut [f32], b: &[f32]) {
    zip_in_place(a, b, |x, y| x + y);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kernel_is_its_formula_across_chunks() {
        let len = 3 * CHUNK + 5;
        let a: Vec<f32> = (0..len).map(|i| (i % 7) as f32 - 3.0).collect();
        let b: Vec<f32> = (0..len).map(|i| (i % 5) as f32 - 2.0).collect();
        let sum_relu: Vec<f32> = a.iter().zip(&b).map(|(x, y)| (x + y).max(0.0)).collect();
        let masked: Vec<f32> = a
            .iter()
            .zip(&b)
            .map(|(&g, &v)| if v > 0.0 { g } else { 0.0 })
            .collect();
        assert_eq!(add_relu(&a, &b), sum_relu);
        assert_eq!(relu_mask(&a, &b), masked);
        let mut in_place = a.clone();
        add_relu_in_place(&mut in_place, &b);
        assert_eq!(in_place, sum_relu);
        let mut in_place = a.clone();
        relu_mask_in_place(&mut in_place, &b);
        assert_eq!(in_place, masked);
        let mut in_place = a.clone();
        add_in_place(&mut in_place, &b);
        let sums: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
        assert_eq!(in_place, sums);
    }
}
