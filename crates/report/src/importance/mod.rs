//! Which hyperparameter mattered: [`analyse`] turns a sweep's trials (a [`Design`]) into an
//! [`Importance`], each term's share of the objective's variance.
//!
//! - **Exact** on a complete factorial grid whose every trial finished ([`Grid`]): the
//!   functional ANOVA of the cell means (`anova`), main effects, pairwise interactions and
//!   the higher-order rest. With a `seed` axis the cell means are over its seeds and the
//!   noise share is the mean variance between a cell's seeds; the shares are of the
//!   variance of every trial's objective (cell means' variance + noise), so they sum to 1,
//!   and each gets a 95% percentile interval from [`resample::RESAMPLES`] bootstrap
//!   resamples of whole seeds (a seed drawn twice counts twice in every cell, which keeps
//!   the grid balanced). Without seeds the decomposition has no sampling to resample: no
//!   interval.
//! - **An estimate** for anything else (random or model-based search; a grid with a failed,
//!   pruned or unfinished trial, which it names): per hyperparameter alone, ε² of its
//!   marginal means over the finished trials (`marginal`), with a 95% interval from
//!   bootstrap resamples of the trials. No interactions.
//!
//! Both are deterministic: the bootstrap draws from a fixed seed, so a database gives the
//! same numbers every time. Everything here is a plain function of its inputs; reading
//! params and objectives from the database is `SweepRows::design`'s job.

pub mod anova;
pub mod design;
pub mod marginal;
pub mod resample;

use serde::Serialize;

use anova::{components, Component, Cube};
pub use design::{Design, Grid, Observation, Outcome, Value};
use marginal::{epsilon_squared, Groups};
use resample::{interval, SplitMix, RESAMPLES, SEED};

/// How the shares were found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// The functional ANOVA of a complete grid: no model, no sampling.
    Exact,
    /// Marginal means of each hyperparameter alone, over whatever trials finished.
    Estimate,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Exact => "exact",
            Method::Estimate => "estimate",
        }
    }
}

/// What a share is the share of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// One hyperparameter's main effect.
    Main,
    /// Two hyperparameters' interaction beyond their main effects.
    Interaction,
    /// Interactions of three or more.
    Higher,
    /// The variance between seeds of one cell.
    Noise,
}

/// One term's share of the objective's variance, with its 95% bootstrap interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Share {
    /// `lr`, `lr × optimizer`, `higher-order interactions`, `seed-to-seed noise`.
    pub term: String,
    pub kind: Kind,
    pub share: f64,
    pub interval: Option<(f64, f64)>,
}

impl Share {
    /// The share as a percentage: `61.2%`.
    pub fn percent(&self) -> String {
        format!("{:.1}%", 100.0 * self.share)
    }

    /// The interval as percentages, `55.0–70.1%`, or `-` without one.
    pub fn interval_text(&self) -> String {
        match self.interval {
            Some((lo, hi)) => format!("{:.1}–{:.1}%", 100.0 * lo, 100.0 * hi),
            None => "-".into(),
        }
    }
}

/// The importance of a sweep's hyperparameters: the shares, largest first within main
/// effects, then interactions, the rest and the noise.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Importance {
    pub method: Method,
    /// What was computed, on what, in a sentence.
    pub description: String,
    /// The trials the shares are computed from.
    pub trials: usize,
    /// What was left out, and why.
    pub left_out: Vec<String>,
    pub shares: Vec<Share>,
}

/// Most trials a report names one by one as left out of an incomplete grid.
const NAMED: usize = 10;
/// Fewest finished trials an estimate is made from.
const FEWEST: usize = 3;

/// The importance of `design`'s hyperparameters: exact on a complete grid, else estimated.
pub fn analyse(design: &Design) -> Importance {
    let Some(grid) = Grid::of(design) else {
        let mut left_out = Vec::new();
        let missing: Vec<&Observation> = design
            .trials
            .iter()
            .filter(|t| t.outcome.objective().is_none())
            .collect();
        if !missing.is_empty() {
            left_out.push(format!(
                "{} trials without a final objective ({})",
                missing.len(),
                reasons(&missing)
            ));
        }
        return estimate(design, "not a complete grid", left_out);
    };
    let missing: Vec<&Observation> = grid
        .slots
        .iter()
        .map(|&i| &design.trials[i])
        .filter(|t| t.outcome.objective().is_none())
        .collect();
    if missing.is_empty() {
        return exact(design, &grid);
    }
    let mut left_out: Vec<String> = missing
        .iter()
        .take(NAMED)
        .map(|t| {
            format!(
                "trial {} ({}) {}",
                t.trial,
                design.params_text(t),
                t.outcome.why_left_out()
            )
        })
        .collect();
    if missing.len() > NAMED {
        left_out.push(format!("and {} more", missing.len() - NAMED));
    }
    let why = format!(
        "the {} grid is incomplete: {} of its {} trials have no final objective ({})",
        grid.shape(&design.names),
        missing.len(),
        grid.slots.len(),
        reasons(&missing)
    );
    estimate(design, &why, left_out)
}

/// `18 stopped by pruning, 2 failed`.
fn reasons(trials: &[&Observation]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for t in trials {
        let why = t.outcome.why_left_out();
        match counts.iter_mut().find(|(w, _)| *w == why) {
            Some((_, n)) => *n += 1,
            None => counts.push((why, 1)),
        }
    }
    let parts: Vec<String> = counts.iter().map(|(w, n)| format!("{n} {w}")).collect();
    parts.join(", ")
}

fn exact(design: &Design, grid: &Grid) -> Importance {
    let sizes: Vec<usize> = grid.axes.iter().map(|(_, l)| l.len()).collect();
    let seeds = grid.seeds.len();
    let y: Vec<f64> = grid
        .slots
        .iter()
        .map(|&i| {
            design.trials[i]
                .outcome
                .objective()
                .expect("every trial of an exact grid finished")
        })
        .collect();
    let cube = Cube::new(&sizes, seeds, &y);
    let shares = cube.shares(&vec![1.0; seeds]);
    let intervals: Vec<Option<(f64, f64)>> = if seeds >= 2 {
        let mut rng = SplitMix::new(SEED);
        let mut samples = vec![Vec::with_capacity(RESAMPLES); shares.len()];
        for _ in 0..RESAMPLES {
            for (sample, share) in samples.iter_mut().zip(cube.shares(&rng.counts(seeds))) {
                sample.push(share);
            }
        }
        samples.iter_mut().map(|s| Some(interval(s))).collect()
    } else {
        vec![None; shares.len()]
    };
    let name = |a: usize| design.names[grid.axes[a].0].as_str();
    let mut out: Vec<Share> = components(sizes.len(), seeds)
        .into_iter()
        .zip(shares)
        .zip(intervals)
        .map(|((component, share), interval)| {
            let (term, kind) = match component {
                Component::Main(a) => (name(a).to_string(), Kind::Main),
                Component::Pair(a, b) => (format!("{} × {}", name(a), name(b)), Kind::Interaction),
                Component::Higher => ("higher-order interactions".into(), Kind::Higher),
                Component::Noise => ("seed-to-seed noise".into(), Kind::Noise),
            };
            Share {
                term,
                kind,
                share,
                interval,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        (a.kind as u8)
            .cmp(&(b.kind as u8))
            .then(b.share.total_cmp(&a.share))
    });
    let mut description = format!(
        "exact: the functional ANOVA of the cell means of the complete {} grid, {} trials",
        grid.shape(&design.names),
        y.len()
    );
    if seeds >= 2 {
        description.push_str(&format!(
            " over {seeds} seeds; the noise is the mean variance between a cell's seeds; \
             95% intervals from {RESAMPLES} bootstrap resamples of whole seeds"
        ));
    }
    Importance {
        method: Method::Exact,
        description,
        trials: y.len(),
        left_out: Vec::new(),
        shares: out,
    }
}

fn estimate(design: &Design, why: &str, mut left_out: Vec<String>) -> Importance {
    let finished: Vec<&Observation> = design
        .trials
        .iter()
        .filter(|t| t.outcome.objective().is_some())
        .collect();
    let y: Vec<f64> = finished
        .iter()
        .filter_map(|t| t.outcome.objective())
        .collect();
    let description = format!(
        "estimate ({why}): each hyperparameter alone, ε² of its marginal means over {} \
         finished trials (numbers with more than {} values in {} quantile bins); no \
         interactions, and the shares need not sum to 1; 95% intervals from {RESAMPLES} \
         bootstrap resamples of the trials",
        y.len(),
        marginal::MAX_LEVELS,
        marginal::BINS,
    );
    let mut shares = Vec::new();
    if y.len() < FEWEST {
        left_out.push(format!(
            "too few finished trials ({}) to estimate from; at least {FEWEST}",
            y.len()
        ));
    } else {
        let ones = vec![1.0; y.len()];
        let mut varied = Vec::new();
        for (i, name) in design.names.iter().enumerate() {
            let values: Vec<Option<Value>> = finished.iter().map(|t| t.values[i].clone()).collect();
            let groups = Groups::of(&values);
            if groups.labels.len() < 2 {
                continue;
            }
            match epsilon_squared(&y, &groups, &ones) {
                Some(share) => varied.push((name, groups, share)),
                None => left_out.push(format!(
                    "{name}: {} groups of {} finished trials, too few to tell",
                    groups.labels.len(),
                    y.len()
                )),
            }
        }
        let mut rng = SplitMix::new(SEED);
        let mut samples = vec![Vec::with_capacity(RESAMPLES); varied.len()];
        for _ in 0..RESAMPLES {
            let weights = rng.counts(y.len());
            for (sample, (_, groups, _)) in samples.iter_mut().zip(&varied) {
                sample.extend(epsilon_squared(&y, groups, &weights));
            }
        }
        for ((name, _, share), mut sample) in varied.into_iter().zip(samples) {
            let interval = (sample.len() >= RESAMPLES / 2).then(|| interval(&mut sample));
            shares.push(Share {
                term: name.clone(),
                kind: Kind::Main,
                share,
                interval,
            });
        }
        shares.sort_by(|a, b| b.share.total_cmp(&a.share));
    }
    Importance {
        method: Method::Estimate,
        description,
        trials: y.len(),
        left_out,
        shares,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3 × 2 grid (lr × optimizer) with `seeds` seeds, objective `f(lr, opt, seed)`.
    fn grid_design(seeds: &[f64], f: impl Fn(f64, usize, f64) -> f64) -> Design {
        let mut trials = Vec::new();
        for lr in [0.1, 0.01, 0.001] {
            for (o, opt) in ["adam", "sgd"].into_iter().enumerate() {
                for &seed in seeds {
                    trials.push(Observation {
                        trial: trials.len() as i64 + 1,
                        values: vec![Some(Value::Number(lr)), Some(Value::Label(opt.into()))],
                        seed: (seeds.len() > 1).then_some(Value::Number(seed)),
                        outcome: Outcome::Finished(f(lr, o, seed)),
                    });
                }
            }
        }
        Design {
            names: vec!["lr".into(), "optimizer".into()],
            trials,
        }
    }

    fn noisy(lr: f64, o: usize, seed: f64) -> f64 {
        -lr.log10() * 0.1 + o as f64 * 0.05 + (seed * 7.3 + lr * 31.0).sin() * 0.02
    }

    #[test]
    fn a_complete_grid_with_seeds_is_exact_with_noise_and_intervals_that_hold_the_share() {
        let result = analyse(&grid_design(&[1.0, 2.0, 3.0, 4.0], noisy));
        assert_eq!(result.method, Method::Exact);
        assert_eq!(result.trials, 24);
        let terms: Vec<&str> = result.shares.iter().map(|s| s.term.as_str()).collect();
        assert_eq!(
            terms,
            ["lr", "optimizer", "lr × optimizer", "seed-to-seed noise"]
        );
        let total: f64 = result.shares.iter().map(|s| s.share).sum();
        assert!((total - 1.0).abs() < 1e-12, "{total}");
        for s in &result.shares {
            let (lo, hi) = s.interval.expect("seeds give intervals");
            assert!(lo <= s.share + 1e-12 && s.share <= hi + 1e-12, "{s:?}");
        }
        assert!(result
            .description
            .contains("complete 3×2 (lr × optimizer) grid"));
    }

    #[test]
    fn the_same_design_gives_the_same_numbers_every_time() {
        let design = grid_design(&[1.0, 2.0, 3.0], noisy);
        assert_eq!(analyse(&design), analyse(&design));
        let mut random = design.clone();
        random.trials.truncate(14);
        assert_eq!(analyse(&random), analyse(&random));
    }

    #[test]
    fn a_failed_trial_makes_the_grid_an_estimate_that_names_it() {
        let mut design = grid_design(&[1.0], noisy);
        design.trials[4].outcome = Outcome::Failed;
        let result = analyse(&design);
        assert_eq!(result.method, Method::Estimate);
        assert_eq!(
            result.left_out,
            ["trial 5 (lr=0.001 optimizer=adam) failed"]
        );
        assert!(
            result
                .description
                .contains("the 3×2 (lr × optimizer) grid is incomplete: 1 of its 6 trials"),
            "{}",
            result.description
        );
        assert!(result.shares.iter().all(|s| s.kind == Kind::Main));
    }

    #[test]
    fn random_draws_are_estimated_and_the_knob_that_matters_comes_first() {
        let mut rng = SplitMix::new(1);
        let trials = (0..200)
            .map(|i| {
                let lr = 10f64.powf(-4.0 + 3.0 * (rng.below(1000) as f64 / 1000.0));
                let dropout = rng.below(600) as f64 / 1000.0;
                let noise = rng.below(1000) as f64 / 1e5;
                Observation {
                    trial: i + 1,
                    values: vec![Some(Value::Number(dropout)), Some(Value::Number(lr))],
                    seed: None,
                    outcome: Outcome::Finished(-lr.log10() + noise),
                }
            })
            .collect();
        let design = Design {
            names: vec!["dropout".into(), "lr".into()],
            trials,
        };
        let result = analyse(&design);
        assert_eq!(result.method, Method::Estimate);
        assert!(result
            .description
            .starts_with("estimate (not a complete grid)"));
        assert_eq!(result.shares[0].term, "lr");
        assert!(result.shares[0].share > 0.8, "{:?}", result.shares);
        assert!(result.shares[1].share < 0.05, "{:?}", result.shares);
    }

    /// statsmodels 0.15's `anova_lm(ols("y ~ C(A) * C(B)"), typ=2)` on the grid of
    /// `scripts/importance_reference.py`: each term's sum of squares over their total, as
    /// that script printed them (to 17 digits; here to what an f64 holds).
    const STATSMODELS_SHARES: [(&str, f64); 4] = [
        ("A", 0.557_316_605_477_223_3),
        ("B", 0.413_514_307_564_987_5),
        ("A × B", 0.006_777_562_723_853_482),
        ("seed-to-seed noise", 0.022_391_524_233_935_763),
    ];

    #[test]
    fn the_exact_shares_match_statsmodels_anova_lm() {
        // The script's objective, integer arithmetic and one division as there.
        let objective = |a: i64, b: i64, seed: i64| {
            let effect = 10 * a - 2 * b * b + if (a, b) == (2, 1) { 3 } else { 0 };
            let noise = 6 * ((7 * a + 3 * b + 5 * seed) % 11 - 5);
            (500 + 10 * effect + noise) as f64 / 1000.0
        };
        let mut trials = Vec::new();
        for a in 0..3 {
            for b in 0..4 {
                for seed in 0..3 {
                    trials.push(Observation {
                        trial: trials.len() as i64 + 1,
                        values: vec![Some(Value::Number(a as f64)), Some(Value::Number(b as f64))],
                        seed: Some(Value::Number(seed as f64)),
                        outcome: Outcome::Finished(objective(a, b, seed)),
                    });
                }
            }
        }
        let design = Design {
            names: vec!["A".into(), "B".into()],
            trials,
        };
        let result = analyse(&design);
        assert_eq!(result.method, Method::Exact);
        for (term, expected) in STATSMODELS_SHARES {
            let share = result.shares.iter().find(|s| s.term == term).unwrap().share;
            assert!(
                (share - expected).abs() < 1e-12,
                "{term}: {share} against {expected}"
            );
        }
    }

    #[test]
    fn too_few_finished_trials_give_no_shares_and_say_so() {
        let mut design = grid_design(&[1.0], noisy);
        for t in &mut design.trials[2..] {
            t.outcome = Outcome::Pruned;
        }
        let result = analyse(&design);
        assert!(result.shares.is_empty());
        assert!(result
            .left_out
            .last()
            .unwrap()
            .starts_with("too few finished trials (2)"));
        assert!(
            result.description.contains("4 stopped by pruning"),
            "{}",
            result.description
        );
    }

    /// How long `analyse` takes at 1,000 and 10,000 trials, exact (a grid with 10 seeds) and
    /// estimated (random draws of 4 numbers): printed, not asserted. Run with
    /// `cargo test --release --workspace --lib importance::tests::timings -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check: prints how long analyse takes"]
    fn timings_at_1000_and_10000_trials() {
        for (levels, seeds) in [([5, 4, 5], 10), ([10, 10, 10], 10)] {
            let mut trials = Vec::new();
            for a in 0..levels[0] {
                for b in 0..levels[1] {
                    for c in 0..levels[2] {
                        for seed in 0..seeds {
                            let y = (a as f64).sqrt()
                                + 0.1 * (b * c) as f64
                                + ((seed * 13 + a * 7 + c) % 17) as f64 / 50.0;
                            trials.push(Observation {
                                trial: trials.len() as i64 + 1,
                                values: [a, b, c].map(|v| Some(Value::Number(v as f64))).to_vec(),
                                seed: Some(Value::Number(seed as f64)),
                                outcome: Outcome::Finished(y),
                            });
                        }
                    }
                }
            }
            let design = Design {
                names: vec!["a".into(), "b".into(), "c".into()],
                trials,
            };
            let started = std::time::Instant::now();
            let result = analyse(&design);
            println!(
                "{} trials, {:?}: {:.3} s",
                design.trials.len(),
                result.method,
                started.elapsed().as_secs_f64()
            );
            let mut rng = SplitMix::new(2);
            let mut random = design.clone();
            for t in &mut random.trials {
                t.values = (0..3)
                    .map(|_| Some(Value::Number(rng.below(1_000_000) as f64)))
                    .collect();
                t.seed = None;
            }
            let started = std::time::Instant::now();
            let result = analyse(&random);
            println!(
                "{} trials, {:?}: {:.3} s",
                random.trials.len(),
                result.method,
                started.elapsed().as_secs_f64()
            );
        }
    }
}
