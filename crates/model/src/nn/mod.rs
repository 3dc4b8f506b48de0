//! The networks. Layers in the style of candle-nn (a `Copy + Default` config and a
//! constructor over a `VarBuilder`): [`dense`], [`conv`], [`batch_norm`], and [`pass`]'s
//! dropout; the two families built from them, [`mlp`] and [`resnet`]; [`Net`], which
//! picks one as a [`ModelConfig`] says; and [`Tape`], what a training forward hands its
//! backward. The layers run on the custom ops of [`ops`](crate::ops), over `sweep-kernels`.

pub mod batch_norm;
pub mod config;
pub mod conv;
pub mod dense;
mod init;
pub mod mlp;
pub mod net;
pub mod pass;
pub mod resnet;
pub mod tape;
mod trunk;

pub use config::{Arch, ModelConfig, WeightInit, BN_EPS, BN_MOMENTUM};
pub use net::Net;
pub use pass::Pass;
pub use tape::Tape;
