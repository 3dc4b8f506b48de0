//! Training one trial: the epoch loop ([`train`]), optimizers ([`optim`]), metrics
//! ([`metrics`]), checkpoints ([`checkpoint`]), [`predict`] and the training-step benchmark
//! ([`bench`]).

pub mod bench;
pub mod checkpoint;
mod epoch_loop;
pub mod metrics;
pub mod optim;

pub use epoch_loop::*;
