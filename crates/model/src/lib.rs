//! `sweep-model`: everything about training one image classifier, synchronously, on one
//! device. Data sets ([`data`], [`kaggle`], [`cache`], [`synthetic`]), augmentation
//! ([`augment`]), networks ([`net`], [`mlp`], [`resnet`]) and their CPU kernels ([`conv`],
//! [`dense`], [`norm`], [`pool`], [`activation`]), optimizers ([`optim`]), the
//! training loop ([`train`]), metrics ([`metrics`]), checkpoints ([`checkpoint`]) and the
//! training-step benchmark ([`bench`]). It knows nothing of tokio, SQL or plots.

pub mod data;
pub mod nn;
mod ops;
pub mod rng;
#[cfg(test)]
mod testing;
pub mod train;

pub use data::augment::Augment;
pub use data::synthetic::SyntheticSpec;
pub use data::{cache, kaggle};
pub use data::{Dataset, Normalization, Split, SplitName};
pub use nn::{Arch, ModelConfig, Net};
pub use train::bench;
pub use train::metrics::Confusion;
pub use train::optim::OptimizerKind;
pub use train::{
    predict, train, EpochMetrics, Objective, Outcome, Progress, TrainConfig, TrainError, Trial,
};

/// The device a trial runs on, from its name: `cpu` or `cuda:K`.
pub fn device(name: &str) -> candle_core::Result<candle_core::Device> {
    match name {
        "cpu" => Ok(candle_core::Device::Cpu),
        other => match other
            .strip_prefix("cuda:")
            .and_then(|k| k.parse::<usize>().ok())
        {
            Some(k) => candle_core::Device::new_cuda(k),
            None => candle_core::bail!("unknown device `{other}` (use `cpu` or `cuda:K`)"),
        },
    }
}

/// The number of GPUs this process can see (always 0 in a build without the `cuda` feature).
pub fn gpu_count() -> usize {
    #[cfg(feature = "cuda")]
    {
        (0..64)
            .take_while(|&k| candle_core::Device::new_cuda(k).is_ok())
            .count()
    }
    #[cfg(not(feature = "cuda"))]
    {
        0
    }
}
