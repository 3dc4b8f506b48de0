//! Why the database could not be opened, read or written.

/// Why the database could not be opened, read or written.
///
/// No variant has a `source`: the error it holds is said in its own text, once (sqlx's own
/// errors repeat their source in their text).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {}", plainly(error))]
    Open { path: String, error: sqlx::Error },
    #[error("{path}: cannot update the schema: {error}")]
    Migrate {
        path: String,
        error: sqlx::migrate::MigrateError,
    },
    #[error("{0}")]
    Sql(sqlx::Error),
    /// A trial's row that does not read as a trial (see `summary`): written by hand, or
    /// from a configuration that did not say what it must.
    #[error("trial {number} (id {id}) is damaged in the database: {problem}")]
    DamagedTrial {
        id: i64,
        number: i64,
        problem: String,
    },
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

impl StoreError {
    /// Whether the user's input is at fault (the cli exits 2 for it, 1 for any other failure).
    /// A match with no catch-all: a new variant must be decided here.
    pub fn is_bad_input(&self) -> bool {
        match self {
            // A database on a network filesystem is the user's choice of --db.
            StoreError::NetworkFilesystem { .. } => true,
            StoreError::Open { .. }
            | StoreError::Migrate { .. }
            | StoreError::Sql(_)
            | StoreError::DamagedTrial { .. }
            | StoreError::ReadOnly
            | StoreError::ForeignWal { .. } => false,
        }
    }
}

impl From<sqlx::Error> for StoreError {
    /// A damaged trial comes out of sqlx as the error its row's decoding gave.
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::Decode(e) => match e.downcast::<StoreError>() {
                Ok(damaged) => *damaged,
                Err(e) => StoreError::Sql(sqlx::Error::Decode(e)),
            },
            error => StoreError::Sql(error),
        }
    }
}

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
