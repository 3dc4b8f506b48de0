//! The CPU custom ops under the layers of [`nn`](crate::nn) (convolution, batch norm, pool,
//! dense products, fused activations) and the gemm kernels below them. Every `unsafe` line of
//! the crate is here; nothing here is public outside the crate.

pub(crate) mod activation;
pub(crate) mod conv;
pub(crate) mod dense;
pub(crate) mod direct;
pub(crate) mod implicit;
pub(crate) mod matmul;
pub(crate) mod mmap;
pub(crate) mod norm;
pub(crate) mod pool;
pub(crate) mod storage;

/// Whether this CPU has AVX-512F, which the kernels of [`implicit`] and [`direct`] need.
pub(crate) fn avx512f() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
