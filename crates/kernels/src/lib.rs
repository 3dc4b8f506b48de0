//! `sweep-kernels`: the CPU kernels under sweep's models, on slices. Each function takes `f32`
//! slices and the shapes that say what they hold, and returns (or writes) values: no tensor,
//! no device, no candle. `sweep-model` keeps the candle glue (the custom ops that read a
//! tensor's storage and call these, and the ResNet trunk's own forward and backward).
//!
//! Why a crate of its own. The kernels used to live in `sweep-model`'s `ops/` beside the
//! custom ops, and the convolution's file owned the geometry and the epilogue that its own
//! kernels imported back: the workspace's one import circle. As `gemm` and `matrixmultiply`
//! keep their kernels in a crate on slices, and candle's `conv.rs` defines the parameters its
//! backends import, here the parameters are upstream and the kernels downstream: a crate
//! cannot import its user, so the arrows can only point one way, and the kernels are tested
//! against their definitions and timed on the seed's layers (`sweep bench --layers`) without
//! building a tensor. Nearly every `unsafe` line of the workspace is here, in crate-private
//! functions: each block says why it is sound, and each `#[target_feature]` body sits behind
//! a safe wrapper that asserts the lengths it trusts and the [`Cpu`] it needs.
//!
//! The modules, from the leaves up (a module imports only those above it in this list):
//!
//! - [`cpu`]: [`Cpu`], the one place that asks the processor for its features, and the
//!   thread count a product may use;
//! - [`geometry`]: [`Geometry`] (a convolution's shape), [`valid`], [`Epilogue`];
//! - `uninit`, `scratch`, `layout`: vectors written before they are read, per-thread working
//!   buffers, transposes;
//! - `im2col`: unfolding images into the gemm's matrix and folding it back;
//! - `implicit_gemm`: the forward's and the input gradient's AVX-512 kernel;
//! - `weight_grad`: the weight gradient's AVX-512 kernels;
//! - [`matmul`]: the `gemm` crate's products with explicit strides, and our dense forward;
//! - [`conv`]: a convolution's three products over a batch, each on the kernel [`Kernel`]
//!   picks;
//! - [`pool`], [`norm`], [`activation`]: the 2×2 max pool, batch normalisation (the pool fused
//!   in) and the element-wise ReLU kernels.

pub mod activation;
pub mod conv;
pub mod cpu;
pub mod geometry;
mod im2col;
mod implicit_gemm;
mod layout;
pub mod matmul;
pub mod norm;
pub mod pool;
mod scratch;
#[cfg(test)]
mod testing;
mod uninit;
mod weight_grad;

pub use conv::Kernel;
pub use cpu::Cpu;
pub use geometry::{valid, Epilogue, Geometry, GeometryError};
