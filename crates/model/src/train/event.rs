//! [`TrialEvent`]: what a trial reports, one type from the training loop to the trial
//! process's stdout (a line of JSON each) to the scheduler, its database writes and its
//! progress display.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::train::checkpoint::Recovery;
use crate::train::metrics::{Confusion, EpochMetrics};

/// What a trial process reports, one JSON object per line.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TrialEvent {
    /// Training started on `device`. A resumed trial sends the epochs its checkpoint holds
    /// (done by earlier runs): the scheduler records them again, so that no epoch of a
    /// checkpoint is missing from the database whichever process died when.
    ///
    /// `recovered` tells how it got past checkpoints that did not load (damaged: it resumed
    /// from an older one, or started again from epoch 1, and `history` is what it resumed
    /// from). Whatever the database holds beyond `history` is trained again.
    Started {
        device: String,
        #[serde(default)]
        history: Vec<EpochMetrics>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        recovered: Option<Recovery>,
    },
    /// A training batch finished.
    Batch {
        epoch: u32,
        batch: usize,
        batches: usize,
        loss: f64,
    },
    /// An epoch finished and was evaluated.
    Epoch(EpochMetrics),
    /// The checkpoints after `epoch` were written.
    Checkpoint {
        epoch: u32,
        path: PathBuf,
        best: bool,
    },
    /// Every epoch ran, or patience ended the trial (`stopped_early` says why); the best
    /// epoch, its objective, checkpoint and confusion matrix.
    Finished {
        best_epoch: u32,
        objective: f64,
        checkpoint: PathBuf,
        confusion: Confusion,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stopped_early: Option<String>,
    },
    /// Stopped on request after `epochs` finished epochs; resumable.
    Interrupted { epochs: u32 },
    /// Reached the epoch it was to train to this time (a pruned sweep's rung); resumable.
    Paused { epochs: u32 },
    /// The trial cannot go on.
    Failed { reason: String },
    /// A command trial's program started on `device`, after the epochs of `history` (those
    /// earlier runs reported and its first report now says it resumed after; empty: it
    /// started from epoch 1). Whatever the database holds beyond `history` is trained again.
    Resumed {
        device: String,
        history: Vec<NamedEpoch>,
    },
    /// An epoch of a command trial, as its program reported it.
    Reported(NamedEpoch),
    /// A command trial's program trained its last epoch (or `note` says why it stopped
    /// before): its best epoch and objective. Its model is the program's own business.
    Completed {
        best_epoch: u32,
        objective: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
}

/// An epoch of metrics by name, as a command trial's program reports them (any names), with
/// its wall time.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NamedEpoch {
    pub epoch: u32,
    pub seconds: f64,
    pub metrics: BTreeMap<String, f64>,
}

impl TrialEvent {
    /// The epochs a starting trial had finished in earlier runs.
    pub fn resumed_epochs(&self) -> u32 {
        match self {
            TrialEvent::Started { history, .. } => history.len() as u32,
            _ => 0,
        }
    }

    /// The event as one line of JSON (no newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("trial events serialise")
    }

    /// Parses one line of a trial's stdout.
    pub fn from_line(line: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_survives_a_json_round_trip() {
        let metrics = EpochMetrics {
            epoch: 3,
            train_loss: 0.1 + 0.2,
            train_acc: 1.0 / 3.0,
            val_loss: 2.5e-9,
            val_acc: 0.75,
            val_f1: 0.123_456_789_012_345_67,
            lr: 0.001,
            seconds: 12.5,
        };
        let events = [
            TrialEvent::Started {
                device: "cuda:1".into(),
                history: vec![metrics.clone()],
                recovered: None,
            },
            TrialEvent::Started {
                device: "cpu".into(),
                history: Vec::new(),
                recovered: Some(Recovery {
                    damaged: vec![crate::train::checkpoint::Damaged {
                        file: "last.safetensors".into(),
                        problem: "the checksum does not match".into(),
                    }],
                    resumed_from: None,
                    epochs: 0,
                }),
            },
            TrialEvent::Batch {
                epoch: 1,
                batch: 7,
                batches: 30,
                loss: 2.25,
            },
            TrialEvent::Epoch(metrics),
            TrialEvent::Checkpoint {
                epoch: 3,
                path: "r/t/last.safetensors".into(),
                best: true,
            },
            TrialEvent::Finished {
                best_epoch: 3,
                objective: 0.5,
                checkpoint: "r/t/best.safetensors".into(),
                confusion: Confusion::from_labels(3, &[0, 1, 2, 2], &[0, 2, 2, 1]),
                stopped_early: Some("stopped early after epoch 3".into()),
            },
            TrialEvent::Interrupted { epochs: 2 },
            TrialEvent::Paused { epochs: 3 },
            TrialEvent::Failed {
                reason: "diverged at epoch 1, batch 3: the loss is NaN".into(),
            },
            TrialEvent::Resumed {
                device: "cpu".into(),
                history: vec![NamedEpoch {
                    epoch: 1,
                    seconds: 0.25,
                    metrics: [("bleu".to_string(), 0.1 + 0.2)].into(),
                }],
            },
            TrialEvent::Reported(NamedEpoch {
                epoch: 2,
                seconds: 1.0,
                metrics: [("val_acc".to_string(), 1.0 / 3.0)].into(),
            }),
            TrialEvent::Completed {
                best_epoch: 2,
                objective: 0.5,
                note: Some("the program ended after 2 of 5 epochs".into()),
            },
        ];
        for event in events {
            let line = event.to_line();
            assert!(!line.contains('\n'));
            assert_eq!(TrialEvent::from_line(&line).unwrap(), event, "{line}");
        }
        let line = TrialEvent::Interrupted { epochs: 2 }.to_line();
        assert_eq!(line, r#"{"event":"interrupted","epochs":2}"#);
    }
}
