//! The training loop: [`train`] runs a trial's epochs (resuming from its last checkpoint),
//! reports each step as a [`TrialEvent`], and has its
//! [`Checkpointer`](crate::train::checkpoint::Checkpointer) write the checkpoints that
//! [`after_epoch`](crate::train::keep_best::after_epoch) asks for.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, D};
use candle_nn::VarMap;

use crate::data::{batch, Normalization, Split};
use crate::nn::Net;
use crate::rng::{stream, Rng};
use crate::train::checkpoint::{
    model_tensors, CheckpointError, Checkpointer, LastState, ModelCard,
};
use crate::train::config::Trial;
use crate::train::event::TrialEvent;
use crate::train::keep_best::{after_epoch, early_stop, Best, CheckpointAction};
use crate::train::metrics::{Confusion, EpochMetrics};
use crate::train::optim::Optimizer;
use crate::train::predict::evaluate;
use crate::train::schedule::{Schedule, ScheduleState};

/// Why training stopped without finishing.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("diverged at epoch {epoch}, batch {batch}: the loss is {loss}")]
    Diverged { epoch: u32, batch: usize, loss: f64 },
    #[error("the {split} split has no labels")]
    Unlabelled { split: &'static str },
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl TrainError {
    /// Whether the user's input is at fault (the cli exits 2 for it, 1 for any other failure).
    /// A match with no catch-all: a new variant must be decided here.
    pub fn is_bad_input(&self) -> bool {
        match self {
            TrainError::Checkpoint(e) => e.is_bad_input(),
            TrainError::Diverged { .. } | TrainError::Unlabelled { .. } | TrainError::Candle(_) => {
                false
            }
        }
    }
}

/// The result of [`train`].
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Every finished epoch, including those of earlier runs of this trial.
    pub history: Vec<EpochMetrics>,
    /// The best epoch; `None` only if stopped before the first epoch finished.
    pub best: Option<Best>,
    /// Whether all epochs ran, or patience ended the trial (`false`: stopped on request,
    /// resumable).
    pub finished: bool,
    /// Why the trial ended before its epochs: patience ran out.
    pub stopped_early: Option<String>,
}

/// How a trial's device is named in its events: `cpu`, `cuda:K`.
fn device_label(device: &candle_core::Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
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
    on_event: &mut dyn FnMut(TrialEvent),
) -> Result<Outcome, TrainError> {
    let mut run = Run::new(trial)?;
    let checkpointer = Checkpointer::new(trial);
    let resumed = checkpointer.resume(&run.vars, &mut run.optimizer, trial.device)?;
    let mut state = match resumed.state {
        Some(state) => state,
        None => {
            if resumed.recovery.is_some() {
                // A damaged checkpoint may have been half loaded before it was refused.
                run = Run::new(trial)?;
            }
            checkpointer.fresh(Normalization::measure(&trial.dataset.train))
        }
    };
    on_event(TrialEvent::Started {
        device: device_label(trial.device),
        history: state.history.clone(),
        recovered: resumed.recovery,
    });
    for epoch in state.history.len() as u32 + 1..=trial.train.epochs {
        let config = trial.train;
        let stalled = early_stop(
            config.objective,
            config.patience,
            epoch - 1,
            state.best.as_ref(),
        );
        if let Some(reason) = stalled {
            return Ok(Outcome {
                history: state.history,
                best: state.best,
                finished: true,
                stopped_early: Some(reason),
            });
        }
        let started = Instant::now();
        let Some(fit) = run.fit_epoch(epoch, &state.norm, &state.schedule, stop, on_event)? else {
            return Ok(Outcome {
                history: state.history,
                best: state.best,
                finished: false,
                stopped_early: None,
            });
        };
        let (metrics, confusion) = run.evaluate_epoch(epoch, &fit, &state.norm, started)?;
        let is_best = run.record_epoch(&checkpointer, &mut state, &metrics, &confusion)?;
        on_event(TrialEvent::Epoch(metrics));
        on_event(TrialEvent::Checkpoint {
            epoch,
            path: checkpointer.last_path(),
            best: is_best,
        });
    }
    Ok(Outcome {
        history: state.history,
        best: state.best,
        finished: true,
        stopped_early: None,
    })
}

/// What one training step did.
pub(crate) struct Step {
    /// The batch's cross-entropy (label-smoothed if the trial says so), the mean over its
    /// images.
    pub(crate) loss: f64,
    /// How many of the batch's images the logits (before the update) classify correctly.
    pub(crate) correct: usize,
    /// The gradients the optimizer applied; `None` when the loss is not finite and no update
    /// was made. The epoch loop has no use for them; the fidelity tests compare them.
    #[cfg_attr(not(test), expect(dead_code, reason = "read by the fidelity tests"))]
    pub(crate) grads: Option<GradStore>,
}

/// The cross-entropy of `logits` against the labels `ys`, the mean over the batch, with
/// label smoothing ε as `nn.CrossEntropyLoss(label_smoothing=ε)`: `(1 − ε)·(−log p_y) +
/// ε·mean_c(−log p_c)` per image.
pub(crate) fn smoothed_cross_entropy(
    logits: &Tensor,
    ys: &Tensor,
    label_smoothing: f64,
) -> candle_core::Result<Tensor> {
    if label_smoothing == 0.0 {
        return candle_nn::loss::cross_entropy(logits, ys);
    }
    let log_p = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let nll = candle_nn::loss::nll(&log_p, ys)?;
    let uniform = log_p.mean(D::Minus1)?.mean_all()?.neg()?;
    (nll * (1.0 - label_smoothing))? + (uniform * label_smoothing)?
}

/// One training step on a batch: the forward pass in training mode (batch statistics,
/// dropout from `dropout_rng`), the mean cross-entropy of the logits (with label smoothing
/// ε), the backward pass and the optimizer's update, unless the loss is not finite.
pub(crate) fn train_step(
    net: &Net,
    optimizer: &mut Optimizer,
    (xs, ys): (&Tensor, &Tensor),
    label_smoothing: f64,
    dropout_rng: &mut Rng,
) -> candle_core::Result<Step> {
    let (logits, tape) = net.forward_train(xs, dropout_rng)?;
    let loss = smoothed_cross_entropy(&logits, ys, label_smoothing)?;
    let loss_value = loss.to_scalar::<f32>()? as f64;
    if !loss_value.is_finite() {
        return Ok(Step {
            loss: loss_value,
            correct: 0,
            grads: None,
        });
    }
    let grads = net.backward(&loss, tape)?;
    optimizer.step(&grads)?;
    let correct = logits
        .argmax(D::Minus1)?
        .eq(ys)?
        .to_dtype(DType::U32)?
        .sum_all()?
        .to_scalar::<u32>()? as usize;
    Ok(Step {
        loss: loss_value,
        correct,
        grads: Some(grads),
    })
}

/// What the epochs of one run share: the trial, its network, optimizer and schedule, and the
/// labels.
struct Run<'a> {
    trial: &'a Trial<'a>,
    vars: VarMap,
    net: Net,
    optimizer: Optimizer,
    schedule: Schedule,
    train_labels: &'a [u32],
    val_labels: &'a [u32],
    /// The training images an epoch uses: batch norm cannot learn from a batch of one image,
    /// so such a last batch is left out.
    usable: usize,
}

/// The training totals of one epoch.
struct Fit {
    loss_sum: f64,
    correct: usize,
}

impl<'a> Run<'a> {
    /// The network and optimizer of `trial` at their initial state.
    fn new(trial: &'a Trial<'a>) -> Result<Self, TrainError> {
        let (dataset, config) = (trial.dataset, trial.train);
        let train_labels = labels_of(&dataset.train, "train")?;
        let val_labels = labels_of(&dataset.val, "validation")?;
        let vars = VarMap::new();
        let net = Net::new(
            trial.model,
            dataset.size,
            dataset.classes,
            config.seed,
            &vars,
            trial.device,
        )?;
        let optimizer = Optimizer::new(config.optimizer, config.lr, config.momentum, &vars)?
            .with_eps(config.eps)
            .with_weight_decay(config.weight_decay)
            .with_nesterov(config.nesterov);
        let n = dataset.train.len();
        let usable = if n % config.batch_size == 1 { n - 1 } else { n };
        let schedule = config.schedule(usable.div_ceil(config.batch_size) as u64);
        Ok(Self {
            trial,
            vars,
            net,
            optimizer,
            schedule,
            train_labels,
            val_labels,
            usable,
        })
    }

    /// One pass over the shuffled training images, each batch at the rate the schedule (in
    /// `schedule` state) gives it; `None` when `stop` was set before a batch.
    fn fit_epoch(
        &mut self,
        epoch: u32,
        norm: &Normalization,
        schedule: &ScheduleState,
        stop: &AtomicBool,
        on_event: &mut dyn FnMut(TrialEvent),
    ) -> Result<Option<Fit>, TrainError> {
        let Trial {
            dataset,
            train: config,
            device,
            ..
        } = *self.trial;
        let batches = self.usable.div_ceil(config.batch_size);
        let mut order: Vec<usize> = (0..dataset.train.len()).collect();
        Rng::derive(config.seed, &[stream::SHUFFLE, epoch as u64]).shuffle(&mut order);
        let mut augment_rng = Rng::derive(config.seed, &[stream::AUGMENT, epoch as u64]);
        let mut dropout_rng = Rng::derive(config.seed, &[stream::DROPOUT, epoch as u64]);
        let mut fit = Fit {
            loss_sum: 0.0,
            correct: 0,
        };
        for (b, indices) in order[..self.usable].chunks(config.batch_size).enumerate() {
            if stop.load(Ordering::Relaxed) {
                return Ok(None);
            }
            let xs = batch::images(
                &dataset.train,
                indices,
                dataset.size,
                norm,
                Some((self.trial.augment, &mut augment_rng)),
                device,
            )?;
            let ys = batch::labels(self.train_labels, indices, device)?;
            let lr = self.schedule.lr(epoch, self.optimizer.steps(), schedule);
            self.optimizer.set_lr(lr);
            let Step { loss, correct, .. } = train_step(
                &self.net,
                &mut self.optimizer,
                (&xs, &ys),
                config.label_smoothing,
                &mut dropout_rng,
            )?;
            if !loss.is_finite() {
                return Err(TrainError::Diverged {
                    epoch,
                    batch: b + 1,
                    loss,
                });
            }
            fit.loss_sum += loss * indices.len() as f64;
            fit.correct += correct;
            on_event(TrialEvent::Batch {
                epoch,
                batch: b + 1,
                batches,
                loss,
            });
        }
        Ok(Some(fit))
    }

    /// The epoch's metrics, its validation pass included, and the validation confusion.
    fn evaluate_epoch(
        &self,
        epoch: u32,
        fit: &Fit,
        norm: &Normalization,
        started: Instant,
    ) -> Result<(EpochMetrics, Confusion), TrainError> {
        let dataset = self.trial.dataset;
        let (val_loss, predicted) = evaluate(
            &self.net,
            &dataset.val,
            dataset.size,
            norm,
            self.trial.device,
        )?;
        let confusion = Confusion::from_labels(dataset.classes, self.val_labels, &predicted);
        let metrics = EpochMetrics {
            epoch,
            train_loss: fit.loss_sum / self.usable as f64,
            train_acc: fit.correct as f64 / self.usable as f64,
            val_loss: val_loss.unwrap_or(f64::NAN),
            val_acc: confusion.accuracy(),
            val_f1: confusion.macro_f1(),
            // The rate of the epoch's last batch: the epoch's own for the per-epoch
            // schedules, one-cycle's rate at the end of the epoch.
            lr: self.optimizer.lr(),
            seconds: started.elapsed().as_secs_f64(),
        };
        Ok((metrics, confusion))
    }

    /// Adds the epoch to `state` and writes the checkpoints [`after_epoch`] asks for; whether
    /// the epoch is the new best.
    fn record_epoch(
        &self,
        checkpointer: &Checkpointer,
        state: &mut LastState,
        metrics: &EpochMetrics,
        confusion: &Confusion,
    ) -> Result<bool, CheckpointError> {
        let objective = self.trial.train.objective;
        let actions = after_epoch(objective, metrics, state.best.as_ref());
        let tensors = model_tensors(&self.vars);
        state.history.push(metrics.clone());
        state.optimizer_steps = self.optimizer.steps();
        state.schedule =
            self.schedule
                .after_epoch(metrics.epoch, objective.value(metrics), &state.schedule);
        let mut is_best = false;
        for action in actions {
            match action {
                CheckpointAction::SaveBest => {
                    let card = ModelCard {
                        model: self.trial.model.clone(),
                        size: self.trial.dataset.size,
                        classes: self.trial.dataset.classes,
                        norm: state.norm,
                        epoch: metrics.epoch,
                        objective: objective.value(metrics),
                    };
                    checkpointer.save_best(&tensors, &card)?;
                    state.best = Some(Best {
                        epoch: metrics.epoch,
                        objective: card.objective,
                        confusion: confusion.clone(),
                    });
                    is_best = true;
                }
                CheckpointAction::SaveLast => {
                    checkpointer.save_last(tensors.clone(), &self.optimizer, state)?;
                }
            }
        }
        Ok(is_best)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use candle_core::Device;

    use super::*;
    use crate::data::augment::Augment;
    use crate::data::synthetic::SyntheticSpec;
    use crate::data::Dataset;
    use crate::nn::{Arch, ModelConfig};
    use crate::testing::timeless;
    use crate::train::checkpoint::{self, BEST, LAST};
    use crate::train::config::{Objective, TrainConfig};
    use crate::train::optim::OptimizerKind;
    use crate::train::predict::predict;
    use crate::train::schedule::ScheduleKind;

    fn small_resnet() -> ModelConfig {
        ModelConfig {
            arch: Arch::Resnet,
            filters: vec![8, 16, 32],
            neurons: 32,
            hidden: vec![],
            dropout: 0.2,
            ..ModelConfig::default()
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
            let (logits, _) = net.forward_train(&xs, &mut rng).unwrap();
            assert_eq!(logits.dims(), [3, 7]);
            assert_eq!(net.forward(&xs).unwrap().dims(), [3, 7]);
        }
    }

    #[test]
    fn dropout_and_batch_norm_differ_between_training_and_evaluation() {
        let vars = VarMap::new();
        let net = Net::new(&small_resnet(), 16, 5, 1, &vars, &Device::Cpu).unwrap();
        let xs = Tensor::randn(0f32, 1.0, (4, 3, 16, 16), &Device::Cpu).unwrap();
        let eval1 = net.forward(&xs).unwrap().to_vec2::<f32>().unwrap();
        let eval2 = net.forward(&xs).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(eval1, eval2, "evaluation is deterministic");
        let mut rng = Rng::new(1);
        let (train, _) = net.forward_train(&xs, &mut rng).unwrap();
        let train = train.to_vec2::<f32>().unwrap();
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
            ..Augment::default()
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
    fn patience_ends_a_stalled_trial_as_finished_with_its_reason() {
        // An MLP (no batch norm) that barely learns: every epoch's accuracy is the first's.
        let mlp = ModelConfig {
            arch: Arch::Mlp,
            neurons: 8,
            hidden: vec![],
            dropout: 0.0,
            ..ModelConfig::default()
        };
        let config = TrainConfig {
            epochs: 8,
            batch_size: 32,
            optimizer: OptimizerKind::Sgd,
            lr: 1e-12,
            objective: Objective::ValAcc,
            patience: 2,
            ..TrainConfig::default()
        };
        let dataset = data(3, 64);
        let dir = tempfile::tempdir().unwrap();
        let augment = Augment::default();
        let outcome = run(&dataset, &mlp, &config, &augment, dir.path()).unwrap();
        assert!(outcome.finished, "an early stop is a finished trial");
        assert_eq!(
            outcome.history.len(),
            3,
            "the best epoch and two without improvement"
        );
        assert_eq!(outcome.best.as_ref().map(|b| b.epoch), Some(1));
        let reason =
            "stopped early after epoch 3: val_acc did not improve for 2 epochs after epoch 1";
        assert_eq!(outcome.stopped_early.as_deref(), Some(reason));
        let again = run(&dataset, &mlp, &config, &augment, dir.path()).unwrap();
        assert_eq!(again.history.len(), 3, "resuming it trains nothing more");
        assert_eq!(again.stopped_early.as_deref(), Some(reason));
    }

    #[test]
    fn two_epochs_and_a_resumed_third_equal_three_epochs() {
        let dataset = data(3, 100);
        let augment = Augment {
            rotation: 10.0,
            shift: 0.1,
            zoom: 0.0,
            hflip: true,
            ..Augment::default()
        };
        for optimizer in [
            OptimizerKind::Adam,
            OptimizerKind::Sgd,
            OptimizerKind::Rmsprop,
            OptimizerKind::Adamw,
        ] {
            let three = TrainConfig {
                epochs: 3,
                batch_size: 16,
                optimizer,
                momentum: 0.5,
                nesterov: true,
                weight_decay: 0.01,
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
            let TrialEvent::Started {
                device,
                history,
                recovered: None,
            } = &events[0]
            else {
                panic!(
                    "a resumed run reports its checkpoint first: {:?}",
                    events[0]
                );
            };
            assert_eq!(device, "cpu");
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
    fn a_trial_paused_mid_schedule_and_resumed_equals_one_trained_straight_through() {
        let dataset = data(3, 100);
        let augment = Augment {
            hflip: true,
            ..Augment::default()
        };
        let base = TrainConfig {
            epochs: 5,
            batch_size: 16,
            optimizer: OptimizerKind::Adamw,
            lr: 0.01,
            weight_decay: 0.01,
            ..TrainConfig::default()
        };
        let schedules = [
            TrainConfig {
                schedule: ScheduleKind::Cosine,
                warmup_epochs: Some(2),
                min_lr: Some(1e-4),
                ..base.clone()
            },
            TrainConfig {
                schedule: ScheduleKind::Step,
                step_size: Some(2),
                gamma: Some(0.5),
                ..base.clone()
            },
            TrainConfig {
                schedule: ScheduleKind::Plateau,
                objective: Objective::ValLoss,
                plateau_patience: Some(0),
                factor: Some(0.5),
                ..base.clone()
            },
            TrainConfig {
                schedule: ScheduleKind::Onecycle,
                max_lr: Some(0.05),
                ..base.clone()
            },
        ];
        for config in &schedules {
            assert_eq!(config.schedule_problem(), None);
            let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
            let straight = run(&dataset, &small_resnet(), config, &augment, a.path()).unwrap();
            let trial = Trial {
                dataset: &dataset,
                model: &small_resnet(),
                train: config,
                augment: &augment,
                device: &Device::Cpu,
                dir: b.path(),
            };
            // As a pruned trial pauses at its rung: stopped after epoch 3's checkpoint.
            let stop = AtomicBool::new(false);
            let paused = train(&trial, &stop, &mut |p| {
                if matches!(p, TrialEvent::Checkpoint { epoch: 3, .. }) {
                    stop.store(true, Ordering::Relaxed);
                }
            })
            .unwrap();
            assert_eq!((paused.finished, paused.history.len()), (false, 3));
            let resumed = train(&trial, &AtomicBool::new(false), &mut |_| {}).unwrap();
            let kind = config.schedule;
            assert_eq!(
                timeless(&straight.history),
                timeless(&resumed.history),
                "{kind:?}"
            );
            assert_eq!(
                weights(&a.path().join(LAST)),
                weights(&b.path().join(LAST)),
                "{kind:?}"
            );
            let lrs: Vec<f64> = straight.history.iter().map(|m| m.lr).collect();
            assert!(lrs.windows(2).any(|w| w[0] != w[1]), "{kind:?}: {lrs:?}");
        }
        let cosine = &schedules[0];
        let warmup: Vec<f64> = run(
            &dataset,
            &small_resnet(),
            cosine,
            &augment,
            tempfile::tempdir().unwrap().path(),
        )
        .unwrap()
        .history
        .iter()
        .map(|m| m.lr)
        .collect();
        assert_eq!(
            warmup[..3],
            [0.01 / 3.0, 0.02 / 3.0, 0.01],
            "the lr column is the epoch's rate"
        );
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
            if matches!(p, TrialEvent::Checkpoint { epoch: 1, .. }) {
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
            batches += matches!(p, TrialEvent::Batch { .. }) as usize
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
        assert!(
            matches!(err, TrainError::Checkpoint(CheckpointError::Foreign { .. })),
            "{err}"
        );
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
