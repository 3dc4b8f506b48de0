//! `sweep-store`: the results database. SQLite through sqlx, in WAL mode, its schema created
//! by the embedded migrations in `migrations/`, and one small async function per operation.
//! SQL lives here and nowhere else.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::Row;

/// Why the database could not be opened, read or written.
///
/// No variant has a `source`: the error it holds is said in its own text, once (sqlx's own
/// errors repeat their source in their text).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {}", plainly(error))]
    Open { path: String, error: sqlx::Error },
    #[error("{path}: cannot update the schema: {error}")]
    Migrate {
        path: String,
        error: sqlx::migrate::MigrateError,
    },
    #[error("{0}")]
    Sql(sqlx::Error),
    #[error("a trial's stored JSON is invalid: {0}")]
    Json(serde_json::Error),
    #[error("{READ_ONLY_REFUSAL}")]
    ReadOnly,
    #[error("{path}-shm and {path}-wal belong to another database: a process (a `sweep run`?) still has open the database that was at {path} before a file was moved over it, and uses them; read with them, the new file would show that database's rows. It is read once that process ends")]
    ForeignWal { path: String },
    #[error("{path} is on a network filesystem ({filesystem}), where SQLite's locking and WAL do not work (sqlite.org/wal.html): put the database on this machine's local disk with --db (trial folders and the data cache may stay on the shared filesystem)")]
    NetworkFilesystem {
        path: String,
        filesystem: &'static str,
    },
}

pub type Result<T> = std::result::Result<T, StoreError>;

impl StoreError {
    /// Whether the user's input is at fault (the cli exits 2 for it, 1 for any other failure).
    /// A match with no catch-all: a new variant must be decided here.
    pub fn is_bad_input(&self) -> bool {
        match self {
            // A database on a network filesystem is the user's choice of --db.
            StoreError::NetworkFilesystem { .. } => true,
            StoreError::Open { .. }
            | StoreError::Migrate { .. }
            | StoreError::Sql(_)
            | StoreError::Json(_)
            | StoreError::ReadOnly
            | StoreError::ForeignWal { .. } => false,
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        StoreError::Sql(error)
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(error: serde_json::Error) -> Self {
        StoreError::Json(error)
    }
}

/// SQLite's own words for an error, without sqlx's "error returned from database: (code: N)".
fn plainly(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Database(e) => e.message().to_string(),
        sqlx::Error::Io(e) => e.to_string(),
        other => other.to_string(),
    }
}

/// A connection pool to the results database.
pub type Pool = SqlitePool;

/// Where a trial stands; stored as its lower-case name in `trials.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::Type, serde::Serialize)]
#[sqlx(type_name = "TEXT", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum TrialStatus {
    /// Waiting to be claimed (never run, put back for a retry, or promoted to its next rung).
    Pending,
    /// Claimed by a runner, which keeps its heartbeat fresh.
    Running,
    /// Reached its rung of a pruned sweep; its checkpoint waits for the rung's decision.
    Paused,
    /// All epochs ran; its results are final.
    Done,
    /// Stopped early by pruning, with the rung or epoch it reached (see `decisions`).
    Stopped,
    /// It failed and is out of retries; `sweep run --retry-failed` puts it back.
    Failed,
    /// Stopped on request (or its runner died); it resumes from its checkpoint.
    Interrupted,
}

impl TrialStatus {
    /// Every status, in the order a sweep's counts are listed.
    pub const ALL: [TrialStatus; 7] = [
        TrialStatus::Done,
        TrialStatus::Running,
        TrialStatus::Paused,
        TrialStatus::Pending,
        TrialStatus::Interrupted,
        TrialStatus::Stopped,
        TrialStatus::Failed,
    ];

    /// The name stored in the database and shown to users.
    pub fn name(self) -> &'static str {
        match self {
            TrialStatus::Pending => "pending",
            TrialStatus::Running => "running",
            TrialStatus::Paused => "paused",
            TrialStatus::Done => "done",
            TrialStatus::Stopped => "stopped",
            TrialStatus::Failed => "failed",
            TrialStatus::Interrupted => "interrupted",
        }
    }

    /// Whether the trial has ended for good (nothing left to run unless the user asks).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TrialStatus::Done | TrialStatus::Stopped | TrialStatus::Failed
        )
    }
}

impl std::fmt::Display for TrialStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

/// A sweep's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, sqlx::Type)]
#[sqlx(transparent)]
pub struct SweepId(pub i64);

/// A trial's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, sqlx::Type)]
#[sqlx(transparent)]
pub struct TrialId(pub i64);

/// The name of the network filesystem that holds `dir`, if it is one: SQLite's locking and
/// WAL's shared memory do not work across the machines of a network filesystem
/// (<https://sqlite.org/wal.html>), so the database must not live there.
pub fn network_filesystem(dir: &Path) -> Option<&'static str> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `path` is a NUL-terminated string and `stat` is a buffer of the size statfs
    // writes; it is read only when statfs says it wrote it.
    let stat = unsafe {
        if libc::statfs(path.as_ptr(), stat.as_mut_ptr()) != 0 {
            return None;
        }
        stat.assume_init()
    };
    filesystem_name(stat.f_type as i64)
}

/// The network filesystem with the magic number `f_type` (from statfs(2)), if it is one.
fn filesystem_name(f_type: i64) -> Option<&'static str> {
    Some(match f_type as u32 {
        0x6969 => "nfs",
        0x517b => "smb",
        0xff53_4d42 => "cifs",
        0xfe53_4d42 => "smb2",
        0x00c3_6400 => "ceph",
        0x0bd0_0bd0 => "lustre",
        0x4750_4653 => "gpfs",
        0x1983_0326 => "beegfs",
        0x0102_1997 => "9p",
        0x5346_414f => "afs",
        0x0000_6b69_u32 => "orangefs",
        _ => return None,
    })
}

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

/// Whether a process other than this one holds a POSIX lock on `len` bytes of `file` from
/// `start` (false when the file cannot be opened).
fn locked_by_another(file: &Path, start: i64, len: i64) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(f) = std::fs::File::open(file) else {
        return false;
    };
    // SAFETY: a zeroed flock is a valid value; F_GETLK only writes into it.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as _;
    lock.l_whence = libc::SEEK_SET as _;
    lock.l_start = start as _;
    lock.l_len = len as _;
    // SAFETY: `f` is an open descriptor and `lock` a flock it may fill in.
    let asked = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETLK, &mut lock) };
    asked == 0 && lock.l_type != libc::F_UNLCK as libc::c_short
}

/// Whether the `-shm` (and so the `-wal`) beside `path` is another database's: every open
/// WAL connection holds a read lock on the DMS byte of the `-shm` (byte 128, SQLite's unix
/// VFS) and on the SHARED bytes of its database file (from 0x40000002, 510 bytes). A `-shm`
/// in use by another process while nobody has `path` itself open is that of a database
/// that was at `path` before a file was moved over it, still open in that process. SQLite cannot tell (a WAL's frames are checked against the WAL's own header, not the
/// database file's: sqlite.org/walformat.html), and would read that database's pages.
/// Locks held by this process are not seen: its read-only connections take care of
/// themselves (the first on a new file starts the `-shm` over).
fn foreign_wal(path: &Path) -> bool {
    let shm = PathBuf::from(format!("{}-shm", path.display()));
    locked_by_another(&shm, 128, 1) && !locked_by_another(path, 0x4000_0002, 510)
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

/// A trial of a sweep as the sweep file expands it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTrial {
    /// The epoch a new trial trains to first (a pruned sweep's first rung); `None`: all.
    pub until_epoch: Option<i64>,
    pub grid_index: i64,
    /// JSON object of the grid point.
    pub params: String,
    /// JSON of the full resolved configuration.
    pub config: String,
    pub config_hash: String,
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
    let mut tx = pool.begin().await?;
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
        sqlx::query(
            "INSERT INTO trials (sweep_id, number, grid_index, params, config, config_hash,
                                 until_epoch)
             VALUES (?1, (SELECT coalesce(max(number), 0) + 1 FROM trials WHERE sweep_id = ?1),
                     ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (sweep_id, config_hash) DO UPDATE SET grid_index = excluded.grid_index",
        )
        .bind(id)
        .bind(trial.grid_index)
        .bind(&trial.params)
        .bind(&trial.config)
        .bind(&trial.config_hash)
        .bind(trial.until_epoch)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(SweepId(id))
}

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

/// A trial handed to one runner to execute.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ClaimedTrial {
    pub id: TrialId,
    /// The trial's number within its sweep (from 1), as users see it.
    pub number: i64,
    pub grid_index: i64,
    pub params: String,
    pub config: String,
    pub config_hash: String,
    /// Including this one.
    pub attempts: i64,
    /// Train to this epoch and pause (a pruned sweep's rung); `None`: to the end.
    pub until_epoch: Option<i64>,
}

/// Seconds since the Unix epoch, the clock of heartbeats.
fn now() -> f64 {
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
         RETURNING id, number, grid_index, params, config, config_hash, attempts, until_epoch",
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
    let mut tx = pool.begin().await?;
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
         RETURNING id, number, grid_index, params, config, config_hash, attempts, until_epoch,
                   device, slurm_job, coalesce(events_offset, 0) AS events_offset",
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

/// One epoch's metrics as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, sqlx::FromRow)]
pub struct EpochRow {
    pub epoch: i64,
    pub train_loss: f64,
    pub train_acc: f64,
    pub val_loss: f64,
    pub val_acc: f64,
    pub val_f1: f64,
    pub lr: f64,
    pub seconds: f64,
}

/// Records an epoch of a trial; recording the same epoch again (a resumed trial repeating
/// it) replaces it, so no epoch is ever stored twice.
pub async fn record_epoch(pool: &SqlitePool, trial: TrialId, row: &EpochRow) -> Result<()> {
    record_epochs(pool, trial, std::slice::from_ref(row)).await
}

/// Records several epochs of a trial in one transaction, each replacing what the database
/// had for that epoch.
pub async fn record_epochs(pool: &SqlitePool, trial: TrialId, rows: &[EpochRow]) -> Result<()> {
    let mut tx = pool.begin().await?;
    insert_epochs(&mut tx, trial, rows).await?;
    tx.commit().await?;
    Ok(())
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
    let mut tx = pool.begin().await?;
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

/// Inserts or replaces epochs of a trial within a transaction.
async fn insert_epochs(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    trial: TrialId,
    rows: &[EpochRow],
) -> Result<()> {
    for row in rows {
        sqlx::query(
            "INSERT OR REPLACE INTO epochs
             (trial_id, epoch, train_loss, train_acc, val_loss, val_acc, val_f1, lr, seconds)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .bind(trial.0)
        .bind(row.epoch)
        .bind(row.train_loss)
        .bind(row.train_acc)
        .bind(row.val_loss)
        .bind(row.val_acc)
        .bind(row.val_f1)
        .bind(row.lr)
        .bind(row.seconds)
        .execute(&mut **tx)
        .await?;
    }
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
        checkpoint: String,
        /// Row-major `classes × classes` counts of the best epoch.
        confusion: Vec<u64>,
        classes: usize,
    },
    /// It failed; `retry` puts it back in the queue.
    Failed { error: String, retry: bool },
    /// Stopped on request; it resumes from its checkpoint on the next run.
    Interrupted,
    /// Reached the epoch it was to train to (its rung); waits for the rung's decision.
    Paused,
    /// Stopped by a pruning decision (recorded with [`record_decision`]).
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
    let mut tx = pool.begin().await?;
    match ending {
        Ending::Done {
            best_epoch,
            objective,
            checkpoint,
            confusion,
            classes,
        } => {
            let updated = sqlx::query(
                "UPDATE trials SET status = 'done', runner = NULL, best_epoch = ?2, objective = ?3,
                 checkpoint = ?4, error = NULL,
                 finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
                 WHERE id = ?1 AND status = 'running'",
            )
            .bind(trial.0)
            .bind(best_epoch)
            .bind(objective)
            .bind(checkpoint)
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

/// The sweep named `name`, if the database has it.
pub async fn find_sweep(pool: &SqlitePool, name: &str) -> Result<Option<SweepId>> {
    let id: Option<i64> = sqlx::query_scalar("SELECT id FROM sweeps WHERE name = ?1")
        .bind(name)
        .fetch_optional(pool)
        .await?;
    Ok(id.map(SweepId))
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

/// A trial's stored state, for summaries and tests.
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct TrialRow {
    pub id: i64,
    /// The trial's number within its sweep (from 1): the one users see.
    pub number: i64,
    pub grid_index: i64,
    pub params: String,
    /// JSON of the full resolved configuration.
    pub config: String,
    pub config_hash: String,
    pub status: TrialStatus,
    /// The epoch it trains to this time (a pruned sweep's rung); `None`: to the end.
    pub until_epoch: Option<i64>,
    pub device: Option<String>,
    pub attempts: i64,
    pub error: Option<String>,
    pub best_epoch: Option<i64>,
    pub objective: Option<f64>,
    pub checkpoint: Option<String>,
    /// The Slurm job (`123_4`) of its current or last Slurm attempt.
    pub slurm_job: Option<String>,
    /// What happened to it that a user should know: how it last got past damaged
    /// checkpoints (resumed from an older one, or started again from epoch 1).
    pub note: Option<String>,
}

impl TrialRow {
    /// The first line of its error (empty without one): what a summary shows.
    pub fn error_line(&self) -> &str {
        self.error
            .as_deref()
            .and_then(|e| e.lines().next())
            .unwrap_or("")
    }

    /// Whether this trial's objective is minimised (`train.objective = "val_loss"` in its
    /// configuration) rather than maximised.
    pub fn minimises(&self) -> bool {
        serde_json::from_str::<serde_json::Value>(&self.config)
            .ok()
            .and_then(|c| c["train"]["objective"].as_str().map(|o| o == "val_loss"))
            .unwrap_or(false)
    }
}

/// Orders trials best first: finished trials by their objective (in its direction), then
/// the others in grid order. What `sweep best` and `predict` pick from: a finished trial.
pub fn rank_best_first(trials: &mut [TrialRow]) {
    rank_by_score(trials, |t| {
        (t.status == TrialStatus::Done)
            .then_some(t.objective)
            .flatten()
    });
}

/// Orders trials best first by `score` (in the objective's direction, ties in grid order),
/// then those without a finite score in grid order. `sweep show` and `ls` score a trial that
/// pruning paused or stopped by its best epoch so far, as the report page does.
pub fn rank_by_score(trials: &mut [TrialRow], score: impl Fn(&TrialRow) -> Option<f64>) {
    let minimise = trials.first().is_some_and(TrialRow::minimises);
    let scores: std::collections::HashMap<i64, f64> = trials
        .iter()
        .filter_map(|t| Some((t.id, score(t).filter(|v| v.is_finite())?)))
        .collect();
    trials.sort_by(|a, b| match (scores.get(&a.id), scores.get(&b.id)) {
        (Some(x), Some(y)) => {
            let order = if minimise {
                x.total_cmp(y)
            } else {
                y.total_cmp(x)
            };
            order.then(a.grid_index.cmp(&b.grid_index))
        }
        (x, y) => y
            .is_some()
            .cmp(&x.is_some())
            .then(a.grid_index.cmp(&b.grid_index)),
    });
}

/// The trials of a sweep in grid order.
pub async fn trials(pool: &SqlitePool, sweep: SweepId) -> Result<Vec<TrialRow>> {
    Ok(sqlx::query_as(
        "SELECT id, number, grid_index, params, config, config_hash, status, until_epoch, device,
                attempts, error, best_epoch, objective, checkpoint, slurm_job, note
         FROM trials WHERE sweep_id = ?1 ORDER BY grid_index",
    )
    .bind(sweep.0)
    .fetch_all(pool)
    .await?)
}

/// The epochs recorded for a trial, in order.
pub async fn epochs(pool: &SqlitePool, trial: TrialId) -> Result<Vec<EpochRow>> {
    Ok(sqlx::query_as(
        "SELECT epoch, train_loss, train_acc, val_loss, val_acc, val_f1, lr, seconds
         FROM epochs WHERE trial_id = ?1 ORDER BY epoch",
    )
    .bind(trial.0)
    .fetch_all(pool)
    .await?)
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
                e.lr, e.seconds
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
                e.val_acc, e.val_f1, e.lr, e.seconds
         FROM epochs e JOIN trials t ON t.id = e.trial_id
         WHERE t.sweep_id = ?1 AND e.rowid > ?2 ORDER BY e.rowid",
    )
    .bind(sweep.0)
    .bind(seq)
    .fetch_all(pool)
    .await?)
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
    let mut tx = pool.begin().await?;
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
/// [`Ending::Stopped`]).
pub async fn record_decision(pool: &SqlitePool, decision: &Decision) -> Result<()> {
    let mut tx = pool.begin().await?;
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

/// One value of a query's result.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// Why `sweep query` refused a statement.
pub const READ_ONLY_REFUSAL: &str = "the results database is opened read-only: statements that write (INSERT, UPDATE, DELETE, DROP, CREATE, ATTACH, …) are refused";

/// Runs a user's SQL on a read-only pool: the column names and the rows. Writing statements,
/// and ATTACH/DETACH (which would reach other files), are refused.
pub async fn query(pool: &SqlitePool, sql: &str) -> Result<(Vec<String>, Vec<Vec<Cell>>)> {
    use sqlx::{Column, TypeInfo, ValueRef};
    let words = sql
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_ascii_uppercase())
        .collect::<Vec<_>>();
    if words.iter().any(|w| w == "ATTACH" || w == "DETACH") {
        return Err(StoreError::ReadOnly);
    }
    let mut conn = pool.acquire().await?;
    sqlx::query("PRAGMA query_only = ON")
        .execute(&mut *conn)
        .await?;
    let rows = sqlx::query(sql).fetch_all(&mut *conn).await.map_err(|e| {
        let text = e.to_string();
        if text.contains("readonly") || text.contains("query_only") || text.contains("read-only") {
            StoreError::ReadOnly
        } else {
            StoreError::Sql(e)
        }
    })?;
    let columns = match rows.first() {
        Some(row) => row.columns().iter().map(|c| c.name().to_string()).collect(),
        // No row to read the names from: the prepared statement has them.
        None => {
            use sqlx::{Executor, Statement};
            let statement = (&mut *conn).prepare(sql).await?;
            statement
                .columns()
                .iter()
                .map(|c| c.name().to_string())
                .collect()
        }
    };
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut cells = Vec::with_capacity(row.len());
        for i in 0..row.len() {
            let raw = row.try_get_raw(i)?;
            let cell = if raw.is_null() {
                Cell::Null
            } else {
                match raw.type_info().name() {
                    "INTEGER" | "BOOLEAN" => Cell::Int(row.try_get(i)?),
                    "REAL" => Cell::Real(row.try_get(i)?),
                    "BLOB" => Cell::Blob(row.try_get(i)?),
                    _ => Cell::Text(row.try_get(i)?),
                }
            };
            cells.push(cell);
        }
        out.push(cells);
    }
    Ok((columns, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_trials(n: usize) -> Vec<NewTrial> {
        (0..n)
            .map(|i| NewTrial {
                grid_index: i as i64,
                params: format!("{{\"lr\":{i}}}"),
                config: "{}".into(),
                config_hash: format!("hash{i}"),
                until_epoch: None,
            })
            .collect()
    }

    const STALE: Duration = Duration::from_secs(60);

    fn epoch(n: i64, f1: f64) -> EpochRow {
        EpochRow {
            epoch: n,
            train_loss: 1.0,
            train_acc: 0.5,
            val_loss: 1.1,
            val_acc: 0.4,
            val_f1: f1,
            lr: 0.01,
            seconds: 2.0,
        }
    }

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
            .map(|e| (e.trial_id, e.row.epoch, e.row.val_f1))
            .collect();
        assert_eq!(got, [(ta[1].0, 1, 0.3), (ta[0].0, 1, 0.15)]);
        assert!(new[0].seq > last && new[1].seq > new[0].seq);
    }

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
             VALUES (7, 1, 1, 0, '{}', '{}', 'h', 'done', 2, 0.5)",
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
        sqlx::query("INSERT INTO epochs VALUES (7, 3, 0.4, 0.8, 0.7, 0.7, 0.6, 0.01, 1.0)")
            .execute(&pool)
            .await
            .unwrap();
        let orphan = sqlx::query("INSERT INTO epochs VALUES (99, 1, 1, 1, 1, 1, 1, 1, 1)")
            .execute(&pool)
            .await;
        assert!(orphan.is_err(), "epochs still refer to trials");
    }

    #[tokio::test]
    async fn a_read_of_a_database_from_an_older_sweep_brings_it_up_to_date_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true);
        let pool = SqlitePool::connect_with(options).await.unwrap();
        let mut before = sqlx::migrate!();
        let all = before.migrations.len();
        before.migrations = before.migrations[..all - 1].to_vec().into();
        before.run(&pool).await.unwrap();
        sqlx::query(
            "INSERT INTO sweeps (id, name, file_text, file_path) VALUES (1, 's', '', 's.toml')",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
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

    #[test]
    fn network_filesystems_are_named_and_local_ones_are_not() {
        assert_eq!(filesystem_name(0x6969), Some("nfs"));
        assert_eq!(filesystem_name(0xff53_4d42), Some("cifs"));
        assert_eq!(filesystem_name(0xef53), None, "ext4");
        assert_eq!(filesystem_name(0x0102_1994), None, "tmpfs");
        assert_eq!(network_filesystem(Path::new("/proc/self")), None);
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
            checkpoint: "best.safetensors".into(),
            confusion: vec![2, 0, 1, 3],
            classes: 2,
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

    #[tokio::test]
    async fn user_queries_read_but_never_write() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("sweep.db");
        let pool = open(&path).await.unwrap();
        record_sweep(&pool, "s", "s.toml", "", &new_trials(3))
            .await
            .unwrap();
        pool.close().await;
        let ro = open_read_only(&path).await.unwrap();
        let (columns, rows) = query(
            &ro,
            "SELECT grid_index, params, objective FROM trials ORDER BY grid_index",
        )
        .await
        .unwrap();
        assert_eq!(columns, ["grid_index", "params", "objective"]);
        assert_eq!(
            rows[2],
            [Cell::Int(2), Cell::Text("{\"lr\":2}".into()), Cell::Null]
        );
        for sql in [
            "DELETE FROM trials",
            "UPDATE trials SET status = 'done'",
            "DROP TABLE epochs",
            "INSERT INTO sweeps (name, file_text, file_path) VALUES ('x', '', '')",
            "ATTACH DATABASE 'other.db' AS other",
            "SELECT 1; DELETE FROM trials",
        ] {
            let err = query(&ro, sql).await.unwrap_err().to_string();
            assert!(err.contains("read-only"), "{sql}: {err}");
        }
        let (_, rows) = query(&ro, "SELECT count(*) FROM trials").await.unwrap();
        assert_eq!(rows, [[Cell::Int(3)]]);
        assert!(!tmp.path().join("other.db").exists());
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

    #[sqlx::test]
    async fn a_query_without_rows_still_names_its_columns(pool: SqlitePool) {
        record_sweep(&pool, "s", "s.toml", "", &new_trials(2))
            .await
            .unwrap();
        let (columns, rows) = query(&pool, "SELECT number, params AS p FROM trials WHERE 0")
            .await
            .unwrap();
        assert_eq!(columns, ["number", "p"]);
        assert!(rows.is_empty());
    }

    #[test]
    fn trials_rank_by_score_whatever_their_status() {
        let row = |id: i64, status: TrialStatus, objective: Option<f64>| TrialRow {
            id,
            number: id,
            grid_index: id - 1,
            params: "{}".into(),
            config: "{}".into(),
            config_hash: format!("h{id}"),
            status,
            until_epoch: None,
            device: None,
            attempts: 1,
            error: None,
            best_epoch: None,
            objective,
            checkpoint: None,
            slurm_job: None,
            note: None,
        };
        // Stopped and paused trials carry no objective of their own: the score is given.
        let so_far = [(1, 0.52), (2, 0.19), (4, 0.82), (5, 0.52)];
        let mut trials = vec![
            row(1, TrialStatus::Stopped, None),
            row(2, TrialStatus::Stopped, None),
            row(3, TrialStatus::Done, Some(0.70)),
            row(4, TrialStatus::Paused, None),
            row(5, TrialStatus::Stopped, None),
            row(6, TrialStatus::Failed, None),
        ];
        let score = |t: &TrialRow| {
            t.objective
                .or_else(|| so_far.iter().find(|(id, _)| *id == t.id).map(|s| s.1))
        };
        rank_by_score(&mut trials, score);
        let order: Vec<i64> = trials.iter().map(|t| t.number).collect();
        assert_eq!(
            order,
            [4, 3, 1, 5, 2, 6],
            "ties in grid order, unscored last"
        );
        rank_best_first(&mut trials);
        let order: Vec<i64> = trials.iter().map(|t| t.number).collect();
        assert_eq!(
            order,
            [3, 1, 2, 4, 5, 6],
            "a finished trial first, then grid order"
        );
    }
}
