//! [`Prune`]: the `[prune]` table, how a sweep stops unpromising trials early. The file only
//! describes the rule; the runner makes the decisions.

/// How a sweep stops unpromising trials before their last epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prune {
    /// Successive halving: every trial pauses at each rung ([`Prune::rungs`]), and once every
    /// trial has reached it the best 1/`reduction_factor` of them (by the sweep's objective;
    /// ties by grid order) go on to the next rung.
    Halving {
        /// The first rung, in epochs (at least 1).
        min_epochs: u32,
        /// η: each rung is η times the previous one, and keeps 1/η of its trials (at least 2).
        reduction_factor: u32,
    },
    /// Median stopping: after `warmup_epochs`, a trial stops when its best objective so far is
    /// worse than the median of the other trials' best at the same epoch, counting only
    /// epochs that at least `min_trials` trials reached.
    Median {
        /// Epochs every trial trains before it may be stopped.
        warmup_epochs: u32,
        /// How many trials must have reached an epoch for it to be compared (at least 1).
        min_trials: usize,
    },
}

impl Prune {
    /// The names of `method`, as written in the file.
    pub const METHODS: [&'static str; 2] = ["halving", "median"];

    /// The method's name, as written in the file.
    pub fn method(&self) -> &'static str {
        match self {
            Prune::Halving { .. } => "halving",
            Prune::Median { .. } => "median",
        }
    }

    /// The epochs at which a trial of `epochs` epochs pauses to be compared, the last being
    /// `epochs` itself: for halving, `min_epochs`·η^k for k = 0, 1, … while below `epochs`,
    /// then `epochs` (min 1, η 3, 20 epochs: [1, 3, 9, 20]). Median stopping never pauses a
    /// trial, so its only rung is the end.
    pub fn rungs(&self, epochs: u32) -> Vec<u32> {
        let mut rungs = Vec::new();
        if let Prune::Halving {
            min_epochs,
            reduction_factor,
        } = *self
        {
            let mut rung = min_epochs.max(1);
            while rung < epochs {
                rungs.push(rung);
                // Saturating: a rung past u32::MAX is past every `epochs` too.
                rung = rung.saturating_mul(reduction_factor.max(2));
            }
        }
        rungs.push(epochs);
        rungs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn halving(min_epochs: u32, reduction_factor: u32) -> Prune {
        Prune::Halving {
            min_epochs,
            reduction_factor,
        }
    }

    #[test]
    fn rungs_grow_by_the_reduction_factor_and_end_at_the_last_epoch() {
        for (min, eta, epochs, rungs) in [
            (1, 3, 20, vec![1, 3, 9, 20]),
            (2, 3, 6, vec![2, 6]),
            (2, 3, 20, vec![2, 6, 18, 20]),
            (1, 2, 8, vec![1, 2, 4, 8]),
            (1, 2, 9, vec![1, 2, 4, 8, 9]),
            (3, 4, 48, vec![3, 12, 48]),
            (1, 3, 1, vec![1]),
            (5, 3, 5, vec![5]),
            (6, 3, 5, vec![5]),
            (100, 3, 20, vec![20]),
            (1, 1000, 20, vec![1, 20]),
            (1, u32::MAX, u32::MAX, vec![1, u32::MAX]),
        ] {
            assert_eq!(
                halving(min, eta).rungs(epochs),
                rungs,
                "min_epochs {min}, η {eta}, {epochs} epochs"
            );
        }
    }

    #[test]
    fn median_stopping_never_pauses_a_trial() {
        let median = Prune::Median {
            warmup_epochs: 1,
            min_trials: 3,
        };
        assert_eq!(median.rungs(20), vec![20]);
        assert_eq!(median.method(), "median");
        assert_eq!(halving(1, 3).method(), "halving");
    }
}
