//! The errors a command ends with: [`CommandError`] and its exit code, the one-line report of
//! an error's causes, and the unknown-sweep error the result commands share.
//!
//! Why no `anyhow` here: the exit code is decided by the error's type, and the compiler must
//! check that every type a command can fail with decides it. A command returns
//! [`CommandError`], which is made only from a [`Failure`]: an error type that says whether
//! the input is at fault. A library error that no impl below answers for cannot be `?`-ed
//! in a command (it does not compile), and each library type answers with a match over its
//! variants with no catch-all (`is_bad_input`), as nextest's errors answer
//! `process_exit_code()`. So a new variant, or a new error type, cannot silently exit 1.

use std::fmt::Display;

use sweep_model::data::DataError;

/// Exit code for bad input (a sweep file, data or arguments that cannot be used).
pub const EXIT_BAD_INPUT: i32 = 2;

/// An error a command can end with: it says whether the user's input is at fault (exit 2)
/// or the command failed while running (exit 1).
pub trait Failure: std::error::Error + Send + Sync + 'static {
    fn is_bad_input(&self) -> bool;
}

/// The library crates' errors answer for themselves, variant by variant.
macro_rules! answered_by_the_type {
    ($($error:ty),* $(,)?) => {
        $(impl Failure for $error {
            fn is_bad_input(&self) -> bool {
                <$error>::is_bad_input(self)
            }
        })*
    };
}

answered_by_the_type!(
    sweep_scheduler::RunError,
    sweep_scheduler::SweepFileError,
    sweep_scheduler::sweep_name::UnsafeName,
    sweep_scheduler::executor::SubmitError,
    sweep_scheduler::trial::TrialError,
    sweep_report::ReportError,
    sweep_store::StoreError,
    DataError,
    sweep_model::TrainError,
    sweep_model::train::PredictError,
    sweep_model::train::checkpoint::CheckpointError,
);

/// The operating system's errors (a file, a socket, the runtime's threads): the machine, not
/// the input, so exit 1. Where the input names the file, the command says so as bad input
/// before it opens it.
impl Failure for std::io::Error {
    fn is_bad_input(&self) -> bool {
        false
    }
}

/// Serialising sweep's own values (the JSON of `--format json`): a failure would be a bug.
impl Failure for serde_json::Error {
    fn is_bad_input(&self) -> bool {
        false
    }
}

/// A device that cannot be opened or a tensor operation that failed (`sweep train`, `sweep
/// bench`): the machine, not the input.
impl Failure for candle_core::Error {
    fn is_bad_input(&self) -> bool {
        false
    }
}

/// An error the user can fix in their input, as opposed to a failure while running.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

impl Failure for BadInput {
    fn is_bad_input(&self) -> bool {
        true
    }
}

/// A failure a command describes itself (exit 1): what went wrong is not the input's fault.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Failed(pub String);

impl Failure for Failed {
    fn is_bad_input(&self) -> bool {
        false
    }
}

/// Why a command failed: the error it met, and what the command was doing when it met it
/// ([`Context`]), outermost first.
#[derive(Debug)]
pub struct CommandError {
    doing: Vec<String>,
    error: Box<dyn Failure>,
}

/// A command's result.
pub type Result<T, E = CommandError> = std::result::Result<T, E>;

impl<E: Failure> From<E> for CommandError {
    fn from(error: E) -> Self {
        CommandError {
            doing: Vec::new(),
            error: Box::new(error),
        }
    }
}

impl CommandError {
    /// The same error, met while doing `doing`.
    pub fn context(mut self, doing: impl Display) -> Self {
        self.doing.insert(0, doing.to_string());
        self
    }

    /// 2 for bad input, 1 otherwise (clap's own usage errors exit 2 before any command runs).
    pub fn exit_code(&self) -> i32 {
        if self.error.is_bad_input() {
            EXIT_BAD_INPUT
        } else {
            1
        }
    }
}

/// An error as one line: what the command was doing, outermost first, then the error and its
/// sources. Each error in a chain says only its own part (an error that says its inner
/// error's text does not also give it as its `source`), so the chain is printed as it is, once.
impl Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for doing in &self.doing {
            write!(f, "{doing}: ")?;
        }
        write!(f, "{}", self.error)?;
        let mut source = self.error.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}

/// `.context(…)` on a command's results, as anyhow's: what the command was doing.
pub trait Context<T> {
    fn context(self, doing: impl Display) -> Result<T>;
    fn with_context<D: Display>(self, doing: impl FnOnce() -> D) -> Result<T>;
}

impl<T, E: Into<CommandError>> Context<T> for std::result::Result<T, E> {
    fn context(self, doing: impl Display) -> Result<T> {
        self.map_err(|e| e.into().context(doing))
    }

    fn with_context<D: Display>(self, doing: impl FnOnce() -> D) -> Result<T> {
        self.map_err(|e| e.into().context(doing()))
    }
}

/// The error for a sweep name that is not in the database: it lists the sweeps that are, with
/// the closest name as a hint (`show`, `best`, `report` and `predict` share it).
pub async fn unknown_sweep(pool: &sweep_store::Pool, name: &str) -> CommandError {
    let mut message = format!("no sweep named `{name}` in the database");
    match sweep_store::sweeps(pool).await {
        Ok(sweeps) if sweeps.is_empty() => {
            message.push_str(", which has no sweeps yet (`sweep run FILE` makes one)")
        }
        Ok(sweeps) => {
            let names: Vec<&str> = sweeps.iter().map(|s| s.name.as_str()).collect();
            if let Some(hint) = sweep_scheduler::sweep_file::closest(name, &names) {
                message.push_str(&format!(" (did you mean `{hint}`?)"));
            }
            let listed: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            message.push_str(&format!("; its sweeps: {}", listed.join(", ")));
        }
        // The name is what went wrong; a failure to list the others would only hide that.
        Err(_) => {}
    }
    BadInput(message).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every library error that names a path with its inner error's text, as the cli meets
    /// them (behind a context); each must be reported with no part twice.
    fn with_paths() -> Vec<CommandError> {
        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let sqlite = || sqlx::Error::Io(io());
        vec![
            DataError::Io {
                path: "data/train.csv".into(),
                error: io(),
            }
            .into(),
            sweep_model::train::checkpoint::CheckpointError::Io {
                path: "last.safetensors".into(),
                error: io(),
            }
            .into(),
            sweep_report::ReportError::Io {
                path: "report/index.html".into(),
                error: io(),
            }
            .into(),
            sweep_scheduler::RunError::Io {
                path: "results".into(),
                error: io(),
            }
            .into(),
            sweep_scheduler::RunError::Data(DataError::Io {
                path: "data/train.csv".into(),
                error: io(),
            })
            .into(),
            sweep_store::StoreError::Migrate {
                path: "sweep.db".into(),
                error: sqlx::migrate::MigrateError::Execute(sqlite()),
            }
            .into(),
            sweep_store::StoreError::Sql(sqlite()).into(),
            sweep_store::StoreError::DamagedTrial {
                id: 7,
                number: 3,
                problem: "`epochs` is empty".into(),
            }
            .into(),
            sweep_scheduler::RunError::Submit(sweep_scheduler::executor::SubmitError(
                "sbatch: error: invalid partition".into(),
            ))
            .into(),
            sweep_scheduler::trial::TrialError::Data(DataError::Io {
                path: "data/train.csv".into(),
                error: io(),
            })
            .into(),
            sweep_scheduler::SweepFileError {
                path: "s.toml".into(),
                line: None,
                problem: sweep_scheduler::sweep_file::Problem::Io(io()),
            }
            .into(),
        ]
    }

    #[test]
    fn an_error_report_says_each_part_once() {
        for err in with_paths() {
            let text = err.to_string();
            assert!(
                err.error.source().is_none(),
                "{text}: its inner error is not a source"
            );
            assert_eq!(text, err.error.to_string());
            let err = err.context("sweep `quick`");
            assert_eq!(err.to_string(), format!("sweep `quick`: {text}"));
        }
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let err = CommandError::from(DataError::Io {
            path: "data/train.csv".into(),
            error: io,
        })
        .context("reading the data");
        assert_eq!(
            err.to_string(),
            "reading the data: data/train.csv: No such file or directory"
        );
        let err = CommandError::from(Failed("disk full".into()))
            .context("writing trials.csv")
            .context("sweep `quick`");
        assert_eq!(
            err.to_string(),
            "sweep `quick`: writing trials.csv: disk full",
            "distinct causes are all kept, outermost first"
        );
        let err = CommandError::from(Failed("disk full".into())).context("disk full");
        assert_eq!(
            err.to_string(),
            "disk full: disk full",
            "the chain is printed as it is, not matched by text"
        );
    }

    #[test]
    fn bad_input_exits_2_and_any_other_failure_1() {
        use sweep_scheduler::sweep_file::Problem;
        use sweep_scheduler::trial::TrialError;
        use sweep_scheduler::RunError;
        use sweep_store::StoreError;
        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let data = || DataError::Missing {
            path: "data/train.csv".into(),
            what: "train.csv".into(),
        };
        let network = || StoreError::NetworkFilesystem {
            path: "sweep.db".into(),
            filesystem: "nfs",
        };
        let unsafe_name = || sweep_scheduler::sweep_name::UnsafeName {
            name: "..".into(),
            reason: "is not a folder name".into(),
        };
        let submit = || sweep_scheduler::executor::SubmitError("invalid partition".into());
        let checkpoint = || sweep_model::train::checkpoint::CheckpointError::Checksum {
            path: "last.safetensors".into(),
        };
        let bad: Vec<CommandError> = vec![
            BadInput("--jobs must be at least 1".into()).into(),
            data().into(),
            DataError::Io {
                path: "data".into(),
                error: io(),
            }
            .into(),
            sweep_scheduler::SweepFileError {
                path: "s.toml".into(),
                line: Some(3),
                problem: Problem::Missing { key: "lr".into() },
            }
            .into(),
            sweep_scheduler::SweepFileError {
                path: "s.toml".into(),
                line: None,
                problem: Problem::Io(io()),
            }
            .into(),
            unsafe_name().into(),
            submit().into(),
            network().into(),
            RunError::Data(data()).into(),
            RunError::NoData {
                path: "data".into(),
            }
            .into(),
            RunError::Submit(submit()).into(),
            RunError::Attached {
                sweep: "quick".into(),
                holder: "pid 7".into(),
            }
            .into(),
            RunError::NoSlurm.into(),
            RunError::Name(unsafe_name()).into(),
            RunError::Store(network()).into(),
            TrialError::Data(data()).into(),
            TrialError::Config {
                path: "config.json".into(),
                message: "missing field `train`".into(),
            }
            .into(),
            sweep_report::ReportError::NoSweep("quick".into()).into(),
            sweep_report::ReportError::Store(network()).into(),
        ];
        for err in bad {
            let err = err.context("sweep `quick`");
            assert_eq!(err.exit_code(), EXIT_BAD_INPUT, "{err:#}");
        }
        let failed: Vec<CommandError> = vec![
            Failed("disk full".into()).into(),
            io().into(),
            StoreError::ReadOnly.into(),
            StoreError::ForeignWal {
                path: "sweep.db".into(),
            }
            .into(),
            RunError::Store(StoreError::ReadOnly).into(),
            RunError::Io {
                path: "results".into(),
                error: io(),
            }
            .into(),
            TrialError::Device {
                device: sweep_model::DeviceName::Cpu,
                message: "no such device".into(),
            }
            .into(),
            TrialError::Train(sweep_model::TrainError::Checkpoint(checkpoint())).into(),
            TrialError::Predict(sweep_model::train::PredictError::Checkpoint(checkpoint())).into(),
            sweep_model::TrainError::Diverged {
                epoch: 1,
                batch: 2,
                loss: f64::NAN,
            }
            .into(),
            checkpoint().into(),
            sweep_report::ReportError::Draw("no font".into()).into(),
            sweep_report::ReportError::Store(StoreError::ReadOnly).into(),
        ];
        for err in failed {
            let err = err.context("sweep `quick`");
            assert_eq!(err.exit_code(), 1, "{err:#}");
        }
    }

    #[test]
    fn an_unknown_sweep_lists_the_sweeps_with_the_closest_name() {
        let db = std::env::temp_dir().join(format!("sweep-unknown-{}.db", std::process::id()));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (empty, typo, far) = runtime.block_on(async {
            let pool = sweep_store::open(&db).await.unwrap();
            let empty = unknown_sweep(&pool, "quick").await.to_string();
            for name in ["quick", "cnn"] {
                sweep_store::record_sweep(&pool, name, "s.toml", "", &[])
                    .await
                    .unwrap();
            }
            let typo = unknown_sweep(&pool, "quik").await;
            let far = unknown_sweep(&pool, "resnet-large").await.to_string();
            pool.close().await;
            (empty, typo, far)
        });
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
        assert!(empty.starts_with("no sweep named `quick` in the database, which has no sweeps"));
        assert_eq!(typo.exit_code(), EXIT_BAD_INPUT);
        assert_eq!(
            typo.to_string(),
            "no sweep named `quik` in the database (did you mean `quick`?); its sweeps: `quick`, `cnn`"
        );
        assert_eq!(
            far,
            "no sweep named `resnet-large` in the database; its sweeps: `quick`, `cnn`"
        );
    }
}
