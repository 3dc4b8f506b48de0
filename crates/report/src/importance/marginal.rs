//! The estimate for a sweep that is not a complete grid (random or model-based search, a
//! pruned or incomplete grid): for each hyperparameter alone, how much of the objective's
//! variance its values explain, from the marginal means of its [`Groups`] (its values, or
//! quantile bins of a number with many), as ε² ("epsilon squared", Kelley 1935): the
//! between-group sum of squares less what as many groups of pure noise would explain, over
//! the total. No interactions; on a correlated design (TPE) the shares overlap and need not
//! sum to 1.

use super::design::{levels, Value};

/// Up to this many distinct numbers a hyperparameter's values are its groups; above, they
/// fall into [`BINS`] quantile bins.
pub const MAX_LEVELS: usize = 6;
/// Quantile bins of a number with more than [`MAX_LEVELS`] values.
pub const BINS: usize = 5;

/// The groups one hyperparameter's values fall into: each trial's group and the groups'
/// labels (`[0.001, 0.003]` for a bin).
#[derive(Debug, Clone, PartialEq)]
pub struct Groups {
    pub of: Vec<usize>,
    pub labels: Vec<String>,
}

impl Groups {
    /// The groups of `values`: numbers with many values in quantile bins (ties in one bin),
    /// anything else by value (`None` as its own group).
    pub fn of(values: &[Option<Value>]) -> Groups {
        let numbers: Option<Vec<f64>> = values
            .iter()
            .map(|v| match v {
                Some(Value::Number(x)) => Some(*x),
                _ => None,
            })
            .collect();
        match numbers {
            Some(numbers) if levels(values.iter().flatten()).len() > MAX_LEVELS => {
                quantile_bins(&numbers)
            }
            _ => {
                let none = Value::Label("(none)".into());
                let values: Vec<&Value> =
                    values.iter().map(|v| v.as_ref().unwrap_or(&none)).collect();
                let levels = levels(values.iter().copied());
                Groups {
                    of: values
                        .iter()
                        .map(|v| {
                            levels
                                .iter()
                                .position(|l| l == *v)
                                .expect("a value is one of its levels")
                        })
                        .collect(),
                    labels: levels.iter().map(Value::text).collect(),
                }
            }
        }
    }
}

fn quantile_bins(numbers: &[f64]) -> Groups {
    let mut sorted = numbers.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let bin_of = |x: f64| {
        let rank = sorted.partition_point(|v| *v < x);
        rank * BINS / n
    };
    let raw: Vec<usize> = numbers.iter().map(|x| bin_of(*x)).collect();
    // Ties can leave a bin empty: number the bins that hold values.
    let mut used: Vec<usize> = raw.clone();
    used.sort_unstable();
    used.dedup();
    let mut labels = Vec::new();
    for bin in &used {
        let members = numbers
            .iter()
            .zip(&raw)
            .filter(|(_, b)| *b == bin)
            .map(|(x, _)| *x);
        let (lo, hi) = members.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
            (lo.min(x), hi.max(x))
        });
        labels.push(format!("[{lo}, {hi}]"));
    }
    Groups {
        of: raw
            .iter()
            .map(|b| used.binary_search(b).expect("a used bin"))
            .collect(),
        labels,
    }
}

/// ε² of objectives `y` in `groups`, the trials weighted by `weights` (1 each, or a
/// bootstrap's counts), at least 0; `None` when there are no more trials than groups.
pub fn epsilon_squared(y: &[f64], groups: &Groups, weights: &[f64]) -> Option<f64> {
    let g = groups.labels.len();
    let (mut count, mut sum) = (vec![0.0; g], vec![0.0; g]);
    for ((&y, &group), &w) in y.iter().zip(&groups.of).zip(weights) {
        count[group] += w;
        sum[group] += w * y;
    }
    let n: f64 = count.iter().sum();
    let present = count.iter().filter(|c| **c > 0.0).count() as f64;
    if n <= present {
        return None;
    }
    let grand = sum.iter().sum::<f64>() / n;
    let total: f64 = y
        .iter()
        .zip(weights)
        .map(|(y, w)| w * (y - grand) * (y - grand))
        .sum();
    if total <= 0.0 {
        return Some(0.0);
    }
    let between: f64 = count
        .iter()
        .zip(&sum)
        .filter(|(c, _)| **c > 0.0)
        .map(|(c, s)| {
            let m = s / c;
            c * (m - grand) * (m - grand)
        })
        .sum();
    let within_mean_square = (total - between) / (n - present);
    Some(((between - (present - 1.0) * within_mean_square) / total).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(values: &[f64]) -> Vec<Option<Value>> {
        values.iter().map(|v| Some(Value::Number(*v))).collect()
    }

    #[test]
    fn few_values_are_their_own_groups_and_many_fall_into_quantile_bins() {
        let few = Groups::of(&numbers(&[0.1, 0.01, 0.1]));
        assert_eq!(few.of, vec![1, 0, 1]);
        assert_eq!(few.labels, vec!["0.01", "0.1"]);
        let many: Vec<f64> = (1..=10).map(f64::from).collect();
        let bins = Groups::of(&numbers(&many));
        assert_eq!(bins.of, vec![0, 0, 1, 1, 2, 2, 3, 3, 4, 4]);
        assert_eq!(bins.labels[0], "[1, 2]");
        let labels = Groups::of(&[Some(Value::Label("sgd".into())), None]);
        assert_eq!(labels.labels, vec!["(none)", "sgd"]);
    }

    #[test]
    fn epsilon_squared_is_one_for_pure_group_differences_and_small_for_noise() {
        let groups = Groups::of(&numbers(&[0.0, 0.0, 1.0, 1.0]));
        let ones = [1.0; 4];
        assert_eq!(
            epsilon_squared(&[2.0, 2.0, 5.0, 5.0], &groups, &ones),
            Some(1.0)
        );
        // Group means equal: nothing explained, clipped at 0.
        assert_eq!(
            epsilon_squared(&[1.0, 3.0, 3.0, 1.0], &groups, &ones),
            Some(0.0)
        );
        assert_eq!(
            epsilon_squared(&[1.0, 3.0], &Groups::of(&numbers(&[0.0, 1.0])), &[1.0; 2]),
            None
        );
    }
}
