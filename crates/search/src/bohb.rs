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
}
