//! Model-based search as pure functions, for the scheduler to call: [`Tpe`] suggests points
//! of a [`Space`] from finished observations and pending points (a constant liar), [`window`]
//! says which trials a suggestion may observe so that a parallel search is reproducible,
//! [`Hyperband`] gives a trial's bracket and rungs, and [`model_budget`] is BOHB's choice of
//! the budget to fit on.
//!
//! Every answer is a function of its arguments alone: randomness comes from
//! `sweep_rng::Rng::derive(seed, [label, trial index])`, never from time, threads or hash
//! order. The library minimises; the caller negates a maximised objective. It knows nothing
//! of the scheduler, the store or the models (scheduler → search → rng).
//!
//! A scheduler with `slots` slots makes suggestion k once trials `0..window(k, slots)` have
//! finished, from their results, with the trials after them as pending; a failed trial is
//! in neither list:
//!
//! ```
//! use sweep_search::{window, Dimension, Origin, Point, Space, Tpe, Value};
//!
//! let space = Space::new(vec![
//!     ("lr".into(), Dimension::Float { low: 1e-4, high: 1e-1, log: true }),
//!     ("optimizer".into(), Dimension::Choice(vec!["adam".into(), "sgd".into()])),
//! ])
//! .unwrap();
//! let (tpe, seed, slots) = (Tpe::default(), 7, 2);
//! let mut trials: Vec<(Point, f64)> = Vec::new();
//! for k in 0..30 {
//!     let seen = window(k, slots);
//!     let pending: Vec<Point> = trials[seen..].iter().map(|(p, _)| p.clone()).collect();
//!     let suggestion = tpe.suggest(&space, seed, k, &trials[..seen], &pending).unwrap();
//!     assert_eq!(suggestion.origin == Origin::Startup, seen < tpe.startup);
//!     let Value::Float(lr) = suggestion.point[0] else { unreachable!() };
//!     trials.push((suggestion.point, (lr.log10() + 2.5).powi(2))); // minimised
//! }
//! ```

mod bohb;
mod hyperband;
mod parzen;
mod space;
mod tpe;
mod truncnorm;
mod window;

pub use bohb::{bohb_min_results, model_budget};
pub use hyperband::{Bracket, Hyperband, Rung};
pub use parzen::{default_weights, Parzen, PRIOR_WEIGHT};
pub use space::{Dimension, Point, Space, Value};
pub use tpe::{gamma, split, Origin, Suggestion, Tpe};
pub use window::window;

/// What a search refuses: a dimension that cannot be searched, or a point outside the space.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SearchError {
    /// A dimension of [`Space::new`] is invalid.
    #[error("dimension `{name}`: {problem}")]
    Dimension {
        /// The dimension's name.
        name: String,
        /// What is wrong with it.
        problem: String,
    },
    /// An observation or pending point does not fit the space.
    #[error("{which} {row}: {problem}")]
    Point {
        /// `observation` or `pending point`.
        which: String,
        /// Its position in the slice given.
        row: usize,
        /// What is wrong with it.
        problem: String,
    },
}
