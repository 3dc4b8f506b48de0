//! [`expand_grid`]: a sweep file's trials (its grid, crossed with its random samples), each
//! with its configuration and the hash that is its identity.

use std::collections::{BTreeMap, HashSet};

use sha2::{Digest, Sha256};

use super::hyperparameters::{Configs, Param, Setting};
use super::schema::{BuiltinConfig, CommandConfig, SweepFile, TrialConfig};

/// The most trials one sweep file may make (grid cells × random samples), counted before
/// anything is expanded: each trial is a database row, a folder and a process, so a file that
/// asks for more is a typo or a hostile file, not a search to run.
pub const MAX_TRIALS: usize = 100_000;

/// One trial: a point of the grid (and a random sample) with everything else filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialSpec {
    /// The trial's place in the sweep's order, from 0.
    pub grid_index: usize,
    /// The grid point and the drawn values: key → value.
    pub params: BTreeMap<String, Param>,
    pub config: TrialConfig,
    /// SHA-256 of the configuration's JSON: the same configuration, the same trial.
    pub hash: String,
}

/// The trials of a sweep: the cartesian product of the grid's axes in file order, the last
/// axis varying fastest; with `[random]`, each grid cell (or the one trial of a file without
/// a grid) with each of the `trials` samples in turn, cell-major and sample-minor. Every
/// trial uses the sweep's `train.seed` (or its `seed` axis), so that trials differ only in
/// their hyperparameters. A configuration met twice (drawn choices can repeat) is one trial,
/// at its first place. A `[search]` sweep has none here: the runner makes them one by one
/// ([`trial`]).
pub fn expand_grid(file: &SweepFile) -> Vec<TrialSpec> {
    if file.search.is_some() {
        return Vec::new();
    }
    let cells: usize = file.grid.iter().map(|a| a.values.len()).product();
    let draws = file.random.as_ref().map_or(1, |r| r.trials);
    assert!(
        cells.saturating_mul(draws) <= MAX_TRIALS,
        "the reader refuses files of more than MAX_TRIALS trials"
    );
    let samples: Vec<Vec<(&str, Setting)>> = match &file.random {
        Some(random) => (0..random.trials).map(|i| random.sample(i)).collect(),
        None => vec![Vec::new()],
    };
    let mut hashes = HashSet::new();
    let mut trials = Vec::new();
    for cell in 0..cells {
        let mut rest = cell;
        let mut picks = vec![0; file.grid.len()];
        for (i, axis) in file.grid.iter().enumerate().rev() {
            picks[i] = rest % axis.values.len();
            rest /= axis.values.len();
        }
        let point = file
            .grid
            .iter()
            .zip(&picks)
            .map(|(axis, &pick)| (axis.key.as_str(), &axis.values[pick]));
        let point: Vec<(&str, &Setting)> = point.collect();
        for sample in &samples {
            let drawn = sample.iter().map(|(key, setting)| (*key, setting));
            let trial = trial(file, trials.len(), point.iter().copied().chain(drawn));
            if hashes.insert(trial.hash.clone()) {
                trials.push(trial);
            }
        }
    }
    trials
}

/// SHA-256 of a configuration's identity, in hex.
fn hash(config: &TrialConfig) -> String {
    Sha256::digest(config.identity().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The trial at `index` of the sweep's order that these `settings` (a grid point, drawn or
/// suggested values: key and value) make of the file's configuration.
pub fn trial<'s>(
    file: &SweepFile,
    index: usize,
    settings: impl IntoIterator<Item = (&'s str, &'s Setting)>,
) -> TrialSpec {
    let mut configs = Configs {
        model: file.model.clone(),
        train: file.train.clone(),
    };
    let mut params = BTreeMap::new();
    for (key, setting) in settings {
        setting.apply(&mut configs);
        params.insert(key.to_string(), setting.param.clone());
    }
    let config = match &file.command {
        None => TrialConfig::Builtin(BuiltinConfig {
            data: file.data.clone(),
            classes: file.classes,
            augment: file.augment,
            model: configs.model,
            train: configs.train,
        }),
        // A command trial's params are all of its `[params]`, the grid's and the drawn
        // values in place of their defaults.
        Some(command) => {
            let mut all = command.params.clone();
            all.extend(params.iter().map(|(k, v)| (k.clone(), v.clone())));
            TrialConfig::Command(CommandConfig {
                command: command.command.clone(),
                params: all,
                epochs: command.epochs,
                goal: command.goal.clone(),
                files: command.files.clone(),
                resumable: command.resumable,
                grace_seconds: command.grace_seconds,
                workdir: command.workdir.clone(),
            })
        }
    };
    TrialSpec {
        grid_index: index,
        hash: hash(&config),
        params,
        config,
    }
}
