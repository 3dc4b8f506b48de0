//! The errors a command ends with: [`BadInput`] and the exit codes, the one-line report of
//! an error's causes, and the unknown-sweep error the result commands share.

use sweep_model::data::DataError;

/// Exit code for bad input (a sweep file, data or arguments that cannot be used).
pub const EXIT_BAD_INPUT: i32 = 2;

/// An error the user can fix in their input, as opposed to a failure while running.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

impl BadInput {
    /// Always: that is what it is for.
    pub fn is_bad_input(&self) -> bool {
        true
    }
}

/// The error for a sweep name that is not in the database: it lists the sweeps that are, with
/// the closest name as a hint (`show`, `best`, `report` and `predict` share it).
pub async fn unknown_sweep(pool: &sweep_store::Pool, name: &str) -> anyhow::Error {
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

/// An error as one line: its messages from the outermost in, as anyhow's `{:#}` joins them.
/// Each error in the chain says only its own part (an error that says its inner error's text
/// does not also give it as its `source`), so the chain is printed as it is, once.
pub fn error_report(err: &anyhow::Error) -> String {
    format!("{err:#}")
}

/// The exit code for an error: 2 for bad input, 1 otherwise (clap's own usage errors exit 2
/// before any command runs).
///
/// Each error type decides for its own variants (`is_bad_input`, a match with no catch-all,
/// as nextest's `process_exit_code()`), so a new variant cannot go undecided; this walks the
/// chain and asks every error it knows, the ones the commands return. A wrapped error answers
/// for what it holds, since a `transparent` variant hides it from the chain.
pub fn exit_code_of(err: &anyhow::Error) -> i32 {
    if err.chain().any(is_bad_input) {
        EXIT_BAD_INPUT
    } else {
        1
    }
}

/// Whether `e` is one of the errors the commands return and says the input is at fault.
fn is_bad_input(e: &(dyn std::error::Error + 'static)) -> bool {
    macro_rules! ask {
        ($($error:ty),* $(,)?) => {
            $(if let Some(e) = e.downcast_ref::<$error>() {
                return e.is_bad_input();
            })*
        };
    }
    ask!(
        BadInput,
        sweep_scheduler::RunError,
        sweep_scheduler::SweepFileError,
        sweep_scheduler::sweep_name::UnsafeName,
        sweep_scheduler::launch::SubmitError,
        sweep_scheduler::trial::TrialError,
        sweep_report::ReportError,
        sweep_store::StoreError,
        DataError,
        sweep_model::TrainError,
        sweep_model::train::PredictError,
        sweep_model::train::checkpoint::CheckpointError,
    );
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every library error that names a path with its inner error's text, as the cli meets
    /// them (behind a context); each must be reported with no part twice.
    fn with_paths() -> Vec<anyhow::Error> {
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
            sweep_scheduler::RunError::Submit(sweep_scheduler::launch::SubmitError(
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
            assert_eq!(
                err.chain().count(),
                1,
                "{text}: its inner error is not a source"
            );
            assert_eq!(error_report(&err), text);
            let err = err.context("sweep `quick`");
            assert_eq!(error_report(&err), format!("sweep `quick`: {text}"));
        }
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let err = anyhow::Error::new(DataError::Io {
            path: "data/train.csv".into(),
            error: io,
        })
        .context("reading the data");
        assert_eq!(
            error_report(&err),
            "reading the data: data/train.csv: No such file or directory"
        );
        let err = anyhow::anyhow!("disk full")
            .context("writing trials.csv")
            .context("sweep `quick`");
        assert_eq!(
            error_report(&err),
            "sweep `quick`: writing trials.csv: disk full",
            "distinct causes are all kept, outermost first"
        );
        let err = anyhow::anyhow!("disk full").context("disk full");
        assert_eq!(
            error_report(&err),
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
        let submit = || sweep_scheduler::launch::SubmitError("invalid partition".into());
        let checkpoint = || sweep_model::train::checkpoint::CheckpointError::Checksum {
            path: "last.safetensors".into(),
        };
        let bad: Vec<anyhow::Error> = vec![
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
            assert_eq!(exit_code_of(&err), EXIT_BAD_INPUT, "{err:#}");
        }
        let failed: Vec<anyhow::Error> = vec![
            anyhow::anyhow!("disk full"),
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
            assert_eq!(exit_code_of(&err), 1, "{err:#}");
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
        assert_eq!(exit_code_of(&typo), EXIT_BAD_INPUT);
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
