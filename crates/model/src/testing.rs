//! Helpers shared by the unit tests: the custom ops' gradients, and metrics compared across runs.

use candle_core::backprop::GradStore;
use candle_core::Tensor;
use candle_nn::VarMap;

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

/// Asserts that `got` holds every trainable variable of `vars` (all but the running
/// statistics) with the gradient `want` has, within `tolerance` ([`max_rel_err`]); `what`
/// names the case. Returns how many it compared.
pub fn assert_same_gradients(
    vars: &VarMap,
    got: &GradStore,
    want: &GradStore,
    tolerance: f32,
    what: &str,
) -> usize {
    let data = vars.data().lock().unwrap();
    let mut checked = 0;
    for (name, var) in data.iter().filter(|(name, _)| !name.contains("running")) {
        let want = want
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name} has no reference gradient, {what}"));
        let got = got
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name} has no gradient, {what}"));
        let err = max_rel_err(got, want);
        assert!(err < tolerance, "{name}: {err}, {what}");
        checked += 1;
    }
    checked
}

/// The metrics without the wall-clock seconds, which differ from run to run.
pub fn timeless(history: &[crate::train::EpochMetrics]) -> Vec<crate::train::EpochMetrics> {
    history
        .iter()
        .map(|m| crate::train::EpochMetrics {
            seconds: 0.0,
            ..m.clone()
        })
        .collect()
}
