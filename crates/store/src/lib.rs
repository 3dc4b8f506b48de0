//! `sweep-store`: the results database. SQLite through sqlx, in WAL mode, its schema created
//! by the embedded migrations in `migrations/`, and one small async function per operation.
//! SQL lives here and nowhere else.
//!
//! One module per job: `open` and `filesystem` open the database, `sweeps`,
//! `trials` (the trial state machine), `epochs` and `decisions` (pruning) record and read a
//! sweep, `ranking` orders its trials, `query` runs a user's SQL read-only; `rows` holds the
//! ids and rows they share, `summary` the typed view of a trial that every crate reads
//! ([`TrialSummary`]: params, goal, epochs, classes), and `error` why any of it failed.

mod decisions;
mod epochs;
mod error;
mod filesystem;
#[cfg(test)]
mod fixtures;
mod open;
mod query;
mod ranking;
mod rows;
mod summary;
mod sweeps;
mod trials;

pub use decisions::{apply_decisions, last_decisions, record_decision, unprune, Decision, Verdict};
pub use epochs::{epochs, epochs_after, record_epoch, record_epochs, sweep_epochs, WrittenEpoch};
pub use error::{Result, StoreError, READ_ONLY_REFUSAL};
pub use filesystem::network_filesystem;
pub use open::{close, open, open_read_only};
pub use query::{query, Cell};
pub use ranking::{rank_best_first, rank_by_score};
pub use rows::{
    EpochRow, Pool, SweepId, TrialId, TrialOrigin, TrialRow, TrialStatus, METRIC_COLUMNS,
};
pub use summary::{Direction, Goal, Param, Params, TrialSummary};
pub use sweeps::{
    attach_sweep, detach_sweep, find_sweep, record_sweep, record_trial, sweep_named, sweeps,
    NewTrial, SweepRow,
};
pub use trials::{
    claim_trial, confusion, end_trial, heartbeat, interrupt_submitted, record_slurm_job,
    release_trial, retry_failed, rewind_trial, running_jobs, running_trials, take_over_submitted,
    trials, unclaim_trial, ClaimedTrial, Ending, SubmittedTrial,
};
