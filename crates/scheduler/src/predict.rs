//! Predictions of a finished trial: its best checkpoint over a split of its own data.

use std::path::Path;

use sweep_model::{Dataset, DeviceName, SplitName};

use crate::sweep_file::TrialConfig;
use crate::trial::{load_data, open_device, read_config, TrialError};

/// A split labelled by a trial's model, with the data set it came from.
pub struct Labelled {
    pub dataset: Dataset,
    pub prediction: sweep_model::train::Prediction,
}

/// Loads the data of the trial configured by `config` (JSON, as stored) and labels `split`
/// with the model in `checkpoint`.
pub fn predict_split(
    config: &str,
    checkpoint: &Path,
    split: SplitName,
    cache_dir: &Path,
    device: DeviceName,
) -> Result<Labelled, TrialError> {
    let path = Path::new("the trial's stored configuration");
    let config = match read_config(path, config)? {
        TrialConfig::Builtin(config) => config,
        TrialConfig::Command(_) => {
            return Err(TrialError::Config {
                path: path.to_path_buf(),
                message: "a command trial's model is its program's own: sweep predicts with \
                          the built-in trainer's trials only"
                    .into(),
            })
        }
    };
    let dataset = load_data(&config, cache_dir)?;
    let device = open_device(device)?;
    let prediction = sweep_model::predict(checkpoint, &dataset, dataset.split(split), &device)
        .map_err(TrialError::Predict)?;
    Ok(Labelled {
        dataset,
        prediction,
    })
}
