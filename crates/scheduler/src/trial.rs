//! The trial process (`sweep trial DIR`): trains one trial of a sweep from its folder's
//! `config.json`, writing [`TrialEvent`]s to stdout. It stops cleanly (checkpoint kept,
//! `interrupted`) on SIGINT or SIGTERM, and dies with the scheduler that started it.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use sweep_model::{cache, Progress, Trial};

use crate::events::TrialEvent;
use crate::sweep_file::{DataSource, TrialConfig};

/// The file in a trial's folder that holds its configuration.
pub const CONFIG_FILE: &str = "config.json";

/// How a trial process ended, for its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrialExit {
    Finished,
    Interrupted,
    Failed,
}

/// Loads the trial's data as its configuration says (the scheduler has already decoded a
/// data folder into the cache, so this maps the cache file).
pub fn load_data(config: &TrialConfig, cache_dir: &Path) -> Result<sweep_model::Dataset, String> {
    match &config.data {
        DataSource::Synthetic(spec) => Ok(spec.generate()),
        DataSource::Dir(dir) => cache::load(dir, cache_dir, config.classes)
            .map(|(dataset, _)| dataset)
            .map_err(|e| e.to_string()),
    }
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

/// Runs the trial in `dir` on `device`, sending each event to `emit`.
pub fn run_trial(
    dir: &Path,
    device: &str,
    cache_dir: &Path,
    emit: &mut dyn FnMut(TrialEvent),
) -> TrialExit {
    die_with_parent();
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal after the first goes unanswered here: the scheduler escalates to
        // SIGKILL itself.
        let _ = signal_hook::flag::register(signal, stop.clone());
    }
    let fail = |emit: &mut dyn FnMut(TrialEvent), reason: String| {
        emit(TrialEvent::Failed { reason });
        TrialExit::Failed
    };
    let config_path = dir.join(CONFIG_FILE);
    let config: TrialConfig = match std::fs::read_to_string(&config_path)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
    {
        Ok(config) => config,
        Err(e) => return fail(emit, format!("{}: {e}", config_path.display())),
    };
    let dataset = match load_data(&config, cache_dir) {
        Ok(dataset) => dataset,
        Err(e) => return fail(emit, e),
    };
    let candle_device = match sweep_model::device(device) {
        Ok(d) => d,
        Err(e) => return fail(emit, format!("cannot open device {device}: {e}")),
    };
    // A resumed trial announces itself once it has read its checkpoint.
    if !dir.join(sweep_model::train::LAST).exists() {
        emit(TrialEvent::Started {
            device: device.to_string(),
            history: Vec::new(),
        });
    }
    let trial = Trial {
        dataset: &dataset,
        model: &config.model,
        train: &config.train,
        augment: &config.augment,
        device: &candle_device,
        dir,
    };
    let outcome = sweep_model::train(&trial, &stop, &mut |progress| {
        emit(match progress {
            Progress::Resumed { history } => TrialEvent::Started {
                device: device.to_string(),
                history,
            },
            Progress::Batch {
                epoch,
                batch,
                batches,
                loss,
            } => TrialEvent::Batch {
                epoch,
                batch,
                batches,
                loss,
            },
            Progress::Epoch(metrics) => TrialEvent::Epoch(metrics),
            Progress::Checkpoint { epoch, path, best } => {
                TrialEvent::Checkpoint { epoch, path, best }
            }
        })
    });
    match outcome {
        Err(e) => fail(emit, e.to_string()),
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
            });
            TrialExit::Finished
        }
    }
}
