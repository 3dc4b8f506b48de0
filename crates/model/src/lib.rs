//! `sweep-model`: everything about training one image classifier, synchronously, on one
//! device. Data sets ([`data`], [`kaggle`], [`cache`], [`synthetic`]), augmentation
//! ([`augment`]), networks ([`net`], [`mlp`], [`resnet`]) and their CPU kernels ([`conv`],
//! [`dense`], [`norm`], [`pool`], [`activation`]), optimizers ([`optim`]), the
//! training loop ([`train`]), metrics ([`metrics`]), checkpoints ([`checkpoint`]) and the
//! training-step benchmark ([`bench`]). It knows nothing of tokio, SQL or plots.

pub mod data;
mod device;
pub mod nn;
mod ops;
pub mod rng;
#[cfg(test)]
mod testing;
pub mod train;
pub mod unknown_name;

pub use data::augment::Augment;
pub use data::synthetic::SyntheticSpec;
pub use data::{cache, kaggle};
pub use data::{Dataset, Normalization, Split, SplitName};
pub use device::{device, gpu_count, DeviceName, UnknownDevice};
pub use nn::{Arch, ModelConfig, Net};
pub use train::bench;
pub use train::metrics::Confusion;
pub use train::optim::OptimizerKind;
pub use train::{
    predict, train, EpochMetrics, Objective, Outcome, Progress, TrainConfig, TrainError, Trial,
};
pub use unknown_name::UnknownName;
