//! [`RunError`]: why a sweep could not run, whichever part of the run (the data, the store,
//! an executor) found out, and [`SubmitError`], an executor's refused submission. Both here,
//! below the executors, so that the executors use the run's errors and nothing here uses an
//! executor.

use std::path::PathBuf;

use sweep_model::data::DataError;
use sweep_store::StoreError;

/// Why a sweep could not run.
///
/// A variant that holds another error either says its text and has no `source`, or is
/// `transparent`: no part of an error's chain repeats another.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("{path}: the data folder is missing. Put the competition's files there (train.csv, val.csv, test.csv, train_images/, val_images/, test_images/), or try sweep on the built-in synthetic data: `sweep run sweeps/quick.toml`")]
    NoData { path: PathBuf },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// Nothing was submitted, and no trial is left running.
    #[error("{0}; nothing was submitted")]
    Submit(SubmitError),
    #[error("sweep `{sweep}` is followed by another `sweep run` ({holder}), which is alive: it alone writes the database; wait for it, stop it, or follow the sweep with `sweep show {sweep}`")]
    Attached { sweep: String, holder: String },
    #[error(transparent)]
    Name(#[from] crate::sweep_name::UnsafeName),
    #[error(transparent)]
    Suggestion(#[from] crate::suggestions::SuggestionError),
    #[error("the Slurm executor needs Slurm: sbatch is not on the PATH or no controller answers squeue (run sweep on a login node of the cluster, or use `--executor local`)")]
    NoSlurm,
}

impl RunError {
    /// Whether the user's input is at fault (the cli exits 2 for it, 1 for any other failure).
    /// A match with no catch-all: a new variant must be decided here.
    pub fn is_bad_input(&self) -> bool {
        match self {
            RunError::Data(e) => e.is_bad_input(),
            RunError::Store(e) => e.is_bad_input(),
            RunError::Submit(e) => e.is_bad_input(),
            RunError::Name(e) => e.is_bad_input(),
            RunError::NoData { .. } | RunError::Attached { .. } | RunError::NoSlurm => true,
            // A changed `[search]` space is the user's to restore.
            RunError::Suggestion(crate::suggestions::SuggestionError::OutsideSpace { .. }) => true,
            RunError::Suggestion(crate::suggestions::SuggestionError::Search(_)) => false,
            RunError::Io { .. } => false,
        }
    }
}

impl From<SubmitError> for RunError {
    fn from(error: SubmitError) -> Self {
        RunError::Submit(error)
    }
}

/// Why queued trials could not be submitted (none of them was).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct SubmitError(pub String);

impl SubmitError {
    /// Whether the user's input is at fault: yes, the batch system refused what the sweep
    /// file asks for (a partition, a time limit), and nothing was submitted.
    pub fn is_bad_input(&self) -> bool {
        true
    }
}
