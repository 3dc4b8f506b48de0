//! Access to the CPU storage behind the custom ops of [`ops`](crate::ops), the trunk's
//! calls ([`trunk`](crate::nn::trunk)) and [`optim`](crate::train::optim): a tensor's values
//! as the slice a kernel takes.

use candle_core::{CpuStorage, Layout, Result, Storage, Tensor};

/// The f32 values of a contiguous CPU tensor; `op` and `what` name it in the error.
pub(crate) fn f32_slice<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &str,
    what: &str,
) -> Result<&'a [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((start, end))) => Ok(&v[start..end]),
        _ => candle_core::bail!("{op}: {what} must be a contiguous f32 tensor"),
    }
}

/// `f` of the f32 values of a contiguous CPU tensor, read in place under its storage's lock
/// (a layer's weight, without a copy); `op` and `what` name it in the error.
pub(crate) fn with_f32<R>(
    t: &Tensor,
    op: &str,
    what: &str,
    f: impl FnOnce(&[f32]) -> R,
) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(cpu) => Ok(f(f32_slice(cpu, layout, op, what)?)),
        _ => candle_core::bail!("{op}: {what} must be on the CPU"),
    }
}
