//! Trials as Slurm jobs: [`Slurm`] submits the trials it is given as job arrays
//! (`sbatch --array`, chunked under the cluster's `MaxArraySize`, throttled with `%N`), each
//! task running its trial's command on a node, and follows them: the trial folders' events
//! files for what the trials report, `squeue` for what became of their jobs. Slurm does the
//! placing and the throttling, so every trial to run gets a slot at once and nothing here
//! waits to submit later work.
//!
//! The jobs outlive the runner. So one runner at a time follows a Slurm sweep (the database
//! records which), a later runner re-attaches to the jobs by their recorded ids
//! ([`Executor::take_up`]), and a run that stops following (Ctrl-C, `--detach`) leaves them
//! running.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sweep_model::{DeviceName, TrialEvent};
use sweep_store::{self as store, TrialId};

use super::{
    Attached, Executor, Exit, FromTrial, OnCtrlC, Reports, Running, Step, Stop, SubmitError,
    Submitted, SweepRun,
};
use crate::error::RunError;
use crate::event_log::EventReader;
use crate::liveness::{host_of, runner_is_dead_here, STALE_AFTER};
use crate::program::TrialCommand;
use crate::slots::Slot;
use crate::sweep_file::SlurmSettings;

/// How often the followed jobs' states and events files are read.
const POLL: Duration = Duration::from_secs(1);
/// How long a job that Slurm says has ended may still have events on their way (a network
/// filesystem shows another machine's last writes a little late) before it is judged by its
/// state alone.
const GRACE: Duration = Duration::from_secs(5);
/// Slurm's own default `MaxArraySize`, for a cluster whose configuration cannot be read.
const DEFAULT_MAX_ARRAY_SIZE: usize = 1001;
/// The file in a trial folder that lists its Slurm jobs, one per submission.
pub const JOBS_FILE: &str = "slurm_jobs";
/// The file in a trial folder that its job's stderr is appended to.
pub const LOG_FILE: &str = "trial.log";
/// Lines of a lost job's log kept for its error.
const LOG_TAIL: usize = 20;

/// A job's state as squeue reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobState {
    /// `PENDING`, `RUNNING`, `COMPLETED`, `CANCELLED`, `OUT_OF_MEMORY`, …
    pub state: String,
    /// Why it pends or ended (`Priority`, `Resources`, `NonZeroExitCode`, `None`).
    pub reason: String,
    /// The node it runs (or ran) on.
    pub node: String,
}

impl JobState {
    /// Whether the job has ended for good (a requeued job has not).
    pub fn is_over(&self) -> bool {
        matches!(
            self.state.as_str(),
            "COMPLETED"
                | "CANCELLED"
                | "FAILED"
                | "TIMEOUT"
                | "NODE_FAIL"
                | "PREEMPTED"
                | "BOOT_FAIL"
                | "DEADLINE"
                | "OUT_OF_MEMORY"
                | "REVOKED"
        )
    }

    /// The state as `sweep show` prints it: `PENDING (Priority)`, `RUNNING on node12`.
    pub fn describe(&self) -> String {
        match self.state.as_str() {
            "RUNNING" | "COMPLETING" if !self.node.is_empty() => {
                format!("{} on {}", self.state, self.node)
            }
            _ if !self.reason.is_empty() && self.reason != "None" => {
                format!("{} ({})", self.state, self.reason)
            }
            _ => self.state.clone(),
        }
    }
}

/// Whether Slurm's commands are here and a controller answers (`sbatch` on the PATH and
/// `squeue` works).
pub fn available() -> bool {
    let ok = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    ok("sbatch", &["--version"]) && ok("squeue", &["-h", "-o", "%i", "--user", &current_user()])
}

/// The states of `jobs` (`123_4`), from one squeue call; jobs that Slurm has forgotten are
/// missing from the map. `None` when squeue cannot be run.
pub fn job_states(jobs: &[String]) -> Option<HashMap<String, JobState>> {
    if jobs.is_empty() {
        return Some(HashMap::new());
    }
    // Asking for the jobs by id fails as a whole when one of them is forgotten: ask for all
    // of this user's jobs and keep ours.
    let output = Command::new("squeue")
        .args(["-h", "-r", "--states=all", "-o", "%i|%T|%r|%N"])
        .arg(format!("--user={}", current_user()))
        .stdin(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let wanted: std::collections::HashSet<&str> = jobs.iter().map(String::as_str).collect();
    Some(
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| {
                let mut fields = line.split('|');
                let id = fields.next()?.trim();
                wanted.contains(id).then(|| {
                    let mut field = || fields.next().unwrap_or("").trim().to_string();
                    let (state, reason, node) = (field(), field(), field());
                    (
                        id.to_string(),
                        JobState {
                            state,
                            reason,
                            node,
                        },
                    )
                })
            })
            .collect(),
    )
}

/// The name of the user this process runs as (squeue's `--user`).
fn current_user() -> String {
    // SAFETY: getuid only reads this process's user id.
    let uid = unsafe { libc::getuid() };
    uid.to_string()
}

/// How many times Slurm has requeued `job` (`Restarts=` of `scontrol show job`); `None` when
/// Slurm does not say.
fn restarts(job: &str) -> Option<u32> {
    let output = Command::new("scontrol")
        .args(["show", "job", job])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    parse_restarts(&String::from_utf8_lossy(&output.stdout))
}

fn parse_restarts(show_job: &str) -> Option<u32> {
    show_job
        .split_whitespace()
        .find_map(|field| field.strip_prefix("Restarts=")?.parse().ok())
}

/// What sacct says of a job that squeue no longer knows, where accounting exists.
fn accounted_state(job: &str) -> Option<JobState> {
    let output = Command::new("sacct")
        .args(["-n", "-X", "-P", "-o", "State,Reason,NodeList", "-j", job])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().next()?;
    let mut fields = line.split('|');
    let state = fields.next()?.split_whitespace().next()?.to_string();
    Some(JobState {
        state,
        reason: fields.next().unwrap_or("").to_string(),
        node: fields.next().unwrap_or("").to_string(),
    })
}

/// Cancels `jobs` (`scancel`, all at once); `signal` sends that signal to their batch shells
/// instead of ending them.
pub fn cancel(jobs: &[String], signal: Option<&str>) -> Result<(), String> {
    if jobs.is_empty() {
        return Ok(());
    }
    let mut command = Command::new("scancel");
    if let Some(signal) = signal {
        command.args(["--batch", &format!("--signal={signal}")]);
    }
    let output = command
        .args(jobs)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run scancel: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_string())
    }
}

/// The cluster's `MaxArraySize` (array indices go up to one less), from `scontrol show config`.
pub fn max_array_size() -> usize {
    let output = Command::new("scontrol")
        .args(["show", "config"])
        .stdin(Stdio::null())
        .output();
    let Ok(output) = output else {
        return DEFAULT_MAX_ARRAY_SIZE;
    };
    parse_max_array_size(&String::from_utf8_lossy(&output.stdout)).unwrap_or(DEFAULT_MAX_ARRAY_SIZE)
}

fn parse_max_array_size(config: &str) -> Option<usize> {
    config.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "MaxArraySize")
            .then(|| value.trim().parse().ok())
            .flatten()
    })
}

/// The array throttle of each of `chunks` arrays, so that the sweep's jobs together never
/// run more than `max_parallel` at once.
fn chunk_throttle(max_parallel: Option<u32>, chunks: usize) -> Option<u32> {
    max_parallel.map(|n| (n / chunks.max(1) as u32).max(1))
}

/// A trial waiting for [`Executor::submit`].
struct Queued {
    trial: TrialId,
    dir: PathBuf,
    command: TrialCommand,
    events: EventReader,
    job: Arc<Mutex<Option<String>>>,
}

/// A trial whose job is followed.
struct Followed {
    trial: TrialId,
    dir: PathBuf,
    events: EventReader,
    /// It reported how it ended (finished, failed or paused): its end was sent.
    ended: bool,
    /// Its last event was `interrupted` (a requeued job starts again).
    interrupted: bool,
    /// Since when Slurm has said the job is over (or forgotten it).
    over_since: Option<Instant>,
}

/// Submits trials as Slurm job arrays and follows their jobs.
pub struct Slurm {
    settings: SlurmSettings,
    /// The jobs' name: `sweep-<sweep>`.
    job_name: String,
    /// Where Slurm writes the jobs' own output (`%A_%a.out`).
    log_dir: PathBuf,
    /// Return once the trials are submitted (`--detach`).
    detach: bool,
    reports: Reports,
    queued: Mutex<Vec<Queued>>,
    followed: Arc<Mutex<HashMap<String, Followed>>>,
    poller: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Slurm {
    /// An executor for the sweep `sweep` whose folder is `sweep_dir`, on the cluster whose
    /// commands are on the PATH; `detach` returns once the trials are submitted. Trials
    /// report on `reports`.
    pub fn new(
        settings: SlurmSettings,
        sweep: &str,
        sweep_dir: &Path,
        detach: bool,
        reports: Reports,
    ) -> Result<Self, RunError> {
        if !available() {
            return Err(RunError::NoSlurm);
        }
        Ok(Slurm::with_settings(
            settings, sweep, sweep_dir, detach, reports,
        ))
    }

    fn with_settings(
        settings: SlurmSettings,
        sweep: &str,
        sweep_dir: &Path,
        detach: bool,
        reports: Reports,
    ) -> Self {
        Slurm {
            settings,
            job_name: format!("sweep-{sweep}"),
            log_dir: sweep_dir.join("slurm"),
            detach,
            reports,
            queued: Mutex::new(Vec::new()),
            followed: Arc::new(Mutex::new(HashMap::new())),
            poller: Mutex::new(None),
        }
    }

    /// The slot every Slurm trial is planned on: what its job asks for.
    fn slot(&self) -> Slot {
        Slot {
            device: if self.settings.gpus_per_trial > 0 {
                DeviceName::Cuda(0)
            } else {
                DeviceName::Cpu
            },
            threads: self.settings.cpus_per_trial as usize,
        }
    }

    /// Follows `trial`, which runs as `job` (submitted by an earlier run), reading its events
    /// from `events_offset` on.
    fn attach(
        &self,
        trial: TrialId,
        dir: &Path,
        job: &str,
        events_offset: u64,
    ) -> Box<dyn Running> {
        self.follow(
            job.to_string(),
            Followed {
                trial,
                dir: dir.to_path_buf(),
                events: EventReader::new(dir, events_offset),
                ended: false,
                interrupted: false,
                over_since: None,
            },
        );
        Box::new(Job(Arc::new(Mutex::new(Some(job.to_string())))))
    }

    fn follow(&self, job: String, followed: Followed) {
        self.followed
            .lock()
            .expect("no thread panics holding the followed jobs")
            .insert(job, followed);
        let mut poller = self.poller.lock().expect("no thread panics holding it");
        if poller.is_none() {
            *poller = Some(tokio::spawn(poll(
                self.followed.clone(),
                self.reports.clone(),
                self.settings.max_requeues,
            )));
        }
    }

    /// The job script of an array whose task `i` runs the command of `trials[i]` in its
    /// folder.
    fn script(&self, trials: &[&Queued]) -> String {
        let quote = |text: &str| format!("'{}'", text.replace('\'', r"'\''"));
        let dirs: Vec<String> = trials
            .iter()
            .map(|t| quote(&t.dir.display().to_string()))
            .collect();
        let commands: Vec<String> = trials
            .iter()
            .enumerate()
            .map(|(task, t)| {
                let exports: String = t
                    .command
                    .env
                    .iter()
                    .map(|(key, value)| format!("export {}; ", quote(&format!("{key}={value}"))))
                    .collect();
                let words: Vec<String> = std::iter::once(t.command.program.as_os_str())
                    .chain(t.command.args.iter().map(|a| a.as_os_str()))
                    .map(|word| quote(&word.to_string_lossy()))
                    .collect();
                format!("  {task}) {exports}trial=({}) ;;\n", words.join(" "))
            })
            .collect();
        let max_requeues = self.settings.max_requeues;
        format!(
            r#"#!/bin/bash
# One trial of a sweep per array task; written by `sweep run`.
dirs=({dirs})
dir=${{dirs[$SLURM_ARRAY_TASK_ID]}}
case $SLURM_ARRAY_TASK_ID in
{commands}esac
# Slurm's warning before the time limit or a preemption reaches this shell only: pass it on,
# and requeue the job once the trial has checkpointed and stopped. Set first: bash's default
# for USR2 is to die, and the warning may come at once when a requeued job starts.
warned=0
pid=
trap 'warned=1; [ -n "$pid" ] && kill -USR2 "$pid" 2>/dev/null' USR2
trap '[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null' TERM
exec 2>>"$dir/{LOG_FILE}"
restarts=${{SLURM_RESTART_COUNT:-0}}
echo "sweep: job ${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}} (start $((restarts + 1))) on $(hostname) at $(date -Is)" >&2
if [ "$restarts" -gt {max_requeues} ]; then
  echo "sweep: the job was requeued $restarts times, more than run.slurm.max_requeues = {max_requeues}" >&2
  exit 1
fi
export RAYON_NUM_THREADS=${{SLURM_CPUS_PER_TASK:-1}}
"${{trial[@]}}" >/dev/null &
pid=$!
# Warned before the trial was there to be told: tell it now.
[ "$warned" = 1 ] && kill -USR2 "$pid" 2>/dev/null
while kill -0 "$pid" 2>/dev/null; do wait "$pid"; done
wait "$pid"
rc=$?
if [ "$warned" = 1 ]; then
  if [ "$restarts" -lt {max_requeues} ]; then
    echo "sweep: Slurm's warning (time limit or preemption) at $(date -Is): requeued" >&2
    scontrol requeue "${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}"
  else
    echo "sweep: Slurm's warning (time limit or preemption) at $(date -Is): not requeued, the job was requeued $restarts times, run.slurm.max_requeues = {max_requeues}" >&2
  fi
fi
exit $rc
"#,
            dirs = dirs.join(" "),
            commands = commands.concat(),
        )
    }

    /// sbatch's options for an array of `tasks` tasks, `throttle` of them at once.
    fn sbatch_args(&self, tasks: usize, throttle: Option<u32>) -> Vec<String> {
        let s = &self.settings;
        let mut args = vec![
            "--parsable".to_string(),
            format!(
                "--array=0-{}{}",
                tasks - 1,
                throttle.map(|n| format!("%{n}")).unwrap_or_default()
            ),
            format!("--job-name={}", self.job_name),
            format!("--output={}/%A_%a.out", self.log_dir.display()),
            "--open-mode=append".to_string(),
            "--requeue".to_string(),
            format!("--signal=B:USR2@{}", s.warning_seconds),
            format!("--cpus-per-task={}", s.cpus_per_trial),
        ];
        if s.gpus_per_trial > 0 {
            args.push(format!("--gpus={}", s.gpus_per_trial));
        }
        let named = [
            ("--partition", &s.partition),
            ("--mem", &s.mem),
            ("--time", &s.time),
            ("--account", &s.account),
            ("--qos", &s.qos),
        ];
        for (option, value) in named {
            if let Some(value) = value {
                args.push(format!("{option}={value}"));
            }
        }
        args.extend(s.sbatch_args.iter().cloned());
        args
    }

    /// Submits one array; returns its job id.
    fn sbatch(&self, trials: &[&Queued], throttle: Option<u32>) -> Result<String, SubmitError> {
        let mut child = Command::new("sbatch")
            .args(self.sbatch_args(trials.len(), throttle))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| SubmitError(format!("cannot run sbatch: {e}")))?;
        let script = self.script(trials);
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(script.as_bytes());
        }
        let output = child
            .wait_with_output()
            .map_err(|e| SubmitError(format!("cannot run sbatch: {e}")))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let id = stdout.trim().split(';').next().unwrap_or("").to_string();
        if !output.status.success() || id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(SubmitError(format!(
                "sbatch refused the sweep's jobs: {}",
                stderr.trim()
            )));
        }
        Ok(id)
    }
}

/// A trial's job, as the runner reaches it.
struct Job(Arc<Mutex<Option<String>>>);

impl Running for Job {
    fn stop(&self, how: Stop) {
        let Some(job) = self.0.lock().ok().and_then(|j| j.clone()) else {
            return;
        };
        // Asked: the batch shell passes SIGTERM on, the trial checkpoints and stops.
        let signal = match how {
            Stop::Ask => Some("TERM"),
            Stop::Kill => None,
        };
        let _ = cancel(&[job], signal);
    }
}

impl Executor for Slurm {
    /// Makes this run the one that follows the sweep (refused while another live runner
    /// does), and re-attaches to the jobs that earlier runs submitted.
    fn take_up<'a>(&'a self, sweep: &'a SweepRun<'a>) -> Step<'a, Vec<Attached>> {
        Box::pin(async move {
            let host = host_of(sweep.runner);
            let holder =
                store::attach_sweep(sweep.pool, sweep.id, sweep.runner, STALE_AFTER, |h| {
                    runner_is_dead_here(h, host)
                })
                .await?;
            if let Some(holder) = holder {
                return Err(RunError::Attached {
                    sweep: sweep.name.to_string(),
                    holder,
                });
            }
            let submitted = store::take_over_submitted(sweep.pool, sweep.id, sweep.runner).await?;
            Ok(submitted
                .into_iter()
                .map(|s| Attached {
                    running: self.attach(
                        s.trial.id,
                        &sweep.trial_dir(&s.trial.config_hash),
                        &s.slurm_job,
                        s.events_offset.max(0) as u64,
                    ),
                    trial: s.trial,
                })
                .collect())
        })
    }

    fn let_go<'a>(&'a self, sweep: &'a SweepRun<'a>) -> Step<'a, ()> {
        Box::pin(async move { Ok(store::detach_sweep(sweep.pool, sweep.id, sweep.runner).await?) })
    }

    /// Every trial to run gets a slot at once: Slurm places and throttles the jobs.
    fn slots(&self, following: usize, claimable: usize) -> Vec<Slot> {
        vec![self.slot(); (following + claimable).max(1)]
    }

    fn launch(
        &self,
        trial: TrialId,
        dir: &Path,
        command: TrialCommand,
        _slot: &Slot,
    ) -> Box<dyn Running> {
        let job = Arc::new(Mutex::new(None));
        self.queued
            .lock()
            .expect("no thread panics holding the queue")
            .push(Queued {
                trial,
                dir: dir.to_path_buf(),
                command,
                events: EventReader::at_end(dir),
                job: job.clone(),
            });
        Box::new(Job(job))
    }

    fn submit(&self) -> Result<Vec<Submitted>, SubmitError> {
        let queued: Vec<Queued> =
            std::mem::take(&mut *self.queued.lock().expect("no thread panics holding it"));
        if queued.is_empty() {
            return Ok(Vec::new());
        }
        std::fs::create_dir_all(&self.log_dir)
            .map_err(|e| SubmitError(format!("{}: {e}", self.log_dir.display())))?;
        let chunk = match self.settings.array_size {
            Some(asked) => max_array_size().min(asked as usize),
            None => max_array_size(),
        }
        .max(1);
        let all: Vec<&Queued> = queued.iter().collect();
        let chunks: Vec<&[&Queued]> = all.chunks(chunk).collect();
        let throttle = chunk_throttle(self.settings.max_parallel, chunks.len());
        let mut arrays = Vec::new();
        for trials in &chunks {
            match self.sbatch(trials, throttle) {
                Ok(id) => arrays.push(id),
                Err(e) => {
                    // All or nothing: the arrays already submitted are withdrawn.
                    let _ = cancel(&arrays, None);
                    return Err(e);
                }
            }
        }
        let mut submitted = Vec::new();
        for (array, trials) in arrays.iter().zip(&chunks) {
            for (task, queued) in trials.iter().enumerate() {
                let job = format!("{array}_{task}");
                let jobs_file = queued.dir.join(JOBS_FILE);
                let _ = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&jobs_file)
                    .and_then(|mut f| writeln!(f, "{job}"));
                *queued.job.lock().expect("no thread panics holding it") = Some(job.clone());
                submitted.push(Submitted {
                    trial: queued.trial,
                    job,
                    events_offset: queued.events.offset(),
                });
            }
        }
        for (queued, done) in queued.into_iter().zip(&submitted) {
            self.follow(
                done.job.clone(),
                Followed {
                    trial: queued.trial,
                    dir: queued.dir,
                    events: queued.events,
                    ended: false,
                    interrupted: false,
                    over_since: None,
                },
            );
        }
        Ok(submitted)
    }

    /// The jobs go on: the run stops following them, and `sweep attach` (or `sweep run`)
    /// follows them again.
    fn on_ctrl_c(&self) -> OnCtrlC {
        OnCtrlC::Detach
    }

    fn detaches(&self) -> bool {
        self.detach
    }
}

/// Reads the followed trials' events and their jobs' states until none is left; sends each
/// trial's events, then its end, to `reports`. `max_requeues` is the sweep's bound on a job's
/// requeues.
async fn poll(
    followed: Arc<Mutex<HashMap<String, Followed>>>,
    reports: Reports,
    max_requeues: u32,
) {
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let jobs: Vec<String> = {
            let followed = followed.lock().expect("no thread panics holding it");
            followed.keys().cloned().collect()
        };
        if jobs.is_empty() {
            continue;
        }
        // squeue runs outside the lock and off the runtime's threads.
        let asked = jobs.clone();
        let states = tokio::task::spawn_blocking(move || job_states(&asked))
            .await
            .ok()
            .flatten();
        let mut followed = followed.lock().expect("no thread panics holding it");
        let mut gone = Vec::new();
        for (job, trial) in followed.iter_mut() {
            for event in trial.events.read_new() {
                match &event {
                    TrialEvent::Finished { .. }
                    | TrialEvent::Completed { .. }
                    | TrialEvent::Failed { .. }
                    | TrialEvent::Paused { .. } => trial.ended = true,
                    TrialEvent::Interrupted { .. } => trial.interrupted = true,
                    TrialEvent::Started { .. } | TrialEvent::Resumed { .. } => {
                        trial.interrupted = false
                    }
                    TrialEvent::Batch { .. }
                    | TrialEvent::Epoch(_)
                    | TrialEvent::Reported(_)
                    | TrialEvent::Checkpoint { .. } => {}
                }
                let _ = reports.send((trial.trial, FromTrial::Event(event)));
            }
            if trial.ended {
                let _ = reports.send((trial.trial, FromTrial::Ended(Exit::default())));
                gone.push(job.clone());
                continue;
            }
            // Without an answer from squeue nothing is known of the jobs: wait for one.
            let Some(states) = &states else { continue };
            let state = states.get(job).cloned();
            let over = state.as_ref().is_none_or(JobState::is_over);
            if !over {
                trial.over_since = None;
                continue;
            }
            let since = *trial.over_since.get_or_insert_with(Instant::now);
            if since.elapsed() < GRACE {
                continue;
            }
            let state = state.or_else(|| accounted_state(job));
            // An interrupted trial whose job was not requeued: its bound, if that was why.
            let interrupted = trial.interrupted.then(|| Requeues {
                done: restarts(job),
                max: max_requeues,
            });
            let exit = Exit {
                lost: Some(lost_reason(job, state.as_ref(), interrupted)),
                output_tail: log_tail(&trial.dir),
                ..Exit::default()
            };
            let _ = reports.send((trial.trial, FromTrial::Ended(exit)));
            gone.push(job.clone());
        }
        for job in gone {
            followed.remove(&job);
        }
    }
}

/// A job's requeues: how many Slurm made (when it says) and the sweep's bound.
#[derive(Debug, Clone, Copy)]
struct Requeues {
    done: Option<u32>,
    max: u32,
}

/// Why a job that ended without a final event failed, in Slurm's words; `interrupted` when
/// its trial had stopped at its checkpoint (Slurm's warning, SIGTERM) and the job did not come
/// back.
fn lost_reason(job: &str, state: Option<&JobState>, interrupted: Option<Requeues>) -> String {
    let mut reason = match state {
        Some(s) if s.reason.is_empty() || s.reason == "None" => {
            format!("Slurm job {job} ended {}", s.state)
        }
        Some(s) => format!("Slurm job {job} ended {} ({})", s.state, s.reason),
        None => format!("Slurm job {job} ended: Slurm no longer knows it"),
    };
    match interrupted {
        Some(Requeues {
            done: Some(done),
            max,
        }) if done >= max => reason.push_str(&format!(
            ", after its trial was interrupted (checkpoint kept) by the time limit or a \
             preemption, and not requeued: requeued {done} times, run.slurm.max_requeues = {max}"
        )),
        Some(_) => {
            reason.push_str(", after its trial was interrupted (checkpoint kept) and not requeued")
        }
        None => reason.push_str(", without a result from its trial"),
    }
    reason
}

/// The last lines of a trial's job log.
fn log_tail(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join(LOG_FILE)).unwrap_or_default();
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[lines.len().saturating_sub(LOG_TAIL)..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::Trainer;

    #[test]
    fn the_max_array_size_is_read_from_the_configuration() {
        let config = "MailProg                = /bin/true\nMaxArraySize            = 8\nMaxJobCount = 10000\n";
        assert_eq!(parse_max_array_size(config), Some(8));
        assert_eq!(parse_max_array_size("MaxJobCount = 1\n"), None);
    }

    #[test]
    fn chunks_share_the_throttle() {
        assert_eq!(chunk_throttle(None, 4), None);
        assert_eq!(chunk_throttle(Some(8), 1), Some(8));
        assert_eq!(chunk_throttle(Some(8), 3), Some(2));
        assert_eq!(chunk_throttle(Some(2), 4), Some(1), "at least one each");
    }

    #[test]
    fn states_read_as_users_expect() {
        let state = |s: &str, r: &str, n: &str| JobState {
            state: s.into(),
            reason: r.into(),
            node: n.into(),
        };
        assert_eq!(
            state("PENDING", "Priority", "").describe(),
            "PENDING (Priority)"
        );
        assert_eq!(
            state("RUNNING", "None", "node7").describe(),
            "RUNNING on node7"
        );
        assert!(state("OUT_OF_MEMORY", "OutOfMemory", "n").is_over());
        assert!(
            !state("PENDING", "BeginTime", "").is_over(),
            "a requeued job"
        );
        assert_eq!(
            lost_reason("12_3", Some(&state("CANCELLED", "None", "n")), None),
            "Slurm job 12_3 ended CANCELLED, without a result from its trial"
        );
        let bound = |done| {
            Some(Requeues {
                done: Some(done),
                max: 2,
            })
        };
        assert_eq!(
            lost_reason("12_3", Some(&state("COMPLETED", "None", "n")), bound(2)),
            "Slurm job 12_3 ended COMPLETED, after its trial was interrupted (checkpoint kept) \
             by the time limit or a preemption, and not requeued: requeued 2 times, \
             run.slurm.max_requeues = 2"
        );
        assert_eq!(
            lost_reason("12_3", Some(&state("COMPLETED", "None", "n")), bound(1)),
            "Slurm job 12_3 ended COMPLETED, after its trial was interrupted (checkpoint kept) \
             and not requeued"
        );
        let show = "JobId=12 ArrayJobId=12 ArrayTaskId=3\n   Requeue=1 Restarts=2 BatchFlag=1\n";
        assert_eq!(parse_restarts(show), Some(2));
        assert_eq!(parse_restarts("JobId=12\n"), None);
    }

    #[test]
    fn the_job_script_runs_each_task_s_trial_and_asks_for_what_the_file_says() {
        let settings = SlurmSettings {
            partition: Some("gpu".into()),
            gpus_per_trial: 1,
            max_parallel: Some(4),
            sbatch_args: vec!["--constraint=a100".into()],
            ..SlurmSettings::default()
        };
        let (reports, _) = tokio::sync::mpsc::unbounded_channel();
        let slurm = Slurm::with_settings(
            settings,
            "cnn",
            Path::new("/shared/results/cnn"),
            false,
            reports,
        );
        let trainer = Trainer {
            exe: "/opt/sweep".into(),
            cache_dir: "/shared/results/cache".into(),
        };
        let queued = |dir: &str, until| Queued {
            trial: TrialId(1),
            dir: dir.into(),
            command: trainer.command(Path::new(dir), until, slurm.slot().seen_device()),
            events: EventReader::new(Path::new(dir), 0),
            job: Arc::default(),
        };
        let (a, mut b) = (
            queued("/shared/t/a", None),
            queued("/shared/t/it's", Some(3)),
        );
        b.command.env.push(("SWEEP_SEED".into(), "4'2".into()));
        let script = slurm.script(&[&a, &b]);
        assert!(
            script.contains(r"dirs=('/shared/t/a' '/shared/t/it'\''s')"),
            "{script}"
        );
        assert!(
            script.contains(
                "  0) trial=('/opt/sweep' 'trial' '/shared/t/a' '--device' 'cuda:0' \
                 '--cache' '/shared/results/cache') ;;\n"
            ),
            "{script}"
        );
        assert!(
            script.contains(
                r"  1) export 'SWEEP_SEED=4'\''2'; trial=('/opt/sweep' 'trial' '/shared/t/it'\''s' "
            ),
            "{script}"
        );
        assert!(script.contains("'--until' '3') ;;\n"), "{script}");
        assert!(script.contains("\"${trial[@]}\" >/dev/null &"), "{script}");
        let args = slurm.sbatch_args(2, Some(4));
        for expected in [
            "--array=0-1%4",
            "--requeue",
            "--open-mode=append",
            "--signal=B:USR2@120",
            "--gpus=1",
            "--partition=gpu",
            "--constraint=a100",
            "--job-name=sweep-cnn",
        ] {
            assert!(args.iter().any(|a| a == expected), "{expected}: {args:?}");
        }
    }
}
