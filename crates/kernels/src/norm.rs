//! Batch normalisation over the channels of `n × c × h × w` maps, on CPU values: the
//! training forward [`normalize`] (the batch's statistics and the normalised output in two
//! passes, a ReLU and a 2×2 max pool fused in when asked) and its backward
//! [`gradient_values`] (the three gradients in two more), the evaluation's per-channel map
//! [`affine_per_channel`], and [`channel_sums`] (a bias's gradient). candle's own layer runs
//! about ten whole-tensor operations each way.

use rayon::prelude::*;

use crate::pool::first_max;
use crate::uninit::{assume_init, par_filled};

/// `n × c × h × w`.
pub type Dims = (usize, usize, usize, usize);

/// `x · scale[c] + shift[c]` over each channel plane (`x` of `n × c × plane`; then a ReLU when
/// `relu`), the one pass that both the training and the evaluation forward make.
pub fn affine_per_channel(
    x: &[f32],
    c: usize,
    plane: usize,
    scale: &[f32],
    shift: &[f32],
    relu: bool,
) -> Vec<f32> {
    let floor = if relu { 0.0 } else { f32::NEG_INFINITY };
    // SAFETY: each part (one channel plane) is written whole from the plane of `x` beside it.
    unsafe {
        par_filled(x.len(), plane, |row, out| {
            let ch = row % c;
            for (o, &v) in out.iter_mut().zip(&x[row * plane..(row + 1) * plane]) {
                o.write((v * scale[ch] + shift[ch]).max(floor));
            }
        })
    }
}

/// Per-channel mean and biased variance of `x` (`n × c × plane`).
fn channel_stats(x: &[f32], n: usize, c: usize, plane: usize) -> Vec<(f32, f32)> {
    (0..c)
        .into_par_iter()
        .map(|ch| {
            let (mut sum, mut sq) = (0f64, 0f64);
            for i in 0..n {
                let x = &x[(i * c + ch) * plane..(i * c + ch + 1) * plane];
                let (s, q) = lane_sums(x, x, |v, _| (v, v));
                sum += s;
                sq += q;
            }
            let count = (n * plane) as f64;
            let mean = sum / count;
            (mean as f32, (sq / count - mean * mean).max(0.0) as f32)
        })
        .collect()
}

/// Lanes of [`lane_sums`]: 16 independent f32 sums the compiler keeps in vector registers.
const LANES: usize = 16;

/// `(Σ p, Σ p · q)` over a plane, with `(p, q) = pair(a[i], b[i])`: each sum in `LANES` f32
/// lanes, folded into f64 at the end. One f64 accumulator (the obvious loop) cannot be
/// vectorized, since every add waits for the one before: that made the batch statistics and
/// the backward's sums ≈ 6% of a ResNet step. A plane is at most a few thousand values, so
/// each lane sums a few hundred and keeps f32's precision; the order is fixed, so the result
/// does not depend on the thread count.
fn lane_sums(a: &[f32], b: &[f32], pair: impl Fn(f32, f32) -> (f32, f32)) -> (f64, f64) {
    assert_eq!(a.len(), b.len());
    let (mut sa, mut sab) = ([0f32; LANES], [0f32; LANES]);
    let whole = a.len() / LANES * LANES;
    for (ca, cb) in a[..whole]
        .chunks_exact(LANES)
        .zip(b[..whole].chunks_exact(LANES))
    {
        for l in 0..LANES {
            let (p, q) = pair(ca[l], cb[l]);
            sa[l] += p;
            sab[l] += p * q;
        }
    }
    let (mut a_sum, mut ab_sum) = (0f64, 0f64);
    for l in 0..LANES {
        a_sum += sa[l] as f64;
        ab_sum += sab[l] as f64;
    }
    for (&x, &y) in a[whole..].iter().zip(&b[whole..]) {
        let (p, q) = pair(x, y);
        a_sum += p as f64;
        ab_sum += (p * q) as f64;
    }
    (a_sum, ab_sum)
}

/// What a training forward leaves for the running averages and its backward.
#[derive(Debug, Clone, Default)]
pub struct Saved {
    /// Per channel: the batch mean and biased variance.
    stats: Vec<(f32, f32)>,
    /// Per channel: the affine map the forward applied, `x · scale + shift`.
    scale: Vec<f32>,
    shift: Vec<f32>,
}

impl Saved {
    /// Per channel: the batch mean and biased variance.
    pub fn stats(&self) -> &[(f32, f32)] {
        &self.stats
    }
}

/// The training forward: `y = γ · (x − mean) / √(var + ε) + β` with the batch's statistics,
/// then a ReLU when `relu`, then a 2×2 max pool with stride 2 when `pool` (`x` at least 2×2:
/// the normalised maps are then never written, only their pooled maxima). `x` is of `dims`;
/// returns the output with its dims, and what the running averages and the backward need.
pub fn normalize(
    x: &[f32],
    (n, c, h, w): Dims,
    (gamma, beta): (&[f32], &[f32]),
    eps: f32,
    relu: bool,
    pool: bool,
) -> (Vec<f32>, Dims, Saved) {
    let plane = h * w;
    let stats = channel_stats(x, n, c, plane);
    let scale: Vec<f32> = (0..c)
        .map(|ch| gamma[ch] / (stats[ch].1 + eps).sqrt())
        .collect();
    let shift: Vec<f32> = (0..c)
        .map(|ch| beta[ch] - stats[ch].0 * scale[ch])
        .collect();
    let (y, shape) = if pool {
        let y = pooled_affine(x, (c, h, w), &scale, &shift, relu);
        (y, (n, c, h / 2, w / 2))
    } else {
        let y = affine_per_channel(x, c, plane, &scale, &shift, relu);
        (y, (n, c, h, w))
    };
    (
        y,
        shape,
        Saved {
            stats,
            scale,
            shift,
        },
    )
}

/// The backward of [`normalize`]: `[dx, dγ, dβ]` packed in one vector, from the forward's
/// input `x` (of `dims`), `γ`, the output gradient `dy` (pooled, with `pool`) and what the
/// forward saved; `relu` and `pool` as the forward had them.
pub fn gradient_values(
    x: &[f32],
    (n, c, h, w): Dims,
    gamma: &[f32],
    dy: &[f32],
    saved: &Saved,
    eps: f32,
    (relu, pool): (bool, bool),
) -> Vec<f32> {
    Backward::new(saved, eps, relu, pool).values(x, gamma, dy, (n, c, h, w))
}

/// Per channel, `Σ dy` over the batch and the plane (`dy` of `n × c × plane`): the gradient
/// of a per-channel bias, summed in [`lane_sums`]'s fixed order.
pub fn channel_sums(dy: &[f32], n: usize, c: usize, plane: usize) -> Vec<f32> {
    (0..c)
        .into_par_iter()
        .map(|ch| {
            (0..n)
                .map(|i| {
                    let range = (i * c + ch) * plane..(i * c + ch + 1) * plane;
                    lane_sums(&dy[range.clone()], &dy[range], |g, _| (g, 0.0)).0
                })
                .sum::<f64>() as f32
        })
        .collect()
}

/// `relu?(x · scale[c] + shift[c])` of every 2×2 window (stride 2; an odd last row or column
/// is dropped), pooled to its maximum: `n × c × h/2 × w/2`.
fn pooled_affine(
    x: &[f32],
    (c, h, w): (usize, usize, usize),
    scale: &[f32],
    shift: &[f32],
    relu: bool,
) -> Vec<f32> {
    let (oh, ow) = (h / 2, w / 2);
    let floor = if relu { 0.0 } else { f32::NEG_INFINITY };
    // SAFETY: each part (one pooled plane, `oh · ow`) is written whole, line by line.
    unsafe {
        par_filled(x.len() / (h * w) * oh * ow, oh * ow, |row, out| {
            let (sc, sh) = (scale[row % c], shift[row % c]);
            let plane = &x[row * h * w..(row + 1) * h * w];
            for (oy, line) in out.chunks_mut(ow).enumerate() {
                for (ox, o) in line.iter_mut().enumerate() {
                    let window = Window::at(plane, w, (oy, ox), (sc, sh), floor);
                    o.write(window.max);
                }
            }
        })
    }
}

/// One 2×2 window of a pooled normalisation, as both its forward and the routing of its
/// gradient see it, so the two always agree on the maximum.
struct Window {
    /// The plane index of the window's first maximum after the floor.
    argmax: usize,
    /// That maximum (the pooled output), and the affine value there before the floor.
    max: f32,
    pre: f32,
}

impl Window {
    /// The window at pooled position `(oy, ox)` of a plane `w` wide, under `x · sc + sh`
    /// and then `max(·, floor)`.
    #[inline(always)]
    fn at(
        plane: &[f32],
        w: usize,
        (oy, ox): (usize, usize),
        (sc, sh): (f32, f32),
        floor: f32,
    ) -> Self {
        let at = [0, 1, w, w + 1].map(|d| 2 * oy * w + 2 * ox + d);
        let pre = at.map(|i| plane[i] * sc + sh);
        let values = pre.map(|v| v.max(floor));
        let best = first_max(&values);
        Window {
            argmax: at[best],
            max: values[best],
            pre: pre[best],
        }
    }
}

/// How a pooled normalisation's backward routes the pooled gradient onto its input: each
/// window's gradient to its first maximum (as the forward chose it, from the same values),
/// none elsewhere and none wherever the ReLU was off.
struct Route {
    relu: bool,
    scale: Vec<f32>,
    shift: Vec<f32>,
}

impl Route {
    /// Calls `f(index in the plane, gradient)` for each window of plane `row` (of channel
    /// `ch`) of `x` that passes a gradient, with `dy` the pooled gradient.
    #[inline(always)]
    fn windows(
        &self,
        (x, dy): (&[f32], &[f32]),
        (h, w): (usize, usize),
        (row, ch): (usize, usize),
        mut f: impl FnMut(usize, f32),
    ) {
        let (oh, ow) = (h / 2, w / 2);
        let floor = if self.relu { 0.0 } else { f32::NEG_INFINITY };
        let (sc, sh) = (self.scale[ch], self.shift[ch]);
        let plane = &x[row * h * w..(row + 1) * h * w];
        let grad = &dy[row * oh * ow..(row + 1) * oh * ow];
        for oy in 0..oh {
            for ox in 0..ow {
                let window = Window::at(plane, w, (oy, ox), (sc, sh), floor);
                if !self.relu || window.pre > 0.0 {
                    f(window.argmax, grad[oy * ow + ox]);
                }
            }
        }
    }
}

/// The three gradients of [`normalize`], packed as `[dx, dγ, dβ]`:
/// `dx = γ / √(var + ε) · (dy − mean(dy) − x̂ · mean(dy · x̂))`, where `dy` is the gradient
/// after the ReLU when there is one.
struct Backward {
    eps: f32,
    /// Per channel: the forward's batch mean and biased variance.
    stats: Vec<(f32, f32)>,
    /// With a ReLU: the forward's per-channel `(scale, shift)`; `dy` passes where
    /// `x · scale + shift > 0`.
    relu: Option<(Vec<f32>, Vec<f32>)>,
    /// With a pool: `dy` is the pooled gradient, routed onto `x` as it is read (the ReLU's
    /// mask included), never written out at full size.
    route: Option<Route>,
}

impl Backward {
    /// The backward of a forward that saved `saved`, with its ReLU and pool.
    fn new(saved: &Saved, eps: f32, relu: bool, pool: bool) -> Self {
        // With a ReLU, the backward knows from the forward's affine map where it passed the
        // gradient (where `x · scale + shift > 0`, the same float expression), without a pass
        // over the output.
        let (scale, shift) = (saved.scale.clone(), saved.shift.clone());
        let (relu, route) = if pool {
            (None, Some(Route { relu, scale, shift }))
        } else {
            (relu.then_some((scale, shift)), None)
        };
        Backward {
            eps,
            stats: saved.stats.clone(),
            relu,
            route,
        }
    }

    /// `[dx, dγ, dβ]` on CPU values, `x` of `n × c × h × w` and `dy` as large (pooled, with
    /// a route).
    fn values(&self, x: &[f32], gamma: &[f32], dy: &[f32], (n, c, h, w): Dims) -> Vec<f32> {
        if let Some(route) = &self.route {
            return self.pooled(route, x, gamma, dy, (n, c, h, w));
        }
        let dims = (n, c, h * w);
        match &self.relu {
            None => self.gradients(x, gamma, dy, dims, |_, g, _| g),
            Some((scale, shift)) => self.gradients(x, gamma, dy, dims, |ch, g, v| {
                if v * scale[ch] + shift[ch] > 0.0 {
                    g
                } else {
                    0.0
                }
            }),
        }
    }

    /// [`Backward::gradients`] of a pooled normalisation, `dy` the pooled gradient: each
    /// window's gradient is routed to its maximum while the sums and `dx` are computed, so
    /// the routed map (mostly zeros, as large as the input: the stem's is the step's
    /// largest, 16.8 MB on the seed's) is never allocated. The step's time is level with
    /// routing into that map first (273.4 against 273.7 img/s, paired); its memory is lower.
    fn pooled(
        &self,
        route: &Route,
        x: &[f32],
        gamma: &[f32],
        dy: &[f32],
        (n, c, h, w): Dims,
    ) -> Vec<f32> {
        let plane = h * w;
        let count = (n * plane) as f64;
        let inv = |ch: usize| 1.0 / (self.stats[ch].1 + self.eps).sqrt();
        // Per channel: Σ dy and Σ dy · x̂ over the routed gradients, plane by plane.
        let sums: Vec<(f32, f32)> = (0..c)
            .into_par_iter()
            .map(|ch| {
                let (mean, inv) = (self.stats[ch].0, inv(ch));
                let (mut s, mut sx) = (0f64, 0f64);
                for i in 0..n {
                    let row = i * c + ch;
                    let p = &x[row * plane..(row + 1) * plane];
                    let (mut ps, mut psx) = (0f32, 0f32);
                    route.windows((x, dy), (h, w), (row, ch), |at, g| {
                        ps += g;
                        psx += g * ((p[at] - mean) * inv);
                    });
                    s += ps as f64;
                    sx += psx as f64;
                }
                (s as f32, sx as f32)
            })
            .collect();
        // SAFETY: each part (one plane) is written whole by the first loop; the windows then
        // overwrite the elements their gradient reaches.
        let mut out = unsafe {
            par_filled(x.len(), plane.max(1), |row, o| {
                let ch = row % c;
                let (mean, inv) = (self.stats[ch].0, inv(ch));
                let (s, sx) = sums[ch];
                let (mean_dy, mean_dyx) = ((s as f64 / count) as f32, (sx as f64 / count) as f32);
                let k = gamma[ch] * inv;
                let p = &x[row * plane..(row + 1) * plane];
                // As `gradients` with the routed gradient: 0 off the maxima.
                let dx = |g: f32, v: f32| k * (g - mean_dy - (v - mean) * inv * mean_dyx);
                for (o, &v) in o.iter_mut().zip(p) {
                    o.write(dx(0.0, v));
                }
                let o = assume_init(o);
                route.windows((x, dy), (h, w), (row, ch), |at, g| o[at] = dx(g, p[at]));
            })
        };
        out.reserve_exact(2 * c);
        out.extend(sums.iter().map(|s| s.1));
        out.extend(sums.iter().map(|s| s.0));
        out
    }

    /// `[dx, dγ, dβ]` for the output gradient `passed(ch, dy, x)` of each element of channel
    /// `ch` (`dy` itself, or 0 where the ReLU was off): a generic closure, so the loops are
    /// compiled once with the mask and once without.
    fn gradients(
        &self,
        x: &[f32],
        gamma: &[f32],
        dy: &[f32],
        (n, c, plane): (usize, usize, usize),
        passed: impl Fn(usize, f32, f32) -> f32 + Sync,
    ) -> Vec<f32> {
        let stats = &self.stats;
        let count = (n * plane) as f64;
        // Per channel: Σ dy and Σ dy · x̂.
        let sums: Vec<(f32, f32)> = (0..c)
            .into_par_iter()
            .map(|ch| {
                let (mean, var) = stats[ch];
                let inv = 1.0 / (var + self.eps).sqrt();
                let (mut s, mut sx) = (0f64, 0f64);
                for i in 0..n {
                    let range = (i * c + ch) * plane..(i * c + ch + 1) * plane;
                    let (a, b) = lane_sums(&dy[range.clone()], &x[range], |g, v| {
                        (passed(ch, g, v), (v - mean) * inv)
                    });
                    s += a;
                    sx += b;
                }
                (s as f32, sx as f32)
            })
            .collect();
        // dx is written whole, plane by plane, so it is not zero-filled first; the capacity
        // leaves room for dγ and dβ behind it.
        let mut out = Vec::with_capacity(x.len() + 2 * c);
        out.spare_capacity_mut()[..x.len()]
            .par_chunks_mut(plane.max(1))
            .enumerate()
            .for_each(|(row, o)| {
                let ch = row % c;
                let (mean, var) = stats[ch];
                let inv = 1.0 / (var + self.eps).sqrt();
                let (s, sx) = sums[ch];
                let (mean_dy, mean_dyx) = ((s as f64 / count) as f32, (sx as f64 / count) as f32);
                let k = gamma[ch] * inv;
                let range = row * plane..(row + 1) * plane;
                for ((o, &g), &v) in o.iter_mut().zip(&dy[range.clone()]).zip(&x[range]) {
                    o.write(k * (passed(ch, g, v) - mean_dy - (v - mean) * inv * mean_dyx));
                }
            });
        // SAFETY: the planes cover `0..x.len()`, and each was written whole from the planes
        // of `dy` and `x` beside it (the zips are as long as a plane).
        unsafe { out.set_len(x.len()) };
        out.extend(sums.iter().map(|s| s.1));
        out.extend(sums.iter().map(|s| s.0));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::{max_pool2x2, max_pool2x2_grad};
    use crate::testing::{max_rel_err, wide, Values};

    const DIMS: Dims = (3, 4, 6, 5);

    fn operands() -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let mut values = Values::new(11);
        let (n, c, h, w) = DIMS;
        let x = values.take(n * c * h * w);
        let gamma: Vec<f32> = values.take(c).iter().map(|v| 1.0 + v).collect();
        (x, gamma, values.take(c))
    }

    #[test]
    fn the_training_forward_is_the_definition_with_the_batch_statistics() {
        let (x, gamma, beta) = operands();
        let (n, c, h, w) = DIMS;
        let plane = h * w;
        let eps = 1e-5;
        let (y, dims, saved) = normalize(&x, DIMS, (&gamma, &beta), eps, false, false);
        assert_eq!(dims, DIMS);
        let mut want = vec![0f64; x.len()];
        for ch in 0..c {
            let at = |i: usize| (i * c + ch) * plane..(i * c + ch + 1) * plane;
            let values: Vec<f64> = (0..n).flat_map(|i| wide(&x[at(i)])).collect();
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64;
            assert!(
                (saved.stats()[ch].0 as f64 - mean).abs() < 1e-6,
                "mean of {ch}"
            );
            assert!(
                (saved.stats()[ch].1 as f64 - var).abs() < 1e-6,
                "variance of {ch}"
            );
            for i in 0..n {
                for k in at(i) {
                    let hat = (x[k] as f64 - mean) / (var + eps as f64).sqrt();
                    want[k] = gamma[ch] as f64 * hat + beta[ch] as f64;
                }
            }
        }
        let err = max_rel_err(&y, &want);
        assert!(err < 1e-6, "{err}");
    }

    /// The fused ReLU and pool give what the separate passes give, forward and backward: the
    /// pooled gradient routed to each window's maximum, then through the ReLU.
    #[test]
    fn the_fused_relu_and_pool_are_the_separate_passes() {
        let (x, gamma, beta) = operands();
        let (n, c, h, w) = DIMS;
        let eps = 1e-5;
        let (plain, _, plain_saved) = normalize(&x, DIMS, (&gamma, &beta), eps, true, false);
        let (pooled, dims, saved) = normalize(&x, DIMS, (&gamma, &beta), eps, true, true);
        assert_eq!(dims, (n, c, h / 2, w / 2));
        assert_eq!(pooled, max_pool2x2(&plain, (h, w)));
        let dy_pooled = Values::new(3).take(pooled.len());
        let mut dy = max_pool2x2_grad(&plain, &dy_pooled, (h, w));
        for (g, &v) in dy.iter_mut().zip(&plain) {
            if v <= 0.0 {
                *g = 0.0;
            }
        }
        let got = gradient_values(&x, DIMS, &gamma, &dy_pooled, &saved, eps, (true, true));
        let want = gradient_values(&x, DIMS, &gamma, &dy, &plain_saved, eps, (false, false));
        let err = max_rel_err(&got, &wide(&want));
        assert!(err < 1e-5, "{err}");
        assert_eq!(
            channel_sums(&dy, n, c, h * w),
            want[x.len() + c..],
            "dβ is Σ dy"
        );
    }
}
