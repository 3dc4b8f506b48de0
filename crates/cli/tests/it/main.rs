//! The end-to-end tests that need nothing but this machine, in one test binary (one link, and
//! Cargo builds the `sweep` they drive: `CARGO_BIN_EXE_sweep`). Each module is one command's
//! or one concern's tests; `common` holds what they share with the Slurm and page tests.

#[path = "../common/mod.rs"]
mod common;

mod checkpoints;
mod command;
mod engine;
mod errors;
mod hostile;
mod importance;
mod prune;
mod results;
mod run;
mod search;
