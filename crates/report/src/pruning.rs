//! Where pruning has a trial, in words: its last decision, or the rung it trains to or waits
//! at. `sweep show`'s pruning column and the report page's status notes.

use sweep_store::{TrialRow, TrialStatus};

/// The trial's standing with pruning, given its last decision's reason; `None` for a trial
/// pruning never touched. Each note reads on its own, without the status beside it.
pub fn pruning_note(t: &TrialRow, decision: Option<&String>) -> Option<String> {
    // A promoted trial on its way to the next rung says both.
    let after = |reason: Option<&String>, rest: String| match reason {
        Some(reason) => format!("{reason}; {rest}"),
        None => rest,
    };
    match (t.status, t.until_epoch, decision) {
        (TrialStatus::Paused, Some(rung), _) => Some(format!(
            "paused at epoch {rung}: waits for its rung's decision"
        )),
        (TrialStatus::Stopped, _, Some(reason)) => Some(reason.clone()),
        (TrialStatus::Pending, Some(rung), reason) => {
            Some(after(reason, format!("waits to train to epoch {rung}")))
        }
        (TrialStatus::Running, Some(rung), reason) => {
            Some(after(reason, format!("training to epoch {rung}")))
        }
        (TrialStatus::Interrupted, Some(rung), reason) => Some(after(
            reason,
            format!("interrupted before epoch {rung}, its rung: the next run resumes it"),
        )),
        (_, _, Some(reason)) => Some(reason.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sweep_store::{Direction, Goal, TrialSummary};

    fn trial(status: TrialStatus, until_epoch: Option<i64>) -> TrialRow {
        TrialRow {
            id: 1,
            number: 1,
            grid_index: 0,
            summary: TrialSummary {
                params: Default::default(),
                goal: Goal {
                    metric: "val_f1".into(),
                    direction: Direction::Maximise,
                },
                epochs: 9,
                classes: None,
            },
            config: "{}".into(),
            config_hash: "h".into(),
            status,
            until_epoch,
            device: None,
            attempts: 1,
            error: None,
            best_epoch: None,
            objective: None,
            checkpoint: None,
            slurm_job: None,
            note: None,
            origin: None,
        }
    }

    #[test]
    fn every_standing_says_what_it_means() {
        let promoted = "promoted at epoch 2: 1 of 9".to_string();
        let stopped = "stopped at epoch 2: 4 of 9, below the top 3".to_string();
        for (status, until, decision, note) in [
            (
                TrialStatus::Paused,
                Some(2),
                None,
                Some("paused at epoch 2: waits for its rung's decision"),
            ),
            (
                TrialStatus::Stopped,
                None,
                Some(&stopped),
                Some(stopped.as_str()),
            ),
            (
                TrialStatus::Pending,
                Some(2),
                None,
                Some("waits to train to epoch 2"),
            ),
            (
                TrialStatus::Pending,
                Some(6),
                Some(&promoted),
                Some("promoted at epoch 2: 1 of 9; waits to train to epoch 6"),
            ),
            (
                TrialStatus::Running,
                Some(2),
                None,
                Some("training to epoch 2"),
            ),
            (
                TrialStatus::Interrupted,
                Some(2),
                None,
                Some("interrupted before epoch 2, its rung: the next run resumes it"),
            ),
            (
                TrialStatus::Done,
                None,
                Some(&promoted),
                Some(promoted.as_str()),
            ),
            (TrialStatus::Done, None, None, None),
        ] {
            assert_eq!(
                pruning_note(&trial(status, until), decision).as_deref(),
                note,
                "{status} until {until:?}"
            );
        }
    }
}
