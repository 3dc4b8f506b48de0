//! [`Tpe`]: the tree-structured Parzen estimator (Bergstra et al. 2011), with Optuna 5's
//! defaults and the components Watanabe 2023 found to matter. [`Tpe::suggest`] is a pure
//! function of the space, the seed, the trial's index, the finished observations and the
//! pending points.
//!
//! Until `startup` observations exist, a suggestion is the space's random point for its
//! index (the `[random]` table's sample). After: the observations sorted by value (ties in
//! trial order) split into the best γ(n) = min(⌈n / 10⌉, 25), the "good" set, and the rest,
//! the "bad" set, which also takes every pending point (the constant liar: a running trial
//! counts as the worst, so the search looks elsewhere). Each set gets a [`Parzen`] estimator
//! (weights ramped for the old bad observations); `candidates` points are drawn from the good
//! one and the one with the largest l(x) / g(x) wins (the first, on ties). `multivariate`
//! models the dimensions jointly (one kernel draws every coordinate: Optuna 5's default);
//! without it, each dimension is modelled and chosen on its own.

use sweep_rng::Rng;

use crate::parzen::{default_weights, Parzen};
use crate::space::{Point, Space};
use crate::SearchError;

/// The label of the model's stream in `Rng::derive(seed, [MODEL_STREAM, index])`: far from
/// any trial index, so it never meets a `[random]` stream `[index, key hash]`.
const MODEL_STREAM: u64 = 0x7470_655f_6d6f_6465;

/// TPE's settings; [`Tpe::default`] is Optuna 5's `TPESampler()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tpe {
    /// Observations needed before the model is used (`n_startup_trials`, 10).
    pub startup: usize,
    /// Points drawn from l(x) per suggestion (`n_ei_candidates`, 24).
    pub candidates: usize,
    /// Joint (true, the default) or per-dimension densities.
    pub multivariate: bool,
}

impl Default for Tpe {
    fn default() -> Self {
        Self {
            startup: 10,
            candidates: 24,
            multivariate: true,
        }
    }
}

/// How a suggestion was made, to record beside the trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A random point: fewer than `startup` observations.
    Startup,
    /// The best of the candidates by l(x) / g(x).
    Model,
}

impl Origin {
    /// The name to store and show: `startup` or `model`.
    pub fn name(self) -> &'static str {
        match self {
            Origin::Startup => "startup",
            Origin::Model => "model",
        }
    }
}

/// A suggested point and how it was chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct Suggestion {
    pub point: Point,
    pub origin: Origin,
}

/// The size of the good set for `n` observations: min(⌈n / 10⌉, 25).
pub fn gamma(n: usize) -> usize {
    n.div_ceil(10).min(25)
}

/// The observations' split: the indices of the best `gamma(n)` (by value, NaN as the worst,
/// ties in trial order) and of the rest, each in trial order.
pub fn split(values: &[f64]) -> (Vec<usize>, Vec<usize>) {
    let key = |v: f64| if v.is_nan() { f64::INFINITY } else { v };
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| key(values[a]).total_cmp(&key(values[b])));
    let mut good = order[..gamma(values.len())].to_vec();
    let mut bad = order[gamma(values.len())..].to_vec();
    good.sort_unstable();
    bad.sort_unstable();
    (good, bad)
}

impl Tpe {
    /// Suggestion `index` (from 0) of a search of `space` seeded with `seed`, minimising.
    ///
    /// `observations` are the finished trials' points and values, in trial order; `pending`
    /// the points of trials started and not finished (after them in trial order). A point
    /// that does not fit the space is an error naming it.
    pub fn suggest(
        &self,
        space: &Space,
        seed: u64,
        index: usize,
        observations: &[(Point, f64)],
        pending: &[Point],
    ) -> Result<Suggestion, SearchError> {
        for (row, (point, _)) in observations.iter().enumerate() {
            space.check(point, "observation", row)?;
        }
        for (row, point) in pending.iter().enumerate() {
            space.check(point, "pending point", row)?;
        }
        if observations.len() < self.startup {
            return Ok(Suggestion {
                point: space.random_point(seed, index),
                origin: Origin::Startup,
            });
        }
        let values: Vec<f64> = observations.iter().map(|(_, v)| *v).collect();
        let (good, bad) = split(&values);
        let good: Vec<&Point> = good.iter().map(|&i| &observations[i].0).collect();
        let bad: Vec<&Point> = bad
            .iter()
            .map(|&i| &observations[i].0)
            .chain(pending)
            .collect();
        let mut rng = Rng::derive(seed, &[MODEL_STREAM, index as u64]);
        let point = if self.multivariate || space.len() <= 1 {
            self.best_candidate(space, &good, &bad, &mut rng)
        } else {
            (0..space.len())
                .map(|d| {
                    let one = Space::new(vec![space.dimensions()[d].clone()])
                        .expect("a dimension of a checked space");
                    let project = |points: &[&Point]| -> Vec<Point> {
                        points.iter().map(|p| vec![p[d]]).collect()
                    };
                    let (good, bad) = (project(&good), project(&bad));
                    let good: Vec<&Point> = good.iter().collect();
                    let bad: Vec<&Point> = bad.iter().collect();
                    self.best_candidate(&one, &good, &bad, &mut rng)[0]
                })
                .collect()
        };
        Ok(Suggestion {
            point,
            origin: Origin::Model,
        })
    }

    /// The candidate drawn from l (fitted on `good`) with the largest ln l − ln g.
    fn best_candidate(
        &self,
        space: &Space,
        good: &[&Point],
        bad: &[&Point],
        rng: &mut Rng,
    ) -> Point {
        let l = Parzen::fit(space, good, &default_weights(good.len()));
        let g = Parzen::fit(space, bad, &default_weights(bad.len()));
        let mut best: Option<(f64, Point)> = None;
        for _ in 0..self.candidates.max(1) {
            let candidate = l.sample(rng);
            let score = l.log_pdf(&candidate) - g.log_pdf(&candidate);
            if best.as_ref().is_none_or(|(s, _)| score > *s) {
                best = Some((score, candidate));
            }
        }
        best.expect("at least one candidate").1
    }
}
