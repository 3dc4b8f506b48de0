//! Helpers for the end-to-end tests in `tests/tests/`, which drive the built `sweep` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `sweep` binary of the same profile as the running test (`cargo build [--release]`
/// builds it; `cargo test` of this crate alone does not).
pub fn sweep_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("tests run from target/<profile>/deps");
    let bin = profile_dir.join(format!("sweep{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: build it first (`cargo build --release`, as .ci/run does)",
        bin.display()
    );
    bin
}

/// Runs `sweep ARGS` in `dir` and returns what it printed and its exit status.
pub fn sweep(dir: &Path, args: &[&str]) -> Output {
    Command::new(sweep_bin())
        .args(args)
        .current_dir(dir)
        .env("RAYON_NUM_THREADS", "2")
        .output()
        .expect("the sweep binary starts")
}

/// The text a run printed on stdout and stderr.
pub fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A trial as the database has it, with its epochs.
#[derive(Debug, Clone)]
pub struct StoredTrial {
    pub row: sweep_store::TrialRow,
    pub epochs: Vec<i64>,
}

/// Reads a sweep's trials (in grid order) and their epoch numbers from the database.
pub fn stored_trials(db: &Path, sweep: &str) -> Vec<StoredTrial> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let pool = sweep_store::open_read_only(db).await.unwrap();
        let Some(id) = sweep_store::find_sweep(&pool, sweep).await.unwrap() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for row in sweep_store::trials(&pool, id).await.unwrap() {
            let epochs = sweep_store::epochs(&pool, sweep_store::TrialId(row.id))
                .await
                .unwrap();
            out.push(StoredTrial {
                row,
                epochs: epochs.iter().map(|e| e.epoch).collect(),
            });
        }
        pool.close().await;
        out
    })
}

/// The processes whose parent is `pid` (read from /proc).
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/stat")).is_ok_and(|stat| {
                // The fields after the command name (which may hold spaces) start at ") ".
                stat.rsplit_once(") ")
                    .and_then(|(_, rest)| rest.split(' ').nth(1)?.parse::<u32>().ok())
                    == Some(pid)
            })
        })
        .collect()
}

/// Sends `signal` to process `pid`.
pub fn signal(pid: u32, signal: i32) {
    // SAFETY: kill only sends a signal to a process the test started.
    unsafe { libc::kill(pid as i32, signal) };
}
