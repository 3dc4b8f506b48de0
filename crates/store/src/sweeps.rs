//! Sweeps: recording one with its trials, finding and listing them, and the one runner
//! attached to a Slurm sweep.

use std::time::Duration;

use sqlx::sqlite::SqlitePool;

use crate::error::Result;
use crate::open::begin_write;
use crate::rows::{SweepId, TrialOrigin};
use crate::summary::TrialSummary;
use crate::trials::now;

/// A trial of a sweep as the sweep file expands it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTrial {
    /// The epoch a new trial trains to first (a pruned sweep's first rung); `None`: all.
    pub until_epoch: Option<i64>,
    pub grid_index: i64,
    /// Its params, goal, epochs and classes, stored in their own columns.
    pub summary: TrialSummary,
    /// JSON of the full resolved configuration, as hashed.
    pub config: String,
    pub config_hash: String,
    /// How it was chosen.
    pub origin: TrialOrigin,
}

/// Records a sweep and its trials in one transaction: a new sweep, or an existing one (by
/// name) whose file text is updated and which gains the trials it does not have yet.
/// Trials already recorded (same configuration hash) keep their status and results.
pub async fn record_sweep(
    pool: &SqlitePool,
    name: &str,
    file_path: &str,
    file_text: &str,
    trials: &[NewTrial],
) -> Result<SweepId> {
    let mut tx = begin_write(pool).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO sweeps (name, file_text, file_path) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO UPDATE SET file_text = excluded.file_text, file_path = excluded.file_path
         RETURNING id",
    )
    .bind(name)
    .bind(file_text)
    .bind(file_path)
    .fetch_one(&mut *tx)
    .await?;
    for trial in trials {
        insert_trial(&mut tx, SweepId(id), trial, Existing::Reorder).await?;
    }
    tx.commit().await?;
    Ok(SweepId(id))
}

/// What inserting a trial whose configuration the sweep already has does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Existing {
    /// Moves it to the new trial's place in the grid (a grown grid reorders its cells).
    Reorder,
    /// Leaves it as it is.
    Keep,
}

/// Inserts `trial` into `sweep` with the next number; returns whether it is new.
async fn insert_trial(
    tx: &mut sqlx::SqliteConnection,
    sweep: SweepId,
    trial: &NewTrial,
    existing: Existing,
) -> Result<bool> {
    let on_conflict = match existing {
        Existing::Reorder => {
            "DO UPDATE SET grid_index = excluded.grid_index,
                           origin = coalesce(trials.origin, excluded.origin)"
        }
        Existing::Keep => "DO NOTHING",
    };
    let inserted = sqlx::query(&format!(
        "INSERT INTO trials (sweep_id, number, grid_index, params, config, config_hash,
                             until_epoch, objective_metric, objective_direction, epochs,
                             classes, origin)
         VALUES (?1, (SELECT coalesce(max(number), 0) + 1 FROM trials WHERE sweep_id = ?1),
                 ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (sweep_id, config_hash) {on_conflict}"
    ))
    .bind(sweep.0)
    .bind(trial.grid_index)
    .bind(trial.summary.params_json())
    .bind(&trial.config)
    .bind(&trial.config_hash)
    .bind(trial.until_epoch)
    .bind(&trial.summary.goal.metric)
    .bind(trial.summary.goal.direction)
    .bind(trial.summary.epochs)
    .bind(trial.summary.classes)
    .bind(trial.origin)
    .execute(&mut *tx)
    .await?;
    Ok(inserted.rows_affected() > 0)
}

/// Adds one trial that a search suggested to `sweep`, unless the sweep already has its
/// configuration (then nothing changes); returns whether it was added.
pub async fn record_trial(pool: &SqlitePool, sweep: SweepId, trial: &NewTrial) -> Result<bool> {
    let mut tx = begin_write(pool).await?;
    let added = insert_trial(&mut tx, sweep, trial, Existing::Keep).await?;
    tx.commit().await?;
    Ok(added)
}

/// Makes `runner` the one runner attached to a Slurm sweep, unless another holds it and is
/// alive: its heartbeat is younger than `stale_after` and `is_dead` does not say it died.
/// Returns the live holder that refuses it, if any.
pub async fn attach_sweep(
    pool: &SqlitePool,
    sweep: SweepId,
    runner: &str,
    stale_after: Duration,
    is_dead: impl Fn(&str) -> bool,
) -> Result<Option<String>> {
    let mut tx = begin_write(pool).await?;
    let (holder, at): (Option<String>, Option<f64>) =
        sqlx::query_as("SELECT attached_by, attached_at FROM sweeps WHERE id = ?1")
            .bind(sweep.0)
            .fetch_one(&mut *tx)
            .await?;
    let now = now();
    if let Some(holder) = holder.filter(|h| h != runner) {
        let fresh = at.is_some_and(|at| now - at < stale_after.as_secs_f64());
        if fresh && !is_dead(&holder) {
            return Ok(Some(holder));
        }
    }
    sqlx::query("UPDATE sweeps SET attached_by = ?2, attached_at = ?3 WHERE id = ?1")
        .bind(sweep.0)
        .bind(runner)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(None)
}

/// Lets go of a Slurm sweep that `runner` was attached to.
pub async fn detach_sweep(pool: &SqlitePool, sweep: SweepId, runner: &str) -> Result<()> {
    sqlx::query(
        "UPDATE sweeps SET attached_by = NULL, attached_at = NULL WHERE id = ?1 AND attached_by = ?2",
    )
    .bind(sweep.0)
    .bind(runner)
    .execute(pool)
    .await?;
    Ok(())
}

/// The sweep named `name`, if the database has it.
pub async fn find_sweep(pool: &SqlitePool, name: &str) -> Result<Option<SweepId>> {
    let id: Option<i64> = sqlx::query_scalar("SELECT id FROM sweeps WHERE name = ?1")
        .bind(name)
        .fetch_optional(pool)
        .await?;
    Ok(id.map(SweepId))
}

/// A sweep as listed by `sweep ls`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SweepRow {
    pub id: SweepId,
    pub name: String,
    pub file_path: String,
    pub created_at: String,
}

impl From<(i64, String, String, String)> for SweepRow {
    fn from((id, name, file_path, created_at): (i64, String, String, String)) -> Self {
        SweepRow {
            id: SweepId(id),
            name,
            file_path,
            created_at,
        }
    }
}

/// Every sweep, oldest first.
pub async fn sweeps(pool: &SqlitePool) -> Result<Vec<SweepRow>> {
    let rows: Vec<(i64, String, String, String)> =
        sqlx::query_as("SELECT id, name, file_path, created_at FROM sweeps ORDER BY id")
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().map(SweepRow::from).collect())
}

/// The sweep called `name`, if there is one.
pub async fn sweep_named(pool: &SqlitePool, name: &str) -> Result<Option<SweepRow>> {
    let row: Option<(i64, String, String, String)> =
        sqlx::query_as("SELECT id, name, file_path, created_at FROM sweeps WHERE name = ?1")
            .bind(name)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(SweepRow::from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{new_trials, STALE};
    use crate::{claim_trial, end_trial, trials, Ending, TrialRow, TrialStatus};

    #[sqlx::test]
    async fn a_grown_grid_adds_only_the_new_trials(pool: SqlitePool) {
        let sweep = record_sweep(&pool, "s", "s.toml", "a", &new_trials(2))
            .await
            .unwrap();
        let claimed = claim_trial(&pool, sweep, "r1", "cpu", STALE)
            .await
            .unwrap()
            .unwrap();
        end_trial(&pool, claimed.id, &Ending::Interrupted)
            .await
            .unwrap();
        let again = record_sweep(&pool, "s", "s.toml", "b", &new_trials(3))
            .await
            .unwrap();
        assert_eq!(again, sweep);
        let rows = trials(&pool, sweep).await.unwrap();
        let statuses: Vec<TrialStatus> = rows.iter().map(|t| t.status).collect();
        use TrialStatus::{Interrupted, Pending};
        assert_eq!(statuses, [Interrupted, Pending, Pending]);
        let text: String = sqlx::query_scalar("SELECT file_text FROM sweeps")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(text, "b");
    }

    #[sqlx::test]
    async fn trial_numbers_count_from_one_per_sweep_and_survive_a_grown_grid(pool: SqlitePool) {
        let a = record_sweep(&pool, "a", "a.toml", "", &new_trials(2))
            .await
            .unwrap();
        let b = record_sweep(&pool, "b", "b.toml", "", &new_trials(2))
            .await
            .unwrap();
        // The grown grid puts a new cell first: grid indices move, numbers do not.
        let mut grown = new_trials(3);
        grown.rotate_right(1);
        for (i, t) in grown.iter_mut().enumerate() {
            t.grid_index = i as i64;
        }
        record_sweep(&pool, "a", "a.toml", "", &grown)
            .await
            .unwrap();
        let numbers = |rows: Vec<TrialRow>| {
            rows.into_iter()
                .map(|t| (t.config_hash, t.number))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            numbers(trials(&pool, a).await.unwrap()),
            [
                ("hash2".into(), 3),
                ("hash0".into(), 1),
                ("hash1".into(), 2)
            ]
        );
        assert_eq!(
            numbers(trials(&pool, b).await.unwrap()),
            [("hash0".into(), 1), ("hash1".into(), 2)]
        );
    }

    #[sqlx::test]
    async fn a_searchs_trials_are_added_one_by_one_with_their_origin(pool: SqlitePool) {
        let sweep = record_sweep(&pool, "s", "s.toml", "", &[]).await.unwrap();
        let mut made = new_trials(2);
        made[1].origin = TrialOrigin::Model;
        for trial in &made {
            assert!(record_trial(&pool, sweep, trial).await.unwrap());
        }
        let again = NewTrial {
            grid_index: 5,
            ..made[0].clone()
        };
        assert!(
            !record_trial(&pool, sweep, &again).await.unwrap(),
            "a configuration the sweep has is not added, nor moved"
        );
        let rows = trials(&pool, sweep).await.unwrap();
        let seen: Vec<(i64, i64, Option<TrialOrigin>)> = rows
            .iter()
            .map(|t| (t.number, t.grid_index, t.origin))
            .collect();
        assert_eq!(
            seen,
            [
                (1, 0, Some(TrialOrigin::Grid)),
                (2, 1, Some(TrialOrigin::Model))
            ]
        );
        // A row recorded before origins existed gets one when its sweep is recorded again.
        sqlx::query("UPDATE trials SET origin = NULL WHERE number = 1")
            .execute(&pool)
            .await
            .unwrap();
        record_sweep(&pool, "s", "s.toml", "", &made[..1])
            .await
            .unwrap();
        let rows = trials(&pool, sweep).await.unwrap();
        assert_eq!(rows[0].origin, Some(TrialOrigin::Grid));
    }

    #[sqlx::test]
    async fn one_runner_at_a_time_is_attached_to_a_slurm_sweep(pool: SqlitePool) {
        let sweep = record_sweep(&pool, "s", "s.toml", "", &new_trials(1))
            .await
            .unwrap();
        let alive = |_: &str| false;
        assert_eq!(
            attach_sweep(&pool, sweep, "a", STALE, alive).await.unwrap(),
            None
        );
        assert_eq!(
            attach_sweep(&pool, sweep, "b", STALE, alive).await.unwrap(),
            Some("a".to_string()),
            "refused while a is alive"
        );
        assert_eq!(
            attach_sweep(&pool, sweep, "b", STALE, |r| r == "a")
                .await
                .unwrap(),
            None,
            "taken over once a is dead"
        );
        detach_sweep(&pool, sweep, "b").await.unwrap();
        assert_eq!(
            attach_sweep(&pool, sweep, "c", STALE, alive).await.unwrap(),
            None
        );
    }
}
