//! How a trial is started: a [`Launcher`] is asked "start this trial, send me its events and
//! its end". [`LocalProcess`] answers by running `sweep trial DIR` as a child process;
//! [`crate::slurm::SlurmLauncher`] by submitting it as a Slurm job. Either way the events come
//! from the trial folder's events file ([`crate::event_log`]), the one way a trial reports.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use sweep_model::DeviceName;
use sweep_store::TrialId;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

use crate::event_log::EventReader;
use crate::slots::Slot;
use sweep_model::TrialEvent;

/// How often a local trial's events file is read.
const LOCAL_POLL: std::time::Duration = std::time::Duration::from_millis(50);

/// Lines of a trial's stderr (and of stdout that is not an event) kept for its error.
const OUTPUT_TAIL: usize = 20;

/// What a launched trial sends back, tagged with its id: events in the order it reported
/// them, then its end, once.
#[derive(Debug, Clone, PartialEq)]
pub enum FromTrial {
    Event(TrialEvent),
    Ended(Exit),
}

/// The channel on which launched trials report.
pub type Reports = mpsc::UnboundedSender<(TrialId, FromTrial)>;

/// How a trial process ended.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exit {
    /// Its exit status, if it exited.
    pub code: Option<i32>,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
    /// The last lines it wrote that were not events.
    pub output_tail: Vec<String>,
    /// Why it could not be started at all.
    pub not_started: Option<String>,
    /// How its executor saw it end when nothing else tells (a Slurm job's state and reason).
    pub lost: Option<String>,
}

impl Exit {
    /// A trial that never ran, and why.
    pub fn not_started(reason: String) -> Self {
        Exit {
            not_started: Some(reason),
            ..Exit::default()
        }
    }
}

/// How to stop a running trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Ask it to stop after its current batch, keeping its checkpoint (SIGINT).
    Ask,
    /// End it now (SIGKILL).
    Kill,
}

/// A started trial, as its launcher lets the runner reach it.
pub trait Running: Send {
    /// Stops the trial; its end is still reported.
    fn stop(&self, how: Stop);
}

/// A trial submitted to a batch system: its job, and where its events begin in its file.
#[derive(Debug, Clone, PartialEq)]
pub struct Submitted {
    pub trial: TrialId,
    pub job: String,
    pub events_offset: u64,
}

/// Why queued trials could not be submitted (none of them was).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct SubmitError(pub String);

impl SubmitError {
    /// Whether the user's input is at fault: yes, the batch system refused what the sweep
    /// file asks for (a partition, a time limit), and nothing was submitted.
    pub fn is_bad_input(&self) -> bool {
        true
    }
}

/// Starts trials.
pub trait Launcher {
    /// Starts the trial `trial`, whose folder `dir` holds its configuration, on `slot`, to
    /// train until epoch `until` (`None`: to the end). Its events and then its end (also
    /// when it cannot start) are sent to `reports`.
    fn launch(
        &self,
        trial: TrialId,
        dir: &Path,
        slot: &Slot,
        until: Option<i64>,
        reports: Reports,
    ) -> Box<dyn Running>;

    /// Submits the trials that [`Launcher::launch`] queued, for a launcher that batches them
    /// (job arrays); on an error, none of them runs. A launcher that starts each trial at
    /// once has nothing to submit.
    fn submit(&self) -> Result<Vec<Submitted>, SubmitError> {
        Ok(Vec::new())
    }
}

/// Runs each trial as a child process of this one (`sweep trial DIR`), following its events
/// file; its stderr (and stdout lines that are not its echoed events) make its error's tail.
#[derive(Debug, Clone)]
pub struct LocalProcess {
    /// The `sweep` binary.
    pub exe: PathBuf,
    /// The decoded-data cache the trial maps its data from.
    pub cache_dir: PathBuf,
}

/// A child process, reached through the task that follows it.
struct Child(mpsc::UnboundedSender<Stop>);

impl Running for Child {
    fn stop(&self, how: Stop) {
        // The task is gone once the process has ended: nothing left to stop.
        let _ = self.0.send(how);
    }
}

impl Launcher for LocalProcess {
    fn launch(
        &self,
        trial: TrialId,
        dir: &Path,
        slot: &Slot,
        until: Option<i64>,
        reports: Reports,
    ) -> Box<dyn Running> {
        let (stop, stops) = mpsc::unbounded_channel();
        let mut command = Command::new(&self.exe);
        // A trial sees only its own GPU, as device 0.
        let device = match slot.device {
            DeviceName::Cpu => DeviceName::Cpu,
            DeviceName::Cuda(_) => DeviceName::Cuda(0),
        };
        command
            .arg("trial")
            .arg(dir)
            .arg("--device")
            .arg(device.to_string())
            .arg("--cache")
            .arg(&self.cache_dir)
            .env("RAYON_NUM_THREADS", slot.threads.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(until) = until {
            command.arg("--until").arg(until.to_string());
        }
        if let DeviceName::Cuda(k) = slot.device {
            command.env("CUDA_VISIBLE_DEVICES", k.to_string());
        }
        let events = EventReader::at_end(dir);
        match command.spawn() {
            Ok(child) => {
                tokio::spawn(follow(trial, child, events, stops, reports));
            }
            Err(e) => {
                let reason = format!("cannot start {}: {e}", self.exe.display());
                let _ = reports.send((trial, FromTrial::Ended(Exit::not_started(reason))));
            }
        }
        Box::new(Child(stop))
    }
}

/// Forwards a child's events from its file until both its outputs close, stops it when
/// asked, and reports how it exited once the file's last events are sent.
async fn follow(
    trial: TrialId,
    mut child: tokio::process::Child,
    mut events: EventReader,
    mut stops: mpsc::UnboundedReceiver<Stop>,
    reports: Reports,
) {
    let send_new = |events: &mut EventReader| {
        for event in events.read_new() {
            let _ = reports.send((trial, FromTrial::Event(event)));
        }
    };
    let mut poll = tokio::time::interval(LOCAL_POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr is piped")).lines();
    let pid = child.id();
    let mut tail = std::collections::VecDeque::with_capacity(OUTPUT_TAIL);
    let mut keep = |line: String| {
        if tail.len() == OUTPUT_TAIL {
            tail.pop_front();
        }
        tail.push_back(line);
    };
    let (mut stdout_open, mut stderr_open, mut stops_open) = (true, true, true);
    while stdout_open || stderr_open {
        tokio::select! {
            _ = poll.tick() => send_new(&mut events),
            line = stdout.next_line(), if stdout_open => match line {
                // The events are echoed on stdout; the file has them.
                Ok(Some(line)) if TrialEvent::from_line(&line).is_ok() => {}
                Ok(Some(line)) => keep(line),
                _ => stdout_open = false,
            },
            line = stderr.next_line(), if stderr_open => match line {
                Ok(Some(line)) => keep(line),
                _ => stderr_open = false,
            },
            how = stops.recv(), if stops_open => match how {
                Some(Stop::Ask) => {
                    if let Some(pid) = pid {
                        // SAFETY: kill(2) only sends a signal, to our own child, which stops
                        // after its batch.
                        unsafe { libc::kill(pid as i32, libc::SIGINT) };
                    }
                }
                Some(Stop::Kill) => {
                    let _ = child.start_kill();
                }
                None => stops_open = false,
            },
        }
    }
    let exit = match child.wait().await {
        Ok(status) => Exit {
            code: status.code(),
            signal: std::os::unix::process::ExitStatusExt::signal(&status),
            output_tail: tail.into(),
            ..Exit::default()
        },
        Err(e) => {
            tail.push_back(format!("cannot wait for the trial process: {e}"));
            Exit {
                output_tail: tail.into(),
                ..Exit::default()
            }
        }
    };
    send_new(&mut events);
    let _ = reports.send((trial, FromTrial::Ended(exit)));
}
