//! Access to the CPU storage behind the custom ops of [`conv`](crate::ops::conv),
//! [`norm`](crate::ops::norm), [`activation`](crate::ops::activation) and [`optim`](crate::train::optim).

use std::mem::MaybeUninit;

use candle_core::{CpuStorage, Layout, Result, Storage, Tensor};
use rayon::prelude::*;

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

/// `len` floats written by `fill(index, part)` over consecutive parts of `chunk` floats (the
/// last may be shorter), in parallel, without zero-filling the vector first: for the
/// activations of a ResNet step that pass alone was ≈ 5% of the step.
///
/// # Safety
///
/// `fill` must write every element of each part it is given.
pub(crate) unsafe fn par_filled(
    len: usize,
    chunk: usize,
    fill: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync,
) -> Vec<f32> {
    assert!(chunk > 0 || len == 0, "par_filled: parts of 0 floats");
    let mut v = Vec::with_capacity(len);
    v.spare_capacity_mut()[..len]
        .par_chunks_mut(chunk.max(1))
        .enumerate()
        .for_each(|(index, part)| fill(index, part));
    // SAFETY: the caller's `fill` wrote every element of every part, and the parts cover
    // `0..len`.
    unsafe { v.set_len(len) };
    v
}

/// The values of a slice whose every element has been written.
///
/// # Safety
///
/// Every element of `part` is initialised.
pub(crate) unsafe fn assume_init(part: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    // SAFETY: `MaybeUninit<f32>` has the layout of `f32`, and the caller vouches that every
    // element is initialised.
    unsafe { &mut *(part as *mut [MaybeUninit<f32>] as *mut [f32]) }
}
