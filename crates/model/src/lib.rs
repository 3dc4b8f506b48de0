//! `sweep-model`: everything about training one image classifier, synchronously, on one
//! device; it knows nothing of tokio, SQL or plots. Four rooms, one job each:
//!
//! - [`data`]: data sets (Kaggle folders, the decoded-data cache, synthetic images),
//!   augmentation and batches;
//! - [`nn`]: layers in candle-nn's style, the MLP and the ResNet, and [`Net`] that picks one;
//! - `ops` (crate-private): the candle glue over `sweep-kernels` (the CPU custom ops under
//!   the layers) and the data cache's memory map;
//! - [`train`]: the epoch loop, optimizers, metrics, the checkpointer and its keep-best
//!   decision, prediction and the training-step benchmark.
//!
//! The arrows point one way: train → nn → ops → `sweep-kernels` (and nn's trunk calls the
//! kernels directly), train → data; data never imports nn or train (it uses ops only for the
//! cache's memory map), nn takes only the channel count from data, and train's optimizer
//! reaches ops for its fused CPU step. [`rng`], the seeded random streams (`sweep-rng`,
//! re-exported), is shared by data, nn and train. Names of devices, architectures, optimizers
//! and objectives parse with `FromStr` ([`DeviceName`], [`UnknownName`]).

pub mod data;
mod device;
pub mod nn;
mod ops;
pub mod rng;
#[cfg(test)]
mod testing;
pub mod train;
pub mod unknown_name;

pub use data::augment::{Augment, Fill};
pub use data::synthetic::SyntheticSpec;
pub use data::{cache, kaggle};
pub use data::{Dataset, Normalization, Split, SplitName};
pub use device::{device, gpu_count, DeviceName, UnknownDevice};
pub use nn::{Arch, ModelConfig, Net, WeightInit};
pub use train::bench;
pub use train::metrics::Confusion;
pub use train::optim::OptimizerKind;
pub use train::schedule::ScheduleKind;
pub use train::{
    predict, train, EpochMetrics, NamedEpoch, Objective, Outcome, TrainConfig, TrainError, Trial,
    TrialEvent,
};
pub use unknown_name::UnknownName;
