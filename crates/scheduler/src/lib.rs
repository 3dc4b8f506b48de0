//! `sweep-scheduler`: the sweep file ([`sweep_file`]: TOML into validated trials). Device
//! slots and the scheduler that runs trials as child processes arrive with `sweep run`.

pub mod sweep_file;

pub use sweep_file::{expand_grid, DataSource, SweepFile, SweepFileError, TrialSpec};
