//! [`expand_grid`]: a sweep file's trials, each with its configuration and the hash that is
//! its identity.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::hyperparameters::{Configs, Param};
use super::schema::{SweepFile, TrialConfig};

/// One point of the grid with everything else filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialSpec {
    pub grid_index: usize,
    /// The grid point: axis → value.
    pub params: BTreeMap<String, Param>,
    pub config: TrialConfig,
    /// SHA-256 of the configuration's JSON: the same configuration, the same trial.
    pub hash: String,
}

/// The trials of a sweep: the cartesian product of the grid's axes in file order, the last
/// axis varying fastest. Every trial uses the sweep's `train.seed` (or its `seed` axis), so
/// that trials differ only in their hyperparameters.
pub fn expand_grid(file: &SweepFile) -> Vec<TrialSpec> {
    let count: usize = file.grid.iter().map(|a| a.values.len()).product();
    (0..count)
        .map(|grid_index| {
            let mut rest = grid_index;
            let mut picks = vec![0; file.grid.len()];
            for (i, axis) in file.grid.iter().enumerate().rev() {
                picks[i] = rest % axis.values.len();
                rest /= axis.values.len();
            }
            let mut configs = Configs {
                model: file.model.clone(),
                train: file.train.clone(),
            };
            let mut params = BTreeMap::new();
            for (axis, &pick) in file.grid.iter().zip(&picks) {
                let setting = &axis.values[pick];
                setting.apply(&mut configs);
                params.insert(axis.key.clone(), setting.param.clone());
            }
            let config = TrialConfig {
                data: file.data.clone(),
                classes: file.classes,
                augment: file.augment,
                model: configs.model,
                train: configs.train,
            };
            let hash = hash(&config);
            TrialSpec {
                grid_index,
                params,
                config,
                hash,
            }
        })
        .collect()
}

/// SHA-256 of a configuration's JSON, in hex.
fn hash(config: &TrialConfig) -> String {
    let json = serde_json::to_string(config).expect("a trial configuration serialises");
    Sha256::digest(json.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
