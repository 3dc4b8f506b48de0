//! [`Space`]: the hyperparameters a search draws, each a named [`Dimension`], and a
//! [`Point`] in it. Also how a dimension is modelled (its own space: logarithms for `log`,
//! integers as unit cells) and its startup draw, the same as the sweep file's `[random]`.

use sha2::{Digest, Sha256};
use sweep_rng::Rng;

use crate::SearchError;

/// One hyperparameter's domain; bounds are inclusive.
#[derive(Debug, Clone, PartialEq)]
pub enum Dimension {
    /// A real number in [low, high]; with `log`, modelled (and drawn) by its logarithm.
    Float { low: f64, high: f64, log: bool },
    /// An integer in [low, high]; with `log`, modelled by its logarithm.
    Int { low: i64, high: i64, log: bool },
    /// One of these values (their names, for messages); a point holds the index.
    Choice(Vec<String>),
}

/// A coordinate of a [`Point`]: the kind matches its [`Dimension`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Float(f64),
    Int(i64),
    /// The index of the choice.
    Choice(usize),
}

/// A configuration: one [`Value`] per dimension of the [`Space`], in its order.
pub type Point = Vec<Value>;

/// The hyperparameters a search draws, named, in a fixed order.
#[derive(Debug, Clone, PartialEq)]
pub struct Space {
    dimensions: Vec<(String, Dimension)>,
}

impl Space {
    /// A space of these named dimensions, checked: finite bounds with low ≤ high, positive
    /// bounds under `log`, at least one choice, unique names.
    pub fn new(dimensions: Vec<(String, Dimension)>) -> Result<Self, SearchError> {
        for (i, (name, dimension)) in dimensions.iter().enumerate() {
            let problem = match *dimension {
                Dimension::Float { low, high, log } => {
                    if !(low.is_finite() && high.is_finite() && low <= high) {
                        Some(format!(
                            "bounds [{low}, {high}] must be finite with low ≤ high"
                        ))
                    } else if log && low <= 0.0 {
                        Some(format!("log bounds must be positive, not [{low}, {high}]"))
                    } else {
                        None
                    }
                }
                Dimension::Int { low, high, log } => {
                    if low > high {
                        Some(format!("bounds [{low}, {high}] must have low ≤ high"))
                    } else if log && low < 1 {
                        Some(format!(
                            "log bounds must be at least 1, not [{low}, {high}]"
                        ))
                    } else {
                        None
                    }
                }
                Dimension::Choice(ref values) if values.is_empty() => {
                    Some("a choice needs at least one value".to_string())
                }
                Dimension::Choice(_) => None,
            };
            let problem = problem.or_else(|| {
                dimensions[..i]
                    .iter()
                    .any(|(other, _)| other == name)
                    .then(|| "the name is used twice".to_string())
            });
            if let Some(problem) = problem {
                return Err(SearchError::Dimension {
                    name: name.clone(),
                    problem,
                });
            }
        }
        Ok(Self { dimensions })
    }

    /// The dimensions, in order.
    pub fn dimensions(&self) -> &[(String, Dimension)] {
        &self.dimensions
    }

    /// The number of dimensions.
    pub fn len(&self) -> usize {
        self.dimensions.len()
    }

    /// Whether the space has no dimension (every point is the empty one).
    pub fn is_empty(&self) -> bool {
        self.dimensions.is_empty()
    }

    /// Checks that `point` has one value of the right kind, within bounds, per dimension.
    pub(crate) fn check(&self, point: &Point, which: &str, row: usize) -> Result<(), SearchError> {
        let bad = |problem: String| SearchError::Point {
            which: which.to_string(),
            row,
            problem,
        };
        if point.len() != self.len() {
            return Err(bad(format!(
                "{} values for {} dimensions",
                point.len(),
                self.len()
            )));
        }
        for ((name, dimension), value) in self.dimensions.iter().zip(point) {
            let fits = match (dimension, *value) {
                (Dimension::Float { low, high, .. }, Value::Float(x)) => {
                    (*low..=*high).contains(&x)
                }
                (Dimension::Int { low, high, .. }, Value::Int(k)) => (*low..=*high).contains(&k),
                (Dimension::Choice(values), Value::Choice(c)) => c < values.len(),
                _ => false,
            };
            if !fits {
                return Err(bad(format!("`{name}` = {value:?} is not in {dimension:?}")));
            }
        }
        Ok(())
    }

    /// Startup point `index` of `seed`: every dimension drawn at random, as the sweep file's
    /// `[random]` draws sample `index` of its key (the same stream and formulas, before its
    /// rounding to 4 digits), so a TPE sweep starts with its random search's first samples.
    pub fn random_point(&self, seed: u64, index: usize) -> Point {
        self.dimensions
            .iter()
            .map(|(name, dimension)| {
                let mut rng = Rng::derive(seed, &[index as u64, key_hash(name)]);
                dimension.draw(&mut rng)
            })
            .collect()
    }
}

impl Dimension {
    /// Whether it holds a single value (nothing to model).
    pub(crate) fn is_single(&self) -> bool {
        match *self {
            Dimension::Float { low, high, .. } => low == high,
            Dimension::Int { low, high, .. } => low == high,
            Dimension::Choice(ref values) => values.len() == 1,
        }
    }

    /// A uniform draw: uniform or log-uniform reals, uniform integers or, with `log`,
    /// `floor(exp(uniform(ln low, ln(high + 1))))` (k with probability ∝ ln((k + 1) / k)),
    /// a uniform choice.
    pub fn draw(&self, rng: &mut Rng) -> Value {
        match *self {
            Dimension::Choice(ref values) => Value::Choice(rng.below(values.len())),
            Dimension::Float {
                low,
                high,
                log: false,
            } => Value::Float(rng.uniform(low, high).clamp(low, high)),
            Dimension::Float {
                low,
                high,
                log: true,
            } => Value::Float(rng.uniform(low.ln(), high.ln()).exp().clamp(low, high)),
            Dimension::Int {
                low,
                high,
                log: false,
            } => {
                let span = (high as i128 - low as i128 + 1) as u128;
                let offset = (rng.next_u64() as u128 * span) >> 64;
                Value::Int((low as i128 + offset as i128) as i64)
            }
            Dimension::Int {
                low,
                high,
                log: true,
            } => {
                let x = rng
                    .uniform((low as f64).ln(), (high as f64 + 1.0).ln())
                    .exp();
                Value::Int((x.floor() as i64).clamp(low, high))
            }
        }
    }

    /// How the estimator sees this dimension: a numeric one's bounds in its own space
    /// (logarithms under `log`; an integer k as the cell [k − ½, k + ½]), or a choice's count.
    pub(crate) fn model(&self) -> Modelled {
        match *self {
            Dimension::Float { low, high, log } => Modelled::Numeric {
                low: if log { low.ln() } else { low },
                high: if log { high.ln() } else { high },
                log,
            },
            Dimension::Int { low, high, log } => {
                let (lo, hi) = (low as f64 - 0.5, high as f64 + 0.5);
                Modelled::Numeric {
                    low: if log { lo.ln() } else { lo },
                    high: if log { hi.ln() } else { hi },
                    log,
                }
            }
            Dimension::Choice(ref values) => Modelled::Choice(values.len()),
        }
    }
}

/// A dimension as the Parzen estimator models it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Modelled {
    /// Kernels live on [low, high] in the dimension's own space.
    Numeric { low: f64, high: f64, log: bool },
    /// `n` choices, modelled by smoothed counts.
    Choice(usize),
}

impl Value {
    /// The coordinate in the estimator's space: ln x under `log`, the index of a choice.
    pub(crate) fn internal(self, log: bool) -> f64 {
        let x = match self {
            Value::Float(x) => x,
            Value::Int(k) => k as f64,
            Value::Choice(c) => return c as f64,
        };
        if log {
            x.ln()
        } else {
            x
        }
    }
}

/// The first 8 bytes of the name's SHA-256: the `[random]` table's stream label for a key,
/// the same on every platform and Rust version.
fn key_hash(key: &str) -> u64 {
    let digest = Sha256::digest(key.as_bytes());
    u64::from_le_bytes(digest[..8].try_into().expect("SHA-256 has 32 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_space_refuses_bad_bounds_and_repeated_names() {
        let bad = [
            Dimension::Float {
                low: 1.0,
                high: 0.0,
                log: false,
            },
            Dimension::Float {
                low: 0.0,
                high: 1.0,
                log: true,
            },
            Dimension::Int {
                low: 0,
                high: 8,
                log: true,
            },
            Dimension::Choice(vec![]),
        ];
        for dimension in bad {
            assert!(
                Space::new(vec![("x".into(), dimension.clone())]).is_err(),
                "{dimension:?}"
            );
        }
        let twice = Space::new(vec![
            ("x".into(), Dimension::Choice(vec!["a".into()])),
            ("x".into(), Dimension::Choice(vec!["b".into()])),
        ]);
        assert!(
            matches!(twice, Err(SearchError::Dimension { problem, .. }) if problem.contains("twice"))
        );
    }

    #[test]
    fn random_points_stay_in_the_space_and_depend_on_seed_index_and_name_only() {
        let space = Space::new(vec![
            (
                "lr".into(),
                Dimension::Float {
                    low: 1e-4,
                    high: 1e-1,
                    log: true,
                },
            ),
            (
                "neurons".into(),
                Dimension::Int {
                    low: 16,
                    high: 256,
                    log: true,
                },
            ),
            (
                "optimizer".into(),
                Dimension::Choice(vec!["adam".into(), "sgd".into()]),
            ),
        ])
        .unwrap();
        for i in 0..500 {
            space
                .check(&space.random_point(3, i), "startup", i)
                .unwrap();
        }
        assert_eq!(space.random_point(3, 7), space.random_point(3, 7));
        assert_ne!(space.random_point(3, 7), space.random_point(4, 7));
        // The stream of `lr` is the same alone or beside others (as in `[random]`).
        let alone = Space::new(vec![space.dimensions()[0].clone()]).unwrap();
        assert_eq!(alone.random_point(3, 7)[0], space.random_point(3, 7)[0]);
        // The `[random]` formula: exp(uniform(ln low, ln high)) from derive(seed, [i, key]).
        let mut rng = Rng::derive(3, &[7, key_hash("lr")]);
        let expected = rng.uniform(1e-4f64.ln(), 1e-1f64.ln()).exp();
        assert_eq!(space.random_point(3, 7)[0], Value::Float(expected));
    }
}
