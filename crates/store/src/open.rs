//! Opening and closing the database: read-write with its schema brought up to date by the
//! embedded migrations, or read-only.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{Sqlite, Transaction};

use crate::error::{Result, StoreError};
use crate::filesystem::{foreign_wal, network_filesystem};

/// Opens (creating it and its folder if needed) the database at `path` for reading and
/// writing, and brings its schema up to date. A database on a network filesystem is refused.
pub async fn open(path: &Path) -> Result<SqlitePool> {
    let name = path.display().to_string();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
            path: name.clone(),
            error: sqlx::Error::Io(e),
        })?;
    }
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => dir,
        None => Path::new("."),
    };
    if let Some(filesystem) = network_filesystem(dir) {
        return Err(StoreError::NetworkFilesystem {
            path: name,
            filesystem,
        });
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(30))
        .foreign_keys(true);
    // Two processes opening a new database at once race twice. Switching it to WAL takes a
    // lock that SQLite does not wait for (SQLITE_BUSY at once, whatever the busy timeout), and
    // both may see it unmigrated: the loser's migration fails and rolls back, and on retry it
    // finds the schema in place. On a loaded machine either can happen more than once, so
    // both are retried for as long as a busy database is waited for.
    let started = std::time::Instant::now();
    let patient = || started.elapsed() < Duration::from_secs(30);
    let mut attempt = 0u64;
    let mut pause = || {
        attempt += 1;
        tokio::time::sleep(Duration::from_millis(20 * attempt.min(10)))
    };
    let pool = loop {
        match SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await
        {
            Ok(pool) => break pool,
            Err(e) if is_busy(&e) && patient() => pause().await,
            Err(error) => {
                return Err(StoreError::Open {
                    path: name.clone(),
                    error,
                })
            }
        }
    };
    loop {
        match sqlx::migrate!().run(&pool).await {
            Ok(()) => return Ok(pool),
            Err(_) if patient() => pause().await,
            Err(error) => return Err(StoreError::Migrate { path: name, error }),
        }
    }
}

/// Whether SQLite refused because another connection holds a lock (SQLITE_BUSY, SQLITE_LOCKED).
fn is_busy(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(e) = error else {
        return false;
    };
    // Extended result codes keep the primary code in their low byte.
    let primary = e
        .code()
        .and_then(|c| c.parse::<i32>().ok())
        .map(|c| c & 0xff);
    matches!(primary, Some(5 | 6))
}

/// Opens an existing database read-only: nothing done through this pool can change it.
///
/// A file moved over the database (`mv new.db sweep.db`) is read as it is, beside the old
/// `-wal` and `-shm` if they are still there: SQLite starts an unused `-shm` over and finds
/// no frames in an empty `-wal` (as [`close`] and SQLite's own close leave it). While a
/// process still has the replaced database open and writes them, they are refused
/// ([`StoreError::ForeignWal`]) rather than read as this file's.
pub async fn open_read_only(path: &Path) -> Result<SqlitePool> {
    let name = path.display().to_string();
    if foreign_wal(path) {
        return Err(StoreError::ForeignWal { path: name });
    }
    let url = format!("sqlite://{}", path.display());
    let options = SqliteConnectOptions::from_str(&url)
        .map_err(|error| StoreError::Open {
            path: name.clone(),
            error,
        })?
        .read_only(true)
        .busy_timeout(Duration::from_secs(30));
    let opened = async {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        // SQLite reads a file's header only when a statement needs it: without this, a file
        // that is no database would answer `SELECT 1` and fail later without its name.
        sqlx::query("SELECT count(*) FROM sqlite_schema")
            .fetch_one(&pool)
            .await?;
        Ok(pool)
    };
    let pool = opened.await.map_err(|error| StoreError::Open {
        path: name.clone(),
        error,
    })?;
    if !lacks_migrations(&pool).await {
        return Ok(pool);
    }
    // Written by an older sweep: the read commands would miss its newer columns. Bring it up
    // to date as `sweep run` would (migrations only add), then read it as asked.
    pool.close().await;
    close(open(path).await?).await;
    Box::pin(open_read_only(path)).await
}

/// Whether the database lacks some of this build's migrations (a database with none at all
/// is no sweep database, and is left to the queries to say so).
async fn lacks_migrations(pool: &SqlitePool) -> bool {
    let latest = sqlx::migrate!()
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0);
    let applied: Option<i64> = sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations")
        .fetch_one(pool)
        .await
        .ok()
        .flatten();
    applied.is_some_and(|version| version < latest)
}

/// Begins a transaction that writes: `BEGIN IMMEDIATE`, which takes the database's write
/// lock at once (waiting for it as long as the busy timeout allows). A plain (deferred)
/// `BEGIN` takes it only at the first write, and in WAL mode a transaction that has read
/// cannot wait for it then: if another connection committed since the read (a second `sweep
/// run`, or a reader bringing an old database's schema up to date), SQLite refuses at once
/// with SQLITE_BUSY ("database is locked"), whatever the busy timeout. Every transaction of
/// this crate writes, so every one begins here.
pub(crate) async fn begin_write(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>> {
    Ok(pool.begin_with("BEGIN IMMEDIATE").await?)
}

/// Closes a pool opened by [`open`] with everything it wrote in the database file itself, so
/// that the file alone is the whole database: moved or copied without its `-wal`, it has
/// every row. SQLite moves the WAL into the file when the last connection closes, but only
/// if that connection is alone then: sqlx closes a pool's connections while others may still
/// be closing (on a current-thread runtime, often), and then none does it, leaving the rows
/// in a `-wal` that a plain `mv` leaves behind. A TRUNCATE checkpoint first does it while
/// the pool is still open (waiting, like any write, for readers to let it) and empties the
/// `-wal`. A database that a `sweep serve` or another run still reads is whole all the same.
pub async fn close(pool: SqlitePool) {
    // A checkpoint that cannot finish (another process keeps writing) is no error: that
    // process checkpoints when it closes.
    let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .fetch_all(&pool)
        .await;
    pool.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::new_trials;
    use crate::{
        claim_trial, confusion, epochs, record_sweep, trials, SweepId, TrialId, TrialStatus,
    };

    #[tokio::test]
    async fn a_writing_transaction_holds_the_write_lock_from_its_begin() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let pool = open(&path).await.unwrap();
        let impatient = SqliteConnectOptions::new()
            .filename(&path)
            .busy_timeout(Duration::ZERO);
        let other = SqlitePool::connect_with(impatient).await.unwrap();
        let insert = |name: &str| {
            format!("INSERT INTO sweeps (name, file_text, file_path) VALUES ('{name}', '', 'f')")
        };
        let mut tx = begin_write(&pool).await.unwrap();
        sqlx::query("SELECT count(*) FROM sweeps")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        // The transaction has only read, and already no other connection can commit: none
        // can commit between its read and its write, which SQLite would refuse without
        // waiting (a deferred BEGIN lets the other connection write here).
        let refused = sqlx::query(&insert("b")).execute(&other).await.unwrap_err();
        assert!(is_busy(&refused), "{refused}");
        sqlx::query(&insert("a")).execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
        sqlx::query(&insert("b")).execute(&other).await.unwrap();
        let names: Vec<String> = sqlx::query_scalar("SELECT name FROM sweeps ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(names, ["a", "b"]);
    }

    #[tokio::test]
    async fn the_pruning_migration_keeps_every_row_and_link() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .foreign_keys(true);
        let pool = SqlitePool::connect_with(options).await.unwrap();
        // The database as the two migrations before pruning left it.
        let mut before = sqlx::migrate!();
        before.migrations = before.migrations[..2].to_vec().into();
        before.run(&pool).await.unwrap();
        for sql in [
            "INSERT INTO sweeps (id, name, file_text, file_path) VALUES (1, 's', '', 's.toml')",
            "INSERT INTO trials (id, sweep_id, number, grid_index, params, config, config_hash,
                                 status, best_epoch, objective)
             VALUES (7, 1, 1, 0, '{}', '{\"train\":{\"objective\":\"val_f1\",\"epochs\":2}}', 'h',
                     'done', 2, 0.5)",
            "INSERT INTO epochs VALUES (7, 1, 1.0, 0.5, 1.0, 0.5, 0.4, 0.01, 1.0)",
            "INSERT INTO epochs VALUES (7, 2, 0.5, 0.7, 0.8, 0.6, 0.5, 0.01, 1.0)",
            "INSERT INTO confusion VALUES (7, 0, 0, 3)",
        ] {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        sqlx::migrate!().run(&pool).await.unwrap();
        let rows = trials(&pool, SweepId(1)).await.unwrap();
        assert_eq!(
            (rows[0].id, rows[0].status, rows[0].objective),
            (7, TrialStatus::Done, Some(0.5))
        );
        assert_eq!(epochs(&pool, TrialId(7)).await.unwrap().len(), 2);
        assert_eq!(confusion(&pool, TrialId(7)).await.unwrap(), [(0, 0, 3)]);
        let broken: Vec<(String, i64, String, i64)> = sqlx::query_as("PRAGMA foreign_key_check")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert!(broken.is_empty(), "{broken:?}");
        let refs: Vec<(String,)> = sqlx::query_as(
            "SELECT sql FROM sqlite_schema WHERE sql LIKE '%trials_old%' OR sql LIKE '%epochs_old%'",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert!(refs.is_empty(), "no table points at the old ones: {refs:?}");
        sqlx::query("INSERT INTO epochs VALUES (7, 3, 0.4, 0.8, 0.7, 0.7, 0.6, 0.01, 1.0, NULL)")
            .execute(&pool)
            .await
            .unwrap();
        let orphan = sqlx::query("INSERT INTO epochs VALUES (99, 1, 1, 1, 1, 1, 1, 1, 1, NULL)")
            .execute(&pool)
            .await;
        assert!(orphan.is_err(), "epochs still refer to trials");
    }

    /// The version of the migration that gave trials their summary columns.
    const SUMMARY_MIGRATION: i64 = 20261202180000;
    /// The version of the migration that let epochs hold any metric.
    const ANY_METRIC_MIGRATION: i64 = 20261203000000;

    /// A database at `path` as the migrations before `version` left it, with one sweep (id 1):
    /// one written by an older sweep.
    async fn before_migration(path: &Path, version: i64) -> SqlitePool {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true);
        let pool = SqlitePool::connect_with(options).await.unwrap();
        let mut before = sqlx::migrate!();
        let kept: Vec<_> = before
            .migrations
            .iter()
            .filter(|m| m.version < version)
            .cloned()
            .collect();
        assert!(
            kept.len() < before.migrations.len(),
            "{version} is a migration"
        );
        before.migrations = kept.into();
        before.run(&pool).await.unwrap();
        sqlx::query(
            "INSERT INTO sweeps (id, name, file_text, file_path) VALUES (1, 's', '', 's.toml')",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool
    }

    #[tokio::test]
    async fn the_summary_migration_reads_each_old_trials_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let pool = before_migration(&dir.path().join("old.db"), SUMMARY_MIGRATION).await;
        // Configurations as the built-in trainer wrote them, and one damaged.
        for (number, config) in [
            (
                1,
                r#"{"data":{"synthetic":{"classes":4,"size":8}},"classes":null,
                    "train":{"epochs":5,"objective":"val_loss"}}"#,
            ),
            (
                2,
                r#"{"data":{"dir":"d"},"classes":7,"train":{"epochs":20,"objective":"val_acc"}}"#,
            ),
            (
                3,
                r#"{"data":{"dir":"d"},"classes":null,"train":{"epochs":"#,
            ),
        ] {
            sqlx::query(
                "INSERT INTO trials (sweep_id, number, grid_index, params, config, config_hash)
                 VALUES (1, ?1, ?1, '{\"neurons\":64}', ?2, ?1)",
            )
            .bind(number)
            .bind(config)
            .execute(&pool)
            .await
            .unwrap();
        }
        sqlx::migrate!().run(&pool).await.unwrap();
        let error = trials(&pool, SweepId(1)).await.unwrap_err().to_string();
        assert_eq!(
            error,
            "trial 3 (id 3) is damaged in the database: `epochs` is empty"
        );
        sqlx::query("DELETE FROM trials WHERE number = 3")
            .execute(&pool)
            .await
            .unwrap();
        let rows = trials(&pool, SweepId(1)).await.unwrap();
        let read: Vec<_> = rows
            .iter()
            .map(|t| {
                let s = &t.summary;
                (
                    s.goal.metric.as_str(),
                    s.goal.direction,
                    s.epochs,
                    s.classes,
                )
            })
            .collect();
        use crate::Direction::{Maximise, Minimise};
        assert_eq!(
            read,
            [
                ("val_loss", Minimise, 5, Some(4)),
                ("val_acc", Maximise, 20, Some(7))
            ]
        );
        assert_eq!(rows[0].summary.params["neurons"], crate::Param::Int(64));
    }

    #[tokio::test]
    async fn a_read_of_a_database_from_an_older_sweep_brings_it_up_to_date_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        before_migration(&path, ANY_METRIC_MIGRATION)
            .await
            .close()
            .await;
        let pool = open_read_only(&path).await.unwrap();
        assert!(!lacks_migrations(&pool).await);
        assert_eq!(trials(&pool, SweepId(1)).await.unwrap().len(), 0);
        assert!(
            sqlx::query("INSERT INTO sweeps (name, file_text, file_path) VALUES ('t', '', '')")
                .execute(&pool)
                .await
                .is_err(),
            "still read-only"
        );
    }

    #[tokio::test]
    async fn the_any_metric_migration_keeps_every_epoch_and_its_place_in_the_write_order() {
        let dir = tempfile::tempdir().unwrap();
        let pool = before_migration(&dir.path().join("old.db"), ANY_METRIC_MIGRATION).await;
        sqlx::query(
            "INSERT INTO trials (id, sweep_id, number, grid_index, params, config, config_hash,
                                 objective_metric, objective_direction, epochs)
             VALUES (1, 1, 1, 0, '{}', '{}', 'h', 'val_f1', 'maximise', 2)",
        )
        .execute(&pool)
        .await
        .unwrap();
        // Written out of epoch order, as a rewound trial's are.
        for (epoch, f1) in [(2, 0.5), (1, 0.25)] {
            sqlx::query("INSERT INTO epochs VALUES (1, ?1, 1.5, 0.5, 1.25, 0.5, ?2, 0.01, 3.0)")
                .bind(epoch)
                .bind(f1)
                .execute(&pool)
                .await
                .unwrap();
        }
        sqlx::migrate!().run(&pool).await.unwrap();
        let written = crate::epochs_after(&pool, SweepId(1), 0).await.unwrap();
        let got: Vec<(i64, Option<f64>, usize)> = written
            .iter()
            .map(|w| (w.row.epoch, w.row.metric("val_f1"), w.row.metrics.len()))
            .collect();
        assert_eq!(got, [(2, Some(0.5), 6), (1, Some(0.25), 6)]);
        // A command trial's epoch: one built-in name, one of its own, the rest absent.
        let row = crate::EpochRow {
            epoch: 3,
            seconds: 0.5,
            metrics: [("val_acc".to_string(), 0.75), ("bleu".to_string(), 21.5)].into(),
        };
        crate::record_epoch(&pool, crate::TrialId(1), &row)
            .await
            .unwrap();
        let stored: (Option<f64>, Option<f64>, Option<String>) =
            sqlx::query_as("SELECT val_acc, val_f1, metrics FROM epochs WHERE epoch = 3")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(stored, (Some(0.75), None, Some(r#"{"bleu":21.5}"#.into())));
        assert_eq!(
            crate::epochs(&pool, crate::TrialId(1)).await.unwrap()[2],
            row
        );
        let by_name: Vec<(String, f64)> =
            sqlx::query_as("SELECT name, value FROM epoch_metrics WHERE epoch = 3 ORDER BY name")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert_eq!(by_name, [("bleu".into(), 21.5), ("val_acc".into(), 0.75)]);
    }

    #[tokio::test]
    async fn a_read_only_pool_cannot_write() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("db/sweep.db");
        let pool = open(&path).await.unwrap();
        record_sweep(&pool, "s", "s.toml", "", &new_trials(1))
            .await
            .unwrap();
        pool.close().await;
        let ro = open_read_only(&path).await.unwrap();
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM trials")
            .fetch_one(&ro)
            .await
            .unwrap();
        assert_eq!(count, 1);
        assert!(sqlx::query("DELETE FROM trials")
            .execute(&ro)
            .await
            .is_err());
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM trials")
            .fetch_one(&ro)
            .await
            .unwrap();
        assert_eq!(count, 1);
    }

    /// A database closed by its only process is whole without its -wal: moved away alone, to
    /// another name, it has every row (`sweep serve` reads it so after a plain `mv`).
    #[tokio::test]
    async fn a_closed_database_is_whole_without_its_wal() {
        let tmp = tempfile::tempdir().unwrap();
        for round in 0..40 {
            let path = tmp.path().join(format!("{round}.db"));
            let pool = open(&path).await.unwrap();
            let sweep = record_sweep(&pool, "s", "s.toml", "", &new_trials(8))
                .await
                .unwrap();
            // Several connections busy at once, as a run's are.
            let claim = || claim_trial(&pool, sweep, "r", "cpu", Duration::ZERO);
            let (a, b, c, d) = tokio::join!(claim(), claim(), claim(), claim());
            for claimed in [a, b, c, d] {
                claimed.unwrap();
            }
            close(pool).await;
            let moved = tmp.path().join(format!("{round}-moved.db"));
            std::fs::rename(&path, &moved).unwrap();
            let ro = open_read_only(&moved).await.unwrap();
            let count: i64 = sqlx::query_scalar("SELECT count(*) FROM trials")
                .fetch_one(&ro)
                .await
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
            assert_eq!(count, 8, "round {round}");
            ro.close().await;
        }
    }
}
