//! `sweep importance` end to end: a tiny real grid with a seed axis is decomposed exactly
//! (with a noise share and intervals), the same database prints the same text and JSON every
//! time, a grid with a failed trial falls back to the estimate and names the trial, and an
//! unknown sweep is bad input.

use crate::common::{sweep, text, tiny_sweep_file};

/// 2 × 2 cells of one-epoch MLPs over 2 seeds: 8 trials.
const GRID: &str = "[grid]\nlr = [0.1, 0.01]\nneurons = [2, 4]\nseed = [1, 2]\n";

fn run(dir: &std::path::Path, name: &str, grid: &str) -> std::process::Output {
    let file = format!("{name}.toml");
    std::fs::write(dir.join(&file), tiny_sweep_file(name, grid)).unwrap();
    sweep(dir, &["run", &file])
}

#[test]
fn a_complete_grid_is_exact_and_prints_the_same_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = run(dir, "imp", GRID);
    assert!(out.status.success(), "{}", text(&out).1);

    let table = sweep(dir, &["importance", "imp"]);
    let (stdout, stderr) = text(&table);
    assert!(table.status.success(), "{stderr}");
    assert!(
        stdout.starts_with(
            "sweep `imp`, val_f1: exact: the functional ANOVA of the cell means of the \
             complete 2×2 (lr × neurons) grid, 8 trials over 2 seeds"
        ),
        "{stdout}"
    );
    let terms: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("---"))
        .skip(1)
        .map(|l| l.split("  ").next().unwrap())
        .collect();
    assert_eq!(terms.len(), 4, "{stdout}");
    assert!(terms.contains(&"lr × neurons") && terms.contains(&"seed-to-seed noise"));

    let json = sweep(dir, &["importance", "imp", "--format", "json"]);
    assert!(json.status.success(), "{}", text(&json).1);
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value["method"], "exact");
    assert_eq!(value["trials"], 8);
    let shares = value["shares"].as_array().unwrap();
    let total: f64 = shares.iter().map(|s| s["share"].as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-9, "{value}");
    for s in shares {
        let interval = s["interval"].as_array().expect("seeds give intervals");
        assert!(interval[0].as_f64() <= interval[1].as_f64(), "{s}");
    }

    let again = sweep(dir, &["importance", "imp"]);
    assert_eq!(
        again.stdout, table.stdout,
        "the same database, the same table"
    );
    let again = sweep(dir, &["importance", "imp", "--format", "json"]);
    assert_eq!(
        again.stdout, json.stdout,
        "the same database, the same JSON"
    );
}

#[test]
fn a_grid_with_a_failed_trial_is_estimated_and_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = run(
        dir,
        "holes",
        "[grid]\nlr = [1e30, 0.1, 0.01]\nneurons = [2, 4]\n",
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "lr 1e30 diverges: {}",
        text(&out).1
    );
    let table = sweep(dir, &["importance", "holes"]);
    let (stdout, stderr) = text(&table);
    assert!(table.status.success(), "{stderr}");
    assert!(
        stdout.contains(
            "estimate (the 3×2 (lr × neurons) grid is incomplete: 2 of its 6 trials have no \
             final objective (2 failed))"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("left out: trial 1 (lr=1e30 neurons=2) failed"),
        "{stdout}"
    );
}

#[test]
fn an_unknown_sweep_is_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    assert!(run(dir, "imp", "").status.success());
    let out = sweep(dir, &["importance", "imq"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out)
            .1
            .contains("no sweep named `imq` in the database (did you mean `imp`?)"),
        "{}",
        text(&out).1
    );
}
