//! The candle glue over [`sweep_kernels`]: the CPU custom ops under the layers of
//! [`nn`](crate::nn) (convolution, batch norm, pool, dense products, fused activations), each
//! reading its tensors' storage as slices and calling a kernel; on other devices, candle's
//! own ops. The kernels themselves, and nearly every `unsafe` line, are in `sweep-kernels`.
//! Nothing here is public outside the crate.

use sweep_kernels::Cpu;

pub(crate) mod activation;
pub(crate) mod conv;
pub(crate) mod dense;
pub(crate) mod mmap;
pub(crate) mod norm;
pub(crate) mod pool;
pub(crate) mod storage;

/// Where the kernels run: this CPU's features, on the threads candle's CPU kernels use
/// (`RAYON_NUM_THREADS`, else the machine's cores).
pub(crate) fn cpu() -> Cpu {
    Cpu::detect(candle_core::utils::get_num_threads())
}
