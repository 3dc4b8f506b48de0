//! The scheduler: [`run_sweep`] records a sweep's trials, then runs them as child processes
//! (`sweep trial DIR`) on its device [`Slot`]s, records their events, and stops cleanly on
//! Ctrl-C. It is the only writer of the database; trials are claimed atomically, so several
//! `sweep run`s on one database share the work.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sweep_model::cache;
use sweep_model::data::DataError;
use sweep_model::EpochMetrics;
use sweep_store::{
    self as store, ClaimedTrial, Ending, EpochRow, NewTrial, StoreError, SweepId, TrialId,
    TrialStatus,
};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::{mpsc, watch};

use crate::events::TrialEvent;
use crate::slots::{plan_slots, Slot};
use crate::sweep_file::{expand_grid, DataSource, Devices, SweepFile};
use crate::trial::CONFIG_FILE;

/// A running trial without a heartbeat for this long belongs to a dead runner.
const STALE_AFTER: Duration = Duration::from_secs(60);
/// How often a runner tells the database it is alive.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);
/// Lines of a failed trial's stderr kept in its error.
const STDERR_TAIL: usize = 20;

/// Why a sweep could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("{path}: the data folder is missing. Put the competition's files there (train.csv, val.csv, test.csv, train_images/, val_images/, test_images/), or try sweep on the built-in synthetic data: `sweep run sweeps/quick.toml`")]
    NoData { path: PathBuf },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where a run reads and writes, and what overrides the sweep file.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub db: PathBuf,
    /// The results folder: trials go to `<results>/<sweep>/trials/<hash>/`, the data cache
    /// to `<results>/cache/`.
    pub results: PathBuf,
    pub devices: Option<Devices>,
    /// Trials per device, instead of the file's `trials_per_device`.
    pub jobs: Option<usize>,
    /// The `sweep` binary that runs trials.
    pub exe: PathBuf,
    /// The number of visible GPUs.
    pub gpus: usize,
    /// Put the sweep's failed trials back in the queue first (`--retry-failed`).
    pub retry_failed: bool,
}

/// What a run tells its display as it goes.
#[derive(Debug, Clone)]
pub enum Update {
    /// The sweep is recorded: `total` trials, `to_run` of them not done, on these slots.
    Planned {
        sweep: String,
        total: usize,
        to_run: usize,
        slots: Vec<Slot>,
    },
    /// A trial process started.
    TrialStarted {
        trial: TrialId,
        /// The trial's number within its sweep, as users see it.
        number: i64,
        params: String,
        device: String,
        epochs: u32,
    },
    /// A trial process reported an event.
    Event { trial: TrialId, event: TrialEvent },
    /// A trial process ended; `status` is what the database now says.
    TrialEnded {
        trial: TrialId,
        status: TrialStatus,
        error: Option<String>,
        seconds: f64,
    },
    /// Ctrl-C: `1` stops launching and asks trials to stop, `2` kills them.
    Stopping { level: u8 },
}

/// The end of a run.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub sweep: SweepId,
    pub trials: Vec<store::TrialRow>,
    /// Trial processes started by this run.
    pub launched: usize,
    pub interrupted: bool,
    pub wall_seconds: f64,
    /// The summed wall time of this run's trial processes.
    pub trial_seconds: f64,
    pub slots: usize,
}

impl RunSummary {
    /// How many trials have `status`.
    pub fn count(&self, status: TrialStatus) -> usize {
        self.trials.iter().filter(|t| t.status == status).count()
    }
}

/// Decodes a data folder into the cache before any trial starts (so trials only map it and
/// bad data is reported before anything is written). Synthetic data needs nothing.
pub fn prepare_data(file: &SweepFile, results: &Path) -> Result<(), RunError> {
    if let DataSource::Dir(dir) = &file.data {
        if !dir.exists() {
            return Err(RunError::NoData { path: dir.clone() });
        }
        cache::load(dir, &results.join("cache"), file.classes)?;
    }
    Ok(())
}

/// The trials of the file as database rows.
fn new_trials(file: &SweepFile) -> Vec<NewTrial> {
    expand_grid(file)
        .into_iter()
        .map(|t| NewTrial {
            grid_index: t.grid_index as i64,
            params: serde_json::to_string(&t.params).expect("params serialise"),
            config: serde_json::to_string(&t.config).expect("configs serialise"),
            config_hash: t.hash,
        })
        .collect()
}

/// This process's name in the database: host, pid and start time.
fn runner_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("{host}:{}:{started}", std::process::id())
}

/// Whether the runner named `runner` is a process of this host that no longer exists.
fn runner_is_dead_here(runner: &str, host: &str) -> bool {
    let mut parts = runner.split(':');
    let (Some(h), Some(pid)) = (
        parts.next(),
        parts.next().and_then(|p| p.parse::<i32>().ok()),
    ) else {
        return false;
    };
    if h != host {
        return false;
    }
    // SAFETY: kill with signal 0 only checks that the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    !alive
}

/// What a finished trial process amounts to, from what it reported and how it exited.
#[derive(Debug, Default)]
pub struct Report {
    pub finished: Option<TrialEvent>,
    pub failed: Option<String>,
    pub interrupted: bool,
    pub stderr_tail: VecDeque<String>,
}

/// Decides how a trial ended; no I/O, so every case is a unit test.
pub fn decide_ending(
    report: &Report,
    exit: Option<i32>,
    signal: Option<i32>,
    attempts: i64,
    max_retries: u32,
    stopping: bool,
) -> Ending {
    if let Some(TrialEvent::Finished {
        best_epoch,
        objective,
        checkpoint,
        confusion,
    }) = &report.finished
    {
        return Ending::Done {
            best_epoch: *best_epoch as i64,
            objective: *objective,
            checkpoint: checkpoint.display().to_string(),
            confusion: confusion.counts.clone(),
            classes: confusion.classes,
        };
    }
    if report.interrupted || (stopping && report.failed.is_none()) {
        return Ending::Interrupted;
    }
    let mut error = match (&report.failed, exit, signal) {
        (Some(reason), _, _) => reason.clone(),
        (None, _, Some(sig)) => format!("the trial process was killed by signal {sig}"),
        (None, Some(code), _) => format!("the trial process exited with status {code}"),
        (None, None, None) => "the trial process ended without a result".into(),
    };
    if report.failed.is_none() && !report.stderr_tail.is_empty() {
        error.push_str("\nstderr:\n");
        error.push_str(
            &report
                .stderr_tail
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join("\n"),
        );
    }
    Ending::Failed {
        error,
        retry: attempts <= max_retries as i64,
    }
}

/// What every slot worker shares.
struct Context {
    pool: store::Pool,
    sweep: SweepId,
    sweep_dir: PathBuf,
    cache_dir: PathBuf,
    runner: String,
    exe: PathBuf,
    max_retries: u32,
    updates: mpsc::UnboundedSender<Update>,
}

/// Records the sweep, runs its unfinished trials on the slots until none is left or Ctrl-C,
/// and returns the sweep's state. The file must have passed validation, and its data
/// [`prepare_data`].
pub async fn run_sweep(
    file: &SweepFile,
    options: &RunOptions,
    updates: mpsc::UnboundedSender<Update>,
) -> Result<RunSummary, RunError> {
    let started = Instant::now();
    let pool = store::open(&options.db).await?;
    let sweep = store::record_sweep(
        &pool,
        &file.name,
        &file.path.display().to_string(),
        &file.text,
        &new_trials(file),
    )
    .await?;
    if options.retry_failed {
        store::retry_failed(&pool, sweep).await?;
    }
    let runner = runner_name();
    let host = runner.split(':').next().unwrap_or_default().to_string();
    for (trial, holder) in store::running_trials(&pool, sweep).await? {
        if runner_is_dead_here(&holder, &host) {
            store::release_trial(&pool, trial, &holder).await?;
        }
    }
    let devices = options
        .devices
        .clone()
        .unwrap_or_else(|| file.run.devices.clone());
    let per_device = options.jobs.unwrap_or(file.run.trials_per_device);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let slots = plan_slots(&devices, per_device, options.gpus, cores);
    let rows = store::trials(&pool, sweep).await?;
    let to_run = rows
        .iter()
        .filter(|t| !matches!(t.status, TrialStatus::Done | TrialStatus::Failed))
        .count();
    let _ = updates.send(Update::Planned {
        sweep: file.name.clone(),
        total: rows.len(),
        to_run,
        slots: slots.clone(),
    });

    let context = Arc::new(Context {
        pool: pool.clone(),
        sweep,
        sweep_dir: options.results.join(&file.name),
        cache_dir: options.results.join("cache"),
        runner: runner.clone(),
        exe: options.exe.clone(),
        max_retries: file.run.max_retries,
        updates: updates.clone(),
    });
    let (stop_tx, stop_rx) = watch::channel(0u8);
    let mut workers = tokio::task::JoinSet::new();
    for slot in slots.clone() {
        workers.spawn(work(slot, context.clone(), stop_rx.clone()));
    }
    let mut heartbeat = tokio::time::interval(HEARTBEAT_EVERY);
    let mut launched = 0;
    let mut trial_seconds = 0.0;
    let mut first_error = None;
    let mut level = 0u8;
    loop {
        tokio::select! {
            joined = workers.join_next() => match joined {
                None => break,
                Some(Ok(Ok((n, seconds)))) => {
                    launched += n;
                    trial_seconds += seconds;
                }
                Some(Ok(Err(e))) => {
                    first_error.get_or_insert(e);
                    let _ = stop_tx.send(1);
                }
                Some(Err(e)) => std::panic::resume_unwind(e.into_panic()),
            },
            _ = tokio::signal::ctrl_c(), if level < 2 => {
                level += 1;
                let _ = stop_tx.send(level);
                let _ = updates.send(Update::Stopping { level });
            }
            _ = heartbeat.tick() => store::heartbeat(&pool, &runner).await?,
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    let trials = store::trials(&pool, sweep).await?;
    pool.close().await;
    Ok(RunSummary {
        sweep,
        trials,
        launched,
        interrupted: level > 0,
        wall_seconds: started.elapsed().as_secs_f64(),
        trial_seconds,
        slots: slots.len(),
    })
}

/// A slot's loop: claim a trial, run it, record how it ended; until none is left or a stop.
/// Returns the number of trials it ran and their summed wall time.
async fn work(
    slot: Slot,
    context: Arc<Context>,
    mut stop: watch::Receiver<u8>,
) -> Result<(usize, f64), RunError> {
    let mut ran = 0;
    let mut seconds = 0.0;
    while *stop.borrow() == 0 {
        let claimed = store::claim_trial(
            &context.pool,
            context.sweep,
            &context.runner,
            &slot.device,
            STALE_AFTER,
        )
        .await?;
        let Some(trial) = claimed else { break };
        let started = Instant::now();
        run_one(&slot, &trial, &context, &mut stop).await?;
        seconds += started.elapsed().as_secs_f64();
        ran += 1;
    }
    Ok((ran, seconds))
}

/// Runs one claimed trial as a child process and records its events and ending.
async fn run_one(
    slot: &Slot,
    trial: &ClaimedTrial,
    context: &Context,
    stop: &mut watch::Receiver<u8>,
) -> Result<(), RunError> {
    let started = Instant::now();
    let dir = context
        .sweep_dir
        .join("trials")
        .join(&trial.config_hash[..16]);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RunError::Io { path, source }
    };
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let config_path = dir.join(CONFIG_FILE);
    std::fs::write(&config_path, &trial.config).map_err(io(&config_path))?;
    let _ = context.updates.send(Update::TrialStarted {
        trial: trial.id,
        number: trial.number,
        params: trial.params.clone(),
        device: slot.device.clone(),
        epochs: serde_json::from_str::<crate::sweep_file::TrialConfig>(&trial.config)
            .map_or(0, |c| c.train.epochs),
    });
    let mut command = Command::new(&context.exe);
    command
        .arg("trial")
        .arg(&dir)
        .arg("--device")
        .arg(if slot.device == "cpu" {
            "cpu"
        } else {
            "cuda:0"
        })
        .arg("--cache")
        .arg(&context.cache_dir)
        .env("RAYON_NUM_THREADS", slot.threads.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(k) = slot.device.strip_prefix("cuda:") {
        command.env("CUDA_VISIBLE_DEVICES", k);
    }
    let mut report = Report::default();
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            report.failed = Some(format!("cannot start {}: {e}", context.exe.display()));
            let ending = decide_ending(
                &report,
                None,
                None,
                trial.attempts,
                context.max_retries,
                false,
            );
            return end(trial, context, ending, started).await;
        }
    };
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr is piped")).lines();
    let pid = child.id();
    let (mut stdout_open, mut stderr_open) = (true, true);
    let mut stopping = *stop.borrow() > 0;
    while stdout_open || stderr_open {
        tokio::select! {
            line = stdout.next_line(), if stdout_open => match line {
                Ok(Some(line)) => match TrialEvent::from_line(&line) {
                    Ok(event) => {
                        record(trial.id, &event, &mut report, context).await?;
                        let _ = context.updates.send(Update::Event { trial: trial.id, event });
                    }
                    Err(_) => push_tail(&mut report.stderr_tail, line),
                },
                _ => stdout_open = false,
            },
            line = stderr.next_line(), if stderr_open => match line {
                Ok(Some(line)) => push_tail(&mut report.stderr_tail, line),
                _ => stderr_open = false,
            },
            changed = stop.changed(), if !stopping || *stop.borrow() < 2 => {
                if changed.is_err() { continue; }
                let level = *stop.borrow();
                stopping = level > 0;
                if level >= 2 {
                    let _ = child.start_kill();
                } else if let Some(pid) = pid {
                    // SAFETY: sends SIGINT to our own child, which stops after its batch.
                    unsafe { libc::kill(pid as i32, libc::SIGINT) };
                }
            }
        }
    }
    let status = child.wait().await.map_err(io(&context.exe))?;
    let signal = std::os::unix::process::ExitStatusExt::signal(&status);
    let ending = decide_ending(
        &report,
        status.code(),
        signal,
        trial.attempts,
        context.max_retries,
        stopping,
    );
    end(trial, context, ending, started).await
}

fn push_tail(tail: &mut VecDeque<String>, line: String) {
    if tail.len() == STDERR_TAIL {
        tail.pop_front();
    }
    tail.push_back(line);
}

/// Stores what an event changes, and remembers what decides the ending.
async fn record(
    trial: TrialId,
    event: &TrialEvent,
    report: &mut Report,
    context: &Context,
) -> Result<(), RunError> {
    match event {
        TrialEvent::Epoch(m) => {
            store::record_epoch(&context.pool, trial, &epoch_row(m)).await?;
        }
        // A resumed trial's checkpoint may hold epochs whose events never reached the
        // database (the scheduler died after the checkpoint was written): record them all.
        TrialEvent::Started { history, .. } if !history.is_empty() => {
            let rows: Vec<EpochRow> = history.iter().map(epoch_row).collect();
            store::record_epochs(&context.pool, trial, &rows).await?;
        }
        TrialEvent::Finished { .. } => report.finished = Some(event.clone()),
        TrialEvent::Failed { reason } => report.failed = Some(reason.clone()),
        TrialEvent::Interrupted { .. } => report.interrupted = true,
        TrialEvent::Started { .. } | TrialEvent::Batch { .. } | TrialEvent::Checkpoint { .. } => {}
    }
    Ok(())
}

fn epoch_row(m: &EpochMetrics) -> EpochRow {
    EpochRow {
        epoch: m.epoch as i64,
        train_loss: m.train_loss,
        train_acc: m.train_acc,
        val_loss: m.val_loss,
        val_acc: m.val_acc,
        val_f1: m.val_f1,
        lr: m.lr,
        seconds: m.seconds,
    }
}

async fn end(
    trial: &ClaimedTrial,
    context: &Context,
    ending: Ending,
    started: Instant,
) -> Result<(), RunError> {
    store::end_trial(&context.pool, trial.id, &ending).await?;
    let error = match &ending {
        Ending::Failed { error, .. } => Some(error.clone()),
        _ => None,
    };
    let _ = context.updates.send(Update::TrialEnded {
        trial: trial.id,
        status: ending.status(),
        error,
        seconds: started.elapsed().as_secs_f64(),
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sweep_model::Confusion;

    fn finished() -> TrialEvent {
        TrialEvent::Finished {
            best_epoch: 2,
            objective: 0.5,
            checkpoint: "t/best.safetensors".into(),
            confusion: Confusion::from_labels(2, &[0, 1], &[0, 0]),
        }
    }

    #[test]
    fn a_finished_trial_is_done_whatever_follows() {
        let report = Report {
            finished: Some(finished()),
            ..Report::default()
        };
        let ending = decide_ending(&report, Some(0), None, 1, 0, true);
        assert!(
            matches!(
                ending,
                Ending::Done {
                    best_epoch: 2,
                    classes: 2,
                    ..
                }
            ),
            "finished => done: {ending:?}"
        );
    }

    #[test]
    fn a_reported_failure_keeps_its_reason_and_retries_while_attempts_remain() {
        let report = Report {
            failed: Some("diverged at epoch 1, batch 2".into()),
            ..Report::default()
        };
        let ending = decide_ending(&report, Some(1), None, 1, 1, false);
        assert_eq!(
            ending,
            Ending::Failed {
                error: "diverged at epoch 1, batch 2".into(),
                retry: true
            }
        );
        let ending = decide_ending(&report, Some(1), None, 2, 1, false);
        assert_eq!(
            ending,
            Ending::Failed {
                error: "diverged at epoch 1, batch 2".into(),
                retry: false
            }
        );
    }

    #[test]
    fn a_crash_is_a_failure_with_the_signal_and_stderr_tail() {
        let report = Report {
            stderr_tail: ["thread panicked".to_string()].into(),
            ..Report::default()
        };
        let Ending::Failed { error, retry } = decide_ending(&report, None, Some(9), 1, 0, false)
        else {
            panic!("crash => failed")
        };
        assert!(!retry);
        assert!(
            error.starts_with("the trial process was killed by signal 9"),
            "{error}"
        );
        assert!(error.ends_with("stderr:\nthread panicked"), "{error}");
        let Ending::Failed { error, .. } =
            decide_ending(&Report::default(), Some(101), None, 1, 0, false)
        else {
            panic!("bad exit => failed")
        };
        assert_eq!(error, "the trial process exited with status 101");
    }

    #[test]
    fn a_stop_request_makes_an_unfinished_trial_interrupted() {
        let report = Report {
            interrupted: true,
            ..Report::default()
        };
        assert_eq!(
            decide_ending(&report, Some(0), None, 1, 0, true),
            Ending::Interrupted
        );
        assert_eq!(
            decide_ending(&Report::default(), None, Some(9), 1, 0, true),
            Ending::Interrupted,
            "killed by a second Ctrl-C"
        );
    }

    #[test]
    fn a_runner_of_another_host_is_never_declared_dead() {
        assert!(!runner_is_dead_here("other:1:0", "here"));
        assert!(!runner_is_dead_here(
            &format!("here:{}:0", std::process::id()),
            "here"
        ));
        assert!(runner_is_dead_here("here:999999999:0", "here"));
    }
}
