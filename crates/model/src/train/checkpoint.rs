//! Checkpoints as safetensors files: named tensors plus one JSON document in the header's
//! metadata (under the key `sweep`). Files are replaced atomically, so a kill at any moment
//! leaves the previous checkpoint or the new one, never half of one.
//!
//! A trial's [`Checkpointer`] owns its two files, [`LAST`] (enough to resume: the model, the
//! optimizer and the history) and [`BEST`] (the best epoch's model and its [`ModelCard`]),
//! and the identity that a resumed run must share with the run that wrote [`LAST`].

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use candle_nn::VarMap;

use crate::data::Normalization;
use crate::nn::ModelConfig;
use crate::train::config::{TrainConfig, Trial};
use crate::train::keep_best::Best;
use crate::train::metrics::EpochMetrics;
use crate::train::optim::Optimizer;

/// The metadata key holding the checkpoint's JSON document.
const META_KEY: &str = "sweep";

/// Why a checkpoint could not be written or read; each variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a sweep checkpoint: {message}")]
    Format { path: PathBuf, message: String },
    #[error("{path}: the checkpoint belongs to another configuration")]
    Foreign { path: PathBuf },
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Writes `tensors` and the JSON `meta` to `path`, atomically.
pub fn save<M: serde::Serialize>(
    path: &Path,
    tensors: &[(String, Tensor)],
    meta: &M,
) -> Result<(), CheckpointError> {
    let format = |message: String| CheckpointError::Format {
        path: path.to_path_buf(),
        message,
    };
    let io = |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    };
    let json = serde_json::to_string(meta).map_err(|e| format(e.to_string()))?;
    let info = HashMap::from([(META_KEY.to_string(), json)]);
    let views = tensors.iter().map(|(name, t)| (name.as_str(), t));
    let bytes = safetensors::serialize(views, Some(info)).map_err(|e| format(e.to_string()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    tmp.write_all(&bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// Reads the tensors (onto `device`) and the JSON metadata of a checkpoint.
pub fn load<M: serde::de::DeserializeOwned>(
    path: &Path,
    device: &Device,
) -> Result<(HashMap<String, Tensor>, M), CheckpointError> {
    let format = |message: String| CheckpointError::Format {
        path: path.to_path_buf(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let (_, header) =
        safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| format(e.to_string()))?;
    let json = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(META_KEY))
        .ok_or_else(|| format(format!("no `{META_KEY}` metadata")))?;
    let meta = serde_json::from_str(json).map_err(|e| format(e.to_string()))?;
    let tensors =
        candle_core::safetensors::load_buffer(&bytes, device).map_err(|e| format(e.to_string()))?;
    Ok((tensors, meta))
}

/// The last checkpoint's file name in a trial's folder.
pub const LAST: &str = "last.safetensors";
/// The best checkpoint's file name in a trial's folder.
pub const BEST: &str = "best.safetensors";

/// What a best checkpoint holds besides weights: enough to rebuild the network and predict.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ModelCard {
    pub model: ModelConfig,
    pub size: usize,
    pub classes: usize,
    pub norm: Normalization,
    pub epoch: u32,
    pub objective: f64,
}

/// The state saved with the last checkpoint: enough to resume exactly where it stopped.
/// The random streams of an epoch are derived from `(seed, epoch)`, so they need no saving.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct LastState {
    pub(crate) identity: String,
    pub(crate) optimizer_steps: u64,
    pub(crate) norm: Normalization,
    pub(crate) history: Vec<EpochMetrics>,
    pub(crate) best: Option<Best>,
}

/// A string that changes whenever a resumed run would not continue the same training;
/// the number of epochs is left out, so a finished trial can be trained further.
fn identity(trial: &Trial) -> String {
    let train = TrainConfig {
        epochs: 0,
        ..trial.train.clone()
    };
    serde_json::json!({
        "model": trial.model,
        "train": train,
        "augment": trial.augment,
        "size": trial.dataset.size,
        "classes": trial.dataset.classes,
    })
    .to_string()
}

/// The checkpoint files of one trial, and the identity a resumed run must match.
pub(crate) struct Checkpointer {
    identity: String,
    last: PathBuf,
    best: PathBuf,
}

impl Checkpointer {
    /// The checkpointer of `trial`, whose files live in its folder.
    pub(crate) fn new(trial: &Trial) -> Self {
        Self {
            identity: identity(trial),
            last: trial.dir.join(LAST),
            best: trial.dir.join(BEST),
        }
    }

    /// The last checkpoint's path.
    pub(crate) fn last_path(&self) -> &Path {
        &self.last
    }

    /// Loads the last checkpoint into `vars` and `optimizer` and returns its state, or `None`
    /// when the trial has none yet; a checkpoint of another configuration is refused.
    pub(crate) fn resume(
        &self,
        vars: &VarMap,
        optimizer: &mut Optimizer,
        device: &Device,
    ) -> Result<Option<LastState>, CheckpointError> {
        if !self.last.exists() {
            return Ok(None);
        }
        let (tensors, state): (_, LastState) = load(&self.last, device)?;
        if state.identity != self.identity {
            return Err(CheckpointError::Foreign {
                path: self.last.clone(),
            });
        }
        load_model_tensors(vars, &tensors)?;
        optimizer.load_state(&tensors, state.optimizer_steps)?;
        Ok(Some(state))
    }

    /// The state of a trial that starts from scratch, its pixels normalised by `norm`.
    pub(crate) fn fresh(&self, norm: Normalization) -> LastState {
        LastState {
            identity: self.identity.clone(),
            optimizer_steps: 0,
            norm,
            history: Vec::new(),
            best: None,
        }
    }

    /// Writes the best checkpoint: the model's tensors and its card.
    pub(crate) fn save_best(
        &self,
        model: &[(String, Tensor)],
        card: &ModelCard,
    ) -> Result<(), CheckpointError> {
        save(&self.best, model, card)
    }

    /// Writes the last checkpoint: the model's tensors, the optimizer's state and `state`.
    pub(crate) fn save_last(
        &self,
        model: Vec<(String, Tensor)>,
        optimizer: &Optimizer,
        state: &LastState,
    ) -> Result<(), CheckpointError> {
        let mut all = model;
        all.extend(optimizer.state());
        save(&self.last, &all, state)
    }
}

/// The model's variables as checkpoint tensors (`model.` + name), sorted by name.
pub(crate) fn model_tensors(vars: &VarMap) -> Vec<(String, Tensor)> {
    let data = vars
        .data()
        .lock()
        .expect("the variable map is never poisoned");
    let mut tensors: Vec<(String, Tensor)> = data
        .iter()
        .map(|(name, var)| (format!("model.{name}"), var.as_tensor().clone()))
        .collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    tensors
}

/// Sets every variable of `vars` from its `model.` tensor in a checkpoint.
pub(crate) fn load_model_tensors(
    vars: &VarMap,
    tensors: &std::collections::HashMap<String, Tensor>,
) -> candle_core::Result<()> {
    let data = vars
        .data()
        .lock()
        .expect("the variable map is never poisoned");
    for (name, var) in data.iter() {
        let key = format!("model.{name}");
        let saved = tensors
            .get(&key)
            .ok_or_else(|| candle_core::Error::Msg(format!("the checkpoint has no `{key}`")))?;
        var.set(&saved.to_device(var.device())?)?;
    }
    Ok(())
}
