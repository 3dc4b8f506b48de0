//! The standard normal's tails in log space and the truncated normal: its log density, its
//! log mass over an interval and its inverse-CDF sampling. Written after Optuna's
//! `_truncnorm.py` (itself from SciPy), which keeps every quantity in the left tail where
//! floating point is accurate.

use std::f64::consts::{FRAC_1_SQRT_2, PI};

/// ln √(2π).
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// Φ(a), the standard normal CDF, accurate in both tails.
pub fn ndtr(a: f64) -> f64 {
    let x = a * FRAC_1_SQRT_2;
    if x < -FRAC_1_SQRT_2 {
        0.5 * libm::erfc(-x)
    } else if x < FRAC_1_SQRT_2 {
        0.5 + 0.5 * libm::erf(x)
    } else {
        1.0 - 0.5 * libm::erfc(x)
    }
}

/// ln Φ(a), with the asymptotic series far in the left tail where Φ underflows.
pub fn log_ndtr(a: f64) -> f64 {
    if a > 6.0 {
        return -ndtr(-a);
    }
    if a > -20.0 {
        return ndtr(a).ln();
    }
    let log_lhs = -0.5 * a * a - (-a).ln() - 0.5 * (2.0 * PI).ln();
    let (mut last, mut rhs, mut numerator, mut denom_factor) = (0.0f64, 1.0f64, 1.0f64, 1.0f64);
    let denom_cons = 1.0 / (a * a);
    let mut sign = 1.0;
    let mut i = 0.0;
    while (last - rhs).abs() > f64::EPSILON {
        i += 1.0;
        last = rhs;
        sign = -sign;
        denom_factor *= denom_cons;
        numerator *= 2.0 * i - 1.0;
        rhs += sign * numerator * denom_factor;
    }
    log_lhs + rhs.ln()
}

/// ln(p − q) from ln p and ln q, p ≥ q.
fn log_diff(log_p: f64, log_q: f64) -> f64 {
    log_p + (-(log_q - log_p).exp()).ln_1p()
}

/// ln of the standard normal's mass on [a, b].
pub fn log_gauss_mass(a: f64, b: f64) -> f64 {
    if b <= 0.0 {
        log_diff(log_ndtr(b), log_ndtr(a))
    } else if a > 0.0 {
        log_diff(log_ndtr(-a), log_ndtr(-b))
    } else {
        (-ndtr(a) - ndtr(-b)).ln_1p()
    }
}

/// ln of the density at `x` of a normal (`mu`, `sigma`) truncated to [low, high], given
/// `log_mass` = [`log_gauss_mass`] of the standardised bounds (the same for every `x`).
pub fn log_pdf(x: f64, mu: f64, sigma: f64, log_mass: f64) -> f64 {
    let z = (x - mu) / sigma;
    -0.5 * z * z - LN_SQRT_2PI - log_mass - sigma.ln()
}

/// Φ⁻¹(p) for p in (0, 1): Acklam's rational approximation, refined by one Halley step on the
/// accurate [`ndtr`], so full double precision.
pub fn ndtri(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    let tail = |q: f64| {
        let r = (-2.0 * q.ln()).sqrt();
        (((((C[0] * r + C[1]) * r + C[2]) * r + C[3]) * r + C[4]) * r + C[5])
            / ((((D[0] * r + D[1]) * r + D[2]) * r + D[3]) * r + 1.0)
    };
    let x = if p < 0.02425 {
        tail(p)
    } else if p > 1.0 - 0.02425 {
        -tail(1.0 - p)
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    };
    // Halley's step on Φ(x) − p; in the upper half through the complement, which is accurate.
    let e = if x < 0.0 {
        ndtr(x) - p
    } else {
        (1.0 - p) - ndtr(-x)
    };
    let u = e * (2.0 * PI).sqrt() * (0.5 * x * x).exp();
    x - u / (1.0 + 0.5 * x * u)
}

/// The standard normal truncated to [a, b] (a ≤ 0 ≤ b is the common case, but any a < b
/// works) at quantile `u` in [0, 1): the inverse CDF, kept in whichever tail is accurate.
pub fn ppf(u: f64, a: f64, b: f64) -> f64 {
    if a > 0.0 {
        // Mirror into the left half, where Φ is accurate.
        return -ppf(1.0 - u, -b, -a);
    }
    let low_tail = ndtr(a);
    let high_tail = ndtr(-b);
    let mass = 1.0 - low_tail - high_tail;
    if mass.is_nan() || mass <= 0.0 {
        // Both bounds far in the left tail: the mass underflowed; the bound nearer the mean.
        return b;
    }
    let p = low_tail + u * mass;
    let x = if p < 0.5 {
        ndtri(p)
    } else {
        -ndtri(high_tail + (1.0 - u) * mass)
    };
    // An infinite x is a quantile that underflowed at a bound's side: clamp keeps the bound.
    x.clamp(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndtr_and_ndtri_invert_each_other_and_match_known_values() {
        assert!((ndtr(0.0) - 0.5).abs() < 1e-16);
        assert!((ndtr(1.959_963_984_540_054) - 0.975).abs() < 1e-15);
        assert!((ndtr(-3.0) / 1.349_898_031_630_094_5e-3 - 1.0).abs() < 1e-14);
        for &p in &[1e-300, 1e-12, 0.001, 0.02, 0.3, 0.5, 0.7, 0.98, 0.999_999] {
            let x = ndtri(p);
            let back = ndtr(x);
            assert!(((back - p) / p).abs() < 1e-12, "p {p}: x {x}, Φ(x) {back}");
        }
    }

    #[test]
    fn log_ndtr_is_continuous_across_its_branches() {
        for &a in &[-20.0f64, 6.0] {
            let below = log_ndtr(a - 1e-9);
            let above = log_ndtr(a + 1e-9);
            assert!((below - above).abs() < 1e-6 * below.abs().max(1e-12), "{a}");
        }
        // ln Φ(−40) ≈ −804.608 (the asymptotic value; Φ itself underflows).
        assert!((log_ndtr(-40.0) - (-804.608_442_013_754_9)).abs() < 1e-9);
    }

    #[test]
    fn gauss_mass_matches_the_cdf_in_all_three_cases() {
        for &(a, b) in &[(-1.0, 1.0), (-3.0, -1.0), (0.5, 2.0), (-0.2, 5.0)] {
            let direct = (ndtr(b) - ndtr(a)).ln();
            assert!((log_gauss_mass(a, b) - direct).abs() < 1e-12, "[{a}, {b}]");
        }
        // Far in the right tail the direct difference is 0 but the mass is not.
        assert!(log_gauss_mass(30.0, 31.0).is_finite());
    }

    #[test]
    fn ppf_stays_within_the_bounds_and_is_the_inverse_cdf() {
        for &(a, b) in &[
            (-1.0, 1.0),
            (-50.0, 0.3),
            (-0.1, 80.0),
            (1.0, 3.0),
            (-3.0, -2.5),
        ] {
            for i in 0..=10 {
                let u = i as f64 / 10.0 * 0.999_999;
                let x = ppf(u, a, b);
                assert!((a..=b).contains(&x), "u {u} on [{a}, {b}]: {x}");
                let cdf = (ndtr(x) - ndtr(a)) / (ndtr(b) - ndtr(a));
                assert!((cdf - u).abs() < 1e-7, "u {u} on [{a}, {b}]: cdf {cdf}");
            }
        }
    }
}
