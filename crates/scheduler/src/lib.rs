//! `sweep-scheduler`: sweep files ([`sweep_file`]: TOML into validated trials), device
//! [`slots`], the trial process ([`trial`]), which reports the model's [`TrialEvent`]s, what a
//! trial runs ([`program`]: today the built-in trainer) and where ([`executor`]: local child
//! processes or Slurm jobs), and the scheduler: the pure [`dispatcher`] decides, the
//! [`runner`] performs its actions (database writes through the store, launches, stops),
//! and a `[search]` sweep's next trials come from the pure [`suggestions`].

pub mod command;
pub mod dispatcher;
pub mod error;
pub mod event_log;
pub mod executor;
pub mod liveness;
pub mod predict;
pub mod program;
pub mod prune;
pub mod runner;
pub mod slots;
pub mod suggestions;
pub mod sweep_file;
pub mod sweep_name;
pub mod trial;

pub use error::RunError;
pub use runner::{prepare_data, run_sweep, RunOptions, RunSummary, Update};
pub use sweep_file::{
    expand_grid, DataSource, Devices, Executor, SweepFile, SweepFileError, TrialSpec,
};
pub use sweep_model::TrialEvent;
