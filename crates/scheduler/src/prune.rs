//! Pruning decisions, without I/O, from the recorded metrics alone: [`halving`] (successive
//! halving with pause and promotion) and [`median`] (median stopping). The runner loads the
//! sweep's trials and epochs, asks, and applies the answer; the same records give the same
//! decisions, so a sweep killed and resumed, or run again with the same seed, stops and
//! promotes the same trials.

use crate::dispatcher::Pruning;
use crate::sweep_file::Prune;
use sweep_store::{Decision, Direction, EpochRow, Goal, TrialId, TrialStatus, Verdict};

/// What the dispatcher does about a sweep's `[prune]` table.
pub fn pruning(prune: Option<&Prune>) -> Pruning {
    match prune {
        None => Pruning::Off,
        Some(Prune::Halving { .. }) => Pruning::Halving,
        Some(Prune::Median { .. }) => Pruning::Median,
    }
}

/// The epoch a new trial of `epochs` epochs trains to first: its first rung (`None`: to the
/// end).
pub fn first_until(prune: &Prune, epochs: u32) -> Option<i64> {
    let rungs = prune.rungs(epochs);
    (rungs.len() > 1).then(|| rungs[0] as i64)
}

/// How successive halving over `rungs` with reduction factor `eta` spends a sweep of
/// `trials` trials: each rung's epoch and how many trials train to it (all to the first,
/// the top ⌊n/η⌋ of a rung's n, at least one, to the next), as [`halving`] decides.
pub fn halving_plan(rungs: &[u32], eta: u32, trials: usize) -> Vec<(u32, usize)> {
    let mut racing = trials;
    rungs
        .iter()
        .enumerate()
        .map(|(k, &rung)| {
            if k > 0 {
                racing = (racing / eta.max(1) as usize).max(1).min(racing);
            }
            (rung, racing)
        })
        .collect()
}

/// The epochs a [`halving_plan`] trains: each rung's trials over the epochs since the last.
pub fn planned_epochs(plan: &[(u32, usize)]) -> usize {
    let mut last = 0;
    plan.iter()
        .map(|&(rung, trials)| {
            let epochs = (rung - last) as usize * trials;
            last = rung;
            epochs
        })
        .sum()
}

/// The decisions the records call for now (halving), or about `trial` after `epoch`
/// (median), in a sweep of `epochs` epochs.
pub fn decide(
    prune: &Prune,
    epochs: u32,
    goal: &Goal,
    trials: &[TrialView],
    judged: Option<(TrialId, u32)>,
) -> Vec<Decision> {
    match (*prune, judged) {
        (
            Prune::Halving {
                reduction_factor, ..
            },
            _,
        ) => halving(&prune.rungs(epochs), reduction_factor, goal, trials),
        (
            Prune::Median {
                warmup_epochs,
                min_trials,
            },
            Some((id, epoch)),
        ) => trials
            .iter()
            .find(|t| t.id == id)
            .and_then(|t| median(warmup_epochs, min_trials, goal, t, epoch, trials))
            .into_iter()
            .collect(),
        (Prune::Median { .. }, None) => Vec::new(),
    }
}

/// A trial as the pruning rules see it.
#[derive(Debug, Clone, Copy)]
pub struct TrialView<'a> {
    pub id: TrialId,
    pub grid_index: i64,
    pub status: TrialStatus,
    pub until_epoch: Option<i64>,
    /// Its recorded epochs, in order from 1.
    pub epochs: &'a [EpochRow],
}

/// An epoch's value of the goal's metric; an epoch without one (a damaged record: every
/// trial reports its objective each epoch) counts as the worst value there is.
pub fn objective_value(goal: &Goal, epoch: &EpochRow) -> f64 {
    epoch.objective(goal).unwrap_or(match goal.direction {
        Direction::Maximise => f64::NEG_INFINITY,
        Direction::Minimise => f64::INFINITY,
    })
}

/// A trial's best objective over its first `epochs` epochs (`None` before it has them all).
fn best_until(goal: &Goal, trial: &TrialView, epochs: usize) -> Option<f64> {
    let first = trial.epochs.get(..epochs).filter(|e| e.len() == epochs)?;
    first
        .iter()
        .map(|e| objective_value(goal, e))
        .reduce(|a, b| if goal.direction.better(b, a) { b } else { a })
}

/// Successive halving over `rungs` (ascending epochs, the last being `train.epochs`) with
/// reduction factor `eta`. A rung is decided once every trial still in the race (not failed,
/// not stopped at an earlier rung) has recorded its epochs: they are ranked by their best
/// objective up to the rung (ties: grid order), the top ⌊n/η⌋ (at least one) go on to the next
/// rung, and the others end there. Only trials paused at the rung are decided; a rung decided
/// before (trials already promoted or stopped) keeps its decisions, and a grown grid's new
/// cells compete at the first rung as they reach it.
pub fn halving(rungs: &[u32], eta: u32, goal: &Goal, trials: &[TrialView]) -> Vec<Decision> {
    let mut decisions = Vec::new();
    for (k, &rung) in rungs.iter().enumerate().take(rungs.len().saturating_sub(1)) {
        let rung_epochs = rung as usize;
        let racing: Vec<&TrialView> = trials
            .iter()
            .filter(|t| t.status != TrialStatus::Failed)
            .filter(|t| !(t.status == TrialStatus::Stopped && t.epochs.len() < rung_epochs))
            .collect();
        let mut ranked: Vec<(f64, &TrialView)> = Vec::new();
        for t in &racing {
            // A finished trial with fewer epochs than the rung (an `epochs` axis) is judged on
            // all of them.
            let reached = match t.status {
                TrialStatus::Done => rung_epochs.min(t.epochs.len()).max(1),
                _ => rung_epochs,
            };
            // A trial still on its way to this rung: the rung waits, and so do the later ones.
            let Some(best) = best_until(goal, t, reached) else {
                return decisions;
            };
            ranked.push((best, t));
        }
        ranked.sort_by(|(a, x), (b, y)| {
            let order = if goal.direction.better(*a, *b) {
                std::cmp::Ordering::Less
            } else if goal.direction.better(*b, *a) {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            };
            order.then(x.grid_index.cmp(&y.grid_index))
        });
        let keep = (ranked.len() / eta as usize).max(1);
        let cutoff = ranked.get(keep - 1).map(|(v, _)| *v);
        let next = rungs[k + 1];
        let last = k + 2 == rungs.len();
        for (place, (value, t)) in ranked.iter().enumerate() {
            if t.status != TrialStatus::Paused || t.until_epoch != Some(rung as i64) {
                continue;
            }
            let (verdict, reason) = if place < keep {
                let until_epoch = (!last).then_some(next as i64);
                let reason = format!(
                    "promoted at epoch {rung}: {} of {}",
                    place + 1,
                    ranked.len()
                );
                (Verdict::Promote { until_epoch }, reason)
            } else {
                let reason = format!(
                    "stopped at epoch {rung}: {} of {}, below the top {keep}",
                    place + 1,
                    ranked.len()
                );
                (Verdict::Stop, reason)
            };
            decisions.push(Decision {
                trial: t.id,
                epoch: rung as i64,
                verdict,
                value: Some(*value),
                cutoff,
                reason,
            });
        }
    }
    decisions
}

/// Median stopping: after `epoch` (past `warmup_epochs`), `trial` stops if its best objective
/// so far is worse than the median of the other trials' best over the same epochs, counting
/// only trials that reached `epoch` and only once at least `min_trials` did (as Optuna's
/// MedianPruner).
pub fn median(
    warmup_epochs: u32,
    min_trials: usize,
    goal: &Goal,
    trial: &TrialView,
    epoch: u32,
    trials: &[TrialView],
) -> Option<Decision> {
    if epoch <= warmup_epochs {
        return None;
    }
    let mine = best_until(goal, trial, epoch as usize)?;
    let mut others: Vec<f64> = trials
        .iter()
        .filter(|t| t.id != trial.id)
        .filter_map(|t| best_until(goal, t, epoch as usize))
        .collect();
    if others.len() < min_trials {
        return None;
    }
    others.sort_by(f64::total_cmp);
    let n = others.len();
    let median = if n % 2 == 1 {
        others[n / 2]
    } else {
        (others[n / 2 - 1] + others[n / 2]) / 2.0
    };
    goal.direction.better(median, mine).then(|| Decision {
        trial: trial.id,
        epoch: epoch as i64,
        verdict: Verdict::Stop,
        value: Some(mine),
        cutoff: Some(median),
        reason: format!("stopped at epoch {epoch}: below the median of {n} trials"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epochs(f1s: &[f64]) -> Vec<EpochRow> {
        f1s.iter()
            .enumerate()
            .map(|(i, &f1)| EpochRow {
                epoch: i as i64 + 1,
                seconds: 1.0,
                metrics: [("val_loss", 1.0 - f1), ("val_f1", f1)]
                    .map(|(name, value)| (name.to_string(), value))
                    .into(),
            })
            .collect()
    }

    fn goal(metric: &str, direction: Direction) -> Goal {
        Goal {
            metric: metric.into(),
            direction,
        }
    }

    fn view(
        id: i64,
        status: TrialStatus,
        until: Option<i64>,
        epochs: &[EpochRow],
    ) -> TrialView<'_> {
        TrialView {
            id: TrialId(id),
            grid_index: id,
            status,
            until_epoch: until,
            epochs,
        }
    }

    fn verdicts(decisions: &[Decision]) -> Vec<(i64, Verdict)> {
        decisions
            .iter()
            .map(|d| (d.trial.0, d.verdict.clone()))
            .collect()
    }

    use TrialStatus::{Failed, Paused, Running, Stopped};

    #[test]
    fn a_halving_plan_keeps_a_third_per_rung_and_counts_its_epochs() {
        let plan = halving_plan(&[2, 6], 3, 9);
        assert_eq!(plan, [(2, 9), (6, 3)]);
        assert_eq!(
            planned_epochs(&plan),
            9 * 2 + 3 * 4,
            "as the halving test trains"
        );
        let seed = halving_plan(&[2, 6, 18, 20], 3, 27);
        assert_eq!(seed, [(2, 27), (6, 9), (18, 3), (20, 1)]);
        assert_eq!(planned_epochs(&seed), 128, "the README's seed grid");
        assert_eq!(halving_plan(&[1, 3, 9], 3, 2), [(1, 2), (3, 1), (9, 1)]);
        assert_eq!(halving_plan(&[1, 3], 3, 0), [(1, 0), (3, 0)]);
        assert_eq!(halving_plan(&[5], 3, 4), [(5, 4)]);
    }

    #[test]
    fn a_rung_is_decided_once_every_trial_reached_it() {
        let rungs = [1, 3, 9];
        let e: Vec<Vec<EpochRow>> = [0.5, 0.9, 0.1, 0.7, 0.3, 0.6]
            .iter()
            .map(|&f| epochs(&[f]))
            .collect();
        let mut trials: Vec<TrialView> = (0..6)
            .map(|i| view(i, Paused, Some(1), &e[i as usize]))
            .collect();
        let none = epochs(&[]);
        trials.push(view(6, Running, Some(1), &none));
        assert!(
            halving(&rungs, 3, &goal("val_f1", Direction::Maximise), &trials).is_empty(),
            "trial 6 has not reached the rung"
        );
        trials.pop();
        let decisions = halving(&rungs, 3, &goal("val_f1", Direction::Maximise), &trials);
        let promote = Verdict::Promote {
            until_epoch: Some(3),
        };
        assert_eq!(
            verdicts(&decisions),
            [
                (1, promote.clone()),
                (3, promote),
                (5, Verdict::Stop),
                (0, Verdict::Stop),
                (4, Verdict::Stop),
                (2, Verdict::Stop)
            ],
            "the top 6/3 = 2, best first"
        );
        assert_eq!(decisions[0].cutoff, Some(0.7));
        assert_eq!(
            decisions[2].reason,
            "stopped at epoch 1: 3 of 6, below the top 2"
        );
    }

    #[test]
    fn ties_go_to_grid_order_and_a_failed_trial_does_not_compete() {
        let same = epochs(&[0.5]);
        let trials = [
            view(0, Failed, Some(1), &same),
            view(1, Paused, Some(1), &same),
            view(2, Paused, Some(1), &same),
            view(3, Paused, Some(1), &same),
        ];
        let decisions = halving(&[1, 2], 3, &goal("val_f1", Direction::Maximise), &trials);
        assert_eq!(
            verdicts(&decisions),
            [
                (1, Verdict::Promote { until_epoch: None }),
                (2, Verdict::Stop),
                (3, Verdict::Stop)
            ],
            "3 racing, keep 1; the last rung is the end"
        );
    }

    #[test]
    fn later_rungs_see_only_the_promoted_and_earlier_decisions_stand() {
        let rungs = [1, 2, 4];
        let low = epochs(&[0.1]);
        let (a, b, c) = (
            epochs(&[0.9, 0.8]),
            epochs(&[0.8, 0.95]),
            epochs(&[0.7, 0.6]),
        );
        let trials = [
            view(0, Stopped, Some(1), &low),
            view(1, Stopped, Some(1), &low),
            view(2, Stopped, Some(1), &low),
            view(3, Paused, Some(2), &a),
            view(4, Paused, Some(2), &b),
            view(5, Paused, Some(2), &c),
            view(6, Stopped, Some(1), &low),
            view(7, Stopped, Some(1), &low),
            view(8, Stopped, Some(1), &low),
        ];
        let decisions = halving(&rungs, 3, &goal("val_f1", Direction::Maximise), &trials);
        assert_eq!(
            verdicts(&decisions),
            [
                (4, Verdict::Promote { until_epoch: None }),
                (3, Verdict::Stop),
                (5, Verdict::Stop)
            ],
            "rung 1 decided before: nothing new there; at rung 2 the best up to epoch 2 wins"
        );
        // Minimising: the lowest val_loss first.
        let by_loss = halving(&rungs, 3, &goal("val_loss", Direction::Minimise), &trials);
        assert_eq!(by_loss[0].trial, TrialId(4));
    }

    #[test]
    fn a_trial_that_finished_before_a_rung_counts_there_with_all_its_epochs() {
        let (short, a, b) = (
            epochs(&[0.9, 0.95]),
            epochs(&[0.5, 0.6, 0.7, 0.8]),
            epochs(&[0.4, 0.5, 0.6, 0.5]),
        );
        let trials = [
            view(0, TrialStatus::Done, Some(4), &short),
            view(1, Paused, Some(4), &a),
            view(2, Paused, Some(4), &b),
        ];
        let decisions = halving(&[4, 8], 3, &goal("val_f1", Direction::Maximise), &trials);
        assert_eq!(
            verdicts(&decisions),
            [(1, Verdict::Stop), (2, Verdict::Stop)],
            "the 2-epoch trial (0.95) ranks first; the rung is decided, not stuck"
        );
    }

    #[test]
    fn the_median_rule_waits_for_warmup_and_enough_trials() {
        let (good, mid, bad, worse) = (
            epochs(&[0.6, 0.8]),
            epochs(&[0.5, 0.6]),
            epochs(&[0.2, 0.3]),
            epochs(&[0.1, 0.2]),
        );
        let trials = [
            view(0, Running, None, &good),
            view(1, Running, None, &mid),
            view(2, Running, None, &bad),
            view(3, Running, None, &worse),
        ];
        let judge = |warmup, min, t: usize, epoch| {
            median(
                warmup,
                min,
                &goal("val_f1", Direction::Maximise),
                &trials[t],
                epoch,
                &trials,
            )
        };
        assert_eq!(judge(1, 3, 3, 1), None, "epoch 1 is warm-up");
        let stop = judge(1, 3, 3, 2).expect("worse than the median of 0.8, 0.6, 0.3");
        assert_eq!((stop.value, stop.cutoff), (Some(0.2), Some(0.6)));
        assert_eq!(judge(1, 3, 0, 2), None, "the best goes on");
        assert_eq!(judge(1, 4, 3, 2), None, "only 3 others reached epoch 2");
        let short = epochs(&[0.9]);
        let with_short = [trials[0], trials[1], view(4, Running, None, &short)];
        let stop = median(
            0,
            1,
            &goal("val_f1", Direction::Maximise),
            &with_short[1],
            2,
            &with_short,
        )
        .unwrap();
        assert_eq!(
            stop.cutoff,
            Some(0.8),
            "the trial with one epoch does not count at epoch 2"
        );
    }
}
