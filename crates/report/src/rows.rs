//! What the report and the page read of a sweep, read once: `write_report` and
//! [`page::snapshot`](crate::page::snapshot) both start from [`load`].

use std::collections::HashMap;

use sweep_store::{Pool, SweepRow, TrialId, TrialRow, TrialStatus, WrittenEpoch};

use crate::importance::{Design, Observation, Outcome, Value};
use crate::ReportError;

/// A sweep's rows as the report and the page draw them.
pub(crate) struct SweepRows {
    pub sweep: SweepRow,
    /// In grid order.
    pub trials: Vec<TrialRow>,
    /// The reason of each trial's last pruning decision, by trial id.
    pub decisions: HashMap<i64, String>,
    /// The epochs written after `after`, in write order.
    pub epochs: Vec<WrittenEpoch>,
    /// The best finished trial, if any, with its confusion matrix.
    pub best: Option<Best>,
}

/// The best finished trial and the non-zero `(actual, predicted, count)` cells of its
/// confusion matrix: `None` when the caller already holds them (see [`load`]).
pub(crate) struct Best {
    pub trial: TrialRow,
    pub cells: Option<Vec<(i64, i64, i64)>>,
}

impl SweepRows {
    /// The epochs of each trial by trial id, in epoch order.
    pub fn epochs_by_trial(&self) -> HashMap<i64, Vec<sweep_store::EpochRow>> {
        let mut out: HashMap<i64, Vec<sweep_store::EpochRow>> = HashMap::new();
        for e in &self.epochs {
            out.entry(e.trial_id).or_default().push(e.row.clone());
        }
        // Write order is epoch order but for an epoch written again (a resumed trial
        // repeating it); a trial has each epoch once.
        for rows in out.values_mut() {
            rows.sort_by_key(|r| r.epoch);
        }
        out
    }
}

impl SweepRows {
    /// The metric trials are ranked by (`val_f1`, `val_acc` or `val_loss`), from the first
    /// trial's configuration.
    pub fn objective_name(&self) -> String {
        self.trials
            .first()
            .map_or_else(|| "val_f1".into(), |t| t.summary.goal.metric.clone())
    }

    /// The trials as the importance analysis reads them: every trial's params (the `seed`
    /// axis apart) and how it ended, its best objective if it finished. The one place
    /// importance reads params.
    pub fn design(&self) -> Design {
        let params: Vec<&sweep_store::Params> =
            self.trials.iter().map(|t| &t.summary.params).collect();
        let mut names: Vec<String> = params
            .iter()
            .flat_map(|p| p.keys().filter(|k| *k != "seed").cloned())
            .collect();
        names.sort();
        names.dedup();
        let value = |v: &sweep_store::Param| match v.as_f64() {
            Some(number) => Value::Number(number),
            None => Value::Label(v.to_string()),
        };
        let trials = self
            .trials
            .iter()
            .zip(&params)
            .map(|(t, p)| Observation {
                trial: t.number,
                values: names.iter().map(|n| p.get(n).map(value)).collect(),
                seed: p.get("seed").map(value),
                outcome: match t.status {
                    TrialStatus::Done => Outcome::Finished(t.objective.unwrap_or(f64::NAN)),
                    TrialStatus::Stopped | TrialStatus::Paused => Outcome::Pruned,
                    TrialStatus::Failed => Outcome::Failed,
                    TrialStatus::Pending | TrialStatus::Running | TrialStatus::Interrupted => {
                        Outcome::Unfinished
                    }
                },
            })
            .collect();
        Design { names, trials }
    }
}

/// Reads sweep `name`: its trials, their last decisions, the epochs written after `after`
/// (0: all), and the best trial's confusion matrix unless it is trial `have_confusion`.
pub(crate) async fn load(
    pool: &Pool,
    name: &str,
    after: i64,
    have_confusion: Option<i64>,
) -> Result<SweepRows, ReportError> {
    let sweep = sweep_store::sweep_named(pool, name)
        .await?
        .ok_or_else(|| ReportError::NoSweep(name.to_string()))?;
    let trials = sweep_store::trials(pool, sweep.id).await?;
    let decisions = sweep_store::last_decisions(pool, sweep.id).await?;
    let epochs = sweep_store::epochs_after(pool, sweep.id, after).await?;
    let mut ranked = trials.clone();
    sweep_store::rank_best_first(&mut ranked);
    let best = match ranked.into_iter().next() {
        Some(trial) if trial.status == TrialStatus::Done => {
            let cells = if have_confusion == Some(trial.id) {
                None
            } else {
                Some(sweep_store::confusion(pool, TrialId(trial.id)).await?)
            };
            Some(Best { trial, cells })
        }
        _ => None,
    };
    Ok(SweepRows {
        sweep,
        trials,
        decisions,
        epochs,
        best,
    })
}
