//! [`with_scratch`]: the working buffers of the convolutions' chunks, kept per thread from one
//! call to the next.

/// Runs `f` on two working buffers of `lens` floats, this thread's, kept from one call to the
/// next: the unfolded images of a chunk are ≈ 9× its activations, and allocating them afresh
/// for every chunk cost a zero-fill (or the kernel's page clearing) of ≈ 1 GB per ResNet step.
/// The buffers hold anything on entry: callers write every element they read. A nested call
/// (rayon running another chunk on this thread while one waits) finds the buffers taken and
/// works on fresh ones.
pub(crate) fn with_scratch<R>(lens: [usize; 2], f: impl FnOnce(&mut [f32], &mut [f32]) -> R) -> R {
    thread_local! {
        static BUFFERS: std::cell::Cell<[Vec<f32>; 2]> = const { std::cell::Cell::new([Vec::new(), Vec::new()]) };
    }
    let mut buffers = BUFFERS.take();
    for (buffer, &len) in buffers.iter_mut().zip(&lens) {
        if buffer.len() < len {
            buffer.resize(len, 0.0);
        }
    }
    let [a, b] = &mut buffers;
    let result = f(&mut a[..lens[0]], &mut b[..lens[1]]);
    BUFFERS.set(buffers);
    result
}
