//! [`Cpu`]: where a kernel runs, the vector instructions it may use and the threads it may
//! split over. This is the one place that asks the processor for its features: every kernel
//! with a `#[target_feature]` body is reached through a safe wrapper that asserts what its
//! `Cpu` says, and a `Cpu` says a feature is there only when [`Cpu::detect`] found it.

/// The machine a kernel runs on: its vector extensions and a thread count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cpu {
    threads: usize,
    avx: bool,
    avx512f: bool,
}

impl Cpu {
    /// This machine's features, on `threads` threads (at least one).
    pub fn detect(threads: usize) -> Self {
        #[cfg(target_arch = "x86_64")]
        let (avx, avx512f) = (
            std::arch::is_x86_feature_detected!("avx"),
            std::arch::is_x86_feature_detected!("avx512f"),
        );
        #[cfg(not(target_arch = "x86_64"))]
        let (avx, avx512f) = (false, false);
        Self {
            threads: threads.max(1),
            avx,
            avx512f,
        }
    }

    /// The same threads without any of our vector kernels: the im2col path around the `gemm`
    /// crate (whose own kernels still pick their instructions), what a CPU without AVX runs,
    /// and what the tests compare the vector kernels with.
    pub fn portable(self) -> Self {
        Self {
            avx: false,
            avx512f: false,
            ..self
        }
    }

    /// The threads a product may split over.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Whether AVX runs here: the 8×8 transposes.
    pub fn avx(&self) -> bool {
        self.avx
    }

    /// Whether AVX-512F runs here: the implicit gemm, the weight gradients' kernels and the
    /// dense forward's tile.
    pub fn avx512f(&self) -> bool {
        self.avx512f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_portable_cpu_claims_no_vector_kernel_and_keeps_its_threads() {
        let portable = Cpu::detect(3).portable();
        assert!(!portable.avx() && !portable.avx512f());
        assert_eq!(portable.threads(), 3);
        assert_eq!(Cpu::detect(0).threads(), 1, "at least one thread");
    }
}
