//! How to train: [`TrainConfig`], the [`Objective`] that picks the best epoch, and the
//! [`Trial`] that puts them together with the data and the model.

use std::path::Path;

use candle_core::Device;

use crate::data::augment::Augment;
use crate::data::Dataset;
use crate::nn::ModelConfig;
use crate::train::metrics::EpochMetrics;
use crate::train::optim::{OptimizerKind, OPTIMIZER_EPS};
use crate::train::schedule::{
    Schedule, ScheduleKind, PLATEAU_FACTOR, PLATEAU_PATIENCE, SCHEDULE_KEYS, STEP_GAMMA,
};
use crate::unknown_name::{parse_name, UnknownName};

/// What "best" means for a trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// Validation macro F1, maximised.
    ValF1,
    /// Validation accuracy, maximised.
    ValAcc,
    /// Validation loss, minimised.
    ValLoss,
}

impl Objective {
    /// Every objective, in the order of its list of names.
    pub const ALL: [Objective; 3] = [Objective::ValF1, Objective::ValAcc, Objective::ValLoss];

    /// The name used in sweep files, on the command line and in the database.
    pub fn name(&self) -> &'static str {
        match self {
            Objective::ValF1 => "val_f1",
            Objective::ValAcc => "val_acc",
            Objective::ValLoss => "val_loss",
        }
    }
}

impl std::str::FromStr for Objective {
    type Err = UnknownName;

    fn from_str(text: &str) -> Result<Self, UnknownName> {
        parse_name("objective", text, &Self::ALL, Self::name)
    }
}

impl Objective {
    /// The objective's value in an epoch's metrics.
    pub fn value(self, m: &EpochMetrics) -> f64 {
        match self {
            Objective::ValF1 => m.val_f1,
            Objective::ValAcc => m.val_acc,
            Objective::ValLoss => m.val_loss,
        }
    }

    /// Whether less of it is better (a loss) rather than more (a score).
    pub fn minimised(self) -> bool {
        match self {
            Objective::ValLoss => true,
            Objective::ValF1 | Objective::ValAcc => false,
        }
    }

    /// Whether `a` is strictly better than `b`.
    pub fn better(self, a: f64, b: f64) -> bool {
        if self.minimised() {
            a < b
        } else {
            a > b
        }
    }
}

/// How to train: everything about the run but the model's shape and the data.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub epochs: u32,
    pub batch_size: usize,
    pub optimizer: OptimizerKind,
    pub lr: f64,
    /// SGD's momentum (0 for plain SGD); the other optimizers ignore it.
    pub momentum: f64,
    pub seed: u64,
    pub objective: Objective,
    /// Adam's and RMSprop's ε. Left out of the JSON at its old fixed value, so older trial
    /// hashes are unchanged.
    #[serde(skip_serializing_if = "is_optimizer_eps")]
    pub eps: f64,
    /// Weight decay λ, PyTorch's: coupled L2 (`g + λ·p`) for sgd, adam and rmsprop,
    /// decoupled for adamw. Left out of the JSON at 0, as the keys below at their defaults,
    /// so older trial hashes are unchanged.
    #[serde(skip_serializing_if = "is_zero")]
    pub weight_decay: f64,
    /// SGD's momentum Nesterov's; the other optimizers ignore it.
    #[serde(skip_serializing_if = "is_false")]
    pub nesterov: bool,
    /// The training loss's label smoothing ε, as `nn.CrossEntropyLoss(label_smoothing=ε)`;
    /// the validation loss stays the plain cross-entropy.
    #[serde(skip_serializing_if = "is_zero")]
    pub label_smoothing: f64,
    /// Early stopping: the trial ends as done once this many epochs pass without a better
    /// objective (0: never).
    #[serde(skip_serializing_if = "is_never")]
    pub patience: u32,
    /// The learning-rate schedule ([`crate::train::schedule`] defines each). The keys below
    /// are read by some schedules only: each is `None` unless given, so that a key given to
    /// a schedule that does not read it is refused ([`TrainConfig::schedule_problem`]), and
    /// all are left out of the JSON when not given, so older trial hashes are unchanged.
    #[serde(skip_serializing_if = "is_constant")]
    pub schedule: ScheduleKind,
    /// Epochs of linear warmup before the schedule (every schedule but `onecycle`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warmup_epochs: Option<u32>,
    /// The lowest rate: cosine's `eta_min`, plateau's floor, one-cycle's last rate (0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_lr: Option<f64>,
    /// `step`: epochs between two reductions (required).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_size: Option<u32>,
    /// `step`: the factor of each reduction (0.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gamma: Option<f64>,
    /// `plateau`: the factor of each reduction (0.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub factor: Option<f64>,
    /// `plateau`: epochs without a better objective before a reduction (10). Not
    /// `patience`, which ends the trial.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plateau_patience: Option<u32>,
    /// `onecycle`: the peak rate (required); the cycle starts at `lr`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_lr: Option<f64>,
}

fn is_constant(schedule: &ScheduleKind) -> bool {
    *schedule == ScheduleKind::Constant
}

fn is_never(patience: &u32) -> bool {
    *patience == 0
}

fn is_optimizer_eps(eps: &f64) -> bool {
    *eps == OPTIMIZER_EPS
}

fn is_zero(value: &f64) -> bool {
    *value == 0.0
}

fn is_false(value: &bool) -> bool {
    !*value
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 64,
            optimizer: OptimizerKind::Adam,
            lr: 0.001,
            momentum: 0.0,
            seed: 42,
            objective: Objective::ValF1,
            eps: OPTIMIZER_EPS,
            weight_decay: 0.0,
            nesterov: false,
            label_smoothing: 0.0,
            patience: 0,
            schedule: ScheduleKind::Constant,
            warmup_epochs: None,
            min_lr: None,
            step_size: None,
            gamma: None,
            factor: None,
            plateau_patience: None,
            max_lr: None,
        }
    }
}

impl TrainConfig {
    /// Why the settings are out of range, naming the key, if they are.
    pub fn problem(&self) -> Option<String> {
        if self.epochs == 0 {
            return Some("train.epochs must be at least 1".into());
        }
        if self.batch_size < 2 {
            return Some(format!(
                "train.batch_size must be at least 2 (batch norm needs two images), not {}",
                self.batch_size
            ));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Some(format!(
                "train.lr must be a positive number, not {}",
                self.lr
            ));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return Some(format!(
                "train.momentum must be in [0, 1), not {}",
                self.momentum
            ));
        }
        if !(self.eps > 0.0 && self.eps < 1.0) {
            return Some(format!("train.eps must be in (0, 1), not {}", self.eps));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return Some(format!(
                "train.weight_decay must be a number of at least 0, not {}",
                self.weight_decay
            ));
        }
        if !(0.0..=1.0).contains(&self.label_smoothing) {
            return Some(format!(
                "train.label_smoothing must be in [0, 1], not {}",
                self.label_smoothing
            ));
        }
        let rate = |value: Option<f64>, positive: bool| {
            value.is_some_and(|v| !(v.is_finite() && (v > 0.0 || (!positive && v == 0.0))))
        };
        if rate(self.min_lr, false) {
            return Some(format!(
                "train.min_lr must be a number of at least 0, not {}",
                self.min_lr.unwrap_or_default()
            ));
        }
        if rate(self.max_lr, true) {
            return Some(format!(
                "train.max_lr must be a positive number, not {}",
                self.max_lr.unwrap_or_default()
            ));
        }
        if rate(self.gamma, true) {
            return Some(format!(
                "train.gamma must be a positive number, not {}",
                self.gamma.unwrap_or_default()
            ));
        }
        if let Some(factor) = self.factor.filter(|f| !(*f > 0.0 && *f < 1.0)) {
            return Some(format!("train.factor must be in (0, 1), not {factor}"));
        }
        if self.step_size == Some(0) {
            return Some("train.step_size must be at least 1".into());
        }
        None
    }

    /// Which of the schedule keys are given, in [`SCHEDULE_KEYS`]' order.
    pub fn schedule_keys_given(&self) -> Vec<&'static str> {
        let given = [
            self.warmup_epochs.is_some(),
            self.min_lr.is_some(),
            self.step_size.is_some(),
            self.gamma.is_some(),
            self.factor.is_some(),
            self.plateau_patience.is_some(),
            self.max_lr.is_some(),
        ];
        SCHEDULE_KEYS
            .into_iter()
            .zip(given)
            .filter_map(|(key, given)| given.then_some(key))
            .collect()
    }

    /// Why the schedule's keys do not go together, naming the key, if they do not: a key
    /// the schedule does not read, or one it needs and lacks. Apart from
    /// [`TrainConfig::problem`], which checks each value alone, because a sweep file may
    /// give the keys in any order, and some as grid axes.
    pub fn schedule_problem(&self) -> Option<String> {
        schedule_keys_problem(self.schedule, &self.schedule_keys_given())
    }

    /// The schedule of this configuration, for a trial of `batches` batches per epoch.
    pub fn schedule(&self, batches: u64) -> Schedule {
        Schedule {
            kind: self.schedule,
            lr: self.lr,
            epochs: self.epochs,
            batches,
            warmup_epochs: self.warmup_epochs.unwrap_or(0),
            min_lr: self.min_lr.unwrap_or(0.0),
            step_size: self.step_size.unwrap_or(1),
            gamma: self.gamma.unwrap_or(STEP_GAMMA),
            factor: self.factor.unwrap_or(PLATEAU_FACTOR),
            plateau_patience: self.plateau_patience.unwrap_or(PLATEAU_PATIENCE),
            max_lr: self.max_lr.unwrap_or(self.lr),
            minimised: self.objective.minimised(),
        }
    }
}

/// Why `schedule` cannot run with the schedule keys `given`, naming the key: one it does not
/// read, or one it needs that is not given.
pub fn schedule_keys_problem(schedule: ScheduleKind, given: &[&str]) -> Option<String> {
    let name = schedule.name();
    if let Some(key) = given.iter().find(|key| !schedule.keys().contains(key)) {
        let readers: Vec<String> = ScheduleKind::ALL
            .iter()
            .filter(|s| s.keys().contains(key))
            .map(|s| format!("\"{}\"", s.name()))
            .collect();
        return Some(format!(
            "train.{key} is for the schedule {}, not \"{name}\"",
            or_list(&readers)
        ));
    }
    schedule
        .required()
        .iter()
        .find(|key| !given.contains(key))
        .map(|key| format!("train.schedule \"{name}\" needs `{key}`"))
}

/// `a`, `a or b`, `a, b or c`.
fn or_list(items: &[String]) -> String {
    match items.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// One trial to train: the data, the configuration and where its checkpoints live.
pub struct Trial<'a> {
    pub dataset: &'a Dataset,
    pub model: &'a ModelConfig,
    pub train: &'a TrainConfig,
    pub augment: &'a Augment,
    pub device: &'a Device,
    /// The trial's folder: `last.safetensors` and `best.safetensors` go there.
    pub dir: &'a Path,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_new_keys_at_their_defaults_leave_the_json_as_it_was() {
        let json = serde_json::to_value(TrainConfig::default()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "epochs": 10, "batch_size": 64, "optimizer": "adam", "lr": 0.001,
                "momentum": 0.0, "seed": 42, "objective": "val_f1"
            })
        );
        let set = TrainConfig {
            weight_decay: 1e-4,
            nesterov: true,
            label_smoothing: 0.1,
            ..TrainConfig::default()
        };
        let json = serde_json::to_value(&set).unwrap();
        assert_eq!(
            (json["weight_decay"].as_f64(), json["nesterov"].as_bool()),
            (Some(1e-4), Some(true))
        );
        assert_eq!(json["label_smoothing"].as_f64(), Some(0.1));
        assert_eq!(serde_json::from_value::<TrainConfig>(json).unwrap(), set);
    }

    #[test]
    fn weight_decay_is_checked() {
        let with = |optimizer, weight_decay| TrainConfig {
            optimizer,
            weight_decay,
            ..TrainConfig::default()
        };
        assert_eq!(with(OptimizerKind::Sgd, 5e-4).problem(), None);
        let problem = with(OptimizerKind::Sgd, -1.0).problem().unwrap();
        assert!(
            problem.starts_with("train.weight_decay must be"),
            "{problem}"
        );
        let smoothing = |label_smoothing| TrainConfig {
            label_smoothing,
            ..TrainConfig::default()
        };
        assert_eq!(smoothing(1.0).problem(), None);
        let problem = smoothing(1.5).problem().unwrap();
        assert_eq!(problem, "train.label_smoothing must be in [0, 1], not 1.5");
    }

    #[test]
    fn the_schedule_keys_are_checked_alone_and_together() {
        let with = |edit: fn(&mut TrainConfig)| {
            let mut config = TrainConfig::default();
            edit(&mut config);
            config
        };
        assert_eq!(
            serde_json::to_value(with(|c| c.schedule = ScheduleKind::Constant)).unwrap(),
            serde_json::to_value(TrainConfig::default()).unwrap(),
            "the constant schedule leaves the JSON as it was"
        );
        let problem = |edit| with(edit).problem();
        assert_eq!(
            problem(|c| c.min_lr = Some(-1e-3)).as_deref(),
            Some("train.min_lr must be a number of at least 0, not -0.001")
        );
        assert_eq!(problem(|c| c.min_lr = Some(0.0)), None);
        assert_eq!(
            problem(|c| c.max_lr = Some(0.0)).as_deref(),
            Some("train.max_lr must be a positive number, not 0")
        );
        assert_eq!(
            problem(|c| c.factor = Some(1.0)).as_deref(),
            Some("train.factor must be in (0, 1), not 1")
        );
        assert_eq!(
            problem(|c| c.step_size = Some(0)).as_deref(),
            Some("train.step_size must be at least 1")
        );
        let together = |edit| with(edit).schedule_problem();
        assert_eq!(together(|_| {}), None);
        assert_eq!(
            together(|c| c.max_lr = Some(0.1)).as_deref(),
            Some("train.max_lr is for the schedule \"onecycle\", not \"constant\"")
        );
        assert_eq!(
            together(|c| {
                c.schedule = ScheduleKind::Cosine;
                c.step_size = Some(3);
            })
            .as_deref(),
            Some("train.step_size is for the schedule \"step\", not \"cosine\"")
        );
        assert_eq!(
            together(|c| {
                c.schedule = ScheduleKind::Onecycle;
                c.warmup_epochs = Some(2);
            })
            .as_deref(),
            Some(
                "train.warmup_epochs is for the schedule \"constant\", \"cosine\", \"step\" \
                 or \"plateau\", not \"onecycle\""
            )
        );
        assert_eq!(
            together(|c| c.schedule = ScheduleKind::Step).as_deref(),
            Some("train.schedule \"step\" needs `step_size`")
        );
        let set = with(|c| {
            c.schedule = ScheduleKind::Plateau;
            c.factor = Some(0.5);
            c.plateau_patience = Some(2);
        });
        assert_eq!(set.schedule_problem(), None);
        let json = serde_json::to_value(&set).unwrap();
        assert_eq!(json["schedule"], "plateau");
        assert_eq!(serde_json::from_value::<TrainConfig>(json).unwrap(), set);
    }

    #[test]
    fn every_objective_name_reads_back_as_itself() {
        crate::unknown_name::assert_names_round_trip(&Objective::ALL, Objective::name);
    }
}
