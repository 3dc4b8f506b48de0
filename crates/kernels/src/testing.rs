//! What the kernels' unit tests share: seeded values, an error measure, and the convolution
//! written as its definition (direct loops in f64), the reference every path is checked
//! against.

use crate::geometry::Geometry;

/// A seeded stream of values in `[-1, 1)`.
pub(crate) struct Values(u64);

impl Values {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next `len` values.
    pub(crate) fn take(&mut self, len: usize) -> Vec<f32> {
        (0..len)
            .map(|_| {
                self.0 = self
                    .0
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((self.0 >> 40) as f32 / (1u64 << 23) as f32) - 1.0
            })
            .collect()
    }
}

/// The largest difference between `got` and the reference `want`, relative to `want`'s
/// largest magnitude.
pub(crate) fn max_rel_err(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-6);
    got.iter()
        .zip(want)
        .fold(0f64, |m, (&g, &w)| m.max((g as f64 - w).abs() / scale))
}

/// Widened to f64, to compare two f32 paths with [`max_rel_err`].
pub(crate) fn wide(values: &[f32]) -> Vec<f64> {
    values.iter().map(|&v| v as f64).collect()
}

/// Calls `f(x index, w index, y index)` for every multiply-add of `conv(x, w)`: each output
/// pixel, output channel, input channel and kernel tap whose input pixel lies inside the
/// picture.
fn for_each_tap(g: &Geometry, mut f: impl FnMut(usize, usize, usize)) {
    let (oh, ow, k) = (g.oh(), g.ow(), g.k);
    for i in 0..g.n {
        for oc in 0..g.o {
            for oy in 0..oh {
                for ox in 0..ow {
                    let y = ((i * g.o + oc) * oh + oy) * ow + ox;
                    for c in 0..g.c {
                        for ki in 0..k {
                            for kj in 0..k {
                                let iy = (oy * g.stride + ki) as isize - g.pad as isize;
                                let ix = (ox * g.stride + kj) as isize - g.pad as isize;
                                if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                                    continue;
                                }
                                let x = ((i * g.c + c) * g.h + iy as usize) * g.w + ix as usize;
                                let w = ((oc * g.c + c) * k + ki) * k + kj;
                                f(x, w, y);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `y = conv(x, w)` by its definition.
pub(crate) fn naive_forward(x: &[f32], w: &[f32], g: &Geometry) -> Vec<f64> {
    let mut y = vec![0f64; g.n * g.o * g.pixels()];
    for_each_tap(g, |xi, wi, yi| y[yi] += x[xi] as f64 * w[wi] as f64);
    y
}

/// `dx` of `conv(x, w)` by its definition.
pub(crate) fn naive_input_grad(dy: &[f32], w: &[f32], g: &Geometry) -> Vec<f64> {
    let mut dx = vec![0f64; g.n * g.c * g.h * g.w];
    for_each_tap(g, |xi, wi, yi| dx[xi] += dy[yi] as f64 * w[wi] as f64);
    dx
}

/// `dw` of `conv(x, w)` by its definition.
pub(crate) fn naive_weight_grad(x: &[f32], dy: &[f32], g: &Geometry) -> Vec<f64> {
    let mut dw = vec![0f64; g.o * g.ckk()];
    for_each_tap(g, |xi, wi, yi| dw[wi] += x[xi] as f64 * dy[yi] as f64);
    dw
}
