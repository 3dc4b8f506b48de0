//! A command trial's process: `sweep trial DIR` for a trial that runs the user's program. It
//! starts the program with the [`contract`]'s environment, follows the metrics file the
//! program appends to, checks every line, and reports the same way a built-in trial does
//! (events in the folder's `events.jsonl`), so every executor, the dispatcher and the store
//! treat both kinds alike.
//!
//! Resuming is the program's own: one that finds its checkpoint in its folder goes on from
//! it. The first epoch it reports in a run says where it resumed, and the epochs after that
//! point that earlier runs reported are trained again (the database forgets them, as it does
//! for a built-in trial that fell back to an older checkpoint). What earlier runs reported
//! is kept in the folder's `reported.jsonl`, written before each epoch is reported, so a kill
//! at any moment loses no epoch the database has. A program with `resumable = false` must
//! start at epoch 1 each time: promoted at a rung, it is trained again from the start.

pub mod contract;

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sweep_model::{DeviceName, NamedEpoch, TrialEvent};

use crate::sweep_file::CommandConfig;
use crate::trial::TrialExit;
use contract::{parse_report, Report, MAX_METRICS_LINE, METRICS_FILE};

/// The file in a trial's folder with every epoch its program reported in earlier runs.
pub const REPORTED_FILE: &str = "reported.jsonl";

/// How many of the program's last stderr lines a failure quotes.
const STDERR_TAIL: usize = 8;

/// How often the metrics file is read and the program checked on.
const POLL: Duration = Duration::from_millis(20);

/// Runs the command trial in `dir` on `device` until it ends, stops (`stop` set) or reaches
/// epoch `until`, sending each event to `emit`.
pub fn run_command_trial(
    dir: &Path,
    device: DeviceName,
    config: &CommandConfig,
    until: Option<u32>,
    stop: &AtomicBool,
    emit: &mut dyn FnMut(TrialEvent),
) -> TrialExit {
    let mut trial = Following {
        dir,
        device,
        config,
        until,
        accepted: read_reported(dir, &config.goal.metric),
        resumed: false,
        last_report: Instant::now(),
        emit,
    };
    let metrics = dir.join(METRICS_FILE);
    // What the last run's program reported may not all have been read: it can checkpoint an
    // epoch whose report its relay, killed, never took in.
    if let Err(reason) = trial.adopt_leftovers(&metrics) {
        return trial.fail(reason);
    }
    // Emptied for this run, and read from here while the program appends.
    let opened = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&metrics);
    let started = opened
        .map_err(|e| format!("cannot create {}: {e}", metrics.display()))
        .and_then(|file| trial.start().map(|child| (file, child)));
    let (file, mut child) = match started {
        Ok(started) => started,
        Err(reason) => return trial.fail(reason),
    };
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    let relay = child.stderr.take().map(|stderr| {
        let tail = tail.clone();
        std::thread::spawn(move || relay_stderr(stderr, &tail))
    });
    let outcome = trial.follow(&mut child, file, stop);
    // The trial is over: what the program left running in its group (a worker still holding
    // its stderr, say) goes with it.
    signal_group(&child, libc::SIGKILL);
    if let Some(relay) = relay {
        let _ = relay.join();
    }
    let tail: Vec<String> = tail
        .lock()
        .expect("the relay does not panic")
        .drain(..)
        .collect();
    match outcome {
        Followed::Misbehaved(reason) => trial.fail(reason),
        Followed::Stopped => {
            let epochs = trial.accepted.len() as u32;
            (trial.emit)(TrialEvent::Interrupted { epochs });
            TrialExit::Interrupted
        }
        Followed::Exited(status) if status.success() => trial.exited(),
        Followed::Exited(status) => {
            let how = match (status.code(), status.signal()) {
                (Some(code), _) => format!("the program exited with status {code}"),
                (None, Some(signal)) => format!("the program was killed by signal {signal}"),
                (None, None) => "the program ended without a status".to_string(),
            };
            let reason = match tail.is_empty() {
                true => how,
                false => format!("{how}; its last output:\n{}", tail.join("\n")),
            };
            trial.fail(reason)
        }
    }
}

/// How following the program ended.
enum Followed {
    /// It exited by itself.
    Exited(ExitStatus),
    /// It was asked to stop, and has (or was killed).
    Stopped,
    /// It broke the contract (a bad metrics line); it has been killed.
    Misbehaved(String),
}

/// A command trial being run: what it was given and what it reported.
struct Following<'a> {
    dir: &'a Path,
    device: DeviceName,
    config: &'a CommandConfig,
    until: Option<u32>,
    /// Every epoch reported so far, from 1: earlier runs' until this run's first report says
    /// where it resumed, then this run's.
    accepted: Vec<NamedEpoch>,
    /// Whether this run has said where it resumed ([`TrialEvent::Resumed`]).
    resumed: bool,
    last_report: Instant,
    emit: &'a mut dyn FnMut(TrialEvent),
}

impl Following<'_> {
    /// Starts the program: its own process group (so a stop reaches its children too), dying
    /// with this process, in the sweep's folder, with the contract's environment.
    fn start(&self) -> Result<Child, String> {
        use contract::*;
        let config = self.config;
        let argv = substitute(&config.command, &config.params)?;
        let (program, args) = argv.split_first().ok_or("the command is empty")?;
        let params = serde_json::to_string(&config.params).expect("params serialise");
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(&config.workdir)
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::piped())
            .env(TRIAL_DIR, self.dir)
            .env(METRICS, self.dir.join(METRICS_FILE))
            .env(PARAMS, params)
            .env(EPOCHS, config.epochs.to_string())
            .env(SEED, seed(&config.params).to_string())
            .env(DEVICE, self.device.to_string())
            .env_remove(UNTIL_EPOCH)
            .process_group(0);
        if let Some(until) = self.until {
            command.env(UNTIL_EPOCH, until.to_string());
        }
        if self.device == DeviceName::Cpu {
            // A CPU slot's program must not take a GPU that another slot runs on.
            command.env("CUDA_VISIBLE_DEVICES", "");
        }
        // The executor gives this process its slot's threads; the program gets as many.
        if let Ok(threads) = std::env::var("RAYON_NUM_THREADS") {
            command
                .env(THREADS, &threads)
                .env("OMP_NUM_THREADS", &threads)
                .env("MKL_NUM_THREADS", &threads);
        }
        // SAFETY: between fork and exec the closure only calls prctl, which sets a flag of
        // the new process and touches no memory of this one.
        unsafe {
            command.pre_exec(|| {
                #[cfg(target_os = "linux")]
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        command.spawn().map_err(|e| {
            let dir = config.workdir.display();
            format!("cannot start `{program}` (in {dir}): {e}")
        })
    }

    /// Follows the running program until it exits, stopping it when `stop` is set and
    /// killing it when it breaks the contract.
    fn follow(&mut self, child: &mut Child, mut file: File, stop: &AtomicBool) -> Followed {
        let mut lines = Lines::default();
        let mut stopping: Option<Instant> = None;
        loop {
            let exited = match child.try_wait() {
                Ok(status) => status,
                Err(e) => return self.kill(child, format!("cannot wait for the program: {e}")),
            };
            // After an exit, the last line counts even without its newline.
            let read = lines.read(&mut file, exited.is_some());
            let result = read.and_then(|lines| lines.iter().try_for_each(|l| self.report(l)));
            if let Err(reason) = result {
                return self.kill(child, reason);
            }
            if let Some(status) = exited {
                // Asked to stop, it may still have trained its last epoch first.
                let target = self.until.unwrap_or(u32::MAX).min(self.config.epochs);
                let finished = status.success() && self.accepted.len() as u32 >= target;
                return match stopping {
                    Some(_) if !finished => Followed::Stopped,
                    _ => Followed::Exited(status),
                };
            }
            match stopping {
                None if stop.load(Ordering::Relaxed) => {
                    signal_group(child, libc::SIGTERM);
                    stopping = Some(Instant::now());
                }
                Some(at)
                    if at.elapsed() > Duration::from_secs(self.config.grace_seconds.into()) =>
                {
                    signal_group(child, libc::SIGKILL);
                }
                _ => {}
            }
            std::thread::sleep(POLL);
        }
    }

    /// Kills the program (and its group) for `reason`, and waits for it.
    fn kill(&mut self, child: &mut Child, reason: String) -> Followed {
        signal_group(child, libc::SIGKILL);
        let _ = child.wait();
        Followed::Misbehaved(reason)
    }

    /// Takes one line of the metrics file: checked, recorded in `reported.jsonl`, reported.
    fn report(&mut self, line: &str) -> Result<(), String> {
        let at = |e: String| format!("its metrics file ({METRICS_FILE}) says {line:?}: {e}");
        let report = parse_report(line).map_err(at)?;
        let Report {
            epoch,
            seconds,
            metrics,
        } = report;
        let config = self.config;
        if !self.resumed {
            let earlier = self.accepted.len() as u32;
            if !config.resumable && epoch != 1 {
                return Err(format!(
                    "its first epoch this run is {epoch}, but with `resumable = false` a \
                     program starts at epoch 1"
                ));
            }
            if epoch > earlier + 1 {
                return Err(format!(
                    "its first epoch this run is {epoch}, but only {earlier} were reported \
                     before: epochs must follow on from where it resumed"
                ));
            }
            self.accepted.truncate(epoch as usize - 1);
            self.rewrite_reported()?;
            self.say_resumed();
        } else {
            let expected = self.accepted.len() as u32 + 1;
            if epoch != expected {
                return Err(format!(
                    "it reported epoch {epoch} after epoch {}: epochs go 1, 2, 3, …",
                    expected - 1
                ));
            }
        }
        if epoch > config.epochs {
            return Err(format!(
                "it reported epoch {epoch}, but the trial has {} (SWEEP_EPOCHS)",
                config.epochs
            ));
        }
        if let Some(until) = self.until.filter(|&u| epoch > u) {
            return Err(format!(
                "it reported epoch {epoch} past SWEEP_UNTIL_EPOCH={until}, where it was to stop"
            ));
        }
        let objective = &config.goal.metric;
        if !metrics.contains_key(objective) {
            return Err(format!(
                "its epoch {epoch} has no `{objective}`, the sweep's objective: {line:?}"
            ));
        }
        let now = Instant::now();
        let seconds = seconds.unwrap_or_else(|| now.duration_since(self.last_report).as_secs_f64());
        self.last_report = now;
        let named = NamedEpoch {
            epoch,
            seconds,
            metrics,
        };
        append_reported(self.dir, &named)?;
        self.accepted.push(named.clone());
        (self.emit)(TrialEvent::Reported(named));
        Ok(())
    }

    /// Takes in the epochs in the last run's metrics file (`path`) that follow on from
    /// `reported.jsonl`, as that run's relay would have, and records them there (this run's
    /// [`TrialEvent::Resumed`] gives them to the scheduler): the relay may have been killed
    /// before it read them, after the program checkpointed them. The lines are taken up to
    /// the first that does not fit; the program reports anything after that point again.
    fn adopt_leftovers(&mut self, path: &Path) -> Result<(), String> {
        let limit = 64 * MAX_METRICS_LINE as u64;
        let Ok(file) = File::open(path) else {
            return Ok(());
        };
        let mut text = String::new();
        if file.take(limit).read_to_string(&mut text).is_err() {
            return Ok(());
        }
        let before = self.accepted.clone();
        let objective = &self.config.goal.metric;
        let mut taken = false;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let Ok(report) = parse_report(line) else {
                break;
            };
            let next = self.accepted.len() as u32 + 1;
            let fits = match taken {
                // The run's first report says where it resumed, as it did then.
                false => report.epoch <= next,
                true => report.epoch == next,
            };
            let finite = report.metrics.get(objective).is_some_and(|v| v.is_finite());
            if !fits || !finite || report.epoch > self.config.epochs {
                break;
            }
            if !taken {
                self.accepted.truncate(report.epoch as usize - 1);
                taken = true;
            }
            // An epoch the last relay did take in keeps the wall time it measured.
            let known = before
                .get(report.epoch as usize - 1)
                .filter(|e| e.metrics == report.metrics);
            self.accepted.push(match known {
                Some(known) => known.clone(),
                None => NamedEpoch {
                    epoch: report.epoch,
                    seconds: report.seconds.unwrap_or(0.0),
                    metrics: report.metrics,
                },
            });
        }
        match taken && self.accepted != before {
            true => self.rewrite_reported(),
            false => Ok(()),
        }
    }

    /// Tells the scheduler, once a run, the epochs the program resumed after.
    fn say_resumed(&mut self) {
        self.resumed = true;
        (self.emit)(TrialEvent::Resumed {
            device: self.device.to_string(),
            history: self.accepted.clone(),
        });
    }

    /// `reported.jsonl` as `accepted` now is, replaced whole (written aside, then renamed).
    fn rewrite_reported(&self) -> Result<(), String> {
        let path = self.dir.join(REPORTED_FILE);
        let aside = self.dir.join(format!("{REPORTED_FILE}.new"));
        let text: String = self
            .accepted
            .iter()
            .map(|e| serde_json::to_string(e).expect("an epoch serialises") + "\n")
            .collect();
        let written = File::create(&aside)
            .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()))
            .and_then(|()| std::fs::rename(&aside, &path));
        written.map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// The program exited 0: it finished, paused at its rung, or ended early by itself.
    fn exited(&mut self) -> TrialExit {
        let (epochs, done) = (self.config.epochs, self.accepted.len() as u32);
        if !self.resumed {
            if done == 0 {
                return self.fail("the program exited without reporting an epoch".into());
            }
            // It had nothing left to train (killed after its last report, say).
            self.say_resumed();
        }
        if self.until.is_some_and(|until| done >= until) && done < epochs {
            (self.emit)(TrialEvent::Paused { epochs: done });
            return TrialExit::Paused;
        }
        let goal = &self.config.goal;
        let value = |e: &NamedEpoch| e.metrics[&goal.metric];
        let best = self
            .accepted
            .iter()
            .reduce(
                |best, e| match goal.direction.better(value(e), value(best)) {
                    true => e,
                    false => best,
                },
            )
            .expect("at least one epoch was reported");
        let note =
            (done < epochs).then(|| format!("the program ended after {done} of {epochs} epochs"));
        (self.emit)(TrialEvent::Completed {
            best_epoch: best.epoch,
            objective: value(best),
            note,
        });
        TrialExit::Finished
    }

    fn fail(&mut self, reason: String) -> TrialExit {
        (self.emit)(TrialEvent::Failed { reason });
        TrialExit::Failed
    }
}

/// Sends `signal` to the program's process group (its children too).
fn signal_group(child: &Child, signal: i32) {
    // SAFETY: killpg only sends a signal to the group the program leads; it touches no
    // memory. A group already gone is not an error worth reporting.
    unsafe {
        libc::killpg(child.id() as libc::pid_t, signal);
    }
}

/// The epochs earlier runs reported, from `reported.jsonl`: 1, 2, 3, … up to the first line
/// that is not the next one with a finite `objective` (a torn last line of a killed process,
/// or a damaged file, ends it there; what follows is trained again).
fn read_reported(dir: &Path, objective: &str) -> Vec<NamedEpoch> {
    let Ok(text) = std::fs::read_to_string(dir.join(REPORTED_FILE)) else {
        return Vec::new();
    };
    let mut epochs: Vec<NamedEpoch> = Vec::new();
    for line in text.lines() {
        match serde_json::from_str::<NamedEpoch>(line) {
            Ok(e)
                if e.epoch as usize == epochs.len() + 1
                    && e.metrics.get(objective).is_some_and(|v| v.is_finite()) =>
            {
                epochs.push(e)
            }
            _ => break,
        }
    }
    epochs
}

/// Appends `epoch` to `reported.jsonl`, on the disk before it is reported.
fn append_reported(dir: &Path, epoch: &NamedEpoch) -> Result<(), String> {
    let path = dir.join(REPORTED_FILE);
    let line = serde_json::to_string(epoch).expect("an epoch serialises") + "\n";
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()).and_then(|()| f.sync_data()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Copies the program's stderr to this process's (so it reaches the trial's log) and keeps
/// its last lines for a failure's reason.
fn relay_stderr(stderr: impl Read, tail: &Mutex<VecDeque<String>>) {
    let mut reader = std::io::BufReader::new(stderr);
    let mut line = Vec::new();
    while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
        let _ = std::io::stderr().write_all(&line);
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        let mut tail = tail.lock().expect("the relay does not panic");
        if tail.len() == STDERR_TAIL {
            tail.pop_front();
        }
        tail.push_back(text);
        line.clear();
    }
}

/// The complete lines of a growing file, read as they come.
#[derive(Default)]
struct Lines {
    partial: Vec<u8>,
}

impl Lines {
    /// The lines written since the last read; with `at_end`, the last one even without its
    /// newline. A line longer than [`MAX_METRICS_LINE`] or not UTF-8 is an error.
    fn read(&mut self, file: &mut File, at_end: bool) -> Result<Vec<String>, String> {
        let mut new = Vec::new();
        file.read_to_end(&mut new)
            .map_err(|e| format!("cannot read its metrics file: {e}"))?;
        self.partial.extend_from_slice(&new);
        let mut lines = Vec::new();
        let mut start = 0;
        while let Some(i) = self.partial[start..].iter().position(|&b| b == b'\n') {
            lines.push(self.partial[start..start + i].to_vec());
            start += i + 1;
        }
        self.partial.drain(..start);
        if at_end && !self.partial.is_empty() {
            lines.push(std::mem::take(&mut self.partial));
        }
        if self.partial.len() > MAX_METRICS_LINE || lines.iter().any(|l| l.len() > MAX_METRICS_LINE)
        {
            return Err(format!(
                "its metrics file has a line longer than {} KiB",
                MAX_METRICS_LINE >> 10
            ));
        }
        lines
            .into_iter()
            .map(|l| String::from_utf8(l).map_err(|_| "its metrics file is not UTF-8 text".into()))
            .filter(|l| l.as_ref().map_or(true, |l| !l.trim().is_empty()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sweep_store::{Direction, Goal};

    fn config() -> CommandConfig {
        CommandConfig {
            command: vec!["true".into()],
            params: Default::default(),
            epochs: 5,
            goal: Goal {
                metric: "score".into(),
                direction: Direction::Maximise,
            },
            files: Vec::new(),
            resumable: true,
            grace_seconds: 1,
            workdir: "/".into(),
        }
    }

    fn line(epoch: u32, score: f64) -> String {
        format!("{{\"epoch\": {epoch}, \"score\": {score}}}\n")
    }

    #[test]
    fn epochs_a_killed_relay_never_read_are_taken_in_from_the_last_runs_metrics() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let known = |epoch: u32, score: f64| NamedEpoch {
            epoch,
            seconds: 5.0,
            metrics: [("score".to_string(), score)].into(),
        };
        let reported: String = [known(1, 0.1), known(2, 0.2)]
            .iter()
            .map(|e| serde_json::to_string(e).unwrap() + "\n")
            .collect();
        std::fs::write(dir.join(REPORTED_FILE), reported).unwrap();
        // The last run resumed after epoch 1, its relay took in epoch 2, not 3; then a line
        // that does not follow, and what comes after it, are left for the program to report.
        let leftovers = line(2, 0.2) + &line(3, 0.3) + &line(7, 0.7) + &line(4, 0.4);
        std::fs::write(dir.join(METRICS_FILE), leftovers).unwrap();
        let config = config();
        let mut events = Vec::new();
        let mut emit = |e: TrialEvent| events.push(e);
        let mut trial = Following {
            dir,
            device: DeviceName::Cpu,
            config: &config,
            until: None,
            accepted: read_reported(dir, "score"),
            resumed: false,
            last_report: Instant::now(),
            emit: &mut emit,
        };
        trial.adopt_leftovers(&dir.join(METRICS_FILE)).unwrap();
        let taken: Vec<(u32, f64, f64)> = trial
            .accepted
            .iter()
            .map(|e| (e.epoch, e.metrics["score"], e.seconds))
            .collect();
        assert_eq!(
            taken,
            [(1, 0.1, 5.0), (2, 0.2, 5.0), (3, 0.3, 0.0)],
            "epoch 2 keeps the time its relay measured"
        );
        assert_eq!(
            read_reported(dir, "score"),
            trial.accepted,
            "and on the disk"
        );
        assert!(
            events.is_empty(),
            "reported with this run's Resumed, not now"
        );
    }
}
