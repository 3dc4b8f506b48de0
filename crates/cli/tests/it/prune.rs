//! Pruning end to end: successive halving stops the losing cells at the first rung and keeps
//! the full grid's best, a paused and promoted trial trains exactly as one trained straight
//! through, a halving sweep killed anywhere decides as an uninterrupted one, and median
//! stopping stops the trials below the median.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::{
    parse_table, signal, spawn_run, stored_trials, sweep, text, wait_for, StoredTrial,
};
use sweep_store::TrialStatus;

/// 3 learning rates (one far too small to learn anything in 6 epochs) × 3 optimizers.
fn sweep_file(name: &str, prune: &str, slots: usize) -> String {
    format!(
        r#"name = "{name}"

[data]
synthetic = {{ classes = 4, size = 12, train = 240, val = 60, test = 10, seed = 5 }}

[model]
arch = "resnet"
filters = [4, 8]
neurons = 8
dropout = 0.1

[train]
epochs = 6
batch_size = 16
seed = 3

[grid]
lr = [0.01, 0.003, 0.000001]
optimizer = ["adam", "rmsprop", "sgd"]

{prune}

[run]
devices = "cpu"
trials_per_device = {slots}
"#
    )
}

const HALVING: &str = "[prune]\nmethod = \"halving\"\nmin_epochs = 2\nreduction_factor = 3";

/// Runs sweep file `text` as `file` in `dir`; returns stdout.
fn run(dir: &Path, file: &str, text_of_file: &str) -> String {
    run_and_log(dir, file, text_of_file).0
}

/// Runs sweep file `text` as `file` in `dir`; returns stdout and stderr (the progress).
fn run_and_log(dir: &Path, file: &str, text_of_file: &str) -> (String, String) {
    std::fs::write(dir.join(file), text_of_file).unwrap();
    let out = sweep(dir, &["run", file, "--db", "sweep.db"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    (stdout, stderr)
}

/// Asserts that `sweep show SWEEP` lists every trial best first by its objective (higher
/// is better), whatever its status; returns the rows.
fn assert_show_is_best_first(
    dir: &Path,
    sweep_name: &str,
) -> Vec<std::collections::BTreeMap<String, String>> {
    let show = text(&sweep(dir, &["show", sweep_name, "--db", "sweep.db"])).0;
    let rows = parse_table(&show);
    let objectives: Vec<f64> = rows
        .iter()
        .map_while(|r| r["objective"].parse().ok())
        .collect();
    assert!(
        objectives.windows(2).all(|w| w[0] >= w[1]),
        "best first by the objective: {show}"
    );
    assert!(
        rows[objectives.len()..]
            .iter()
            .all(|r| r["objective"] == "-"),
        "the trials without an objective last: {show}"
    );
    rows
}

/// The best objective (val_f1) any of these trials has recorded, as `sweep ls` prints it.
fn best_recorded(trials: &[StoredTrial]) -> String {
    let best = trials
        .iter()
        .flat_map(|t| t.metrics.iter().map(|e| e.metrics["val_f1"]))
        .fold(f64::NEG_INFINITY, f64::max);
    format!("{best:.4}")
}

/// Each trial by its configuration hash: its status, its lr and its epochs' metrics.
fn by_hash(trials: &[StoredTrial]) -> BTreeMap<String, Outcome> {
    trials
        .iter()
        .map(|t| {
            let outcome = Outcome {
                status: t.row.status,
                lr: t.row.summary.params["lr"].as_f64().unwrap(),
                metrics: t
                    .metrics
                    .iter()
                    .map(|e| {
                        (
                            e.metrics["train_loss"].to_bits(),
                            e.metrics["val_loss"].to_bits(),
                            e.metrics["val_f1"].to_bits(),
                        )
                    })
                    .collect(),
            };
            (t.row.config_hash.clone(), outcome)
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq)]
struct Outcome {
    status: TrialStatus,
    lr: f64,
    /// (train_loss, val_loss, val_f1) of each epoch, compared bit for bit.
    metrics: Vec<(u64, u64, u64)>,
}

/// The configuration hash of a sweep's best trial.
fn best_hash(trials: &[StoredTrial]) -> String {
    let mut rows: Vec<_> = trials.iter().map(|t| t.row.clone()).collect();
    sweep_store::rank_best_first(&mut rows);
    assert_eq!(rows[0].status, TrialStatus::Done);
    rows[0].config_hash.clone()
}

#[test]
fn halving_stops_the_losers_at_the_first_rung_and_keeps_the_full_grids_best() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let db = dir.join("sweep.db");
    run(dir, "full.toml", &sweep_file("full", "", 2));
    // Before it runs, a dry run numbers the trials as every other command does and says
    // what halving would train.
    std::fs::write(dir.join("halved.toml"), sweep_file("halved", HALVING, 2)).unwrap();
    let dry = |dir: &Path| {
        let out = sweep(
            dir,
            &["run", "halved.toml", "--db", "sweep.db", "--dry-run"],
        );
        assert!(out.status.success(), "{}", text(&out).1);
        text(&out).0
    };
    let plan = dry(dir);
    assert!(
        plan.contains("\n      1  lr=0.01 optimizer=adam\n"),
        "{plan}"
    );
    assert!(
        plan.contains("\n      9  lr=1e-6 optimizer=sgd\n"),
        "{plan}"
    );
    assert!(
        plan.contains(
            "halving (η 3) trains to epoch 2: 9 trials, epoch 6: 3 trials; 30 epochs of a full grid's 54"
        ),
        "{plan}"
    );
    let stdout = run(dir, "halved.toml", &sweep_file("halved", HALVING, 2));
    assert!(
        stdout.contains("3 done, 0 failed, 6 stopped by pruning, 0 not finished"),
        "{stdout}"
    );
    assert!(
        stdout.contains("pruning: trained 30 epochs of a full grid's 54 (1.8× fewer)"),
        "{stdout}"
    );
    let full_trials = stored_trials(&db, "full");
    let halved_trials = stored_trials(&db, "halved");
    let full = by_hash(&full_trials);
    let halved = by_hash(&halved_trials);
    for (hash, trial) in &halved {
        match trial.status {
            TrialStatus::Done => assert_eq!(
                trial.metrics, full[hash].metrics,
                "paused at epoch 2 and resumed, it trains as straight through, bit for bit"
            ),
            TrialStatus::Stopped => assert_eq!(
                trial.metrics[..],
                full[hash].metrics[..2],
                "stopped at the first rung"
            ),
            other => panic!("{other:?}"),
        }
        if trial.lr < 1e-5 {
            assert_eq!(
                trial.status,
                TrialStatus::Stopped,
                "a hopeless lr stops early"
            );
        }
    }
    assert_eq!(best_hash(&halved_trials), best_hash(&full_trials));

    let out = sweep(
        dir,
        &[
            "query",
            "SELECT decision, epoch, count(*) AS n FROM decisions GROUP BY decision, epoch",
            "--db",
            "sweep.db",
            "--format",
            "csv",
        ],
    );
    assert_eq!(text(&out).0, "decision,epoch,n\npromote,2,3\nstop,2,6\n");
    let show = text(&sweep(dir, &["show", "halved", "--db", "sweep.db"])).0;
    assert!(
        show.contains("stopped at epoch 2: 4 of 9, below the top 3"),
        "{show}"
    );
    // Best first whatever the status: stopped trials among the done ones by their objective.
    let rows = assert_show_is_best_first(dir, "halved");
    assert_eq!(rows.len(), 9);
    assert_eq!(
        rows[0]["status"], "done",
        "the full grid's best trial is done"
    );
    // Run again: the counts say what the sweep holds, and nothing runs.
    let (again, log) = run_and_log(dir, "halved.toml", &sweep_file("halved", HALVING, 2));
    assert!(
        log.contains("sweep `halved`: 9 trials (3 done, 6 stopped by pruning); 0 to run on"),
        "{log}"
    );
    assert!(again.contains("ran 0 in"), "{again}");
    // The dry run now shows each trial's number and status.
    let plan = dry(dir);
    let numbers = |status: &str| plan.matches(&format!("({status})")).count();
    assert_eq!((numbers("done"), numbers("stopped")), (3, 6), "{plan}");
}

#[test]
fn a_halving_sweep_killed_anywhere_decides_as_an_uninterrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let db = dir.join("sweep.db");
    run(dir, "straight.toml", &sweep_file("straight", HALVING, 2));
    let straight = by_hash(&stored_trials(&db, "straight"));

    std::fs::write(dir.join("killed.toml"), sweep_file("killed", HALVING, 2)).unwrap();
    let mut child = spawn_run(dir, "killed.toml");
    // Killed once a trial has paused at its rung, whatever else is going on.
    wait_for(
        "a trial paused at its rung",
        &mut child,
        &db,
        "killed",
        |trials| trials.iter().any(|t| t.row.status == TrialStatus::Paused),
    );
    signal(child.id(), libc::SIGKILL);
    child.wait().unwrap();
    // `ls` and `show` rank by what the trials recorded so far, paused ones included.
    let so_far = stored_trials(&db, "killed");
    let ls = text(&sweep(dir, &["ls", "--db", "sweep.db"])).0;
    let listed = parse_table(&ls);
    let row = listed.iter().find(|r| r["sweep"] == "killed").unwrap();
    assert_ne!(row["paused"], "0", "{ls}");
    assert_eq!(row["best"], best_recorded(&so_far), "{ls}");
    let shown = assert_show_is_best_first(dir, "killed");
    assert_eq!(shown[0]["objective"], row["best"]);
    let (_, log) = run_and_log(dir, "killed.toml", &sweep_file("killed", HALVING, 2));
    assert!(
        log.contains(" paused at their rung") && log.contains(" to run or decide on "),
        "the rerun says what was paused: {log}"
    );
    let killed = by_hash(&stored_trials(&db, "killed"));
    assert_eq!(killed, straight);
}

#[test]
fn median_stopping_stops_the_trials_below_the_median() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let db = dir.join("sweep.db");
    run(dir, "full.toml", &sweep_file("full", "", 1));
    let median = "[prune]\nmethod = \"median\"\nwarmup_epochs = 1\nmin_trials = 2";
    let stdout = run(dir, "median.toml", &sweep_file("median", median, 1));
    assert!(stdout.contains("stopped by pruning"), "{stdout}");
    let again = run(dir, "median.toml", &sweep_file("median", median, 1));
    assert!(
        again.contains("ran 0 in"),
        "stopped trials stay stopped: {again}"
    );
    let full_trials = stored_trials(&db, "full");
    let median_trials = stored_trials(&db, "median");
    let full = by_hash(&full_trials);
    let judged = by_hash(&median_trials);
    let trained: usize = judged.values().map(|t| t.metrics.len()).sum();
    assert!(trained < 54, "fewer epochs than the full grid: {trained}");
    for (hash, trial) in &judged {
        let n = trial.metrics.len();
        assert_eq!(
            trial.metrics[..],
            full[hash].metrics[..n],
            "the same epochs"
        );
        if trial.status == TrialStatus::Stopped {
            assert!(
                (2..6).contains(&n),
                "stopped after warm-up, before the end: {n}"
            );
        }
        if trial.lr < 1e-5 {
            assert_eq!(
                trial.status,
                TrialStatus::Stopped,
                "a hopeless lr stops early"
            );
        }
    }
    assert_eq!(best_hash(&median_trials), best_hash(&full_trials));
}
