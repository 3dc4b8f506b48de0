//! Command trials end to end, with a standard-library Python program through the repository's
//! helper (`python/sweep_trial.py`): a grid over `[params]` finds the formula's best trial,
//! halving pauses and resumes the program from its own checkpoint, kill -9 of the sweep loses
//! and repeats no epoch, a program that cannot resume is trained again from its first epoch,
//! and each way of breaking the contract fails its trial with a named reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::{
    signal, spawn_run, stored_trials, sweep, text, trial_dir, wait_for, StoredTrial,
};
use sweep_store::{Param, TrialStatus};

/// The program: its `score` is a formula of the params and the epoch (best at lr = 0.3,
/// width = 8, the last epoch); its `w` goes 0 → 3 by `lr` of the way each epoch, from the
/// value its checkpoint holds, so a resume from the wrong place shows in `w`. It appends each
/// epoch it trains to `trained.log`; `mode` makes it break the contract one way or another.
const PROGRAM: &str = r#"
import json, os, sys, time
sys.path.insert(0, HELPER)
from sweep_trial import Trial

t = Trial()
p = t.params
mode = p.get("mode", "ok")
state = t.load("state.json") if p.get("resume", True) else None
start, w = (state["epoch"], state["w"]) if state else (0, 0.0)

def raw(text):
    with open(os.environ["SWEEP_METRICS"], "a") as f:
        f.write(text + "\n")

if mode == "stubborn":
    import signal
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if mode == "nothing":
    sys.exit(0)
if mode == "exit":
    print("out of memory (pretend)", file=sys.stderr)
    sys.exit(3)
with open(t.path("trained.log"), "a") as log:
    for epoch in t.epochs(start):
        time.sleep(p.get("sleep", 0.0))
        w += p["lr"] * (3 - w)
        score = 1 - (p["lr"] - 0.3) ** 2 - (p["width"] - 8) ** 2 / 100 - 1 / (epoch + 1)
        log.write("%d\n" % epoch)
        log.flush()
        if mode == "nan" and epoch == 2:
            raw('{"epoch": 2, "score": NaN}')
        elif mode == "order" and epoch == 2:
            raw('{"epoch": 3, "score": 0.5}')
        elif mode == "garbage":
            raw("hello")
        elif mode == "noobjective":
            raw('{"epoch": %d, "train_loss": 0.5}' % epoch)
        else:
            t.report(epoch, score=score, w=w)
        t.save("state.json", {"epoch": epoch, "w": w})
    if mode == "beyond":
        t.report(t.total_epochs + 1, score=0.0, w=w)
"#;

/// The repository's `python/` folder, where the helper is.
fn helper_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../python")
}

/// Writes the program as `prog.py` in `dir`.
fn write_program(dir: &Path) {
    let helper = format!("{:?}", helper_dir().display().to_string());
    std::fs::write(dir.join("prog.py"), PROGRAM.replace("HELPER", &helper)).unwrap();
}

/// A command sweep of the program: `[trial]` with `trial_keys`, its params and `rest`.
fn sweep_file(name: &str, epochs: u32, trial_keys: &str, params: &str, rest: &str) -> String {
    format!(
        r#"name = "{name}"

[trial]
command = ["python3", "prog.py", "--lr", "{{lr}}"]
files = ["prog.py"]
epochs = {epochs}
objective = "score"
direction = "maximize"
{trial_keys}

[params]
lr = 0.1
width = 4
{params}

{rest}

[run]
devices = "cpu"
trials_per_device = 2
max_retries = 0
"#
    )
}

fn run(dir: &Path, file: &str, text_of_file: &str) -> (Option<i32>, String, String) {
    std::fs::write(dir.join(file), text_of_file).unwrap();
    let out = sweep(dir, &["run", file, "--db", "sweep.db"]);
    let (stdout, stderr) = text(&out);
    (out.status.code(), stdout, stderr)
}

/// A trial's value of a param.
fn param(t: &StoredTrial, key: &str) -> Param {
    t.row.summary.params[key].clone()
}

fn float(t: &StoredTrial, key: &str) -> f64 {
    param(t, key).as_f64().unwrap()
}

/// What the program's `w` is after `epoch` epochs at `lr`, trained without a break.
fn w_after(lr: f64, epoch: i64) -> f64 {
    (0..epoch).fold(0.0, |w, _| w + lr * (3.0 - w))
}

/// The epochs the program trained for a trial, in order, from its `trained.log`.
fn trained(dir: &Path, sweep: &str, t: &StoredTrial) -> Vec<i64> {
    let log = trial_dir(&dir.join("results"), sweep, &t.row).join("trained.log");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    text.lines().map(|l| l.parse().unwrap()).collect()
}

/// Every epoch once, from 1 to `n`, each with the `w` of a run that never stopped.
fn assert_straight(t: &StoredTrial, n: i64) {
    assert_eq!(
        t.epochs,
        (1..=n).collect::<Vec<_>>(),
        "trial {}",
        t.row.number
    );
    // The grid's lr, or the file's default.
    let lr = t
        .row
        .summary
        .params
        .get("lr")
        .map_or(0.1, |p| p.as_f64().unwrap());
    for e in &t.metrics {
        let w = e.metric("w").unwrap();
        assert!(
            (w - w_after(lr, e.epoch)).abs() < 1e-12,
            "trial {} epoch {}: w {w}, not {}",
            t.row.number,
            e.epoch,
            w_after(lr, e.epoch)
        );
    }
}

#[test]
fn a_grid_over_params_finds_the_formulas_best_trial_and_records_the_programs_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write_program(dir);
    let file = sweep_file(
        "formula",
        3,
        "",
        "",
        "[grid]\nlr = [0.1, 0.3, 0.5]\nwidth = [4, 8]",
    );
    let (code, stdout, stderr) = run(dir, "formula.toml", &file);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let trials = stored_trials(&dir.join("sweep.db"), "formula");
    assert_eq!(trials.len(), 6);
    for t in &trials {
        assert_eq!(t.row.status, TrialStatus::Done, "{:?}", t.row.error);
        assert_straight(t, 3);
        let (lr, width) = (float(t, "lr"), float(t, "width"));
        let expected = 1.0 - (lr - 0.3).powi(2) - (width - 8.0).powi(2) / 100.0 - 0.25;
        assert!((t.row.objective.unwrap() - expected).abs() < 1e-12);
        assert_eq!(t.row.best_epoch, Some(3));
        assert_eq!(t.row.checkpoint, None, "a command trial's model is its own");
        let names: Vec<&String> = t.metrics[0].metrics.keys().collect();
        assert_eq!(names, ["score", "w"], "the program's names, nothing else");
    }
    assert!(
        stdout.contains("best: trial 4 lr=0.3 width=8 with score 0.7500 at epoch 3\n"),
        "{stdout}"
    );
    let show = sweep(dir, &["show", "formula", "--db", "sweep.db"]);
    let (shown, _) = text(&show);
    let rows = crate::common::parse_table(&shown);
    assert_eq!(rows[0]["params"], "lr=0.3 width=8");
    assert_eq!(
        (rows[0]["score"].as_str(), rows[0]["w"].as_str()),
        ("0.7500", "1.9710")
    );
    assert!(
        !rows[0].contains_key("val_acc"),
        "no column of metrics nobody reports"
    );
    let best = sweep(dir, &["best", "formula", "--db", "sweep.db"]);
    assert!(
        text(&best).0.contains("metrics     score 0.7500  w 1.9710"),
        "{:?}",
        text(&best)
    );
    // Any metric by name, for SQL.
    let query = sweep(
        dir,
        &[
            "query",
            "--db",
            "sweep.db",
            "SELECT count(*) FROM epoch_metrics WHERE name = 'w'",
        ],
    );
    assert!(text(&query).0.contains("18"), "{:?}", text(&query));
    let report = sweep(
        dir,
        &["report", "formula", "--db", "sweep.db", "--out", "report"],
    );
    assert_eq!(report.status.code(), Some(0), "{:?}", text(&report));
    assert!(
        dir.join("report/objective_all.png").exists(),
        "the objective's curves"
    );
    assert!(
        !dir.join("report/loss_all.png").exists(),
        "no loss is reported"
    );
    let csv = std::fs::read_to_string(dir.join("report/trials.csv")).unwrap();
    assert!(csv.lines().next().unwrap().contains(",score,w,"), "{csv}");
    // A rerun runs nothing; an edited program is new trials.
    let (_, again, _) = run(dir, "formula.toml", &file);
    assert!(again.contains("ran 0 in"), "{again}");
    let mut edited = std::fs::read_to_string(dir.join("prog.py")).unwrap();
    edited.push_str("# edited\n");
    std::fs::write(dir.join("prog.py"), edited).unwrap();
    let (_, edited_run, _) = sweep_dry_run(dir, "formula.toml");
    assert!(!edited_run.contains("(done)"), "{edited_run}");
    assert!(
        edited_run.contains("     12  lr=0.5 width=8\n"),
        "numbered after the old ones: {edited_run}"
    );
}

/// `sweep run --dry-run`'s output.
fn sweep_dry_run(dir: &Path, file: &str) -> (Option<i32>, String, String) {
    let out = sweep(dir, &["run", file, "--db", "sweep.db", "--dry-run"]);
    let (stdout, stderr) = text(&out);
    (out.status.code(), stdout, stderr)
}

const HALVING: &str = "[prune]\nmethod = \"halving\"\nmin_epochs = 2\nreduction_factor = 3";
const GRID: &str = "[grid]\nlr = [0.1, 0.2, 0.3]\nwidth = [4, 6, 8]";

#[test]
fn halving_pauses_a_command_trial_at_its_rung_and_resumes_it_from_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write_program(dir);
    let pruned = sweep_file("halved", 6, "", "", &format!("{GRID}\n{HALVING}"));
    let (code, stdout, stderr) = run(dir, "halved.toml", &pruned);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let straight = sweep_file("straight", 6, "", "", GRID);
    let (code, _, stderr) = run(dir, "straight.toml", &straight);
    assert_eq!(code, Some(0), "{stderr}");
    let halved = stored_trials(&dir.join("sweep.db"), "halved");
    let full: BTreeMap<String, StoredTrial> = stored_trials(&dir.join("sweep.db"), "straight")
        .into_iter()
        .map(|t| (t.row.config_hash.clone(), t))
        .collect();
    let done: Vec<&StoredTrial> = halved
        .iter()
        .filter(|t| t.row.status == TrialStatus::Done)
        .collect();
    let numbers: Vec<i64> = done.iter().map(|t| t.row.number).collect();
    assert_eq!(numbers, [3, 6, 9], "the top third by score: width 8");
    for t in &halved {
        let (epochs, status) = if done.iter().any(|d| d.row.id == t.row.id) {
            (6, TrialStatus::Done)
        } else {
            (2, TrialStatus::Stopped)
        };
        assert_eq!(t.row.status, status);
        assert_straight(t, epochs);
        assert_eq!(
            trained(dir, "halved", t),
            (1..=epochs).collect::<Vec<_>>(),
            "resumed, never retrained"
        );
        // The same program with the same params is the same trial in either sweep, with the
        // same epochs.
        let straight = &full[&t.row.config_hash];
        let metrics = |t: &StoredTrial| -> Vec<BTreeMap<String, f64>> {
            t.metrics.iter().map(|e| e.metrics.clone()).collect()
        };
        assert_eq!(metrics(t), metrics(straight)[..epochs as usize]);
    }
}

#[test]
fn a_program_that_cannot_resume_is_trained_again_from_its_first_epoch_when_promoted() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write_program(dir);
    let file = sweep_file(
        "fresh",
        6,
        "resumable = false",
        "resume = false",
        &format!("{GRID}\n{HALVING}"),
    );
    let (code, stdout, stderr) = run(dir, "fresh.toml", &file);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    for t in stored_trials(&dir.join("sweep.db"), "fresh") {
        match t.row.status {
            TrialStatus::Done => {
                assert_straight(&t, 6);
                assert_eq!(trained(dir, "fresh", &t), [1, 2, 1, 2, 3, 4, 5, 6]);
            }
            status => {
                assert_eq!(status, TrialStatus::Stopped);
                assert_straight(&t, 2);
            }
        }
    }
}

#[test]
fn kill_9_of_the_sweep_mid_trial_then_a_rerun_records_every_epoch_once() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write_program(dir);
    let file = sweep_file(
        "killed",
        8,
        "",
        "sleep = 0.1",
        "[grid]\nlr = [0.1, 0.2, 0.3]",
    );
    std::fs::write(dir.join("killed.toml"), &file).unwrap();
    let mut child = spawn_run(dir, "killed.toml");
    let db = dir.join("sweep.db");
    let midway = |t: &StoredTrial| t.row.status == TrialStatus::Running && t.epochs.len() >= 3;
    let seen = wait_for("a trial midway", &mut child, &db, "killed", |trials| {
        trials.iter().any(midway)
    });
    let killed: Vec<i64> = seen
        .iter()
        .filter(|t| midway(t))
        .map(|t| t.row.id)
        .collect();
    signal(child.id(), libc::SIGKILL);
    let _ = child.wait();
    let (code, stdout, stderr) = run(dir, "killed.toml", &file);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    for t in &stored_trials(&db, "killed") {
        assert_eq!(t.row.status, TrialStatus::Done);
        assert_straight(t, 8);
        let log = trained(dir, "killed", t);
        if killed.contains(&t.row.id) {
            // Resumed from its checkpoint: never from the start again, and only the epoch in
            // flight at the kill trained twice.
            assert_eq!(log.iter().filter(|&&e| e == 1).count(), 1, "{log:?}");
            assert!((8..=9).contains(&log.len()), "{log:?}");
        }
    }
}

#[test]
fn each_broken_contract_fails_its_trial_with_a_named_reason() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write_program(dir);
    let modes = [
        ("ok", ""),
        ("nan", "`score` is not a finite number"),
        ("order", "it reported epoch 3 after epoch 1"),
        ("nothing", "the program exited without reporting an epoch"),
        ("garbage", "says \"hello\": not JSON"),
        (
            "noobjective",
            "its epoch 1 has no `score`, the sweep's objective",
        ),
        (
            "exit",
            "the program exited with status 3; its last output:\nout of memory (pretend)",
        ),
        (
            "beyond",
            "it reported epoch 4, but the trial has 3 (SWEEP_EPOCHS)",
        ),
    ];
    let grid: Vec<String> = modes.iter().map(|(m, _)| format!("{m:?}")).collect();
    let file = sweep_file(
        "broken",
        3,
        "",
        "mode = \"ok\"",
        &format!("[grid]\nmode = [{}]", grid.join(", ")),
    );
    let (code, stdout, stderr) = run(dir, "broken.toml", &file);
    assert_eq!(code, Some(1), "some trials failed: {stdout}\n{stderr}");
    let trials = stored_trials(&dir.join("sweep.db"), "broken");
    for (t, (mode, reason)) in trials.iter().zip(modes) {
        assert_eq!(param(t, "mode"), Param::Text(mode.into()));
        if mode == "ok" {
            assert_eq!(t.row.status, TrialStatus::Done);
            continue;
        }
        assert_eq!(t.row.status, TrialStatus::Failed, "{mode}");
        let error = t.row.error.as_deref().unwrap_or_default();
        assert!(error.contains(reason), "{mode}: {error}");
        // What it reported before it broke the contract stays, and nothing else.
        let expected: Vec<i64> = match mode {
            "nan" | "order" => vec![1],
            "beyond" => vec![1, 2, 3],
            _ => Vec::new(),
        };
        assert_eq!(t.epochs, expected, "{mode}");
    }
}

#[test]
fn ctrl_c_asks_the_program_to_stop_kills_one_that_will_not_and_a_rerun_resumes_both() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write_program(dir);
    let file = sweep_file(
        "stopped",
        30,
        "grace_seconds = 1",
        "sleep = 0.05\nmode = \"ok\"",
        "[grid]\nmode = [\"ok\", \"stubborn\"]",
    );
    std::fs::write(dir.join("stopped.toml"), &file).unwrap();
    let mut child = spawn_run(dir, "stopped.toml");
    let db = dir.join("sweep.db");
    wait_for("both trials midway", &mut child, &db, "stopped", |trials| {
        trials.len() == 2
            && trials
                .iter()
                .all(|t| t.row.status == TrialStatus::Running && t.epochs.len() >= 2)
    });
    signal(child.id(), libc::SIGINT);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "interrupted: {status}");
    let trials = stored_trials(&db, "stopped");
    for t in &trials {
        assert_eq!(
            t.row.status,
            TrialStatus::Interrupted,
            "trial {}",
            t.row.number
        );
        assert!(t.epochs.len() < 30, "stopped midway");
    }
    let ok = trained(dir, "stopped", &trials[0]);
    assert_eq!(
        ok.len(),
        trials[0].epochs.len(),
        "it stopped after the epoch it was in: {ok:?}"
    );
    let (code, stdout, stderr) = run(dir, "stopped.toml", &file);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    for t in &stored_trials(&db, "stopped") {
        assert_eq!(t.row.status, TrialStatus::Done);
        assert_straight(t, 30);
        let log = trained(dir, "stopped", t);
        assert_eq!(
            log.iter().filter(|&&e| e == 1).count(),
            1,
            "resumed: {log:?}"
        );
    }
}

#[test]
fn random_draws_over_params_and_median_stopping_work_for_command_trials() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write_program(dir);
    let random = "[random]\ntrials = 6\nseed = 5\nlr = { log_uniform = [0.01, 0.9] }\n\
                  width = { int = [2, 12] }";
    let median = "[prune]\nmethod = \"median\"\nwarmup_epochs = 1\nmin_trials = 2";
    let file = sweep_file("drawn", 4, "", "", &format!("{random}\n{median}"));
    let (code, stdout, stderr) = run(dir, "drawn.toml", &file);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let trials = stored_trials(&dir.join("sweep.db"), "drawn");
    assert_eq!(trials.len(), 6);
    let mut stopped = 0;
    for t in &trials {
        let (lr, width) = (float(t, "lr"), float(t, "width"));
        assert!(
            (0.01..=0.9).contains(&lr) && (2.0..=12.0).contains(&width),
            "{lr} {width}"
        );
        assert_eq!(
            param(t, "width").as_f64(),
            Some(width.round()),
            "an integer draw"
        );
        match t.row.status {
            TrialStatus::Done => assert_straight(t, 4),
            TrialStatus::Stopped => {
                stopped += 1;
                assert!(t.epochs.len() < 4);
            }
            status => panic!("trial {}: {status}", t.row.number),
        }
    }
    assert!(stopped > 0, "the median rule stopped some: {stdout}");
    // The same draws and decisions again, in a new database.
    let again = dir.join("again");
    std::fs::create_dir(&again).unwrap();
    write_program(&again);
    let (code, _, _) = run(&again, "drawn.toml", &file);
    assert_eq!(code, Some(0));
    let summary = |trials: &[StoredTrial]| -> Vec<(String, TrialStatus, usize)> {
        trials
            .iter()
            .map(|t| (t.row.config_hash.clone(), t.row.status, t.epochs.len()))
            .collect()
    };
    assert_eq!(
        summary(&stored_trials(&again.join("sweep.db"), "drawn")),
        summary(&trials)
    );
}
