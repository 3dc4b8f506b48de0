//! The trial state machine: a runner claims a trial, keeps its heartbeat, hands it to a
//! Slurm job or back, rewinds it to its checkpoint and ends it; failed trials are retried
//! and those of a dead runner released. Also a sweep's trials and a trial's confusion matrix
//! as stored.

use std::time::Duration;

use sqlx::sqlite::SqlitePool;

use crate::epochs::insert_epochs;
use crate::error::Result;
use crate::open::begin_write;
use crate::rows::{EpochRow, SweepId, TrialId, TrialRow, TrialStatus};
use crate::summary::TrialSummary;

/// A trial handed to one runner to execute.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ClaimedTrial {
    pub id: TrialId,
    /// The trial's number within its sweep (from 1), as users see it.
    pub number: i64,
    pub grid_index: i64,
    /// Its params, goal, epochs and classes, read from their columns.
    #[sqlx(flatten)]
    pub summary: TrialSummary,
    /// JSON of its configuration, as hashed: what its process reads from its folder.
    pub config: String,
    pub config_hash: String,
    /// Including this one.
    pub attempts: i64,
    /// Train to this epoch and pause (a pruned sweep's rung); `None`: to the end.
    pub until_epoch: Option<i64>,
}

/// Seconds since the Unix epoch, the clock of heartbeats.
pub(crate) fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Atomically hands the next runnable trial of a sweep to `runner` on `device`: a pending
/// or interrupted one, or a running one whose runner has not sent a heartbeat for
/// `stale_after` (it died: killed, crashed, power lost). `None` when nothing is left to run.
pub async fn claim_trial(
    pool: &SqlitePool,
    sweep: SweepId,
    runner: &str,
    device: &str,
    stale_after: Duration,
) -> Result<Option<ClaimedTrial>> {
    let now = now();
    Ok(sqlx::query_as(
        "UPDATE trials
         SET status = 'running', runner = ?2, device = ?3, heartbeat_at = ?4,
             attempts = attempts + 1, error = NULL, slurm_job = NULL, events_offset = NULL,
             started_at = coalesce(started_at, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
         WHERE id = (
             SELECT id FROM trials
             WHERE sweep_id = ?1
               AND (status IN ('pending', 'interrupted')
                    OR (status = 'running' AND slurm_job IS NULL
                        AND (heartbeat_at IS NULL OR heartbeat_at < ?5)))
             ORDER BY grid_index LIMIT 1)
         RETURNING id, number, grid_index, params, objective_metric, objective_direction, epochs,
                   classes, config, config_hash, attempts, until_epoch",
    )
    .bind(sweep.0)
    .bind(runner)
    .bind(device)
    .bind(now)
    .bind(now - stale_after.as_secs_f64())
    .fetch_optional(pool)
    .await?)
}

/// Tells the database that `runner` is alive and still running its trials (and still
/// attached to its Slurm sweep).
pub async fn heartbeat(pool: &SqlitePool, runner: &str) -> Result<()> {
    let now = now();
    sqlx::query("UPDATE trials SET heartbeat_at = ?2 WHERE runner = ?1 AND status = 'running'")
        .bind(runner)
        .bind(now)
        .execute(pool)
        .await?;
    sqlx::query("UPDATE sweeps SET attached_at = ?2 WHERE attached_by = ?1")
        .bind(runner)
        .bind(now)
        .execute(pool)
        .await?;
    Ok(())
}

/// Records the Slurm job (`123_4`) that runs a claimed trial, and where its attempt's events
/// begin in its events file.
pub async fn record_slurm_job(
    pool: &SqlitePool,
    trial: TrialId,
    job: &str,
    events_offset: u64,
) -> Result<()> {
    sqlx::query("UPDATE trials SET slurm_job = ?2, events_offset = ?3 WHERE id = ?1")
        .bind(trial.0)
        .bind(job)
        .bind(events_offset as i64)
        .execute(pool)
        .await?;
    Ok(())
}

/// Hands a claimed trial back unrun (its job could not be submitted): pending again, the
/// attempt not counted.
pub async fn unclaim_trial(pool: &SqlitePool, trial: TrialId) -> Result<()> {
    sqlx::query(
        "UPDATE trials SET status = 'pending', runner = NULL, attempts = max(attempts - 1, 0),
         slurm_job = NULL, events_offset = NULL
         WHERE id = ?1 AND status = 'running'",
    )
    .bind(trial.0)
    .execute(pool)
    .await?;
    Ok(())
}

/// A running trial of a sweep that a Slurm job runs.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SubmittedTrial {
    #[sqlx(flatten)]
    pub trial: ClaimedTrial,
    pub device: Option<String>,
    pub slurm_job: String,
    pub events_offset: i64,
}

/// The sweep's running trials that Slurm jobs run, handed over to `runner` (which re-attaches
/// to their jobs instead of submitting them again).
pub async fn take_over_submitted(
    pool: &SqlitePool,
    sweep: SweepId,
    runner: &str,
) -> Result<Vec<SubmittedTrial>> {
    Ok(sqlx::query_as(
        "UPDATE trials SET runner = ?2, heartbeat_at = ?3
         WHERE sweep_id = ?1 AND status = 'running' AND slurm_job IS NOT NULL
         RETURNING id, number, grid_index, params, objective_metric, objective_direction, epochs,
                   classes, config, config_hash, attempts, until_epoch, device, slurm_job,
                   coalesce(events_offset, 0) AS events_offset",
    )
    .bind(sweep.0)
    .bind(runner)
    .bind(now())
    .fetch_all(pool)
    .await?)
}

/// The Slurm jobs (`123_4`) of a sweep's running trials, with the trials' numbers.
pub async fn running_jobs(pool: &SqlitePool, sweep: SweepId) -> Result<Vec<(i64, String)>> {
    Ok(sqlx::query_as(
        "SELECT number, slurm_job FROM trials
         WHERE sweep_id = ?1 AND status = 'running' AND slurm_job IS NOT NULL ORDER BY number",
    )
    .bind(sweep.0)
    .fetch_all(pool)
    .await?)
}

/// Marks the running trials of a sweep that Slurm jobs run as interrupted (`sweep cancel`,
/// before it cancels the jobs); returns their jobs.
pub async fn interrupt_submitted(pool: &SqlitePool, sweep: SweepId) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "UPDATE trials SET status = 'interrupted', runner = NULL
         WHERE sweep_id = ?1 AND status = 'running' AND slurm_job IS NOT NULL
         RETURNING slurm_job",
    )
    .bind(sweep.0)
    .fetch_all(pool)
    .await?)
}

/// Records that a trial started from a checkpoint holding the epochs `rows` (none: from
/// scratch), in one transaction: they replace what the database had for them, every later
/// epoch is deleted (the run trains it again, perhaps to other values), a best epoch among
/// those is forgotten with its confusion matrix, and `note` (how the trial got past damaged
/// checkpoints), when given, is kept on the trial.
pub async fn rewind_trial(
    pool: &SqlitePool,
    trial: TrialId,
    rows: &[EpochRow],
    note: Option<&str>,
) -> Result<()> {
    let kept = rows.iter().map(|r| r.epoch).max().unwrap_or(0);
    let mut tx = begin_write(pool).await?;
    sqlx::query("DELETE FROM epochs WHERE trial_id = ?1 AND epoch > ?2")
        .bind(trial.0)
        .bind(kept)
        .execute(&mut *tx)
        .await?;
    insert_epochs(&mut tx, trial, rows).await?;
    let forgotten = sqlx::query(
        "UPDATE trials SET best_epoch = NULL, objective = NULL, checkpoint = NULL
         WHERE id = ?1 AND best_epoch > ?2",
    )
    .bind(trial.0)
    .bind(kept)
    .execute(&mut *tx)
    .await?;
    if forgotten.rows_affected() > 0 {
        sqlx::query("DELETE FROM confusion WHERE trial_id = ?1")
            .bind(trial.0)
            .execute(&mut *tx)
            .await?;
    }
    if let Some(note) = note {
        sqlx::query("UPDATE trials SET note = ?2 WHERE id = ?1")
            .bind(trial.0)
            .bind(note)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Puts a sweep's failed trials back in the queue (`sweep run --retry-failed`): they resume
/// from their last checkpoint when claimed, and their attempts keep counting. Returns how
/// many were failed.
pub async fn retry_failed(pool: &SqlitePool, sweep: SweepId) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE trials SET status = 'pending', error = NULL, finished_at = NULL
         WHERE sweep_id = ?1 AND status = 'failed'",
    )
    .bind(sweep.0)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// How a trial that stopped running ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// All epochs ran.
    Done {
        best_epoch: i64,
        objective: f64,
        /// The best epoch's checkpoint (`None`: a command trial's program keeps its own).
        checkpoint: Option<String>,
        /// Row-major `classes × classes` counts of the best epoch.
        confusion: Vec<u64>,
        classes: usize,
        /// Why it ended before its epochs (patience ran out); kept in `note`.
        note: Option<String>,
    },
    /// It failed; `retry` puts it back in the queue.
    Failed { error: String, retry: bool },
    /// Stopped on request; it resumes from its checkpoint on the next run.
    Interrupted,
    /// Reached the epoch it was to train to (its rung); waits for the rung's decision.
    Paused,
    /// Stopped by a pruning decision (recorded with [`record_decision`](crate::record_decision)).
    Stopped,
}

impl Ending {
    /// The trial's status once the ending is recorded.
    pub fn status(&self) -> TrialStatus {
        match self {
            Ending::Done { .. } => TrialStatus::Done,
            Ending::Failed { retry: true, .. } => TrialStatus::Pending,
            Ending::Failed { .. } => TrialStatus::Failed,
            Ending::Interrupted => TrialStatus::Interrupted,
            Ending::Paused => TrialStatus::Paused,
            Ending::Stopped => TrialStatus::Stopped,
        }
    }
}

/// Records how a running trial ended, in one transaction (a trial that is no longer running,
/// because `sweep cancel` marked it interrupted, is left as it is).
pub async fn end_trial(pool: &SqlitePool, trial: TrialId, ending: &Ending) -> Result<()> {
    let mut tx = begin_write(pool).await?;
    match ending {
        Ending::Done {
            best_epoch,
            objective,
            checkpoint,
            confusion,
            classes,
            note,
        } => {
            let updated = sqlx::query(
                "UPDATE trials SET status = 'done', runner = NULL, best_epoch = ?2, objective = ?3,
                 checkpoint = ?4, error = NULL, note = COALESCE(?5, note),
                 finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
                 WHERE id = ?1 AND status = 'running'",
            )
            .bind(trial.0)
            .bind(best_epoch)
            .bind(objective)
            .bind(checkpoint)
            .bind(note)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() == 0 {
                // No longer running (`sweep cancel` interrupted it meanwhile): left as it is.
                return Ok(());
            }
            sqlx::query("DELETE FROM confusion WHERE trial_id = ?1")
                .bind(trial.0)
                .execute(&mut *tx)
                .await?;
            for (cell, &count) in confusion.iter().enumerate().filter(|(_, &c)| c > 0) {
                sqlx::query(
                    "INSERT INTO confusion (trial_id, actual, predicted, count) VALUES (?1, ?2, ?3, ?4)",
                )
                .bind(trial.0)
                .bind((cell / classes) as i64)
                .bind((cell % classes) as i64)
                .bind(count as i64)
                .execute(&mut *tx)
                .await?;
            }
        }
        Ending::Failed { error, .. } => {
            sqlx::query(
                "UPDATE trials SET status = ?2, runner = NULL, error = ?3,
                 finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
                 WHERE id = ?1 AND status = 'running'",
            )
            .bind(trial.0)
            .bind(ending.status())
            .bind(error)
            .execute(&mut *tx)
            .await?;
        }
        Ending::Interrupted | Ending::Paused | Ending::Stopped => {
            sqlx::query(
                "UPDATE trials SET status = ?2, runner = NULL WHERE id = ?1 AND status = 'running'",
            )
            .bind(trial.0)
            .bind(ending.status())
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// The running trials of a sweep and the runner that holds each.
pub async fn running_trials(pool: &SqlitePool, sweep: SweepId) -> Result<Vec<(TrialId, String)>> {
    let rows: Vec<(i64, Option<String>)> =
        sqlx::query_as("SELECT id, runner FROM trials WHERE sweep_id = ?1 AND status = 'running'")
            .bind(sweep.0)
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(id, runner)| (TrialId(id), runner.unwrap_or_default()))
        .collect())
}

/// Marks a trial whose runner is known to be dead as interrupted, if `runner` still holds
/// it: it resumes from its last checkpoint when next claimed. A trial that a Slurm job runs
/// outlives its runner, and is left for the next one to re-attach to.
pub async fn release_trial(pool: &SqlitePool, trial: TrialId, runner: &str) -> Result<()> {
    sqlx::query(
        "UPDATE trials SET status = 'interrupted', runner = NULL
         WHERE id = ?1 AND runner = ?2 AND status = 'running' AND slurm_job IS NULL",
    )
    .bind(trial.0)
    .bind(runner)
    .execute(pool)
    .await?;
    Ok(())
}

/// The trials of a sweep in grid order.
pub async fn trials(pool: &SqlitePool, sweep: SweepId) -> Result<Vec<TrialRow>> {
    Ok(sqlx::query_as(
        "SELECT id, number, grid_index, params, objective_metric, objective_direction, epochs,
                classes, config, config_hash, status, until_epoch, device, attempts, error,
                best_epoch, objective, checkpoint, slurm_job, note, origin
         FROM trials WHERE sweep_id = ?1 ORDER BY grid_index",
    )
    .bind(sweep.0)
    .fetch_all(pool)
    .await?)
}

/// The non-zero cells `(actual, predicted, count)` of a trial's best confusion matrix.
pub async fn confusion(pool: &SqlitePool, trial: TrialId) -> Result<Vec<(i64, i64, i64)>> {
    Ok(sqlx::query_as(
        "SELECT actual, predicted, count FROM confusion WHERE trial_id = ?1
         ORDER BY actual, predicted",
    )
    .bind(trial.0)
    .fetch_all(pool)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{epoch, new_trials, STALE};
    use crate::{epochs, record_epochs, record_sweep};

    #[sqlx::test]
    async fn retrying_failed_trials_queues_them_with_their_attempts(pool: SqlitePool) {
        let sweep = record_sweep(&pool, "s", "s.toml", "", &new_trials(2))
            .await
            .unwrap();
        let failed = claim_trial(&pool, sweep, "r1", "cpu", STALE)
            .await
            .unwrap()
            .unwrap();
        let error = "disk full".to_string();
        end_trial(
            &pool,
            failed.id,
            &Ending::Failed {
                error,
                retry: false,
            },
        )
        .await
        .unwrap();
        assert_eq!(retry_failed(&pool, sweep).await.unwrap(), 1);
        let again = claim_trial(&pool, sweep, "r2", "cpu", STALE)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((again.id, again.attempts), (failed.id, 2));
        assert_eq!(retry_failed(&pool, sweep).await.unwrap(), 0);
    }

    #[sqlx::test]
    async fn claims_hand_out_each_trial_once_and_reclaim_stale_ones(pool: SqlitePool) {
        let sweep = record_sweep(&pool, "s", "s.toml", "", &new_trials(2))
            .await
            .unwrap();
        let a = claim_trial(&pool, sweep, "r1", "cpu", STALE)
            .await
            .unwrap()
            .unwrap();
        let b = claim_trial(&pool, sweep, "r2", "cpu", STALE)
            .await
            .unwrap()
            .unwrap();
        assert_ne!(a.id, b.id);
        assert_eq!((a.grid_index, b.grid_index), (0, 1));
        assert!(claim_trial(&pool, sweep, "r3", "cpu", STALE)
            .await
            .unwrap()
            .is_none());
        // r1 stops sending heartbeats: after `stale_after`, its trial is handed out again.
        let reclaimed = claim_trial(&pool, sweep, "r3", "cpu", Duration::ZERO)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(reclaimed.attempts, 2);
    }

    #[sqlx::test]
    async fn concurrent_claims_never_share_a_trial(pool: SqlitePool) {
        let sweep = record_sweep(&pool, "s", "s.toml", "", &new_trials(20))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for r in 0..4 {
            let pool = pool.clone();
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                while let Some(t) = claim_trial(&pool, sweep, &format!("r{r}"), "cpu", STALE)
                    .await
                    .unwrap()
                {
                    mine.push(t.id.0);
                }
                mine
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        all.sort();
        assert_eq!(all.len(), 20);
        all.dedup();
        assert_eq!(all.len(), 20);
    }

    #[sqlx::test]
    async fn submitted_trials_are_re_attached_never_claimed_again(pool: SqlitePool) {
        let sweep = record_sweep(&pool, "s", "s.toml", "", &new_trials(2))
            .await
            .unwrap();
        let a = claim_trial(&pool, sweep, "r1", "cpu", STALE)
            .await
            .unwrap()
            .unwrap();
        record_slurm_job(&pool, a.id, "12_0", 345).await.unwrap();
        let b = claim_trial(&pool, sweep, "r1", "cpu", STALE)
            .await
            .unwrap()
            .unwrap();
        unclaim_trial(&pool, b.id).await.unwrap();
        // r1 dies: a stale claim takes the unsubmitted trial, never the submitted one.
        let again = claim_trial(&pool, sweep, "r2", "cpu", Duration::ZERO)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (again.id, again.attempts),
            (b.id, 1),
            "unclaimed, not counted"
        );
        let failed = Ending::Failed {
            error: "x".into(),
            retry: false,
        };
        end_trial(&pool, again.id, &failed).await.unwrap();
        assert_eq!(
            claim_trial(&pool, sweep, "r2", "cpu", Duration::ZERO)
                .await
                .unwrap(),
            None
        );
        let taken = take_over_submitted(&pool, sweep, "r2").await.unwrap();
        assert_eq!(taken.len(), 1);
        assert_eq!(
            (
                taken[0].trial.id,
                &taken[0].slurm_job[..],
                taken[0].events_offset
            ),
            (a.id, "12_0", 345)
        );
        assert_eq!(interrupt_submitted(&pool, sweep).await.unwrap(), ["12_0"]);
        end_trial(
            &pool,
            a.id,
            &Ending::Failed {
                error: "CANCELLED".into(),
                retry: false,
            },
        )
        .await
        .unwrap();
        let rows = trials(&pool, sweep).await.unwrap();
        assert_eq!(
            rows[0].status,
            TrialStatus::Interrupted,
            "cancelled, not failed"
        );
        assert_eq!(rows[0].slurm_job.as_deref(), Some("12_0"));
    }

    #[sqlx::test]
    async fn endings_set_status_results_and_confusion(pool: SqlitePool) {
        let sweep = record_sweep(&pool, "s", "s.toml", "", &new_trials(2))
            .await
            .unwrap();
        let a = claim_trial(&pool, sweep, "r", "cpu", STALE)
            .await
            .unwrap()
            .unwrap();
        let b = claim_trial(&pool, sweep, "r", "cpu", STALE)
            .await
            .unwrap()
            .unwrap();
        let done = Ending::Done {
            best_epoch: 3,
            objective: 0.75,
            checkpoint: Some("best.safetensors".into()),
            confusion: vec![2, 0, 1, 3],
            classes: 2,
            note: Some("stopped early after epoch 5".into()),
        };
        end_trial(&pool, a.id, &done).await.unwrap();
        let failed = Ending::Failed {
            error: "diverged at epoch 1, batch 2".into(),
            retry: true,
        };
        end_trial(&pool, b.id, &failed).await.unwrap();
        let rows = trials(&pool, sweep).await.unwrap();
        assert_eq!(
            (rows[0].status, rows[0].best_epoch, rows[0].objective),
            (TrialStatus::Done, Some(3), Some(0.75))
        );
        assert_eq!(
            rows[0].note.as_deref(),
            Some("stopped early after epoch 5"),
            "an early stop is done, with its reason"
        );
        assert_eq!(
            rows[1].status,
            TrialStatus::Pending,
            "a retried failure goes back in the queue"
        );
        assert_eq!(
            rows[1].error.as_deref(),
            Some("diverged at epoch 1, batch 2")
        );
        let cells: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT actual, predicted, count FROM confusion ORDER BY actual, predicted",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(cells, [(0, 0, 2), (1, 0, 1), (1, 1, 3)]);
    }

    #[sqlx::test]
    async fn a_rewound_trial_keeps_only_its_checkpoints_epochs_and_forgets_a_lost_best(
        pool: SqlitePool,
    ) {
        let sweep = record_sweep(&pool, "s", "s.toml", "", &new_trials(2))
            .await
            .unwrap();
        let a = claim_trial(&pool, sweep, "r", "cpu", STALE)
            .await
            .unwrap()
            .unwrap();
        let b = claim_trial(&pool, sweep, "r", "cpu", STALE)
            .await
            .unwrap()
            .unwrap();
        let four: Vec<EpochRow> = (1..=4).map(|n| epoch(n, 0.1 * n as f64)).collect();
        record_epochs(&pool, a.id, &four).await.unwrap();
        record_epochs(&pool, b.id, &four).await.unwrap();
        // A best epoch 4 and its confusion matrix, as a finished trial has them.
        sqlx::query(
            "UPDATE trials SET best_epoch = 4, objective = 0.4, checkpoint = 'b' WHERE id = ?1",
        )
        .bind(a.id)
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query("INSERT INTO confusion VALUES (?1, 0, 0, 5)")
            .bind(a.id)
            .execute(&pool)
            .await
            .unwrap();
        // Its checkpoint holds epochs 1 and 2, the second with other values than stored.
        let resumed = [epoch(1, 0.1), epoch(2, 0.9)];
        let note = "last.safetensors did not load (the checksum does not match); resumed from previous.safetensors after epoch 2";
        rewind_trial(&pool, a.id, &resumed, Some(note))
            .await
            .unwrap();
        assert_eq!(epochs(&pool, a.id).await.unwrap(), resumed);
        assert_eq!(
            epochs(&pool, b.id).await.unwrap(),
            four,
            "other trials are untouched"
        );
        let rows = trials(&pool, sweep).await.unwrap();
        assert_eq!(
            (
                rows[0].best_epoch,
                rows[0].objective,
                rows[0].checkpoint.as_deref()
            ),
            (None, None, None),
            "the best epoch is gone"
        );
        assert_eq!(rows[0].note.as_deref(), Some(note));
        assert_eq!(rows[1].note, None);
        assert!(confusion(&pool, a.id).await.unwrap().is_empty());

        // A best epoch the checkpoint holds stays; a rewind without a note keeps the last.
        sqlx::query("UPDATE trials SET best_epoch = 1, objective = 0.1 WHERE id = ?1")
            .bind(b.id)
            .execute(&pool)
            .await
            .unwrap();
        rewind_trial(&pool, b.id, &four[..2], None).await.unwrap();
        rewind_trial(&pool, a.id, &[], None).await.unwrap();
        let rows = trials(&pool, sweep).await.unwrap();
        assert_eq!(rows[1].best_epoch, Some(1));
        assert_eq!(epochs(&pool, b.id).await.unwrap(), four[..2]);
        assert!(
            epochs(&pool, a.id).await.unwrap().is_empty(),
            "a start from scratch"
        );
        assert_eq!(rows[0].note.as_deref(), Some(note));
    }
}
