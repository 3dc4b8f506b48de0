//! Learning-rate schedules: [`ScheduleKind`] names one, [`Schedule`] says the learning rate of
//! every batch, and [`ScheduleState`] is what it remembers between epochs (plateau's best
//! objective, its epochs without improvement and its current rate), saved in the last
//! checkpoint so that a resumed trial goes on exactly where it stopped. No I/O, no tensors:
//! the epoch loop sets the optimizer's rate from it before each batch.
//!
//! PyTorch's semantics (`scripts/schedule_reference.py` checks every case against
//! `torch.optim.lr_scheduler` to a relative 1e-12). With base rate `lr`, `E` epochs and
//! `warmup_epochs = W`:
//!
//! - warmup (every schedule but one-cycle): epoch `e ≤ W` trains at `lr·e/(W+1)` (torch's
//!   `LinearLR(start_factor=1/(W+1), total_iters=W)`), then the schedule starts from `lr` at
//!   epoch `W+1` (`SequentialLR(milestones=[W])`); `k = e − W − 1` counts the schedule's own
//!   epochs from 0;
//! - `constant`: `lr`;
//! - `cosine`: `min_lr + (lr − min_lr)·(1 + cos(π·k/T))/2` with `T = E − W` (at least 1):
//!   `CosineAnnealingLR(T_max=T, eta_min=min_lr)`;
//! - `step`: `lr·gamma^⌊k/step_size⌋` (`StepLR`);
//! - `plateau`: `ReduceLROnPlateau` on the trial's objective (mode from its direction,
//!   threshold 0: any strictly better value counts, cooldown 0): after `plateau_patience`
//!   epochs in a row without a better objective, the next epoch's rate is
//!   `max(rate·factor, min_lr)` (unchanged when that moves it by 1e-8 or less, as torch's
//!   `eps`); the warmup's epochs are not watched;
//! - `onecycle`, per batch: `OneCycleLR` with `pct_start` 0.3, cosine annealing and no
//!   momentum cycling: from `lr` up to `max_lr` over the first 30% of the `E·batches` steps,
//!   then down to `min_lr`.

use crate::unknown_name::{parse_name, UnknownName};

/// Which schedule.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    #[default]
    Constant,
    Cosine,
    Step,
    Plateau,
    Onecycle,
}

/// The keys of `[train]` that only some schedules read, in the order errors list them.
pub const SCHEDULE_KEYS: [&str; 7] = [
    "warmup_epochs",
    "min_lr",
    "step_size",
    "gamma",
    "factor",
    "plateau_patience",
    "max_lr",
];

impl ScheduleKind {
    /// Every schedule, in the order of its list of names.
    pub const ALL: [ScheduleKind; 5] = [
        ScheduleKind::Constant,
        ScheduleKind::Cosine,
        ScheduleKind::Step,
        ScheduleKind::Plateau,
        ScheduleKind::Onecycle,
    ];

    /// The name used in sweep files, on the command line and in the database.
    pub fn name(&self) -> &'static str {
        match self {
            ScheduleKind::Constant => "constant",
            ScheduleKind::Cosine => "cosine",
            ScheduleKind::Step => "step",
            ScheduleKind::Plateau => "plateau",
            ScheduleKind::Onecycle => "onecycle",
        }
    }

    /// Which of [`SCHEDULE_KEYS`] this schedule reads.
    pub fn keys(self) -> &'static [&'static str] {
        match self {
            ScheduleKind::Constant => &["warmup_epochs"],
            ScheduleKind::Cosine => &["warmup_epochs", "min_lr"],
            ScheduleKind::Step => &["warmup_epochs", "step_size", "gamma"],
            ScheduleKind::Plateau => &["warmup_epochs", "min_lr", "factor", "plateau_patience"],
            ScheduleKind::Onecycle => &["min_lr", "max_lr"],
        }
    }

    /// Which of its keys it cannot do without.
    pub fn required(self) -> &'static [&'static str] {
        match self {
            ScheduleKind::Step => &["step_size"],
            ScheduleKind::Onecycle => &["max_lr"],
            ScheduleKind::Constant | ScheduleKind::Cosine | ScheduleKind::Plateau => &[],
        }
    }
}

impl std::str::FromStr for ScheduleKind {
    type Err = UnknownName;

    fn from_str(text: &str) -> Result<Self, UnknownName> {
        parse_name("schedule", text, &Self::ALL, Self::name)
    }
}

/// StepLR's γ unless told otherwise: torch's.
pub const STEP_GAMMA: f64 = 0.1;
/// ReduceLROnPlateau's factor unless told otherwise: torch's.
pub const PLATEAU_FACTOR: f64 = 0.1;
/// ReduceLROnPlateau's patience unless told otherwise: torch's.
pub const PLATEAU_PATIENCE: u32 = 10;
/// A reduction smaller than this is not made: torch's ReduceLROnPlateau `eps`.
const PLATEAU_EPS: f64 = 1e-8;
/// The share of one-cycle's steps spent rising: torch's `pct_start`.
const ONECYCLE_PCT_START: f64 = 0.3;

/// What a schedule remembers between epochs: plateau's watch of the objective. Saved in the
/// last checkpoint; the other schedules are functions of the epoch and step alone.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScheduleState {
    /// The best objective seen since the warmup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best: Option<f64>,
    /// Epochs in a row without a better objective since the best or the last reduction.
    #[serde(default)]
    pub bad_epochs: u32,
    /// Plateau's current rate, once it has reduced it (`None`: the base rate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
}

/// A trial's schedule, its settings resolved: the learning rate of every batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub kind: ScheduleKind,
    /// The base rate (`train.lr`).
    pub lr: f64,
    pub epochs: u32,
    /// One-cycle: the training batches per epoch.
    pub batches: u64,
    pub warmup_epochs: u32,
    pub min_lr: f64,
    pub step_size: u32,
    pub gamma: f64,
    pub factor: f64,
    pub plateau_patience: u32,
    pub max_lr: f64,
    /// Plateau: whether a lower objective is better (the objective's direction).
    pub minimised: bool,
}

impl Schedule {
    /// The learning rate of the batch that comes after `step` updates, in epoch `epoch`
    /// (from 1), with plateau's `state`.
    pub fn lr(&self, epoch: u32, step: u64, state: &ScheduleState) -> f64 {
        if self.kind == ScheduleKind::Onecycle {
            return self.onecycle(step);
        }
        let w = self.warmup_epochs;
        if epoch <= w {
            return self.lr * epoch as f64 / (w + 1) as f64;
        }
        let k = epoch - w - 1;
        match self.kind {
            ScheduleKind::Constant => self.lr,
            ScheduleKind::Cosine => {
                let t = self.epochs.saturating_sub(w).max(1);
                if k >= t {
                    return self.min_lr;
                }
                let cos = (std::f64::consts::PI * k as f64 / t as f64).cos();
                self.min_lr + (self.lr - self.min_lr) * (1.0 + cos) / 2.0
            }
            ScheduleKind::Step => self.lr * self.gamma.powi((k / self.step_size.max(1)) as i32),
            ScheduleKind::Plateau => state.lr.unwrap_or(self.lr),
            ScheduleKind::Onecycle => unreachable!("one-cycle returned above"),
        }
    }

    /// One-cycle's rate at step `step` (from 0) of `epochs · batches`.
    fn onecycle(&self, step: u64) -> f64 {
        let total = self.epochs as f64 * self.batches as f64;
        let rise_end = ONECYCLE_PCT_START * total - 1.0;
        let last = total - 1.0;
        let t = (step as f64).min(last);
        let anneal = |start: f64, end: f64, pct: f64| {
            end + (start - end) / 2.0 * ((std::f64::consts::PI * pct).cos() + 1.0)
        };
        if t <= rise_end && rise_end > 0.0 {
            anneal(self.lr, self.max_lr, t / rise_end)
        } else if last > rise_end {
            anneal(self.max_lr, self.min_lr, (t - rise_end) / (last - rise_end))
        } else {
            self.min_lr
        }
    }

    /// The state after epoch `epoch` ended with `objective`: plateau counts it (once its
    /// warmup is over) and reduces the rate of the epochs after it when its patience runs
    /// out; the other schedules keep no state.
    pub fn after_epoch(&self, epoch: u32, objective: f64, state: &ScheduleState) -> ScheduleState {
        if self.kind != ScheduleKind::Plateau || epoch <= self.warmup_epochs {
            return state.clone();
        }
        let mut next = state.clone();
        let better = match state.best {
            None => !objective.is_nan(),
            Some(best) if self.minimised => objective < best,
            Some(best) => objective > best,
        };
        if better {
            next.best = Some(objective);
            next.bad_epochs = 0;
        } else {
            next.bad_epochs += 1;
        }
        if next.bad_epochs > self.plateau_patience {
            let old = state.lr.unwrap_or(self.lr);
            let new = (old * self.factor).max(self.min_lr);
            if old - new > PLATEAU_EPS {
                next.lr = Some(new);
            }
            next.bad_epochs = 0;
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schedule_name_reads_back_as_itself() {
        crate::unknown_name::assert_names_round_trip(&ScheduleKind::ALL, ScheduleKind::name);
    }

    #[test]
    fn every_schedule_key_is_read_by_some_schedule() {
        for key in SCHEDULE_KEYS {
            assert!(
                ScheduleKind::ALL.iter().any(|s| s.keys().contains(&key)),
                "{key}"
            );
        }
        for kind in ScheduleKind::ALL {
            for key in kind.required() {
                assert!(kind.keys().contains(key), "{kind:?} {key}");
            }
        }
    }

    /// One case of `tests/fixtures/schedule_reference.json`: sweep's settings and the rates
    /// torch's schedulers gave.
    #[derive(serde::Deserialize)]
    struct Case {
        name: String,
        schedule: ScheduleKind,
        lr: f64,
        epochs: u32,
        #[serde(default)]
        batches: u64,
        #[serde(default)]
        warmup_epochs: u32,
        #[serde(default)]
        min_lr: f64,
        #[serde(default)]
        step_size: u32,
        gamma: Option<f64>,
        factor: Option<f64>,
        plateau_patience: Option<u32>,
        #[serde(default)]
        max_lr: f64,
        #[serde(default)]
        minimised: bool,
        #[serde(default)]
        objectives: Vec<f64>,
        lrs: Vec<f64>,
    }

    impl Case {
        fn schedule(&self) -> Schedule {
            Schedule {
                kind: self.schedule,
                lr: self.lr,
                epochs: self.epochs,
                batches: self.batches,
                warmup_epochs: self.warmup_epochs,
                min_lr: self.min_lr,
                step_size: self.step_size,
                gamma: self.gamma.unwrap_or(STEP_GAMMA),
                factor: self.factor.unwrap_or(PLATEAU_FACTOR),
                plateau_patience: self.plateau_patience.unwrap_or(PLATEAU_PATIENCE),
                max_lr: self.max_lr,
                minimised: self.minimised,
            }
        }

        /// The rate of every epoch (of every batch for one-cycle), as sweep's epoch loop
        /// asks for them.
        fn rates(&self) -> Vec<f64> {
            let schedule = self.schedule();
            let mut state = ScheduleState::default();
            let mut rates = Vec::new();
            let mut step = 0;
            for epoch in 1..=self.epochs {
                if self.schedule == ScheduleKind::Onecycle {
                    for _ in 0..self.batches {
                        rates.push(schedule.lr(epoch, step, &state));
                        step += 1;
                    }
                } else {
                    rates.push(schedule.lr(epoch, step, &state));
                }
                let objective = self.objectives.get(epoch as usize - 1).copied();
                state = schedule.after_epoch(epoch, objective.unwrap_or(0.0), &state);
            }
            rates
        }
    }

    #[test]
    fn every_schedule_gives_torchs_rates() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/schedule_reference.json"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
        let cases: Vec<Case> = serde_json::from_value(reference["cases"].clone()).unwrap();
        let kinds: Vec<ScheduleKind> = cases.iter().map(|c| c.schedule).collect();
        for kind in ScheduleKind::ALL {
            assert!(kinds.contains(&kind), "no case for {kind:?}");
        }
        for case in &cases {
            let ours = case.rates();
            assert_eq!(ours.len(), case.lrs.len(), "{}", case.name);
            for (i, (&a, &b)) in ours.iter().zip(&case.lrs).enumerate() {
                let error = (a - b).abs() / b.abs().max(1e-300);
                assert!(
                    a == b || error < 1e-12,
                    "{} at {}: {a} against torch's {b} ({error:e})",
                    case.name,
                    i + 1
                );
            }
        }
    }

    #[test]
    fn plateau_reduces_after_its_patience_and_stops_at_min_lr() {
        let schedule = Schedule {
            kind: ScheduleKind::Plateau,
            lr: 1.0,
            epochs: 10,
            batches: 1,
            warmup_epochs: 0,
            min_lr: 0.3,
            step_size: 0,
            gamma: STEP_GAMMA,
            factor: 0.5,
            plateau_patience: 1,
            max_lr: 0.0,
            minimised: true,
        };
        let mut state = ScheduleState::default();
        let mut rates = Vec::new();
        for (epoch, loss) in [(1, 2.0), (2, 2.0), (3, 2.0), (4, 1.0), (5, 1.0), (6, 1.5)] {
            state = schedule.after_epoch(epoch, loss, &state);
            rates.push(schedule.lr(epoch + 1, 0, &state));
        }
        assert_eq!(rates, [1.0, 1.0, 0.5, 0.5, 0.5, 0.3]);
        assert_eq!(state.best, Some(1.0));
    }
}
