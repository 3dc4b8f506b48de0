//! `sweep run` end to end: a sweep finishes and is recorded, reruns skip finished work, a
//! grown grid runs only its new cells, kill -9 and Ctrl-C resume without loss or duplicates,
//! failures are recorded while the rest finishes, concurrent runs share the work, and bad
//! sweep files are refused before anything is written.

use std::path::Path;

use crate::common::{
    checkpoint_epochs, freeze_trials, process_state, signal, spawn_run, stored_trials, sweep, text,
    trial_dir, trial_dir_of_process, try_stored_trials, wait_for, wait_until, StoredTrial,
};
use sweep_store::TrialStatus;

/// A small sweep on synthetic data: 2 learning rates × 2 optimizers.
fn sweep_file(name: &str, lr: &str, epochs: u32, train: usize) -> String {
    format!(
        r#"name = "{name}"

[data]
synthetic = {{ classes = 3, size = 12, train = {train}, val = 30, test = 10, seed = 1 }}

[model]
arch = "resnet"
filters = [4, 8]
neurons = 8
dropout = 0.1

[train]
epochs = {epochs}
batch_size = 16
seed = 3

[grid]
lr = {lr}
optimizer = ["adam", "sgd"]

[run]
devices = "cpu"
trials_per_device = 2
"#
    )
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn run(dir: &Path, file: &str) -> (Option<i32>, String, String) {
    let out = sweep(dir, &["run", file, "--db", "sweep.db"]);
    let (stdout, stderr) = text(&out);
    (out.status.code(), stdout, stderr)
}

fn statuses(trials: &[StoredTrial]) -> Vec<&str> {
    trials.iter().map(|t| t.row.status.name()).collect()
}

/// Every trial has exactly epochs 1..=n, each once.
fn assert_complete(trials: &[StoredTrial], n: i64) {
    for t in trials {
        assert_eq!(t.row.status, TrialStatus::Done, "{:?}", t.row);
        assert_eq!(t.epochs, (1..=n).collect::<Vec<_>>(), "{:?}", t.row);
        assert!(t.row.objective.is_some() && t.row.best_epoch.is_some());
        let checkpoint = t.row.checkpoint.as_deref().unwrap_or_default();
        assert!(checkpoint.ends_with("best.safetensors"), "{checkpoint}");
    }
}

/// Waits until the database of the scheduler `pid` shows `ready`, and stops (SIGSTOP) the
/// scheduler there, so that nothing it records can change the state before the test acts.
fn freeze_when(
    what: &str,
    pid: u32,
    db: &Path,
    sweep: &str,
    ready: impl Fn(&[StoredTrial]) -> bool,
) -> Vec<StoredTrial> {
    wait_until(what, || {
        let trials = try_stored_trials(db, sweep).ok()?;
        if !ready(&trials) {
            return None;
        }
        signal(pid, libc::SIGSTOP);
        // SIGSTOP takes effect asynchronously.
        wait_until("the scheduler to stop (SIGSTOP)", || {
            (process_state(pid) == Some('T')).then_some(())
        });
        match try_stored_trials(db, sweep) {
            Ok(trials) if ready(&trials) => Some(trials),
            _ => {
                signal(pid, libc::SIGCONT);
                None
            }
        }
    })
}

/// Freezes the trial processes of the scheduler `pid` ([`freeze_trials`]) at a moment when
/// one of them has at least a whole epoch of its `epochs` still to train (the database may
/// lag behind a trial on a busy machine, its checkpoint does not); returns that one first.
fn freeze_a_trial_with_work_left(pid: u32, epochs: usize) -> Vec<u32> {
    wait_until("a trial process with work left to freeze", || {
        let mut frozen = freeze_trials(pid);
        let early = frozen.iter().position(|&c| {
            trial_dir_of_process(c).is_some_and(|dir| checkpoint_epochs(&dir) + 1 < epochs)
        });
        match early {
            Some(i) => {
                frozen.swap(0, i);
                Some(frozen)
            }
            None => {
                resume(&frozen);
                None
            }
        }
    })
}

fn resume(pids: &[u32]) {
    for &pid in pids {
        signal(pid, libc::SIGCONT);
    }
}

/// A trial that is running and has recorded at least one of its epochs (and not most).
fn one_running_early(trials: &[StoredTrial], epochs: usize) -> bool {
    trials.iter().any(|t| {
        t.row.status == TrialStatus::Running && !t.epochs.is_empty() && t.epochs.len() <= epochs / 2
    })
}

#[test]
fn a_sweep_finishes_then_a_rerun_executes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "s.toml", &sweep_file("small", "[0.01, 0.005]", 2, 64));
    let (code, stdout, stderr) = run(dir, "s.toml");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("4 done, 0 failed"), "{stdout}");
    assert!(stdout.contains("best: trial "), "{stdout}");
    let trials = stored_trials(&dir.join("sweep.db"), "small");
    assert_eq!(trials.len(), 4);
    assert_complete(&trials, 2);
    assert!(trials
        .iter()
        .all(|t| t.row.attempts == 1 && t.row.device.as_deref() == Some("cpu")));

    let (code, stdout, stderr) = run(dir, "s.toml");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("ran 0 in"), "{stdout}");
    let again = stored_trials(&dir.join("sweep.db"), "small");
    assert!(
        again.iter().all(|t| t.row.attempts == 1),
        "nothing re-executed"
    );
}

#[test]
fn a_grown_axis_runs_only_the_new_cells() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "s.toml", &sweep_file("grow", "[0.01, 0.005]", 1, 48));
    assert_eq!(run(dir, "s.toml").0, Some(0));
    let before = stored_trials(&dir.join("sweep.db"), "grow");
    write(
        dir,
        "s.toml",
        &sweep_file("grow", "[0.01, 0.005, 0.002]", 1, 48),
    );
    let (code, stdout, stderr) = run(dir, "s.toml");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("ran 2 in"), "{stdout}");
    let after = stored_trials(&dir.join("sweep.db"), "grow");
    assert_eq!(after.len(), 6);
    assert_complete(&after, 1);
    for old in &before {
        let same = after.iter().find(|t| t.row.id == old.row.id).unwrap();
        assert_eq!(same.row, old.row, "finished trials are untouched");
    }
}

#[test]
fn kill_9_mid_sweep_then_a_rerun_finishes_without_duplicates() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(
        dir,
        "s.toml",
        &sweep_file("killed", "[0.01, 0.005, 0.002]", 6, 160),
    );
    let db = dir.join("sweep.db");
    let results = dir.join("results");
    let mut child = spawn_run(dir, "s.toml");
    // A running trial with a checkpoint and epochs to go (so it cannot have reported its
    // end): the rerun must resume it, not start it over.
    let what = "a trial done and one running with a checkpoint and epochs to go";
    let seen = freeze_when(what, child.id(), &db, "killed", |trials| {
        trials.iter().any(|t| t.row.status == TrialStatus::Done)
            && trials.iter().any(|t| {
                t.row.status == TrialStatus::Running
                    && (1..6).contains(&checkpoint_epochs(&trial_dir(&results, "killed", &t.row)))
            })
    });
    signal(child.id(), libc::SIGKILL);
    child.wait().unwrap();
    let done_before: Vec<StoredTrial> = stored_trials(&db, "killed")
        .into_iter()
        .filter(|t| t.row.status == TrialStatus::Done)
        .collect();
    assert!(!done_before.is_empty(), "{:?}", statuses(&seen));

    let (code, stdout, stderr) = run(dir, "s.toml");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("6 done, 0 failed"), "{stdout}");
    let after = stored_trials(&db, "killed");
    assert_complete(&after, 6);
    for old in &done_before {
        let same = after.iter().find(|t| t.row.id == old.row.id).unwrap();
        assert_eq!(
            same.row, old.row,
            "trials finished before the kill are untouched"
        );
    }
    assert!(
        stderr.contains("resumed after epoch"),
        "an interrupted trial resumed from its checkpoint: {stderr}"
    );
}

#[test]
fn kill_9_between_a_checkpoint_and_its_epochs_loses_no_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "s.toml", &sweep_file("gap", "[0.01]", 8, 160));
    let db = dir.join("sweep.db");
    let mut child = spawn_run(dir, "s.toml");
    wait_for(
        "a trial running early in its epochs",
        &mut child,
        &db,
        "gap",
        |trials| one_running_early(trials, 8),
    );
    // The scheduler stops reading while its trials train on: their events wait in the pipe
    // while their checkpoints move ahead of the database.
    signal(child.id(), libc::SIGSTOP);
    // SIGSTOP takes effect asynchronously: only once the scheduler is stopped does the
    // database stay as read.
    wait_until("the scheduler to stop (SIGSTOP)", || {
        (process_state(child.id()) == Some('T')).then_some(())
    });
    let stored = stored_trials(&db, "gap");
    let results = dir.join("results");
    // Two epochs ahead: a commit that the stopped scheduler had written but not yet indexed
    // (one per trial at most) becomes visible after the kill.
    wait_until(
        "a trial's checkpoint two epochs ahead of the database",
        || {
            stored
                .iter()
                .any(|t| {
                    checkpoint_epochs(&trial_dir(&results, "gap", &t.row)) > t.epochs.len() + 1
                })
                .then_some(())
        },
    );
    signal(child.id(), libc::SIGKILL);
    child.wait().unwrap();
    let behind = stored_trials(&db, "gap");
    let gaps: Vec<(usize, usize)> = behind
        .iter()
        .map(|t| {
            (
                checkpoint_epochs(&trial_dir(&results, "gap", &t.row)),
                t.epochs.len(),
            )
        })
        .collect();
    let before: Vec<usize> = stored.iter().map(|t| t.epochs.len()).collect();
    assert!(
        gaps.iter().any(|(checkpoint, db)| checkpoint > db),
        "a checkpoint holds epochs that the database does not: (checkpoint, database) \
         {gaps:?}, database when stopped {before:?}"
    );

    let (code, stdout, stderr) = run(dir, "s.toml");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("2 done, 0 failed"), "{stdout}");
    assert_complete(&stored_trials(&db, "gap"), 8);
}

#[test]
fn a_new_database_beside_finished_trial_folders_records_every_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "s.toml", &sweep_file("again", "[0.01]", 3, 48));
    let (code, _, stderr) = run(dir, "s.toml");
    assert_eq!(code, Some(0), "{stderr}");
    let first = stored_trials(&dir.join("sweep.db"), "again");
    assert_complete(&first, 3);

    // The user starts the table over: the trial folders (and their checkpoints) remain.
    let out = sweep(dir, &["run", "s.toml", "--db", "fresh.db"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("2 done, 0 failed"), "{stdout}");
    let fresh = stored_trials(&dir.join("fresh.db"), "again");
    assert_complete(&fresh, 3);
    for (a, b) in first.iter().zip(&fresh) {
        assert_eq!(
            (a.row.best_epoch, a.row.objective),
            (b.row.best_epoch, b.row.objective),
            "the same result, read from the checkpoint"
        );
    }
    let out = sweep(dir, &["show", "again", "--db", "fresh.db"]);
    let (stdout, _) = text(&out);
    assert!(
        stdout.lines().skip(2).all(|l| l.contains(" 3 ")),
        "every trial lists its 3 epochs: {stdout}"
    );
}

#[test]
fn ctrl_c_interrupts_cleanly_and_a_rerun_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(
        dir,
        "s.toml",
        &sweep_file("stopped", "[0.01, 0.005]", 8, 160),
    );
    let db = dir.join("sweep.db");
    let mut child = spawn_run(dir, "s.toml");
    wait_for(
        "a trial running early in its epochs",
        &mut child,
        &db,
        "stopped",
        |trials| one_running_early(trials, 8),
    );
    // Trials frozen mid-training cannot finish before the Ctrl-C reaches them.
    let frozen = freeze_a_trial_with_work_left(child.id(), 8);
    signal(child.id(), libc::SIGINT);
    resume(&frozen);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let stopped = stored_trials(&db, "stopped");
    assert!(
        stopped.iter().all(|t| t.row.status != TrialStatus::Running),
        "{:?}",
        statuses(&stopped)
    );
    assert!(
        stopped
            .iter()
            .any(|t| t.row.status == TrialStatus::Interrupted),
        "{:?}",
        statuses(&stopped)
    );
    let (code, _, stderr) = run(dir, "s.toml");
    assert_eq!(code, Some(0), "{stderr}");
    assert_complete(&stored_trials(&db, "stopped"), 8);
}

#[test]
fn a_diverging_trial_is_recorded_as_failed_while_the_others_finish() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let text = sweep_file("diverge", "[1e30, 0.01]", 2, 64)
        .replace("optimizer = [\"adam\", \"sgd\"]", "optimizer = [\"sgd\"]");
    write(dir, "s.toml", &text);
    let (code, stdout, stderr) = run(dir, "s.toml");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stdout.contains("1 done, 1 failed"), "{stdout}");
    let trials = stored_trials(&dir.join("sweep.db"), "diverge");
    assert_eq!(statuses(&trials), ["failed", "done"]);
    let error = trials[0].row.error.as_deref().unwrap();
    assert!(error.starts_with("diverged at epoch 1, batch "), "{error}");
}

#[test]
fn a_crashing_trial_process_is_recorded_as_failed_and_retry_failed_resumes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "s.toml", &sweep_file("crash", "[0.01, 0.005]", 6, 160));
    let db = dir.join("sweep.db");
    let mut child = spawn_run(dir, "s.toml");
    wait_for(
        "a trial running early in its epochs",
        &mut child,
        &db,
        "crash",
        |trials| one_running_early(trials, 6),
    );
    // Frozen first, so the victim is alive and mid-training when it is killed.
    let frozen = freeze_a_trial_with_work_left(child.id(), 6);
    let (&victim, others) = frozen.split_first().expect("a trial process is running");
    signal(victim, libc::SIGKILL);
    resume(others);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    let trials = stored_trials(&db, "crash");
    let failed: Vec<&StoredTrial> = trials
        .iter()
        .filter(|t| t.row.status == TrialStatus::Failed)
        .collect();
    assert_eq!(failed.len(), 1, "{:?}", statuses(&trials));
    let error = failed[0].row.error.as_deref().unwrap();
    assert!(
        error.starts_with("the trial process was killed by signal 9"),
        "{error}"
    );
    assert_eq!(
        trials
            .iter()
            .filter(|t| t.row.status == TrialStatus::Done)
            .count(),
        3
    );

    // A plain rerun leaves a failed trial alone; --retry-failed runs it again.
    let (code, stdout, _) = run(dir, "s.toml");
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("ran 0 in"), "{stdout}");
    let out = sweep(
        dir,
        &["run", "s.toml", "--db", "sweep.db", "--retry-failed"],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("ran 1 in"), "{stdout}");
    let after = stored_trials(&db, "crash");
    assert_complete(&after, 6);
    let retried = after.iter().find(|t| t.row.id == failed[0].row.id).unwrap();
    assert_eq!(retried.row.attempts, 2, "attempts keep counting");
    assert_eq!(retried.row.error, None);
}

#[test]
fn two_concurrent_runs_execute_each_trial_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(
        dir,
        "s.toml",
        &sweep_file("shared", "[0.01, 0.005, 0.002]", 2, 64),
    );
    let a = spawn_run(dir, "s.toml");
    let b = spawn_run(dir, "s.toml");
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let trials = stored_trials(&dir.join("sweep.db"), "shared");
    assert_eq!(trials.len(), 6);
    assert_complete(&trials, 2);
    assert!(
        trials.iter().all(|t| t.row.attempts == 1),
        "{:?}",
        trials.iter().map(|t| t.row.attempts).collect::<Vec<_>>()
    );
}

#[test]
fn bad_sweep_files_are_refused_with_their_line_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let good = sweep_file("bad", "[0.01]", 1, 32);
    let cases = [
        (good.replace("epochs = 1", "epochs = = 1"), "s.toml:13:"),
        (
            good.replace("epochs = 1", "epoch = 1"),
            "s.toml:13: unknown key `train.epoch` (did you mean `train.epochs`?)",
        ),
        (
            good.replace("epochs = 1", "epochs = \"one\""),
            "s.toml:13: `train.epochs` must be an integer",
        ),
        (
            good.replace("lr = [0.01]", "lr = []"),
            "s.toml:18: `grid.lr` has no values",
        ),
        (
            good.replace("lr = [0.01]", "lr = [-1.0]"),
            "s.toml:18: `grid.lr`: must be a positive number, not -1",
        ),
        (
            good.replace("lr = [0.01]", "colour = [1]"),
            "s.toml:18: `grid.colour` is not a hyperparameter",
        ),
        (
            good.replace("dropout = 0.1", "dropout = 1.5"),
            "s.toml:10: `model.dropout`",
        ),
    ];
    for (text, expected) in cases {
        write(dir, "s.toml", &text);
        let (code, _, stderr) = run(dir, "s.toml");
        assert_eq!(code, Some(2), "{expected}: {stderr}");
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }
    assert!(!dir.join("sweep.db").exists(), "nothing written");
    assert!(!dir.join("results").exists(), "nothing written");
}

#[test]
fn the_seed_grids_without_their_data_say_where_to_put_it() {
    let tmp = tempfile::tempdir().unwrap();
    let sweeps = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sweeps");
    for name in ["cnn.toml", "mlp.toml"] {
        let file = sweeps.join(name);
        let (code, _, stderr) = run(tmp.path(), file.to_str().unwrap());
        assert_eq!(code, Some(2), "{stderr}");
        assert!(
            stderr.contains("data/generated-images") && stderr.contains("sweeps/quick.toml"),
            "{stderr}"
        );
    }
    assert!(!tmp.path().join("sweep.db").exists());
}

#[test]
fn dry_run_prints_the_trials_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "s.toml", &sweep_file("dry", "[0.01, 0.005]", 1, 32));
    let out = sweep(dir, &["run", "s.toml", "--db", "sweep.db", "--dry-run"]);
    let (stdout, _) = text(&out);
    assert!(out.status.success());
    assert!(
        stdout.starts_with("sweep `dry`: 4 trials\n  trial  params\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("\n      4  lr=0.005 optimizer=sgd\n"),
        "numbered as every other command numbers them: {stdout}"
    );
    assert!(
        !stdout.contains("halving"),
        "no [prune], no rungs: {stdout}"
    );
    assert!(!dir.join("sweep.db").exists());
}
