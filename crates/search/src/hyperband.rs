//! [`Hyperband`]: the brackets of Li et al. 2018 over epochs, and which bracket a trial
//! belongs to, from the seed and the trial's index alone.
//!
//! With R = `max_epochs`, r = `min_epochs` and η = `eta`, s_max = ⌊log_η(R / r)⌋ and bracket
//! s (s_max down to 0, the most exploratory first) starts n_s = ⌈(s_max + 1) / (s + 1) · η^s⌉
//! trials at R·η^−s epochs, keeps ⌊n_s·η^−i⌋ of them at rung i, trained to R·η^(i−s)
//! epochs (rounded down), and ends at R. For R = 81, r = 1, η = 3 that is the paper's table:
//! 81, 34, 15, 8 and 5 trials starting at 1, 3, 9, 27 and 81 epochs.
//!
//! A sweep has a fixed number of trials rather than the paper's sequence of brackets, so
//! each trial joins bracket s with probability n_s / Σ n (Optuna's `HyperbandPruner` does the
//! same with a hash of the study name), drawn from `Rng::derive(seed, [HYPERBAND, index])`:
//! the same on every run, whatever else the sweep holds.

use sweep_rng::Rng;

/// The label of the bracket stream in `Rng::derive(seed, [HYPERBAND_STREAM, index])`.
const HYPERBAND_STREAM: u64 = 0x6879_7065_7262_616e;

/// Hyperband over epochs: `min_epochs` ≥ 1, `max_epochs` ≥ `min_epochs`, `eta` ≥ 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hyperband {
    pub min_epochs: u32,
    pub max_epochs: u32,
    pub eta: u32,
}

/// One rung of a bracket: the trials the paper keeps there and the epochs they reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rung {
    pub trials: u64,
    pub epochs: u32,
}

/// A bracket: `s` halvings, its rungs from the first (all its trials) to `max_epochs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bracket {
    pub s: u32,
    pub rungs: Vec<Rung>,
}

impl Bracket {
    /// The trials the paper starts in this bracket (n_s).
    pub fn trials(&self) -> u64 {
        self.rungs[0].trials
    }

    /// The epochs of its rungs, first to last.
    pub fn epochs(&self) -> Vec<u32> {
        self.rungs.iter().map(|r| r.epochs).collect()
    }
}

impl Hyperband {
    /// s_max = ⌊log_η(max_epochs / min_epochs)⌋: the largest s with min·η^s ≤ max.
    pub fn s_max(&self) -> u32 {
        let (min, max, eta) = (
            self.min_epochs.max(1) as u64,
            self.max_epochs as u64,
            self.eta.max(2) as u64,
        );
        let mut s = 0;
        let mut budget = min * eta;
        while budget <= max {
            s += 1;
            budget *= eta;
        }
        s
    }

    /// The brackets, s = s_max first (the most trials, the fewest epochs) down to s = 0.
    pub fn brackets(&self) -> Vec<Bracket> {
        let s_max = self.s_max();
        let eta = self.eta.max(2) as u64;
        (0..=s_max)
            .rev()
            .map(|s| {
                let eta_s = eta.pow(s);
                let n = ((s_max as u64 + 1) * eta_s).div_ceil(s as u64 + 1);
                let rungs = (0..=s)
                    .map(|i| Rung {
                        trials: n / eta.pow(i),
                        epochs: (self.max_epochs as u64 * eta.pow(i) / eta_s) as u32,
                    })
                    .collect();
                Bracket { s, rungs }
            })
            .collect()
    }

    /// The bracket of trial `index` in a sweep seeded with `seed`: bracket s with
    /// probability n_s / Σ n.
    pub fn bracket_of(&self, seed: u64, index: usize) -> Bracket {
        let brackets = self.brackets();
        let total: u64 = brackets.iter().map(Bracket::trials).sum();
        let mut rng = Rng::derive(seed, &[HYPERBAND_STREAM, index as u64]);
        let mut ticket = ((rng.next_u64() as u128 * total as u128) >> 64) as u64;
        for bracket in &brackets {
            if ticket < bracket.trials() {
                return bracket.clone();
            }
            ticket -= bracket.trials();
        }
        unreachable!("the ticket is below the total")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_for_81_epochs_and_eta_3_are_the_papers_table() {
        let hyperband = Hyperband {
            min_epochs: 1,
            max_epochs: 81,
            eta: 3,
        };
        assert_eq!(hyperband.s_max(), 4);
        let table: Vec<Vec<(u64, u32)>> = hyperband
            .brackets()
            .iter()
            .map(|b| b.rungs.iter().map(|r| (r.trials, r.epochs)).collect())
            .collect();
        // Li et al. 2018, Table 1: (n_i, r_i) per bracket s = 4..0.
        assert_eq!(
            table,
            vec![
                vec![(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)],
                vec![(34, 3), (11, 9), (3, 27), (1, 81)],
                vec![(15, 9), (5, 27), (1, 81)],
                vec![(8, 27), (2, 81)],
                vec![(5, 81)],
            ]
        );
    }

    #[test]
    fn brackets_round_epochs_down_when_the_range_is_not_a_power_of_eta() {
        let hyperband = Hyperband {
            min_epochs: 2,
            max_epochs: 20,
            eta: 3,
        };
        assert_eq!(hyperband.s_max(), 2, "2·9 ≤ 20 < 2·27");
        let epochs: Vec<Vec<u32>> = hyperband.brackets().iter().map(Bracket::epochs).collect();
        assert_eq!(epochs, vec![vec![2, 6, 20], vec![6, 20], vec![20]]);
        let trials: Vec<u64> = hyperband.brackets().iter().map(Bracket::trials).collect();
        assert_eq!(trials, vec![9, 5, 3]);
        let single = Hyperband {
            min_epochs: 5,
            max_epochs: 5,
            eta: 3,
        };
        assert_eq!(
            single.brackets(),
            vec![Bracket {
                s: 0,
                rungs: vec![Rung {
                    trials: 1,
                    epochs: 5
                }]
            }]
        );
    }

    #[test]
    fn bracket_of_depends_on_seed_and_index_only_and_follows_the_bracket_sizes() {
        let hyperband = Hyperband {
            min_epochs: 1,
            max_epochs: 81,
            eta: 3,
        };
        let draws: Vec<u32> = (0..14_300).map(|i| hyperband.bracket_of(7, i).s).collect();
        let again: Vec<u32> = (0..14_300).map(|i| hyperband.bracket_of(7, i).s).collect();
        assert_eq!(draws, again);
        let other: Vec<u32> = (0..100).map(|i| hyperband.bracket_of(8, i).s).collect();
        assert_ne!(&draws[..100], &other[..]);
        // 143 trials per round of brackets: 81, 34, 15, 8, 5, so about 100× each here.
        for (s, expected) in [
            (4, 8100.0),
            (3, 3400.0),
            (2, 1500.0),
            (1, 800.0),
            (0, 500.0),
        ] {
            let count = draws.iter().filter(|&&d| d == s).count() as f64;
            assert!(
                (count - expected).abs() < 4.0 * expected.sqrt(),
                "bracket {s}: {count} of 14300, expected about {expected}"
            );
        }
    }
}
