//! The runner's decisions, without I/O: [`handle`] takes what happened (a slot's claim came
//! back, a trial reported an event or ended, Ctrl-C, a heartbeat tick) and returns the
//! [`Action`]s to take (claim, launch, record, end, stop). The runner performs them and feeds
//! their results back as events, so every path through a sweep is a unit test here.
//! (The shape is nextest-runner's dispatcher: one state, one `handle`, effects outside.)

use sweep_model::{EpochMetrics, NamedEpoch};
use sweep_store::{ClaimedTrial, Ending, EpochRow, TrialId};

use crate::executor::{Exit, Stop};
use sweep_model::TrialEvent;

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The run begins: every free slot looks for a trial.
    Begin,
    /// Before it begins, the run found `trial` running as a batch job (submitted by an
    /// earlier run): `slot` follows it instead of launching anything.
    Attach { slot: usize, trial: ClaimedTrial },
    /// A slot's claim came back: a trial to run, or none left.
    Claimed {
        slot: usize,
        trial: Option<ClaimedTrial>,
    },
    /// A running trial reported an event.
    Reported { trial: TrialId, event: TrialEvent },
    /// A running trial's process ended (or never started).
    Ended { trial: TrialId, exit: Exit },
    /// Ctrl-C: the first asks running trials to stop, the second kills them.
    CtrlC,
    /// An action failed (the database cannot be written): stop as for a Ctrl-C.
    Abort,
    /// Time to tell the database this runner is alive.
    Tick,
    /// The rungs were decided: `promoted` trials went back in the queue.
    Pruned { promoted: usize },
    /// A search made new trials (one ended): idle slots claim them.
    Queued,
    /// A running trial was judged after an epoch: `stop_after` that epoch when it is to stop
    /// (median rule).
    Judged {
        trial: TrialId,
        stop_after: Option<u32>,
    },
}

/// How the run prunes trials, as far as its decisions go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pruning {
    Off,
    /// Trials pause at rungs; rungs are decided when a trial ends or pauses.
    Halving,
    /// Each running trial is judged after each epoch.
    Median,
}

/// What to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Claim the next runnable trial for `slot`; answer with [`Event::Claimed`].
    Claim { slot: usize },
    /// Start `trial` on `slot`.
    Launch { slot: usize, trial: ClaimedTrial },
    /// Follow `trial`'s job, which an earlier run submitted, on `slot`.
    Follow { slot: usize, trial: ClaimedTrial },
    /// Store these epochs of `trial` (a repeated epoch replaces the stored one).
    Record {
        trial: TrialId,
        epochs: Vec<EpochRow>,
    },
    /// `trial` started from a checkpoint that holds `epochs` (none: from scratch): store
    /// them in place of what was stored, forget every later epoch (the run trains them again,
    /// perhaps to other values) and keep `note`, when given, on the trial.
    Rewind {
        trial: TrialId,
        epochs: Vec<EpochRow>,
        note: Option<String>,
    },
    /// Store how `trial` ended.
    End { trial: TrialId, ending: Ending },
    /// Stop a running trial.
    Stop { trial: TrialId, how: Stop },
    /// Refresh this runner's heartbeat on its trials.
    Heartbeat,
    /// Decide the rungs that every trial has reached; answer with [`Event::Pruned`].
    Prune,
    /// Judge a running trial after `epoch`; answer with [`Event::Judged`].
    Judge { trial: TrialId, epoch: u32 },
}

/// What decides how a trial ends, gathered from its events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub finished: Option<TrialEvent>,
    pub failed: Option<String>,
    pub interrupted: bool,
    /// It reached its rung.
    pub paused: bool,
    /// A pruning decision stopped it after this epoch: later epochs it reports (it trains on
    /// until the request reaches it) are not recorded, so what is stored does not depend on
    /// how fast it stopped.
    pub pruned: Option<u32>,
}

/// A slot's state.
#[derive(Debug, Clone, PartialEq)]
enum SlotState {
    /// Its claim is out.
    Claiming,
    /// Nothing left for it to do.
    Idle,
    /// Running a trial.
    Running {
        trial: TrialId,
        /// Its attempts, this one included.
        attempts: i64,
        report: Box<Report>,
    },
}

/// The runner's state: what each slot does, and whether the run is stopping.
#[derive(Debug, Clone)]
pub struct State {
    slots: Vec<SlotState>,
    max_retries: u32,
    pruning: Pruning,
    /// Ctrl-Cs (or aborts) so far: 0 runs, 1 stops asking, 2 kills.
    stopping: u8,
    /// Trials launched by this run.
    launched: usize,
    /// Whether free slots claim trials (`sweep attach` only follows what runs).
    claims: bool,
}

impl State {
    /// A run over `slots` slots, retrying a failed trial up to `max_retries` times.
    pub fn new(slots: usize, max_retries: u32, pruning: Pruning) -> Self {
        State {
            slots: vec![SlotState::Idle; slots],
            max_retries,
            pruning,
            stopping: 0,
            launched: 0,
            claims: true,
        }
    }

    /// A run that only follows the trials it attaches to, and claims nothing.
    pub fn following_only(mut self) -> Self {
        self.claims = false;
        self
    }

    /// Whether the run is over: no claim out and no trial running.
    pub fn finished(&self) -> bool {
        self.slots.iter().all(|s| *s == SlotState::Idle)
    }

    /// 0 while running, 1 after a Ctrl-C, 2 after a second.
    pub fn stopping(&self) -> u8 {
        self.stopping
    }

    /// Trials launched so far.
    pub fn launched(&self) -> usize {
        self.launched
    }

    /// The slot running `trial`, the trial's attempts and its report so far.
    fn running(&mut self, trial: TrialId) -> Option<(usize, i64, &mut Report)> {
        self.slots
            .iter_mut()
            .enumerate()
            .find_map(|(slot, state)| match state {
                SlotState::Running {
                    trial: t,
                    attempts,
                    report,
                } if *t == trial => Some((slot, *attempts, report.as_mut())),
                _ => None,
            })
    }

    /// The slot's next step once it is free: another claim, unless the run is stopping.
    fn next(&mut self, slot: usize) -> Option<Action> {
        if self.stopping > 0 || !self.claims {
            self.slots[slot] = SlotState::Idle;
            None
        } else {
            self.slots[slot] = SlotState::Claiming;
            Some(Action::Claim { slot })
        }
    }

    /// Sends every idle slot to claim (trials went back in the queue, or new ones came).
    fn wake_idle(&mut self) -> Vec<Action> {
        let idle: Vec<usize> = (0..self.slots.len())
            .filter(|&slot| self.slots[slot] == SlotState::Idle)
            .collect();
        idle.into_iter()
            .filter_map(|slot| self.next(slot))
            .collect()
    }

    /// Stops every running trial.
    fn stop_all(&self, how: Stop) -> Vec<Action> {
        self.slots
            .iter()
            .filter_map(|s| match s {
                SlotState::Running { trial, .. } => Some(Action::Stop { trial: *trial, how }),
                _ => None,
            })
            .collect()
    }
}

/// Decides what `event` changes and what to do about it.
pub fn handle(state: &mut State, event: Event) -> Vec<Action> {
    match event {
        // A rung may have been completed by a run that died before deciding it.
        Event::Begin => (state.pruning == Pruning::Halving)
            .then_some(Action::Prune)
            .into_iter()
            .chain(
                (0..state.slots.len())
                    .filter(|&slot| state.slots[slot] == SlotState::Idle)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .filter_map(|slot| state.next(slot)),
            )
            .collect(),
        Event::Attach { slot, trial } => {
            state.slots[slot] = SlotState::Running {
                trial: trial.id,
                attempts: trial.attempts,
                report: Box::default(),
            };
            vec![Action::Follow { slot, trial }]
        }
        Event::Pruned { promoted } if promoted > 0 && state.stopping == 0 => state.wake_idle(),
        Event::Pruned { .. } => Vec::new(),
        Event::Queued if state.stopping == 0 => state.wake_idle(),
        Event::Queued => Vec::new(),
        Event::Judged {
            trial,
            stop_after: Some(epoch),
        } => match state.running(trial) {
            Some((_, _, report)) => {
                report.pruned = Some(epoch);
                vec![Action::Stop {
                    trial,
                    how: Stop::Ask,
                }]
            }
            None => Vec::new(),
        },
        Event::Judged { .. } => Vec::new(),
        Event::Claimed { slot, trial: None } => {
            state.slots[slot] = SlotState::Idle;
            Vec::new()
        }
        Event::Claimed {
            slot,
            trial: Some(trial),
        } => {
            if state.stopping > 0 {
                // Claimed as the run stopped: hand it back, to resume next time.
                state.slots[slot] = SlotState::Idle;
                return vec![Action::End {
                    trial: trial.id,
                    ending: Ending::Interrupted,
                }];
            }
            state.launched += 1;
            state.slots[slot] = SlotState::Running {
                trial: trial.id,
                attempts: trial.attempts,
                report: Box::default(),
            };
            vec![Action::Launch { slot, trial }]
        }
        Event::Reported { trial, event } => {
            let pruning = state.pruning;
            let Some((_, _, report)) = state.running(trial) else {
                return Vec::new();
            };
            let epoch = match &event {
                TrialEvent::Epoch(m) => Some(epoch_row(m)),
                TrialEvent::Reported(named) => Some(named_row(named)),
                _ => None,
            };
            if let Some(row) = epoch {
                let epoch = row.epoch as u32;
                if report.pruned.is_some_and(|last| epoch > last) {
                    return Vec::new();
                }
                let judge = (pruning == Pruning::Median).then_some(Action::Judge { trial, epoch });
                let record = Action::Record {
                    trial,
                    epochs: vec![row],
                };
                return [record].into_iter().chain(judge).collect();
            }
            let store = match &event {
                // A resumed trial's checkpoint may hold epochs whose events never reached the
                // database (the runner died after the checkpoint was written): record them
                // all. It may also hold fewer than the database (it fell back to an older
                // checkpoint, or started again, past a damaged one): those go.
                TrialEvent::Started {
                    history, recovered, ..
                } => {
                    // A requeued job starts again after it was interrupted.
                    report.interrupted = false;
                    Some(Action::Rewind {
                        trial,
                        epochs: history.iter().map(epoch_row).collect(),
                        note: recovered.as_ref().map(ToString::to_string),
                    })
                }
                // A command trial's program resumed after `history` (empty: from the start).
                TrialEvent::Resumed { history, .. } => {
                    report.interrupted = false;
                    Some(Action::Rewind {
                        trial,
                        epochs: history.iter().map(named_row).collect(),
                        note: None,
                    })
                }
                TrialEvent::Finished { .. } | TrialEvent::Completed { .. } => {
                    report.finished = Some(event);
                    None
                }
                TrialEvent::Failed { reason } => {
                    report.failed = Some(reason.clone());
                    None
                }
                TrialEvent::Interrupted { .. } => {
                    report.interrupted = true;
                    None
                }
                TrialEvent::Paused { .. } => {
                    report.paused = true;
                    None
                }
                TrialEvent::Batch { .. }
                | TrialEvent::Checkpoint { .. }
                | TrialEvent::Epoch(_)
                | TrialEvent::Reported(_) => None,
            };
            store.into_iter().collect()
        }
        Event::Ended { trial, exit } => {
            let (max_retries, stopping) = (state.max_retries, state.stopping > 0);
            let Some((slot, attempts, report)) = state.running(trial) else {
                return Vec::new();
            };
            let ending = decide_ending(report, &exit, attempts, max_retries, stopping);
            let mut actions = vec![Action::End { trial, ending }];
            if state.pruning == Pruning::Halving {
                actions.push(Action::Prune);
            }
            actions.extend(state.next(slot));
            actions
        }
        Event::CtrlC => {
            state.stopping = (state.stopping + 1).min(2);
            let how = if state.stopping == 1 {
                Stop::Ask
            } else {
                Stop::Kill
            };
            state.stop_all(how)
        }
        Event::Abort if state.stopping == 0 => {
            state.stopping = 1;
            state.stop_all(Stop::Ask)
        }
        Event::Abort => Vec::new(),
        Event::Tick => vec![Action::Heartbeat],
    }
}

/// A built-in trial's epoch as the database stores it: its metrics by their names.
pub fn epoch_row(m: &EpochMetrics) -> EpochRow {
    let metrics = [
        ("train_loss", m.train_loss),
        ("train_acc", m.train_acc),
        ("val_loss", m.val_loss),
        ("val_acc", m.val_acc),
        ("val_f1", m.val_f1),
        ("lr", m.lr),
    ];
    EpochRow {
        epoch: m.epoch as i64,
        seconds: m.seconds,
        metrics: metrics
            .map(|(name, value)| (name.to_string(), value))
            .into(),
    }
}

/// A command trial's epoch as the database stores it.
pub fn named_row(m: &NamedEpoch) -> EpochRow {
    EpochRow {
        epoch: m.epoch as i64,
        seconds: m.seconds,
        metrics: m.metrics.clone(),
    }
}

/// How a trial ended, from what it reported and how its process exited; `stopping` when
/// the run asked it to stop.
pub fn decide_ending(
    report: &Report,
    exit: &Exit,
    attempts: i64,
    max_retries: u32,
    stopping: bool,
) -> Ending {
    if report.pruned.is_some() && report.failed.is_none() {
        return Ending::Stopped;
    }
    if let Some(TrialEvent::Finished {
        best_epoch,
        objective,
        checkpoint,
        confusion,
        stopped_early,
    }) = &report.finished
    {
        return Ending::Done {
            best_epoch: *best_epoch as i64,
            objective: *objective,
            checkpoint: Some(checkpoint.display().to_string()),
            confusion: confusion.counts.clone(),
            classes: confusion.classes,
            note: stopped_early.clone(),
        };
    }
    if let Some(TrialEvent::Completed {
        best_epoch,
        objective,
        note,
    }) = &report.finished
    {
        return Ending::Done {
            best_epoch: *best_epoch as i64,
            objective: *objective,
            checkpoint: None,
            confusion: Vec::new(),
            classes: 0,
            note: note.clone(),
        };
    }
    let failed = report.failed.as_ref().or(exit.not_started.as_ref());
    if report.paused {
        return Ending::Paused;
    }
    // A batch job that ended (cancelled, timed out, …) after its trial stopped was not
    // stopped by this run: it failed, in the batch system's words.
    if exit.lost.is_none() && (report.interrupted || (stopping && failed.is_none())) {
        return Ending::Interrupted;
    }
    let mut error = match (failed, exit.code, exit.signal) {
        (Some(reason), _, _) => reason.clone(),
        (None, _, _) if exit.lost.is_some() => exit.lost.clone().unwrap_or_default(),
        (None, _, Some(sig)) => format!("the trial process was killed by signal {sig}"),
        (None, Some(code), _) => format!("the trial process exited with status {code}"),
        (None, None, None) => "the trial process ended without a result".into(),
    };
    if failed.is_none() && !exit.output_tail.is_empty() {
        error.push_str("\nstderr:\n");
        error.push_str(&exit.output_tail.join("\n"));
    }
    Ending::Failed {
        error,
        retry: attempts <= max_retries as i64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep_file::schema::goal_of;
    use sweep_model::train::{Damaged, Recovery};
    use sweep_model::Confusion;
    use sweep_model::Objective;
    use sweep_store::TrialSummary;

    fn claimed(id: i64, attempts: i64) -> ClaimedTrial {
        ClaimedTrial {
            id: TrialId(id),
            number: id,
            grid_index: id - 1,
            summary: TrialSummary {
                params: Default::default(),
                goal: goal_of(Objective::ValF1),
                epochs: 3,
                classes: None,
            },
            config: "{}".into(),
            config_hash: format!("{id:064}"),
            attempts,
            until_epoch: None,
        }
    }

    fn metrics(epoch: u32) -> EpochMetrics {
        EpochMetrics {
            epoch,
            train_loss: 1.0 / epoch as f64,
            train_acc: 0.5,
            val_loss: 1.0,
            val_acc: 0.5,
            val_f1: 0.4,
            lr: 0.01,
            seconds: 0.1,
        }
    }

    fn finished() -> TrialEvent {
        TrialEvent::Finished {
            best_epoch: 2,
            objective: 0.5,
            checkpoint: "t/best.safetensors".into(),
            confusion: Confusion::from_labels(2, &[0, 1], &[0, 0]),
            stopped_early: None,
        }
    }

    fn exited(code: i32) -> Exit {
        Exit {
            code: Some(code),
            ..Exit::default()
        }
    }

    fn killed(signal: i32) -> Exit {
        Exit {
            signal: Some(signal),
            ..Exit::default()
        }
    }

    fn reported(state: &mut State, id: i64, event: TrialEvent) -> Vec<Action> {
        handle(
            state,
            Event::Reported {
                trial: TrialId(id),
                event,
            },
        )
    }

    fn ended(state: &mut State, id: i64, exit: Exit) -> Vec<Action> {
        handle(
            state,
            Event::Ended {
                trial: TrialId(id),
                exit,
            },
        )
    }

    fn claim(state: &mut State, slot: usize, trial: Option<ClaimedTrial>) -> Vec<Action> {
        handle(state, Event::Claimed { slot, trial })
    }

    #[test]
    fn every_slot_claims_runs_records_and_claims_again_until_none_is_left() {
        let mut state = State::new(2, 0, Pruning::Off);
        assert!(state.finished());
        assert_eq!(
            handle(&mut state, Event::Begin),
            [Action::Claim { slot: 0 }, Action::Claim { slot: 1 }]
        );
        assert_eq!(
            claim(&mut state, 0, Some(claimed(1, 1))),
            [Action::Launch {
                slot: 0,
                trial: claimed(1, 1)
            }]
        );
        assert_eq!(claim(&mut state, 1, None), []);
        assert!(!state.finished());
        assert_eq!(
            reported(&mut state, 1, TrialEvent::Epoch(metrics(1))),
            [Action::Record {
                trial: TrialId(1),
                epochs: vec![epoch_row(&metrics(1))]
            }]
        );
        let batch = TrialEvent::Batch {
            epoch: 2,
            batch: 1,
            batches: 3,
            loss: 0.5,
        };
        assert_eq!(reported(&mut state, 1, batch), []);
        assert_eq!(reported(&mut state, 1, finished()), []);
        let actions = ended(&mut state, 1, exited(0));
        assert!(
            matches!(
                &actions[..],
                [
                    Action::End {
                        trial: TrialId(1),
                        ending: Ending::Done { best_epoch: 2, .. }
                    },
                    Action::Claim { slot: 0 }
                ]
            ),
            "{actions:?}"
        );
        assert_eq!(claim(&mut state, 0, None), []);
        assert!(state.finished());
        assert_eq!(state.launched(), 1);
    }

    #[test]
    fn new_trials_of_a_search_wake_the_idle_slots_unless_the_run_stops() {
        let mut state = State::new(2, 0, Pruning::Off);
        handle(&mut state, Event::Begin);
        claim(&mut state, 0, Some(claimed(1, 1)));
        assert_eq!(claim(&mut state, 1, None), [], "nothing to claim yet");
        assert_eq!(
            handle(&mut state, Event::Queued),
            [Action::Claim { slot: 1 }],
            "only the idle slot claims"
        );
        claim(&mut state, 1, None);
        handle(&mut state, Event::CtrlC);
        assert_eq!(handle(&mut state, Event::Queued), []);
    }

    #[test]
    fn a_trial_stopped_early_by_patience_is_done_with_the_reason_as_its_note() {
        let reason =
            "stopped early after epoch 4: val_f1 did not improve for 2 epochs after epoch 2";
        let report = Report {
            finished: Some(TrialEvent::Finished {
                best_epoch: 2,
                objective: 0.5,
                checkpoint: "t/best.safetensors".into(),
                confusion: Confusion::from_labels(2, &[0, 1], &[0, 0]),
                stopped_early: Some(reason.into()),
            }),
            ..Report::default()
        };
        let Ending::Done { note, .. } = decide_ending(&report, &exited(0), 1, 0, false) else {
            panic!("patience ends a trial as done, not failed")
        };
        assert_eq!(note.as_deref(), Some(reason));
    }

    #[test]
    fn a_trial_that_fails_twice_with_one_retry_is_failed() {
        let mut state = State::new(1, 1, Pruning::Off);
        handle(&mut state, Event::Begin);
        claim(&mut state, 0, Some(claimed(7, 1)));
        let diverged = TrialEvent::Failed {
            reason: "diverged at epoch 1, batch 2".into(),
        };
        reported(&mut state, 7, diverged.clone());
        assert_eq!(
            ended(&mut state, 7, exited(1)),
            [
                Action::End {
                    trial: TrialId(7),
                    ending: Ending::Failed {
                        error: "diverged at epoch 1, batch 2".into(),
                        retry: true
                    }
                },
                Action::Claim { slot: 0 }
            ],
            "the first failure goes back in the queue"
        );
        // The database hands the same trial back, its attempts counted.
        claim(&mut state, 0, Some(claimed(7, 2)));
        reported(&mut state, 7, diverged);
        assert_eq!(
            ended(&mut state, 7, exited(1)),
            [
                Action::End {
                    trial: TrialId(7),
                    ending: Ending::Failed {
                        error: "diverged at epoch 1, batch 2".into(),
                        retry: false
                    }
                },
                Action::Claim { slot: 0 }
            ]
        );
        claim(&mut state, 0, None);
        assert!(state.finished());
        assert_eq!(state.launched(), 2);
    }

    #[test]
    fn ctrl_c_asks_running_trials_to_stop_then_kills_them_and_claims_nothing_more() {
        let mut state = State::new(3, 0, Pruning::Off);
        handle(&mut state, Event::Begin);
        claim(&mut state, 0, Some(claimed(1, 1)));
        claim(&mut state, 1, Some(claimed(2, 1)));
        assert_eq!(
            handle(&mut state, Event::CtrlC),
            [
                Action::Stop {
                    trial: TrialId(1),
                    how: Stop::Ask
                },
                Action::Stop {
                    trial: TrialId(2),
                    how: Stop::Ask
                }
            ]
        );
        assert_eq!(state.stopping(), 1);
        // The third slot's claim was out: what it got goes back unrun.
        assert_eq!(
            claim(&mut state, 2, Some(claimed(3, 1))),
            [Action::End {
                trial: TrialId(3),
                ending: Ending::Interrupted
            }]
        );
        reported(&mut state, 1, TrialEvent::Interrupted { epochs: 2 });
        assert_eq!(
            ended(&mut state, 1, exited(130)),
            [Action::End {
                trial: TrialId(1),
                ending: Ending::Interrupted
            }],
            "stopped cleanly, and no new claim"
        );
        assert_eq!(
            handle(&mut state, Event::CtrlC),
            [Action::Stop {
                trial: TrialId(2),
                how: Stop::Kill
            }]
        );
        assert_eq!(
            ended(&mut state, 2, killed(9)),
            [Action::End {
                trial: TrialId(2),
                ending: Ending::Interrupted
            }],
            "killed on request: resumable, not failed"
        );
        assert!(state.finished());
        assert_eq!(handle(&mut state, Event::CtrlC), []);
    }

    #[test]
    fn a_stale_runners_trial_taken_over_records_its_checkpoints_epochs() {
        let mut state = State::new(1, 0, Pruning::Off);
        handle(&mut state, Event::Begin);
        // Its runner died with the trial at epoch 3; the database had only epoch 1.
        claim(&mut state, 0, Some(claimed(4, 2)));
        let started = TrialEvent::Started {
            device: "cpu".into(),
            history: (1..=3).map(metrics).collect(),
            recovered: None,
        };
        assert_eq!(
            reported(&mut state, 4, started),
            [Action::Rewind {
                trial: TrialId(4),
                epochs: (1..=3).map(|e| epoch_row(&metrics(e))).collect(),
                note: None,
            }]
        );
        reported(&mut state, 4, TrialEvent::Epoch(metrics(4)));
        reported(&mut state, 4, finished());
        assert!(matches!(
            ended(&mut state, 4, exited(0))[0],
            Action::End {
                ending: Ending::Done { .. },
                ..
            }
        ));
    }

    #[test]
    fn a_process_that_exits_without_a_final_event_failed_with_its_output() {
        let mut state = State::new(1, 0, Pruning::Off);
        handle(&mut state, Event::Begin);
        claim(&mut state, 0, Some(claimed(5, 1)));
        reported(&mut state, 5, TrialEvent::Epoch(metrics(1)));
        let exit = Exit {
            signal: Some(9),
            output_tail: vec!["memory allocation of 8 GiB failed".into()],
            ..Exit::default()
        };
        let actions = ended(&mut state, 5, exit);
        let [Action::End {
            ending: Ending::Failed { error, retry },
            ..
        }, Action::Claim { slot: 0 }] = &actions[..]
        else {
            panic!("failed, then a new claim: {actions:?}")
        };
        assert!(!retry);
        assert_eq!(
            error,
            "the trial process was killed by signal 9\nstderr:\nmemory allocation of 8 GiB failed"
        );
        let Ending::Failed { error, .. } =
            decide_ending(&Report::default(), &exited(101), 1, 0, false)
        else {
            panic!("a bad exit is a failure")
        };
        assert_eq!(error, "the trial process exited with status 101");
        let Ending::Failed { error, .. } = decide_ending(
            &Report::default(),
            &Exit::not_started("cannot start sweep: No such file".into()),
            1,
            0,
            true,
        ) else {
            panic!("a trial that cannot start failed, even while stopping")
        };
        assert_eq!(error, "cannot start sweep: No such file");
    }

    #[test]
    fn attached_jobs_are_followed_and_a_requeued_one_is_not_interrupted() {
        let mut state = State::new(3, 1, Pruning::Off);
        assert_eq!(
            handle(
                &mut state,
                Event::Attach {
                    slot: 0,
                    trial: claimed(1, 1)
                }
            ),
            [Action::Follow {
                slot: 0,
                trial: claimed(1, 1)
            }]
        );
        assert_eq!(
            handle(&mut state, Event::Begin),
            [Action::Claim { slot: 1 }, Action::Claim { slot: 2 }],
            "the attached slot claims nothing"
        );
        claim(&mut state, 1, None);
        claim(&mut state, 2, None);
        reported(&mut state, 1, TrialEvent::Interrupted { epochs: 1 });
        let started = TrialEvent::Started {
            device: "cpu".into(),
            history: vec![metrics(1)],
            recovered: None,
        };
        reported(&mut state, 1, started);
        reported(&mut state, 1, finished());
        assert!(matches!(
            ended(&mut state, 1, exited(0))[0],
            Action::End {
                ending: Ending::Done { .. },
                ..
            }
        ));
        assert_eq!(state.launched(), 0, "following is not launching");
    }

    #[test]
    fn a_job_lost_without_a_final_event_failed_with_slurms_words_and_is_retried() {
        let mut state = State::new(1, 1, Pruning::Off).following_only();
        handle(
            &mut state,
            Event::Attach {
                slot: 0,
                trial: claimed(2, 1),
            },
        );
        assert_eq!(handle(&mut state, Event::Begin), []);
        let exit = Exit {
            lost: Some("Slurm job 12_3 ended CANCELLED".into()),
            output_tail: vec!["slurmstepd: error: *** JOB 13 CANCELLED ***".into()],
            ..Exit::default()
        };
        reported(&mut state, 2, TrialEvent::Interrupted { epochs: 1 });
        let actions = ended(&mut state, 2, exit);
        let [Action::End {
            ending: Ending::Failed { error, retry },
            ..
        }] = &actions[..]
        else {
            panic!("failed, and no claim when only following: {actions:?}")
        };
        assert!(retry);
        assert!(
            error.starts_with("Slurm job 12_3 ended CANCELLED\nstderr:\n"),
            "{error}"
        );
        assert!(state.finished());
    }

    #[test]
    fn an_abort_stops_like_ctrl_c_once() {
        let mut state = State::new(1, 0, Pruning::Off);
        handle(&mut state, Event::Begin);
        claim(&mut state, 0, Some(claimed(1, 1)));
        assert_eq!(
            handle(&mut state, Event::Abort),
            [Action::Stop {
                trial: TrialId(1),
                how: Stop::Ask
            }]
        );
        assert_eq!(handle(&mut state, Event::Abort), []);
        reported(&mut state, 1, finished());
        assert!(
            matches!(
                ended(&mut state, 1, exited(0))[..],
                [Action::End {
                    ending: Ending::Done { .. },
                    ..
                }]
            ),
            "a trial that finished is done, stopping or not"
        );
        assert!(state.finished());
        assert_eq!(handle(&mut state, Event::Tick), [Action::Heartbeat]);
    }

    #[test]
    fn a_trial_past_a_damaged_checkpoint_rewinds_its_epochs_and_keeps_a_note() {
        let mut state = State::new(1, 0, Pruning::Off);
        handle(&mut state, Event::Begin);
        claim(&mut state, 0, Some(claimed(3, 2)));
        // The database has epochs 1 to 4; the last checkpoint was truncated, and the one
        // before it holds epochs 1 and 2.
        let recovery = Recovery {
            damaged: vec![Damaged {
                file: "last.safetensors".into(),
                problem: "not a sweep checkpoint: invalid header length".into(),
            }],
            resumed_from: Some("previous.safetensors".into()),
            epochs: 2,
        };
        let started = TrialEvent::Started {
            device: "cpu".into(),
            history: (1..=2).map(metrics).collect(),
            recovered: Some(recovery),
        };
        assert_eq!(
            reported(&mut state, 3, started),
            [Action::Rewind {
                trial: TrialId(3),
                epochs: (1..=2).map(|e| epoch_row(&metrics(e))).collect(),
                note: Some(
                    "last.safetensors did not load (not a sweep checkpoint: invalid header \
                     length); resumed from previous.safetensors after epoch 2"
                        .into()
                ),
            }],
            "the checkpoint's epochs replace the stored ones, and the note says why"
        );
        // Nothing loaded: a start from scratch forgets every stored epoch.
        let restarted = TrialEvent::Started {
            device: "cpu".into(),
            history: Vec::new(),
            recovered: Some(Recovery {
                damaged: Vec::new(),
                resumed_from: None,
                epochs: 0,
            }),
        };
        assert_eq!(
            reported(&mut state, 3, restarted),
            [Action::Rewind {
                trial: TrialId(3),
                epochs: Vec::new(),
                note: Some("started again from epoch 1".into()),
            }]
        );
        assert_eq!(
            reported(&mut state, 3, TrialEvent::Epoch(metrics(1))),
            [Action::Record {
                trial: TrialId(3),
                epochs: vec![epoch_row(&metrics(1))]
            }]
        );
    }
}
