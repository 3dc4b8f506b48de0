//! [`Search`]: the `[search]` table, a model-based search (TPE) whose trials are suggested one
//! at a time from the results of earlier ones. Its hyperparameters are drawn from the same
//! [`Distribution`]s as `[random]`'s, read by the same code; [`Search::space`] turns them into
//! the search crate's [`Space`], [`Search::settings`] a suggested point back into values (rounded
//! as `[random]` rounds its draws) and [`Search::point`] a recorded trial's params into a point.

use sweep_search::{Dimension, Point, Space, Value};

use super::hyperparameters::{Param, Setting};
use super::random::{round_to_4_digits, Distribution, RandomAxis};

/// How a `[search]` chooses its trials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchMethod {
    /// The tree-structured Parzen estimator (multivariate, Optuna 5's defaults).
    Tpe,
}

impl SearchMethod {
    /// The methods' names, as written in `search.method`.
    pub const NAMES: [&'static str; 1] = ["tpe"];
}

/// The `[search]` table: `trials` trials suggested in order by `method` from `seed`.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    pub method: SearchMethod,
    pub trials: usize,
    /// `search.seed`, else the sweep's `train.seed`.
    pub seed: u64,
    /// Trials drawn at random (as `[random]`'s samples) before the model suggests.
    pub startup: usize,
    /// How many trials may be out at once: trial k is suggested once trials
    /// `0..=k - parallel` have ended, from their results alone, so the sequence depends on it
    /// and not on the slots a run has. Default: `run.trials_per_device`.
    pub parallel: usize,
    /// The searched hyperparameters, in file order.
    pub axes: Vec<RandomAxis>,
}

impl Search {
    /// The search crate's space of the searched hyperparameters, in file order; a choice's
    /// values are named as `sweep show` writes them.
    pub fn space(&self) -> Space {
        let dimensions = self
            .axes
            .iter()
            .map(|axis| {
                let dimension = match axis.distribution {
                    Distribution::Uniform { low, high } => Dimension::Float {
                        low,
                        high,
                        log: false,
                    },
                    Distribution::LogUniform { low, high } => Dimension::Float {
                        low,
                        high,
                        log: true,
                    },
                    Distribution::Int { low, high, log } => Dimension::Int { low, high, log },
                    Distribution::Choice(ref values) => {
                        Dimension::Choice(values.iter().map(|v| v.param.to_string()).collect())
                    }
                };
                (axis.key.clone(), dimension)
            })
            .collect();
        Space::new(dimensions).expect("the reader checked every distribution's bounds")
    }

    /// The values of a suggested `point` of [`Search::space`], key by key: floats rounded to 4
    /// significant digits within their bounds, as `[random]` rounds its draws, so that the
    /// value shown, hashed and observed later is one number.
    pub fn settings(&self, point: &Point) -> Vec<(&str, Setting)> {
        self.axes
            .iter()
            .zip(point)
            .map(|(axis, value)| {
                let written = match (&axis.distribution, *value) {
                    (Distribution::Choice(values), Value::Choice(c)) => {
                        return (axis.key.as_str(), values[c].clone())
                    }
                    (
                        Distribution::Uniform { low, high }
                        | Distribution::LogUniform { low, high },
                        Value::Float(x),
                    ) => toml_edit::Value::from(round_to_4_digits(x).clamp(*low, *high)),
                    (Distribution::Int { .. }, Value::Int(k)) => toml_edit::Value::from(k),
                    (distribution, value) => {
                        unreachable!("a point of the space: {value:?} of {distribution:?}")
                    }
                };
                (axis.key.as_str(), axis.setting(&written))
            })
            .collect()
    }

    /// The point of [`Search::space`] that a recorded trial's `params` hold; `None` when one
    /// of them is missing or outside the space (the file's `[search]` changed since).
    pub fn point(&self, params: &sweep_store::Params) -> Option<Point> {
        self.axes
            .iter()
            .map(|axis| {
                let param = params.get(&axis.key)?;
                match (&axis.distribution, param) {
                    (Distribution::Choice(values), _) => values
                        .iter()
                        .position(|v| v.param == *param)
                        .map(Value::Choice),
                    (
                        Distribution::Uniform { low, high }
                        | Distribution::LogUniform { low, high },
                        &Param::Float(x),
                    ) => (*low..=*high).contains(&x).then_some(Value::Float(x)),
                    (Distribution::Int { low, high, .. }, &Param::Int(k)) => {
                        (*low..=*high).contains(&k).then_some(Value::Int(k))
                    }
                    _ => None,
                }
            })
            .collect()
    }
}
