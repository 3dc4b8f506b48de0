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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::{Dimension, Value};
    use crate::window::window;

    fn line() -> Space {
        Space::new(vec![(
            "x".into(),
            Dimension::Float {
                low: 0.0,
                high: 10.0,
                log: false,
            },
        )])
        .unwrap()
    }

    fn x(point: &Point) -> f64 {
        match point[0] {
            Value::Float(x) => x,
            other => panic!("a float, not {other:?}"),
        }
    }

    #[test]
    fn gamma_and_the_split_follow_optuna() {
        assert_eq!(
            [0, 1, 10, 11, 100, 249, 250, 251, 10_000].map(gamma),
            [0, 1, 1, 2, 10, 25, 25, 25, 25]
        );
        // 11 observations: the best 2, ties in trial order, NaN as the worst.
        let values = [5.0, 1.0, 3.0, f64::NAN, 2.0, 4.0, 1.0, 9.0, 8.0, 7.0, 6.0];
        let (good, bad) = split(&values);
        assert_eq!(good, vec![1, 6]);
        assert_eq!(bad, vec![0, 2, 3, 4, 5, 7, 8, 9, 10]);
        let (good, _) = split(&[f64::NAN, f64::NAN, 0.0]);
        assert_eq!(good, vec![2]);
    }

    #[test]
    fn startup_suggestions_are_the_spaces_random_points() {
        let space = line();
        let tpe = Tpe::default();
        let observations: Vec<(Point, f64)> = (0..9)
            .map(|i| (vec![Value::Float(i as f64)], 0.0))
            .collect();
        let s = tpe.suggest(&space, 4, 9, &observations, &[]).unwrap();
        assert_eq!(s.origin, Origin::Startup);
        assert_eq!(s.point, space.random_point(4, 9));
        let observations: Vec<(Point, f64)> = (0..10)
            .map(|i| (vec![Value::Float(i as f64)], 0.0))
            .collect();
        let s = tpe.suggest(&space, 4, 10, &observations, &[]).unwrap();
        assert_eq!(s.origin, Origin::Model);
        assert_eq!(Origin::Model.name(), "model");
    }

    #[test]
    fn a_point_outside_the_space_is_an_error_that_names_it() {
        let space = line();
        let tpe = Tpe::default();
        let bad = [(vec![Value::Float(11.0)], 1.0)];
        let err = tpe.suggest(&space, 1, 1, &bad, &[]).unwrap_err();
        assert!(err.to_string().starts_with("observation 0: `x`"), "{err}");
        let err = tpe
            .suggest(&space, 1, 1, &[], &[vec![Value::Int(3)]])
            .unwrap_err();
        assert!(err.to_string().starts_with("pending point 0"), "{err}");
    }

    #[test]
    fn the_model_looks_near_the_best_and_away_from_pending_points() {
        let space = line();
        let tpe = Tpe::default();
        // 30 observations of (x − 3)²: the model's suggestions cluster around 3.
        let observations: Vec<(Point, f64)> = (0..30)
            .map(|i| {
                let x = x(&space.random_point(1, i));
                (vec![Value::Float(x)], (x - 3.0).powi(2))
            })
            .collect();
        let near: Vec<f64> = (30..60)
            .map(|i| x(&tpe.suggest(&space, 1, i, &observations, &[]).unwrap().point))
            .collect();
        let mean_distance = near.iter().map(|x| (x - 3.0).abs()).sum::<f64>() / 30.0;
        assert!(mean_distance < 1.0, "{near:?}");
        // Ten trials pending at 3 count as bad: the suggestions move off it.
        let pending: Vec<Point> = (0..10).map(|_| vec![Value::Float(3.0)]).collect();
        let away: Vec<f64> = (30..60)
            .map(|i| {
                x(&tpe
                    .suggest(&space, 1, i, &observations, &pending)
                    .unwrap()
                    .point)
            })
            .collect();
        let mean_away = away.iter().map(|x| (x - 3.0).abs()).sum::<f64>() / 30.0;
        assert!(mean_away > mean_distance, "{mean_away} vs {mean_distance}");
    }

    #[test]
    fn independent_dimensions_are_modelled_one_by_one() {
        let space = Space::new(vec![
            (
                "x".into(),
                Dimension::Float {
                    low: -1.0,
                    high: 1.0,
                    log: false,
                },
            ),
            (
                "c".into(),
                Dimension::Choice(vec!["a".into(), "b".into(), "c".into()]),
            ),
        ])
        .unwrap();
        let f = |p: &Point| match (p[0], p[1]) {
            (Value::Float(x), Value::Choice(c)) => x * x + if c == 2 { 0.0 } else { 1.0 },
            _ => unreachable!(),
        };
        for multivariate in [true, false] {
            let tpe = Tpe {
                multivariate,
                ..Tpe::default()
            };
            let mut observations: Vec<(Point, f64)> = Vec::new();
            for i in 0..40 {
                let s = tpe.suggest(&space, 3, i, &observations, &[]).unwrap();
                let value = f(&s.point);
                observations.push((s.point, value));
            }
            let late_c = observations[20..]
                .iter()
                .filter(|(p, _)| p[1] == Value::Choice(2))
                .count();
            assert!(
                late_c >= 12,
                "multivariate {multivariate}: {late_c} of 20 pick c"
            );
        }
    }

    /// Runs `trials` of `f` on `slots` slots with trial lengths drawn from `timing`; with
    /// `windowed`, suggestion k observes trials 0..window(k, slots) (waiting for them) and
    /// treats the rest as pending, else whatever has finished when its slot frees. Returns the
    /// suggestions in trial order and the order in which the trials finished.
    fn simulate(
        windowed: bool,
        slots: usize,
        trials: usize,
        timing: u64,
    ) -> (Vec<Point>, Vec<usize>) {
        let space = Space::new(vec![
            (
                "x".into(),
                Dimension::Float {
                    low: -5.0,
                    high: 10.0,
                    log: false,
                },
            ),
            (
                "n".into(),
                Dimension::Int {
                    low: 1,
                    high: 64,
                    log: true,
                },
            ),
        ])
        .unwrap();
        let f = |p: &Point| match (p[0], p[1]) {
            (Value::Float(x), Value::Int(n)) => (x - 2.0).powi(2) + ((n as f64).ln() - 2.0).powi(2),
            _ => unreachable!(),
        };
        let tpe = Tpe {
            startup: 5,
            ..Tpe::default()
        };
        let mut lengths = Rng::new(timing);
        let mut free = vec![0.0f64; slots];
        let mut points: Vec<Point> = Vec::new();
        let mut ends: Vec<f64> = Vec::new();
        for k in 0..trials {
            let slot = (0..slots)
                .min_by(|&a, &b| free[a].total_cmp(&free[b]))
                .unwrap();
            let mut now = free[slot];
            let (observed, pending): (Vec<usize>, Vec<usize>) = if windowed {
                let w = window(k, slots);
                now = ends[..w].iter().copied().fold(now, f64::max);
                ((0..w).collect(), (w..k).collect())
            } else {
                (0..k).partition(|&j| ends[j] <= now)
            };
            let observations: Vec<(Point, f64)> = observed
                .iter()
                .map(|&j| (points[j].clone(), f(&points[j])))
                .collect();
            let pending: Vec<Point> = pending.iter().map(|&j| points[j].clone()).collect();
            let s = tpe.suggest(&space, 42, k, &observations, &pending).unwrap();
            let end = now + (1.5 * lengths.normal()).exp();
            free[slot] = end;
            ends.push(end);
            points.push(s.point);
        }
        let mut finish_order: Vec<usize> = (0..trials).collect();
        finish_order.sort_by(|&a, &b| ends[a].total_cmp(&ends[b]));
        (points, finish_order)
    }

    #[test]
    fn windowed_suggestions_are_the_same_whatever_order_trials_finish_in() {
        let (a, finished_a) = simulate(true, 3, 40, 1);
        let (b, finished_b) = simulate(true, 3, 40, 2);
        assert_ne!(finished_a, finished_b, "the timings differ");
        assert_eq!(a, b, "the same suggestions in the same order");
        let (sequential, _) = simulate(true, 1, 40, 3);
        assert_eq!(
            sequential,
            simulate(false, 1, 40, 4).0,
            "one slot: no pending at all"
        );
        // Observing whatever has finished (as Optuna does) makes them depend on the timing.
        let (c, _) = simulate(false, 3, 40, 1);
        let (d, _) = simulate(false, 3, 40, 2);
        assert_ne!(c, d);
    }
}
