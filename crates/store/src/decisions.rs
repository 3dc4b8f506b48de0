//! Pruning decisions: applying and recording what a rung decided about each trial, reading
//! the last decision back, and putting a sweep that prunes no more back to training.

use sqlx::sqlite::SqlitePool;

use crate::error::Result;
use crate::open::begin_write;
use crate::rows::{SweepId, TrialId};

/// For a sweep whose file prunes no more: its paused and stopped trials go back in the queue
/// to train to the end.
pub async fn unprune(pool: &SqlitePool, sweep: SweepId) -> Result<()> {
    sqlx::query(
        "UPDATE trials SET status = 'pending', until_epoch = NULL
         WHERE sweep_id = ?1 AND status IN ('paused', 'stopped')",
    )
    .bind(sweep)
    .execute(pool)
    .await?;
    Ok(())
}

/// What a pruning decision does to a trial.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Resume it from its checkpoint and train to `until_epoch` (`None`: to the end).
    Promote { until_epoch: Option<i64> },
    /// It ends here.
    Stop,
}

/// A pruning decision about one trial, after one of its epochs.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub trial: TrialId,
    pub epoch: i64,
    pub verdict: Verdict,
    /// The trial's objective that was judged, and the cutoff it was judged against.
    pub value: Option<f64>,
    pub cutoff: Option<f64>,
    /// In words, as `sweep show` prints it.
    pub reason: String,
}

/// Applies decisions about paused trials and records them, in one transaction: a promoted
/// trial goes back in the queue to train to its next rung, a stopped one ends. A decision
/// about a trial that is no longer paused (another runner decided first) changes nothing and
/// is not recorded. Returns how many trials were promoted and how many stopped.
pub async fn apply_decisions(pool: &SqlitePool, decisions: &[Decision]) -> Result<(usize, usize)> {
    let mut tx = begin_write(pool).await?;
    let (mut promoted, mut stopped) = (0, 0);
    for d in decisions {
        let changed = match &d.verdict {
            Verdict::Promote { until_epoch } => sqlx::query(
                "UPDATE trials SET status = 'pending', until_epoch = ?2
                 WHERE id = ?1 AND status = 'paused'",
            )
            .bind(d.trial)
            .bind(until_epoch),
            Verdict::Stop => sqlx::query(
                "UPDATE trials SET status = 'stopped',
                 finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
                 WHERE id = ?1 AND status = 'paused'",
            )
            .bind(d.trial),
        }
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 1 {
            match d.verdict {
                Verdict::Promote { .. } => promoted += 1,
                Verdict::Stop => stopped += 1,
            }
            insert_decision(&mut tx, d).await?;
        }
    }
    tx.commit().await?;
    Ok((promoted, stopped))
}

/// Records a decision about a running trial (the runner then stops it and ends it as
/// [`Ending::Stopped`](crate::Ending::Stopped)).
pub async fn record_decision(pool: &SqlitePool, decision: &Decision) -> Result<()> {
    let mut tx = begin_write(pool).await?;
    insert_decision(&mut tx, decision).await?;
    tx.commit().await?;
    Ok(())
}

async fn insert_decision(tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>, d: &Decision) -> Result<()> {
    let verdict = match d.verdict {
        Verdict::Promote { .. } => "promote",
        Verdict::Stop => "stop",
    };
    sqlx::query(
        "INSERT INTO decisions (trial_id, epoch, decision, value, cutoff, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .bind(d.trial)
    .bind(d.epoch)
    .bind(verdict)
    .bind(d.value)
    .bind(d.cutoff)
    .bind(&d.reason)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The reason of each trial's last decision, by trial id (for `sweep show` and the plots).
pub async fn last_decisions(
    pool: &SqlitePool,
    sweep: SweepId,
) -> Result<std::collections::HashMap<i64, String>> {
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT d.trial_id, d.reason FROM decisions d JOIN trials t ON t.id = d.trial_id
         WHERE t.sweep_id = ?1 ORDER BY d.id",
    )
    .bind(sweep)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{new_trials, STALE};
    use crate::{
        claim_trial, end_trial, record_sweep, trials, Ending, NewTrial, TrialRow, TrialStatus,
    };

    #[sqlx::test]
    async fn a_paused_trial_waits_until_a_decision_promotes_or_stops_it(pool: SqlitePool) {
        let trials: Vec<NewTrial> = new_trials(2)
            .into_iter()
            .map(|t| NewTrial {
                until_epoch: Some(2),
                ..t
            })
            .collect();
        let sweep = record_sweep(&pool, "s", "s.toml", "", &trials)
            .await
            .unwrap();
        for _ in 0..2 {
            let t = claim_trial(&pool, sweep, "r", "cpu", STALE)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(t.until_epoch, Some(2), "trains to the first rung");
            end_trial(&pool, t.id, &Ending::Paused).await.unwrap();
        }
        let rows = trials_of(&pool, sweep).await;
        let none = claim_trial(&pool, sweep, "r", "cpu", STALE).await.unwrap();
        assert_eq!(none, None, "a paused trial is not claimed");
        let decide = |row: &TrialRow, verdict| Decision {
            trial: TrialId(row.id),
            epoch: 2,
            verdict,
            value: Some(0.5),
            cutoff: Some(0.4),
            reason: "rung 1".into(),
        };
        let decisions = [
            decide(
                &rows[0],
                Verdict::Promote {
                    until_epoch: Some(6),
                },
            ),
            decide(&rows[1], Verdict::Stop),
        ];
        assert_eq!(apply_decisions(&pool, &decisions).await.unwrap(), (1, 1));
        assert_eq!(
            apply_decisions(&pool, &decisions).await.unwrap(),
            (0, 0),
            "a second runner deciding the same changes nothing"
        );
        let statuses: Vec<_> = trials_of(&pool, sweep)
            .await
            .iter()
            .map(|t| (t.status, t.until_epoch))
            .collect();
        assert_eq!(
            statuses,
            [
                (TrialStatus::Pending, Some(6)),
                (TrialStatus::Stopped, Some(2))
            ]
        );
        let recorded: i64 = sqlx::query_scalar("SELECT count(*) FROM decisions")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(recorded, 2, "each decision once");
        let promoted = claim_trial(&pool, sweep, "r", "cpu", STALE)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((promoted.id.0, promoted.until_epoch), (rows[0].id, Some(6)));
        assert_eq!(last_decisions(&pool, sweep).await.unwrap().len(), 2);

        // Without pruning in the file any more, paused and stopped trials train to the end.
        record_sweep(&pool, "s", "s.toml", "", &new_trials(2))
            .await
            .unwrap();
        let kept = trials_of(&pool, sweep).await;
        assert_eq!(
            kept[1].status,
            TrialStatus::Stopped,
            "recording changes no status"
        );
        unprune(&pool, sweep).await.unwrap();
        let after = trials_of(&pool, sweep).await;
        assert_eq!(
            (after[1].status, after[1].until_epoch),
            (TrialStatus::Pending, None)
        );
    }

    async fn trials_of(pool: &SqlitePool, sweep: SweepId) -> Vec<TrialRow> {
        trials(pool, sweep).await.unwrap()
    }
}
