//! BOHB's budget rule (Falkner et al. 2018): with Hyperband's brackets, which budget's results
//! the model is fitted on. HpBandSter's `bohb` config generator fits a model per budget once
//! it has enough results and samples from the largest; the paper's Algorithm 2 states the
//! threshold as N_min + 2 results with N_min = dims + 1. BOHB's third of purely random draws is
//! not kept: TPE's prior kernel already keeps every region reachable.

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
