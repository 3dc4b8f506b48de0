//! `sweep serve`: the report page of each sweep, live, over HTTP (axum on tokio). The page is
//! `sweep-report`'s; it polls `/api/sweeps/NAME?after=N` for the epochs written since.
//!
//! The database is opened read-only for each request and closed after it: a request never
//! holds a lock the runner waits for, and a database replaced on disk (deleted, copied over,
//! moved over with `mv` beside the old `-wal` and `-shm`) is simply the one the next request
//! reads; see `sweep_store::open_read_only` for the one case it waits.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sweep_report::page::{self, Live};
use sweep_report::ReportError;

use crate::args::ServeArgs;
use crate::errors::{Context, Result};

/// How often the page asks for new epochs.
const POLL_MS: u64 = 1000;

/// Inline script and style only, no request but to this server: the page needs nothing else.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; \
     style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; \
     form-action 'none'";

/// Runs the server until Ctrl-C.
pub fn serve(args: ServeArgs) -> Result<i32> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .with_context(|| format!("listening on {}", args.addr))?;
        let addr: SocketAddr = listener.local_addr()?;
        if !args.db.db.exists() {
            eprintln!(
                "{}: no results database yet; the pages show it once a sweep writes it",
                args.db.db.display()
            );
        }
        println!(
            "serving the sweeps of {} at http://{addr}/ (Ctrl-C to stop)",
            args.db.db.display()
        );
        axum::serve(listener, router(Arc::new(args.db.db)))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .context("serving")?;
        Ok(0)
    })
}

/// The routes: `/` (the sweeps), `/sweeps/NAME` (a sweep's page), `/api/sweeps/NAME` (its
/// data, polled); anything else is 404.
fn router(db: Arc<PathBuf>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/sweeps/{name}", get(sweep_page))
        .route("/api/sweeps/{name}", get(sweep_data))
        .fallback(|| async { plain(StatusCode::NOT_FOUND, "not found".into()) })
        .with_state(db)
}

/// What the page already has: the last epoch row it read and the trial whose confusion
/// matrix it holds.
#[derive(Debug, serde::Deserialize)]
struct Since {
    #[serde(default)]
    after: i64,
    confusion: Option<i64>,
}

fn plain(status: StatusCode, text: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

fn page_response(html: String) -> Response {
    let mut response = (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// A failure as the client sees it: an unknown sweep is 404, an unreadable database 503
/// (the page keeps polling and recovers once it can read it again).
fn failure(error: ReportError) -> Response {
    match error {
        ReportError::NoSweep(name) => plain(
            StatusCode::NOT_FOUND,
            format!("no sweep named `{name}` in the database"),
        ),
        other => unavailable(other.to_string()),
    }
}

/// A 503 with `text`, which the server's log says too (once, until another one replaces it:
/// an open page asks every second).
fn unavailable(text: String) -> Response {
    static LAST: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    if *last != text {
        eprintln!("503: {text}");
        last.clone_from(&text);
    }
    plain(StatusCode::SERVICE_UNAVAILABLE, text)
}

/// Reads the sweep through a read-only connection opened for this request alone.
async fn read(
    db: &std::path::Path,
    name: &str,
    since: &Since,
) -> Result<page::Snapshot, ReportError> {
    let pool = sweep_store::open_read_only(db).await?;
    let snapshot = page::snapshot(&pool, name, since.after, since.confusion).await;
    pool.close().await;
    snapshot
}

/// A path segment with every byte but the unreserved ones percent-encoded.
fn encode_segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

async fn index(State(db): State<Arc<PathBuf>>) -> Response {
    let sweeps = async {
        let pool = sweep_store::open_read_only(&db).await?;
        let sweeps = sweep_store::sweeps(&pool).await;
        pool.close().await;
        sweeps
    };
    let body = match sweeps.await {
        Ok(sweeps) if sweeps.is_empty() => "<p>No sweeps in the database yet.</p>".to_string(),
        Ok(sweeps) => sweeps
            .iter()
            .map(|s| {
                format!(
                    "<li><a href=\"/sweeps/{}\">{}</a> <span class=\"when\">{}</span></li>\n",
                    encode_segment(&s.name),
                    page::escape_html(&s.name),
                    page::escape_html(&s.created_at)
                )
            })
            .collect::<Vec<_>>()
            .concat(),
        Err(e) => return unavailable(format!("cannot read the database: {e}")),
    };
    page_response(format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>sweeps</title>\
         <style>body{{font:14px/1.5 system-ui,sans-serif;margin:20px}}.when{{color:#888}}</style>\
         </head><body><h1>Sweeps</h1><ul>\n{body}</ul></body></html>\n"
    ))
}

async fn sweep_page(State(db): State<Arc<PathBuf>>, Path(name): Path<String>) -> Response {
    let since = Since {
        after: 0,
        confusion: None,
    };
    match read(&db, &name, &since).await {
        Ok(snapshot) => {
            let live = Live {
                poll: format!("/api/sweeps/{}", encode_segment(&name)),
                interval_ms: POLL_MS,
            };
            page_response(page::html(&snapshot, Some(&live)))
        }
        Err(e) => failure(e),
    }
}

async fn sweep_data(
    State(db): State<Arc<PathBuf>>,
    Path(name): Path<String>,
    Query(since): Query<Since>,
) -> Response {
    match read(&db, &name, &since).await {
        Ok(snapshot) => (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            page::script_json(&snapshot),
        )
            .into_response(),
        Err(e) => failure(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_keeps_only_unreserved_bytes() {
        assert_eq!(encode_segment("quick-1.a_b~"), "quick-1.a_b~");
        assert_eq!(
            encode_segment("<script>/ é?"),
            "%3Cscript%3E%2F%20%C3%A9%3F"
        );
    }
}
