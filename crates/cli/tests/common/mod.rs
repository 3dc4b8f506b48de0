//! Helpers for the end-to-end tests (`tests/it`, `tests/slurm.rs`, `tests/page.rs`), which drive
//! the `sweep` binary Cargo builds for them. Each test binary uses a part of them.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

/// The `sweep` binary Cargo built for these tests.
pub fn sweep_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sweep"))
}

/// Writes a small synthetic data set of 3 classes of 8×8 images to `dir/data` with
/// `sweep data synth`.
pub fn synthetic_data(dir: &Path, train: usize, val: usize, test: usize) {
    let (train, val, test) = (train.to_string(), val.to_string(), test.to_string());
    let args = [
        "data",
        "synth",
        "--out",
        "data",
        "--classes",
        "3",
        "--size",
        "8",
        "--train",
        &train,
        "--val",
        &val,
        "--test",
        &test,
    ];
    let out = sweep(dir, &args);
    assert!(out.status.success(), "{}", text(&out).1);
}

/// A one-trial sweep named `name` (as written in TOML, escapes and all): a one-epoch MLP on
/// a tiny synthetic set, on the CPU, with `rest` appended from line 17 on (`[grid]`, …).
pub fn tiny_sweep_file(name: &str, rest: &str) -> String {
    format!(
        r#"name = "{name}"

[data]
synthetic = {{ classes = 2, size = 8, train = 8, val = 4, test = 2, seed = 1 }}

[model]
arch = "mlp"
neurons = 4
hidden = [4]

[train]
epochs = 1
batch_size = 4

[run]
devices = "cpu"
{rest}"#
    )
}

/// Stops (SIGSTOP) every trial process of the scheduler `pid`, so that none can finish while
/// the test acts; returns the ones that were still alive (SIGCONT lets them go on).
pub fn freeze_trials(pid: u32) -> Vec<u32> {
    let trials = children_of(pid);
    for &child in &trials {
        signal(child, libc::SIGSTOP);
    }
    // SIGSTOP takes effect asynchronously: wait until each is stopped (or was already gone).
    wait_until("every trial process to stop (SIGSTOP)", || {
        trials
            .iter()
            .all(|&c| matches!(process_state(c), None | Some('T' | 'Z' | 'X')))
            .then_some(())
    });
    trials
        .into_iter()
        .filter(|&c| process_state(c) == Some('T'))
        .collect()
}

/// Starts `sweep run FILE --db sweep.db` in `dir` (stderr piped, for its end).
pub fn spawn_run(dir: &Path, file: &str) -> Child {
    Command::new(sweep_bin())
        .args(["run", file, "--db", "sweep.db"])
        .current_dir(dir)
        .env("RAYON_NUM_THREADS", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
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
    /// Its recorded epochs' numbers, in order.
    pub epochs: Vec<i64>,
    /// The same epochs' rows.
    pub metrics: Vec<sweep_store::EpochRow>,
}

/// How long a test waits for a state before it fails: generous, so that a loaded machine
/// only makes the suite slower, never red.
pub const DEADLINE: Duration = Duration::from_secs(300);

/// Waits until `ready` holds for the sweep's stored trials (a database not created or not
/// migrated yet holds nothing), which the sweep `run` writes: panics if `run` ends first,
/// with what it printed on stderr, or after the deadline, saying it waited for `what`, with
/// the trials it saw last.
pub fn wait_for(
    what: &str,
    run: &mut Child,
    db: &Path,
    sweep: &str,
    ready: impl Fn(&[StoredTrial]) -> bool,
) -> Vec<StoredTrial> {
    let mut last = Vec::new();
    poll(what, || {
        if let Ok(trials) = try_stored_trials(db, sweep) {
            if ready(&trials) {
                return Ok(trials);
            }
            last = trials;
        }
        if let Some(status) = run.try_wait().expect("the run's status can be read") {
            let mut stderr = String::new();
            if let Some(mut pipe) = run.stderr.take() {
                let _ = pipe.read_to_string(&mut stderr);
            }
            panic!("the run ended ({status}) before {what}; its stderr:\n{stderr}");
        }
        let seen: Vec<String> = last
            .iter()
            .map(|t| {
                format!(
                    "trial {} {:?} at epoch {}",
                    t.row.id,
                    t.row.status,
                    t.epochs.len()
                )
            })
            .collect();
        let seen = if seen.is_empty() {
            "no trials".to_string()
        } else {
            seen.join(", ")
        };
        Err(format!("; sweep `{sweep}` last had: {seen}"))
    })
}

/// Polls `state` until it gives a value, or panics after the deadline saying it waited for
/// `what`.
pub fn wait_until<T>(what: &str, mut state: impl FnMut() -> Option<T>) -> T {
    poll(what, || state().ok_or_else(String::new))
}

/// Polls `state` until it gives a value, or panics after the deadline saying it waited for
/// `what` and what `state` saw last.
fn poll<T>(what: &str, mut state: impl FnMut() -> Result<T, String>) -> T {
    let started = Instant::now();
    loop {
        let seen = match state() {
            Ok(value) => return value,
            Err(seen) => seen,
        };
        assert!(
            started.elapsed() < DEADLINE,
            "waited {} s for {what}{seen}",
            DEADLINE.as_secs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads a sweep's trials (in grid order) and their epoch numbers from the database.
pub fn stored_trials(db: &Path, sweep: &str) -> Vec<StoredTrial> {
    try_stored_trials(db, sweep).unwrap_or_else(|e| panic!("{}: {e}", db.display()))
}

/// [`stored_trials`] for a database that may not be ready yet: a test polling a running
/// sweep can find the file before its schema is written.
pub fn try_stored_trials(db: &Path, sweep: &str) -> Result<Vec<StoredTrial>, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let pool = sweep_store::open_read_only(db)
            .await
            .map_err(|e| e.to_string())?;
        let read = async {
            let Some(id) = sweep_store::find_sweep(&pool, sweep).await? else {
                return Ok(Vec::new());
            };
            let mut out = Vec::new();
            for row in sweep_store::trials(&pool, id).await? {
                let epochs = sweep_store::epochs(&pool, sweep_store::TrialId(row.id)).await?;
                out.push(StoredTrial {
                    row,
                    epochs: epochs.iter().map(|e| e.epoch).collect(),
                    metrics: epochs,
                });
            }
            Ok::<_, sweep_store::StoreError>(out)
        };
        let result = read.await.map_err(|e| e.to_string());
        pool.close().await;
        result
    })
}

/// A trial's folder under a results folder.
pub fn trial_dir(results: &Path, sweep: &str, trial: &sweep_store::TrialRow) -> PathBuf {
    results
        .join(sweep)
        .join("trials")
        .join(&trial.config_hash[..16])
}

/// The epochs a checkpoint file holds, as its metadata lists them (none without the file).
pub fn checkpoint_history(path: &Path) -> Vec<serde_json::Value> {
    let Ok(bytes) = std::fs::read(path) else {
        return Vec::new();
    };
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).expect("a checkpoint");
    let meta = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get("sweep"))
        .expect("a sweep checkpoint has its metadata");
    let meta: serde_json::Value = serde_json::from_str(meta).expect("its metadata is JSON");
    meta["history"].as_array().cloned().unwrap_or_default()
}

/// The number of finished epochs that a trial folder's last checkpoint holds (0 without one).
pub fn checkpoint_epochs(dir: &Path) -> usize {
    checkpoint_history(&dir.join("last.safetensors")).len()
}

/// The trial folder of a `sweep trial DIR …` process, from its command line and working
/// directory.
pub fn trial_dir_of_process(pid: u32) -> Option<PathBuf> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let mut args = cmdline
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a));
    args.find(|a| a == "trial")?;
    let dir = PathBuf::from(args.next()?.as_ref());
    // A relative folder is relative to the process's working directory.
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok()?;
    Some(cwd.join(dir))
}

/// The state letter of a process (`R`, `S`, `T` for stopped, `Z` for exited), if it exists:
/// `T` only once every one of its threads is stopped. SIGSTOP stops a process thread by
/// thread, and a thread busy in a system call (SQLite committing, say) finishes it first.
pub fn process_state(pid: u32) -> Option<char> {
    let state = |stat: String| stat.rsplit_once(") ")?.1.chars().next();
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let states: Vec<char> = tasks
        .filter_map(|task| state(std::fs::read_to_string(task.ok()?.path().join("stat")).ok()?))
        .collect();
    states
        .iter()
        .copied()
        .find(|&s| s != 'T')
        .or(states.first().copied())
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

/// Where a test keeps what a person should look at after CI (screenshots): `results/` of
/// the workspace, which git ignores.
pub fn artifacts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../results/test-artifacts")
        .to_path_buf()
}

/// The rows of a table that `sweep ls`, `show` or `query` printed (a header, a line of
/// dashes, the rows), each as column name → cell. Cells may hold spaces: each column starts
/// where its name does.
pub fn parse_table(text: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut lines = text.lines();
    let header: Vec<char> = lines.next().unwrap_or_default().chars().collect();
    let mut starts: Vec<usize> = (0..header.len())
        .filter(|&i| header[i] != ' ' && (i == 0 || header[i - 1] == ' '))
        .collect();
    let names: Vec<String> = starts
        .iter()
        .map(|&s| header[s..].iter().take_while(|c| **c != ' ').collect())
        .collect();
    starts.push(usize::MAX);
    lines
        .skip(1)
        .filter(|line| !line.is_empty())
        .map(|line| {
            let chars: Vec<char> = line.chars().collect();
            names
                .iter()
                .zip(starts.windows(2))
                .map(|(name, span)| {
                    let end = span[1].min(chars.len());
                    let cell: String = chars[span[0].min(end)..end].iter().collect();
                    (name.clone(), cell.trim().to_string())
                })
                .collect()
        })
        .collect()
}

/// The `main` of a test binary whose tests need something from outside this machine (a Slurm
/// cluster, a Chromium): runs `tests` under libtest-mimic's harness, which looks and counts
/// like Rust's own. Where `missing` says what is lacking, every test is reported as ignored
/// with that reason (Rust's own harness can only ignore a test at compile time), or as failed
/// when the environment variable `require` is `1`, as in CI. `threads` is how many run at
/// once unless `--test-threads` says otherwise.
pub fn run_needing(
    require: &str,
    missing: Option<String>,
    threads: usize,
    tests: &[(&'static str, fn())],
) -> ! {
    use libtest_mimic::{Arguments, Completion, Failed, Trial};
    let required = std::env::var(require).as_deref() == Ok("1");
    let trials = tests
        .iter()
        .map(|&(name, test)| {
            let missing = missing.clone();
            let require = require.to_string();
            Trial::ignorable_test(name, move || match missing {
                None => {
                    test();
                    Ok(Completion::Completed)
                }
                Some(reason) if required => Err(Failed::from(format!("{require}=1, but {reason}"))),
                Some(reason) => Ok(Completion::ignored_with(reason)),
            })
        })
        .collect();
    let mut args = Arguments::from_args();
    args.test_threads.get_or_insert(threads);
    libtest_mimic::run(&args, trials).exit()
}

/// `(name, function)` pairs of test functions for [`run_needing`].
#[macro_export]
macro_rules! tests {
    ($($test:path),* $(,)?) => {
        &[$((stringify!($test), $test as fn())),*]
    };
}
