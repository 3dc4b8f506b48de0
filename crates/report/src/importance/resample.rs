//! The bootstrap's randomness and its intervals: a fixed-seed SplitMix64 stream (so the same
//! database always gives the same intervals) and the percentile interval of a sample.

/// The seed of every bootstrap: fixed, so an interval is a function of the data alone.
pub const SEED: u64 = 0x5EED_1A0E;

/// How many resamples an interval is drawn from.
pub const RESAMPLES: usize = 1000;

/// SplitMix64 (Steele, Lea and Flood 2014): small, fast and plenty for resampling indices.
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> SplitMix {
        SplitMix(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// An index below `n` (`n > 0`), by Lemire's multiply-shift (its bias, below 2⁻³² for
    /// the sizes here, does not matter to a bootstrap).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// How often each of `n` items is drawn in `n` draws with replacement.
    pub fn counts(&mut self, n: usize) -> Vec<f64> {
        let mut counts = vec![0.0; n];
        for _ in 0..n {
            counts[self.below(n)] += 1.0;
        }
        counts
    }
}

/// The 2.5% and 97.5% percentiles of `sample` (sorted in place), by linear interpolation
/// between order statistics (numpy's default).
pub fn interval(sample: &mut [f64]) -> (f64, f64) {
    sample.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let x = q * (sample.len() - 1) as f64;
        let (i, f) = (x.floor() as usize, x.fract());
        let next = sample[(i + 1).min(sample.len() - 1)];
        sample[i] + f * (next - sample[i])
    };
    (at(0.025), at(0.975))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_is_splitmix64() {
        // The first output of SplitMix64 seeded with 0, as its reference implementation gives.
        assert_eq!(SplitMix::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn percentiles_interpolate_between_order_statistics() {
        let mut sample: Vec<f64> = (0..=100).rev().map(f64::from).collect();
        assert_eq!(interval(&mut sample), (2.5, 97.5));
    }

    #[test]
    fn counts_draw_n_times() {
        let counts = SplitMix::new(SEED).counts(7);
        assert_eq!(counts.iter().sum::<f64>(), 7.0);
    }
}
