//! Where pruning has a trial, in words: its last decision, or the rung it trains to or waits
//! at. `sweep show`'s pruning column and the report page's status notes.

use sweep_store::{TrialRow, TrialStatus};

/// The trial's standing with pruning, given its last decision's reason; `None` for a trial
/// pruning never touched.
pub fn pruning_note(t: &TrialRow, decision: Option<&String>) -> Option<String> {
    match (t.status, t.until_epoch, decision) {
        (TrialStatus::Paused, Some(rung), _) => Some(format!("paused at epoch {rung}")),
        (TrialStatus::Stopped, _, Some(reason)) => Some(reason.clone()),
        (TrialStatus::Pending | TrialStatus::Running | TrialStatus::Interrupted, Some(rung), _) => {
            Some(format!("to epoch {rung}"))
        }
        (_, _, Some(reason)) => Some(reason.clone()),
        _ => None,
    }
}
