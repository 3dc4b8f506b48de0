//! How to train: [`TrainConfig`], the [`Objective`] that picks the best epoch, and the
//! [`Trial`] that puts them together with the data and the model.

use std::path::Path;

use candle_core::Device;

use crate::data::augment::Augment;
use crate::data::Dataset;
use crate::nn::ModelConfig;
use crate::train::metrics::EpochMetrics;
use crate::train::optim::{OptimizerKind, OPTIMIZER_EPS};
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
}

fn is_optimizer_eps(eps: &f64) -> bool {
    *eps == OPTIMIZER_EPS
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
        None
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
    fn every_objective_name_reads_back_as_itself() {
        crate::unknown_name::assert_names_round_trip(&Objective::ALL, Objective::name);
    }
}
