//! What a trial runs, apart from where it runs: a [`Trainer`] turns one trial (its folder, the
//! epoch it trains to, the device it sees) into the [`TrialCommand`] that an executor
//! ([`crate::executor`]) starts as it is given, adding only its placement.
//!
//! Today every trial runs the built-in trainer, `sweep trial DIR`. Command trials (a user's
//! program from `[trial] command`, with `SWEEP_TRIAL_DIR`, `SWEEP_PARAMS`, … in its
//! environment) plug in here, as a second program beside [`Trainer`] that builds its own
//! [`TrialCommand`]; no executor changes, since none of them reads what it starts.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use sweep_model::DeviceName;

/// One trial's process as an executor starts it: a program, its arguments and its
/// environment, which the executor passes on untouched.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialCommand {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// Variables set for the trial, beside the ones its executor sets for its placement.
    pub env: Vec<(String, String)>,
}

/// The built-in trainer: `sweep trial DIR`, which trains the model its folder's configuration
/// describes and appends its events to the folder's events file.
#[derive(Debug, Clone)]
pub struct Trainer {
    /// The `sweep` binary, absolute (a Slurm node finds it on the shared filesystem).
    pub exe: PathBuf,
    /// The decoded-data cache the trial maps its data from, absolute.
    pub cache_dir: PathBuf,
}

impl Trainer {
    /// The command that trains the trial in `dir` on `device` (the device as the trial sees
    /// it) until epoch `until` (`None`: to the end).
    pub fn command(&self, dir: &Path, until: Option<i64>, device: DeviceName) -> TrialCommand {
        let mut args: Vec<OsString> = vec![
            "trial".into(),
            dir.into(),
            "--device".into(),
            device.to_string().into(),
            "--cache".into(),
            self.cache_dir.clone().into(),
        ];
        if let Some(until) = until {
            args.extend(["--until".into(), until.to_string().into()]);
        }
        TrialCommand {
            program: self.exe.clone(),
            args,
            env: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trainer_runs_sweep_trial_on_the_folder() {
        let trainer = Trainer {
            exe: "/opt/sweep".into(),
            cache_dir: "/r/cache".into(),
        };
        let args = |c: TrialCommand| -> Vec<String> {
            c.args
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect()
        };
        let full = trainer.command(Path::new("/r/t/ab"), None, DeviceName::Cuda(0));
        assert_eq!(full.program, Path::new("/opt/sweep"));
        assert_eq!(
            args(full),
            ["trial", "/r/t/ab", "--device", "cuda:0", "--cache", "/r/cache"]
        );
        let to_rung = trainer.command(Path::new("/r/t/ab"), Some(3), DeviceName::Cpu);
        assert_eq!(
            args(to_rung)[3..],
            ["cpu", "--cache", "/r/cache", "--until", "3"]
        );
    }
}
