//! Reading results end to end: `sweep report` writes decodable, non-blank plots and the
//! summaries (also for a sweep with a failed trial), `sweep query` reads but never writes,
//! `ls`/`show`/`best` list what the database holds, and `sweep predict` writes a submission
//! whose validation F1 equals the recorded one.

use std::path::Path;
use sweep_store::TrialStatus;

use crate::common::{stored_trials, sweep, text};

const SWEEP: &str = r#"name = "res"

[data]
synthetic = { classes = 4, size = 12, train = 96, val = 40, test = 24, seed = 2 }

[model]
filters = [4, 8]
neurons = 8
dropout = 0.1

[train]
epochs = 3
batch_size = 16
optimizer = "sgd"
seed = 5

[grid]
lr = [1e30, 0.05, 0.01]
optimizer = ["sgd", "adam"]

[run]
devices = "cpu"
trials_per_device = 2
"#;

/// A finished sweep with 6 trials, the two with lr 1e30 failed (diverged).
fn finished_sweep() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("s.toml"), SWEEP).unwrap();
    let out = sweep(tmp.path(), &["run", "s.toml"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out).1);
    tmp
}

fn png_is_drawn(path: &Path) -> (u32, u32) {
    let image = image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb8();
    let first = image.get_pixel(0, 0);
    let distinct = image.pixels().filter(|p| *p != first).count();
    assert!(distinct > 1000, "{} is nearly blank", path.display());
    image.dimensions()
}

#[test]
fn report_writes_plots_and_summaries_even_with_failed_trials() {
    let tmp = finished_sweep();
    let dir = tmp.path();
    let out = sweep(dir, &["report", "res"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("res: wrote 9 files to results/res"),
        "{stdout}"
    );
    let report = dir.join("results/res");
    for name in ["loss_sgd.png", "loss_adam.png", "f1_sgd.png", "f1_adam.png"] {
        let (w, h) = png_is_drawn(&report.join(name));
        assert_eq!(
            (w, h),
            (640, 3 * 260 + 50),
            "{name}: 3 lr rows in one column"
        );
    }
    assert_eq!(png_is_drawn(&report.join("confusion_best.png")), (900, 820));
    let summary = std::fs::read_to_string(report.join("summary.md")).unwrap();
    assert!(summary.contains("6 trials: 4 done, 2 failed"), "{summary}");
    assert!(summary.contains("diverged at epoch 1"), "{summary}");
    // The failed cells make the 3×2 grid incomplete: an estimate, which names them.
    let (w, h) = png_is_drawn(&report.join("importance.png"));
    assert_eq!(
        (w, h),
        (800, 56 + 2 * 30 + 40),
        "{w}×{h}: a bar per hyperparameter"
    );
    assert!(
        summary.contains("## Importance\n\nEach term's share of the objective's variance; estimate (the 3×2 (lr × optimizer) grid is incomplete"),
        "{summary}"
    );
    assert!(
        summary.contains("- left out: trial 1 (lr=1e30 optimizer=sgd) failed"),
        "{summary}"
    );
    assert!(
        summary.contains("| term | share | 95% interval |"),
        "{summary}"
    );
    let csv = std::fs::read_to_string(report.join("trials.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines[0].starts_with("rank,trial,lr,optimizer,status"),
        "{csv}"
    );
    assert_eq!(lines.len(), 7);
    assert!(lines[1].contains(",done,3,"), "best first: {csv}");
    assert!(
        lines[5].contains(",failed,") && lines[6].contains(",failed,"),
        "failed last: {csv}"
    );
    // Every sweep at once, into another folder.
    let out = sweep(dir, &["report", "--out", "all"]);
    assert!(out.status.success());
    assert!(dir.join("all/res/summary.md").exists());
}

#[test]
fn query_reads_in_three_formats_and_refuses_every_write() {
    let tmp = finished_sweep();
    let dir = tmp.path();
    let count = || {
        let out = sweep(
            dir,
            &[
                "query",
                "SELECT count(*) AS n FROM epochs",
                "--format",
                "csv",
            ],
        );
        text(&out).0
    };
    let before = count();
    assert!(before.starts_with("n\n"), "{before}");
    let out = sweep(
        dir,
        &[
            "query",
            "SELECT status, count(*) AS n FROM trials GROUP BY status ORDER BY status",
            "--format",
            "json",
        ],
    );
    let rows: serde_json::Value = serde_json::from_str(&text(&out).0).unwrap();
    assert_eq!(
        rows,
        serde_json::json!([{"status": "done", "n": 4}, {"status": "failed", "n": 2}])
    );
    let table = text(&sweep(dir, &["query", "SELECT name FROM sweeps"])).0;
    assert_eq!(table, "name\n----\nres\n");
    // No rows: the header all the same, and how many.
    let none = "SELECT name, id AS sweep_id FROM sweeps WHERE name = 'nope'";
    let table = text(&sweep(dir, &["query", none])).0;
    assert_eq!(table, "name  sweep_id\n----  --------\n0 rows\n");
    let out = sweep(dir, &["query", none, "--format", "csv"]);
    assert_eq!(text(&out), ("name,sweep_id\n".into(), "0 rows\n".into()));
    let out = sweep(dir, &["query", none, "--format", "json"]);
    assert_eq!(text(&out).0, "[]\n");
    for sql in [
        "DELETE FROM epochs",
        "UPDATE trials SET status = 'done'",
        "DROP TABLE trials",
        "ATTACH DATABASE 'x.db' AS x",
    ] {
        let out = sweep(dir, &["query", sql]);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{sql}: {stderr}");
        assert!(stderr.contains("read-only"), "{sql}: {stderr}");
    }
    assert_eq!(count(), before, "nothing changed");
    assert!(!dir.join("x.db").exists());
}

#[test]
fn ls_show_and_best_describe_the_sweep() {
    let tmp = finished_sweep();
    let dir = tmp.path();
    let ls = text(&sweep(dir, &["ls"])).0;
    let row = ls.lines().nth(2).unwrap();
    let cells: Vec<&str> = row.split_whitespace().collect();
    let header: Vec<&str> = ls.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header[..9],
        [
            "sweep",
            "trials",
            "done",
            "running",
            "paused",
            "pending",
            "interrupted",
            "stopped",
            "failed"
        ]
    );
    assert_eq!(
        &cells[..9],
        ["res", "6", "4", "0", "0", "0", "0", "0", "2"],
        "{ls}"
    );
    let trials = stored_trials(&dir.join("results/sweep.db"), "res");
    let best = trials
        .iter()
        .filter(|t| t.row.status == TrialStatus::Done)
        .max_by(|a, b| a.row.objective.partial_cmp(&b.row.objective).unwrap())
        .unwrap();
    let show = text(&sweep(dir, &["show", "res"])).0;
    let first = show.lines().nth(2).unwrap();
    assert!(
        first.starts_with(&format!("{} ", best.row.number)),
        "best first: {show}"
    );
    assert_eq!(show.lines().count(), 8);
    let best_text = text(&sweep(dir, &["best", "res"])).0;
    assert!(
        best_text.contains(&format!("trial       {}\n", best.row.number)),
        "{best_text}"
    );
    assert!(
        best_text.contains(best.row.checkpoint.as_deref().unwrap()),
        "{best_text}"
    );
    let out = sweep(dir, &["show", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("no sweep named `nope`"));
}

#[test]
fn predict_writes_a_submission_and_reproduces_the_recorded_f1() {
    let tmp = finished_sweep();
    let dir = tmp.path();
    let out = sweep(dir, &["predict", "res", "--out", "submission.csv"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("wrote 24 predictions"), "{stdout}");
    let csv = std::fs::read_to_string(dir.join("submission.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "Image,Class");
    assert_eq!(lines.len(), 25);
    assert!(lines[1].starts_with("test_00000.png,"));
    assert!(lines[1..]
        .iter()
        .all(|l| l.split(',').nth(1).unwrap().parse::<u32>().unwrap() < 4));

    let trials = stored_trials(&dir.join("results/sweep.db"), "res");
    let best = trials
        .iter()
        .filter(|t| t.row.status == TrialStatus::Done)
        .max_by(|a, b| a.row.objective.partial_cmp(&b.row.objective).unwrap())
        .unwrap();
    let out = sweep(
        dir,
        &["predict", "res", "--split", "val", "--out", "val.csv"],
    );
    let (stdout, _) = text(&out);
    let printed: f64 = stdout
        .split("macro F1 on the validation split: ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (printed - best.row.objective.unwrap()).abs() < 5e-7,
        "{printed} vs {:?}",
        best.row.objective
    );
    // A named trial that failed has no checkpoint to predict with.
    let failed = trials
        .iter()
        .find(|t| t.row.status == TrialStatus::Failed)
        .unwrap();
    let out = sweep(
        dir,
        &[
            "predict",
            "res",
            "--trial",
            &failed.row.id.to_string(),
            "--out",
            "x.csv",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("has no best checkpoint"));
}
