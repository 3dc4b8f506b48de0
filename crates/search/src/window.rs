//! [`window`]: which finished trials suggestion k may use, so that a parallel search suggests
//! the same trials whatever the timing.
//!
//! With S slots, suggestion k uses exactly the results of trials 0..=k − S (`window(k, S)`
//! of them) and treats trials k − S + 1..k − 1 as pending (the constant liar), and the
//! scheduler starts trial k only once trials 0..=k − S have all finished. Why that set: when
//! a slot frees for trial k, trials 0..k − 1 have started and at most S − 1 of them still
//! occupy the other slots, so at least k − S + 1 have finished, but which ones depends on the
//! timing. Waiting for the first k − S + 1 of them fixes the set: every run, on every
//! executor, killed and resumed or not, feeds suggestion k the same observations and the same
//! pending points, so it makes the same suggestion (a pure function of them, the seed and k).
//! The same rule with S = 1 is the sequential search, with no waiting at all.
//!
//! The price: a slot that frees while trial k − S is still running idles until it ends.
//! `window(k, L)` with a lag L > S (observe trials 0..=k − L, more pending points) waits
//! less, since a trial must then outlast L − 1 others to hold a slot back, but each
//! suggestion knows less. The test `windowed_schedules_against_the_asynchronous_makespan` measures both against the
//! fully asynchronous order (each slot takes the next trial as it frees, observing whatever
//! has finished), which is what Optuna does and what no seed can reproduce. Measured there
//! (4 slots, 200 trials, log-normal lengths, mean of 200 runs), the makespan against the
//! asynchronous one: lengths with σ = 0.5 (most within ±65%), 1.32× with `window(k, 4)` and
//! 1.03× with `window(k, 8)`; heavy-tailed lengths (σ = 1), 1.82× and 1.33×. The search
//! benchmark (bench/search/README.md) gives the other side: what the extra pending points
//! cost the search at each budget.

/// The number of trials suggestion `index` observes with `slots` slots (or a larger lag):
/// trials `0..window(index, slots)`; the ones from there to `index` are pending.
pub fn window(index: usize, slots: usize) -> usize {
    (index + 1).saturating_sub(slots.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sweep_rng::Rng;

    #[test]
    fn window_observes_the_trials_s_behind() {
        assert_eq!(window(0, 1), 0);
        assert_eq!(window(5, 1), 5, "sequential: every earlier trial");
        assert_eq!(window(3, 4), 0);
        assert_eq!(window(4, 4), 1, "trial 4 of 4 slots waits for trial 0");
        assert_eq!(window(10, 4), 7);
        assert_eq!(window(10, 0), 10, "no slot reads as one");
    }

    /// The makespan of `lengths` run on `slots` slots, trials started in order on the first
    /// free slot; with `lag`, trial k also waits until trials 0..window(k, lag) have ended.
    fn makespan(lengths: &[f64], slots: usize, lag: Option<usize>) -> f64 {
        let mut free = vec![0.0f64; slots];
        let mut ends: Vec<f64> = Vec::with_capacity(lengths.len());
        // prefix_max[j] = the latest end among trials 0..j.
        let mut prefix_max = vec![0.0f64];
        for (k, &length) in lengths.iter().enumerate() {
            let slot = (0..slots)
                .min_by(|&a, &b| free[a].total_cmp(&free[b]))
                .expect("at least one slot");
            let ready = lag.map_or(0.0, |lag| prefix_max[window(k, lag)]);
            let start = free[slot].max(ready);
            let end = start + length;
            free[slot] = end;
            ends.push(end);
            prefix_max.push(prefix_max[k].max(end));
        }
        ends.iter().copied().fold(0.0, f64::max)
    }

    #[test]
    fn windowed_schedules_against_the_asynchronous_makespan() {
        let (slots, trials, runs) = (4, 200, 200);
        let mut ratios = [0.0f64; 2];
        let mut ratios_heavy = [0.0f64; 2];
        for run in 0..runs {
            let mut rng = Rng::derive(11, &[run]);
            // Log-normal lengths with σ = 0.5 (a spread of ±65%), and σ = 1 (heavy tails).
            let mild: Vec<f64> = (0..trials).map(|_| (0.5 * rng.normal()).exp()).collect();
            let heavy: Vec<f64> = (0..trials).map(|_| rng.normal().exp()).collect();
            for (lengths, sums) in [(&mild, &mut ratios), (&heavy, &mut ratios_heavy)] {
                let asynchronous = makespan(lengths, slots, None);
                sums[0] += makespan(lengths, slots, Some(slots)) / asynchronous / runs as f64;
                sums[1] += makespan(lengths, slots, Some(2 * slots)) / asynchronous / runs as f64;
            }
        }
        println!(
            "makespan / asynchronous, {slots} slots, {trials} trials, mean of {runs} runs:\n\
             log-normal σ 0.5: window(k, S) {:.3}, window(k, 2S) {:.3}\n\
             log-normal σ 1:   window(k, S) {:.3}, window(k, 2S) {:.3}",
            ratios[0], ratios[1], ratios_heavy[0], ratios_heavy[1]
        );
        for r in [ratios, ratios_heavy] {
            assert!(r[0] >= 1.0 && r[1] >= 1.0, "waiting never speeds up: {r:?}");
            assert!(r[1] <= r[0], "a larger lag waits less: {r:?}");
        }
        assert!(ratios[0] < 1.5, "mild spread: {ratios:?}");
    }
}
