//! The decision statistic: a two-sided two-proportion z-test (pooled standard error) of the
//! best variant against the runner-up. With 3–5 variants this compares the two best, which is
//! the comparison that decides whether the best is distinguishable at all.

/// Complementary error function by the Chebyshev fit of Numerical Recipes' `erfcc`:
/// fractional error below 1.2e-7 everywhere, well inside the 1e-6 the tests require.
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// One variant's observations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observed {
    pub sent: u64,
    pub events: u64,
}

impl Observed {
    pub fn rate(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            self.events as f64 / self.sent as f64
        }
    }
}

/// The test of best against runner-up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZTest {
    pub best: usize,
    pub runner_up: usize,
    pub z: f64,
    /// Two-sided p-value.
    pub p_value: f64,
}

/// Best (highest rate; ties → lower index) against runner-up. `None` with fewer than two
/// variants or no sends.
pub fn best_vs_runner_up(variants: &[Observed]) -> Option<ZTest> {
    if variants.len() < 2 {
        return None;
    }
    let mut order: Vec<usize> = (0..variants.len()).collect();
    order.sort_by(|a, b| {
        variants[*b]
            .rate()
            .total_cmp(&variants[*a].rate())
            .then(a.cmp(b))
    });
    let (best, runner_up) = (order[0], order[1]);
    let (a, b) = (variants[best], variants[runner_up]);
    if a.sent == 0 || b.sent == 0 {
        return None;
    }
    let pooled = (a.events + b.events) as f64 / (a.sent + b.sent) as f64;
    let se = (pooled * (1.0 - pooled) * (1.0 / a.sent as f64 + 1.0 / b.sent as f64)).sqrt();
    let z = if se == 0.0 {
        0.0
    } else {
        (a.rate() - b.rate()) / se
    };
    let p_value = erfc(z.abs() / std::f64::consts::SQRT_2).clamp(0.0, 1.0);
    Some(ZTest {
        best,
        runner_up,
        z,
        p_value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erfc_matches_reference_values() {
        // scipy.special.erfc
        for (x, expected) in [
            (0.0, 1.0),
            (0.5, 0.479_500_122_186_953_5),
            (1.0, 0.157_299_207_050_285_13),
            (1.959_963_984_540_054 / std::f64::consts::SQRT_2, 0.05),
            (2.5, 0.000_406_952_017_444_959),
            (-1.0, 1.842_700_792_949_715),
        ] {
            assert!(
                (erfc(x) - expected).abs() < 1e-7,
                "erfc({x}) = {} ≠ {expected}",
                erfc(x)
            );
        }
    }

    #[test]
    fn two_proportion_z_test_matches_an_independent_computation() {
        // Computed independently in Python (math module):
        //   p = 130/800; se = math.sqrt(p*(1-p)*(1/400+1/400)); z = (80/400-50/400)/se
        //   z = 2.8751279110965613;  math.erfc(z/math.sqrt(2)) = 0.004038638499648382
        // (= statsmodels proportions_ztest([80, 50], [400, 400]), pooled, two-sided).
        let t = best_vs_runner_up(&[
            Observed {
                sent: 400,
                events: 50,
            },
            Observed {
                sent: 400,
                events: 80,
            },
        ])
        .unwrap();
        assert_eq!((t.best, t.runner_up), (1, 0));
        assert!((t.z - 2.875_127_911_096_561).abs() < 1e-6, "{}", t.z);
        assert!(
            (t.p_value - 0.004_038_638_499_648).abs() < 1e-6,
            "{}",
            t.p_value
        );
    }

    #[test]
    fn equal_rates_are_not_significant() {
        let t = best_vs_runner_up(&[
            Observed {
                sent: 100,
                events: 10,
            },
            Observed {
                sent: 100,
                events: 10,
            },
        ])
        .unwrap();
        assert_eq!(t.z, 0.0);
        assert!((t.p_value - 1.0).abs() < 1e-7);
        assert_eq!(t.best, 0, "ties go to the first variant");
    }
}
