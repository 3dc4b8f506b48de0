//! The read-only sandbox of `sweep query`: a user's SQL, run so that it cannot write.

use sqlx::sqlite::SqlitePool;
use sqlx::Row;

use crate::error::{Result, StoreError};

/// One value of a query's result.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// Runs a user's SQL on a read-only pool: the column names and the rows. Writing statements,
/// and ATTACH/DETACH (which would reach other files), are refused.
pub async fn query(pool: &SqlitePool, sql: &str) -> Result<(Vec<String>, Vec<Vec<Cell>>)> {
    use sqlx::{Column, TypeInfo, ValueRef};
    let words = sql
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_ascii_uppercase())
        .collect::<Vec<_>>();
    if words.iter().any(|w| w == "ATTACH" || w == "DETACH") {
        return Err(StoreError::ReadOnly);
    }
    let mut conn = pool.acquire().await?;
    sqlx::query("PRAGMA query_only = ON")
        .execute(&mut *conn)
        .await?;
    let rows = sqlx::query(sql).fetch_all(&mut *conn).await.map_err(|e| {
        let text = e.to_string();
        if text.contains("readonly") || text.contains("query_only") || text.contains("read-only") {
            StoreError::ReadOnly
        } else {
            StoreError::Sql(e)
        }
    })?;
    let columns = match rows.first() {
        Some(row) => row.columns().iter().map(|c| c.name().to_string()).collect(),
        // No row to read the names from: the prepared statement has them.
        None => {
            use sqlx::{Executor, Statement};
            let statement = (&mut *conn).prepare(sql).await?;
            statement
                .columns()
                .iter()
                .map(|c| c.name().to_string())
                .collect()
        }
    };
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut cells = Vec::with_capacity(row.len());
        for i in 0..row.len() {
            let raw = row.try_get_raw(i)?;
            let cell = if raw.is_null() {
                Cell::Null
            } else {
                match raw.type_info().name() {
                    "INTEGER" | "BOOLEAN" => Cell::Int(row.try_get(i)?),
                    "REAL" => Cell::Real(row.try_get(i)?),
                    "BLOB" => Cell::Blob(row.try_get(i)?),
                    _ => Cell::Text(row.try_get(i)?),
                }
            };
            cells.push(cell);
        }
        out.push(cells);
    }
    Ok((columns, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::new_trials;
    use crate::{open, open_read_only, record_sweep};

    #[tokio::test]
    async fn user_queries_read_but_never_write() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("sweep.db");
        let pool = open(&path).await.unwrap();
        record_sweep(&pool, "s", "s.toml", "", &new_trials(3))
            .await
            .unwrap();
        pool.close().await;
        let ro = open_read_only(&path).await.unwrap();
        let (columns, rows) = query(
            &ro,
            "SELECT grid_index, params, objective FROM trials ORDER BY grid_index",
        )
        .await
        .unwrap();
        assert_eq!(columns, ["grid_index", "params", "objective"]);
        assert_eq!(
            rows[2],
            [Cell::Int(2), Cell::Text("{\"lr\":2}".into()), Cell::Null]
        );
        for sql in [
            "DELETE FROM trials",
            "UPDATE trials SET status = 'done'",
            "DROP TABLE epochs",
            "INSERT INTO sweeps (name, file_text, file_path) VALUES ('x', '', '')",
            "ATTACH DATABASE 'other.db' AS other",
            "SELECT 1; DELETE FROM trials",
        ] {
            let err = query(&ro, sql).await.unwrap_err().to_string();
            assert!(err.contains("read-only"), "{sql}: {err}");
        }
        let (_, rows) = query(&ro, "SELECT count(*) FROM trials").await.unwrap();
        assert_eq!(rows, [[Cell::Int(3)]]);
        assert!(!tmp.path().join("other.db").exists());
    }

    #[sqlx::test]
    async fn a_query_without_rows_still_names_its_columns(pool: SqlitePool) {
        record_sweep(&pool, "s", "s.toml", "", &new_trials(2))
            .await
            .unwrap();
        let (columns, rows) = query(&pool, "SELECT number, params AS p FROM trials WHERE 0")
            .await
            .unwrap();
        assert_eq!(columns, ["number", "p"]);
        assert!(rows.is_empty());
    }
}
