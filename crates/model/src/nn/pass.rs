//! [`Pass`]: whether a forward pass trains, and [`dropout`], the one layer whose training
//! draws from the trial's random stream.

use candle_core::{Result, Tensor};

use crate::rng::Rng;

/// Whether a forward pass trains (with the random stream dropout draws from) or evaluates.
pub enum Pass<'a> {
    Train(&'a mut Rng),
    Eval,
}

/// Zeroes a fraction `p` of `xs` in training (scaling the rest by `1 / (1 - p)`); the mask
/// comes from the trial's own stream so that a seed gives the same run every time.
pub fn dropout(xs: &Tensor, p: f64, pass: &mut Pass) -> Result<Tensor> {
    let Pass::Train(rng) = pass else {
        return Ok(xs.clone());
    };
    if p == 0.0 {
        return Ok(xs.clone());
    }
    let keep = 1.0 / (1.0 - p as f32);
    let mask: Vec<f32> = (0..xs.elem_count())
        .map(|_| if rng.unit_f64() < p { 0.0 } else { keep })
        .collect();
    xs * Tensor::from_vec(mask, xs.shape(), xs.device())?
}
