//! Checkpoints as safetensors files: named tensors plus one JSON document in the header's
//! metadata (under the key `sweep`) and a SHA-256 checksum of both (under `sweep_sha256`),
//! so that a bit flip is found even where the file still parses. A file is written to a
//! temporary name, synced, read back and verified, and only then put in place; the file it
//! replaces is kept as the spare to fall back to.
//!
//! A trial's [`Checkpointer`] owns its files: [`LAST`] (enough to resume: the model, the
//! optimizer and the history) with its spare [`PREVIOUS`], and [`BEST`] (the best epoch's
//! model and its [`ModelCard`]) with its spare [`PREVIOUS_BEST`]; and the identity that a
//! resumed run must share with the run that wrote them. A resume that finds [`LAST`] damaged
//! falls back to [`PREVIOUS`], and with neither it starts the trial again; either way it says
//! so with a [`Recovery`].

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use safetensors::View;
use sha2::{Digest, Sha256};

use crate::data::Normalization;
use crate::nn::ModelConfig;
use crate::train::config::{TrainConfig, Trial};
use crate::train::keep_best::Best;
use crate::train::metrics::EpochMetrics;
use crate::train::optim::Optimizer;
use crate::train::schedule::ScheduleState;

/// The metadata key holding the checkpoint's JSON document.
const META_KEY: &str = "sweep";
/// The metadata key holding the hex SHA-256 of the tensors and the JSON document
/// ([`checksum`]). Files written before it existed have none and load unverified.
const CHECKSUM_KEY: &str = "sweep_sha256";

/// Why a checkpoint could not be written or read; each variant names the file.
///
/// A variant that holds another error either says its text and has no `source`, or is
/// `transparent`: no part of an error's chain repeats another.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: not a sweep checkpoint: {message}")]
    Format { path: PathBuf, message: String },
    #[error("{path}: the checksum does not match: the file is damaged")]
    Checksum { path: PathBuf },
    #[error("{path}: the checkpoint belongs to another configuration")]
    Foreign { path: PathBuf },
    #[error("{path}: no intact best checkpoint holds its best epoch {epoch}")]
    BestLost { path: PathBuf, epoch: u32 },
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl CheckpointError {
    /// Whether the user's input is at fault (the cli exits 2 for it, 1 for any other failure).
    /// A match with no catch-all: a new variant must be decided here.
    pub fn is_bad_input(&self) -> bool {
        match self {
            // A trial's checkpoints are sweep's own files, not the user's input.
            CheckpointError::Io { .. }
            | CheckpointError::Format { .. }
            | CheckpointError::Checksum { .. }
            | CheckpointError::Foreign { .. }
            | CheckpointError::BestLost { .. }
            | CheckpointError::Candle(_) => false,
        }
    }

    /// What is wrong, without the path (a [`Recovery`] names the file itself).
    pub fn problem(&self) -> String {
        match self {
            CheckpointError::Io { error, .. } => error.to_string(),
            CheckpointError::Format { message, .. } => format!("not a sweep checkpoint: {message}"),
            CheckpointError::Checksum { .. } => "the checksum does not match".into(),
            CheckpointError::Foreign { .. } => "it belongs to another configuration".into(),
            CheckpointError::BestLost { epoch, .. } => {
                format!("no intact best checkpoint holds its best epoch {epoch}")
            }
            CheckpointError::Candle(e) => e.to_string(),
        }
    }
}

/// The hex SHA-256 of a checkpoint's tensors (by name: each name, dtype, shape and bytes)
/// and its JSON document, every part preceded by its length so that no two files share one.
fn checksum<V: View>(meta: &str, tensors: &mut [(&str, V)]) -> String {
    fn put(hasher: &mut Sha256, bytes: &[u8]) {
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    }
    tensors.sort_by(|a, b| a.0.cmp(b.0));
    let mut hasher = Sha256::new();
    for (name, view) in tensors.iter() {
        put(&mut hasher, name.as_bytes());
        put(&mut hasher, format!("{:?}", view.dtype()).as_bytes());
        let shape: Vec<u8> = view
            .shape()
            .iter()
            .flat_map(|&d| (d as u64).to_le_bytes())
            .collect();
        put(&mut hasher, &shape);
        put(&mut hasher, &view.data());
    }
    put(&mut hasher, meta.as_bytes());
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes `tensors` and the JSON `meta` to `path`, atomically: written aside, synced, read
/// back and verified first.
pub fn save<M: serde::Serialize>(
    path: &Path,
    tensors: &[(String, Tensor)],
    meta: &M,
) -> Result<(), CheckpointError> {
    save_keeping(path, None, tensors, meta)
}

/// [`save`], keeping the file that `path` held until now as `spare` (when given): the
/// checkpoint to fall back to should the new one be damaged later.
fn save_keeping<M: serde::Serialize>(
    path: &Path,
    spare: Option<&Path>,
    tensors: &[(String, Tensor)],
    meta: &M,
) -> Result<(), CheckpointError> {
    let format = |message: String| CheckpointError::Format {
        path: path.to_path_buf(),
        message,
    };
    let io = |error| CheckpointError::Io {
        path: path.to_path_buf(),
        error,
    };
    let json = serde_json::to_string(meta).map_err(|e| format(e.to_string()))?;
    // Once on the host: the checksum and the file read the same bytes.
    let host = tensors
        .iter()
        .map(|(name, t)| Ok((name.as_str(), t.to_device(&Device::Cpu)?)))
        .collect::<candle_core::Result<Vec<_>>>()?;
    let mut views: Vec<(&str, &Tensor)> = host.iter().map(|(name, t)| (*name, t)).collect();
    let sum = checksum(&json, &mut views);
    let info = HashMap::from([
        (META_KEY.to_string(), json),
        (CHECKSUM_KEY.to_string(), sum),
    ]);
    let bytes = safetensors::serialize(views, Some(info)).map_err(|e| format(e.to_string()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    tmp.write_all(&bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    if std::fs::read(tmp.path()).map_err(io)? != bytes {
        return Err(format("the written file reads back differently".into()));
    }
    if let Some(spare) = spare {
        keep_spare(path, spare)?;
    }
    tmp.persist(path).map_err(|e| io(e.error))?;
    sync_dir(dir)
}

/// Makes `spare` a copy of `current` (a hard link where the filesystem has them), replacing
/// it atomically; nothing to do while `current` does not exist.
fn keep_spare(current: &Path, spare: &Path) -> Result<(), CheckpointError> {
    let io = |error| CheckpointError::Io {
        path: spare.to_path_buf(),
        error,
    };
    if !current.exists() {
        return Ok(());
    }
    let dir = spare.parent().unwrap_or(Path::new("."));
    let copy = tempfile::Builder::new()
        .make_in(dir, |tmp| {
            std::fs::hard_link(current, tmp).or_else(|_| std::fs::copy(current, tmp).map(drop))
        })
        .map_err(io)?;
    copy.into_temp_path()
        .persist(spare)
        .map_err(|e| io(e.error))
}

/// Syncs a folder, so that the renames in it survive a power loss.
fn sync_dir(dir: &Path) -> Result<(), CheckpointError> {
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|error| CheckpointError::Io {
            path: dir.to_path_buf(),
            error,
        })?;
    Ok(())
}

/// The JSON metadata of a checkpoint's `bytes`, once the file parses and its checksum (where
/// it has one) matches.
fn verified_meta<M: serde::de::DeserializeOwned>(
    path: &Path,
    bytes: &[u8],
) -> Result<M, CheckpointError> {
    let format = |message: String| CheckpointError::Format {
        path: path.to_path_buf(),
        message,
    };
    let (_, header) =
        safetensors::SafeTensors::read_metadata(bytes).map_err(|e| format(e.to_string()))?;
    let file = safetensors::SafeTensors::deserialize(bytes).map_err(|e| format(e.to_string()))?;
    let info = header.metadata().as_ref();
    let json = info
        .and_then(|m| m.get(META_KEY))
        .ok_or_else(|| format(format!("no `{META_KEY}` metadata")))?;
    if let Some(expected) = info.and_then(|m| m.get(CHECKSUM_KEY)) {
        let mut views: Vec<_> = file.iter().collect();
        if checksum(json, &mut views) != *expected {
            return Err(CheckpointError::Checksum {
                path: path.to_path_buf(),
            });
        }
    }
    serde_json::from_str(json).map_err(|e| format(e.to_string()))
}

fn read(path: &Path) -> Result<Vec<u8>, CheckpointError> {
    std::fs::read(path).map_err(|error| CheckpointError::Io {
        path: path.to_path_buf(),
        error,
    })
}

/// Reads the tensors (onto `device`) and the JSON metadata of a checkpoint, verified.
pub fn load<M: serde::de::DeserializeOwned>(
    path: &Path,
    device: &Device,
) -> Result<(HashMap<String, Tensor>, M), CheckpointError> {
    let bytes = read(path)?;
    let meta = verified_meta(path, &bytes)?;
    let tensors = candle_core::safetensors::load_buffer(&bytes, device).map_err(|e| {
        CheckpointError::Format {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    })?;
    Ok((tensors, meta))
}

/// Reads only the JSON metadata of a checkpoint, verified.
pub fn load_meta<M: serde::de::DeserializeOwned>(path: &Path) -> Result<M, CheckpointError> {
    verified_meta(path, &read(path)?)
}

/// The last checkpoint's file name in a trial's folder.
pub const LAST: &str = "last.safetensors";
/// The last checkpoint before [`LAST`], kept to fall back to.
pub const PREVIOUS: &str = "previous.safetensors";
/// The best checkpoint's file name in a trial's folder.
pub const BEST: &str = "best.safetensors";
/// The best checkpoint before [`BEST`], kept for a resume from a checkpoint older than it.
pub const PREVIOUS_BEST: &str = "previous-best.safetensors";
/// What a damaged checkpoint is renamed to (`last.safetensors.damaged`): kept to look at,
/// out of the way of the files that are tried.
const DAMAGED_SUFFIX: &str = ".damaged";

/// A checkpoint that did not load when a trial resumed, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Damaged {
    /// Its file name in the trial's folder.
    pub file: String,
    pub problem: String,
}

/// How a resuming trial got past checkpoints that did not load: it resumed from an older
/// one, or started again from epoch 1.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Recovery {
    /// The checkpoints that did not load, in the order they were tried.
    pub damaged: Vec<Damaged>,
    /// The checkpoint it resumed from; `None`: it started again from epoch 1.
    pub resumed_from: Option<String>,
    /// The epochs the checkpoint it resumed from holds (0 when it started again).
    pub epochs: u32,
}

impl std::fmt::Display for Recovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for d in &self.damaged {
            write!(f, "{} did not load ({}); ", d.file, d.problem)?;
        }
        match &self.resumed_from {
            Some(file) => write!(f, "resumed from {file} after epoch {}", self.epochs),
            None => write!(f, "started again from epoch 1"),
        }
    }
}

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
    /// The schedule's state after the last epoch (plateau's watch); absent from checkpoints
    /// written before schedules, whose trials had none.
    #[serde(default)]
    pub(crate) schedule: ScheduleState,
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

/// What [`Checkpointer::resume`] found: the state to go on from (`None`: start from
/// scratch, the variables and the optimizer as they were built), and how it got past
/// checkpoints that did not load, if any did not.
pub(crate) struct Resumed {
    pub(crate) state: Option<LastState>,
    pub(crate) recovery: Option<Recovery>,
}

/// The checkpoint files of one trial, and the identity a resumed run must match.
pub(crate) struct Checkpointer {
    identity: String,
    dir: PathBuf,
}

impl Checkpointer {
    /// The checkpointer of `trial`, whose files live in its folder.
    pub(crate) fn new(trial: &Trial) -> Self {
        Self {
            identity: identity(trial),
            dir: trial.dir.to_path_buf(),
        }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// The last checkpoint's path.
    pub(crate) fn last_path(&self) -> PathBuf {
        self.path(LAST)
    }

    /// Loads the newest checkpoint that is intact ([`LAST`], else [`PREVIOUS`]) into `vars`
    /// and `optimizer` and returns its state; `None` when the trial has none yet, or when
    /// none loads (then the damaged files are set aside, the best ones removed, and the
    /// [`Recovery`] says why the trial starts again). A checkpoint of another configuration
    /// is refused: it is intact, and the folder is not this trial's to overwrite.
    pub(crate) fn resume(
        &self,
        vars: &VarMap,
        optimizer: &mut Optimizer,
        device: &Device,
    ) -> Result<Resumed, CheckpointError> {
        let candidates = [LAST, PREVIOUS];
        if !candidates.iter().any(|file| self.path(file).exists()) {
            return Ok(Resumed {
                state: None,
                recovery: None,
            });
        }
        let mut damaged = Vec::new();
        for file in candidates {
            let problem = if self.path(file).exists() {
                match self.load_last(file, vars, optimizer, device) {
                    Ok(state) => {
                        self.set_aside(&damaged)?;
                        let recovery = (!damaged.is_empty()).then(|| Recovery {
                            damaged,
                            resumed_from: Some(file.to_string()),
                            epochs: state.history.len() as u32,
                        });
                        return Ok(Resumed {
                            state: Some(state),
                            recovery,
                        });
                    }
                    Err(e @ CheckpointError::Foreign { .. }) => return Err(e),
                    Err(e) => e.problem(),
                }
            } else {
                "missing".to_string()
            };
            damaged.push(Damaged {
                file: file.to_string(),
                problem,
            });
        }
        self.set_aside(&damaged)?;
        // The best checkpoints belong to the epochs that are trained again.
        for file in [BEST, PREVIOUS_BEST] {
            match std::fs::remove_file(self.path(file)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(CheckpointError::Io {
                        path: self.path(file),
                        error: e,
                    })
                }
                _ => {}
            }
        }
        Ok(Resumed {
            state: None,
            recovery: Some(Recovery {
                damaged,
                resumed_from: None,
                epochs: 0,
            }),
        })
    }

    /// Loads the last checkpoint `file` into `vars` and `optimizer`, once it is verified,
    /// this trial's, and its best epoch is in [`BEST`] (put there from [`PREVIOUS_BEST`] if
    /// need be); returns its state.
    fn load_last(
        &self,
        file: &str,
        vars: &VarMap,
        optimizer: &mut Optimizer,
        device: &Device,
    ) -> Result<LastState, CheckpointError> {
        let path = self.path(file);
        let (tensors, state): (_, LastState) = load(&path, device)?;
        if state.identity != self.identity {
            return Err(CheckpointError::Foreign { path });
        }
        load_model_tensors(vars, &tensors)?;
        optimizer.load_state(&tensors, state.optimizer_steps)?;
        if let Some(best) = &state.best {
            self.restore_best(&path, best)?;
        }
        Ok(state)
    }

    /// Makes [`BEST`] hold the epoch `best`: it does, or [`PREVIOUS_BEST`] does (a later
    /// epoch, which the checkpoint `last` does not hold, had replaced it) and takes its place.
    fn restore_best(&self, last: &Path, best: &Best) -> Result<(), CheckpointError> {
        let holds = |file: &str| {
            load_meta::<ModelCard>(&self.path(file)).is_ok_and(|card| {
                card.epoch == best.epoch && card.objective.to_bits() == best.objective.to_bits()
            })
        };
        if holds(BEST) {
            return Ok(());
        }
        if holds(PREVIOUS_BEST) {
            std::fs::rename(self.path(PREVIOUS_BEST), self.path(BEST)).map_err(|error| {
                CheckpointError::Io {
                    path: self.path(BEST),
                    error,
                }
            })?;
            return sync_dir(&self.dir);
        }
        Err(CheckpointError::BestLost {
            path: last.to_path_buf(),
            epoch: best.epoch,
        })
    }

    /// Renames the damaged checkpoints that exist (`last.safetensors.damaged`), so that the
    /// next checkpoint neither falls back to them nor keeps them as its spare.
    fn set_aside(&self, damaged: &[Damaged]) -> Result<(), CheckpointError> {
        for d in damaged {
            let path = self.path(&d.file);
            let aside = self.path(&format!("{}{DAMAGED_SUFFIX}", d.file));
            match std::fs::rename(&path, &aside) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(CheckpointError::Io { path, error: e })
                }
                _ => {}
            }
        }
        sync_dir(&self.dir)
    }

    /// The state of a trial that starts from scratch, its pixels normalised by `norm`.
    pub(crate) fn fresh(&self, norm: Normalization) -> LastState {
        LastState {
            identity: self.identity.clone(),
            optimizer_steps: 0,
            norm,
            history: Vec::new(),
            best: None,
            schedule: ScheduleState::default(),
        }
    }

    /// Writes the best checkpoint (the model's tensors and its card), keeping the one it
    /// replaces as [`PREVIOUS_BEST`].
    pub(crate) fn save_best(
        &self,
        model: &[(String, Tensor)],
        card: &ModelCard,
    ) -> Result<(), CheckpointError> {
        save_keeping(
            &self.path(BEST),
            Some(&self.path(PREVIOUS_BEST)),
            model,
            card,
        )
    }

    /// Writes the last checkpoint (the model's tensors, the optimizer's state and `state`),
    /// keeping the one it replaces as [`PREVIOUS`].
    pub(crate) fn save_last(
        &self,
        model: Vec<(String, Tensor)>,
        optimizer: &Optimizer,
        state: &LastState,
    ) -> Result<(), CheckpointError> {
        let mut all = model;
        all.extend(optimizer.state());
        save_keeping(&self.path(LAST), Some(&self.path(PREVIOUS)), &all, state)
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;
    use crate::data::augment::Augment;
    use crate::data::synthetic::SyntheticSpec;
    use crate::data::Dataset;
    use crate::nn::Arch;
    use crate::testing::timeless;
    use crate::train::event::TrialEvent;
    use crate::train::metrics::Confusion;
    use crate::train::{train, Outcome};

    fn data() -> Dataset {
        SyntheticSpec {
            classes: 3,
            size: 8,
            train: 48,
            val: 24,
            test: 4,
            seed: 2,
        }
        .generate()
    }

    fn model() -> ModelConfig {
        ModelConfig {
            arch: Arch::Mlp,
            neurons: 8,
            hidden: vec![],
            dropout: 0.0,
            ..ModelConfig::default()
        }
    }

    /// Trains the first `epochs` epochs in `dir`, resuming what is there: the outcome and
    /// what its `Started` event said.
    fn run(dataset: &Dataset, dir: &Path, epochs: u32) -> (Outcome, usize, Option<Recovery>) {
        let config = TrainConfig {
            epochs,
            batch_size: 16,
            ..TrainConfig::default()
        };
        let trial = Trial {
            dataset,
            model: &model(),
            train: &config,
            augment: &Augment::default(),
            device: &Device::Cpu,
            dir,
        };
        let mut started = None;
        let outcome = train(&trial, &AtomicBool::new(false), &mut |event| {
            if let TrialEvent::Started {
                history, recovered, ..
            } = event
            {
                started = Some((history.len(), recovered));
            }
        })
        .unwrap();
        let (resumed, recovered) = started.expect("a run reports its start");
        (outcome, resumed, recovered)
    }

    fn truncate(path: &Path) {
        let len = std::fs::metadata(path).unwrap().len();
        let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        file.set_len(len / 2).unwrap();
    }

    /// Flips one bit of the last tensor bytes: the file still parses as safetensors.
    fn flip_a_bit(path: &Path) {
        let mut bytes = std::fs::read(path).unwrap();
        let at = bytes.len() - 3;
        bytes[at] ^= 0x08;
        std::fs::write(path, &bytes).unwrap();
        safetensors::SafeTensors::deserialize(&bytes).expect("a flipped bit still parses");
    }

    fn card_epoch(path: &Path) -> u32 {
        load_meta::<ModelCard>(path).unwrap().epoch
    }

    #[test]
    fn a_truncated_last_checkpoint_falls_back_to_the_previous_one() {
        let dataset = data();
        let (straight, damaged) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (expected, _, _) = run(&dataset, straight.path(), 4);
        run(&dataset, damaged.path(), 3);
        truncate(&damaged.path().join(LAST));
        let (outcome, resumed, recovery) = run(&dataset, damaged.path(), 4);
        let recovery = recovery.expect("the fallback is reported");
        assert_eq!(resumed, 2, "the previous checkpoint holds epochs 1 and 2");
        assert_eq!(recovery.resumed_from.as_deref(), Some(PREVIOUS));
        assert_eq!(recovery.epochs, 2);
        let [Damaged { file, problem }] = &recovery.damaged[..] else {
            panic!("only the last checkpoint was damaged: {recovery:?}");
        };
        assert_eq!(file, LAST);
        assert!(problem.starts_with("not a sweep checkpoint: "), "{problem}");
        assert!(
            recovery
                .to_string()
                .starts_with("last.safetensors did not load (not a sweep checkpoint: ")
                && recovery
                    .to_string()
                    .ends_with("; resumed from previous.safetensors after epoch 2"),
            "{recovery}"
        );
        assert!(damaged.path().join("last.safetensors.damaged").exists());
        assert_eq!(timeless(&outcome.history), timeless(&expected.history));
        assert_eq!(outcome.best, expected.best);
        let best = outcome.best.unwrap();
        assert_eq!(card_epoch(&damaged.path().join(BEST)), best.epoch);
        let (_, _, again) = run(&dataset, damaged.path(), 4);
        assert_eq!(again, None, "the checkpoints written since load");
    }

    #[test]
    fn a_bit_flip_that_still_parses_is_found_by_the_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        let tensor = Tensor::arange(0f32, 64.0, &Device::Cpu).unwrap();
        save(&path, &[("w".to_string(), tensor)], &"meta").unwrap();
        let (tensors, meta): (_, String) = load(&path, &Device::Cpu).unwrap();
        assert_eq!((tensors.len(), meta.as_str()), (1, "meta"));
        flip_a_bit(&path);
        let err = load::<String>(&path, &Device::Cpu).unwrap_err();
        assert!(matches!(err, CheckpointError::Checksum { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "{}: the checksum does not match: the file is damaged",
                path.display()
            )
        );
    }

    #[test]
    fn a_checkpoint_written_before_checksums_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.safetensors");
        let tensor = Tensor::arange(0f32, 4.0, &Device::Cpu).unwrap();
        let info = HashMap::from([(META_KEY.to_string(), "\"old\"".to_string())]);
        let bytes = safetensors::serialize([("w", &tensor)], Some(info)).unwrap();
        std::fs::write(&path, bytes).unwrap();
        let (_, meta): (_, String) = load(&path, &Device::Cpu).unwrap();
        assert_eq!(meta, "old");
    }

    #[test]
    fn when_no_checkpoint_loads_the_trial_starts_again_from_epoch_1_saying_why() {
        let dataset = data();
        let (straight, damaged) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (expected, _, _) = run(&dataset, straight.path(), 3);
        run(&dataset, damaged.path(), 2);
        flip_a_bit(&damaged.path().join(LAST));
        truncate(&damaged.path().join(PREVIOUS));
        let (outcome, resumed, recovery) = run(&dataset, damaged.path(), 3);
        let recovery = recovery.expect("the restart is reported");
        assert_eq!(resumed, 0);
        assert_eq!(recovery.resumed_from, None);
        let files: Vec<&str> = recovery.damaged.iter().map(|d| d.file.as_str()).collect();
        assert_eq!(files, [LAST, PREVIOUS]);
        assert_eq!(recovery.damaged[0].problem, "the checksum does not match");
        assert!(
            recovery
                .to_string()
                .ends_with("; started again from epoch 1"),
            "{recovery}"
        );
        for file in [LAST, PREVIOUS] {
            let aside = damaged.path().join(format!("{file}{DAMAGED_SUFFIX}"));
            assert!(aside.exists(), "{} is kept aside", aside.display());
        }
        assert_eq!(timeless(&outcome.history), timeless(&expected.history));
        assert_eq!(outcome.best, expected.best);
        assert_eq!(
            card_epoch(&damaged.path().join(BEST)),
            outcome.best.unwrap().epoch
        );
    }

    #[test]
    fn only_a_missing_last_checkpoint_is_named_when_the_previous_one_loads() {
        let dataset = data();
        let dir = tempfile::tempdir().unwrap();
        run(&dataset, dir.path(), 2);
        std::fs::remove_file(dir.path().join(LAST)).unwrap();
        let (outcome, resumed, recovery) = run(&dataset, dir.path(), 2);
        assert_eq!((resumed, outcome.history.len()), (1, 2));
        assert_eq!(
            recovery.unwrap().to_string(),
            "last.safetensors did not load (missing); resumed from previous.safetensors after epoch 1"
        );
    }

    /// A checkpointer over `dir` and a best checkpoint of `epoch` written as `file` there.
    fn best_file(dir: &Path, file: &str, epoch: u32) -> Best {
        let card = ModelCard {
            model: model(),
            size: 8,
            classes: 3,
            norm: Normalization {
                mean: [0.5; 3],
                std: [0.25; 3],
            },
            epoch,
            objective: epoch as f64 / 10.0,
        };
        let w = Tensor::full(epoch as f32, 2, &Device::Cpu).unwrap();
        save(&dir.join(file), &[("model.w".to_string(), w)], &card).unwrap();
        Best {
            epoch,
            objective: card.objective,
            confusion: Confusion::new(3),
        }
    }

    #[test]
    fn a_best_checkpoint_the_resumed_state_does_not_hold_gives_way_to_the_previous_best() {
        let dir = tempfile::tempdir().unwrap();
        let checkpointer = Checkpointer {
            identity: "t".into(),
            dir: dir.path().to_path_buf(),
        };
        let last = dir.path().join(LAST);
        // Epoch 3 was the best, and its last checkpoint was lost: the state resumed from
        // names epoch 2, which the previous best checkpoint holds.
        best_file(dir.path(), BEST, 3);
        let two = best_file(dir.path(), PREVIOUS_BEST, 2);
        checkpointer.restore_best(&last, &two).unwrap();
        assert_eq!(card_epoch(&dir.path().join(BEST)), 2);
        assert!(!dir.path().join(PREVIOUS_BEST).exists());
        checkpointer.restore_best(&last, &two).unwrap();
        let one = best_file(dir.path(), "elsewhere.safetensors", 1);
        let err = checkpointer.restore_best(&last, &one).unwrap_err();
        assert!(
            matches!(err, CheckpointError::BestLost { epoch: 1, .. }),
            "{err}"
        );
        flip_a_bit(&dir.path().join(BEST));
        assert!(checkpointer.restore_best(&last, &two).is_err());
    }

    #[test]
    fn a_new_checkpoint_keeps_the_one_it_replaces_as_its_spare() {
        let dir = tempfile::tempdir().unwrap();
        let (path, spare) = (dir.path().join(LAST), dir.path().join(PREVIOUS));
        for n in 1..=3u32 {
            let t = Tensor::full(n as f32, 2, &Device::Cpu).unwrap();
            save_keeping(&path, Some(&spare), &[("w".to_string(), t)], &n).unwrap();
        }
        assert_eq!(load_meta::<u32>(&path).unwrap(), 3);
        assert_eq!(load_meta::<u32>(&spare).unwrap(), 2);
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "no temporary file is left: {names:?}");
    }
}
