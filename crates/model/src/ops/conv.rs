//! [`conv2d`]: a 2-D convolution whose CPU forward and backward are im2col/col2im around a
//! fast gemm, as a candle custom op. candle's own CPU backward computes the input gradient
//! with a plain-loop `conv_transpose2d` and the weight gradient as a convolution with a huge
//! dilated kernel (≈ 7 GFLOP/s on the stem); here all three products run at the gemm's rate,
//! and no gradient is computed for an input that nothing trains (the images).
//!
//! On other devices the call goes to candle's `conv2d` (cuDNN's forward on CUDA). The three
//! products (forward, input gradient, weight gradient) are separate ops so that a CUDA
//! backward (cuDNN's backward-data/backward-filter or im2col + cuBLAS) can be added beside the
//! CPU one.

use std::mem::MaybeUninit;

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::ops::direct;
use crate::ops::implicit;
use crate::ops::matmul::{gemm, gemm_add_into, gemm_into, gemm_into_uninit};
use crate::ops::storage::{assume_init, f32_slice};

/// The shape of one convolution: input `n × c × h × w`, kernel `o × c × k × k`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
}

impl Geometry {
    pub(crate) fn oh(&self) -> usize {
        (self.h + 2 * self.pad - self.k) / self.stride + 1
    }
    pub(crate) fn ow(&self) -> usize {
        (self.w + 2 * self.pad - self.k) / self.stride + 1
    }
    /// Rows of the unfolded input: one per (channel, kernel row, kernel column).
    fn ckk(&self) -> usize {
        self.c * self.k * self.k
    }
    /// Columns of the unfolded input: one per output pixel.
    fn pixels(&self) -> usize {
        self.oh() * self.ow()
    }
}

/// The output positions `o` in `0..outputs` whose input position `o · stride + offset` lies in
/// `0..inputs`: one range, so the loops over it need no bounds test per element.
pub(crate) fn valid(
    outputs: usize,
    inputs: usize,
    stride: usize,
    offset: isize,
) -> std::ops::Range<usize> {
    let lo = if offset >= 0 {
        0
    } else {
        (-offset as usize).div_ceil(stride)
    };
    let last = inputs as isize - 1 - offset;
    let hi = if last < 0 {
        0
    } else {
        (last as usize / stride + 1).min(outputs)
    };
    lo.min(hi)..hi
}

/// For a stride-1 convolution whose output is as large as its input, the positions one kernel
/// offset `(ki, kj)` reads form one contiguous run of the plane: output positions `to` (in
/// `oy · ow + ox`) read the input from `from` onward, except the border columns (`xs`'
/// complement in each valid row), which would wrap onto the neighbouring rows.
struct Span {
    to: std::ops::Range<usize>,
    from: usize,
    ys: std::ops::Range<usize>,
    xs: std::ops::Range<usize>,
}

impl Span {
    fn of(g: &Geometry, ki: usize, kj: usize) -> Option<Self> {
        if g.stride != 1 || g.oh() != g.h || g.ow() != g.w {
            return None;
        }
        let pad = g.pad as isize;
        let ys = valid(g.h, g.h, 1, ki as isize - pad);
        let xs = valid(g.w, g.w, 1, kj as isize - pad);
        if ys.is_empty() || xs.is_empty() {
            return None;
        }
        let start = ys.start * g.w + xs.start;
        let end = (ys.end - 1) * g.w + xs.end;
        let from = (ys.start + ki - g.pad) * g.w + xs.start + kj - g.pad;
        Some(Self {
            to: start..end,
            from,
            ys,
            xs,
        })
    }

    /// Calls `f` with the output positions of the border columns inside `to`.
    fn for_border(&self, g: &Geometry, mut f: impl FnMut(std::ops::Range<usize>)) {
        for oy in self.ys.clone() {
            let line = oy * g.w;
            if oy > self.ys.start && self.xs.start > 0 {
                f(line..line + self.xs.start);
            }
            if oy + 1 < self.ys.end && self.xs.end < g.w {
                f(line + self.xs.end..line + g.w);
            }
        }
    }
}

/// Unfolds every image of `x` (`n × c × h × w`) into `cols`, a `ckk × (n · pixels)` matrix,
/// image `i` in columns `i · pixels ..`, so that one gemm covers several images. Every
/// element of `cols` is written (zeros where a window hangs over the border), so it may hold
/// anything before.
fn im2col(x: &[f32], g: &Geometry, cols: &mut [f32]) {
    let (oh, ow) = (g.oh(), g.ow());
    let pixels = oh * ow;
    let width = g.n * pixels;
    let image = g.c * g.h * g.w;
    let pad = g.pad as isize;
    for (row, out) in cols[..g.ckk() * width].chunks_mut(width).enumerate() {
        let c = row / (g.k * g.k);
        let (ki, kj) = ((row / g.k) % g.k, row % g.k);
        let (ys, xs) = (
            valid(oh, g.h, g.stride, ki as isize - pad),
            valid(ow, g.w, g.stride, kj as isize - pad),
        );
        for (i, block) in out.chunks_mut(pixels).enumerate() {
            let plane = &x[i * image + c * g.h * g.w..i * image + (c + 1) * g.h * g.w];
            if let Some(span) = Span::of(g, ki, kj) {
                // The window is the plane shifted: one copy for all its rows, then zeros
                // over the border columns the copy filled from the neighbouring rows.
                block[span.to.clone()]
                    .copy_from_slice(&plane[span.from..span.from + span.to.len()]);
                block[..span.to.start].fill(0.0);
                block[span.to.end..].fill(0.0);
                span.for_border(g, |at| block[at].fill(0.0));
                continue;
            }
            for (oy, line) in block.chunks_mut(ow).enumerate() {
                if !ys.contains(&oy) {
                    line.fill(0.0);
                    continue;
                }
                let iy = oy * g.stride + ki - g.pad;
                let src = &plane[iy * g.w..(iy + 1) * g.w];
                line[..xs.start].fill(0.0);
                line[xs.end..].fill(0.0);
                if xs.is_empty() {
                    continue;
                }
                let from = xs.start * g.stride + kj - g.pad;
                let src = &src[from..from + (xs.len() - 1) * g.stride + 1];
                match g.stride {
                    1 => line[xs.clone()].copy_from_slice(src),
                    2 => gather::<2>(&mut line[xs.clone()], src),
                    s => gather_by(&mut line[xs.clone()], src, s),
                }
            }
        }
    }
}

/// `out[t] = src[STRIDE · t]`; a constant stride lets the compiler vectorize the gather.
fn gather<const STRIDE: usize>(out: &mut [f32], src: &[f32]) {
    for (t, v) in out.iter_mut().enumerate() {
        *v = src[STRIDE * t];
    }
}

fn gather_by(out: &mut [f32], src: &[f32], stride: usize) {
    for (v, s) in out.iter_mut().zip(src.iter().step_by(stride)) {
        *v = *s;
    }
}

/// `out[STRIDE · t] += src[t]`.
fn scatter_add<const STRIDE: usize>(out: &mut [f32], src: &[f32]) {
    for (t, v) in src.iter().enumerate() {
        out[STRIDE * t] += v;
    }
}

/// Folds a `ckk × (n · pixels)` matrix back onto the images `dx` (`n × c × h × w`, zeroed),
/// adding where windows overlap. The matrix's values over the padding may be overwritten.
fn col2im(cols: &mut [f32], g: &Geometry, dx: &mut [f32]) {
    let (oh, ow) = (g.oh(), g.ow());
    let pixels = oh * ow;
    let width = g.n * pixels;
    let pad = g.pad as isize;
    for (plane_index, plane) in dx.chunks_mut(g.h * g.w).enumerate() {
        let (i, c) = (plane_index / g.c, plane_index % g.c);
        for ki in 0..g.k {
            let ys = valid(oh, g.h, g.stride, ki as isize - pad);
            for kj in 0..g.k {
                let xs = valid(ow, g.w, g.stride, kj as isize - pad);
                if xs.is_empty() {
                    continue;
                }
                let row = (c * g.k + ki) * g.k + kj;
                let src = &mut cols[row * width + i * pixels..row * width + (i + 1) * pixels];
                if let Some(span) = Span::of(g, ki, kj) {
                    // One add for all the rows, the border columns (gradients of the
                    // padding, which nothing needs) zeroed first so they add nothing.
                    span.for_border(g, |at| src[at].fill(0.0));
                    let out = &mut plane[span.from..span.from + span.to.len()];
                    for (o, v) in out.iter_mut().zip(&src[span.to.clone()]) {
                        *o += v;
                    }
                    continue;
                }
                let from = xs.start * g.stride + kj - g.pad;
                for oy in ys.clone() {
                    let iy = oy * g.stride + ki - g.pad;
                    let out = &mut plane[iy * g.w..(iy + 1) * g.w];
                    let line = &src[oy * ow + xs.start..oy * ow + xs.end];
                    let out = &mut out[from..from + (xs.len() - 1) * g.stride + 1];
                    match g.stride {
                        1 => out.iter_mut().zip(line).for_each(|(o, v)| *o += v),
                        2 => scatter_add::<2>(out, line),
                        s => out
                            .iter_mut()
                            .step_by(s)
                            .zip(line)
                            .for_each(|(o, v)| *o += v),
                    }
                }
            }
        }
    }
}

/// `n × o × pixels` (the tensor layout) to `o × (n · pixels)` (the gemm layout) and back.
fn to_channel_major(t: &[f32], n: usize, o: usize, pixels: usize, out: &mut [f32]) {
    for (ch, row) in out[..t.len()].chunks_mut(n * pixels).enumerate() {
        for (i, block) in row.chunks_mut(pixels).enumerate() {
            block.copy_from_slice(&t[(i * o + ch) * pixels..(i * o + ch + 1) * pixels]);
        }
    }
}

/// Writes all of `out` (`t.len()` values).
fn to_image_major(t: &[f32], n: usize, o: usize, pixels: usize, out: &mut [MaybeUninit<f32>]) {
    assert_eq!(out.len(), t.len());
    for (i, image) in out.chunks_mut(o * pixels).enumerate() {
        for (ch, block) in image.chunks_mut(pixels).enumerate() {
            let src = &t[(ch * n + i) * pixels..(ch * n + i + 1) * pixels];
            for (d, s) in block.iter_mut().zip(src) {
                d.write(*s);
            }
        }
    }
}

/// `out (cols × rows) = tᵀ` for `t` of `rows × cols`, in tiles that stay in cache: 8×8 blocks
/// in AVX registers where the CPU has AVX (the weight gradient transposes every `dy`; element
/// by element that was ≈ 3% of a ResNet step), the edges element by element.
fn transpose(t: &[f32], dims: (usize, usize), out: &mut [f32]) {
    // SAFETY: `MaybeUninit<f32>` has the layout of `f32`, and `transpose_uninit` writes only
    // initialised values.
    let out = unsafe { &mut *(out as *mut [f32] as *mut [MaybeUninit<f32>]) };
    transpose_uninit(t, dims, out);
}

/// [`transpose`] into memory that may be uninitialised: all of `out[..rows · cols]` is
/// written.
fn transpose_uninit(t: &[f32], (rows, cols): (usize, usize), out: &mut [MaybeUninit<f32>]) {
    assert!(t.len() >= rows * cols && out.len() >= rows * cols);
    let (mut r8, mut c8) = (0, 0);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        (r8, c8) = (rows / 8 * 8, cols / 8 * 8);
        // SAFETY: the CPU has AVX; the blocks lie inside the first `r8` rows and `c8` columns
        // of `t` and their transposes inside `out` (both at least `rows · cols`, asserted).
        unsafe { transpose_blocks_avx(t, (rows, cols), (r8, c8), out) };
    }
    // What the blocks left: the columns from `c8` of the first `r8` rows, then the rows
    // from `r8` (all of `t` without AVX), in tiles.
    transpose_tiles(t, (rows, cols), (0..r8, c8..cols), out);
    transpose_tiles(t, (rows, cols), (r8..rows, 0..cols), out);
}

/// Rows `rs` × columns `cs` of [`transpose`], element by element in 16×16 tiles.
fn transpose_tiles(
    t: &[f32],
    (rows, cols): (usize, usize),
    (rs, cs): (std::ops::Range<usize>, std::ops::Range<usize>),
    out: &mut [MaybeUninit<f32>],
) {
    const TILE: usize = 16;
    for r0 in rs.clone().step_by(TILE) {
        for c0 in cs.clone().step_by(TILE) {
            for c in c0..(c0 + TILE).min(cs.end) {
                for r in r0..(r0 + TILE).min(rs.end) {
                    out[c * rows + r].write(t[r * cols + c]);
                }
            }
        }
    }
}

/// The 8×8 blocks of [`transpose`] over rows `0..r8` and columns `0..c8` (multiples of 8).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn transpose_blocks_avx(
    t: &[f32],
    (rows, cols): (usize, usize),
    (r8, c8): (usize, usize),
    out: &mut [MaybeUninit<f32>],
) {
    use std::arch::x86_64::*;
    assert!(r8 <= rows && c8 <= cols && t.len() >= rows * cols && out.len() >= rows * cols);
    for r0 in (0..r8).step_by(8) {
        for c0 in (0..c8).step_by(8) {
            // SAFETY: rows `r0..r0 + 8` and columns `c0..c0 + 8` are inside `t` (`r0 + 8 ≤ r8
            // ≤ rows`, `c0 + 8 ≤ c8 ≤ cols`), and their transpose inside `out`.
            unsafe {
                let row = |i: usize| _mm256_loadu_ps(t.as_ptr().add((r0 + i) * cols + c0));
                let (a0, a1, a2, a3) = (row(0), row(1), row(2), row(3));
                let (a4, a5, a6, a7) = (row(4), row(5), row(6), row(7));
                let (b0, b1) = (_mm256_unpacklo_ps(a0, a1), _mm256_unpackhi_ps(a0, a1));
                let (b2, b3) = (_mm256_unpacklo_ps(a2, a3), _mm256_unpackhi_ps(a2, a3));
                let (b4, b5) = (_mm256_unpacklo_ps(a4, a5), _mm256_unpackhi_ps(a4, a5));
                let (b6, b7) = (_mm256_unpacklo_ps(a6, a7), _mm256_unpackhi_ps(a6, a7));
                let c0v = _mm256_shuffle_ps::<0x44>(b0, b2);
                let c1v = _mm256_shuffle_ps::<0xEE>(b0, b2);
                let c2v = _mm256_shuffle_ps::<0x44>(b1, b3);
                let c3v = _mm256_shuffle_ps::<0xEE>(b1, b3);
                let c4v = _mm256_shuffle_ps::<0x44>(b4, b6);
                let c5v = _mm256_shuffle_ps::<0xEE>(b4, b6);
                let c6v = _mm256_shuffle_ps::<0x44>(b5, b7);
                let c7v = _mm256_shuffle_ps::<0xEE>(b5, b7);
                let dst = out.as_mut_ptr() as *mut f32;
                let store =
                    |j: usize, v: __m256| _mm256_storeu_ps(dst.add((c0 + j) * rows + r0), v);
                store(0, _mm256_permute2f128_ps::<0x20>(c0v, c4v));
                store(1, _mm256_permute2f128_ps::<0x20>(c1v, c5v));
                store(2, _mm256_permute2f128_ps::<0x20>(c2v, c6v));
                store(3, _mm256_permute2f128_ps::<0x20>(c3v, c7v));
                store(4, _mm256_permute2f128_ps::<0x31>(c0v, c4v));
                store(5, _mm256_permute2f128_ps::<0x31>(c1v, c5v));
                store(6, _mm256_permute2f128_ps::<0x31>(c2v, c6v));
                store(7, _mm256_permute2f128_ps::<0x31>(c3v, c7v));
            }
        }
    }
}

/// Two working buffers per thread, kept from one call to the next: the unfolded images of
/// a chunk are ≈ 9× its activations, and allocating them afresh for every chunk cost a
/// zero-fill (or the kernel's page clearing) of ≈ 1 GB per ResNet step. Callers write every
/// element they read. A nested call (rayon running another chunk on this thread while one
/// waits) finds the buffers taken and works on fresh ones.
fn with_scratch<R>(lens: [usize; 2], f: impl FnOnce(&mut [f32], &mut [f32]) -> R) -> R {
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

/// Columns per gemm that keep it efficient: layers with few pixels put several images into
/// one product, layers with many keep one image per product, so its operands stay in cache
/// (measured on the seed's ResNet: 256 beat 512 by ≈ 10% and 128 by ≈ 5%, training and
/// inference alike).
const GEMM_COLUMNS: usize = 256;

/// Groups of a weight gradient's chunks: each sums its chunks' products in one buffer, and
/// the groups' sums are added in order. One buffer per chunk (64 on the seed's 16×16 layers)
/// cost ≈ 1.5% of a ResNet step in allocations and the final sum; 8 groups keep 2 threads
/// busy.
const WEIGHT_GRAD_GROUPS: usize = 8;

/// Runs `f` over the batch in chunks of whole images (a chunk's geometry, first image, gemm
/// threads and its part of `out`, `out_per_image` values per image), in parallel with
/// single-threaded gemms when there are enough chunks, else one chunk at a time with parallel
/// gemms. The chunks depend on the geometry only, never on the thread count, so sums over
/// them are the same on any thread count.
fn per_chunk<T: Send, E: Send>(
    g: &Geometry,
    out: &mut [E],
    out_per_image: usize,
    f: impl Fn(Geometry, usize, usize, &mut [E]) -> T + Sync,
) -> Vec<T> {
    let per = GEMM_COLUMNS.div_ceil(g.pixels()).clamp(1, g.n.max(1));
    let starts = (0..g.n).step_by(per);
    assert_eq!(
        out.len(),
        g.n * out_per_image,
        "conv2d: an output for every image"
    );
    let parts: Vec<(usize, &mut [E])> = if out_per_image == 0 {
        starts.map(|start| (start, &mut [][..])).collect()
    } else {
        starts.zip(out.chunks_mut(per * out_per_image)).collect()
    };
    let chunk = |(start, out): (usize, &mut [E]), threads: usize| {
        let geometry = Geometry {
            n: per.min(g.n - start),
            ..*g
        };
        f(geometry, start, threads, out)
    };
    let threads = candle_core::utils::get_num_threads().max(1);
    if threads > 1 && parts.len() >= 2 * threads {
        parts.into_par_iter().map(|part| chunk(part, 1)).collect()
    } else {
        parts.into_iter().map(|part| chunk(part, threads)).collect()
    }
}

/// The kernel that runs a convolution's forward or input gradient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    /// [`implicit`]'s (AVX-512F).
    Implicit,
    /// im2col (or col2im) around the `gemm` crate.
    Im2col,
}

impl Kernel {
    /// The kernel for `g`'s forward (else its input gradient), with the AVX-512 kernels
    /// allowed when `kernels`. The 1×1 forwards (the skips, the block dense layers) stay on
    /// the gemm: on the seed's strided skips the implicit kernel ran at 0.75–0.9× its rate
    /// (108 against 140 and 160 against 177 GFLOP/s, 2 threads), its runs there being a
    /// single pixel's channels; their input gradients ran at 1.1× it. Every other layer of the
    /// seed's ResNet ran at 1.15–1.4× im2col on the implicit kernel, and at 1.0–1.1× the
    /// pixel-vector kernel it replaced on the stride-1 layers of 8×8 pictures and more.
    fn of(g: &Geometry, kernels: bool, forward: bool) -> Self {
        if !kernels || !implicit::supported() || (forward && g.k == 1) {
            Self::Im2col
        } else {
            Self::Implicit
        }
    }
}

/// [`implicit::gathered`] over the batch: `input` (`n` images of `channels × plane`, the
/// tensor layout) is transposed image by image into the pixels × channels layout the kernel
/// reads, and `out` (`n` images of `outs × plan`'s pixels) is all written. A parallel task
/// takes a tile of [`implicit::IMAGES`] images, and a share of the output channels when the
/// tiles are too few to keep every thread busy.
fn implicit_tiles(
    input: &[f32],
    (channels, plane): (usize, usize),
    plan: &implicit::Plan,
    packed: &[f32],
    outs: usize,
    epilogue: Option<&Epilogue>,
    out: &mut [MaybeUninit<f32>],
) {
    let (image, pixels) = (channels * plane, plan.pixels());
    let n = input.len() / image.max(1);
    let tiles = n.div_ceil(implicit::IMAGES);
    let blocks = outs.div_ceil(implicit::OUTS);
    let threads = candle_core::utils::get_num_threads().max(1);
    let splits = (2 * threads).div_ceil(tiles.max(1)).clamp(1, blocks.max(1));
    let width = blocks.div_ceil(splits) * implicit::OUTS;
    // Each task's part of the output: for each of its images, the planes of its channels.
    let mut parts: Vec<Vec<&mut [MaybeUninit<f32>]>> =
        (0..tiles * splits).map(|_| Vec::new()).collect();
    for (i, out) in out.chunks_mut(outs * pixels).enumerate() {
        for (split, planes) in out.chunks_mut(width * pixels).enumerate() {
            parts[i / implicit::IMAGES * splits + split].push(planes);
        }
    }
    parts
        .into_par_iter()
        .enumerate()
        .for_each(|(task, mut planes)| {
            let (first, o0) = (task / splits * implicit::IMAGES, task % splits * width);
            let images = planes.len();
            let channels_here = width.min(outs - o0);
            with_scratch(
                [images * image, images * channels_here * pixels],
                |xt, yt| {
                    for (x, t) in input[first * image..(first + images) * image]
                        .chunks(image)
                        .zip(xt.chunks_mut(image))
                    {
                        transpose(x, (channels, plane), t);
                    }
                    implicit::gathered(
                        xt,
                        packed,
                        plan,
                        (outs, o0..o0 + channels_here),
                        epilogue,
                        yt,
                    );
                    for (t, y) in yt.chunks(channels_here * pixels).zip(planes.iter_mut()) {
                        transpose_uninit(t, (pixels, channels_here), y);
                    }
                },
            )
        });
}

/// A per-channel affine map, then optionally a ReLU, applied to a convolution's output as it
/// is written, while it is still in cache: batch norm in evaluation (its running statistics
/// folded into a scale and shift), or a bias.
#[derive(Debug, Clone, PartialEq)]
pub struct Epilogue {
    pub scale: Vec<f32>,
    pub shift: Vec<f32>,
    pub relu: bool,
}

impl Epilogue {
    /// Applies the map to `y`, whole images of `channels × pixels`.
    fn apply(&self, y: &mut [f32], channels: usize, pixels: usize) {
        let floor = if self.relu { 0.0 } else { f32::NEG_INFINITY };
        for (row, plane) in y.chunks_mut(pixels).enumerate() {
            let (scale, shift) = (self.scale[row % channels], self.shift[row % channels]);
            for v in plane {
                *v = (*v * scale + shift).max(floor);
            }
        }
    }
}

/// `conv(x, w)` on CPU values, then the epilogue if there is one: `n × o × oh × ow`. With
/// `kernels`, [`implicit`]'s kernel where [`Kernel::of`] picks it, else im2col and the gemm.
pub(crate) fn forward_values(
    x: &[f32],
    w: &[f32],
    g: &Geometry,
    epilogue: Option<&Epilogue>,
    kernels: bool,
) -> Vec<f32> {
    let g = *g;
    let (pixels, ckk, image) = (g.pixels(), g.ckk(), g.c * g.h * g.w);
    let len = g.n * g.o * pixels;
    let mut y: Vec<f32> = Vec::with_capacity(len);
    if Kernel::of(&g, kernels, true) == Kernel::Implicit {
        let plan = implicit::Plan::forward(&g);
        let packed = implicit::pack_forward(w, &g);
        let y_parts = &mut y.spare_capacity_mut()[..len];
        implicit_tiles(x, (g.c, g.h * g.w), &plan, &packed, g.o, epilogue, y_parts);
        // SAFETY: each tile writes all of its part of the output.
        unsafe { y.set_len(len) };
        return y;
    }
    // Each chunk writes all of its part of `y` (the parts cover it), so it is not
    // zero-filled first.
    per_chunk(
        &g,
        &mut y.spare_capacity_mut()[..len],
        g.o * pixels,
        |gc, start, threads, y| {
            let width = gc.n * pixels;
            with_scratch([ckk * width, g.o * width], |cols, product| {
                im2col(&x[start * image..(start + gc.n) * image], &gc, cols);
                let (w, cols) = ((w, (ckk, 1)), (&cols[..], (width, 1)));
                if gc.n == 1 {
                    // One image's product is already in the tensor layout.
                    gemm_into_uninit((g.o, width, ckk), (y, (width, 1)), w, cols, threads);
                } else {
                    gemm_into((g.o, width, ckk), (product, (width, 1)), w, cols, threads);
                    to_image_major(product, gc.n, g.o, pixels, y);
                }
                // SAFETY: the product (o × width, all of the part) or the copy wrote it.
                let y = unsafe { assume_init(y) };
                if let Some(epilogue) = epilogue {
                    epilogue.apply(y, g.o, pixels);
                }
            })
        },
    );
    // SAFETY: the chunks' parts cover `0..len`, and each chunk wrote all of its part.
    unsafe { y.set_len(len) };
    y
}

/// `y = conv(x, w)`, then the epilogue if there is one; with `kernels`, its three products
/// run the AVX-512 kernels ([`implicit`], [`direct`]) where [`Kernel::of`] picks them
/// (false: im2col and the gemm).
struct Forward(Geometry, Option<Epilogue>, bool);

impl CustomOp2 for Forward {
    fn name(&self) -> &'static str {
        "sweep-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let x = f32_slice(s1, l1, "conv2d", "the input")?;
        let w = f32_slice(s2, l2, "conv2d", "the kernel")?;
        let y = forward_values(x, w, &g, self.1.as_ref(), self.2);
        Ok((CpuStorage::F32(y), Shape::from((g.n, g.o, g.oh(), g.ow()))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        if self.1.is_some() {
            candle_core::bail!("conv2d: an epilogue is for evaluation and has no backward")
        }
        let dy = dy.contiguous()?;
        // Nothing trains the images: their gradient is never computed.
        let dx = if x.track_op() {
            Some(dy.apply_op2_no_bwd(w, &InputGrad(self.0, self.2))?)
        } else {
            None
        };
        let dw = x.apply_op2_no_bwd(&dy, &WeightGrad(self.0, self.2))?;
        Ok((dx, Some(dw)))
    }
}

/// The gemm layout (`o × (n · pixels)`) of a chunk's output gradient: the tensor's own
/// values when the chunk is one image, else a copy in `scratch`.
fn channel_major<'a>(dy: &'a [f32], gc: &Geometry, scratch: &'a mut [f32]) -> &'a [f32] {
    if gc.n == 1 {
        dy
    } else {
        to_channel_major(dy, gc.n, gc.o, gc.pixels(), scratch);
        scratch
    }
}

/// `dx` of `conv(x, w)` from `dy` and `w` on CPU values: `wᵀ · dy` folded back onto the
/// images, or with `kernels`, [`implicit`]'s kernel where [`Kernel::of`] picks it.
pub(crate) fn input_grad_values(dy: &[f32], w: &[f32], g: &Geometry, kernels: bool) -> Vec<f32> {
    let g = *g;
    let (pixels, ckk, out, image) = (g.pixels(), g.ckk(), g.o * g.pixels(), g.c * g.h * g.w);
    if Kernel::of(&g, kernels, false) == Kernel::Implicit {
        let mut dx = Vec::with_capacity(g.n * image);
        let plan = implicit::Plan::input_grad(&g);
        let packed = implicit::pack_input_grad(w, &g);
        let dx_parts = &mut dx.spare_capacity_mut()[..g.n * image];
        implicit_tiles(dy, (g.o, pixels), &plan, &packed, g.c, None, dx_parts);
        // SAFETY: each tile writes all of its part of the output.
        unsafe { dx.set_len(g.n * image) };
        return dx;
    }
    let mut dx = vec![0f32; g.n * image];
    per_chunk(&g, &mut dx, image, |gc, start, threads, dx| {
        let width = gc.n * pixels;
        with_scratch([g.o * width, ckk * width], |scratch, dcols| {
            let dy = channel_major(&dy[start * out..(start + gc.n) * out], &gc, scratch);
            gemm(
                (ckk, width, g.o),
                dcols,
                w,
                (1, ckk),
                dy,
                (width, 1),
                threads,
            );
            col2im(dcols, &gc, dx);
        })
    });
    dx
}

/// `dx` from `dy` and `w` ([`input_grad_values`]; `kernels` as there).
struct InputGrad(Geometry, bool);

impl CustomOp2 for InputGrad {
    fn name(&self) -> &'static str {
        "sweep-conv2d-input-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let dy = f32_slice(s1, l1, "conv2d", "the output gradient")?;
        let w = f32_slice(s2, l2, "conv2d", "the kernel")?;
        let dx = input_grad_values(dy, w, &g, self.1);
        Ok((CpuStorage::F32(dx), Shape::from((g.n, g.c, g.h, g.w))))
    }
}

/// `dw` of `conv(x, w)` from `x` and `dy` on CPU values (`o × c × k × k`): `Σ dy · colsᵀ`
/// over the chunks of the batch, in fixed groups of chunks; with `kernels`,
/// [`direct::weight_grad_add`]'s kernel where the CPU has it, else im2col and the gemm.
pub(crate) fn weight_grad_values(x: &[f32], dy: &[f32], g: &Geometry, kernels: bool) -> Vec<f32> {
    let g = *g;
    let (pixels, ckk, image, out) = (g.pixels(), g.ckk(), g.c * g.h * g.w, g.o * g.pixels());
    let per = GEMM_COLUMNS.div_ceil(pixels).clamp(1, g.n.max(1));
    let starts: Vec<usize> = (0..g.n).step_by(per).collect();
    // Each group adds its chunks' products into one buffer, in order; the groups depend on
    // the batch only, never on the thread count.
    let groups: Vec<&[usize]> = starts
        .chunks(starts.len().div_ceil(WEIGHT_GRAD_GROUPS).max(1))
        .collect();
    let kernel = kernels && direct::supports_weight_grad();
    let padded = (g.h + 2 * g.pad) * (g.w + 2 * g.pad) * g.c;
    // Channels in whole tiles: the transposed images' kernel, which skips the padding
    // (paired on the seed's ResNet: 303 -> 316 img/s, 4 rounds).
    let by_channels = g.c.is_multiple_of(direct::CHANNEL_ROWS);
    // The kernel runs a group per task; the gemm takes the threads itself when the groups
    // are too few to share them.
    let threads = candle_core::utils::get_num_threads().max(1);
    let (parallel, gemm_threads) = if kernel || (threads > 1 && groups.len() >= 2 * threads) {
        (true, 1)
    } else {
        (false, threads)
    };
    let group = |starts: &[usize]| {
        let mut dwt = vec![0f32; ckk * g.o];
        for &start in starts {
            let gc = Geometry {
                n: per.min(g.n - start),
                ..g
            };
            let x = &x[start * image..(start + gc.n) * image];
            let dy = &dy[start * out..(start + gc.n) * out];
            let width = gc.n * pixels;
            let unfolded = if kernel { gc.n * padded } else { ckk * width };
            with_scratch([unfolded, gc.n * out], |xs, dyt| {
                for (block, t) in dy.chunks(out).zip(dyt.chunks_mut(out)) {
                    transpose(block, (g.o, pixels), t);
                }
                if kernel && by_channels {
                    for (x, t) in x.chunks(image).zip(xs.chunks_mut(image)) {
                        transpose(x, (g.c, g.h * g.w), t);
                    }
                    direct::weight_grad_channels_add(&xs[..gc.n * image], dyt, &gc, &mut dwt);
                } else if kernel {
                    direct::pad_images(x, &gc, xs);
                    direct::weight_grad_add(xs, dyt, &gc, &mut dwt);
                } else {
                    // The product is `dwᵀ` (`ckk × o`) from `dyᵀ` (`width × o`): with `dst`
                    // and `dy` both contiguous along `o`, the gemm runs ≈ 2× faster than on
                    // `dy`'s own layout (see `matmul::gemm_into`), for the price of
                    // transposing `dy`, the smaller operand.
                    im2col(x, &gc, xs);
                    gemm_add_into(
                        (g.o, ckk, width),
                        (&mut dwt, (1, g.o)),
                        (dyt, (1, g.o)),
                        (xs, (1, width)),
                        gemm_threads,
                    );
                }
            })
        }
        dwt
    };
    let sums: Vec<Vec<f32>> = if parallel {
        groups.into_par_iter().map(group).collect()
    } else {
        groups.into_iter().map(group).collect()
    };
    sum_and_transpose(sums, (ckk, g.o))
}

/// `(Σ parts)ᵀ`, the parts (`rows × cols` each) added in order.
fn sum_and_transpose(parts: Vec<Vec<f32>>, (rows, cols): (usize, usize)) -> Vec<f32> {
    let mut parts = parts.into_iter();
    let mut total = parts.next().unwrap_or_else(|| vec![0f32; rows * cols]);
    for part in parts {
        total.iter_mut().zip(&part).for_each(|(t, v)| *t += v);
    }
    let mut dw = vec![0f32; rows * cols];
    transpose(&total, (rows, cols), &mut dw);
    dw
}

/// `dw` from `x` and `dy` ([`weight_grad_values`]; `kernels` as there).
struct WeightGrad(Geometry, bool);

impl CustomOp2 for WeightGrad {
    fn name(&self) -> &'static str {
        "sweep-conv2d-weight-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let x = f32_slice(s1, l1, "conv2d", "the input")?;
        let dy = f32_slice(s2, l2, "conv2d", "the output gradient")?;
        let dw = weight_grad_values(x, dy, &g, self.1);
        Ok((CpuStorage::F32(dw), Shape::from((g.o, g.c, g.k, g.k))))
    }
}

/// `conv(x, w)` with square kernels: `x` is `n × c × h × w`, `w` is `o × c × k × k`.
pub fn conv2d(x: &Tensor, w: &Tensor, stride: usize, pad: usize) -> Result<Tensor> {
    if !x.device().is_cpu() || x.dtype() != candle_core::DType::F32 {
        return x.conv2d(w, pad, stride, 1, 1);
    }
    let g = geometry(x, w, stride, pad)?;
    x.contiguous()?
        .apply_op2(&w.contiguous()?, Forward(g, None, true))
}

/// `epilogue(conv(x, w))` for evaluation, without a gradient: one pass over the output where
/// a separate batch norm (or bias) and ReLU would make another, with its own buffer. On
/// other devices, candle's conv and the map as tensor ops.
pub fn conv2d_eval(
    x: &Tensor,
    w: &Tensor,
    stride: usize,
    pad: usize,
    epilogue: Epilogue,
) -> Result<Tensor> {
    if !x.device().is_cpu() || x.dtype() != candle_core::DType::F32 {
        let o = w.dim(0)?;
        let per_channel = |v: &[f32]| Tensor::from_slice(v, (1, o, 1, 1), x.device());
        let y = x
            .conv2d(w, pad, stride, 1, 1)?
            .broadcast_mul(&per_channel(&epilogue.scale)?)?
            .broadcast_add(&per_channel(&epilogue.shift)?)?;
        return if epilogue.relu { y.relu() } else { Ok(y) };
    }
    let g = geometry(x, w, stride, pad)?;
    if epilogue.scale.len() != g.o || epilogue.shift.len() != g.o {
        candle_core::bail!(
            "conv2d: an epilogue for {} channels on {}",
            epilogue.scale.len(),
            g.o
        )
    }
    x.contiguous()?
        .apply_op2_no_bwd(&w.contiguous()?, &Forward(g, Some(epilogue), true))
}

fn geometry(x: &Tensor, w: &Tensor, stride: usize, pad: usize) -> Result<Geometry> {
    Geometry::of(x.dims4()?, w.dims4()?, stride, pad)
}

impl Geometry {
    /// The convolution of an `n × c × h × w` input with an `o × c × k × k` kernel, checked.
    pub(crate) fn of(
        (n, c, h, wd): (usize, usize, usize, usize),
        (o, c2, k, k2): (usize, usize, usize, usize),
        stride: usize,
        pad: usize,
    ) -> Result<Geometry> {
        if c != c2 || k != k2 {
            candle_core::bail!(
                "conv2d: input {:?} and kernel {:?} do not match",
                [n, c, h, wd],
                [o, c2, k, k2]
            )
        }
        // Everything below sizes buffers from these, so a window that does not fit is refused
        // here rather than wrapped around in the arithmetic.
        if stride == 0 || k == 0 || h == 0 || wd == 0 || h + 2 * pad < k || wd + 2 * pad < k {
            candle_core::bail!(
                "conv2d: a {k}×{k} kernel with stride {stride} and padding {pad} does not fit a \
             {h}×{wd} input"
            )
        }
        Ok(Geometry {
            n,
            c,
            h,
            w: wd,
            o,
            k,
            stride,
            pad,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{max_rel_err, weighted_grads};
    use candle_core::{DType, Device, Var};

    /// Output, input gradient and weight gradient against candle's own conv2d.
    fn check(n: usize, c: usize, hw: usize, o: usize, k: usize, stride: usize, pad: usize) {
        let dev = Device::Cpu;
        let x = Var::randn(0f32, 1.0, (n, c, hw, hw), &dev).unwrap();
        let w = Var::randn(0f32, 0.5, (o, c, k, k), &dev).unwrap();
        let ours = conv2d(x.as_tensor(), w.as_tensor(), stride, pad).unwrap();
        let theirs = x
            .as_tensor()
            .conv2d(w.as_tensor(), pad, stride, 1, 1)
            .unwrap();
        let case = format!("n{n} c{c} {hw}x{hw} o{o} k{k} s{stride} p{pad}");
        assert_eq!(ours.dims(), theirs.dims(), "{case}");
        assert!(
            max_rel_err(&ours, &theirs) <= 1e-4,
            "output {case}: {}",
            max_rel_err(&ours, &theirs)
        );
        // A loss that weights every output differently, so every gradient entry is tested.
        let weights = Tensor::randn(0f32, 1.0, ours.dims(), &dev).unwrap();
        let g_ours = weighted_grads(&ours, &weights);
        let g_theirs = weighted_grads(&theirs, &weights);
        for (name, var) in [("input", &x), ("weight", &w)] {
            let (a, b) = (
                g_ours.get(var.as_tensor()).unwrap(),
                g_theirs.get(var.as_tensor()).unwrap(),
            );
            assert!(
                max_rel_err(a, b) <= 1e-4,
                "{name} gradient {case}: {}",
                max_rel_err(a, b)
            );
        }
    }

    #[test]
    fn matches_candle_on_many_shapes() {
        for &(n, c, hw, o, k, stride, pad) in &[
            (1, 3, 9, 5, 7, 2, 3),
            (2, 3, 16, 8, 7, 2, 3),
            (3, 5, 7, 6, 3, 1, 1),
            (1, 4, 8, 4, 3, 2, 1),
            (17, 6, 5, 9, 3, 1, 1),
            (2, 7, 6, 3, 1, 1, 0),
            (4, 6, 9, 10, 1, 2, 0),
            (2, 3, 10, 2, 3, 1, 0),
            (1, 2, 11, 3, 3, 2, 0),
            // Kernel offsets that see no input at all (7×7 over 2×2 and 3×3 pictures).
            (2, 3, 2, 4, 7, 2, 3),
            (2, 2, 3, 3, 7, 1, 3),
            // One image per gemm (≥ 256 pixels), and chunks of 3 images with a short last one.
            (3, 2, 23, 4, 3, 1, 1),
            (13, 3, 10, 5, 3, 1, 1),
            (20, 3, 12, 7, 3, 2, 1),
            // Stride-1 "same" convolutions of 64 pixels and more: 1×1 and 5×5 kernels.
            (4, 70, 8, 10, 3, 1, 1),
            (1, 4, 8, 6, 3, 1, 1),
            (3, 5, 9, 7, 1, 1, 0),
            (2, 3, 9, 4, 5, 1, 2),
        ] {
            check(n, c, hw, o, k, stride, pad);
        }
    }

    /// Where the implicit kernel runs, the im2col path must give the same output and input
    /// gradient (it is what other CPUs run, and `matches_candle_on_many_shapes` sees only one
    /// of the two on any machine): strides 1 and 2, paddings 0 to 3, the stem's 7×7, 4×4
    /// pictures, windows that see no input, an even kernel, a picture that is not square,
    /// batches that are not a multiple of the kernel's tile of images, channels that are not
    /// a multiple of its 32 lanes, batch 1.
    #[test]
    fn the_implicit_kernel_and_the_im2col_path_agree() {
        let dev = Device::Cpu;
        if !implicit::supported() {
            eprintln!("no implicit kernel on this CPU: nothing to compare");
            return;
        }
        for &(n, c, (h, wd), o, k, stride, pad) in &[
            (3, 70, (8, 8), 10, 3, 1, 1),
            (1, 70, (8, 8), 10, 3, 1, 1),
            (9, 6, (16, 16), 40, 3, 1, 1),
            (2, 3, (20, 20), 33, 7, 2, 3),
            (2, 3, (2, 2), 4, 7, 2, 3),
            (10, 20, (4, 4), 64, 3, 1, 1),
            (9, 5, (8, 8), 17, 3, 2, 1),
            (3, 6, (9, 9), 17, 1, 2, 0),
            (5, 4, (11, 11), 3, 1, 1, 0),
            (1, 2, (11, 11), 3, 3, 2, 0),
            (2, 3, (9, 9), 17, 5, 1, 2),
            (4, 2, (6, 7), 3, 2, 1, 0),
        ] {
            let x = Tensor::randn(0f32, 1.0, (n, c, h, wd), &dev).unwrap();
            let w = Tensor::randn(0f32, 0.5, (o, c, k, k), &dev).unwrap();
            let g = geometry(&x, &w, stride, pad).unwrap();
            let dy = Tensor::randn(0f32, 1.0, (n, o, g.oh(), g.ow()), &dev).unwrap();
            let y = |kernels| x.apply_op2_no_bwd(&w, &Forward(g, None, kernels)).unwrap();
            let dx = |kernels| dy.apply_op2_no_bwd(&w, &InputGrad(g, kernels)).unwrap();
            let case = format!("n{n} c{c} {h}x{wd} o{o} k{k} s{stride} p{pad}");
            let err = max_rel_err(&y(true), &y(false));
            assert!(err <= 1e-5, "output {case}: {err}");
            let err = max_rel_err(&dx(true), &dx(false));
            assert!(err <= 1e-5, "input gradient {case}: {err}");
            // The epilogue, which the kernel applies as it stores each vector.
            let epilogue = Epilogue {
                scale: (0..o).map(|j| 1.5 - 0.25 * j as f32).collect(),
                shift: (0..o).map(|j| 0.1 * j as f32 - 0.3).collect(),
                relu: true,
            };
            let eval = |kernels| {
                x.apply_op2_no_bwd(&w, &Forward(g, Some(epilogue.clone()), kernels))
                    .unwrap()
            };
            let err = max_rel_err(&eval(true), &eval(false));
            assert!(err <= 1e-5, "output with the epilogue {case}: {err}");
        }
    }

    /// The weight gradient's kernels (`direct::weight_grad_add` on padded images, and
    /// `direct::weight_grad_channels_add` on transposed ones where the channels are a
    /// multiple of 8) must give the im2col path's gradient: strides 1 and 2, paddings 0 to 3,
    /// the stem's 7×7, 1×1 skips, a 4×4 layer's many images per chunk, output channels that
    /// are not a multiple of 32 (the masked tail), positions that are not a multiple of the
    /// tile, a picture that is not square, batch 1.
    #[test]
    fn the_weight_gradient_kernel_and_the_im2col_path_agree() {
        let dev = Device::Cpu;
        for &(n, c, (h, wd), o, k, stride, pad) in &[
            (3, 5, (16, 16), 64, 3, 1, 1),
            (2, 3, (20, 20), 8, 7, 2, 3),
            (1, 3, (17, 23), 33, 7, 2, 3),
            (20, 7, (4, 4), 40, 3, 1, 1),
            (3, 6, (9, 9), 17, 1, 2, 0),
            (2, 4, (10, 10), 5, 3, 2, 1),
            (2, 70, (8, 8), 10, 3, 1, 1),
            (4, 2, (6, 7), 3, 2, 1, 0),
            // Channels in whole tiles of 8 (the transposed images' kernel).
            (10, 16, (4, 4), 40, 3, 1, 1),
            (3, 8, (9, 9), 17, 3, 2, 1),
            (2, 24, (8, 8), 64, 1, 2, 0),
            (1, 8, (7, 5), 33, 5, 1, 2),
        ] {
            if !direct::supports_weight_grad() {
                eprintln!("no weight-gradient kernel on this CPU: nothing to compare");
                return;
            }
            let x = Tensor::randn(0f32, 1.0, (n, c, h, wd), &dev).unwrap();
            let w = Tensor::zeros((o, c, k, k), DType::F32, &dev).unwrap();
            let g = geometry(&x, &w, stride, pad).unwrap();
            let dy = Tensor::randn(0f32, 1.0, (n, o, g.oh(), g.ow()), &dev).unwrap();
            let dw = |kernels| x.apply_op2_no_bwd(&dy, &WeightGrad(g, kernels)).unwrap();
            let (kernel, im2col) = (dw(true), dw(false));
            assert_eq!(kernel.dims(), [o, c, k, k]);
            let err = max_rel_err(&kernel, &im2col);
            let case = format!("n{n} c{c} {h}x{wd} o{o} k{k} s{stride} p{pad}");
            assert!(err <= 1e-5, "{case}: {err}");
        }
    }

    #[test]
    fn transpose_moves_every_element_for_any_shape() {
        for (rows, cols) in [
            (1, 1),
            (8, 8),
            (16, 24),
            (9, 17),
            (64, 256),
            (3, 40),
            (37, 8),
        ] {
            let t: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
            let mut out = vec![f32::NAN; rows * cols];
            transpose(&t, (rows, cols), &mut out);
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(
                        out[c * rows + r],
                        t[r * cols + c],
                        "{rows}×{cols} [{r}, {c}]"
                    );
                }
            }
        }
    }

    #[test]
    fn valid_ranges_are_exactly_the_in_bounds_positions() {
        for outputs in 0..6 {
            for inputs in 0..8 {
                for stride in 1..4 {
                    for offset in -4isize..4 {
                        let expected: Vec<usize> = (0..outputs)
                            .filter(|&o| {
                                (0..inputs as isize)
                                    .contains(&(o as isize * stride as isize + offset))
                            })
                            .collect();
                        let got: Vec<usize> = valid(outputs, inputs, stride, offset).collect();
                        assert_eq!(got, expected, "{outputs} {inputs} {stride} {offset}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_epilogue_is_the_affine_map_and_relu_of_the_output() {
        let dev = Device::Cpu;
        for &(n, hw, stride, pad, k) in &[(3, 9, 1, 1, 3), (40, 6, 2, 1, 3), (2, 23, 1, 0, 1)] {
            let x = Tensor::randn(0f32, 1.0, (n, 5, hw, hw), &dev).unwrap();
            let w = Tensor::randn(0f32, 0.5, (6, 5, k, k), &dev).unwrap();
            for relu in [false, true] {
                let epilogue = Epilogue {
                    scale: vec![0.5, -1.0, 2.0, 0.0, 1.5, 3.0],
                    shift: vec![0.1, 0.2, -0.3, 0.4, -0.5, 0.0],
                    relu,
                };
                let per_channel = |v: &[f32]| Tensor::from_slice(v, (1, 6, 1, 1), &dev).unwrap();
                let mut expected = x
                    .conv2d(&w, pad, stride, 1, 1)
                    .unwrap()
                    .broadcast_mul(&per_channel(&epilogue.scale))
                    .unwrap()
                    .broadcast_add(&per_channel(&epilogue.shift))
                    .unwrap();
                if relu {
                    expected = expected.relu().unwrap();
                }
                let got = conv2d_eval(&x, &w, stride, pad, epilogue).unwrap();
                let err = max_rel_err(&got, &expected);
                assert!(err <= 1e-4, "n{n} {hw}x{hw} s{stride} relu {relu}: {err}");
            }
        }
    }

    #[test]
    fn the_images_get_no_gradient() {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (2, 3, 8, 8), &dev).unwrap();
        let w = Var::randn(0f32, 1.0, (4, 3, 3, 3), &dev).unwrap();
        let grads = conv2d(&x, w.as_tensor(), 1, 1)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert!(grads.get(&x).is_none());
        assert!(grads.get(w.as_tensor()).is_some());
    }

    #[test]
    fn the_products_do_not_depend_on_the_thread_count() {
        let dev = Device::Cpu;
        // Many chunks (parallel over chunks) and three (one at a time, parallel gemms); 8
        // channels (the transposed images' weight gradient), and 2 tiles of images that 3
        // threads split by their output channels.
        for (n, c, hw, o) in [(40, 3, 8, 4), (3, 3, 23, 4), (10, 8, 4, 64)] {
            let x = Tensor::randn(0f32, 1.0, (n, c, hw, hw), &dev).unwrap();
            let w = Tensor::randn(0f32, 1.0, (o, c, 3, 3), &dev).unwrap();
            let dy = Tensor::randn(0f32, 1.0, (n, o, hw, hw), &dev).unwrap();
            let g = geometry(&x, &w, 1, 1).unwrap();
            let run = |threads: &str| {
                std::env::set_var("RAYON_NUM_THREADS", threads);
                let values = |t: Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                [
                    values(x.apply_op2_no_bwd(&dy, &WeightGrad(g, true)).unwrap()),
                    values(x.apply_op2_no_bwd(&w, &Forward(g, None, true)).unwrap()),
                    values(dy.apply_op2_no_bwd(&w, &InputGrad(g, true)).unwrap()),
                ]
            };
            let (one, three) = (run("1"), run("3"));
            std::env::remove_var("RAYON_NUM_THREADS");
            for (what, (one, three)) in ["dw", "y", "dx"].iter().zip(one.iter().zip(&three)) {
                assert_eq!(one, three, "{what}: {n} images of {c}×{hw}×{hw}");
            }
        }
    }

    #[test]
    fn a_kernel_that_does_not_fit_is_an_error() {
        let dev = Device::Cpu;
        let x = Tensor::zeros((1, 2, 2, 3), candle_core::DType::F32, &dev).unwrap();
        let w = Tensor::zeros((2, 2, 3, 3), candle_core::DType::F32, &dev).unwrap();
        assert!(conv2d(&x, &w, 2, 0).is_err());
        assert!(conv2d(&x, &w, 0, 1).is_err());
        assert!(conv2d(&x, &w, 1, 1).is_ok());
    }
}
