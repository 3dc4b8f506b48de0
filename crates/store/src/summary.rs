//! [`TrialSummary`]: what the store, the report and the cli need to know of a trial, whatever
//! runs it: its params as typed values ([`Params`] of [`Param`]s), the [`Goal`] its objective
//! is the best of (a metric and a [`Direction`]), the epochs it trains in all and the classes
//! of its data.
//!
//! It is decided once, where a trial is built from its sweep file: the scheduler derives it
//! from the built-in trainer's configuration (`TrialConfig::summary`; another kind of trial,
//! such as a user's command, derives the same from its own configuration), and
//! [`record_sweep`](crate::record_sweep) stores it in columns of its own (`params`,
//! `objective_metric`, `objective_direction`, `epochs`, `classes`) beside the configuration's
//! JSON. That JSON stays the text that was hashed, read only where a model is built from it
//! (the trial process, `sweep predict`). Reading a trial reads the summary back from its
//! columns and checks it, here and only here: a damaged row is a
//! [`StoreError::DamagedTrial`] naming the trial, never a default. A database written before
//! the columns existed gets them from its configurations, once, in the migration that added
//! them.
//!
//! It lives in the store, the crate every other one depends on (scheduler → store, report →
//! store, cli → all; the store depends on none of them), so the arrows stay one way: the
//! scheduler produces it (and writes its sweep file's values as [`Param`]s), the store ranks
//! by it, the report and the cli read it, and none of them parses another's JSON.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use crate::error::StoreError;

/// One hyperparameter value, as a sweep file writes it and `trials.params` stores it (JSON:
/// an integer stays an integer, `64`, and a number a number, `64.0`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Param {
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
    Ints(Vec<i64>),
}

impl Param {
    /// The value as a number, if it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Param::Int(v) => Some(*v as f64),
            Param::Float(v) => Some(*v),
            Param::Bool(_) | Param::Text(_) | Param::Ints(_) => None,
        }
    }
}

impl std::fmt::Display for Param {
    /// As every command shows it: a name without its quotes, anything else as its JSON.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Param::Text(name) => f.write_str(name),
            value => {
                let json = serde_json::to_string(value).expect("a param serialises");
                f.write_str(&json)
            }
        }
    }
}

/// A trial's params: hyperparameter name → value, in name order.
pub type Params = BTreeMap<String, Param>;

/// Whether more or less of a metric is better; stored as its lower-case name.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::Type, serde::Serialize, serde::Deserialize,
)]
#[sqlx(type_name = "TEXT", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Maximise,
    Minimise,
}

impl Direction {
    /// Whether `a` is strictly better than `b` (never when either is NaN).
    pub fn better(self, a: f64, b: f64) -> bool {
        match self {
            Direction::Maximise => a > b,
            Direction::Minimise => a < b,
        }
    }

    /// Orders two values best first (in `f64::total_cmp`'s order, reversed to maximise).
    pub fn best_first(self, a: f64, b: f64) -> Ordering {
        match self {
            Direction::Maximise => b.total_cmp(&a),
            Direction::Minimise => a.total_cmp(&b),
        }
    }
}

/// What a trial is judged by: the metric its objective is the best of, and in which direction.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Goal {
    /// The metric's name, as an epoch records it (`val_f1`).
    pub metric: String,
    pub direction: Direction,
}

/// What every command needs to know of a trial, typed; see the module's documentation.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TrialSummary {
    /// Its point of the search: the grid's values and the drawn ones.
    pub params: Params,
    pub goal: Goal,
    /// The epochs it trains in all (a pruned sweep's rungs stop it earlier).
    pub epochs: u32,
    /// The number of classes of its data, where its configuration says (else the data's
    /// largest label + 1, which only the data knows).
    pub classes: Option<u32>,
}

impl TrialSummary {
    /// The params as `trials.params` stores them.
    pub(crate) fn params_json(&self) -> String {
        serde_json::to_string(&self.params).expect("params serialise")
    }
}

/// Reads a trial's summary from its row's columns (`id` and `number` among them, to name it):
/// the one place a stored trial's params are parsed and its summary checked.
impl<'r> sqlx::FromRow<'r, SqliteRow> for TrialSummary {
    fn from_row(row: &'r SqliteRow) -> sqlx::Result<Self> {
        let (id, number): (i64, i64) = (row.try_get("id")?, row.try_get("number")?);
        let damaged = |problem: String| -> sqlx::Error {
            let error = StoreError::DamagedTrial {
                id,
                number,
                problem,
            };
            sqlx::Error::Decode(Box::new(error))
        };
        let empty = |column: &str| damaged(format!("`{column}` is empty"));
        let params: String = row.try_get("params")?;
        let params = serde_json::from_str(&params).map_err(|e| {
            damaged(format!(
                "`params` is not an object of numbers, names, booleans and lists of integers \
                 ({e})"
            ))
        })?;
        let metric: Option<String> = row.try_get("objective_metric")?;
        let direction: Option<Direction> = row.try_get("objective_direction")?;
        let epochs: Option<i64> = row.try_get("epochs")?;
        let classes: Option<i64> = row.try_get("classes")?;
        let epochs = epochs.ok_or_else(|| empty("epochs"))?;
        let count = |column: &str, n: i64| {
            u32::try_from(n).map_err(|_| damaged(format!("`{column}` is {n}, not a count")))
        };
        Ok(TrialSummary {
            params,
            goal: Goal {
                metric: metric.ok_or_else(|| empty("objective_metric"))?,
                direction: direction.ok_or_else(|| empty("objective_direction"))?,
            },
            epochs: count("epochs", epochs)?,
            classes: classes.map(|n| count("classes", n)).transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{new_trials, STALE};
    use crate::{claim_trial, record_sweep, trials, NewTrial, SweepId};
    use sqlx::sqlite::SqlitePool;

    #[sqlx::test]
    async fn a_trial_reads_back_the_summary_it_was_recorded_with(pool: SqlitePool) {
        let params: Params = [
            ("filters", Param::Ints(vec![8, 16])),
            ("lr", Param::Float(0.005)),
            ("neurons", Param::Int(64)),
            ("optimizer", Param::Text("sgd".into())),
        ]
        .map(|(k, v)| (k.to_string(), v))
        .into();
        let summary = TrialSummary {
            params,
            goal: Goal {
                metric: "val_loss".into(),
                direction: Direction::Minimise,
            },
            epochs: 12,
            classes: Some(100),
        };
        let trial = NewTrial {
            summary: summary.clone(),
            ..new_trials(1).remove(0)
        };
        let sweep = record_sweep(&pool, "s", "s.toml", "", &[trial])
            .await
            .unwrap();
        assert_eq!(trials(&pool, sweep).await.unwrap()[0].summary, summary);
        let stored: String = sqlx::query_scalar("SELECT params FROM trials")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(
            stored,
            r#"{"filters":[8,16],"lr":0.005,"neurons":64,"optimizer":"sgd"}"#
        );
        let claimed = claim_trial(&pool, sweep, "r", "cpu", STALE).await.unwrap();
        assert_eq!(claimed.unwrap().summary, summary);
    }

    #[sqlx::test]
    async fn a_damaged_trial_row_is_an_error_that_names_the_trial(pool: SqlitePool) {
        let sweep = record_sweep(&pool, "s", "s.toml", "", &new_trials(2))
            .await
            .unwrap();
        let damage = |sql: &'static str| {
            let pool = pool.clone();
            async move { sqlx::query(sql).execute(&pool).await.unwrap() }
        };
        let error = |sweep: SweepId| {
            let pool = pool.clone();
            async move { trials(&pool, sweep).await.unwrap_err().to_string() }
        };
        damage("UPDATE trials SET params = '{\"lr\":null}' WHERE number = 2").await;
        assert_eq!(
            error(sweep).await,
            "trial 2 (id 2) is damaged in the database: `params` is not an object of numbers, \
             names, booleans and lists of integers (data did not match any variant of \
             untagged enum Param at line 1 column 11)"
        );
        damage("UPDATE trials SET params = '{}', objective_metric = NULL WHERE number = 2").await;
        assert_eq!(
            error(sweep).await,
            "trial 2 (id 2) is damaged in the database: `objective_metric` is empty"
        );
        damage("UPDATE trials SET objective_metric = 'val_f1', epochs = -1").await;
        assert_eq!(
            error(sweep).await,
            "trial 1 (id 1) is damaged in the database: `epochs` is -1, not a count"
        );
        let claimed = claim_trial(&pool, sweep, "r", "cpu", STALE).await;
        assert!(
            matches!(claimed, Err(StoreError::DamagedTrial { id: 1, .. })),
            "{claimed:?}"
        );
    }

    #[test]
    fn params_keep_their_kind_through_json() {
        let text = r#"{"filters":[8,16],"hflip":true,"lr":0.01,"neurons":64,"optimizer":"adam","scale":64.0}"#;
        let params: Params = serde_json::from_str(text).unwrap();
        assert_eq!(params["neurons"], Param::Int(64), "an integer stays one");
        assert_eq!(params["scale"], Param::Float(64.0), "a number stays one");
        assert_eq!(params["lr"], Param::Float(0.01));
        assert_eq!(params["hflip"], Param::Bool(true));
        assert_eq!(params["optimizer"], Param::Text("adam".into()));
        assert_eq!(params["filters"], Param::Ints(vec![8, 16]));
        assert_eq!(serde_json::to_string(&params).unwrap(), text);
        let shown: Vec<String> = params.values().map(Param::to_string).collect();
        assert_eq!(shown, ["[8,16]", "true", "0.01", "64", "adam", "64.0"]);
        for x in [1e-5, 1e30, 0.1 + 0.2, -0.0] {
            let json = serde_json::Value::from(x).to_string();
            assert_eq!(Param::Float(x).to_string(), json, "as JSON writes it");
        }
    }

    #[test]
    fn a_direction_orders_best_first() {
        assert!(Direction::Maximise.better(0.9, 0.5));
        assert!(Direction::Minimise.better(0.5, 0.9));
        assert!(!Direction::Minimise.better(0.5, 0.5), "strictly");
        let mut values = [0.5, 0.9, 0.1];
        values.sort_by(|a, b| Direction::Minimise.best_first(*a, *b));
        assert_eq!(values, [0.1, 0.5, 0.9]);
    }
}
