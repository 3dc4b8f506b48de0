//! The exact functional ANOVA of a complete factorial grid's objectives ([`Cube`]): the cell
//! means (over seeds) split into a grand mean, a main effect per axis, an interaction per pair
//! of axes and a higher-order remainder, each [`Component`]'s variance over the cells; with
//! seeds, the mean within-cell variance is the noise.
//!
//! On a balanced grid the components are orthogonal, so their variances add up to the
//! variance of the cell means, and with the noise to the variance of the trials' objectives
//! (the law of total variance); each equals its sum of squares in a classical ANOVA table
//! divided by the number of trials (statsmodels' `anova_lm`, `scripts/importance_reference.py`).

/// A term of the decomposition, by the positions of its axes in the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    Main(usize),
    Pair(usize, usize),
    /// Interactions of three or more axes: the rest of the cell means' variance.
    Higher,
    /// The variance between seeds of one cell.
    Noise,
}

/// The components of a grid of `axes` axes and `seeds` seeds, in the order
/// [`Cube::variances`] gives them: main effects, pairs, then the remainder (3 axes or more)
/// and the noise (2 seeds or more).
pub fn components(axes: usize, seeds: usize) -> Vec<Component> {
    let mut out: Vec<Component> = (0..axes).map(Component::Main).collect();
    for a in 0..axes {
        for b in a + 1..axes {
            out.push(Component::Pair(a, b));
        }
    }
    if axes >= 3 {
        out.push(Component::Higher);
    }
    if seeds >= 2 {
        out.push(Component::Noise);
    }
    out
}

/// A complete grid's objectives: `y[cell * seeds + seed]`, cells in mixed radix over
/// `sizes` (the last axis fastest).
pub struct Cube<'a> {
    sizes: &'a [usize],
    seeds: usize,
    y: &'a [f64],
    /// Each cell's level on each axis: `coords[cell * axes + axis]`.
    coords: Vec<usize>,
}

impl<'a> Cube<'a> {
    pub fn new(sizes: &'a [usize], seeds: usize, y: &'a [f64]) -> Cube<'a> {
        let cells: usize = sizes.iter().product();
        assert_eq!(cells * seeds, y.len(), "one objective per cell and seed");
        let mut coords = vec![0; cells * sizes.len()];
        for cell in 0..cells {
            let mut rest = cell;
            for (axis, size) in sizes.iter().enumerate().rev() {
                coords[cell * sizes.len() + axis] = rest % size;
                rest /= size;
            }
        }
        Cube {
            sizes,
            seeds,
            y,
            coords,
        }
    }

    /// Each component's variance (in [`components`]' order) and their total, with the seeds
    /// weighted by `weights` (all 1: the grid as it is; a bootstrap's counts: a resample of
    /// whole seeds).
    pub fn variances(&self, weights: &[f64]) -> (Vec<f64>, f64) {
        let k = self.sizes.len();
        let cells = self.y.len() / self.seeds;
        let weight: f64 = weights.iter().sum();
        let mut means = vec![0.0; cells];
        let mut within = 0.0;
        for (c, mean) in means.iter_mut().enumerate() {
            let ys = &self.y[c * self.seeds..(c + 1) * self.seeds];
            let m = ys.iter().zip(weights).map(|(y, w)| y * w).sum::<f64>() / weight;
            within += ys
                .iter()
                .zip(weights)
                .map(|(y, w)| w * (y - m) * (y - m))
                .sum::<f64>()
                / weight;
            *mean = m;
        }
        within /= cells as f64;
        let grand = means.iter().sum::<f64>() / cells as f64;
        let between = means.iter().map(|m| (m - grand) * (m - grand)).sum::<f64>() / cells as f64;

        // Main effects: each level's mean less the grand mean.
        let mut mains: Vec<Vec<f64>> = self.sizes.iter().map(|&n| vec![0.0; n]).collect();
        for (c, m) in means.iter().enumerate() {
            for (axis, sums) in mains.iter_mut().enumerate() {
                sums[self.coords[c * k + axis]] += m;
            }
        }
        for (sums, &n) in mains.iter_mut().zip(self.sizes) {
            let per_level = (cells / n) as f64;
            for s in sums.iter_mut() {
                *s = *s / per_level - grand;
            }
        }
        let mut out: Vec<f64> = mains
            .iter()
            .map(|e| e.iter().map(|v| v * v).sum::<f64>() / e.len() as f64)
            .collect();
        // Pairs: each pair of levels' mean less the grand mean and both main effects.
        for a in 0..k {
            for b in a + 1..k {
                let (na, nb) = (self.sizes[a], self.sizes[b]);
                let mut sums = vec![0.0; na * nb];
                for (c, m) in means.iter().enumerate() {
                    sums[self.coords[c * k + a] * nb + self.coords[c * k + b]] += m;
                }
                let per_pair = (cells / (na * nb)) as f64;
                let mut variance = 0.0;
                for (i, s) in sums.iter().enumerate() {
                    let (la, lb) = (i / nb, i % nb);
                    let effect = s / per_pair - grand - mains[a][la] - mains[b][lb];
                    variance += effect * effect;
                }
                out.push(variance / (na * nb) as f64);
            }
        }
        if k >= 3 {
            // What the mains and pairs leave of the cell means' variance; rounding can make
            // an exact zero slightly negative.
            out.push((between - out.iter().sum::<f64>()).max(0.0));
        }
        if self.seeds >= 2 {
            out.push(within);
        }
        (out, between + within)
    }

    /// Each component's share of the total variance (all zero when every trial has the same
    /// objective).
    pub fn shares(&self, weights: &[f64]) -> Vec<f64> {
        let (variances, total) = self.variances(weights);
        variances
            .iter()
            .map(|v| if total > 0.0 { v / total } else { 0.0 })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE_SEED: [f64; 1] = [1.0];

    /// `f` over a grid of the given levels (the last axis fastest).
    fn grid(levels: &[&[f64]], f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
        let mut out = vec![Vec::new()];
        for axis in levels {
            out = out
                .into_iter()
                .flat_map(|p| {
                    axis.iter().map(move |v| {
                        let mut p = p.clone();
                        p.push(*v);
                        p
                    })
                })
                .collect();
        }
        out.iter().map(|p| f(p)).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn an_additive_function_has_no_interaction() {
        let y = grid(
            &[&[0.0, 1.0, 2.0], &[0.0, 10.0], &[1.0, 3.0, 4.0, 8.0]],
            |p| 2.0 * p[0] + 0.1 * p[1] - p[2] * p[2],
        );
        let sizes = [3, 2, 4];
        let shares = Cube::new(&sizes, 1, &y).shares(&ONE_SEED);
        let parts = components(3, 1);
        assert_eq!(parts.len(), 3 + 3 + 1);
        for (part, share) in parts.iter().zip(&shares) {
            if !matches!(part, Component::Main(_)) {
                assert!(share.abs() < 1e-12, "{part:?}: {share}");
            }
        }
        assert!(close(shares.iter().sum(), 1.0));
        // Each main effect's share is its own variance over the total: a's is 2²·var{0,1,2}.
        let var = |v: &[f64]| {
            let m = v.iter().sum::<f64>() / v.len() as f64;
            v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64
        };
        let (va, vb, vc) = (
            4.0 * var(&[0.0, 1.0, 2.0]),
            0.01 * var(&[0.0, 10.0]),
            var(&[1.0, 9.0, 16.0, 64.0]),
        );
        let total = va + vb + vc;
        assert!(close(shares[0], va / total) && close(shares[1], vb / total));
        assert!(close(shares[2], vc / total));
    }

    #[test]
    fn a_pure_product_on_a_centred_two_level_grid_is_all_interaction() {
        // f = a·b with a, b ∈ {−1, 1}: every level's mean is 0, so no main effect.
        let y = grid(&[&[-1.0, 1.0], &[-1.0, 1.0]], |p| p[0] * p[1]);
        let shares = Cube::new(&[2, 2], 1, &y).shares(&ONE_SEED);
        assert_eq!(shares, vec![0.0, 0.0, 1.0], "a, b, a × b");
    }

    #[test]
    fn a_product_off_centre_splits_into_known_shares() {
        // f = a·b with a, b ∈ {0, 1}: f = 1/4 + a'/2 + b'/2 + a'b' for the centred ±1/2 codes,
        // so each main effect has variance 1/16 and the interaction 1/16: shares 1/3 each.
        let y = grid(&[&[0.0, 1.0], &[0.0, 1.0]], |p| p[0] * p[1]);
        let shares = Cube::new(&[2, 2], 1, &y).shares(&ONE_SEED);
        for share in shares {
            assert!(close(share, 1.0 / 3.0), "{share}");
        }
    }

    #[test]
    fn a_three_way_product_is_the_higher_order_remainder() {
        let y = grid(&[&[-1.0, 1.0], &[-1.0, 1.0], &[-1.0, 1.0]], |p| {
            p[0] * p[1] * p[2]
        });
        let shares = Cube::new(&[2, 2, 2], 1, &y).shares(&ONE_SEED);
        assert_eq!(components(3, 1)[6], Component::Higher);
        assert!(close(shares[6], 1.0), "{shares:?}");
    }

    #[test]
    fn seeds_add_a_noise_share_and_all_shares_sum_to_one() {
        // Two cells, two seeds: cell means 0 and 2 (variance 1), each ±1 around its mean
        // (within variance 1): half effect, half noise.
        let y = [-1.0, 1.0, 1.0, 3.0];
        let cube = Cube::new(&[2], 2, &y);
        assert_eq!(components(1, 2), vec![Component::Main(0), Component::Noise]);
        assert_eq!(cube.shares(&[1.0, 1.0]), vec![0.5, 0.5]);
        // A resample that draws the first seed twice has no noise left.
        assert_eq!(cube.shares(&[2.0, 0.0]), vec![1.0, 0.0]);
    }

    #[test]
    fn a_constant_objective_has_no_shares() {
        let y = [0.5; 6];
        assert_eq!(Cube::new(&[3, 2], 1, &y).shares(&ONE_SEED), vec![0.0; 3]);
    }
}
