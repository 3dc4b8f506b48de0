//! The training loop: [`train`] runs a trial's epochs (resuming from its last checkpoint),
//! reports [`Progress`] as plain data, and writes the last and best checkpoints;
//! [`predict`] labels a split with a saved model.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarMap;

use crate::data::augment::Augment;
use crate::data::batch;
use crate::data::{Dataset, Normalization, Split};
use crate::nn::{ModelConfig, Net, Pass};
use crate::rng::{stream, Rng};
use crate::train::checkpoint::{self, CheckpointError};
use crate::train::metrics::Confusion;
use crate::train::optim::{Optimizer, OptimizerKind};

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
    /// The objective's value in an epoch's metrics.
    pub fn value(self, m: &EpochMetrics) -> f64 {
        match self {
            Objective::ValF1 => m.val_f1,
            Objective::ValAcc => m.val_acc,
            Objective::ValLoss => m.val_loss,
        }
    }

    /// Whether `a` is strictly better than `b`.
    pub fn better(self, a: f64, b: f64) -> bool {
        match self {
            Objective::ValLoss => a < b,
            _ => a > b,
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
        None
    }
}

/// The metrics of one finished epoch (epochs count from 1).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochMetrics {
    pub epoch: u32,
    pub train_loss: f64,
    pub train_acc: f64,
    pub val_loss: f64,
    pub val_acc: f64,
    pub val_f1: f64,
    pub lr: f64,
    pub seconds: f64,
}

/// What the loop reports as it goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// Training resumed from a checkpoint holding these finished epochs (from 1, in order).
    Resumed { history: Vec<EpochMetrics> },
    /// A training batch finished.
    Batch {
        epoch: u32,
        batch: usize,
        batches: usize,
        loss: f64,
    },
    /// An epoch finished and was evaluated.
    Epoch(EpochMetrics),
    /// The checkpoints after `epoch` were written; `best` says whether it is the new best.
    Checkpoint {
        epoch: u32,
        path: PathBuf,
        best: bool,
    },
}

/// Why training stopped without finishing.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("diverged at epoch {epoch}, batch {batch}: the loss is {loss}")]
    Diverged { epoch: u32, batch: usize, loss: f64 },
    #[error("the {split} split has no labels")]
    Unlabelled { split: &'static str },
    #[error("{path}: the checkpoint belongs to another configuration")]
    ForeignCheckpoint { path: PathBuf },
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// The state saved with the last checkpoint: enough to resume exactly where it stopped.
/// The random streams of an epoch are derived from `(seed, epoch)`, so they need no saving.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct LastState {
    identity: String,
    optimizer_steps: u64,
    norm: Normalization,
    history: Vec<EpochMetrics>,
    best: Option<Best>,
}

/// The best epoch so far and its confusion matrix.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Best {
    pub epoch: u32,
    pub objective: f64,
    pub confusion: Confusion,
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

/// The result of [`train`].
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Every finished epoch, including those of earlier runs of this trial.
    pub history: Vec<EpochMetrics>,
    /// The best epoch; `None` only if stopped before the first epoch finished.
    pub best: Option<Best>,
    /// Whether all epochs ran (`false`: stopped on request, resumable).
    pub finished: bool,
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

/// The last checkpoint's file name in a trial's folder.
pub const LAST: &str = "last.safetensors";
/// The best checkpoint's file name in a trial's folder.
pub const BEST: &str = "best.safetensors";

impl Trial<'_> {
    /// A string that changes whenever a resumed run would not continue the same training;
    /// the number of epochs is left out, so a finished trial can be trained further.
    fn identity(&self) -> String {
        let train = TrainConfig {
            epochs: 0,
            ..self.train.clone()
        };
        serde_json::json!({
            "model": self.model,
            "train": train,
            "augment": self.augment,
            "size": self.dataset.size,
            "classes": self.dataset.classes,
        })
        .to_string()
    }
}

fn model_tensors(vars: &VarMap) -> Vec<(String, Tensor)> {
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

fn load_model_tensors(
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

fn labels_of<'s>(split: &'s Split, name: &'static str) -> Result<&'s [u32], TrainError> {
    split
        .labels
        .as_deref()
        .ok_or(TrainError::Unlabelled { split: name })
}

/// Trains `trial` for its epochs, resuming from its last checkpoint if there is one, and
/// stops early (resumable, after the last finished epoch) once `stop` is set.
pub fn train(
    trial: &Trial,
    stop: &AtomicBool,
    on_progress: &mut dyn FnMut(Progress),
) -> Result<Outcome, TrainError> {
    let Trial {
        dataset,
        train: config,
        device,
        ..
    } = *trial;
    let size = dataset.size;
    let train_labels = labels_of(&dataset.train, "train")?;
    let val_labels = labels_of(&dataset.val, "validation")?;
    let vars = VarMap::new();
    let net = Net::new(
        trial.model,
        size,
        dataset.classes,
        config.seed,
        &vars,
        device,
    )?;
    let mut optimizer = Optimizer::new(config.optimizer, config.lr, config.momentum, &vars)?;
    let identity = trial.identity();
    let last_path = trial.dir.join(LAST);
    let best_path = trial.dir.join(BEST);

    let mut state = if last_path.exists() {
        let (tensors, state): (_, LastState) = checkpoint::load(&last_path, device)?;
        if state.identity != identity {
            return Err(TrainError::ForeignCheckpoint { path: last_path });
        }
        load_model_tensors(&vars, &tensors)?;
        optimizer.load_state(&tensors, state.optimizer_steps)?;
        on_progress(Progress::Resumed {
            history: state.history.clone(),
        });
        state
    } else {
        LastState {
            identity,
            optimizer_steps: 0,
            norm: Normalization::measure(&dataset.train),
            history: Vec::new(),
            best: None,
        }
    };

    let n = dataset.train.len();
    // Batch norm cannot learn from a batch of one image: such a last batch is left out.
    let usable = if n % config.batch_size == 1 { n - 1 } else { n };
    let batches = usable.div_ceil(config.batch_size);
    for epoch in state.history.len() as u32 + 1..=config.epochs {
        let started = Instant::now();
        let mut order: Vec<usize> = (0..n).collect();
        Rng::derive(config.seed, &[stream::SHUFFLE, epoch as u64]).shuffle(&mut order);
        let mut augment_rng = Rng::derive(config.seed, &[stream::AUGMENT, epoch as u64]);
        let mut dropout_rng = Rng::derive(config.seed, &[stream::DROPOUT, epoch as u64]);
        let (mut loss_sum, mut correct) = (0.0f64, 0usize);
        for (b, indices) in order[..usable].chunks(config.batch_size).enumerate() {
            if stop.load(Ordering::Relaxed) {
                return Ok(Outcome {
                    history: state.history,
                    best: state.best,
                    finished: false,
                });
            }
            let xs = batch::images(
                &dataset.train,
                indices,
                size,
                &state.norm,
                Some((trial.augment, &mut augment_rng)),
                device,
            )?;
            let ys = batch::labels(train_labels, indices, device)?;
            let logits = net.forward(&xs, &mut Pass::Train(&mut dropout_rng))?;
            let loss = candle_nn::loss::cross_entropy(&logits, &ys)?;
            let loss_value = loss.to_scalar::<f32>()? as f64;
            if !loss_value.is_finite() {
                return Err(TrainError::Diverged {
                    epoch,
                    batch: b + 1,
                    loss: loss_value,
                });
            }
            optimizer.step(&loss.backward()?)?;
            loss_sum += loss_value * indices.len() as f64;
            correct += logits
                .argmax(D::Minus1)?
                .eq(&ys)?
                .to_dtype(DType::U32)?
                .sum_all()?
                .to_scalar::<u32>()? as usize;
            on_progress(Progress::Batch {
                epoch,
                batch: b + 1,
                batches,
                loss: loss_value,
            });
        }
        let (val_loss, predicted) = evaluate(&net, &dataset.val, size, &state.norm, device)?;
        let confusion = Confusion::from_labels(dataset.classes, val_labels, &predicted);
        let metrics = EpochMetrics {
            epoch,
            train_loss: loss_sum / usable as f64,
            train_acc: correct as f64 / usable as f64,
            val_loss: val_loss.unwrap_or(f64::NAN),
            val_acc: confusion.accuracy(),
            val_f1: confusion.macro_f1(),
            lr: optimizer.lr(),
            seconds: started.elapsed().as_secs_f64(),
        };
        let objective = config.objective.value(&metrics);
        let is_best = state
            .best
            .as_ref()
            .is_none_or(|b| config.objective.better(objective, b.objective));
        let tensors = model_tensors(&vars);
        if is_best {
            let card = ModelCard {
                model: trial.model.clone(),
                size,
                classes: dataset.classes,
                norm: state.norm,
                epoch,
                objective,
            };
            checkpoint::save(&best_path, &tensors, &card)?;
            state.best = Some(Best {
                epoch,
                objective,
                confusion,
            });
        }
        state.history.push(metrics.clone());
        state.optimizer_steps = optimizer.steps();
        let mut all = tensors;
        all.extend(optimizer.state());
        checkpoint::save(&last_path, &all, &state)?;
        on_progress(Progress::Epoch(metrics));
        on_progress(Progress::Checkpoint {
            epoch,
            path: last_path.clone(),
            best: is_best,
        });
    }
    Ok(Outcome {
        history: state.history,
        best: state.best,
        finished: true,
    })
}

/// Images per evaluation batch; one size for validation and prediction, so that both compute
/// exactly the same logits.
const EVAL_BATCH: usize = 256;

/// The mean cross-entropy (when the split has labels) and the predicted labels of a split.
fn evaluate(
    net: &Net,
    split: &Split,
    size: usize,
    norm: &Normalization,
    device: &Device,
) -> candle_core::Result<(Option<f64>, Vec<u32>)> {
    let mut predicted = Vec::with_capacity(split.len());
    let mut loss_sum = 0.0;
    let all: Vec<usize> = (0..split.len()).collect();
    for indices in all.chunks(EVAL_BATCH) {
        let xs = batch::images(split, indices, size, norm, None, device)?;
        let logits = net.forward(&xs, &mut Pass::Eval)?;
        if let Some(labels) = &split.labels {
            let ys = batch::labels(labels, indices, device)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &ys)?.to_scalar::<f32>()?;
            loss_sum += loss as f64 * indices.len() as f64;
        }
        predicted.extend(logits.argmax(D::Minus1)?.to_vec1::<u32>()?);
    }
    let loss = split
        .labels
        .as_ref()
        .map(|_| loss_sum / split.len().max(1) as f64);
    Ok((loss, predicted))
}

/// Why a saved model could not label a split.
#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    #[error("{path}: the model was trained on {model_size}×{model_size} images in {model_classes} classes, the data set has {size}×{size} in {classes}")]
    Mismatch {
        path: PathBuf,
        model_size: usize,
        model_classes: usize,
        size: usize,
        classes: usize,
    },
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// What [`predict`] returns: a label per image, and the macro F1 when the split has labels.
#[derive(Debug, Clone)]
pub struct Prediction {
    pub labels: Vec<u32>,
    pub card: ModelCard,
    pub confusion: Option<Confusion>,
}

/// Labels every image of `split` (in order) with the model saved at `path` (a best or last
/// checkpoint of [`train`]).
pub fn predict(
    path: &Path,
    dataset: &Dataset,
    split: &Split,
    device: &Device,
) -> Result<Prediction, PredictError> {
    let (tensors, card): (_, ModelCard) = checkpoint::load(path, device)?;
    if card.size != dataset.size || card.classes != dataset.classes {
        return Err(PredictError::Mismatch {
            path: path.to_path_buf(),
            model_size: card.size,
            model_classes: card.classes,
            size: dataset.size,
            classes: dataset.classes,
        });
    }
    let vars = VarMap::new();
    let net = Net::new(&card.model, card.size, card.classes, 0, &vars, device)?;
    load_model_tensors(&vars, &tensors)?;
    let (_, labels) = evaluate(&net, split, card.size, &card.norm, device)?;
    let confusion = split
        .labels
        .as_ref()
        .map(|truth| Confusion::from_labels(card.classes, truth, &labels));
    Ok(Prediction {
        labels,
        card,
        confusion,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic::SyntheticSpec;
    use crate::nn::Arch;

    fn small_resnet() -> ModelConfig {
        ModelConfig {
            arch: Arch::Resnet,
            filters: vec![8, 16, 32],
            neurons: 32,
            hidden: vec![],
            dropout: 0.2,
        }
    }

    fn data(classes: usize, train: usize) -> Dataset {
        SyntheticSpec {
            classes,
            size: 16,
            train,
            val: 120,
            test: 10,
            seed: 5,
        }
        .generate()
    }

    fn run(
        dataset: &Dataset,
        model: &ModelConfig,
        config: &TrainConfig,
        augment: &Augment,
        dir: &Path,
    ) -> Result<Outcome, TrainError> {
        let trial = Trial {
            dataset,
            model,
            train: config,
            augment,
            device: &Device::Cpu,
            dir,
        };
        train(&trial, &AtomicBool::new(false), &mut |_| {})
    }

    /// The metrics without the wall-clock seconds, which differ from run to run.
    fn timeless(history: &[EpochMetrics]) -> Vec<EpochMetrics> {
        history
            .iter()
            .map(|m| EpochMetrics {
                seconds: 0.0,
                ..m.clone()
            })
            .collect()
    }

    fn weights(path: &Path) -> Vec<(String, Vec<f32>)> {
        let (tensors, _): (_, serde_json::Value) = checkpoint::load(path, &Device::Cpu).unwrap();
        let mut all: Vec<(String, Vec<f32>)> = tensors
            .into_iter()
            .map(|(k, t)| (k, t.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    #[test]
    fn both_networks_give_one_logit_per_class_in_both_passes() {
        for (arch, size) in [(Arch::Resnet, 16), (Arch::Resnet, 21), (Arch::Mlp, 12)] {
            let model = ModelConfig {
                arch,
                hidden: vec![10],
                ..small_resnet()
            };
            let vars = VarMap::new();
            let net = Net::new(&model, size, 7, 1, &vars, &Device::Cpu).unwrap();
            let xs = Tensor::zeros((3, 3, size, size), DType::F32, &Device::Cpu).unwrap();
            let mut rng = Rng::new(1);
            assert_eq!(
                net.forward(&xs, &mut Pass::Train(&mut rng)).unwrap().dims(),
                [3, 7]
            );
            assert_eq!(net.forward(&xs, &mut Pass::Eval).unwrap().dims(), [3, 7]);
        }
    }

    #[test]
    fn dropout_and_batch_norm_differ_between_training_and_evaluation() {
        let vars = VarMap::new();
        let net = Net::new(&small_resnet(), 16, 5, 1, &vars, &Device::Cpu).unwrap();
        let xs = Tensor::randn(0f32, 1.0, (4, 3, 16, 16), &Device::Cpu).unwrap();
        let eval1 = net
            .forward(&xs, &mut Pass::Eval)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let eval2 = net
            .forward(&xs, &mut Pass::Eval)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(eval1, eval2, "evaluation is deterministic");
        let mut rng = Rng::new(1);
        let train = net
            .forward(&xs, &mut Pass::Train(&mut rng))
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_ne!(eval1, train);
    }

    #[test]
    fn a_small_resnet_learns_the_synthetic_data_well_above_chance() {
        let dataset = data(4, 600);
        let config = TrainConfig {
            epochs: 4,
            batch_size: 32,
            lr: 0.003,
            ..TrainConfig::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let outcome = run(
            &dataset,
            &small_resnet(),
            &config,
            &Augment::default(),
            dir.path(),
        )
        .unwrap();
        let best = outcome.best.unwrap();
        assert!(outcome.finished);
        assert_eq!(outcome.history.len(), 4);
        assert!(
            best.objective > 0.6,
            "val F1 {} (chance 0.25)",
            best.objective
        );
        assert!(outcome.history[3].train_loss < outcome.history[0].train_loss);
        assert_eq!(best.confusion.counts.iter().sum::<u64>(), 120);
    }

    #[test]
    fn the_same_seed_gives_the_same_run_bit_for_bit() {
        let dataset = data(3, 100);
        let config = TrainConfig {
            epochs: 2,
            batch_size: 16,
            ..TrainConfig::default()
        };
        let augment = Augment {
            rotation: 10.0,
            shift: 0.1,
            zoom: 0.1,
            hflip: true,
        };
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let first = run(&dataset, &small_resnet(), &config, &augment, a.path()).unwrap();
        let second = run(&dataset, &small_resnet(), &config, &augment, b.path()).unwrap();
        assert_eq!(timeless(&first.history), timeless(&second.history));
        assert_eq!(weights(&a.path().join(LAST)), weights(&b.path().join(LAST)));
        let other = TrainConfig { seed: 43, ..config };
        let c = tempfile::tempdir().unwrap();
        let third = run(&dataset, &small_resnet(), &other, &augment, c.path()).unwrap();
        assert_ne!(timeless(&first.history), timeless(&third.history));
    }

    #[test]
    fn two_epochs_and_a_resumed_third_equal_three_epochs() {
        let dataset = data(3, 100);
        let augment = Augment {
            rotation: 10.0,
            shift: 0.1,
            zoom: 0.0,
            hflip: true,
        };
        for optimizer in [
            OptimizerKind::Adam,
            OptimizerKind::Sgd,
            OptimizerKind::Rmsprop,
        ] {
            let three = TrainConfig {
                epochs: 3,
                batch_size: 16,
                optimizer,
                momentum: 0.5,
                ..TrainConfig::default()
            };
            let two = TrainConfig {
                epochs: 2,
                ..three.clone()
            };
            let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
            let straight = run(&dataset, &small_resnet(), &three, &augment, a.path()).unwrap();
            run(&dataset, &small_resnet(), &two, &augment, b.path()).unwrap();
            let mut events = Vec::new();
            let trial = Trial {
                dataset: &dataset,
                model: &small_resnet(),
                train: &three,
                augment: &augment,
                device: &Device::Cpu,
                dir: b.path(),
            };
            let resumed = train(&trial, &AtomicBool::new(false), &mut |p| events.push(p)).unwrap();
            let Progress::Resumed { history } = &events[0] else {
                panic!(
                    "a resumed run reports its checkpoint first: {:?}",
                    events[0]
                );
            };
            assert_eq!(history[..], resumed.history[..2], "the checkpoint's epochs");
            assert_eq!(
                timeless(&straight.history),
                timeless(&resumed.history),
                "{optimizer:?}"
            );
            assert_eq!(straight.best, resumed.best);
            assert_eq!(
                weights(&a.path().join(LAST)),
                weights(&b.path().join(LAST)),
                "{optimizer:?}"
            );
            assert_eq!(weights(&a.path().join(BEST)), weights(&b.path().join(BEST)));
        }
    }

    #[test]
    fn a_stop_request_ends_resumably_and_a_finished_trial_is_not_retrained() {
        let dataset = data(3, 64);
        let config = TrainConfig {
            epochs: 2,
            batch_size: 16,
            ..TrainConfig::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let trial = Trial {
            dataset: &dataset,
            model: &small_resnet(),
            train: &config,
            augment: &Augment::default(),
            device: &Device::Cpu,
            dir: dir.path(),
        };
        let stop = AtomicBool::new(false);
        let stopped = train(&trial, &stop, &mut |p| {
            if matches!(p, Progress::Checkpoint { epoch: 1, .. }) {
                stop.store(true, Ordering::Relaxed);
            }
        })
        .unwrap();
        assert!(!stopped.finished);
        assert_eq!(stopped.history.len(), 1);
        let finished = train(&trial, &AtomicBool::new(false), &mut |_| {}).unwrap();
        assert!(finished.finished);
        assert_eq!(finished.history.len(), 2);
        let mut batches = 0;
        let again = train(&trial, &AtomicBool::new(false), &mut |p| {
            batches += matches!(p, Progress::Batch { .. }) as usize
        })
        .unwrap();
        assert_eq!((batches, again.history.len()), (0, 2));
    }

    #[test]
    fn a_checkpoint_of_another_configuration_is_refused() {
        let dataset = data(3, 32);
        let config = TrainConfig {
            epochs: 1,
            batch_size: 16,
            ..TrainConfig::default()
        };
        let dir = tempfile::tempdir().unwrap();
        run(
            &dataset,
            &small_resnet(),
            &config,
            &Augment::default(),
            dir.path(),
        )
        .unwrap();
        let other = TrainConfig {
            epochs: 2,
            lr: 0.01,
            ..config
        };
        let err = run(
            &dataset,
            &small_resnet(),
            &other,
            &Augment::default(),
            dir.path(),
        )
        .unwrap_err();
        assert!(matches!(err, TrainError::ForeignCheckpoint { .. }), "{err}");
    }

    #[test]
    fn a_diverging_run_names_the_epoch_and_batch() {
        let dataset = data(3, 64);
        let config = TrainConfig {
            epochs: 3,
            batch_size: 16,
            optimizer: OptimizerKind::Sgd,
            lr: 1e30,
            ..TrainConfig::default()
        };
        let model = ModelConfig {
            arch: Arch::Mlp,
            neurons: 16,
            hidden: vec![],
            dropout: 0.0,
            ..small_resnet()
        };
        let dir = tempfile::tempdir().unwrap();
        let err = run(&dataset, &model, &config, &Augment::default(), dir.path()).unwrap_err();
        assert!(
            matches!(err, TrainError::Diverged { epoch: 1, .. }),
            "{err}"
        );
        assert!(
            err.to_string().starts_with("diverged at epoch 1, batch "),
            "{err}"
        );
    }

    #[test]
    fn prediction_from_the_best_checkpoint_matches_the_recorded_f1() {
        let dataset = data(4, 200);
        let config = TrainConfig {
            epochs: 2,
            batch_size: 32,
            ..TrainConfig::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let outcome = run(
            &dataset,
            &small_resnet(),
            &config,
            &Augment::default(),
            dir.path(),
        )
        .unwrap();
        let best = outcome.best.unwrap();
        let val = predict(&dir.path().join(BEST), &dataset, &dataset.val, &Device::Cpu).unwrap();
        assert_eq!(val.labels.len(), dataset.val.len());
        assert_eq!(val.card.epoch, best.epoch);
        assert_eq!(val.confusion.as_ref().unwrap(), &best.confusion);
        assert_eq!(val.confusion.unwrap().macro_f1(), best.objective);
        let test = predict(
            &dir.path().join(BEST),
            &dataset,
            &dataset.test,
            &Device::Cpu,
        )
        .unwrap();
        assert_eq!(test.labels.len(), dataset.test.len());
        assert!(test.labels.iter().all(|&l| l < 4));
    }
}
