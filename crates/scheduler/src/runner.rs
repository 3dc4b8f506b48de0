//! The scheduler: [`run_sweep`] records a sweep's trials, then runs them with the sweep's
//! executor ([`crate::executor`]: local child processes on device slots, or Slurm jobs),
//! records their events, and stops cleanly on Ctrl-C. It is the only writer of the database.
//! A `Run` holds one run's state: the pure [`dispatcher`] decides, the run performs its
//! actions (claims, launches, database writes, stops) and waits for what happens next. What
//! differs between executors (the slots, submitting, re-attaching, what Ctrl-C and
//! `--detach` do) is the executor's, so a run reads the same for all of them.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Instant;

use sweep_model::cache;
use sweep_store::{
    self as store, ClaimedTrial, Decision, Ending, NewTrial, SweepId, TrialId, TrialOrigin,
    TrialStatus,
};
use tokio::sync::mpsc;

use crate::dispatcher::{self, Action, Event, State};
use crate::error::RunError;
use crate::executor::local::LocalProcesses;
use crate::executor::slurm::Slurm;
use crate::executor::{Attached, Executor, Exit, FromTrial, OnCtrlC, Running, Stop, SweepRun};
use crate::liveness::{host_of, runner_is_dead_here, runner_name, HEARTBEAT_EVERY, STALE_AFTER};
use crate::program::Trainer;
use crate::prune::{self, TrialView};
use crate::slots::Slot;
use crate::suggestions::{self, Suggested};
use crate::sweep_file::TrialSpec;
use crate::sweep_file::{self, expand_grid, DataSource, Devices, SweepFile};
use crate::trial::CONFIG_FILE;
use sweep_model::TrialEvent;

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
    pub executor: Option<sweep_file::Executor>,
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
        .and_then(|p| prune::first_until(&p, file.epochs()));
    let origin = match file.random {
        Some(_) => TrialOrigin::Random,
        None => TrialOrigin::Grid,
    };
    expand_grid(file)
        .into_iter()
        .map(|t| new_trial(t, origin, until_epoch))
        .collect()
}

/// A trial of the file as a database row: what it runs, hashed and summarised once.
fn new_trial(spec: TrialSpec, origin: TrialOrigin, until_epoch: Option<i64>) -> NewTrial {
    NewTrial {
        origin,
        until_epoch,
        grid_index: spec.grid_index as i64,
        summary: spec.config.summary(spec.params),
        config: serde_json::to_string(&spec.config).expect("configs serialise"),
        config_hash: spec.hash,
    }
}

/// Records the sweep, runs its unfinished trials with its executor until none is left,
/// Ctrl-C, or the executor detaches, and returns the sweep's state. The file must have passed
/// validation, and its data [`prepare_data`].
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
    let id = store::record_sweep(
        &pool,
        &file.name,
        &file.path.display().to_string(),
        &file.text,
        &new_trials(file),
    )
    .await?;
    if file.prune.is_none() {
        store::unprune(&pool, id).await?;
    }
    if options.retry_failed {
        store::retry_failed(&pool, id).await?;
    }
    let runner = runner_name();
    let (reports, heard) = mpsc::unbounded_channel();
    let executor = executor(file, options, &sweep_dir, reports)?;
    let sweep = SweepRun {
        pool: &pool,
        id,
        name: &file.name,
        runner: &runner,
        trials_dir: sweep_dir.join("trials"),
    };
    let attached = executor.take_up(&sweep).await?;
    let run = Run {
        sweep: &sweep,
        file,
        executor: executor.as_ref(),
        program: Trainer {
            exe: options.exe.clone(),
            cache_dir: results.join("cache"),
        },
        updates,
        slots: Vec::new(),
        attached: HashMap::new(),
        unsubmitted: Vec::new(),
        running: HashMap::new(),
        trial_seconds: 0.0,
        first_error: None,
        makes_trials: !options.follow_only,
    };
    let outcome = run.run(attached, heard, options.follow_only, started).await;
    executor.let_go(&sweep).await?;
    store::close(pool).await;
    outcome
}

/// The executor that runs the sweep's trials (`--executor`, or the file's `run.executor`),
/// its trials reporting on `reports`: the one place that turns the sweep file's choice into
/// one.
fn executor(
    file: &SweepFile,
    options: &RunOptions,
    sweep_dir: &Path,
    reports: crate::executor::Reports,
) -> Result<Box<dyn Executor>, RunError> {
    Ok(match options.executor.unwrap_or(file.run.executor) {
        sweep_file::Executor::Local => Box::new(LocalProcesses::new(
            options.devices.as_ref().unwrap_or(&file.run.devices),
            options.jobs.unwrap_or(file.run.trials_per_device),
            options.gpus,
            reports,
        )),
        sweep_file::Executor::Slurm => Box::new(Slurm::new(
            file.run.slurm.clone(),
            &file.name,
            sweep_dir,
            options.detach,
            reports,
        )?),
    })
}

/// One run of a sweep's trials: what it needs to perform the dispatcher's actions, and what
/// they leave behind.
struct Run<'a> {
    sweep: &'a SweepRun<'a>,
    /// The sweep's file: how it prunes, its epochs, its objective, its retries.
    file: &'a SweepFile,
    executor: &'a dyn Executor,
    /// What each trial runs.
    program: Trainer,
    updates: mpsc::UnboundedSender<Update>,
    /// The slots, once planned.
    slots: Vec<Slot>,
    /// The trials re-attached to, until the dispatcher gives each its slot.
    attached: HashMap<TrialId, Box<dyn Running>>,
    /// Trials launched since the executor last submitted.
    unsubmitted: Vec<TrialId>,
    /// The running trials, and when each started.
    running: HashMap<TrialId, (Box<dyn Running>, Instant)>,
    /// The summed wall time of the trials that ended.
    trial_seconds: f64,
    /// The first action that failed; the run stops and returns it.
    first_error: Option<RunError>,
    /// Whether it records a search's new trials (`sweep attach` only follows what runs).
    makes_trials: bool,
}

/// What a run waits for between its steps.
enum Input {
    /// A trial sent an event or its end.
    Trial(TrialId, FromTrial),
    CtrlC,
    /// Time for a heartbeat.
    Tick,
}

/// Where a run's [`Input`]s come from: the trials' reports, Ctrl-C, the heartbeat's timer.
struct Inputs {
    heard: mpsc::UnboundedReceiver<(TrialId, FromTrial)>,
    interrupts: tokio::signal::unix::Signal,
    heartbeat: tokio::time::Interval,
}

impl Inputs {
    fn new(heard: mpsc::UnboundedReceiver<(TrialId, FromTrial)>) -> Result<Self, RunError> {
        // One listener for the whole run: `tokio::signal::ctrl_c()` made anew in each wait
        // would miss a Ctrl-C that came while the runner was writing to the database (and
        // once tokio handles SIGINT, a missed one is lost, not fatal).
        let interrupts = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .map_err(|error| RunError::Io {
                path: PathBuf::from("SIGINT"),
                error,
            })?;
        Ok(Inputs {
            heard,
            interrupts,
            heartbeat: tokio::time::interval(HEARTBEAT_EVERY),
        })
    }

    /// The next input; Ctrl-C only when `ctrl_c`.
    async fn next(&mut self, ctrl_c: bool) -> Input {
        tokio::select! {
            Some((trial, from)) = self.heard.recv() => Input::Trial(trial, from),
            Some(()) = self.interrupts.recv(), if ctrl_c => Input::CtrlC,
            _ = self.heartbeat.tick() => Input::Tick,
        }
    }
}

impl Run<'_> {
    /// Runs the sweep's trials, starting with the `attached` ones, until none is left,
    /// Ctrl-C, or the executor detaches; `follow_only` claims nothing (`sweep attach`).
    async fn run(
        mut self,
        attached: Vec<Attached>,
        heard: mpsc::UnboundedReceiver<(TrialId, FromTrial)>,
        follow_only: bool,
        started: Instant,
    ) -> Result<RunSummary, RunError> {
        self.release_dead_runners().await?;
        self.make_trials().await?;
        let mut state = self.plan(attached.len(), follow_only).await?;
        let mut inputs = Inputs::new(heard)?;
        let mut events = self.attach(attached);
        events.push_back(Event::Begin);
        let detached = loop {
            self.handle(&mut state, &mut events).await;
            self.submit().await?;
            if state.finished() {
                break false;
            }
            if self.executor.detaches() {
                break true;
            }
            match inputs.next(state.stopping() < 2).await {
                Input::Trial(trial, from) => events.push_back(self.heard(trial, from)),
                Input::CtrlC => match self.executor.on_ctrl_c() {
                    OnCtrlC::StopTrials => events.push_back(Event::CtrlC),
                    OnCtrlC::Detach => break true,
                },
                Input::Tick => events.push_back(Event::Tick),
            }
        };
        if detached {
            let _ = self.updates.send(Update::Detached {
                jobs: self.running.len(),
            });
        }
        if let Some(e) = self.first_error.take() {
            return Err(e);
        }
        self.summary(&state, detached, started).await
    }

    /// Records the trials a `[search]` sweep may make now (none for other sweeps); returns
    /// how many.
    async fn make_trials(&self) -> Result<usize, RunError> {
        let Some(search) = self.file.search.as_ref().filter(|_| self.makes_trials) else {
            return Ok(0);
        };
        let (pool, sweep) = (self.sweep.pool, self.sweep.id);
        let rows = store::trials(pool, sweep).await?;
        let until_epoch = self
            .file
            .prune
            .and_then(|p| prune::first_until(&p, self.file.epochs()));
        let made = suggestions::next_trials(self.file, search, &self.file.goal(), &rows)?;
        let mut added = 0;
        for Suggested { spec, origin } in made {
            let trial = new_trial(spec, origin, until_epoch);
            added += usize::from(store::record_trial(pool, sweep, &trial).await?);
        }
        Ok(added)
    }

    /// Releases the trials that runners of this host left when they died, to be claimed
    /// again.
    async fn release_dead_runners(&self) -> Result<(), RunError> {
        let host = host_of(self.sweep.runner);
        for (trial, holder) in store::running_trials(self.sweep.pool, self.sweep.id).await? {
            if runner_is_dead_here(&holder, host) {
                store::release_trial(self.sweep.pool, trial, &holder).await?;
            }
        }
        Ok(())
    }

    /// Plans the slots for `following` re-attached trials and those left to claim (none when
    /// `follow_only`), tells the display, and returns the dispatcher's state over them.
    async fn plan(&mut self, following: usize, follow_only: bool) -> Result<State, RunError> {
        let rows = store::trials(self.sweep.pool, self.sweep.id).await?;
        // A search's trials yet to be made will run too.
        let unmade = self
            .file
            .search
            .as_ref()
            .map_or(0, |s| s.trials.saturating_sub(rows.len()));
        let to_run = rows.iter().filter(|t| !t.status.is_final()).count() + unmade;
        let claimable = if follow_only {
            0
        } else {
            rows.iter()
                .filter(|t| !t.status.is_final() && t.status != TrialStatus::Running)
                .count()
                + unmade
        };
        self.slots = self.executor.slots(following, claimable);
        let counts = TrialStatus::ALL
            .into_iter()
            .map(|s| (s, rows.iter().filter(|t| t.status == s).count()))
            .filter(|&(_, n)| n > 0)
            .collect();
        let _ = self.updates.send(Update::Planned {
            sweep: self.file.name.clone(),
            total: rows.len() + unmade,
            counts,
            to_run,
            slots: self.slots.clone(),
        });
        let pruning = prune::pruning(self.file.prune.as_ref());
        let state = State::new(self.slots.len(), self.file.run.max_retries, pruning);
        Ok(if follow_only {
            state.following_only()
        } else {
            state
        })
    }

    /// Keeps the trials the executor re-attached to; returns the events that give each a
    /// slot.
    fn attach(&mut self, attached: Vec<Attached>) -> VecDeque<Event> {
        if !attached.is_empty() {
            let _ = self.updates.send(Update::Attached {
                jobs: attached.len(),
            });
        }
        attached
            .into_iter()
            .enumerate()
            .map(|(slot, Attached { trial, running })| {
                self.attached.insert(trial.id, running);
                Event::Attach { slot, trial }
            })
            .collect()
    }

    /// Hands each of `events` to the dispatcher and performs its actions, and so on with
    /// what they lead to, until none is left.
    async fn handle(&mut self, state: &mut State, events: &mut VecDeque<Event>) {
        while let Some(event) = events.pop_front() {
            for action in dispatcher::handle(state, event.clone()) {
                events.extend(self.perform(action).await);
            }
            if event == Event::CtrlC {
                let _ = self.updates.send(Update::Stopping {
                    level: state.stopping(),
                });
            }
        }
    }

    /// The dispatcher's event for what `trial` sent; its events go to the display too.
    fn heard(&self, trial: TrialId, from: FromTrial) -> Event {
        match from {
            FromTrial::Event(event) => {
                let _ = self.updates.send(Update::Event {
                    trial,
                    event: event.clone(),
                });
                Event::Reported { trial, event }
            }
            FromTrial::Ended(exit) => Event::Ended { trial, exit },
        }
    }

    /// The sweep's state at the end of the run.
    async fn summary(
        &self,
        state: &State,
        detached: bool,
        started: Instant,
    ) -> Result<RunSummary, RunError> {
        let (pool, sweep) = (self.sweep.pool, self.sweep.id);
        let trials = store::trials(pool, sweep).await?;
        let pruned = match self.file.prune {
            Some(_) => Some(PrunedEpochs {
                trained: store::sweep_epochs(pool, sweep)
                    .await?
                    .values()
                    .map(Vec::len)
                    .sum(),
                full: trials.len() * self.file.epochs() as usize,
            }),
            None => None,
        };
        Ok(RunSummary {
            sweep,
            trials,
            launched: state.launched(),
            interrupted: state.stopping() > 0 || detached,
            wall_seconds: started.elapsed().as_secs_f64(),
            trial_seconds: self.trial_seconds,
            slots: self.slots.len(),
            pruned,
        })
    }

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
        let (pool, runner) = (self.sweep.pool, self.sweep.runner);
        match action {
            Action::Claim { slot } => {
                let device = self.slots[slot].device.to_string();
                let trial =
                    store::claim_trial(pool, self.sweep.id, runner, &device, STALE_AFTER).await?;
                return Ok(Some(Event::Claimed { slot, trial }));
            }
            Action::Launch { slot, trial } => return Ok(self.launch(slot, &trial)),
            Action::Follow { slot, trial } => self.follow(slot, &trial),
            Action::Record { trial, epochs } => {
                store::record_epochs(pool, trial, &epochs).await?;
            }
            Action::Rewind {
                trial,
                epochs,
                note,
            } => {
                store::rewind_trial(pool, trial, &epochs, note.as_deref()).await?;
            }
            Action::End { trial, ending } => {
                let result = store::end_trial(pool, trial, &ending).await;
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
                if self.make_trials().await? > 0 {
                    return Ok(Some(Event::Queued));
                }
            }
            Action::Stop { trial, how } => {
                if let Some((running, _)) = self.running.get(&trial) {
                    running.stop(how);
                }
            }
            Action::Heartbeat => store::heartbeat(pool, runner).await?,
            Action::Prune => {
                let decisions = self.decide(None).await?;
                let (promoted, stopped) = store::apply_decisions(pool, &decisions).await?;
                if promoted + stopped > 0 {
                    let _ = self.updates.send(Update::Pruned { promoted, stopped });
                }
                return Ok(Some(Event::Pruned { promoted }));
            }
            Action::Judge { trial, epoch } => {
                let decisions = self.decide(Some((trial, epoch))).await?;
                for decision in &decisions {
                    store::record_decision(pool, decision).await?;
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
        let Some(prune) = &self.file.prune else {
            return Ok(Vec::new());
        };
        let rows = store::trials(self.sweep.pool, self.sweep.id).await?;
        let epochs = store::sweep_epochs(self.sweep.pool, self.sweep.id).await?;
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
            self.file.epochs(),
            &self.file.goal(),
            &views,
            judged,
        ))
    }

    /// Writes the trial's folder and configuration and launches it; a trial that cannot
    /// start ends at once.
    fn launch(&mut self, slot: usize, trial: &ClaimedTrial) -> Option<Event> {
        self.started(slot, trial);
        let dir = self.sweep.trial_dir(&trial.config_hash);
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
        let slot = &self.slots[slot];
        let command = self
            .program
            .command(&dir, trial.until_epoch, slot.seen_device());
        let running = self.executor.launch(trial.id, &dir, command, slot);
        self.unsubmitted.push(trial.id);
        self.running.insert(trial.id, (running, Instant::now()));
        None
    }

    /// Follows on `slot` a trial that the executor re-attached to.
    fn follow(&mut self, slot: usize, trial: &ClaimedTrial) {
        let Some(running) = self.attached.remove(&trial.id) else {
            return;
        };
        self.started(slot, trial);
        self.running.insert(trial.id, (running, Instant::now()));
    }

    /// Tells the display that `trial` started on `slot`.
    fn started(&self, slot: usize, trial: &ClaimedTrial) {
        let _ = self.updates.send(Update::TrialStarted {
            trial: trial.id,
            number: trial.number,
            params: trial.summary.params.clone(),
            device: self.slots[slot].device.to_string(),
            epochs: trial.summary.epochs,
        });
    }

    /// Submits what the executor queued and records each trial's job; when the submission
    /// fails, the trials go back to the queue unrun and the run ends with the error.
    async fn submit(&mut self) -> Result<(), RunError> {
        let started = Instant::now();
        let launched = std::mem::take(&mut self.unsubmitted);
        match self.executor.submit() {
            Ok(submitted) if submitted.is_empty() => Ok(()),
            Ok(submitted) => {
                for s in &submitted {
                    store::record_slurm_job(self.sweep.pool, s.trial, &s.job, s.events_offset)
                        .await?;
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
                for trial in launched {
                    store::unclaim_trial(self.sweep.pool, trial).await?;
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
    fn stop(&self, _: Stop) {}
}
