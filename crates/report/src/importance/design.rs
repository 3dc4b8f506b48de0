//! What the importance analysis reads: a [`Design`] of trials, each with its hyperparameters'
//! values and its [`Outcome`], and [`Grid`], the complete factorial grid a design may be.

/// A hyperparameter's value in one trial: a number (integers too) or a label (strings,
/// booleans, lists such as `filters`, written as text).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    Label(String),
}

impl Value {
    /// The value as a table shows it: `0.001`, `1e30`.
    pub fn text(&self) -> String {
        match self {
            Value::Number(v) if *v != 0.0 && (v.abs() >= 1e16 || v.abs() < 1e-5) => {
                format!("{v:e}")
            }
            Value::Number(v) => v.to_string(),
            Value::Label(s) => s.clone(),
        }
    }

    /// Numbers ascending before labels in text order: the order of a grid axis's levels.
    fn order(&self, other: &Value) -> std::cmp::Ordering {
        match (self, other) {
            (Value::Number(a), Value::Number(b)) => a.total_cmp(b),
            (Value::Number(_), Value::Label(_)) => std::cmp::Ordering::Less,
            (Value::Label(_), Value::Number(_)) => std::cmp::Ordering::Greater,
            (Value::Label(a), Value::Label(b)) => a.cmp(b),
        }
    }
}

/// How a trial ended, as far as importance is concerned: only a finished trial's objective
/// is a complete observation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// Trained to the end: its best objective.
    Finished(f64),
    /// Stopped or paused by pruning: its objective is an early one.
    Pruned,
    Failed,
    /// Pending, running or interrupted.
    Unfinished,
}

impl Outcome {
    /// The objective of a finished trial with a finite one.
    pub fn objective(self) -> Option<f64> {
        match self {
            Outcome::Finished(v) if v.is_finite() => Some(v),
            _ => None,
        }
    }

    /// Why a trial is left out, in a few words.
    pub fn why_left_out(self) -> &'static str {
        match self {
            Outcome::Finished(_) => "has no finite objective",
            Outcome::Pruned => "stopped by pruning",
            Outcome::Failed => "failed",
            Outcome::Unfinished => "not finished",
        }
    }
}

/// One trial: its number, a value per hyperparameter of its [`Design`] (`None`: it has no
/// such key), its seed when the grid has a `seed` axis, and how it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub trial: i64,
    pub values: Vec<Option<Value>>,
    pub seed: Option<Value>,
    pub outcome: Outcome,
}

/// Every trial of a sweep, whatever its status, over the hyperparameters `names` (the seed
/// axis apart: it is what repeats a cell, not a knob).
#[derive(Debug, Clone, PartialEq)]
pub struct Design {
    pub names: Vec<String>,
    pub trials: Vec<Observation>,
}

impl Design {
    /// A trial's params as `lr=0.01 optimizer=sgd seed=1`, for what a report says was left out.
    pub fn params_text(&self, trial: &Observation) -> String {
        let mut parts: Vec<String> = self
            .names
            .iter()
            .zip(&trial.values)
            .filter_map(|(name, v)| Some(format!("{name}={}", v.as_ref()?.text())))
            .collect();
        if let Some(seed) = &trial.seed {
            parts.push(format!("seed={}", seed.text()));
        }
        parts.join(" ")
    }
}

/// The distinct values of `values`, in level order.
pub fn levels<'a>(values: impl IntoIterator<Item = &'a Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for v in values {
        if !out.contains(v) {
            out.push(v.clone());
        }
    }
    out.sort_by(Value::order);
    out
}

/// A design that is a complete factorial grid: every combination of the values its trials
/// hold (per axis, and of the seed) is exactly one trial. Axes with a single value are not
/// varied and are left out.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// The varied axes: their index in [`Design::names`] and their levels.
    pub axes: Vec<(usize, Vec<Value>)>,
    /// The seeds (one `None` level without a seed axis).
    pub seeds: Vec<Option<Value>>,
    /// The trial at each slot, `cell * seeds.len() + seed`, cells in mixed radix over
    /// `axes` (the last varying fastest).
    pub slots: Vec<usize>,
}

impl Grid {
    /// The grid `design` is, or `None` when its trials are not one complete factorial grid
    /// (random or model-based search, a key missing from a trial, a combination twice).
    pub fn of(design: &Design) -> Option<Grid> {
        let trials = &design.trials;
        let mut axes = Vec::new();
        for i in 0..design.names.len() {
            let values: Option<Vec<&Value>> = trials.iter().map(|t| t.values[i].as_ref()).collect();
            let levels = levels(values?);
            if levels.len() > 1 {
                axes.push((i, levels));
            }
        }
        let mut seeds: Vec<Option<Value>> = Vec::new();
        for t in trials {
            if !seeds.contains(&t.seed) {
                seeds.push(t.seed.clone());
            }
        }
        if seeds.iter().any(Option::is_some) && seeds.iter().any(Option::is_none) {
            return None;
        }
        seeds.sort_by(|a, b| match (a, b) {
            (Some(a), Some(b)) => a.order(b),
            _ => std::cmp::Ordering::Equal,
        });
        let cells: usize = axes.iter().map(|(_, l)| l.len()).product();
        if axes.is_empty() || cells.checked_mul(seeds.len()) != Some(trials.len()) {
            return None;
        }
        let mut slots = vec![usize::MAX; trials.len()];
        for (index, t) in trials.iter().enumerate() {
            let mut cell = 0;
            for (axis, levels) in &axes {
                let value = t.values[*axis].as_ref()?;
                let level = levels.iter().position(|l| l == value)?;
                cell = cell * levels.len() + level;
            }
            let seed = seeds.iter().position(|s| *s == t.seed)?;
            let slot = &mut slots[cell * seeds.len() + seed];
            if *slot != usize::MAX {
                return None;
            }
            *slot = index;
        }
        Some(Grid { axes, seeds, slots })
    }

    /// The number of cells (combinations of the axes' levels).
    pub fn cells(&self) -> usize {
        self.slots.len() / self.seeds.len()
    }

    /// The grid's shape as `2×3 (lr × optimizer)`.
    pub fn shape(&self, names: &[String]) -> String {
        let sizes: Vec<String> = self.axes.iter().map(|(_, l)| l.len().to_string()).collect();
        let axes: Vec<&str> = self.axes.iter().map(|(i, _)| names[*i].as_str()).collect();
        format!("{} ({})", sizes.join("×"), axes.join(" × "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(number: i64, values: &[f64], seed: Option<f64>) -> Observation {
        Observation {
            trial: number,
            values: values.iter().map(|v| Some(Value::Number(*v))).collect(),
            seed: seed.map(Value::Number),
            outcome: Outcome::Finished(0.0),
        }
    }

    fn design(trials: Vec<Observation>) -> Design {
        Design {
            names: vec!["a".into(), "b".into()],
            trials,
        }
    }

    #[test]
    fn a_full_grid_is_recognised_in_any_order_and_constant_axes_are_dropped() {
        let trials = vec![
            trial(1, &[2.0, 5.0], None),
            trial(2, &[1.0, 5.0], None),
            trial(3, &[3.0, 5.0], None),
        ];
        let grid = Grid::of(&design(trials)).expect("3 values of a, one of b");
        assert_eq!(grid.axes.len(), 1, "b has one value: not varied");
        assert_eq!(grid.slots, vec![1, 0, 2], "levels in ascending order");
    }

    #[test]
    fn seeds_repeat_cells_and_a_missing_or_repeated_combination_is_no_grid() {
        let mut trials = Vec::new();
        for (n, (a, s)) in [(1.0, 1.0), (1.0, 2.0), (2.0, 1.0), (2.0, 2.0)]
            .into_iter()
            .enumerate()
        {
            trials.push(trial(n as i64, &[a, 0.0], Some(s)));
        }
        let grid = Grid::of(&design(trials.clone())).expect("2 values × 2 seeds");
        assert_eq!((grid.cells(), grid.seeds.len()), (2, 2));
        assert!(
            Grid::of(&design(trials[..3].to_vec())).is_none(),
            "a slot is missing"
        );
        let mut twice = trials.clone();
        twice[3] = trial(4, &[2.0, 0.0], Some(1.0));
        assert!(Grid::of(&design(twice)).is_none(), "a combination twice");
    }

    #[test]
    fn random_draws_are_no_grid() {
        let trials = vec![
            trial(1, &[0.1, 3.0], None),
            trial(2, &[0.2, 4.0], None),
            trial(3, &[0.3, 5.0], None),
        ];
        assert!(
            Grid::of(&design(trials)).is_none(),
            "3 trials of 9 combinations"
        );
    }
}
