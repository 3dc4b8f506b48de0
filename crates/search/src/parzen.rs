//! [`Parzen`]: the Parzen estimator of TPE, a weighted mixture of product kernels (one
//! kernel per observation plus a prior one) over a [`Space`], as Optuna's `_ParzenEstimator`
//! builds it with its defaults: `prior_weight` 1, `consider_magic_clip`, no
//! `consider_endpoints`, and the ramp of [`default_weights`].
//!
//! - A numeric dimension gets, per observation, a normal truncated to the bounds, in the
//!   dimension's own space (logarithms under `log`); its bandwidth is the larger gap to a
//!   sorted neighbour (the bounds count as neighbours except beside the outermost
//!   observations), clipped to [(high − low) / min(100, n + 2), high − low]. The prior kernel
//!   sits at the middle with the width of the range. An integer is a cell [k − ½, k + ½]: its
//!   probability is the kernel's mass on the cell (Watanabe 2023, §3.3).
//! - A choice gets, per observation, the counts smoothed by the prior:
//!   `prior_weight / (n + 1)` for every choice, plus 1 for the observed one, normalised.

use sweep_rng::Rng;

use crate::space::{Dimension, Modelled, Point, Space, Value};
use crate::truncnorm;

/// The prior kernel's weight beside observations of weight up to 1 (Optuna's default).
pub const PRIOR_WEIGHT: f64 = 1.0;

/// The weights of `n` observations in trial order: 1 for the 25 newest, a linear ramp from
/// 1/n up to 1 for the older ones (Bergstra et al. 2013; Optuna's `default_weights`).
pub fn default_weights(n: usize) -> Vec<f64> {
    if n < 25 {
        return vec![1.0; n];
    }
    let ramp = n - 25;
    let start = 1.0 / n as f64;
    let mut weights: Vec<f64> = (0..ramp)
        .map(|i| {
            if ramp == 1 {
                start
            } else {
                start + (1.0 - start) * i as f64 / (ramp - 1) as f64
            }
        })
        .collect();
    weights.extend(std::iter::repeat_n(1.0, 25));
    weights
}

/// The kernels of one dimension, one per observation and the prior last.
#[derive(Debug, Clone)]
enum Kernels {
    /// Truncated normals on [low, high] (the dimension's own space).
    Numeric {
        mus: Vec<f64>,
        sigmas: Vec<f64>,
        /// ln of each kernel's mass on [low, high].
        log_masses: Vec<f64>,
        /// 1 / σ, and the ln density at each kernel's centre: the parts of a real
        /// dimension's ln density that do not depend on the point, computed once.
        inv_sigmas: Vec<f64>,
        peaks: Vec<f64>,
        low: f64,
        high: f64,
        log: bool,
        /// The integer bounds, for an integer dimension.
        int: Option<(i64, i64)>,
        /// The real bounds, for a real one (draws are kept inside them).
        float: (f64, f64),
    },
    /// Per kernel, the ln probability of each choice.
    Choice { log_probs: Vec<Vec<f64>> },
    /// A dimension with one value: nothing to model.
    Single(Value),
}

/// A Parzen estimator over a [`Space`]: mixture weights and each dimension's kernels.
#[derive(Debug, Clone)]
pub struct Parzen {
    /// ln of each kernel's normalised mixture weight (observations, then the prior).
    log_weights: Vec<f64>,
    /// Cumulative normalised weights, for drawing a kernel.
    cumulative: Vec<f64>,
    dims: Vec<Kernels>,
}

impl Parzen {
    /// The estimator of these observations (points of `space`, in trial order), each with its
    /// weight.
    pub fn fit(space: &Space, points: &[&Point], weights: &[f64]) -> Self {
        assert_eq!(points.len(), weights.len(), "one weight per observation");
        let n = points.len();
        let mut mixture: Vec<f64> = if n == 0 {
            vec![1.0]
        } else {
            weights.iter().copied().chain([PRIOR_WEIGHT]).collect()
        };
        let total: f64 = mixture.iter().sum();
        mixture.iter_mut().for_each(|w| *w /= total);
        let log_weights = mixture.iter().map(|w| w.ln()).collect();
        let mut acc = 0.0;
        let cumulative = mixture
            .iter()
            .map(|w| {
                acc += w;
                acc
            })
            .collect();
        let dims = space
            .dimensions()
            .iter()
            .enumerate()
            .map(|(d, (_, dimension))| fit_dimension(dimension, points, d))
            .collect();
        Self {
            log_weights,
            cumulative,
            dims,
        }
    }

    /// The number of kernels (observations and the prior).
    pub fn kernels(&self) -> usize {
        self.log_weights.len()
    }

    /// ln of the density (mass for integers and choices) at `point`; real dimensions under
    /// `log` are densities of the logarithm, as in Optuna (the Jacobian cancels in l / g).
    pub fn log_pdf(&self, point: &Point) -> f64 {
        let mut terms = self.log_weights.clone();
        for (kernels, value) in self.dims.iter().zip(point) {
            match kernels {
                Kernels::Single(_) => {}
                Kernels::Choice { log_probs } => {
                    let Value::Choice(c) = *value else {
                        unreachable!("points were checked against the space")
                    };
                    for (t, probs) in terms.iter_mut().zip(log_probs) {
                        *t += probs[c];
                    }
                }
                Kernels::Numeric {
                    mus,
                    sigmas,
                    log_masses,
                    log,
                    int: Some(_),
                    ..
                } => {
                    let Value::Int(k) = *value else {
                        unreachable!("points were checked against the space")
                    };
                    let (left, right) = (k as f64 - 0.5, k as f64 + 0.5);
                    let (left, right) = if *log {
                        (left.ln(), right.ln())
                    } else {
                        (left, right)
                    };
                    for (((t, mu), sigma), mass) in
                        terms.iter_mut().zip(mus).zip(sigmas).zip(log_masses)
                    {
                        *t += truncnorm::log_gauss_mass((left - mu) / sigma, (right - mu) / sigma)
                            - mass;
                    }
                }
                Kernels::Numeric {
                    mus,
                    inv_sigmas,
                    peaks,
                    log,
                    int: None,
                    ..
                } => {
                    let x = value.internal(*log);
                    for (((t, mu), inv_sigma), peak) in
                        terms.iter_mut().zip(mus).zip(inv_sigmas).zip(peaks)
                    {
                        let z = (x - mu) * inv_sigma;
                        *t += peak - 0.5 * z * z;
                    }
                }
            }
        }
        log_sum_exp(&terms)
    }

    /// A point drawn from the mixture: a kernel by weight, then each dimension from it.
    pub fn sample(&self, rng: &mut Rng) -> Point {
        let u = rng.unit_f64();
        let k = self
            .cumulative
            .iter()
            .position(|&c| u < c)
            .unwrap_or(self.cumulative.len() - 1);
        self.dims
            .iter()
            .map(|kernels| match kernels {
                Kernels::Single(value) => *value,
                Kernels::Choice { log_probs } => {
                    let u = rng.unit_f64();
                    let mut acc = 0.0;
                    let probs = &log_probs[k];
                    let c = probs
                        .iter()
                        .position(|p| {
                            acc += p.exp();
                            u < acc
                        })
                        .unwrap_or(probs.len() - 1);
                    Value::Choice(c)
                }
                Kernels::Numeric {
                    mus,
                    sigmas,
                    low,
                    high,
                    log,
                    int,
                    float,
                    ..
                } => {
                    let (mu, sigma) = (mus[k], sigmas[k]);
                    let z = truncnorm::ppf(rng.unit_f64(), (low - mu) / sigma, (high - mu) / sigma);
                    let x = mu + sigma * z;
                    let x = if *log { x.exp() } else { x };
                    match *int {
                        Some((lo, hi)) => Value::Int((x.round() as i64).clamp(lo, hi)),
                        None => Value::Float(x.clamp(float.0, float.1)),
                    }
                }
            })
            .collect()
    }
}

/// One dimension's kernels over the observations' `d`-th coordinates.
fn fit_dimension(dimension: &Dimension, points: &[&Point], d: usize) -> Kernels {
    let n = points.len();
    if dimension.is_single() {
        return Kernels::Single(match *dimension {
            Dimension::Float { low, .. } => Value::Float(low),
            Dimension::Int { low, .. } => Value::Int(low),
            Dimension::Choice(_) => Value::Choice(0),
        });
    }
    match dimension.model() {
        Modelled::Choice(choices) => {
            let kernels = n + 1;
            let smoothing = PRIOR_WEIGHT / kernels as f64;
            let mut log_probs: Vec<Vec<f64>> = points
                .iter()
                .map(|point| {
                    let Value::Choice(c) = point[d] else {
                        unreachable!("points were checked against the space")
                    };
                    let mut row = vec![smoothing; choices];
                    row[c] += 1.0;
                    let total: f64 = row.iter().sum();
                    row.iter().map(|p| (p / total).ln()).collect()
                })
                .collect();
            log_probs.push(vec![-(choices as f64).ln(); choices]);
            Kernels::Choice { log_probs }
        }
        Modelled::Numeric { low, high, log } => {
            let mut mus: Vec<f64> = points.iter().map(|p| p[d].internal(log)).collect();
            let mut sigmas = bandwidths(&mus, low, high);
            mus.push(0.5 * (low + high));
            sigmas.push(high - low);
            let log_masses: Vec<f64> = mus
                .iter()
                .zip(&sigmas)
                .map(|(mu, sigma)| {
                    truncnorm::log_gauss_mass((low - mu) / sigma, (high - mu) / sigma)
                })
                .collect();
            let inv_sigmas = sigmas.iter().map(|sigma| 1.0 / sigma).collect();
            let peaks = mus
                .iter()
                .zip(&sigmas)
                .zip(&log_masses)
                .map(|((mu, sigma), mass)| truncnorm::log_pdf(*mu, *mu, *sigma, *mass))
                .collect();
            let (int, float) = match *dimension {
                Dimension::Int { low, high, .. } => (Some((low, high)), (0.0, 0.0)),
                Dimension::Float { low, high, .. } => (None, (low, high)),
                Dimension::Choice(_) => unreachable!("a choice is modelled by counts"),
            };
            Kernels::Numeric {
                mus,
                sigmas,
                log_masses,
                inv_sigmas,
                peaks,
                low,
                high,
                log,
                int,
                float,
            }
        }
    }
}

/// The observations' bandwidths: the larger gap to a neighbour in sorted order, the bounds
/// being neighbours only when there is a single observation (`consider_endpoints = False`),
/// clipped by the "magic clip" to [(high − low) / min(100, n + 2), high − low].
fn bandwidths(mus: &[f64], low: f64, high: f64) -> Vec<f64> {
    let n = mus.len();
    if n == 0 {
        return Vec::new();
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| mus[a].total_cmp(&mus[b]));
    let mut sorted = Vec::with_capacity(n + 2);
    sorted.push(low);
    sorted.extend(order.iter().map(|&i| mus[i]));
    sorted.push(high);
    let mut sorted_sigmas: Vec<f64> = (1..=n)
        .map(|i| (sorted[i] - sorted[i - 1]).max(sorted[i + 1] - sorted[i]))
        .collect();
    if n >= 2 {
        sorted_sigmas[0] = sorted[2] - sorted[1];
        sorted_sigmas[n - 1] = sorted[n] - sorted[n - 1];
    }
    let max_sigma = high - low;
    let min_sigma = (high - low) / (100.0f64).min(n as f64 + 2.0);
    let mut sigmas = vec![0.0; n];
    for (rank, &i) in order.iter().enumerate() {
        sigmas[i] = sorted_sigmas[rank].clamp(min_sigma, max_sigma);
    }
    sigmas
}

/// ln Σ exp(terms), safe when every term is −∞.
fn log_sum_exp(terms: &[f64]) -> f64 {
    let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return max;
    }
    max + terms.iter().map(|t| (t - max).exp()).sum::<f64>().ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::Dimension;

    fn space(dimensions: Vec<(&str, Dimension)>) -> Space {
        Space::new(
            dimensions
                .into_iter()
                .map(|(n, d)| (n.to_string(), d))
                .collect(),
        )
        .unwrap()
    }

    fn fit(space: &Space, points: &[Point]) -> Parzen {
        let refs: Vec<&Point> = points.iter().collect();
        Parzen::fit(space, &refs, &default_weights(points.len()))
    }

    fn phi(z: f64) -> f64 {
        0.5 * (1.0 + libm::erf(z / std::f64::consts::SQRT_2))
    }

    /// The density at x of N(mu, sigma) truncated to [low, high], straight from the definition.
    fn truncated(x: f64, mu: f64, sigma: f64, low: f64, high: f64) -> f64 {
        let z = (x - mu) / sigma;
        let density = (-0.5 * z * z).exp() / (sigma * (2.0 * std::f64::consts::PI).sqrt());
        density / (phi((high - mu) / sigma) - phi((low - mu) / sigma))
    }

    #[test]
    fn a_float_density_is_the_hand_computed_mixture() {
        let s = space(vec![(
            "x",
            Dimension::Float {
                low: 0.0,
                high: 10.0,
                log: false,
            },
        )]);
        let parzen = fit(&s, &[vec![Value::Float(2.0)], vec![Value::Float(6.0)]]);
        assert_eq!(parzen.kernels(), 3, "two observations and the prior");
        // Sorted with the bounds: 0, 2, 6, 10. Without endpoints the outer observations take
        // the gap between them: σ = 4 for both; the clip's floor 10 / min(100, 4) = 2.5 does
        // not bite. The prior: μ = 5, σ = 10. Weights 1/3 each.
        for x in [0.0, 3.0, 7.5, 10.0] {
            let expected = (truncated(x, 2.0, 4.0, 0.0, 10.0)
                + truncated(x, 6.0, 4.0, 0.0, 10.0)
                + truncated(x, 5.0, 10.0, 0.0, 10.0))
                / 3.0;
            let got = parzen.log_pdf(&vec![Value::Float(x)]).exp();
            assert!((got - expected).abs() < 1e-12, "x {x}: {got} vs {expected}");
        }
        // The magic clip: 3 observations close together get σ at least 10 / 5 = 2.
        let clipped = fit(&s, &[2.0, 2.1, 2.2].map(|x| vec![Value::Float(x)]));
        let expected = (truncated(2.1, 2.0, 2.0, 0.0, 10.0)
            + truncated(2.1, 2.1, 2.0, 0.0, 10.0)
            + truncated(2.1, 2.2, 2.0, 0.0, 10.0)
            + truncated(2.1, 5.0, 10.0, 0.0, 10.0))
            / 4.0;
        let got = clipped.log_pdf(&vec![Value::Float(2.1)]).exp();
        assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
    }

    #[test]
    fn a_choice_is_counted_with_the_priors_smoothing() {
        let s = space(vec![(
            "optimizer",
            Dimension::Choice(vec!["adam".into(), "sgd".into(), "rmsprop".into()]),
        )]);
        // Observed 0, 2, 0: four kernels, each choice smoothed by 1/4, rows normalised by
        // 1.75, the prior row uniform: P = (10, 4, 7) / 21.
        let parzen = fit(&s, &[0, 2, 0].map(|c| vec![Value::Choice(c)]));
        for (c, expected) in [(0, 10.0 / 21.0), (1, 4.0 / 21.0), (2, 7.0 / 21.0)] {
            let got = parzen.log_pdf(&vec![Value::Choice(c)]).exp();
            assert!((got - expected).abs() < 1e-14, "choice {c}: {got}");
        }
        let prior_only = fit(&s, &[]);
        assert!((prior_only.log_pdf(&vec![Value::Choice(1)]).exp() - 1.0 / 3.0).abs() < 1e-15);
    }

    #[test]
    fn an_integer_is_the_mass_of_its_cell_and_the_masses_sum_to_one() {
        let s = space(vec![(
            "k",
            Dimension::Int {
                low: 1,
                high: 3,
                log: false,
            },
        )]);
        // One observation at 2 on [0.5, 3.5]: σ = max(1.5, 1.5), floor 3 / 3 = 1; prior σ 3.
        let parzen = fit(&s, &[vec![Value::Int(2)]]);
        let mass = |k: f64, mu: f64, sigma: f64| {
            (phi((k + 0.5 - mu) / sigma) - phi((k - 0.5 - mu) / sigma))
                / (phi((3.5 - mu) / sigma) - phi((0.5 - mu) / sigma))
        };
        let mut total = 0.0;
        for k in 1..=3 {
            let expected = 0.5 * (mass(k as f64, 2.0, 1.5) + mass(k as f64, 2.0, 3.0));
            let got = parzen.log_pdf(&vec![Value::Int(k)]).exp();
            assert!((got - expected).abs() < 1e-14, "k {k}: {got} vs {expected}");
            total += got;
        }
        assert!((total - 1.0).abs() < 1e-14);
    }

    #[test]
    fn log_dimensions_are_modelled_by_their_logarithm() {
        let s = space(vec![(
            "lr",
            Dimension::Float {
                low: 1e-4,
                high: 1e-1,
                log: true,
            },
        )]);
        let parzen = fit(&s, &[vec![Value::Float(1e-3)]]);
        let (low, high, mu) = (1e-4f64.ln(), 1e-1f64.ln(), 1e-3f64.ln());
        // One observation: σ = max(mu − low, high − mu) in log space; the prior at the middle.
        let sigma = (mu - low).max(high - mu);
        let x = 3e-3f64;
        let expected = 0.5
            * (truncated(x.ln(), mu, sigma, low, high)
                + truncated(x.ln(), 0.5 * (low + high), high - low, low, high));
        let got = parzen.log_pdf(&vec![Value::Float(x)]).exp();
        assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
        // Draws from the prior alone spread evenly over decades: the median near √(1e-5).
        let prior = fit(&s, &[]);
        let mut rng = Rng::new(5);
        let mut xs: Vec<f64> = (0..2001)
            .map(|_| match prior.sample(&mut rng)[0] {
                Value::Float(x) => x,
                other => panic!("a float, not {other:?}"),
            })
            .collect();
        assert!(xs.iter().all(|x| (1e-4..=1e-1).contains(x)));
        xs.sort_by(f64::total_cmp);
        let ratio = xs[1000] / (1e-4f64 * 1e-1).sqrt();
        assert!(
            (0.7..1.4).contains(&ratio),
            "median / geometric mean {ratio}"
        );
    }

    #[test]
    fn densities_match_optunas_parzen_estimator() {
        // Numbers from optuna 5.1.0's `_ParzenEstimator` with the sampler's defaults
        // (prior_weight 1, magic clip, no endpoints, default_weights), on the same inputs.
        let s = space(vec![
            (
                "x",
                Dimension::Float {
                    low: -5.0,
                    high: 10.0,
                    log: false,
                },
            ),
            (
                "lr",
                Dimension::Float {
                    low: 1e-4,
                    high: 1e-1,
                    log: true,
                },
            ),
            (
                "n",
                Dimension::Int {
                    low: 16,
                    high: 256,
                    log: true,
                },
            ),
            (
                "k",
                Dimension::Int {
                    low: 1,
                    high: 8,
                    log: false,
                },
            ),
            (
                "opt",
                Dimension::Choice(vec!["adam".into(), "sgd".into(), "rmsprop".into()]),
            ),
        ]);
        let point = |x: f64, lr: f64, n: i64, k: i64, opt: usize| {
            vec![
                Value::Float(x),
                Value::Float(lr),
                Value::Int(n),
                Value::Int(k),
                Value::Choice(opt),
            ]
        };
        let observations = [
            point(0.5, 1e-3, 32, 1, 0),
            point(3.0, 3e-2, 200, 4, 2),
            point(-2.0, 2e-4, 16, 4, 0),
            point(9.5, 5e-3, 64, 8, 1),
        ];
        let queries = [
            point(1.0, 2e-3, 40, 2, 0),
            point(-4.9, 1e-4, 16, 1, 1),
            point(7.25, 0.09, 256, 8, 2),
        ];
        let joint = [
            -10.609262861402241,
            -11.790964774866035,
            -14.503255743717292,
        ];
        let parzen = fit(&s, &observations);
        for (q, expected) in queries.iter().zip(joint) {
            let got = parzen.log_pdf(q);
            assert!((got - expected).abs() < 1e-9, "{q:?}: {got} vs {expected}");
        }
        let marginals: [[f64; 3]; 5] = [
            [-2.4214325695368046, -3.130397131996694, -3.0029723345739403],
            [-1.7928616396225336, -2.132953118661606, -2.405986499531728],
            [-4.552274041397313, -3.6324308189893313, -7.019151984000279],
            [-2.009188761062398, -2.1093761346468187, -2.3382878420589877],
            [
                -0.8754687373538996,
                -1.2321436812926323,
                -1.2321436812926323,
            ],
        ];
        for (d, expected) in marginals.iter().enumerate() {
            let one = Space::new(vec![s.dimensions()[d].clone()]).unwrap();
            let obs: Vec<Point> = observations.iter().map(|p| vec![p[d]]).collect();
            let parzen = fit(&one, &obs);
            for (q, e) in queries.iter().zip(expected) {
                let got = parzen.log_pdf(&vec![q[d]]);
                assert!((got - e).abs() < 1e-9, "dimension {d}, {q:?}: {got} vs {e}");
            }
        }
        // 30 observations: the 5 oldest are ramped (1/30 … 0.758), as Optuna's weights.
        let xs = [
            3.232202558909872,
            5.7278404955862925,
            4.041450641074658,
            3.1732477449534535,
            1.354821990083571,
            4.688411695999841,
            1.5638081689403878,
            8.376595011731197,
            9.45494140751544,
            0.7516227823866659,
            6.87587557123997,
            2.9334237962935674,
            3.5206684164089843,
            8.883949574389916,
            -3.9344591270316958,
            -3.6930605044768896,
            -4.696724038395114,
            7.489297683219069,
            6.672351264247757,
            8.050182223702288,
            9.67927513349146,
            6.987378463250854,
            1.9221904337939772,
            6.707937644296832,
            -3.225883611966002,
            4.598815319912857,
            -2.8497006888643037,
            9.17003375574376,
            2.8277248262510755,
            1.219929099857854,
        ];
        let weights = default_weights(30);
        let expected_weights = [
            0.03333333333333333,
            0.275,
            0.5166666666666667,
            0.7583333333333333,
        ];
        for (w, e) in weights.iter().zip(expected_weights) {
            assert!((w - e).abs() < 1e-15, "{weights:?}");
        }
        assert!(weights[4..].iter().all(|&w| w == 1.0));
        let one = Space::new(vec![s.dimensions()[0].clone()]).unwrap();
        let parzen = fit(&one, &xs.map(|x| vec![Value::Float(x)]));
        for (x, e) in [(0.0, -4.2933967540005185), (9.9, -2.620637137425435)] {
            let got = parzen.log_pdf(&vec![Value::Float(x)]);
            assert!((got - e).abs() < 1e-9, "x {x}: {got} vs {e}");
        }
    }

    #[test]
    fn draws_stay_in_the_space() {
        let s = space(vec![
            (
                "x",
                Dimension::Float {
                    low: -1.0,
                    high: 1.0,
                    log: false,
                },
            ),
            (
                "n",
                Dimension::Int {
                    low: 1,
                    high: 4,
                    log: true,
                },
            ),
            ("c", Dimension::Choice(vec!["a".into(), "b".into()])),
            (
                "fixed",
                Dimension::Float {
                    low: 0.5,
                    high: 0.5,
                    log: false,
                },
            ),
        ]);
        let parzen = fit(
            &s,
            &[vec![
                Value::Float(1.0),
                Value::Int(4),
                Value::Choice(1),
                Value::Float(0.5),
            ]],
        );
        let mut rng = Rng::new(9);
        for i in 0..2000 {
            let point = parzen.sample(&mut rng);
            s.check(&point, "draw", i).unwrap();
            assert!(parzen.log_pdf(&point).is_finite());
        }
    }
}
