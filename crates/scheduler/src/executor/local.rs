//! Trials as child processes of the runner: [`LocalProcesses`] plans this machine's device
//! slots ([`crate::slots::plan_slots`]), starts each trial's command at once on its slot
//! (its GPU as the only one it sees, its share of the CPU's cores as its thread count), and
//! follows the trial's events file until the process exits. The children die with the runner:
//! nothing outlives a run, so several runs on one database share a sweep's work, each
//! claiming trials atomically, and Ctrl-C stops the trials.

use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use sweep_model::{DeviceName, TrialEvent};
use sweep_store::TrialId;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

use super::{
    Attached, Executor, Exit, FromTrial, OnCtrlC, Reports, Running, Step, Stop, SubmitError,
    Submitted, SweepRun,
};
use crate::event_log::EventReader;
use crate::program::TrialCommand;
use crate::slots::{plan_slots, Slot};
use crate::sweep_file::Devices;

/// How often a local trial's events file is read.
const POLL: Duration = Duration::from_millis(50);

/// Lines of a trial's stderr (and of stdout that is not an event) kept for its error.
const OUTPUT_TAIL: usize = 20;

/// Runs each trial as a child process of this one, following its events file; its stderr
/// (and stdout lines that are not its echoed events) make its error's tail.
#[derive(Debug)]
pub struct LocalProcesses {
    /// `devices` with `per_device` trials on each.
    slots: Vec<Slot>,
    reports: Reports,
}

impl LocalProcesses {
    /// Runs `per_device` trials at once on each of `devices`; `gpus` is the number of visible
    /// GPUs. Trials report on `reports`.
    pub fn new(devices: &Devices, per_device: usize, gpus: usize, reports: Reports) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        LocalProcesses {
            slots: plan_slots(devices, per_device, gpus, cores),
            reports,
        }
    }
}

impl Executor for LocalProcesses {
    /// Nothing to take up: trials that a dead local runner left are released and claimed
    /// again like any other.
    fn take_up<'a>(&'a self, _: &'a SweepRun<'a>) -> Step<'a, Vec<Attached>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn let_go<'a>(&'a self, _: &'a SweepRun<'a>) -> Step<'a, ()> {
        Box::pin(async { Ok(()) })
    }

    fn slots(&self, _following: usize, _claimable: usize) -> Vec<Slot> {
        self.slots.clone()
    }

    fn launch(
        &self,
        trial: TrialId,
        dir: &Path,
        command: TrialCommand,
        slot: &Slot,
    ) -> Box<dyn Running> {
        let (stop, stops) = mpsc::unbounded_channel();
        let mut child = Command::new(&command.program);
        child
            .args(&command.args)
            .envs(command.env)
            .env("RAYON_NUM_THREADS", slot.threads.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // A trial sees only its own GPU (as device 0: `Slot::seen_device`).
        if let DeviceName::Cuda(k) = slot.device {
            child.env("CUDA_VISIBLE_DEVICES", k.to_string());
        }
        let events = EventReader::at_end(dir);
        let reports = self.reports.clone();
        match child.spawn() {
            Ok(child) => {
                tokio::spawn(follow(trial, child, events, stops, reports));
            }
            Err(e) => {
                let reason = format!("cannot start {}: {e}", command.program.display());
                let _ = reports.send((trial, FromTrial::Ended(Exit::not_started(reason))));
            }
        }
        Box::new(Child(stop))
    }

    fn submit(&self) -> Result<Vec<Submitted>, SubmitError> {
        Ok(Vec::new())
    }

    fn on_ctrl_c(&self) -> OnCtrlC {
        OnCtrlC::StopTrials
    }

    fn detaches(&self) -> bool {
        false
    }
}

/// A child process, reached through the task that follows it.
struct Child(mpsc::UnboundedSender<Stop>);

impl Running for Child {
    fn stop(&self, how: Stop) {
        // The task is gone once the process has ended: nothing left to stop.
        let _ = self.0.send(how);
    }
}

/// Forwards a child's events from its file until both its outputs close, stops it when
/// asked (SIGINT, then SIGKILL), and reports how it exited once the file's last events are
/// sent.
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
    let mut poll = tokio::time::interval(POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr is piped")).lines();
    let pid = child.id();
    let mut tail = VecDeque::with_capacity(OUTPUT_TAIL);
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
