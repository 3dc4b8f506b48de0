//! [`im2col`] and [`col2im`]: a batch of images unfolded into the matrix whose product with
//! the kernel is the convolution, and such a matrix folded back onto the images. With the
//! `gemm` crate's product around them they are every convolution's portable path, and the
//! reference the vector kernels are checked against.

use crate::geometry::{valid, Geometry};

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
pub(crate) fn im2col(x: &[f32], g: &Geometry, cols: &mut [f32]) {
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
pub(crate) fn col2im(cols: &mut [f32], g: &Geometry, dx: &mut [f32]) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Values;

    /// Every element of the unfolded matrix against its definition: the input pixel its
    /// window tap reads, or 0 over the padding; strides 1 to 3, the stride-1 "same" spans.
    #[test]
    fn im2col_writes_each_tap_of_each_window() {
        let mut values = Values::new(5);
        for &(n, c, (h, w), k, stride, pad) in &[
            (2, 3, (5, 5), 3, 1, 1),
            (1, 2, (7, 6), 3, 2, 1),
            (3, 1, (8, 8), 5, 3, 2),
            (2, 2, (4, 4), 1, 1, 0),
            (1, 1, (2, 2), 7, 2, 3),
        ] {
            let g = Geometry::of((n, c, h, w), (1, c, k, k), stride, pad).unwrap();
            let x = values.take(n * c * h * w);
            let (width, pixels) = (n * g.pixels(), g.pixels());
            let mut cols = vec![f32::NAN; g.ckk() * width];
            im2col(&x, &g, &mut cols);
            for (row, line) in cols.chunks(width).enumerate() {
                let (ch, ki, kj) = (row / (k * k), row / k % k, row % k);
                for (col, &got) in line.iter().enumerate() {
                    let (i, p) = (col / pixels, col % pixels);
                    let iy = (p / g.ow() * stride + ki) as isize - pad as isize;
                    let ix = (p % g.ow() * stride + kj) as isize - pad as isize;
                    let inside = (0..h as isize).contains(&iy) && (0..w as isize).contains(&ix);
                    let want = if inside {
                        x[((i * c + ch) * h + iy as usize) * w + ix as usize]
                    } else {
                        0.0
                    };
                    assert_eq!(got, want, "{g:?} row {row} column {col}");
                }
            }
        }
    }
}
