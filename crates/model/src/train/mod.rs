//! Training one trial: its settings ([`config`]), the epoch loop ([`train`]), the pure
//! keep-best decision ([`keep_best`]), the checkpoint files ([`checkpoint`]), optimizers
//! ([`optim`]), learning-rate schedules ([`schedule`]), metrics ([`metrics`]), [`predict`]
//! and the training-step benchmark ([`bench`]).

pub mod bench;
pub mod checkpoint;
pub mod config;
mod epoch_loop;
pub mod event;
#[cfg(test)]
mod fidelity;
pub mod keep_best;
pub mod metrics;
pub mod optim;
mod predict;
pub mod schedule;

pub use checkpoint::{Damaged, ModelCard, Recovery, BEST, LAST, PREVIOUS, PREVIOUS_BEST};
pub use config::{Objective, TrainConfig, Trial};
pub use epoch_loop::{train, Outcome, TrainError};
pub use event::{NamedEpoch, TrialEvent};
pub use keep_best::Best;
pub use metrics::EpochMetrics;
pub use predict::{predict, PredictError, Prediction};
