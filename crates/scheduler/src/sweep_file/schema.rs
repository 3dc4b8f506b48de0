//! What a sweep file describes, once read: [`SweepFile`], and [`TrialConfig`], what one trial
//! runs (the built-in trainer's configuration, or a user's command and its params; the trial
//! process reads it from its folder's `config.json`), and whose [`TrialConfig::summary`] is
//! all the other crates read of it.

use std::path::PathBuf;

use sweep_model::{Augment, DeviceName, ModelConfig, Objective, SyntheticSpec, TrainConfig};
use sweep_store::{Direction, Goal, Params, TrialSummary};

use super::hyperparameters::Setting;
use super::prune::Prune;
use super::random::Random;
use super::search::Search;

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

/// Where a sweep's trials run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Executor {
    /// Child processes of `sweep run`, on this machine's device slots.
    #[default]
    Local,
    /// Slurm jobs (job arrays submitted with sbatch), with the `[run.slurm]` settings.
    Slurm,
}

impl Executor {
    /// Every executor, as the sweep file and `--executor` name them.
    pub const ALL: [Executor; 2] = [Executor::Local, Executor::Slurm];

    /// The name in the sweep file and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Executor::Local => "local",
            Executor::Slurm => "slurm",
        }
    }
}

impl std::str::FromStr for Executor {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Executor::ALL
            .into_iter()
            .find(|e| e.name() == text)
            .ok_or_else(|| format!("unknown executor `{text}` (local or slurm)"))
    }
}

/// The `[run.slurm]` table: how each trial's job is submitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlurmSettings {
    pub partition: Option<String>,
    /// GPUs per trial (`--gpus`); 0 runs the trial on the CPU.
    pub gpus_per_trial: u32,
    pub cpus_per_trial: u32,
    /// `--mem`, as Slurm writes it: `16G`, `4000M`.
    pub mem: Option<String>,
    /// `--time`, as Slurm writes it: `30`, `2:00:00`, `1-12:00:00`.
    pub time: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
    /// At most this many of the sweep's jobs run at once (the arrays' `%N`).
    pub max_parallel: Option<u32>,
    /// At most this many trials in one job array, below the cluster's `MaxArraySize`.
    pub array_size: Option<u32>,
    /// Passed to sbatch as written, after sweep's own options.
    pub sbatch_args: Vec<String>,
    /// Seconds before the time limit (or a preemption) that the trial is told to checkpoint
    /// and stop (`--signal=B:USR2@N`).
    pub warning_seconds: u32,
    /// How many times a trial's job may be requeued (preempted, timed out) before the trial
    /// is failed.
    pub max_requeues: u32,
}

impl Default for SlurmSettings {
    fn default() -> Self {
        SlurmSettings {
            partition: None,
            gpus_per_trial: 0,
            cpus_per_trial: 1,
            mem: None,
            time: None,
            account: None,
            qos: None,
            max_parallel: None,
            array_size: None,
            sbatch_args: Vec::new(),
            warning_seconds: 120,
            max_requeues: 3,
        }
    }
}

/// The `[run]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSettings {
    pub devices: Devices,
    pub trials_per_device: usize,
    pub max_retries: u32,
    pub executor: Executor,
    pub slurm: SlurmSettings,
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
    /// The model-based `[search]`, whose trials the runner makes one by one (never with a
    /// grid or `[random]`).
    pub search: Option<Search>,
    /// How the runner stops unpromising trials early, if it does.
    pub prune: Option<Prune>,
    pub run: RunSettings,
    /// The user's program that each trial runs (`[trial]` and `[params]`), instead of the
    /// built-in trainer; the file then has no `[data]`, `[model]` or `[train]`, and those
    /// fields keep their defaults unused.
    pub command: Option<CommandTrial>,
}

impl SweepFile {
    /// The epochs every trial trains at most (the file's, before any grid axis).
    pub fn epochs(&self) -> u32 {
        match &self.command {
            Some(command) => command.epochs,
            None => self.train.epochs,
        }
    }

    /// The goal trials are judged by: the metric whose best epoch is a trial's objective.
    pub fn goal(&self) -> Goal {
        match &self.command {
            Some(command) => command.goal.clone(),
            None => goal_of(self.train.objective),
        }
    }
}

/// A command trial's `[trial]` table and `[params]`: the user's program and its
/// hyperparameters' defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandTrial {
    /// The program and its arguments, `{name}` not yet replaced by the params' values.
    pub command: Vec<String>,
    pub epochs: u32,
    pub goal: Goal,
    /// The files named in `[trial] files` and their SHA-256, in hex: part of each trial's
    /// identity, so that editing the program makes new trials.
    pub files: Vec<(PathBuf, String)>,
    /// Whether the program resumes from its own checkpoint in its trial folder.
    pub resumable: bool,
    /// Seconds between asking the program to stop (SIGTERM) and killing it (SIGKILL).
    pub grace_seconds: u32,
    /// Every param's default (`[params]`); a grid or a draw replaces some of them.
    pub params: Params,
    /// Where the program runs: the folder `sweep run` runs in, absolute.
    pub workdir: PathBuf,
}

/// What one trial runs; its hash is the trial's identity ([`TrialConfig::identity`]).
/// Written to the trial's folder as JSON, a built-in trial's configuration exactly as before
/// command trials existed (so its hash, and every earlier trial's identity, stay the same).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
// A built-in trial's configuration (with the schedule's keys and `blocks`) is the larger:
// one value per trial, read once, so its size costs nothing a box would save.
#[allow(clippy::large_enum_variant)]
pub enum TrialConfig {
    /// The built-in trainer.
    Builtin(BuiltinConfig),
    /// The user's program.
    Command(CommandConfig),
}

impl TrialConfig {
    /// What the store, the report and the cli read of the trial with these `params`.
    pub fn summary(&self, params: Params) -> TrialSummary {
        match self {
            TrialConfig::Builtin(config) => config.summary(params),
            TrialConfig::Command(config) => TrialSummary {
                params,
                goal: config.goal.clone(),
                epochs: config.epochs,
                classes: None,
            },
        }
    }

    /// The built-in trainer's configuration, if the trial runs it.
    pub fn builtin(&self) -> Option<&BuiltinConfig> {
        match self {
            TrialConfig::Builtin(config) => Some(config),
            TrialConfig::Command(_) => None,
        }
    }

    /// The JSON whose SHA-256 is the trial's identity: a built-in trial's whole
    /// configuration; a command trial's command, params, epochs, goal and named files' hashes,
    /// but not where it runs nor how it is stopped (the same program with the same params is
    /// the same trial wherever the project folder is).
    pub fn identity(&self) -> String {
        /// A command trial's identity, as a struct so that its keys keep one order.
        #[derive(serde::Serialize)]
        struct Identity<'a> {
            command: &'a [String],
            params: &'a Params,
            epochs: u32,
            objective: &'a str,
            direction: Direction,
            files: &'a [(PathBuf, String)],
        }
        match self {
            // Exactly the text hashed before command trials existed.
            TrialConfig::Builtin(_) => serde_json::to_string(self),
            TrialConfig::Command(c) => serde_json::to_string(&Identity {
                command: &c.command,
                params: &c.params,
                epochs: c.epochs,
                objective: &c.goal.metric,
                direction: c.goal.direction,
                files: &c.files,
            }),
        }
        .expect("a trial configuration serialises")
    }
}

/// What a command trial's process reads from its folder's `config.json`: its `[trial]` with
/// this trial's params resolved (defaults, grid point and draws).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CommandConfig {
    /// The argv as written, `{name}` not yet replaced (the process replaces them).
    pub command: Vec<String>,
    pub params: Params,
    pub epochs: u32,
    pub goal: Goal,
    pub files: Vec<(PathBuf, String)>,
    pub resumable: bool,
    pub grace_seconds: u32,
    pub workdir: PathBuf,
}

/// Everything one built-in trial trains with.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BuiltinConfig {
    pub data: DataSource,
    pub classes: Option<usize>,
    pub augment: Augment,
    pub model: ModelConfig,
    pub train: TrainConfig,
}

impl BuiltinConfig {
    /// What the store, the report and the cli read of a built-in trial with these `params`:
    /// its goal (`train.objective`), epochs and classes, decided here once.
    pub fn summary(&self, params: Params) -> TrialSummary {
        let classes = match &self.data {
            DataSource::Synthetic(spec) => self.classes.or(Some(spec.classes)),
            DataSource::Dir(_) => self.classes,
        };
        TrialSummary {
            params,
            goal: goal_of(self.train.objective),
            epochs: self.train.epochs,
            classes: classes.map(|c| u32::try_from(c).expect("the reader bounds classes")),
        }
    }
}

/// The goal a built-in trial with this objective is judged by.
pub fn goal_of(objective: Objective) -> Goal {
    Goal {
        metric: objective.name().to_string(),
        direction: if objective.minimised() {
            Direction::Minimise
        } else {
            Direction::Maximise
        },
    }
}
