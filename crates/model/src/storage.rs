//! Access to the CPU storage behind the custom ops of [`conv`](crate::conv),
//! [`norm`](crate::norm), [`activation`](crate::activation) and [`optim`](crate::optim).

use candle_core::{CpuStorage, Layout, Result};

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
