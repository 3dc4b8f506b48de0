//! `sweep-scheduler`: sweep files ([`sweep_file`]: TOML into validated trials), device
//! [`slots`], the trial process ([`trial`]), which reports the model's [`TrialEvent`]s, how a trial is started
//! ([`launch`]: a [`launch::Launcher`], today local child processes), and the scheduler: the
//! pure [`dispatcher`] decides, the [`runner`] performs its actions (database writes through
//! the store, launches, stops).

pub mod dispatcher;
pub mod event_log;
pub mod launch;
pub mod predict;
pub mod prune;
pub mod runner;
pub mod slots;
pub mod slurm;
pub mod sweep_file;
pub mod sweep_name;
pub mod trial;

pub use runner::{prepare_data, run_sweep, RunError, RunOptions, RunSummary, Update};
pub use sweep_file::{
    expand_grid, DataSource, Devices, Executor, SweepFile, SweepFileError, TrialSpec,
};
pub use sweep_model::TrialEvent;
