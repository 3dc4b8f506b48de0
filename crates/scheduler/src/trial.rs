//! The trial process (`sweep trial DIR`): trains one trial of a sweep from its folder's
//! `config.json` (or runs its command: [`crate::command`]), appending its [`TrialEvent`]s to the folder's events file (see
//! [`crate::event_log`]). It stops cleanly (checkpoint kept, `interrupted`) on SIGINT, SIGTERM
//! or SIGUSR2, and dies with the process that started it.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use sweep_model::data::DataError;
use sweep_model::train::PredictError;
use sweep_model::{cache, Dataset, DeviceName, TrainError, Trial};

use crate::sweep_file::{BuiltinConfig, DataSource, TrialConfig};
use sweep_model::TrialEvent;

/// The file in a trial's folder that holds its configuration.
pub const CONFIG_FILE: &str = "config.json";

/// How a trial process ended, for its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrialExit {
    Finished,
    Interrupted,
    Failed,
    /// It reached the epoch it was to train to (`--until`).
    Paused,
    /// Its configuration or data cannot be used (exit code 2, as for any bad input).
    BadInput,
}

/// Why a trial, or a prediction with a trial's model, cannot run.
///
/// A variant that holds another error either says its text and has no `source`, or is
/// `transparent`: no part of an error's chain repeats another.
#[derive(Debug, thiserror::Error)]
pub enum TrialError {
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error(transparent)]
    Data(DataError),
    #[error("cannot open device {device}: {message}")]
    Device { device: DeviceName, message: String },
    #[error(transparent)]
    Train(TrainError),
    #[error(transparent)]
    Predict(PredictError),
}

impl TrialError {
    /// Whether the user's input (configuration, data) is at fault (a trial process exits 2
    /// for it, as the cli does). A match with no catch-all: a new variant must be decided here.
    pub fn is_bad_input(&self) -> bool {
        match self {
            TrialError::Config { .. } => true,
            TrialError::Data(e) => e.is_bad_input(),
            TrialError::Train(e) => e.is_bad_input(),
            TrialError::Predict(e) => e.is_bad_input(),
            TrialError::Device { .. } => false,
        }
    }
}

/// Reads a trial's configuration from the JSON `text` of `path`: a command trial's when it
/// has a `command`, else the built-in trainer's (each read as itself, for a clear error).
pub fn read_config(path: &Path, text: &str) -> Result<TrialConfig, TrialError> {
    let error = |e: serde_json::Error| TrialError::Config {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let value: serde_json::Value = serde_json::from_str(text).map_err(error)?;
    if value.get("command").is_some() {
        serde_json::from_value(value)
            .map(TrialConfig::Command)
            .map_err(error)
    } else {
        serde_json::from_value(value)
            .map(TrialConfig::Builtin)
            .map_err(error)
    }
}

/// Loads the trial's data as its configuration says (the scheduler has already decoded a
/// data folder into the cache, so this maps the cache file).
pub fn load_data(config: &BuiltinConfig, cache_dir: &Path) -> Result<Dataset, TrialError> {
    match &config.data {
        DataSource::Synthetic(spec) => Ok(spec.generate()),
        DataSource::Dir(dir) => cache::load(dir, cache_dir, config.classes)
            .map(|(dataset, _)| dataset)
            .map_err(TrialError::Data),
    }
}

/// Opens `device`.
pub fn open_device(device: DeviceName) -> Result<candle_core::Device, TrialError> {
    device.open().map_err(|e| TrialError::Device {
        device,
        message: e.to_string(),
    })
}

/// Makes this process die with its parent: a scheduler killed with `kill -9` must not leave
/// trials running that a resumed sweep would then run a second time.
fn die_with_parent() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl(PR_SET_PDEATHSIG) only sets a flag of this process, getppid only reads its
    // parent id and _exit ends it; none of them touches memory that Rust code owns.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        // The parent may have died before the flag was set.
        if libc::getppid() == 1 {
            libc::_exit(137);
        }
    }
}

/// Runs the trial in `dir` on `device`, sending each event to `emit`; with `until`, it
/// pauses (checkpoint kept) once that many epochs are done.
pub fn run_trial(
    dir: &Path,
    device: DeviceName,
    cache_dir: &Path,
    until: Option<u32>,
    emit: &mut dyn FnMut(TrialEvent),
) -> TrialExit {
    die_with_parent();
    let stop = Arc::new(AtomicBool::new(false));
    // SIGUSR2 is Slurm's warning before a time limit or a preemption (`--signal`): the
    // trial stops as for SIGTERM, and its job is requeued to resume from the checkpoint.
    let signals = [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGUSR2,
    ];
    for signal in signals {
        // A second signal after the first goes unanswered here: the scheduler escalates to
        // SIGKILL itself.
        let _ = signal_hook::flag::register(signal, stop.clone());
    }
    let path = dir.join(CONFIG_FILE);
    let config = std::fs::read_to_string(&path)
        .map_err(|e| TrialError::Config {
            path: path.clone(),
            message: e.to_string(),
        })
        .and_then(|text| read_config(&path, &text));
    let config = match config {
        Ok(TrialConfig::Builtin(config)) => config,
        Ok(TrialConfig::Command(config)) => {
            return crate::command::run_command_trial(dir, device, &config, until, &stop, emit)
        }
        Err(e) => {
            emit(TrialEvent::Failed {
                reason: e.to_string(),
            });
            return TrialExit::BadInput;
        }
    };
    let prepared = (|| {
        let dataset = load_data(&config, cache_dir)?;
        Ok::<_, TrialError>((dataset, open_device(device)?))
    })();
    let (dataset, candle_device) = match prepared {
        Ok(prepared) => prepared,
        Err(e) => {
            let exit = if e.is_bad_input() {
                TrialExit::BadInput
            } else {
                TrialExit::Failed
            };
            emit(TrialEvent::Failed {
                reason: e.to_string(),
            });
            return exit;
        }
    };
    let trial = Trial {
        dataset: &dataset,
        model: &config.model,
        train: &config.train,
        augment: &config.augment,
        device: &candle_device,
        dir,
    };
    let reached = |epochs: usize| until.is_some_and(|u| epochs >= u as usize);
    let outcome = sweep_model::train(&trial, &stop, &mut |event| {
        // The loop checks `stop` before each batch: set after the rung's checkpoint, it ends
        // the trial there, as a stop request would.
        let pause = match &event {
            TrialEvent::Started { history, .. } => reached(history.len()),
            TrialEvent::Checkpoint { epoch, .. } => reached(*epoch as usize),
            _ => false,
        };
        emit(event);
        if pause {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    });
    match outcome {
        Err(e) => {
            emit(TrialEvent::Failed {
                reason: TrialError::Train(e).to_string(),
            });
            TrialExit::Failed
        }
        Ok(outcome) if !outcome.finished && reached(outcome.history.len()) => {
            emit(TrialEvent::Paused {
                epochs: outcome.history.len() as u32,
            });
            TrialExit::Paused
        }
        Ok(outcome) if !outcome.finished => {
            emit(TrialEvent::Interrupted {
                epochs: outcome.history.len() as u32,
            });
            TrialExit::Interrupted
        }
        Ok(outcome) => {
            let best = outcome
                .best
                .expect("a finished trial has at least one epoch");
            emit(TrialEvent::Finished {
                best_epoch: best.epoch,
                objective: best.objective,
                checkpoint: dir.join(sweep_model::train::BEST),
                confusion: best.confusion,
                stopped_early: outcome.stopped_early,
            });
            TrialExit::Finished
        }
    }
}
