//! Where trials run: an [`Executor`] runs trials as this machine's child processes
//! ([`local::LocalProcesses`]) or as Slurm jobs ([`slurm::Slurm`]), and owns everything that
//! differs between the two:
//! - the slots: how many trials run at once, and on which device;
//! - starting a trial: at once, or queued and submitted in batches (job arrays);
//! - following a trial's events and learning how it ended;
//! - whether the trials outlive the run. Child processes die with their runner, so several
//!   local runs on one database share a sweep's work. Jobs go on without it, so a sweep is
//!   followed by one runner at a time, the next re-attaches to the jobs of the last
//!   ([`Executor::take_up`]), Ctrl-C detaches instead of stopping ([`OnCtrlC`]), and
//!   `--detach` returns once the jobs are submitted.
//!
//! Why the executor owns these: they are one choice, where a trial runs, and each follows from
//! it. Kept together in the executor's type, the runner ([`crate::runner`]) and the pure
//! [`crate::dispatcher`] see only slots, launches, reports and ends, and read the same for
//! every executor. A third executor (another batch system, a remote machine) is one new file
//! here, plus its arm where the runner turns the sweep file's `run.executor` into an executor
//! (`runner::executor`).
//!
//! What a trial runs is not an executor's business: it gets a [`TrialCommand`] from
//! [`crate::program`] (today the built-in trainer, `sweep trial DIR`) and starts it as given,
//! adding only where it runs (the GPU it sees, its threads). Command trials, a user's program,
//! plug in there, and run as local processes or Slurm jobs unchanged. Whichever executor and
//! program, a trial reports through its folder's events file ([`crate::event_log`]).

pub mod local;
pub mod slurm;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use sweep_store::{ClaimedTrial, Pool, SweepId, TrialId};
use tokio::sync::mpsc;

use crate::error::RunError;
pub use crate::error::SubmitError;
use crate::program::TrialCommand;
use crate::slots::Slot;
use sweep_model::TrialEvent;

/// What a launched trial sends back, tagged with its id: events in the order it reported
/// them, then its end, once.
#[derive(Debug, Clone, PartialEq)]
pub enum FromTrial {
    Event(TrialEvent),
    Ended(Exit),
}

/// The channel on which launched trials report.
pub type Reports = mpsc::UnboundedSender<(TrialId, FromTrial)>;

/// How a trial process ended.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exit {
    /// Its exit status, if it exited.
    pub code: Option<i32>,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
    /// The last lines it wrote that were not events.
    pub output_tail: Vec<String>,
    /// Why it could not be started at all.
    pub not_started: Option<String>,
    /// How its executor saw it end when nothing else tells (a Slurm job's state and reason).
    pub lost: Option<String>,
}

impl Exit {
    /// A trial that never ran, and why.
    pub fn not_started(reason: String) -> Self {
        Exit {
            not_started: Some(reason),
            ..Exit::default()
        }
    }
}

/// How to stop a running trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Ask it to stop after its current batch, keeping its checkpoint.
    Ask,
    /// End it now.
    Kill,
}

/// A started trial, as its executor lets the runner reach it.
pub trait Running: Send {
    /// Stops the trial; its end is still reported.
    fn stop(&self, how: Stop);
}

/// A trial submitted to a batch system: its job, and where its events begin in its file.
#[derive(Debug, Clone, PartialEq)]
pub struct Submitted {
    pub trial: TrialId,
    pub job: String,
    pub events_offset: u64,
}

/// The sweep a run works on, as its executor sees it.
#[derive(Debug)]
pub struct SweepRun<'a> {
    pub pool: &'a Pool,
    pub id: SweepId,
    /// The sweep's name, as its file gives it.
    pub name: &'a str,
    /// This runner's name in the database ([`crate::liveness::runner_name`]).
    pub runner: &'a str,
    /// Where trial folders go: `<results>/<sweep>/trials/`.
    pub trials_dir: PathBuf,
}

impl SweepRun<'_> {
    /// The folder of the trial whose configuration hash is `config_hash`.
    pub fn trial_dir(&self, config_hash: &str) -> PathBuf {
        self.trials_dir.join(&config_hash[..16])
    }
}

/// A trial that an earlier run left running, and that this run now follows.
pub struct Attached {
    pub trial: ClaimedTrial,
    pub running: Box<dyn Running>,
}

/// What a Ctrl-C does to a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnCtrlC {
    /// The trials die with the run: the first Ctrl-C asks them to stop, the second kills them.
    StopTrials,
    /// The trials outlive the run: it stops following them and returns; a later run
    /// re-attaches to them.
    Detach,
}

/// A step of an executor that waits on the database.
pub type Step<'a, T> = Pin<Box<dyn Future<Output = Result<T, RunError>> + 'a>>;

/// Runs trials somewhere, and reports what they do on the [`Reports`] channel it was made
/// with.
pub trait Executor {
    /// Takes `sweep` up for this run, before anything is claimed: returns the trials that
    /// earlier runs left running, which this run now follows, or why it may not run the
    /// sweep.
    fn take_up<'a>(&'a self, sweep: &'a SweepRun<'a>) -> Step<'a, Vec<Attached>>;

    /// Lets go of `sweep` at the end of the run, whatever its outcome.
    fn let_go<'a>(&'a self, sweep: &'a SweepRun<'a>) -> Step<'a, ()>;

    /// The slots to run on, for a run that follows `following` trials and may claim
    /// `claimable` more.
    fn slots(&self, following: usize, claimable: usize) -> Vec<Slot>;

    /// Starts `command` as the trial `trial`, whose folder `dir` holds its configuration and
    /// its events file, on `slot`. Its events and then its end (also when it cannot start)
    /// are reported. An executor that batches trials only queues it for [`Executor::submit`].
    fn launch(
        &self,
        trial: TrialId,
        dir: &Path,
        command: TrialCommand,
        slot: &Slot,
    ) -> Box<dyn Running>;

    /// Submits the trials launched since the last submission, for an executor that batches
    /// them (job arrays); on an error, none of them runs. One that starts each trial at once
    /// has nothing to submit.
    fn submit(&self) -> Result<Vec<Submitted>, SubmitError>;

    /// What a Ctrl-C does to the run.
    fn on_ctrl_c(&self) -> OnCtrlC;

    /// Whether the run returns as soon as its trials are submitted, leaving them running
    /// (`--detach`).
    fn detaches(&self) -> bool;
}
