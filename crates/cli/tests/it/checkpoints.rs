//! Damaged checkpoints end to end: a sweep killed mid-trial whose last checkpoint is then
//! truncated resumes from the one before it; one whose checkpoints are all bit-flipped starts
//! the trial again from epoch 1. Either way the trial ends `done` with every epoch once, the
//! stored epochs are the checkpoint's, and the run's log and `sweep show` say what happened.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::common::{
    checkpoint_history, freeze_trials, process_state, signal, spawn_run, stored_trials, sweep,
    text, trial_dir, try_stored_trials, wait_until,
};
use sweep_store::TrialStatus;

const EPOCHS: usize = 8;

/// One trial on synthetic data, with enough epochs to be killed in the middle of.
fn sweep_file(name: &str) -> String {
    format!(
        r#"name = "{name}"

[data]
synthetic = {{ classes = 3, size = 16, train = 2400, val = 30, test = 10, seed = 1 }}

[model]
arch = "resnet"
filters = [4, 8]
neurons = 8
dropout = 0.1

[train]
epochs = {EPOCHS}
batch_size = 16
seed = 3

[grid]
lr = [0.01]

[run]
devices = "cpu"
trials_per_device = 1
"#
    )
}

/// Runs the sweep `name` in `dir` and kills it (kill -9) while its trial is frozen with a
/// last and a previous checkpoint, every epoch of them recorded, and epochs left to train;
/// returns the trial's folder once its process is gone.
fn kill_mid_trial(dir: &Path, name: &str) -> PathBuf {
    std::fs::write(dir.join("s.toml"), sweep_file(name)).unwrap();
    let (db, results) = (dir.join("sweep.db"), dir.join("results"));
    let mut child = spawn_run(dir, "s.toml");
    let (trial, frozen) = wait_until("a trial with a checkpoint to freeze", || {
        let trials = try_stored_trials(&db, name).ok()?;
        let t = trials
            .first()
            .filter(|t| t.row.status == TrialStatus::Running)?;
        let folder = trial_dir(&results, name, &t.row);
        let held = checkpoint_history(&folder.join("last.safetensors")).len();
        if !(2..EPOCHS - 1).contains(&held) || t.epochs.len() < held {
            return None;
        }
        let frozen = freeze_trials(child.id());
        let held = checkpoint_history(&folder.join("last.safetensors")).len();
        // Frozen between keeping the spare (a hard link) and writing the new file, the two
        // names are one file, and damaging one damages both.
        let inode = |file: &str| std::fs::metadata(folder.join(file)).map(|m| m.ino()).ok();
        let one_file = inode("last.safetensors") == inode("previous.safetensors");
        if frozen.is_empty() || !(2..EPOCHS).contains(&held) || one_file {
            frozen.iter().for_each(|&p| signal(p, libc::SIGCONT));
            return None;
        }
        Some((folder, frozen))
    });
    signal(child.id(), libc::SIGKILL);
    child.wait().unwrap();
    // A trial process dies with its scheduler, frozen or not.
    wait_until("the frozen trials to die with their scheduler", || {
        frozen
            .iter()
            .all(|&p| matches!(process_state(p), None | Some('Z' | 'X')))
            .then_some(())
    });
    trial
}

fn truncate(path: &Path) {
    let len = std::fs::metadata(path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.set_len(len / 3).unwrap();
}

/// Flips one bit in the tensor bytes, where the file still parses as safetensors.
fn flip_a_bit(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = bytes.len() - 5;
    bytes[at] ^= 0x10;
    std::fs::write(path, &bytes).unwrap();
    assert!(safetensors::SafeTensors::deserialize(&bytes).is_ok());
}

/// Reruns the killed sweep: it ends `done` with every epoch once, stored as the final
/// checkpoint holds them, and the run's log, the trial's note and `sweep show` all say each
/// of `expected`.
fn rerun_finishes_with_every_epoch_once(dir: &Path, name: &str, folder: &Path, expected: &[&str]) {
    let out = sweep(dir, &["run", "s.toml", "--db", "sweep.db"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("1 done, 0 failed"), "{stdout}");
    for part in expected {
        assert!(stderr.contains(part), "the run's log: {stderr}");
    }
    let trials = stored_trials(&dir.join("sweep.db"), name);
    let [t] = &trials[..] else {
        panic!("one trial: {trials:?}");
    };
    assert_eq!(t.row.status, TrialStatus::Done, "{:?}", t.row);
    let all: Vec<i64> = (1..=EPOCHS as i64).collect();
    assert_eq!(t.epochs, all, "every epoch once");
    assert!(t.row.best_epoch.is_some_and(|e| all.contains(&e)));
    let held = checkpoint_history(&folder.join("last.safetensors"));
    let stored: Vec<(i64, f64, f64)> = t
        .metrics
        .iter()
        .map(|m| (m.epoch, m.metrics["train_loss"], m.metrics["val_f1"]))
        .collect();
    let checkpoint: Vec<(i64, f64, f64)> = held
        .iter()
        .map(|m| {
            let number = |key: &str| m[key].as_f64().unwrap();
            (
                m["epoch"].as_i64().unwrap(),
                number("train_loss"),
                number("val_f1"),
            )
        })
        .collect();
    assert_eq!(stored, checkpoint, "the stored epochs are the checkpoint's");
    let note = t.row.note.as_deref().unwrap_or_default();
    for part in expected {
        assert!(note.contains(part), "{note}");
    }
    let out = sweep(dir, &["show", name, "--db", "sweep.db"]);
    let (shown, _) = text(&out);
    assert!(out.status.success());
    let header = shown.lines().next().unwrap_or_default();
    assert!(header.trim_end().ends_with("note"), "{shown}");
    for part in expected {
        assert!(shown.contains(part), "{shown}");
    }
}

#[test]
fn a_killed_trial_whose_last_checkpoint_was_truncated_resumes_from_the_previous_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let folder = kill_mid_trial(dir, "truncated");
    let previous = checkpoint_history(&folder.join("previous.safetensors")).len();
    assert!(previous >= 1, "a previous checkpoint was kept");
    truncate(&folder.join("last.safetensors"));
    let resumed = format!("); resumed from previous.safetensors after epoch {previous}");
    rerun_finishes_with_every_epoch_once(
        dir,
        "truncated",
        &folder,
        &[
            "last.safetensors did not load (not a sweep checkpoint: ",
            &resumed,
        ],
    );
}

#[test]
fn a_killed_trial_whose_checkpoints_were_bit_flipped_starts_again_from_epoch_1() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let folder = kill_mid_trial(dir, "flipped");
    flip_a_bit(&folder.join("last.safetensors"));
    flip_a_bit(&folder.join("previous.safetensors"));
    rerun_finishes_with_every_epoch_once(
        dir,
        "flipped",
        &folder,
        &[
            "last.safetensors did not load (the checksum does not match); previous.safetensors \
          did not load (the checksum does not match); started again from epoch 1",
        ],
    );
    assert!(folder.join("last.safetensors.damaged").exists());
}
