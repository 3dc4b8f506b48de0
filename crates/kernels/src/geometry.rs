//! What every convolution kernel agrees on, and the crate's leaf: [`Geometry`] (the shape of
//! one convolution), [`valid`] (the output positions whose window tap lies inside the input)
//! and [`Epilogue`] (the per-channel map applied as an output is written). The kernels import
//! these; this module imports none of them.

/// The shape of one convolution: input `n × c × h × w`, kernel `o × c × k × k`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Images.
    pub n: usize,
    /// Input channels.
    pub c: usize,
    /// Input rows.
    pub h: usize,
    /// Input columns.
    pub w: usize,
    /// Output channels.
    pub o: usize,
    /// Kernel side.
    pub k: usize,
    pub stride: usize,
    /// Zero pixels added on each side.
    pub pad: usize,
}

/// Why a kernel does not fit an input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GeometryError {
    #[error("conv2d: input {input:?} and kernel {kernel:?} do not match")]
    Mismatch {
        input: [usize; 4],
        kernel: [usize; 4],
    },
    #[error(
        "conv2d: a {k}×{k} kernel with stride {stride} and padding {pad} does not fit a \
         {h}×{w} input"
    )]
    DoesNotFit {
        k: usize,
        stride: usize,
        pad: usize,
        h: usize,
        w: usize,
    },
}

impl Geometry {
    /// The convolution of an `n × c × h × w` input with an `o × c × k × k` kernel, checked.
    pub fn of(
        (n, c, h, wd): (usize, usize, usize, usize),
        (o, c2, k, k2): (usize, usize, usize, usize),
        stride: usize,
        pad: usize,
    ) -> Result<Geometry, GeometryError> {
        if c != c2 || k != k2 {
            return Err(GeometryError::Mismatch {
                input: [n, c, h, wd],
                kernel: [o, c2, k, k2],
            });
        }
        // Every kernel sizes buffers from these, so a window that does not fit is refused
        // here rather than wrapped around in the arithmetic.
        if stride == 0 || k == 0 || h == 0 || wd == 0 || h + 2 * pad < k || wd + 2 * pad < k {
            return Err(GeometryError::DoesNotFit {
                k,
                stride,
                pad,
                h,
                w: wd,
            });
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

    /// Output rows.
    pub fn oh(&self) -> usize {
        (self.h + 2 * self.pad - self.k) / self.stride + 1
    }

    /// Output columns.
    pub fn ow(&self) -> usize {
        (self.w + 2 * self.pad - self.k) / self.stride + 1
    }

    /// Rows of the unfolded input: one per (channel, kernel row, kernel column).
    pub fn ckk(&self) -> usize {
        self.c * self.k * self.k
    }

    /// Columns of the unfolded input: one per output pixel.
    pub fn pixels(&self) -> usize {
        self.oh() * self.ow()
    }

    /// The floating-point operations of one product (forward, input gradient or weight
    /// gradient) counted as a dense convolution: 2 per multiply-add, the taps a window has
    /// outside the picture included.
    pub fn flops(&self) -> f64 {
        2.0 * (self.n * self.o * self.ckk() * self.pixels()) as f64
    }
}

/// The output positions `o` in `0..outputs` whose input position `o · stride + offset` lies in
/// `0..inputs`: one range, so the loops over it need no bounds test per element.
pub fn valid(
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

/// A per-channel affine map, then optionally a ReLU, applied to a convolution's output as it
/// is written, while it is still in cache: batch norm in evaluation (its running statistics
/// folded into a scale and shift), or a bias.
#[derive(Debug, Clone, PartialEq)]
pub struct Epilogue {
    /// Per output channel.
    pub scale: Vec<f32>,
    /// Per output channel, added after the scale.
    pub shift: Vec<f32>,
    /// Whether negative values become 0 after the map.
    pub relu: bool,
}

impl Epilogue {
    /// Applies the map to `y`, whole images of `channels × pixels`: a product and a sum, not
    /// fused, then the floor (the implicit gemm's kernel rounds the same way).
    pub(crate) fn apply(&self, y: &mut [f32], channels: usize, pixels: usize) {
        let floor = if self.relu { 0.0 } else { f32::NEG_INFINITY };
        for (row, plane) in y.chunks_mut(pixels).enumerate() {
            let (scale, shift) = (self.scale[row % channels], self.shift[row % channels]);
            for v in plane {
                *v = (*v * scale + shift).max(floor);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_kernel_that_does_not_fit_or_match_is_an_error() {
        let fits = |input, kernel, stride, pad| Geometry::of(input, kernel, stride, pad);
        assert!(matches!(
            fits((1, 2, 2, 3), (2, 2, 3, 3), 2, 0),
            Err(GeometryError::DoesNotFit { h: 2, w: 3, .. })
        ));
        assert!(fits((1, 2, 2, 3), (2, 2, 3, 3), 0, 1).is_err(), "stride 0");
        assert!(matches!(
            fits((1, 3, 8, 8), (2, 2, 3, 3), 1, 1),
            Err(GeometryError::Mismatch { .. })
        ));
        let g = fits((1, 2, 2, 3), (2, 2, 3, 3), 1, 1).expect("a padded 3×3 fits 2×3");
        assert_eq!((g.oh(), g.ow(), g.ckk(), g.pixels()), (2, 3, 18, 6));
    }
}
