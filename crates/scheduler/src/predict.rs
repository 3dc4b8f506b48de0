//! Predictions of a finished trial: its best checkpoint over a split of its own data.

use std::path::Path;

use sweep_model::{Dataset, SplitName};

use crate::sweep_file::TrialConfig;
use crate::trial::load_data;

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
    device: &str,
) -> Result<Labelled, String> {
    let config: TrialConfig = serde_json::from_str(config)
        .map_err(|e| format!("the trial's stored configuration: {e}"))?;
    let dataset = load_data(&config, cache_dir)?;
    let device = sweep_model::device(device).map_err(|e| e.to_string())?;
    let prediction = sweep_model::predict(checkpoint, &dataset, dataset.split(split), &device)
        .map_err(|e| e.to_string())?;
    Ok(Labelled {
        dataset,
        prediction,
    })
}
