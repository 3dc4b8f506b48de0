//! Helpers shared by the unit tests of the custom ops.

use candle_core::backprop::GradStore;
use candle_core::Tensor;

/// The gradients of `Σ y · weights`: a loss that weights every output differently, so that
/// every gradient entry is tested.
pub fn weighted_grads(y: &Tensor, weights: &Tensor) -> GradStore {
    (y * weights)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap()
}

/// The largest difference between `a` and the reference `b`, relative to `b`'s largest
/// magnitude.
pub fn max_rel_err(a: &Tensor, b: &Tensor) -> f32 {
    let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    a.iter()
        .zip(&b)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs() / scale))
}
