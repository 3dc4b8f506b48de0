//! The networks: [`Net`] (an [`Mlp`](mlp::Mlp) or a [`ResNet`](resnet::ResNet)) chosen by a
//! [`ModelConfig`].

pub mod mlp;
pub mod net;
pub mod resnet;

pub use net::{Arch, ModelConfig, Net, Pass};
