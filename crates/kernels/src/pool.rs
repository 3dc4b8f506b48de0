//! The 2×2 max pool with stride 2 of a ResNet's stem, on CPU values: [`max_pool2x2`] and its
//! gradient [`max_pool2x2_grad`], which sends each window's whole gradient to the window's
//! first maximum ([`first_max`]), as PyTorch does. Odd last rows and columns are dropped, as
//! candle and PyTorch do.

use rayon::prelude::*;

use crate::uninit::par_filled;

/// The offset (0..4, row-major in the window) of the first maximum of the 2×2 window whose
/// top-left corner is `at` in a plane `w` wide, and its value.
fn window_max(plane: &[f32], w: usize, at: usize) -> (usize, f32) {
    let values = [plane[at], plane[at + 1], plane[at + w], plane[at + w + 1]];
    let best = first_max(&values);
    (best, values[best])
}

/// The position in a window's four values (row by row) of its largest, the first on a tie:
/// where the pool sends the window's gradient.
pub(crate) fn first_max(values: &[f32; 4]) -> usize {
    let mut best = 0;
    for k in 1..4 {
        if values[k] > values[best] {
            best = k;
        }
    }
    best
}

/// Each window's maximum: `x` is planes of `h × w` (at least 2×2), the output planes of
/// `h/2 × w/2`.
pub fn max_pool2x2(x: &[f32], (h, w): (usize, usize)) -> Vec<f32> {
    assert!(
        h >= 2 && w >= 2,
        "max-pool: a 2×2 window does not fit in {h}×{w}"
    );
    let (oh, ow) = (h / 2, w / 2);
    let planes = x.len() / (h * w);
    // SAFETY: each part is one output plane, and every (oy, ox) of it is written.
    unsafe {
        par_filled(planes * oh * ow, oh * ow, |index, out| {
            let plane = &x[index * h * w..(index + 1) * h * w];
            for (oy, line) in out.chunks_mut(ow).enumerate() {
                for (ox, v) in line.iter_mut().enumerate() {
                    v.write(window_max(plane, w, 2 * oy * w + 2 * ox).1);
                }
            }
        })
    }
}

/// `dx` of [`max_pool2x2`] from its input `x` and the output gradient `dy`: each output's
/// gradient at its window's first maximum, 0 elsewhere.
pub fn max_pool2x2_grad(x: &[f32], dy: &[f32], (h, w): (usize, usize)) -> Vec<f32> {
    let (oh, ow) = (h / 2, w / 2);
    let mut dx = vec![0f32; x.len()];
    if oh * ow > 0 {
        dx.par_chunks_mut(h * w)
            .zip(x.par_chunks(h * w))
            .zip(dy.par_chunks(oh * ow))
            .for_each(|((out, plane), grad)| {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let at = 2 * oy * w + 2 * ox;
                        let (k, _) = window_max(plane, w, at);
                        out[at + (k / 2) * w + k % 2] = grad[oy * ow + ox];
                    }
                }
            });
    }
    dx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tie_sends_the_gradient_to_the_first_maximum() {
        let x = [1f32, 3.0, 3.0, 0.0];
        assert_eq!(max_pool2x2(&x, (2, 2)), [3.0]);
        assert_eq!(max_pool2x2_grad(&x, &[5.0], (2, 2)), [0.0, 5.0, 0.0, 0.0]);
    }

    #[test]
    fn an_odd_last_row_and_column_are_dropped() {
        // 3×3: one window, over the top-left 2×2.
        let x = [1f32, 2.0, 9.0, 4.0, 3.0, 9.0, 9.0, 9.0, 9.0];
        assert_eq!(max_pool2x2(&x, (3, 3)), [4.0]);
        let dx = max_pool2x2_grad(&x, &[7.0], (3, 3));
        assert_eq!(dx, [0.0, 0.0, 0.0, 7.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    }
}
