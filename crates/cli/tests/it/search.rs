//! `[search] method = "tpe"` end to end, with a standard-library Python program whose
//! objective is a formula of its params and whose length is random: the same search run
//! twice with two slots, and with one, makes the same trials in the same order, and so does
//! one killed with SIGKILL mid-sweep and resumed.

use std::path::Path;

use crate::common::{signal, spawn_run, stored_trials, sweep, text, wait_for};
use sweep_store::{TrialOrigin, TrialStatus};

/// The program: sleeps a random time (a different one on every run), then reports `loss`, a
/// formula of its params with its minimum at x = 1, y = -2, kind "b".
const PROGRAM: &str = r#"
import random, sys, time
sys.path.insert(0, HELPER)
from sweep_trial import Trial

t = Trial()
p = t.params
time.sleep(random.random() * SLEEP)
for epoch in t.epochs():
    penalty = 0.0 if p["kind"] == "b" else 0.5
    t.report(epoch, loss=(p["x"] - 1) ** 2 + (p["y"] + 2) ** 2 / 4 + penalty + p["n"] / 100)
"#;

/// A search of `trials` trials over three kinds of hyperparameter, two at a time.
fn search_file(name: &str, trials: usize) -> String {
    format!(
        r#"name = "{name}"

[trial]
command = ["python3", "prog.py"]
epochs = 1
objective = "loss"
direction = "minimize"

[params]
x = 0.0
y = 0.0
n = 1
kind = "a"

[search]
method = "tpe"
trials = {trials}
seed = 11
startup = 4
parallel = 2
x = {{ uniform = [-4.0, 4.0] }}
y = {{ log_uniform = [0.01, 10.0] }}
n = {{ int = [1, 64], log = true }}
kind = {{ choice = ["a", "b", "c"] }}

[run]
devices = "cpu"
trials_per_device = 2
"#
    )
}

/// A folder with the program (sleeping up to `sleep` seconds) and the search file.
fn setup(dir: &Path, name: &str, trials: usize, sleep: f64) {
    let helper = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../python");
    let program = PROGRAM
        .replace("HELPER", &format!("{:?}", helper.display().to_string()))
        .replace("SLEEP", &sleep.to_string());
    std::fs::write(dir.join("prog.py"), program).unwrap();
    std::fs::write(dir.join("s.toml"), search_file(name, trials)).unwrap();
}

/// The sweep's trials in order: number, params, origin, status and objective.
fn sequence(dir: &Path, name: &str) -> Vec<(i64, String, Option<TrialOrigin>)> {
    stored_trials(&dir.join("sweep.db"), name)
        .into_iter()
        .map(|t| {
            assert_eq!(t.row.status, TrialStatus::Done, "{:?}", t.row);
            assert_eq!(t.row.number, t.row.grid_index + 1);
            (
                t.row.number,
                format!("{:?}", t.row.summary.params),
                t.row.origin,
            )
        })
        .collect()
}

fn run_to_the_end(dir: &Path, args: &[&str]) {
    let mut all = vec!["run", "s.toml", "--db", "sweep.db"];
    all.extend(args);
    let output = sweep(dir, &all);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
}

#[test]
fn a_tpe_search_makes_the_same_trials_in_the_same_order_whatever_the_timing_or_slots() {
    let runs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    for (i, run) in runs.iter().enumerate() {
        setup(run.path(), "tpe", 12, 0.2);
        // Two slots twice, then one: the sequence depends on `parallel`, not on the slots.
        let jobs: &[&str] = if i == 2 { &["--jobs", "1"] } else { &[] };
        run_to_the_end(run.path(), jobs);
    }
    let first = sequence(runs[0].path(), "tpe");
    assert_eq!(first.len(), 12);
    let origins: Vec<Option<TrialOrigin>> = first.iter().map(|t| t.2).collect();
    // Trial k observes trials 0..=k-2: the model starts once 4 have results, at trial 5.
    let expected: Vec<Option<TrialOrigin>> = (0..12)
        .map(|k| match k {
            0..=4 => Some(TrialOrigin::Startup),
            _ => Some(TrialOrigin::Model),
        })
        .collect();
    assert_eq!(origins, expected);
    assert_eq!(sequence(runs[1].path(), "tpe"), first, "run twice");
    assert_eq!(sequence(runs[2].path(), "tpe"), first, "one slot");

    let output = sweep(runs[0].path(), &["show", "tpe", "--db", "sweep.db"]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.lines().next().unwrap().ends_with("origin"),
        "{stdout}"
    );
    assert!(
        stdout.contains("startup") && stdout.contains("model"),
        "{stdout}"
    );
}

#[test]
fn a_tpe_search_killed_mid_sweep_and_resumed_makes_the_same_sequence() {
    let (reference, killed) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    setup(reference.path(), "resumed", 10, 0.3);
    setup(killed.path(), "resumed", 10, 0.3);
    run_to_the_end(reference.path(), &[]);

    let dir = killed.path();
    let mut child = spawn_run(dir, "s.toml");
    // Killed past the startup trials, with a trial running and trials yet to be made.
    wait_for(
        "five trials done, one running and some not made yet",
        &mut child,
        &dir.join("sweep.db"),
        "resumed",
        |trials| {
            trials
                .iter()
                .filter(|t| t.row.status == TrialStatus::Done)
                .count()
                >= 5
                && trials.iter().any(|t| t.row.status == TrialStatus::Running)
                && trials.len() < 10
        },
    );
    signal(child.id(), libc::SIGKILL);
    child.wait().unwrap();

    run_to_the_end(dir, &[]);
    assert_eq!(
        sequence(dir, "resumed"),
        sequence(reference.path(), "resumed")
    );
}
