//! The upper bound of a count: the arithmetic of the statistical thresholds, pure and total.

/// The upper `tail` quantile of a count whose mean is `mean`, overdispersed by `dispersion`,
/// and never below `min`: the count a window of usual traffic exceeds with probability about
/// `tail`.
///
/// The model is a negative binomial with variance `mean + (dispersion × mean)²`: Poisson noise
/// for small counts (a network of 1,000 clicks a day sees 3 in a quiet hour, and 9 is not a
/// flood), and for large ones a spread proportional to the mean, as days differ from each
/// other by a share, not by a square root (`dispersion` 0 is plain Poisson). The quantile is
/// the Cornish–Fisher expansion to the skewness term, `mean + σ(z + (z² − 1)γ/6)` with `γ` the
/// skewness, `(2v − mean)/v^1.5`: within a count of the exact quantile for small means, where
/// the normal approximation alone is far too low. Every term grows with `mean`, so the bound
/// does too. Inputs out of range are clamped: no NaN, no infinity, no overflow.
pub(crate) fn upper(mean: f64, dispersion: f64, tail: f64, min: u32) -> f64 {
    quantile(mean, dispersion, z_upper(tail)).max(f64::from(min))
}

/// The lower `tail` quantile of the same count (the same expansion at `-z`), never below 0:
/// the count a window falls under with probability about `tail`. Fewer than `ln(1/tail)`
/// expected is never short: none at all is likelier than `tail` then.
pub(crate) fn lower(mean: f64, dispersion: f64, tail: f64) -> f64 {
    if clamp(mean, 0.0, 1e12) <= -clamp(tail, 1e-300, 0.5).ln() {
        return 0.0;
    }
    quantile(mean, dispersion, -z_upper(tail)).max(0.0)
}

fn quantile(mean: f64, dispersion: f64, z: f64) -> f64 {
    let mean = clamp(mean, 0.0, 1e12);
    let v = mean + (clamp(dispersion, 0.0, 100.0) * mean).powi(2);
    if v > 0.0 {
        mean + z * v.sqrt() + (z * z - 1.0) / 6.0 * (2.0 * v - mean) / v
    } else {
        0.0
    }
}

/// The standard normal's upper quantile: `z` with `P(Z > z) = tail`, for `tail` in (0, 0.5]
/// (Abramowitz and Stegun 26.2.23, within 4.5e-4). Out of range, the nearest end.
pub(crate) fn z_upper(tail: f64) -> f64 {
    let p = clamp(tail, 1e-300, 0.5);
    let t = (-2.0 * p.ln()).sqrt();
    let (c0, c1, c2) = (2.515517, 0.802853, 0.010328);
    let (d1, d2, d3) = (1.432788, 0.189269, 0.001308);
    (t - (c0 + c1 * t + c2 * t * t) / (1.0 + d1 * t + d2 * t * t + d3 * t * t * t)).max(0.0)
}

/// `x` within `[lo, hi]`; NaN is `lo`.
fn clamp(x: f64, lo: f64, hi: f64) -> f64 {
    if x.is_nan() {
        lo
    } else {
        x.clamp(lo, hi)
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn the_bound_at_its_edges() {
        use super::{upper, z_upper};
        // The normal quantiles it rests on, to the approximation's 4.5e-4.
        for (tail, z) in [(0.5, 0.0), (0.05, 1.6449), (1e-3, 3.0902), (1e-6, 4.7534)] {
            assert!(
                (z_upper(tail) - z).abs() < 5e-4,
                "{tail}: {}",
                z_upper(tail)
            );
        }
        // Poisson (no dispersion), against the exact quantiles at a one-in-a-million tail, the
        // least q with P(X > q) under 1e-6: 9 for a mean of 1, 28 for 10, 151 for 100.
        let poisson = |mean| upper(mean, 0.0, 1e-6, 0);
        for (mean, exact) in [(1.0, 9.0), (10.0, 28.0), (100.0, 151.0)] {
            let q = poisson(mean);
            assert!((q - exact).abs() <= 1.0, "{mean}: {q} against {exact}");
        }
        // Nothing expected: the minimum count, never zero.
        assert_eq!(upper(0.0, 0.5, 1e-6, 12), 12.0);
        assert_eq!(upper(0.0, 0.5, 1e-6, 0), 0.0);
        // Overdispersion widens large counts in proportion: 0.5 at 1e-6 is about 3.4 times.
        let wide = upper(10_000.0, 0.5, 1e-6, 0) / 10_000.0;
        assert!((3.3..3.5).contains(&wide), "{wide}");
        // A smaller tail is a higher bound.
        assert!(upper(50.0, 0.5, 1e-9, 0) > upper(50.0, 0.5, 1e-6, 0));
    }

    #[test]
    fn the_lower_bound_at_its_edges() {
        use super::lower;
        // Fewer expected than ln(1/tail) (6.9 at 1e-3): none at all is likelier than the tail,
        // so nothing is short.
        assert_eq!(lower(0.0, 0.1, 1e-3), 0.0);
        assert_eq!(lower(6.9, 0.0, 1e-3), 0.0);
        assert!(lower(7.5, 0.0, 1e-3) > 0.0);
        // Poisson, against the exact 1e-3 lower quantile of a mean of 100 (70).
        let q = lower(100.0, 0.0, 1e-3);
        assert!((q - 70.0).abs() <= 1.5, "{q}");
        // A spread of a tenth widens large counts in proportion: 10,000 is short under ~6,900.
        let wide = lower(10_000.0, 0.1, 1e-3);
        assert!((6_800.0..7_000.0).contains(&wide), "{wide}");
        // Out of range: a number, never below 0.
        assert_eq!(lower(f64::NAN, f64::NAN, f64::NAN), 0.0);
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod properties {
        use super::super::upper;
        use proptest::prelude::*;

        fn any_f64() -> impl Strategy<Value = f64> {
            prop_oneof![
                any::<f64>(),
                Just(f64::NAN),
                Just(f64::INFINITY),
                Just(f64::NEG_INFINITY),
                0.0..1e7f64,
            ]
        }

        proptest! {
            #[test]
            fn the_bound_is_a_number_never_below_its_minimum(
                mean in any_f64(), dispersion in any_f64(), tail in any_f64(), min in any::<u32>(),
            ) {
                let q = upper(mean, dispersion, tail, min);
                prop_assert!(q.is_finite(), "{q}");
                prop_assert!(q >= f64::from(min));
            }

            #[test]
            fn the_bound_grows_with_the_expected_count(
                a in 0.0..1e9f64, b in 0.0..1e9f64, dispersion in 0.0..10.0f64,
                tail in 1e-12..0.01f64, min in 0u32..1000,
            ) {
                let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                prop_assert!(
                    upper(lo, dispersion, tail, min) <= upper(hi, dispersion, tail, min)
                );
                // And never below the count it bounds.
                prop_assert!(upper(hi, dispersion, tail, min) >= hi);
            }
        }
    }
}
