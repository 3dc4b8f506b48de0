//! What a sweep file describes, once read: [`SweepFile`], and [`TrialConfig`], everything one
//! trial trains with (the trial process reads it from its folder's `config.json`).

use std::path::PathBuf;

use sweep_model::{Augment, DeviceName, ModelConfig, SyntheticSpec, TrainConfig};

use super::hyperparameters::Setting;
use super::prune::Prune;
use super::random::Random;

/// Where a sweep's images come from.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataSource {
    /// A folder in the competition layout.
    Dir(PathBuf),
    /// The built-in synthetic set.
    Synthetic(SyntheticSpec),
}

/// Which devices a sweep runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Devices {
    /// Every visible GPU, else the CPU.
    Auto,
    /// These devices.
    List(Vec<DeviceName>),
}

/// The `[run]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSettings {
    pub devices: Devices,
    pub trials_per_device: usize,
    pub max_retries: u32,
}

/// A grid axis: a hyperparameter and its values.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub key: String,
    pub values: Vec<Setting>,
}

/// A validated sweep file.
#[derive(Debug, Clone)]
pub struct SweepFile {
    pub path: PathBuf,
    pub text: String,
    pub name: String,
    pub data: DataSource,
    /// The number of classes, when the file sets it (else the data's largest label + 1).
    pub classes: Option<usize>,
    pub augment: Augment,
    pub model: ModelConfig,
    pub train: TrainConfig,
    pub grid: Vec<Axis>,
    /// The `[random]` search, drawn in every grid cell.
    pub random: Option<Random>,
    /// How the runner stops unpromising trials early, if it does.
    pub prune: Option<Prune>,
    pub run: RunSettings,
}

/// Everything one trial trains with; its hash is the trial's identity.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrialConfig {
    pub data: DataSource,
    pub classes: Option<usize>,
    pub augment: Augment,
    pub model: ModelConfig,
    pub train: TrainConfig,
}
