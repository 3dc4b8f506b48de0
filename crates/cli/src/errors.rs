//! The errors a command ends with: [`BadInput`] and the exit codes, the one-line report of
//! an error's causes, and the unknown-sweep error the result commands share.

use sweep_model::data::DataError;

/// Exit code for bad input (a sweep file, data or arguments that cannot be used).
pub const EXIT_BAD_INPUT: i32 = 2;

/// An error the user can fix in their input, as opposed to a failure while running.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

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

/// An error as one line: its messages from the outermost in, each cause once. A library
/// error's text often already ends with its source's (`{path}: {source}`), which anyhow's
/// `{:#}` would print again.
pub fn error_report(err: &anyhow::Error) -> String {
    let mut report = String::new();
    for cause in err.chain() {
        let message = cause.to_string();
        if message.is_empty() || report.contains(&message) {
            continue;
        }
        if !report.is_empty() {
            report.push_str(": ");
        }
        report.push_str(&message);
    }
    report
}

/// The exit code for an error: 2 for bad input, 1 otherwise.
pub fn exit_code_of(err: &anyhow::Error) -> i32 {
    use sweep_scheduler::{RunError, SweepFileError};
    let bad = err.chain().any(|e| {
        e.is::<BadInput>()
            || e.is::<DataError>()
            || e.is::<SweepFileError>()
            || e.is::<sweep_scheduler::sweep_name::UnsafeName>()
            || matches!(
                e.downcast_ref::<RunError>(),
                Some(
                    RunError::Data(_)
                        | RunError::NoData { .. }
                        | RunError::Submit(_)
                        | RunError::Attached { .. }
                        | RunError::NoSlurm
                        | RunError::Name(_)
                        | RunError::Store(sweep_store::StoreError::NetworkFilesystem { .. })
                )
            )
            || matches!(
                e.downcast_ref::<sweep_store::StoreError>(),
                Some(sweep_store::StoreError::NetworkFilesystem { .. })
            )
    });
    if bad {
        EXIT_BAD_INPUT
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{path}: {source}")]
    struct WithPath {
        path: &'static str,
        source: std::io::Error,
    }

    #[test]
    fn an_error_report_names_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let err = anyhow::Error::new(WithPath {
            path: "s.toml",
            source: io,
        });
        assert_eq!(
            error_report(&err),
            "s.toml: No such file or directory",
            "a source already in its error's text"
        );
        let err = err.context("reading the sweep file");
        assert_eq!(
            error_report(&err),
            "reading the sweep file: s.toml: No such file or directory"
        );
        let err = anyhow::anyhow!("disk full")
            .context("writing trials.csv")
            .context("sweep `quick`");
        assert_eq!(
            error_report(&err),
            "sweep `quick`: writing trials.csv: disk full",
            "distinct causes are all kept, outermost first"
        );
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
