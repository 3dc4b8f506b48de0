//! Epochs: recording a trial's metrics epoch by epoch, and reading them back by trial, by
//! sweep, or as written since a poller last looked.

use sqlx::sqlite::SqlitePool;

use crate::error::Result;
use crate::open::begin_write;
use std::collections::BTreeMap;

use crate::rows::{EpochRow, SweepId, TrialId, METRIC_COLUMNS};

/// Records an epoch of a trial; recording the same epoch again (a resumed trial repeating
/// it) replaces it, so no epoch is ever stored twice.
pub async fn record_epoch(pool: &SqlitePool, trial: TrialId, row: &EpochRow) -> Result<()> {
    record_epochs(pool, trial, std::slice::from_ref(row)).await
}

/// Records several epochs of a trial in one transaction, each replacing what the database
/// had for that epoch.
pub async fn record_epochs(pool: &SqlitePool, trial: TrialId, rows: &[EpochRow]) -> Result<()> {
    let mut tx = begin_write(pool).await?;
    insert_epochs(&mut tx, trial, rows).await?;
    tx.commit().await?;
    Ok(())
}

/// Inserts or replaces epochs of a trial within a transaction.
pub(crate) async fn insert_epochs(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    trial: TrialId,
    rows: &[EpochRow],
) -> Result<()> {
    for row in rows {
        let others: BTreeMap<&str, f64> = row
            .metrics
            .iter()
            .filter(|(name, _)| !METRIC_COLUMNS.contains(&name.as_str()))
            .map(|(name, &value)| (name.as_str(), value))
            .collect();
        let others = (!others.is_empty())
            .then(|| serde_json::to_string(&others).expect("a map of numbers serialises"));
        let mut query = sqlx::query(
            "INSERT OR REPLACE INTO epochs
             (trial_id, epoch, seconds, metrics, train_loss, train_acc, val_loss, val_acc, val_f1, lr)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .bind(trial.0)
        .bind(row.epoch)
        .bind(row.seconds)
        .bind(others);
        for name in METRIC_COLUMNS {
            query = query.bind(row.metric(name));
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// The epochs recorded for a trial, in order.
pub async fn epochs(pool: &SqlitePool, trial: TrialId) -> Result<Vec<EpochRow>> {
    Ok(sqlx::query_as(
        "SELECT epoch, train_loss, train_acc, val_loss, val_acc, val_f1, lr, seconds, metrics
         FROM epochs WHERE trial_id = ?1 ORDER BY epoch",
    )
    .bind(trial.0)
    .fetch_all(pool)
    .await?)
}

/// The epochs of every trial of a sweep, by trial id, in epoch order.
pub async fn sweep_epochs(
    pool: &SqlitePool,
    sweep: SweepId,
) -> Result<std::collections::HashMap<i64, Vec<EpochRow>>> {
    /// An epoch row with the trial it belongs to.
    #[derive(sqlx::FromRow)]
    struct TrialEpoch {
        trial_id: i64,
        #[sqlx(flatten)]
        epoch: EpochRow,
    }
    let rows: Vec<TrialEpoch> = sqlx::query_as(
        "SELECT e.trial_id, e.epoch, e.train_loss, e.train_acc, e.val_loss, e.val_acc, e.val_f1,
                e.lr, e.seconds, e.metrics
         FROM epochs e JOIN trials t ON t.id = e.trial_id
         WHERE t.sweep_id = ?1 ORDER BY e.trial_id, e.epoch",
    )
    .bind(sweep.0)
    .fetch_all(pool)
    .await?;
    let mut out: std::collections::HashMap<i64, Vec<EpochRow>> = Default::default();
    for row in rows {
        out.entry(row.trial_id).or_default().push(row.epoch);
    }
    Ok(out)
}

/// An epoch row with its trial and its place in the table's write order (its `rowid`: a
/// row written again gets a new one), for a reader that polls for what is new.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct WrittenEpoch {
    pub seq: i64,
    pub trial_id: i64,
    #[sqlx(flatten)]
    pub row: EpochRow,
}

/// The epochs of a sweep's trials written after `seq` (0: all), in write order: what
/// `sweep serve`'s page has not seen yet.
pub async fn epochs_after(
    pool: &SqlitePool,
    sweep: SweepId,
    seq: i64,
) -> Result<Vec<WrittenEpoch>> {
    Ok(sqlx::query_as(
        "SELECT e.rowid AS seq, e.trial_id, e.epoch, e.train_loss, e.train_acc, e.val_loss,
                e.val_acc, e.val_f1, e.lr, e.seconds, e.metrics
         FROM epochs e JOIN trials t ON t.id = e.trial_id
         WHERE t.sweep_id = ?1 AND e.rowid > ?2 ORDER BY e.rowid",
    )
    .bind(sweep.0)
    .bind(seq)
    .fetch_all(pool)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{epoch, new_trials, STALE};
    use crate::{claim_trial, record_sweep, trials, TrialRow};

    #[sqlx::test]
    async fn epochs_after_gives_only_what_was_written_since(pool: SqlitePool) {
        let a = record_sweep(&pool, "a", "a.toml", "", &new_trials(2))
            .await
            .unwrap();
        let b = record_sweep(&pool, "b", "b.toml", "", &new_trials(1))
            .await
            .unwrap();
        let ids = |rows: Vec<TrialRow>| rows.iter().map(|t| TrialId(t.id)).collect::<Vec<_>>();
        let ta = ids(trials(&pool, a).await.unwrap());
        let tb = ids(trials(&pool, b).await.unwrap());
        record_epochs(&pool, ta[0], &[epoch(1, 0.1), epoch(2, 0.2)])
            .await
            .unwrap();
        record_epoch(&pool, tb[0], &epoch(1, 0.9)).await.unwrap();
        let all = epochs_after(&pool, a, 0).await.unwrap();
        assert_eq!(all.len(), 2, "only sweep a's epochs");
        let last = all[1].seq;
        assert!(epochs_after(&pool, a, last).await.unwrap().is_empty());
        record_epoch(&pool, ta[1], &epoch(1, 0.3)).await.unwrap();
        // Written again (a resumed trial repeating its history): it is new again.
        record_epoch(&pool, ta[0], &epoch(1, 0.15)).await.unwrap();
        let new = epochs_after(&pool, a, last).await.unwrap();
        let got: Vec<(i64, i64, f64)> = new
            .iter()
            .map(|e| (e.trial_id, e.row.epoch, e.row.metric("val_f1").unwrap()))
            .collect();
        assert_eq!(got, [(ta[1].0, 1, 0.3), (ta[0].0, 1, 0.15)]);
        assert!(new[0].seq > last && new[1].seq > new[0].seq);
    }

    #[sqlx::test]
    async fn an_epoch_recorded_twice_is_stored_once(pool: SqlitePool) {
        let sweep = record_sweep(&pool, "s", "s.toml", "", &new_trials(1))
            .await
            .unwrap();
        let t = claim_trial(&pool, sweep, "r", "cpu", STALE)
            .await
            .unwrap()
            .unwrap();
        record_epoch(&pool, t.id, &epoch(1, 0.2)).await.unwrap();
        record_epoch(&pool, t.id, &epoch(2, 0.3)).await.unwrap();
        record_epoch(&pool, t.id, &epoch(2, 0.35)).await.unwrap();
        let rows = epochs(&pool, t.id).await.unwrap();
        assert_eq!(rows, [epoch(1, 0.2), epoch(2, 0.35)]);
    }
}
