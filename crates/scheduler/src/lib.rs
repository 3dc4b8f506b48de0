//! `sweep-scheduler`: sweep files ([`sweep_file`]: TOML into validated trials), device
//! [`slots`], the trial process ([`trial`]) and its [`events`], and the scheduler
//! ([`runner`]) that runs trials concurrently and records them in the store.

pub mod events;
pub mod predict;
pub mod runner;
pub mod slots;
pub mod sweep_file;
pub mod trial;

pub use events::TrialEvent;
pub use runner::{prepare_data, run_sweep, RunError, RunOptions, RunSummary, Update};
pub use sweep_file::{expand_grid, DataSource, Devices, SweepFile, SweepFileError, TrialSpec};
