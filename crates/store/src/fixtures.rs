//! What the store's unit tests share: a trial's summary, a sweep's trials, a heartbeat
//! timeout and an epoch.

use std::time::Duration;

use crate::rows::{EpochRow, TrialOrigin};
use crate::summary::{Direction, Goal, Param, TrialSummary};
use crate::sweeps::NewTrial;

/// A trial of 3 epochs, judged by its validation macro F1, without params.
pub(crate) fn summary() -> TrialSummary {
    TrialSummary {
        params: Default::default(),
        goal: Goal {
            metric: "val_f1".into(),
            direction: Direction::Maximise,
        },
        epochs: 3,
        classes: None,
    }
}

pub(crate) fn new_trials(n: usize) -> Vec<NewTrial> {
    (0..n)
        .map(|i| NewTrial {
            grid_index: i as i64,
            summary: TrialSummary {
                params: [("lr".to_string(), Param::Int(i as i64))].into(),
                ..summary()
            },
            config: "{}".into(),
            config_hash: format!("hash{i}"),
            until_epoch: None,
            origin: TrialOrigin::Grid,
        })
        .collect()
}

pub(crate) const STALE: Duration = Duration::from_secs(60);

pub(crate) fn epoch(n: i64, f1: f64) -> EpochRow {
    EpochRow {
        epoch: n,
        seconds: 2.0,
        metrics: [
            ("train_loss", 1.0),
            ("train_acc", 0.5),
            ("val_loss", 1.1),
            ("val_acc", 0.4),
            ("val_f1", f1),
            ("lr", 0.01),
        ]
        .map(|(name, value)| (name.to_string(), value))
        .into(),
    }
}
