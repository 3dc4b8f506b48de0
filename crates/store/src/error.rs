//! Why the database could not be opened, read or written.

/// Why the database could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `error` is not a `source`: its text is part of this one's, said once and plainly.
    #[error("{path}: {}", plainly(error))]
    Open { path: String, error: sqlx::Error },
    #[error("{path}: cannot update the schema: {source}")]
    Migrate {
        path: String,
        source: sqlx::migrate::MigrateError,
    },
    #[error("{0}")]
    Sql(#[from] sqlx::Error),
    #[error("a trial's stored JSON is invalid: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{READ_ONLY_REFUSAL}")]
    ReadOnly,
    #[error("{path}-shm and {path}-wal belong to another database: a process (a `sweep run`?) still has open the database that was at {path} before a file was moved over it, and uses them; read with them, the new file would show that database's rows. It is read once that process ends")]
    ForeignWal { path: String },
    #[error("{path} is on a network filesystem ({filesystem}), where SQLite's locking and WAL do not work (sqlite.org/wal.html): put the database on this machine's local disk with --db (trial folders and the data cache may stay on the shared filesystem)")]
    NetworkFilesystem {
        path: String,
        filesystem: &'static str,
    },
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// SQLite's own words for an error, without sqlx's "error returned from database: (code: N)".
fn plainly(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Database(e) => e.message().to_string(),
        sqlx::Error::Io(e) => e.to_string(),
        other => other.to_string(),
    }
}

/// Why `sweep query` refused a statement.
pub const READ_ONLY_REFUSAL: &str = "the results database is opened read-only: statements that write (INSERT, UPDATE, DELETE, DROP, CREATE, ATTACH, …) are refused";
