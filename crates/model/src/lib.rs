//! `sweep-model`: everything about training one image classifier, synchronously, on one
//! device. Data sets ([`data`], [`kaggle`], [`cache`], [`synthetic`]), augmentation
//! ([`augment`]), networks ([`net`], [`mlp`], [`resnet`]) and their CPU kernels ([`conv`],
//! [`dense`], [`norm`], [`pool`], [`activation`]), optimizers ([`optim`]), the
//! training loop ([`train`]), metrics ([`metrics`]), checkpoints ([`checkpoint`]) and the
//! training-step benchmark ([`bench`]). It knows nothing of tokio, SQL or plots.

pub mod activation;
pub mod augment;
pub mod batch;
pub mod bench;
pub mod cache;
pub mod checkpoint;
pub mod conv;
pub mod data;
pub mod dense;
pub mod kaggle;
mod matmul;
pub mod metrics;
pub mod mlp;
pub mod net;
pub mod norm;
pub mod optim;
pub mod pool;
pub mod resnet;
pub mod rng;
mod storage;
pub mod synthetic;
#[cfg(test)]
mod testing;
pub mod train;

pub use augment::Augment;
pub use data::{Dataset, Normalization, Split, SplitName};
pub use metrics::Confusion;
pub use net::{Arch, ModelConfig, Net};
pub use optim::OptimizerKind;
pub use synthetic::SyntheticSpec;
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
