//! The scheduler: [`run_sweep`] records a sweep's trials, then runs them (`sweep trial DIR`)
//! as child processes on its device [`Slot`]s or as Slurm jobs, records their events, and
//! stops cleanly on Ctrl-C. It is the only writer of the database; trials are claimed
//! atomically, so several local `sweep run`s on one database share the work, while a Slurm
//! sweep is followed by one runner at a time, which re-attaches to the jobs of the last.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sweep_model::cache;
use sweep_model::data::DataError;
use sweep_model::Objective;
use sweep_store::{
    self as store, ClaimedTrial, Decision, Ending, NewTrial, StoreError, SweepId, TrialId,
    TrialStatus,
};
use tokio::sync::mpsc;

use crate::dispatcher::{self, Action, Event, State};
use crate::launch::{Exit, FromTrial, Launcher, LocalProcess, Reports, Running, SubmitError};
use crate::prune::{self, TrialView};
use crate::slots::{plan_slots, Slot};
use crate::slurm::SlurmLauncher;
use crate::sweep_file::{expand_grid, DataSource, Devices, Executor, Prune, SweepFile};
use crate::trial::CONFIG_FILE;
use sweep_model::TrialEvent;

/// A running trial without a heartbeat for this long belongs to a dead runner.
const STALE_AFTER: Duration = Duration::from_secs(60);
/// How often a runner tells the database it is alive.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);

/// Why a sweep could not run.
///
/// A variant that holds another error either says its text and has no `source`, or is
/// `transparent`: no part of an error's chain repeats another.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("{path}: the data folder is missing. Put the competition's files there (train.csv, val.csv, test.csv, train_images/, val_images/, test_images/), or try sweep on the built-in synthetic data: `sweep run sweeps/quick.toml`")]
    NoData { path: PathBuf },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// Nothing was submitted, and no trial is left running.
    #[error("{0}; nothing was submitted")]
    Submit(SubmitError),
    #[error("sweep `{sweep}` is followed by another `sweep run` ({holder}), which is alive: it alone writes the database; wait for it, stop it, or follow the sweep with `sweep show {sweep}`")]
    Attached { sweep: String, holder: String },
    #[error(transparent)]
    Name(#[from] crate::sweep_name::UnsafeName),
    #[error("the Slurm executor needs Slurm: sbatch is not on the PATH or no controller answers squeue (run sweep on a login node of the cluster, or use `--executor local`)")]
    NoSlurm,
}

impl RunError {
    /// Whether the user's input is at fault (the cli exits 2 for it, 1 for any other failure).
    /// A match with no catch-all: a new variant must be decided here.
    pub fn is_bad_input(&self) -> bool {
        match self {
            RunError::Data(e) => e.is_bad_input(),
            RunError::Store(e) => e.is_bad_input(),
            RunError::Submit(e) => e.is_bad_input(),
            RunError::Name(e) => e.is_bad_input(),
            RunError::NoData { .. } | RunError::Attached { .. } | RunError::NoSlurm => true,
            RunError::Io { .. } => false,
        }
    }
}

impl From<SubmitError> for RunError {
    fn from(error: SubmitError) -> Self {
        RunError::Submit(error)
    }
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
    /// The executor instead of the file's `run.executor`.
    pub executor: Option<Executor>,
    /// Slurm: return once the trials are submitted (`--detach`).
    pub detach: bool,
    /// Slurm: follow the jobs already submitted and submit nothing (`sweep attach`).
    pub follow_only: bool,
}

/// What a run tells its display as it goes.
#[derive(Debug, Clone)]
pub enum Update {
    /// The sweep is recorded: `total` trials, so many of each status (those it has, in
    /// [`TrialStatus::ALL`]'s order), `to_run` of them not ended (paused ones included: their
    /// rung's decision may send them on), on these slots.
    Planned {
        sweep: String,
        total: usize,
        counts: Vec<(TrialStatus, usize)>,
        to_run: usize,
        slots: Vec<Slot>,
    },
    /// A trial process started.
    TrialStarted {
        trial: TrialId,
        /// The trial's number within its sweep, as users see it.
        number: i64,
        params: store::Params,
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
    /// A rung was decided: `promoted` paused trials go on, `stopped` end there.
    Pruned { promoted: usize, stopped: usize },
    /// Slurm: `trials` trials were submitted as `arrays` job arrays in `seconds`.
    Submitted {
        trials: usize,
        arrays: Vec<String>,
        seconds: f64,
    },
    /// Slurm: the run re-attached to `jobs` jobs submitted earlier.
    Attached { jobs: usize },
    /// Slurm: the run stops following; `jobs` jobs go on without it.
    Detached { jobs: usize },
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
    /// For a sweep that prunes: the epochs its trials trained, and a full grid's.
    pub pruned: Option<PrunedEpochs>,
}

/// The epochs a pruned sweep trained, against a full grid's.
#[derive(Debug, Clone, Copy)]
pub struct PrunedEpochs {
    pub trained: usize,
    pub full: usize,
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
    let until_epoch = file
        .prune
        .and_then(|p| prune::first_until(&p, file.train.epochs));
    expand_grid(file)
        .into_iter()
        .map(|t| NewTrial {
            until_epoch,
            grid_index: t.grid_index as i64,
            summary: t.config.summary(t.params),
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

/// Records the sweep, runs its unfinished trials on the slots until none is left or Ctrl-C,
/// and returns the sweep's state. The file must have passed validation, and its data
/// [`prepare_data`].
pub async fn run_sweep(
    file: &SweepFile,
    options: &RunOptions,
    updates: mpsc::UnboundedSender<Update>,
) -> Result<RunSummary, RunError> {
    let started = Instant::now();
    let results = std::path::absolute(&options.results).map_err(|error| RunError::Io {
        path: options.results.clone(),
        error,
    })?;
    // The file's reader checked the name; this is the second line of defence, before
    // anything is written.
    let sweep_dir = crate::sweep_name::folder(&results, &file.name)?;
    let pool = store::open(&options.db).await?;
    let sweep = store::record_sweep(
        &pool,
        &file.name,
        &file.path.display().to_string(),
        &file.text,
        &new_trials(file),
    )
    .await?;
    if file.prune.is_none() {
        store::unprune(&pool, sweep).await?;
    }
    if options.retry_failed {
        store::retry_failed(&pool, sweep).await?;
    }
    let runner = runner_name();
    let host = runner.split(':').next().unwrap_or_default().to_string();
    let executor = options.executor.unwrap_or(file.run.executor);
    let trials_dir = sweep_dir.join("trials");
    let slurm = match executor {
        Executor::Local => None,
        Executor::Slurm => {
            if !crate::slurm::available() {
                return Err(RunError::NoSlurm);
            }
            let holder = store::attach_sweep(&pool, sweep, &runner, STALE_AFTER, |h| {
                runner_is_dead_here(h, &host)
            })
            .await?;
            if let Some(holder) = holder {
                return Err(RunError::Attached {
                    sweep: file.name.clone(),
                    holder,
                });
            }
            Some(SlurmLauncher::new(
                file.run.slurm.clone(),
                options.exe.clone(),
                results.join("cache"),
                &file.name,
                &sweep_dir,
            ))
        }
    };
    let outcome = run_trials(
        file,
        options,
        &pool,
        sweep,
        &runner,
        &trials_dir,
        slurm.as_ref(),
        updates,
        started,
    )
    .await;
    if slurm.is_some() {
        store::detach_sweep(&pool, sweep, &runner).await?;
    }
    store::close(pool).await;
    outcome
}

/// Runs the sweep's trials with the executor (Slurm when `slurm` is given) until none is
/// left, Ctrl-C, or (Slurm) the run detaches.
#[allow(clippy::too_many_arguments)]
async fn run_trials(
    file: &SweepFile,
    options: &RunOptions,
    pool: &store::Pool,
    sweep: SweepId,
    runner: &str,
    trials_dir: &Path,
    slurm: Option<&SlurmLauncher>,
    updates: mpsc::UnboundedSender<Update>,
    started: Instant,
) -> Result<RunSummary, RunError> {
    let host = runner.split(':').next().unwrap_or_default().to_string();
    for (trial, holder) in store::running_trials(pool, sweep).await? {
        if runner_is_dead_here(&holder, &host) {
            store::release_trial(pool, trial, &holder).await?;
        }
    }
    let attached = match slurm {
        Some(_) => store::take_over_submitted(pool, sweep, runner).await?,
        None => Vec::new(),
    };
    let rows = store::trials(pool, sweep).await?;
    let to_run = rows.iter().filter(|t| !t.status.is_final()).count();
    let slots = match slurm {
        // Slurm places and throttles the jobs: every trial to run gets a slot at once.
        Some(slurm) => {
            let claimable = if options.follow_only {
                0
            } else {
                rows.iter()
                    .filter(|t| !t.status.is_final() && t.status != TrialStatus::Running)
                    .count()
            };
            vec![slurm.slot(); (attached.len() + claimable).max(1)]
        }
        None => {
            let devices = options
                .devices
                .clone()
                .unwrap_or_else(|| file.run.devices.clone());
            let per_device = options.jobs.unwrap_or(file.run.trials_per_device);
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            plan_slots(&devices, per_device, options.gpus, cores)
        }
    };
    let counts = TrialStatus::ALL
        .into_iter()
        .map(|s| (s, rows.iter().filter(|t| t.status == s).count()))
        .filter(|&(_, n)| n > 0)
        .collect();
    let _ = updates.send(Update::Planned {
        sweep: file.name.clone(),
        total: rows.len(),
        counts,
        to_run,
        slots: slots.clone(),
    });

    let (reports, mut heard) = mpsc::unbounded_channel();
    let local = LocalProcess {
        exe: options.exe.clone(),
        cache_dir: options.results.join("cache"),
    };
    let launcher: &dyn Launcher = match slurm {
        Some(slurm) => slurm,
        None => &local,
    };
    let mut run = Run {
        pool,
        sweep,
        runner,
        trials_dir: trials_dir.to_path_buf(),
        slots: &slots,
        prune: file.prune,
        epochs: file.train.epochs,
        objective: file.train.objective,
        launcher,
        slurm,
        attached: HashMap::new(),
        unsubmitted: Vec::new(),
        updates: &updates,
        reports,
        running: HashMap::new(),
        trial_seconds: 0.0,
        first_error: None,
    };
    let pruning = prune::pruning(file.prune.as_ref());
    let mut state = State::new(slots.len(), file.run.max_retries, pruning);
    if options.follow_only {
        state = state.following_only();
    }
    let mut heartbeat = tokio::time::interval(HEARTBEAT_EVERY);
    // One listener for the whole run: `tokio::signal::ctrl_c()` made anew in each turn of the
    // loop would miss a Ctrl-C that came while the runner was writing to the database (and
    // once tokio handles SIGINT, a missed one is lost, not fatal).
    let mut interrupts = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|error| RunError::Io {
            path: PathBuf::from("SIGINT"),
            error,
        })?;
    if !attached.is_empty() {
        let _ = updates.send(Update::Attached {
            jobs: attached.len(),
        });
    }
    let mut events: VecDeque<Event> = attached
        .into_iter()
        .enumerate()
        .map(|(slot, submitted)| {
            run.attached.insert(submitted.trial.id, submitted.clone());
            Event::Attach {
                slot,
                trial: submitted.trial,
            }
        })
        .collect();
    events.push_back(Event::Begin);
    let mut detached = false;
    loop {
        while let Some(event) = events.pop_front() {
            for action in dispatcher::handle(&mut state, event.clone()) {
                events.extend(run.perform(action).await);
            }
            if event == Event::CtrlC {
                let _ = updates.send(Update::Stopping {
                    level: state.stopping(),
                });
            }
        }
        run.submit().await?;
        if state.finished() || detached {
            break;
        }
        if slurm.is_some() && options.detach {
            detached = true;
            break;
        }
        tokio::select! {
            Some((trial, from)) = heard.recv() => events.push_back(match from {
                FromTrial::Event(event) => {
                    let _ = updates.send(Update::Event { trial, event: event.clone() });
                    Event::Reported { trial, event }
                }
                FromTrial::Ended(exit) => Event::Ended { trial, exit },
            }),
            // Ctrl-C leaves a Slurm sweep's jobs running: the run stops following them, and
            // `sweep attach` (or `sweep run`) follows them again.
            Some(()) = interrupts.recv(), if slurm.is_some() || state.stopping() < 2 => {
                if slurm.is_some() {
                    detached = true;
                } else {
                    events.push_back(Event::CtrlC);
                }
            }
            _ = heartbeat.tick() => events.push_back(Event::Tick),
        }
    }
    if detached {
        let _ = updates.send(Update::Detached {
            jobs: run.running.len(),
        });
    }
    if let Some(e) = run.first_error {
        return Err(e);
    }
    let trial_seconds = run.trial_seconds;
    let trials = store::trials(pool, sweep).await?;
    let pruned = match file.prune {
        Some(_) => Some(PrunedEpochs {
            trained: store::sweep_epochs(pool, sweep)
                .await?
                .values()
                .map(Vec::len)
                .sum(),
            full: trials.len() * file.train.epochs as usize,
        }),
        None => None,
    };
    Ok(RunSummary {
        sweep,
        trials,
        launched: state.launched(),
        interrupted: state.stopping() > 0 || detached,
        wall_seconds: started.elapsed().as_secs_f64(),
        trial_seconds,
        slots: slots.len(),
        pruned,
    })
}

/// What the runner needs to perform the dispatcher's actions, and what they leave behind.
struct Run<'a> {
    pool: &'a store::Pool,
    sweep: SweepId,
    runner: &'a str,
    /// Where trial folders go: `<results>/<sweep>/trials/`.
    trials_dir: PathBuf,
    slots: &'a [Slot],
    /// How the sweep prunes, its epochs, and the objective it ranks by.
    prune: Option<Prune>,
    epochs: u32,
    objective: Objective,
    launcher: &'a dyn Launcher,
    /// The Slurm launcher, which also re-attaches to jobs, when the sweep runs on Slurm.
    slurm: Option<&'a SlurmLauncher>,
    /// The trials re-attached to (their jobs and where their events begin).
    attached: HashMap<TrialId, store::SubmittedTrial>,
    /// Trials launched on Slurm and not submitted yet.
    unsubmitted: Vec<TrialId>,
    updates: &'a mpsc::UnboundedSender<Update>,
    /// Where launched trials report.
    reports: Reports,
    /// The running trials, and when each started.
    running: HashMap<TrialId, (Box<dyn Running>, Instant)>,
    /// The summed wall time of the trials that ended.
    trial_seconds: f64,
    /// The first action that failed; the run stops and returns it.
    first_error: Option<RunError>,
}

impl Run<'_> {
    /// Performs `action`; returns what it leads to (a claim's answer, or an abort when the
    /// action failed).
    async fn perform(&mut self, action: Action) -> Vec<Event> {
        let claimed_slot = match &action {
            Action::Claim { slot } => Some(*slot),
            _ => None,
        };
        match self.try_perform(action).await {
            Ok(event) => event.into_iter().collect(),
            Err(e) => {
                self.first_error.get_or_insert(e);
                // A failed claim leaves its slot without work.
                let answer = claimed_slot.map(|slot| Event::Claimed { slot, trial: None });
                answer.into_iter().chain([Event::Abort]).collect()
            }
        }
    }

    async fn try_perform(&mut self, action: Action) -> Result<Option<Event>, RunError> {
        match action {
            Action::Claim { slot } => {
                let device = self.slots[slot].device.to_string();
                let trial =
                    store::claim_trial(self.pool, self.sweep, self.runner, &device, STALE_AFTER)
                        .await?;
                return Ok(Some(Event::Claimed { slot, trial }));
            }
            Action::Launch { slot, trial } => return Ok(self.launch(slot, &trial)),
            Action::Follow { slot, trial } => self.follow(slot, &trial),
            Action::Record { trial, epochs } => {
                store::record_epochs(self.pool, trial, &epochs).await?;
            }
            Action::Rewind {
                trial,
                epochs,
                note,
            } => {
                store::rewind_trial(self.pool, trial, &epochs, note.as_deref()).await?;
            }
            Action::End { trial, ending } => {
                let result = store::end_trial(self.pool, trial, &ending).await;
                let seconds = self
                    .running
                    .remove(&trial)
                    .map_or(0.0, |(_, started)| started.elapsed().as_secs_f64());
                self.trial_seconds += seconds;
                let error = match &ending {
                    Ending::Failed { error, .. } => Some(error.clone()),
                    _ => None,
                };
                let _ = self.updates.send(Update::TrialEnded {
                    trial,
                    status: ending.status(),
                    error,
                    seconds,
                });
                result?;
            }
            Action::Stop { trial, how } => {
                if let Some((running, _)) = self.running.get(&trial) {
                    running.stop(how);
                }
            }
            Action::Heartbeat => store::heartbeat(self.pool, self.runner).await?,
            Action::Prune => {
                let decisions = self.decide(None).await?;
                let (promoted, stopped) = store::apply_decisions(self.pool, &decisions).await?;
                if promoted + stopped > 0 {
                    let _ = self.updates.send(Update::Pruned { promoted, stopped });
                }
                return Ok(Some(Event::Pruned { promoted }));
            }
            Action::Judge { trial, epoch } => {
                let decisions = self.decide(Some((trial, epoch))).await?;
                for decision in &decisions {
                    store::record_decision(self.pool, decision).await?;
                }
                let stop_after = (!decisions.is_empty()).then_some(epoch);
                return Ok(Some(Event::Judged { trial, stop_after }));
            }
        }
        Ok(None)
    }

    /// The pruning decisions the sweep's records call for (about `judged`, for the median
    /// rule).
    async fn decide(&self, judged: Option<(TrialId, u32)>) -> Result<Vec<Decision>, RunError> {
        let Some(prune) = &self.prune else {
            return Ok(Vec::new());
        };
        let rows = store::trials(self.pool, self.sweep).await?;
        let epochs = store::sweep_epochs(self.pool, self.sweep).await?;
        let views: Vec<TrialView> = rows
            .iter()
            .map(|t| TrialView {
                id: TrialId(t.id),
                grid_index: t.grid_index,
                status: t.status,
                until_epoch: t.until_epoch,
                epochs: epochs.get(&t.id).map_or(&[], Vec::as_slice),
            })
            .collect();
        Ok(prune::decide(
            prune,
            self.epochs,
            self.objective,
            &views,
            judged,
        ))
    }

    /// Writes the trial's folder and configuration and launches it; a trial that cannot
    /// start ends at once.
    fn launch(&mut self, slot: usize, trial: &ClaimedTrial) -> Option<Event> {
        let slot = &self.slots[slot];
        let dir = self.trials_dir.join(&trial.config_hash[..16]);
        let _ = self.updates.send(Update::TrialStarted {
            trial: trial.id,
            number: trial.number,
            params: trial.summary.params.clone(),
            device: slot.device.to_string(),
            epochs: trial.summary.epochs,
        });
        let config = dir.join(CONFIG_FILE);
        let written = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(&config, &trial.config))
            .map_err(|e| format!("{}: {e}", config.display()));
        if let Err(reason) = written {
            self.running
                .insert(trial.id, (Box::new(NotStarted), Instant::now()));
            return Some(Event::Ended {
                trial: trial.id,
                exit: Exit::not_started(reason),
            });
        }
        if self.slurm.is_some() {
            self.unsubmitted.push(trial.id);
        }
        let running = self.launcher.launch(
            trial.id,
            &dir,
            slot,
            trial.until_epoch,
            self.reports.clone(),
        );
        self.running.insert(trial.id, (running, Instant::now()));
        None
    }
}

impl Run<'_> {
    /// Follows a trial whose job an earlier run submitted.
    fn follow(&mut self, slot: usize, trial: &ClaimedTrial) {
        let dir = self.trials_dir.join(&trial.config_hash[..16]);
        let (Some(slurm), Some(submitted)) = (self.slurm, self.attached.remove(&trial.id)) else {
            return;
        };
        let _ = self.updates.send(Update::TrialStarted {
            trial: trial.id,
            number: trial.number,
            params: trial.summary.params.clone(),
            device: self.slots[slot].device.to_string(),
            epochs: trial.summary.epochs,
        });
        let running = slurm.attach(
            trial.id,
            &dir,
            &submitted.slurm_job,
            submitted.events_offset.max(0) as u64,
            self.reports.clone(),
        );
        self.running.insert(trial.id, (running, Instant::now()));
    }

    /// Submits what the launcher queued and records each trial's job; when the submission
    /// fails, the trials go back to the queue unrun and the run ends with the error.
    async fn submit(&mut self) -> Result<(), RunError> {
        let started = Instant::now();
        match self.launcher.submit() {
            Ok(submitted) if submitted.is_empty() => Ok(()),
            Ok(submitted) => {
                self.unsubmitted.clear();
                for s in &submitted {
                    store::record_slurm_job(self.pool, s.trial, &s.job, s.events_offset).await?;
                }
                let mut arrays: Vec<String> = submitted
                    .iter()
                    .filter_map(|s| s.job.split('_').next().map(str::to_string))
                    .collect();
                arrays.dedup();
                let _ = self.updates.send(Update::Submitted {
                    trials: submitted.len(),
                    arrays,
                    seconds: started.elapsed().as_secs_f64(),
                });
                Ok(())
            }
            Err(e) => {
                for trial in std::mem::take(&mut self.unsubmitted) {
                    store::unclaim_trial(self.pool, trial).await?;
                    self.running.remove(&trial);
                }
                Err(e.into())
            }
        }
    }
}

/// A trial that could not be started: nothing to stop.
struct NotStarted;

impl Running for NotStarted {
    fn stop(&self, _: crate::launch::Stop) {}
}

#[cfg(test)]
mod tests {
    use super::*;

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
