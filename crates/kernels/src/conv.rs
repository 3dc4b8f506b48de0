//! The three products of a 2-D convolution over a batch, on CPU values: [`forward`] (then an
//! [`Epilogue`] if there is one), [`input_grad`] and [`weight_grad`]. Each runs on the kernel
//! [`Kernel`] picks for its geometry and [`Cpu`]: the implicit gemm
//! ([`implicit_gemm`](crate::implicit_gemm)) and the weight gradients' kernels
//! ([`weight_grad`](crate::weight_grad)) where the CPU has AVX-512F, else im2col/col2im
//! ([`im2col`](crate::im2col)) around the `gemm` crate. The batch is cut into chunks of whole
//! images that depend on the geometry only, never on the thread count, so every product gives
//! the same values on any number of threads.
//!
//! This module is the kernels' only user inside the crate: it imports them, and none of them
//! imports it.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::cpu::Cpu;
use crate::geometry::{Epilogue, Geometry};
use crate::im2col::{col2im, im2col};
use crate::implicit_gemm::{self, Plan};
use crate::layout::{to_channel_major, to_image_major, transpose, transpose_uninit};
use crate::matmul::{gemm, gemm_add_into, gemm_into, gemm_into_uninit};
use crate::scratch::with_scratch;
use crate::uninit::assume_init;
use crate::weight_grad::{self, CHANNEL_ROWS};

/// The kernel that runs one of a convolution's products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// The implicit gemm (AVX-512F): forwards and input gradients.
    Implicit,
    /// im2col (or col2im) around the `gemm` crate: any product on any CPU.
    Im2col,
    /// The weight gradient on the transposed images, for channels in whole tiles of 8
    /// (AVX-512F).
    WeightGradChannels,
    /// The weight gradient on zero-padded images, for the other layers (AVX-512F).
    WeightGradPadded,
}

impl Kernel {
    /// The forward's kernel. The 1×1 forwards (the skips, the block dense layers) stay on the
    /// gemm: on the seed's strided skips the implicit kernel ran at 0.75–0.9× its rate (108
    /// against 140 and 160 against 177 GFLOP/s, 2 threads), its runs there being a single
    /// pixel's channels. Every other layer of the seed's ResNet ran at 1.15–1.4× im2col on the
    /// implicit kernel, and at 1.0–1.1× the pixel-vector kernel it replaced on the stride-1
    /// layers of 8×8 pictures and more.
    pub fn forward(g: &Geometry, cpu: Cpu) -> Self {
        if cpu.avx512f() && g.k != 1 {
            Self::Implicit
        } else {
            Self::Im2col
        }
    }

    /// The input gradient's kernel: the implicit gemm wherever it runs (on the 1×1 skips too,
    /// at 1.1× the gemm's rate).
    pub fn input_grad(_g: &Geometry, cpu: Cpu) -> Self {
        if cpu.avx512f() {
            Self::Implicit
        } else {
            Self::Im2col
        }
    }

    /// The weight gradient's kernel: on the transposed images where the channels come in
    /// whole tiles (paired on the seed's ResNet: 303 -> 316 img/s, 4 rounds), which skips the
    /// padding; on padded images for the others (the stem's 3 channels).
    pub fn weight_grad(g: &Geometry, cpu: Cpu) -> Self {
        match (cpu.avx512f(), g.c.is_multiple_of(CHANNEL_ROWS)) {
            (false, _) => Self::Im2col,
            (true, true) => Self::WeightGradChannels,
            (true, false) => Self::WeightGradPadded,
        }
    }

    /// A short name for tables: `implicit`, `im2col`, `channels`, `padded`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Implicit => "implicit",
            Self::Im2col => "im2col",
            Self::WeightGradChannels => "channels",
            Self::WeightGradPadded => "padded",
        }
    }
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

/// Images per chunk of the batch: enough for [`GEMM_COLUMNS`] output pixels.
fn images_per_chunk(g: &Geometry) -> usize {
    GEMM_COLUMNS.div_ceil(g.pixels()).clamp(1, g.n.max(1))
}

/// Runs `f` over the batch in chunks of whole images (a chunk's geometry, first image, gemm
/// threads and its part of `out`, `out_per_image` values per image), in parallel with
/// single-threaded gemms when there are enough chunks, else one chunk at a time with parallel
/// gemms.
fn per_chunk<T: Send, E: Send>(
    g: &Geometry,
    out: &mut [E],
    out_per_image: usize,
    threads: usize,
    f: impl Fn(Geometry, usize, usize, &mut [E]) -> T + Sync,
) -> Vec<T> {
    let per = images_per_chunk(g);
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
    if threads > 1 && parts.len() >= 2 * threads {
        parts.into_par_iter().map(|part| chunk(part, 1)).collect()
    } else {
        parts.into_iter().map(|part| chunk(part, threads)).collect()
    }
}

/// [`implicit_gemm::gathered`] over the batch: `input` (`n` images of `channels × plane`, the
/// tensor layout) is transposed image by image into the pixels × channels layout the kernel
/// reads, and `out` (`n` images of `outs × plan`'s pixels) is all written. A parallel task
/// takes a tile of [`implicit_gemm::IMAGES`] images, and a share of the output channels when
/// the tiles are too few to keep every thread busy.
fn implicit_tiles(
    input: &[f32],
    (channels, plane): (usize, usize),
    (plan, packed): (&Plan, &[f32]),
    outs: usize,
    epilogue: Option<&Epilogue>,
    out: &mut [MaybeUninit<f32>],
    cpu: Cpu,
) {
    let (image, pixels) = (channels * plane, plan.pixels());
    let n = input.len() / image.max(1);
    let tiles = n.div_ceil(implicit_gemm::IMAGES);
    let blocks = outs.div_ceil(implicit_gemm::OUTS);
    let splits = (2 * cpu.threads())
        .div_ceil(tiles.max(1))
        .clamp(1, blocks.max(1));
    let width = blocks.div_ceil(splits) * implicit_gemm::OUTS;
    // Each task's part of the output: for each of its images, the planes of its channels.
    let mut parts: Vec<Vec<&mut [MaybeUninit<f32>]>> =
        (0..tiles * splits).map(|_| Vec::new()).collect();
    for (i, out) in out.chunks_mut(outs * pixels).enumerate() {
        for (split, planes) in out.chunks_mut(width * pixels).enumerate() {
            parts[i / implicit_gemm::IMAGES * splits + split].push(planes);
        }
    }
    parts
        .into_par_iter()
        .enumerate()
        .for_each(|(task, mut planes)| {
            let (first, o0) = (task / splits * implicit_gemm::IMAGES, task % splits * width);
            let images = planes.len();
            let channels_here = width.min(outs - o0);
            with_scratch(
                [images * image, images * channels_here * pixels],
                |xt, yt| {
                    for (x, t) in input[first * image..(first + images) * image]
                        .chunks(image)
                        .zip(xt.chunks_mut(image))
                    {
                        transpose(x, (channels, plane), t, cpu);
                    }
                    implicit_gemm::gathered(
                        xt,
                        packed,
                        plan,
                        (outs, o0..o0 + channels_here),
                        epilogue,
                        yt,
                        cpu,
                    );
                    for (t, y) in yt.chunks(channels_here * pixels).zip(planes.iter_mut()) {
                        transpose_uninit(t, (pixels, channels_here), y, cpu);
                    }
                },
            )
        });
}

/// Panics unless `x` holds `g`'s images and `w` its kernels.
fn assert_operands(what: &str, x: (&str, &[f32], usize), w: (&str, &[f32], usize)) {
    for (name, values, len) in [x, w] {
        assert_eq!(values.len(), len, "conv2d {what}: {name} of {len} values");
    }
}

/// `conv(x, w)` on CPU values, then the epilogue if there is one: `n × o × oh × ow` from `x`
/// (`n × c × h × w`) and `w` (`o × c × k × k`).
pub fn forward(
    x: &[f32],
    w: &[f32],
    g: &Geometry,
    epilogue: Option<&Epilogue>,
    cpu: Cpu,
) -> Vec<f32> {
    let g = *g;
    let (pixels, ckk, image) = (g.pixels(), g.ckk(), g.c * g.h * g.w);
    assert_operands(
        "forward",
        ("the input", x, g.n * image),
        ("the kernel", w, g.o * ckk),
    );
    if let Some(e) = epilogue {
        assert!(
            e.scale.len() == g.o && e.shift.len() == g.o,
            "conv2d: an epilogue for {} channels on {}",
            e.scale.len(),
            g.o
        );
    }
    let len = g.n * g.o * pixels;
    let mut y: Vec<f32> = Vec::with_capacity(len);
    if Kernel::forward(&g, cpu) == Kernel::Implicit {
        let plan = Plan::forward(&g);
        let packed = implicit_gemm::pack_forward(w, &g);
        let y_parts = &mut y.spare_capacity_mut()[..len];
        let weights = (&plan, &packed[..]);
        implicit_tiles(x, (g.c, g.h * g.w), weights, g.o, epilogue, y_parts, cpu);
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
        cpu.threads(),
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

/// `dx` of `conv(x, w)` (`n × c × h × w`) from `dy` (`n × o × oh × ow`) and `w` on CPU values:
/// `wᵀ · dy` folded back onto the images, or the implicit gemm where [`Kernel`] picks it.
pub fn input_grad(dy: &[f32], w: &[f32], g: &Geometry, cpu: Cpu) -> Vec<f32> {
    let g = *g;
    let (pixels, ckk, out, image) = (g.pixels(), g.ckk(), g.o * g.pixels(), g.c * g.h * g.w);
    assert_operands(
        "input gradient",
        ("the output gradient", dy, g.n * out),
        ("the kernel", w, g.o * ckk),
    );
    if Kernel::input_grad(&g, cpu) == Kernel::Implicit {
        let mut dx = Vec::with_capacity(g.n * image);
        let plan = Plan::input_grad(&g);
        let packed = implicit_gemm::pack_input_grad(w, &g);
        let dx_parts = &mut dx.spare_capacity_mut()[..g.n * image];
        let weights = (&plan, &packed[..]);
        implicit_tiles(dy, (g.o, pixels), weights, g.c, None, dx_parts, cpu);
        // SAFETY: each tile writes all of its part of the output.
        unsafe { dx.set_len(g.n * image) };
        return dx;
    }
    let mut dx = vec![0f32; g.n * image];
    per_chunk(
        &g,
        &mut dx,
        image,
        cpu.threads(),
        |gc, start, threads, dx| {
            let width = gc.n * pixels;
            with_scratch([g.o * width, ckk * width], |scratch, dcols| {
                let dy = channel_major(&dy[start * out..(start + gc.n) * out], &gc, scratch);
                gemm(
                    (ckk, width, g.o),
                    dcols,
                    (w, (1, ckk)),
                    (dy, (width, 1)),
                    threads,
                );
                col2im(dcols, &gc, dx);
            })
        },
    );
    dx
}

/// `dw` of `conv(x, w)` (`o × c × k × k`) from `x` and `dy` on CPU values: `Σ dy · colsᵀ` over
/// the chunks of the batch, in fixed groups of chunks, on the kernel [`Kernel`] picks.
pub fn weight_grad(x: &[f32], dy: &[f32], g: &Geometry, cpu: Cpu) -> Vec<f32> {
    let g = *g;
    let (pixels, ckk, image, out) = (g.pixels(), g.ckk(), g.c * g.h * g.w, g.o * g.pixels());
    assert_operands(
        "weight gradient",
        ("the input", x, g.n * image),
        ("the output gradient", dy, g.n * out),
    );
    let per = images_per_chunk(&g);
    let starts: Vec<usize> = (0..g.n).step_by(per).collect();
    // Each group adds its chunks' products into one buffer, in order; the groups depend on
    // the batch only, never on the thread count.
    let groups: Vec<&[usize]> = starts
        .chunks(starts.len().div_ceil(WEIGHT_GRAD_GROUPS).max(1))
        .collect();
    let kernel = Kernel::weight_grad(&g, cpu);
    let padded = (g.h + 2 * g.pad) * (g.w + 2 * g.pad) * g.c;
    // The vector kernels run a group per task; the gemm takes the threads itself when the
    // groups are too few to share them.
    let threads = cpu.threads();
    let (parallel, gemm_threads) =
        if kernel != Kernel::Im2col || (threads > 1 && groups.len() >= 2 * threads) {
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
            let unfolded = match kernel {
                Kernel::Im2col => ckk * width,
                _ => gc.n * padded,
            };
            with_scratch([unfolded, gc.n * out], |xs, dyt| {
                for (block, t) in dy.chunks(out).zip(dyt.chunks_mut(out)) {
                    transpose(block, (g.o, pixels), t, cpu);
                }
                match kernel {
                    Kernel::WeightGradChannels => {
                        for (x, t) in x.chunks(image).zip(xs.chunks_mut(image)) {
                            transpose(x, (g.c, g.h * g.w), t, cpu);
                        }
                        let xt = &xs[..gc.n * image];
                        weight_grad::channels_add(xt, dyt, &gc, &mut dwt, cpu);
                    }
                    Kernel::WeightGradPadded => {
                        weight_grad::pad_images(x, &gc, xs);
                        weight_grad::padded_add(xs, dyt, &gc, &mut dwt, cpu);
                    }
                    Kernel::Im2col | Kernel::Implicit => {
                        // The product is `dwᵀ` (`ckk × o`) from `dyᵀ` (`width × o`): with
                        // `dst` and `dy` both contiguous along `o`, the gemm runs ≈ 2× faster
                        // than on `dy`'s own layout (see `matmul::gemm_into`), for the price
                        // of transposing `dy`, the smaller operand.
                        im2col(x, &gc, xs);
                        gemm_add_into(
                            (g.o, ckk, width),
                            (&mut dwt, (1, g.o)),
                            (dyt, (1, g.o)),
                            (xs, (1, width)),
                            gemm_threads,
                        );
                    }
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
    sum_and_transpose(sums, (ckk, g.o), cpu)
}

/// `(Σ parts)ᵀ`, the parts (`rows × cols` each) added in order.
fn sum_and_transpose(parts: Vec<Vec<f32>>, (rows, cols): (usize, usize), cpu: Cpu) -> Vec<f32> {
    let mut parts = parts.into_iter();
    let mut total = parts.next().unwrap_or_else(|| vec![0f32; rows * cols]);
    for part in parts {
        total.iter_mut().zip(&part).for_each(|(t, v)| *t += v);
    }
    let mut dw = vec![0f32; rows * cols];
    transpose(&total, (rows, cols), &mut dw, cpu);
    dw
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{
        max_rel_err, naive_forward, naive_input_grad, naive_weight_grad, wide, Values,
    };

    /// This machine's kernels, and the portable path beside them where they differ.
    fn cpus(threads: usize) -> Vec<Cpu> {
        let cpu = Cpu::detect(threads);
        if cpu == cpu.portable() {
            vec![cpu]
        } else {
            vec![cpu, cpu.portable()]
        }
    }

    /// A convolution's operands: images, kernels and an output gradient, seeded.
    struct Case {
        g: Geometry,
        x: Vec<f32>,
        w: Vec<f32>,
        dy: Vec<f32>,
    }

    impl Case {
        fn new(
            (n, c, (h, wd)): (usize, usize, (usize, usize)),
            (o, k, stride, pad): (usize, usize, usize, usize),
        ) -> Self {
            let g = Geometry::of((n, c, h, wd), (o, c, k, k), stride, pad).unwrap();
            let mut values = Values::new((n * 31 + c * 7 + o * 3 + k) as u64);
            Case {
                x: values.take(n * c * h * wd),
                w: values.take(o * g.ckk()),
                dy: values.take(n * o * g.pixels()),
                g,
            }
        }

        fn name(&self) -> String {
            let g = &self.g;
            format!(
                "n{} c{} {}x{} o{} k{} s{} p{}",
                g.n, g.c, g.h, g.w, g.o, g.k, g.stride, g.pad
            )
        }
    }

    /// Output, input gradient and weight gradient, on every path this CPU has, against the
    /// convolution's definition.
    #[test]
    fn every_path_matches_the_definition_on_many_shapes() {
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
            // Channels in whole tiles of 8 (the transposed images' weight gradient), stride 3.
            (3, 16, 6, 33, 3, 1, 1),
            (2, 8, 10, 5, 3, 3, 1),
        ] {
            let case = Case::new((n, c, (hw, hw)), (o, k, stride, pad));
            let Case { g, x, w, dy } = &case;
            let want = [
                naive_forward(x, w, g),
                naive_input_grad(dy, w, g),
                naive_weight_grad(x, dy, g),
            ];
            for cpu in cpus(2) {
                let got = [
                    forward(x, w, g, None, cpu),
                    input_grad(dy, w, g, cpu),
                    weight_grad(x, dy, g, cpu),
                ];
                for (what, (got, want)) in ["y", "dx", "dw"].iter().zip(got.iter().zip(&want)) {
                    let err = max_rel_err(got, want);
                    assert!(err <= 1e-5, "{what} {} on {cpu:?}: {err}", case.name());
                }
            }
        }
    }

    /// Where the implicit kernel runs, the im2col path must give the same output and input
    /// gradient (it is what other CPUs run): strides 1 and 2, paddings 0 to 3, the stem's 7×7,
    /// 4×4 pictures, windows that see no input, an even kernel, a picture that is not square,
    /// batches that are not a multiple of the kernel's tile of images, channels that are not
    /// a multiple of its 32 lanes, batch 1.
    #[test]
    fn the_implicit_kernel_and_the_im2col_path_agree() {
        let cpu = Cpu::detect(2);
        if !cpu.avx512f() {
            eprintln!("no implicit kernel on this CPU: nothing to compare");
            return;
        }
        for &(n, c, hw, o, k, stride, pad) in &[
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
            let case = Case::new((n, c, hw), (o, k, stride, pad));
            let Case { g, x, w, dy } = &case;
            let name = case.name();
            let y = |cpu| forward(x, w, g, None, cpu);
            let err = max_rel_err(&y(cpu), &wide(&y(cpu.portable())));
            assert!(err <= 1e-5, "output {name}: {err}");
            let dx = |cpu| input_grad(dy, w, g, cpu);
            let err = max_rel_err(&dx(cpu), &wide(&dx(cpu.portable())));
            assert!(err <= 1e-5, "input gradient {name}: {err}");
            // The epilogue, which the kernel applies as it stores each vector.
            let epilogue = Epilogue {
                scale: (0..o).map(|j| 1.5 - 0.25 * j as f32).collect(),
                shift: (0..o).map(|j| 0.1 * j as f32 - 0.3).collect(),
                relu: true,
            };
            let eval = |cpu| forward(x, w, g, Some(&epilogue), cpu);
            let err = max_rel_err(&eval(cpu), &wide(&eval(cpu.portable())));
            assert!(err <= 1e-5, "output with the epilogue {name}: {err}");
        }
    }

    /// The weight gradient's kernels (`weight_grad::padded_add` on padded images, and
    /// `weight_grad::channels_add` on transposed ones where the channels are a multiple of 8)
    /// must give the im2col path's gradient: strides 1 and 2, paddings 0 to 3, the stem's 7×7,
    /// 1×1 skips, a 4×4 layer's many images per chunk, output channels that are not a multiple
    /// of 32 (the masked tail), positions that are not a multiple of the tile, a picture that
    /// is not square, batch 1.
    #[test]
    fn the_weight_gradient_kernels_and_the_im2col_path_agree() {
        let cpu = Cpu::detect(2);
        for &(n, c, hw, o, k, stride, pad) in &[
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
            let case = Case::new((n, c, hw), (o, k, stride, pad));
            let Case { g, x, dy, .. } = &case;
            if Kernel::weight_grad(g, cpu) == Kernel::Im2col {
                eprintln!("no weight-gradient kernel on this CPU: nothing to compare");
                return;
            }
            let dw = |cpu| weight_grad(x, dy, g, cpu);
            let (kernel, im2col) = (dw(cpu), dw(cpu.portable()));
            assert_eq!(kernel.len(), o * g.ckk());
            let err = max_rel_err(&kernel, &wide(&im2col));
            assert!(err <= 1e-5, "{}: {err}", case.name());
        }
    }

    #[test]
    fn the_epilogue_is_the_affine_map_and_relu_of_the_output() {
        for &(n, hw, stride, pad, k) in &[(3, 9, 1, 1, 3), (40, 6, 2, 1, 3), (2, 23, 1, 0, 1)] {
            let case = Case::new((n, 5, (hw, hw)), (6, k, stride, pad));
            let Case { g, x, w, .. } = &case;
            for relu in [false, true] {
                let epilogue = Epilogue {
                    scale: vec![0.5, -1.0, 2.0, 0.0, 1.5, 3.0],
                    shift: vec![0.1, 0.2, -0.3, 0.4, -0.5, 0.0],
                    relu,
                };
                let pixels = g.pixels();
                let want: Vec<f64> = naive_forward(x, w, g)
                    .iter()
                    .enumerate()
                    .map(|(at, &v)| {
                        let ch = at / pixels % g.o;
                        let v = v * epilogue.scale[ch] as f64 + epilogue.shift[ch] as f64;
                        if relu {
                            v.max(0.0)
                        } else {
                            v
                        }
                    })
                    .collect();
                for cpu in cpus(2) {
                    let got = forward(x, w, g, Some(&epilogue), cpu);
                    let err = max_rel_err(&got, &want);
                    assert!(err <= 1e-5, "{} relu {relu} on {cpu:?}: {err}", case.name());
                }
            }
        }
    }

    #[test]
    fn the_products_do_not_depend_on_the_thread_count() {
        // Many chunks (parallel over chunks) and three (one at a time, parallel gemms); 8
        // channels (the transposed images' weight gradient), and 2 tiles of images that 3
        // threads split by their output channels.
        for (n, c, hw, o) in [(40, 3, 8, 4), (3, 3, 23, 4), (10, 8, 4, 64)] {
            let case = Case::new((n, c, (hw, hw)), (o, 3, 1, 1));
            let Case { g, x, w, dy } = &case;
            let run = |cpu: Cpu| {
                [
                    weight_grad(x, dy, g, cpu),
                    forward(x, w, g, None, cpu),
                    input_grad(dy, w, g, cpu),
                ]
            };
            for (one, three) in cpus(1).into_iter().zip(cpus(3)) {
                let (one, three) = (run(one), run(three));
                for (what, (one, three)) in ["dw", "y", "dx"].iter().zip(one.iter().zip(&three)) {
                    assert_eq!(one, three, "{what}: {}", case.name());
                }
            }
        }
    }

    #[test]
    fn each_product_gets_the_kernel_that_ran_fastest_for_its_shape() {
        let g = |c, k| Geometry::of((2, c, 8, 8), (16, c, k, k), 1, k / 2).unwrap();
        let portable = Cpu::detect(1).portable();
        for product in [Kernel::forward, Kernel::input_grad, Kernel::weight_grad] {
            assert_eq!(product(&g(3, 3), portable), Kernel::Im2col, "no AVX-512F");
        }
        let cpu = Cpu::detect(1);
        if !cpu.avx512f() {
            return;
        }
        assert_eq!(Kernel::forward(&g(3, 7), cpu), Kernel::Implicit);
        assert_eq!(
            Kernel::forward(&g(8, 1), cpu),
            Kernel::Im2col,
            "1×1 forwards"
        );
        assert_eq!(Kernel::input_grad(&g(8, 1), cpu), Kernel::Implicit);
        assert_eq!(Kernel::weight_grad(&g(3, 7), cpu), Kernel::WeightGradPadded);
        assert_eq!(
            Kernel::weight_grad(&g(16, 3), cpu),
            Kernel::WeightGradChannels
        );
    }
}
