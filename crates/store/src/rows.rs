//! The database's identities and the rows more than one operation shares: the pool, the
//! sweep and trial ids, where a trial stands, an epoch's metrics and a trial's stored state.

use sqlx::sqlite::SqlitePool;

use crate::summary::{Goal, TrialSummary};

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

/// How a trial was chosen; stored as its lower-case name in `trials.origin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::Type, serde::Serialize)]
#[sqlx(type_name = "TEXT", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum TrialOrigin {
    /// A cell of the grid (the only trial of a file without one included).
    Grid,
    /// A `[random]` sample (in its grid cell, if any).
    Random,
    /// A `[search]` trial drawn at random before its model is used.
    Startup,
    /// A `[search]` trial its model suggested.
    Model,
}

impl TrialOrigin {
    /// The name stored in the database and shown to users.
    pub fn name(self) -> &'static str {
        match self {
            TrialOrigin::Grid => "grid",
            TrialOrigin::Random => "random",
            TrialOrigin::Startup => "startup",
            TrialOrigin::Model => "model",
        }
    }
}

impl std::fmt::Display for TrialOrigin {
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

/// The metrics that have a column of their own in `epochs`: the built-in trainer's. Any other
/// name goes in the `metrics` column's JSON object.
pub const METRIC_COLUMNS: [&str; 6] = [
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "val_f1",
    "lr",
];

/// One epoch's metrics as stored: every metric the epoch reported, by name (the built-in
/// trainer's six, or whatever a command trial's program named), and its wall time.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochRow {
    pub epoch: i64,
    pub seconds: f64,
    /// Flattened: an epoch reads as `{"epoch":3,"seconds":1.2,"val_loss":0.9,…}`.
    #[serde(flatten)]
    pub metrics: std::collections::BTreeMap<String, f64>,
}

impl EpochRow {
    /// The epoch's value of the metric `name`, if it reported one.
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.metrics.get(name).copied()
    }

    /// The epoch's value of the goal's metric (`None`: the epoch did not report it).
    pub fn objective(&self, goal: &Goal) -> Option<f64> {
        self.metric(&goal.metric)
    }
}

impl sqlx::FromRow<'_, sqlx::sqlite::SqliteRow> for EpochRow {
    /// Reads `epoch`, `seconds`, the metric columns and `metrics` of a row of `epochs`.
    fn from_row(row: &sqlx::sqlite::SqliteRow) -> sqlx::Result<Self> {
        use sqlx::Row;
        let mut metrics = std::collections::BTreeMap::new();
        for name in METRIC_COLUMNS {
            if let Some(value) = row.try_get::<Option<f64>, _>(name)? {
                metrics.insert(name.to_string(), value);
            }
        }
        if let Some(json) = row.try_get::<Option<String>, _>("metrics")? {
            let named: std::collections::BTreeMap<String, f64> = serde_json::from_str(&json)
                .map_err(|e| sqlx::Error::ColumnDecode {
                    index: "metrics".into(),
                    source: Box::new(e),
                })?;
            metrics.extend(named);
        }
        Ok(EpochRow {
            epoch: row.try_get("epoch")?,
            seconds: row.try_get("seconds")?,
            metrics,
        })
    }
}

/// A trial's stored state, for summaries and tests.
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct TrialRow {
    pub id: i64,
    /// The trial's number within its sweep (from 1): the one users see.
    pub number: i64,
    pub grid_index: i64,
    /// Its params, goal, epochs and classes, read from their columns.
    #[sqlx(flatten)]
    pub summary: TrialSummary,
    /// JSON of the full resolved configuration, as hashed (what the trial process reads).
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
    /// How it was chosen; `None` for a trial recorded before origins were.
    pub origin: Option<TrialOrigin>,
}

impl TrialRow {
    /// The first line of its error (empty without one): what a summary shows.
    pub fn error_line(&self) -> &str {
        self.error
            .as_deref()
            .and_then(|e| e.lines().next())
            .unwrap_or("")
    }
}
