//! The live display of `sweep run`: on a terminal, an overall bar (trials done of total, ETA)
//! and a line per running trial; otherwise plain log lines. It only renders
//! [`Update`]s; the scheduler decides nothing for it.

use std::collections::HashMap;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use sweep_scheduler::{TrialEvent, Update};
use sweep_store::{Params, TrialId, TrialStatus};

/// A trial's line: who it is and how far it got.
pub struct Running {
    label: String,
    epochs: u32,
    epoch: u32,
    last_f1: Option<f64>,
    bar: Option<ProgressBar>,
}

/// Where progress goes.
pub enum Display {
    Terminal {
        multi: MultiProgress,
        overall: ProgressBar,
        running: HashMap<TrialId, Running>,
    },
    Plain {
        running: HashMap<TrialId, Running>,
    },
}

/// A trial's params as `lr=0.01 neurons=64 optimizer=adam`.
pub fn params_label(params: &Params) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// How many trials of a status a sweep has, in words: `11 stopped by pruning`.
pub fn status_count(status: TrialStatus, n: usize) -> String {
    match status {
        TrialStatus::Stopped => format!("{n} stopped by pruning"),
        TrialStatus::Paused => format!("{n} paused at their rung"),
        status => format!("{n} {status}"),
    }
}

/// The line a run starts with: what the sweep holds, by status, and what is left to do.
fn planned_line(
    sweep: &str,
    total: usize,
    counts: &[(TrialStatus, usize)],
    to_run: usize,
    devices: &str,
    slots: usize,
) -> String {
    let paused = counts
        .iter()
        .any(|&(s, n)| s == TrialStatus::Paused && n > 0);
    let counts: Vec<String> = counts.iter().map(|&(s, n)| status_count(s, n)).collect();
    // A paused trial goes on or stops by its rung's decision, taken as the run starts.
    let left = if paused { "to run or decide" } else { "to run" };
    format!(
        "sweep `{sweep}`: {total} trials ({}); {to_run} {left} on {slots} slots ({devices})",
        counts.join(", ")
    )
}

/// The overall bar's style. Its ETA only means something once a trial has ended: before
/// that, indicatif would show `ETA 0s`.
fn overall_style(with_eta: bool) -> ProgressStyle {
    let eta = if with_eta { ", ETA {eta}" } else { "" };
    ProgressStyle::with_template(&format!(
        "{{prefix:.bold}} [{{bar:30}}] {{pos}}/{{len}} trials  {{elapsed}} elapsed{eta}"
    ))
    .expect("the template is valid")
    .progress_chars("=> ")
}

impl Display {
    /// A terminal display when stderr is a terminal, plain lines otherwise.
    pub fn new() -> Self {
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let overall = multi.add(ProgressBar::new(0));
            overall.set_style(overall_style(false));
            overall.enable_steady_tick(Duration::from_millis(500));
            Display::Terminal {
                multi,
                overall,
                running: HashMap::new(),
            }
        } else {
            Display::Plain {
                running: HashMap::new(),
            }
        }
    }

    fn running(&mut self) -> &mut HashMap<TrialId, Running> {
        match self {
            Display::Terminal { running, .. } | Display::Plain { running } => running,
        }
    }

    fn log(&self, line: String) {
        match self {
            Display::Terminal { multi, .. } => {
                let _ = multi.println(line);
            }
            Display::Plain { .. } => eprintln!("{line}"),
        }
    }

    /// Shows one update.
    pub fn show(&mut self, update: Update) {
        match update {
            Update::Planned { sweep, total, counts, to_run, slots } => {
                let mut devices: Vec<String> = slots.iter().map(|s| format!("{}×{}t", s.device, s.threads)).collect();
                devices.dedup();
                self.log(planned_line(&sweep, total, &counts, to_run, &devices.join(", "), slots.len()));
                if let Display::Terminal { overall, .. } = self {
                    overall.set_prefix(sweep);
                    overall.set_length(to_run as u64);
                }
            }
            Update::TrialStarted { trial, number, params, device, epochs } => {
                let label = format!("trial {number} {}", params_label(&params));
                let bar = match self {
                    Display::Terminal { multi, .. } => {
                        let bar = multi.add(ProgressBar::new_spinner());
                        bar.set_style(ProgressStyle::with_template("  {spinner} {msg}").expect("the template is valid"));
                        bar.enable_steady_tick(Duration::from_millis(200));
                        bar.set_message(format!("{label} on {device}: starting"));
                        Some(bar)
                    }
                    Display::Plain { .. } => {
                        eprintln!("{label}: started on {device}");
                        None
                    }
                };
                self.running().insert(trial, Running { label, epochs, epoch: 0, last_f1: None, bar });
            }
            Update::Event { trial, event } => self.show_event(trial, event),
            Update::TrialEnded { trial, status, error, seconds } => {
                let Some(run) = self.running().remove(&trial) else { return };
                if let Some(bar) = &run.bar {
                    bar.finish_and_clear();
                }
                let f1 = run.last_f1.map(|f| format!(", last val_f1 {f:.4}")).unwrap_or_default();
                let error = error.map(|e| format!(": {}", e.lines().next().unwrap_or(""))).unwrap_or_default();
                self.log(format!("{}: {status} after {seconds:.1} s{f1}{error}", run.label));
                // A paused trial (a pruned sweep's rung) comes back or is stopped later: the
                // bar counts each trial once, when it ends for good.
                if let (Display::Terminal { overall, .. }, true) = (&*self, status.is_final()) {
                    if overall.position() == 0 {
                        overall.set_style(overall_style(true));
                    }
                    overall.inc(1);
                }
            }
            Update::Stopping { level: 1 } => self.log(
                "stopping: no new trials; running trials stop after their batch (Ctrl-C again to kill them)".into(),
            ),
            Update::Stopping { .. } => self.log("killing the running trials".into()),
            Update::Submitted { trials, arrays, seconds } => self.log(format!(
                "submitted {trials} trials to Slurm as {} job array{} ({}) in {seconds:.2} s",
                arrays.len(),
                if arrays.len() == 1 { "" } else { "s" },
                arrays.join(", ")
            )),
            Update::Attached { jobs } => {
                self.log(format!("re-attached to {jobs} Slurm jobs submitted earlier"))
            }
            Update::Detached { jobs } => self.log(format!(
                "detached: {jobs} Slurm jobs go on; `sweep attach FILE` (or `sweep run FILE`) follows them again, `sweep cancel SWEEP` cancels them"
            )),
            Update::Pruned { promoted, stopped } => {
                self.log(format!("pruning: {promoted} trials promoted, {stopped} stopped"));
                if let Display::Terminal { overall, .. } = self {
                    overall.inc(stopped as u64);
                }
            }
        }
    }

    fn show_event(&mut self, trial: TrialId, event: TrialEvent) {
        let plain = matches!(self, Display::Plain { .. });
        let Some(run) = self.running().get_mut(&trial) else {
            return;
        };
        let line = match event {
            TrialEvent::Started {
                history,
                recovered: Some(recovery),
                ..
            } => {
                run.epoch = history.len() as u32;
                run.last_f1 = history.last().map(|m| m.val_f1);
                Some(format!("{}: {recovery}", run.label))
            }
            TrialEvent::Started { history, .. } if !history.is_empty() => {
                let resumed_epochs = history.len();
                run.epoch = resumed_epochs as u32;
                run.last_f1 = history.last().map(|m| m.val_f1);
                Some(format!(
                    "{}: resumed after epoch {resumed_epochs}",
                    run.label
                ))
            }
            TrialEvent::Batch {
                epoch,
                batch,
                batches,
                ..
            } => {
                if let Some(bar) = &run.bar {
                    let f1 = run
                        .last_f1
                        .map(|f| format!("  val_f1 {f:.4}"))
                        .unwrap_or_default();
                    bar.set_message(format!(
                        "{}  epoch {epoch}/{}  batch {batch}/{batches}{f1}",
                        run.label, run.epochs
                    ));
                }
                None
            }
            TrialEvent::Epoch(m) => {
                run.epoch = m.epoch;
                run.last_f1 = Some(m.val_f1);
                plain.then(|| {
                    format!(
                        "{}: epoch {}/{} train_loss {:.4} val_loss {:.4} val_f1 {:.4} ({:.1} s)",
                        run.label,
                        m.epoch,
                        run.epochs,
                        m.train_loss,
                        m.val_loss,
                        m.val_f1,
                        m.seconds
                    )
                })
            }
            TrialEvent::Resumed { history, .. } if !history.is_empty() => {
                run.epoch = history.len() as u32;
                let resumed = history.len();
                Some(format!("{}: resumed after epoch {resumed}", run.label))
            }
            // A command trial's epoch: whatever metrics its program named.
            TrialEvent::Reported(m) => {
                run.epoch = m.epoch;
                let metrics: Vec<String> = m
                    .metrics
                    .iter()
                    .map(|(name, value)| format!("{name} {value:.4}"))
                    .collect();
                let text = format!(
                    "{}: epoch {}/{} {} ({:.1} s)",
                    run.label,
                    m.epoch,
                    run.epochs,
                    metrics.join(" "),
                    m.seconds
                );
                if let Some(bar) = &run.bar {
                    bar.set_message(text.clone());
                }
                plain.then_some(text)
            }
            _ => None,
        };
        if let Some(line) = line {
            self.log(line);
        }
    }

    /// Clears the bars.
    pub fn finish(&self) {
        if let Display::Terminal { overall, .. } = self {
            overall.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_read_as_a_trial_stores_them() {
        let stored = r#"{"filters":[8,16],"lr":0.01,"neurons":64,"optimizer":"adam","x":64.0}"#;
        let params: Params = serde_json::from_str(stored).unwrap();
        assert_eq!(
            params_label(&params),
            "filters=[8,16] lr=0.01 neurons=64 optimizer=adam x=64.0"
        );
    }

    #[test]
    fn the_planned_line_says_what_is_paused_stopped_done_and_failed() {
        use TrialStatus::*;
        for (counts, to_run, line) in [
            (
                vec![(Pending, 12)],
                12,
                "sweep `s`: 12 trials (12 pending); 12 to run on 2 slots (cpu×1t)",
            ),
            (
                vec![(Done, 2), (Paused, 10)],
                10,
                "sweep `s`: 12 trials (2 done, 10 paused at their rung); 10 to run or decide on 2 slots (cpu×1t)",
            ),
            (
                vec![(Done, 1), (Stopped, 10), (Failed, 1)],
                0,
                "sweep `s`: 12 trials (1 done, 10 stopped by pruning, 1 failed); 0 to run on 2 slots (cpu×1t)",
            ),
        ] {
            assert_eq!(planned_line("s", 12, &counts, to_run, "cpu×1t", 2), line);
        }
    }
}
