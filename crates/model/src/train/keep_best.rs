//! Keeping the best epoch: [`after_epoch`] decides, from an epoch's metrics and the best
//! epoch so far, which checkpoints to write ([`CheckpointAction`]), and [`early_stop`]
//! whether a trial with `patience` ends there. No I/O: the
//! [`Checkpointer`](crate::train::checkpoint::Checkpointer) carries the actions out.

use crate::train::config::Objective;
use crate::train::metrics::{Confusion, EpochMetrics};

/// The best epoch so far and its confusion matrix.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Best {
    pub epoch: u32,
    pub objective: f64,
    pub confusion: Confusion,
}

/// A checkpoint to write after an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointAction {
    /// The epoch is the best so far: write the best checkpoint (the model and its card).
    SaveBest,
    /// Write the last checkpoint (model, optimizer and history), to resume from.
    SaveLast,
}

/// The checkpoints to write after `epoch`, in order: the best one when `epoch` beats `best`
/// (or there is no best yet), then always the last one.
pub fn after_epoch(
    objective: Objective,
    epoch: &EpochMetrics,
    best: Option<&Best>,
) -> Vec<CheckpointAction> {
    let value = objective.value(epoch);
    let is_best = best.is_none_or(|b| objective.better(value, b.objective));
    if is_best {
        vec![CheckpointAction::SaveBest, CheckpointAction::SaveLast]
    } else {
        vec![CheckpointAction::SaveLast]
    }
}

/// Why a trial ends before its epochs, if it does: `patience` epochs (0: never) after its
/// best epoch passed without a better objective. `epochs` is how many have finished.
pub fn early_stop(
    objective: Objective,
    patience: u32,
    epochs: u32,
    best: Option<&Best>,
) -> Option<String> {
    let best = best?;
    (patience > 0 && epochs >= best.epoch + patience).then(|| {
        let unit = if patience == 1 { "epoch" } else { "epochs" };
        format!(
            "stopped early after epoch {epochs}: {} did not improve for {patience} {unit} \
             after epoch {}",
            objective.name(),
            best.epoch
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use CheckpointAction::{SaveBest, SaveLast};

    fn epoch(val_f1: f64, val_loss: f64) -> EpochMetrics {
        EpochMetrics {
            epoch: 2,
            train_loss: 1.0,
            train_acc: 0.5,
            val_loss,
            val_acc: 0.5,
            val_f1,
            lr: 0.001,
            seconds: 1.0,
        }
    }

    fn best(objective: f64) -> Best {
        Best {
            epoch: 1,
            objective,
            confusion: Confusion::new(2),
        }
    }

    #[test]
    fn the_first_epoch_is_the_best_so_far() {
        let actions = after_epoch(Objective::ValF1, &epoch(0.1, 2.0), None);
        assert_eq!(actions, [SaveBest, SaveLast], "no best yet => save both");
    }

    #[test]
    fn a_better_epoch_saves_both_checkpoints_and_a_worse_or_equal_one_only_the_last() {
        let cases = [
            (
                Objective::ValF1,
                0.6,
                2.0,
                0.5,
                vec![SaveBest, SaveLast],
                "higher F1",
            ),
            (
                Objective::ValF1,
                0.5,
                2.0,
                0.5,
                vec![SaveLast],
                "equal F1 is not better",
            ),
            (Objective::ValF1, 0.4, 0.1, 0.5, vec![SaveLast], "lower F1"),
            (
                Objective::ValAcc,
                0.0,
                2.0,
                0.4,
                vec![SaveBest, SaveLast],
                "higher accuracy",
            ),
            (
                Objective::ValLoss,
                0.0,
                0.9,
                1.0,
                vec![SaveBest, SaveLast],
                "lower loss",
            ),
            (
                Objective::ValLoss,
                0.9,
                1.1,
                1.0,
                vec![SaveLast],
                "higher loss",
            ),
        ];
        for (objective, f1, loss, so_far, expected, case) in cases {
            let actions = after_epoch(objective, &epoch(f1, loss), Some(&best(so_far)));
            assert_eq!(actions, expected, "{case}");
        }
    }

    #[test]
    fn a_nan_objective_never_beats_a_best() {
        let actions = after_epoch(Objective::ValLoss, &epoch(0.5, f64::NAN), Some(&best(1.0)));
        assert_eq!(actions, [SaveLast]);
    }

    #[test]
    fn patience_ends_a_trial_that_stopped_improving() {
        let at = |epoch| Best { epoch, ..best(0.5) };
        let f1 = Objective::ValF1;
        assert_eq!(early_stop(f1, 2, 3, None), None, "no epoch yet");
        assert_eq!(early_stop(f1, 0, 9, Some(&at(1))), None, "0: never");
        assert_eq!(
            early_stop(f1, 2, 4, Some(&at(3))),
            None,
            "one epoch without improvement"
        );
        assert_eq!(
            early_stop(f1, 2, 5, Some(&at(3))).as_deref(),
            Some("stopped early after epoch 5: val_f1 did not improve for 2 epochs after epoch 3")
        );
        assert_eq!(
            early_stop(f1, 1, 4, Some(&at(3))).as_deref(),
            Some("stopped early after epoch 4: val_f1 did not improve for 1 epoch after epoch 3")
        );
    }
}
