//! [`Random`]: the `[random]` table, random search. Each of `trials` samples draws a value of
//! every drawn hyperparameter from its [`Distribution`]; [`RandomAxis::draw`] says how.
//!
//! Sample `i` of a hyperparameter depends only on the random seed, `i` and the hyperparameter's
//! key: its numbers come from `Rng::derive(seed, &[i, key_hash(key)])`, one stream per sample
//! and key. So a sample is the same whatever the grid cell it joins, the other drawn keys or
//! `trials`: raising `trials` from 20 to 40 keeps the first 20 samples (and their trials'
//! hashes) and adds 20.

use sha2::{Digest, Sha256};
use sweep_model::rng::Rng;
use sweep_search::{Dimension, Value as SearchValue};
use toml_edit::Value;

use super::hyperparameters::{self as hyper, Setting};

/// The `[random]` table: `trials` samples, drawn from `seed`.
#[derive(Debug, Clone, PartialEq)]
pub struct Random {
    pub trials: usize,
    /// `random.seed`, else the sweep's `train.seed`.
    pub seed: u64,
    /// The drawn hyperparameters, in file order.
    pub axes: Vec<RandomAxis>,
}

/// A drawn hyperparameter: its key (a grid axis key) and its distribution.
#[derive(Debug, Clone, PartialEq)]
pub struct RandomAxis {
    pub key: String,
    pub distribution: Distribution,
    /// Whether the key is a command trial's param (any value of its type), not one of the
    /// built-in trainer's hyperparameters.
    pub param: bool,
}

/// Where a drawn hyperparameter's values come from; bounds are inclusive and were checked
/// like grid values, so every draw is a valid value.
#[derive(Debug, Clone, PartialEq)]
pub enum Distribution {
    /// `{ uniform = [low, high] }`: a number, evenly spread.
    Uniform { low: f64, high: f64 },
    /// `{ log_uniform = [low, high] }`: a positive number whose logarithm is evenly spread.
    LogUniform { low: f64, high: f64 },
    /// `{ int = [low, high], log = false }`: an integer, evenly spread or (with `log`) with a
    /// logarithm evenly spread.
    Int { low: i64, high: i64, log: bool },
    /// `{ choice = [values] }`: one of the values, each as likely.
    Choice(Vec<Setting>),
}

impl Distribution {
    /// The names of the distributions, as written in the file.
    pub const NAMES: [&'static str; 4] = ["uniform", "log_uniform", "int", "choice"];
}

impl Random {
    /// Sample `i` (from 0): a value of every drawn hyperparameter, in file order.
    pub fn sample(&self, i: usize) -> Vec<(&str, Setting)> {
        self.axes
            .iter()
            .map(|axis| (axis.key.as_str(), axis.draw(self.seed, i)))
            .collect()
    }
}

impl RandomAxis {
    /// This hyperparameter's value in sample `i` of `seed`.
    ///
    /// - uniform: `low + (high - low)·u`, u uniform in [0, 1);
    /// - log_uniform: `exp(uniform(ln low, ln high))`;
    /// - int: each integer of [low, high] as likely; with `log`,
    ///   `floor(exp(uniform(ln low, ln(high + 1))))`, so that k is drawn with probability
    ///   ∝ ln((k + 1) / k), the integer analogue of log_uniform;
    /// - choice: a uniform index.
    ///
    /// Drawn floats are rounded to 4 significant digits (then kept within the bounds), so
    /// that a trial's params read well (`lr=0.003162`) and its configuration hashes the same
    /// on every machine.
    pub fn draw(&self, seed: u64, i: usize) -> Setting {
        let mut rng = Rng::derive(seed, &[i as u64, key_hash(&self.key)]);
        // The numbers are sweep-search's uniform draws (a TPE search's startup trials are
        // these samples): one formula for both.
        let (dimension, low, high) = match self.distribution {
            Distribution::Choice(ref values) => return values[rng.below(values.len())].clone(),
            Distribution::Uniform { low, high } => (
                Dimension::Float {
                    low,
                    high,
                    log: false,
                },
                low,
                high,
            ),
            Distribution::LogUniform { low, high } => (
                Dimension::Float {
                    low,
                    high,
                    log: true,
                },
                low,
                high,
            ),
            Distribution::Int { low, high, log } => {
                (Dimension::Int { low, high, log }, low as f64, high as f64)
            }
        };
        let value = match dimension.draw(&mut rng) {
            SearchValue::Float(x) => Value::from(round_to_4_digits(x).clamp(low, high)),
            SearchValue::Int(k) => Value::from(k),
            SearchValue::Choice(_) => unreachable!("a numeric dimension draws a number"),
        };
        self.setting(&value)
    }

    /// The hyperparameter's value `value` (a draw or a search's suggestion, within the
    /// bounds), read by the hyperparameter's own kind.
    pub(super) fn setting(&self, value: &Value) -> Setting {
        let kind = match self.param {
            true => {
                let param = hyper::param_default(value).expect("a drawn number is a param");
                hyper::param(&self.key, &param).kind
            }
            false => {
                hyper::axis(&self.key)
                    .expect("a drawn key is a grid axis")
                    .kind
            }
        };
        kind.read(value)
            .expect("the bounds were read by the same kind and every value between them is valid")
    }
}

/// The first 8 bytes of the key's SHA-256: a label that stays the same on every platform and
/// Rust version (unlike `std`'s hasher).
fn key_hash(key: &str) -> u64 {
    let digest = Sha256::digest(key.as_bytes());
    u64::from_le_bytes(digest[..8].try_into().expect("SHA-256 has 32 bytes"))
}

/// `x` rounded to 4 significant digits, through its decimal form so that the result is the
/// float those 4 digits name.
pub(super) fn round_to_4_digits(x: f64) -> f64 {
    format!("{x:.3e}")
        .parse()
        .expect("a formatted float parses")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep_file::Param;

    fn axis(key: &str, distribution: Distribution) -> RandomAxis {
        RandomAxis {
            key: key.into(),
            distribution,
            param: false,
        }
    }

    fn draws(axis: &RandomAxis, seed: u64, n: usize) -> Vec<Param> {
        (0..n).map(|i| axis.draw(seed, i).param).collect()
    }

    fn floats(params: &[Param]) -> Vec<f64> {
        params
            .iter()
            .map(|p| match p {
                Param::Float(x) => *x,
                other => panic!("a float, not {other:?}"),
            })
            .collect()
    }

    fn ints(params: &[Param]) -> Vec<i64> {
        params
            .iter()
            .map(|p| match p {
                Param::Int(x) => *x,
                other => panic!("an integer, not {other:?}"),
            })
            .collect()
    }

    fn median(mut xs: Vec<f64>) -> f64 {
        xs.sort_by(f64::total_cmp);
        xs[xs.len() / 2]
    }

    #[test]
    fn the_same_seed_draws_the_same_samples_and_another_seed_others() {
        let lr = axis(
            "lr",
            Distribution::LogUniform {
                low: 1e-4,
                high: 1e-1,
            },
        );
        assert_eq!(draws(&lr, 42, 50), draws(&lr, 42, 50));
        assert_ne!(draws(&lr, 42, 50), draws(&lr, 43, 50));
        let neurons = axis(
            "neurons",
            Distribution::Int {
                low: 16,
                high: 256,
                log: false,
            },
        );
        assert_eq!(draws(&neurons, 7, 50), draws(&neurons, 7, 50));
        assert_ne!(draws(&neurons, 7, 50), draws(&neurons, 8, 50));
        let momentum = axis(
            "momentum",
            Distribution::Uniform {
                low: 0.0,
                high: 0.6,
            },
        );
        let dropout = axis(
            "dropout",
            Distribution::Uniform {
                low: 0.0,
                high: 0.6,
            },
        );
        assert_ne!(
            draws(&momentum, 7, 50),
            draws(&dropout, 7, 50),
            "each key has its own stream"
        );
    }

    #[test]
    fn uniform_draws_stay_in_bounds_and_spread_over_them() {
        let dropout = axis(
            "dropout",
            Distribution::Uniform {
                low: 0.0,
                high: 0.6,
            },
        );
        let xs = floats(&draws(&dropout, 1, 1000));
        assert!(xs.iter().all(|x| (0.0..=0.6).contains(x)), "{xs:?}");
        let below = xs.iter().filter(|&&x| x < 0.3).count();
        assert!(
            (400..600).contains(&below),
            "{below} of 1000 below the middle"
        );
        assert!(xs.iter().any(|&x| x < 0.01) && xs.iter().any(|&x| x > 0.59));
    }

    #[test]
    fn log_uniform_draws_stay_in_bounds_around_the_geometric_mean() {
        let lr = axis(
            "lr",
            Distribution::LogUniform {
                low: 1e-4,
                high: 1e-1,
            },
        );
        let xs = floats(&draws(&lr, 1, 1000));
        assert!(xs.iter().all(|x| (1e-4..=1e-1).contains(x)), "{xs:?}");
        let geometric_mean = (1e-4f64 * 1e-1).sqrt();
        let ratio = median(xs.clone()) / geometric_mean;
        assert!(
            (0.7..1.4).contains(&ratio),
            "median / geometric mean {ratio}"
        );
        let decades = [1e-4, 1e-3, 1e-2, 1e-1]
            .windows(2)
            .map(|w| xs.iter().filter(|&&x| (w[0]..w[1]).contains(&x)).count());
        for count in decades {
            assert!((250..420).contains(&count), "{count} of 1000 in a decade");
        }
    }

    #[test]
    fn drawn_floats_have_4_significant_digits() {
        let lr = axis(
            "lr",
            Distribution::LogUniform {
                low: 1e-4,
                high: 1e-1,
            },
        );
        for x in floats(&draws(&lr, 3, 200)) {
            let shown = x.to_string();
            let digits = shown.trim_start_matches(['0', '.']).replace('.', "");
            assert!(digits.len() <= 4, "{shown}");
        }
        assert_eq!(round_to_4_digits(0.00316227766), 0.003162);
        assert_eq!(round_to_4_digits(123456.0), 123500.0);
        assert_eq!(round_to_4_digits(0.59996), 0.6);
        assert_eq!(round_to_4_digits(0.0), 0.0);
    }

    #[test]
    fn int_draws_cover_the_bounds_evenly_or_by_their_logarithm() {
        let even = axis(
            "neurons",
            Distribution::Int {
                low: 16,
                high: 19,
                log: false,
            },
        );
        let ns = ints(&draws(&even, 1, 1000));
        for k in 16..=19 {
            let count = ns.iter().filter(|&&n| n == k).count();
            assert!((200..300).contains(&count), "{count} draws of {k}");
        }
        assert!(ns.iter().all(|n| (16..=19).contains(n)));

        let log = axis(
            "neurons",
            Distribution::Int {
                low: 16,
                high: 256,
                log: true,
            },
        );
        let ns = ints(&draws(&log, 1, 1000));
        assert!(ns.iter().all(|n| (16..=256).contains(n)), "{ns:?}");
        assert!(ns.contains(&16) && ns.iter().any(|&n| n > 240));
        let below_64 = ns.iter().filter(|&&n| n < 64).count();
        // ln(64/16) / ln(257/16) = 0.50 of the draws, where an even spread would give 0.20.
        assert!(
            (430..570).contains(&below_64),
            "{below_64} of 1000 below 64"
        );

        let one = axis(
            "seed",
            Distribution::Int {
                low: 5,
                high: 5,
                log: true,
            },
        );
        assert!(ints(&draws(&one, 1, 100)).iter().all(|&n| n == 5));
    }

    #[test]
    fn choice_draws_every_value() {
        let optimizer = hyper::axis("optimizer").unwrap();
        let values: Vec<Setting> = ["\"adam\"", "\"sgd\"", "\"rmsprop\""]
            .iter()
            .map(|v| optimizer.kind.read(&v.parse().unwrap()).unwrap())
            .collect();
        let choice = axis("optimizer", Distribution::Choice(values.clone()));
        let drawn = draws(&choice, 1, 300);
        for value in &values {
            let count = drawn.iter().filter(|&p| *p == value.param).count();
            assert!((70..130).contains(&count), "{count} draws of {value:?}");
        }
    }

    #[test]
    fn a_sample_is_every_drawn_key_in_file_order() {
        let random = Random {
            trials: 4,
            seed: 9,
            axes: vec![
                axis(
                    "neurons",
                    Distribution::Int {
                        low: 1,
                        high: 9,
                        log: false,
                    },
                ),
                axis(
                    "lr",
                    Distribution::Uniform {
                        low: 0.1,
                        high: 0.2,
                    },
                ),
            ],
        };
        let sample = random.sample(2);
        let keys: Vec<&str> = sample.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, ["neurons", "lr"]);
        assert_eq!(sample[1].1, random.axes[1].draw(9, 2));
    }
}
