//! BOHB's budget rule (Falkner et al. 2018): with Hyperband's brackets, which budget's results
//! the model is fitted on: the largest budget with enough of them. Enough is N_min + 2 with
//! N_min = dims + 1 in the paper's Algorithm 2 (its KDEs need N_min points for the good and
//! for the bad side); HpBandSter's `bohb` config generator in effect waits for 2·(dims + 1)
//! (it keeps max(dims + 1, 15%) as good and needs dims + 1 more as bad). TPE has no such
//! need (its prior kernel fills in), so the paper's count is kept. BOHB's third of purely
//! random draws is not kept either: the prior kernel already keeps every region reachable.
//!
//! With Hyperband and TPE, suggestion k is then `Tpe::suggest` over the results at
//! `model_budget(..)`: each objective at that many epochs, of the trials of
//! `0..window(k, slots)` that have one, and with the trials after the window as pending (what
//! counts must be a function of the recorded results and k, never of what happens to be
//! running, for the suggestion to stay reproducible); with `None`, the startup draw.

/// BOHB's budget rule (Falkner et al. 2018, Algorithm 2): the model is fitted on the results
/// at the largest budget that has at least N_min + 2 of them, N_min = dims + 1; `None` (draw
/// at random) while no budget has. `results` holds (budget, results at it) pairs.
pub fn model_budget(results: &[(u32, usize)], dims: usize) -> Option<u32> {
    let needed = bohb_min_results(dims);
    results
        .iter()
        .filter(|&&(_, count)| count >= needed)
        .map(|&(budget, _)| budget)
        .max()
}

/// The results a budget needs before BOHB fits a model on it: N_min + 2 = dims + 3.
pub fn bohb_min_results(dims: usize) -> usize {
    dims + 3
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Dimension, Hyperband, Point, Space, Tpe, Value};

    #[test]
    fn bohb_fits_on_the_largest_budget_with_enough_results() {
        // 2 dimensions: a budget needs 5 results.
        assert_eq!(bohb_min_results(2), 5);
        assert_eq!(model_budget(&[], 2), None);
        assert_eq!(model_budget(&[(1, 4), (3, 2)], 2), None, "none has 5");
        assert_eq!(model_budget(&[(1, 12), (3, 5), (9, 4)], 2), Some(3));
        assert_eq!(
            model_budget(&[(9, 5), (1, 40), (3, 13)], 2),
            Some(9),
            "any order"
        );
    }

    /// A sequential BOHB-like run of 60 trials on f(x, epochs) = (x − 3)² + 9 / epochs: each
    /// trial's bracket from [`Hyperband::bracket_of`], its suggestion fitted on the results at
    /// [`model_budget`], and its result recorded at every rung of its bracket (no stopping,
    /// to keep it short). Returns each trial's point and the budget it was fitted on.
    fn bohb_run(seed: u64) -> Vec<(Point, Option<u32>)> {
        let space = Space::new(vec![(
            "x".into(),
            Dimension::Float {
                low: 0.0,
                high: 10.0,
                log: false,
            },
        )])
        .unwrap();
        let hyperband = Hyperband {
            min_epochs: 1,
            max_epochs: 9,
            eta: 3,
        };
        let tpe = Tpe::default();
        let mut results: Vec<(u32, Point, f64)> = Vec::new();
        let mut run = Vec::new();
        for k in 0..60 {
            let mut counts: Vec<(u32, usize)> = Vec::new();
            for (budget, ..) in &results {
                match counts.iter_mut().find(|(b, _)| b == budget) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((*budget, 1)),
                }
            }
            let budget = model_budget(&counts, space.len());
            let point = match budget {
                None => space.random_point(seed, k),
                Some(b) => {
                    let observations: Vec<(Point, f64)> = results
                        .iter()
                        .filter(|(at, ..)| *at == b)
                        .map(|(_, p, y)| (p.clone(), *y))
                        .collect();
                    let tpe = Tpe { startup: 0, ..tpe };
                    tpe.suggest(&space, seed, k, &observations, &[])
                        .unwrap()
                        .point
                }
            };
            let Value::Float(x) = point[0] else {
                unreachable!()
            };
            for epochs in hyperband.bracket_of(seed, k).epochs() {
                results.push((
                    epochs,
                    point.clone(),
                    (x - 3.0).powi(2) + 9.0 / epochs as f64,
                ));
            }
            run.push((point, budget));
        }
        run
    }

    #[test]
    fn bohb_moves_its_model_up_the_budgets_and_replays_the_same() {
        let run = bohb_run(5);
        assert_eq!(
            run,
            bohb_run(5),
            "a pure function of the seed and the results"
        );
        let budgets: Vec<Option<u32>> = run.iter().map(|(_, b)| *b).collect();
        assert_eq!(budgets[0], None, "no results: a random draw");
        let first_model = budgets.iter().position(Option::is_some).unwrap();
        assert!(
            budgets[first_model..].windows(2).all(|w| w[0] <= w[1]),
            "the budget never goes down: {budgets:?}"
        );
        assert_eq!(
            budgets[59],
            Some(9),
            "the full budget in the end: {budgets:?}"
        );
    }
}
