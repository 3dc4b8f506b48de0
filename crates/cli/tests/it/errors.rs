//! Errors that say what was wrong, end to end: a bad grid value names its `grid.` key, the
//! value and what it must be; an unknown sweep name lists the sweeps there are; each cause is
//! printed once; and every command's help describes every argument.

use std::path::Path;

use crate::common::{sweep, synthetic_data, text};

/// A one-trial sweep on a tiny synthetic set, with `grid` as its `[grid]` section (from line
/// 17).
fn sweep_file(name: &str, grid: &str) -> String {
    crate::common::tiny_sweep_file(name, &format!("[grid]\n{grid}\n"))
}

/// Runs `sweep run FILE` on `text` written to `dir/file`; returns the exit code and stderr.
fn run(dir: &Path, file: &str, text_of_file: &str) -> (Option<i32>, String) {
    std::fs::write(dir.join(file), text_of_file).unwrap();
    let out = sweep(dir, &["run", file, "--db", "sweep.db"]);
    (out.status.code(), text(&out).1)
}

/// What `dir` holds besides the sweep files.
fn written(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.ends_with(".toml"))
        .collect()
}

#[test]
fn a_bad_grid_value_names_the_grid_key_the_value_and_the_choices() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (code, stderr) = run(
        dir,
        "bad.toml",
        &sweep_file("bad", "optimizer = [\"adam\", \"rmsprob\"]"),
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        "error: bad.toml:18: `grid.optimizer` must be one of \"adam\", \"sgd\", \"rmsprop\", \"adamw\", \
         not \"rmsprob\" (did you mean \"rmsprop\"?)"
    );

    let (code, stderr) = run(
        dir,
        "bad.toml",
        &sweep_file("bad", "neurons = [64,\n  \"x\"]"),
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        "error: bad.toml:19: `grid.neurons` must be an integer, not \"x\"",
        "the value's own line"
    );
    assert!(
        written(dir).is_empty(),
        "nothing written: {:?}",
        written(dir)
    );
}

/// `sweep run` of a one-trial sweep named `quick` in `dir` (database `sweep.db`).
fn recorded_sweep(dir: &Path) {
    let (code, stderr) = run(dir, "quick.toml", &sweep_file("quick", "lr = [0.01]"));
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn an_unknown_sweep_lists_the_sweeps_with_the_closest_name() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    recorded_sweep(dir);
    for args in [
        &["show", "quik"][..],
        &["best", "quik"],
        &["report", "quik"],
        &["predict", "quik", "--out", "s.csv"],
    ] {
        let out = sweep(dir, &[args, &["--db", "sweep.db"]].concat());
        let stderr = text(&out).1;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(
            stderr.trim_end(),
            "error: no sweep named `quik` in the database (did you mean `quick`?); \
             its sweeps: `quick`",
            "{args:?}"
        );
    }
    let out = sweep(dir, &["show", "nope", "--db", "sweep.db"]);
    let stderr = text(&out).1;
    assert!(
        stderr.contains("no sweep named `nope`") && stderr.contains("its sweeps: `quick`"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("did you mean"),
        "no hint when none is close: {stderr}"
    );
}

#[test]
fn each_cause_is_printed_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = sweep(dir, &["run", "missing.toml"]);
    let stderr = text(&out).1;
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("missing.toml"), "{stderr}");

    std::fs::write(dir.join("x.db"), "garbage\n").unwrap();
    for args in [
        &["ls", "--db", "x.db"][..],
        &["show", "quick", "--db", "x.db"],
        &["query", "SELECT 1", "--db", "x.db"],
    ] {
        let out = sweep(dir, args);
        let stderr = text(&out).1;
        assert!(!out.status.success(), "{args:?}: {stderr}");
        assert_eq!(
            stderr.matches("file is not a database").count(),
            1,
            "{args:?}: {stderr}"
        );
    }
}

/// The arguments of a `-h` listing that have no description.
fn undescribed(help: &str) -> Vec<String> {
    let mut missing = Vec::new();
    let mut in_list = false;
    let lines: Vec<&str> = help.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if matches!(*line, "Arguments:" | "Options:") {
            in_list = true;
            continue;
        }
        if line.trim().is_empty() {
            in_list = false;
            continue;
        }
        let entry = line.trim_start();
        if !in_list || !(entry.starts_with('-') || entry.starts_with('<') || entry.starts_with('['))
        {
            continue;
        }
        // `  -x, --name <NAME>  Description [default: …]`; a long name puts it on the next line.
        let description = match entry.split_once("  ") {
            Some((_, rest)) => rest.trim(),
            None => lines.get(i + 1).map_or("", |next| next.trim()),
        };
        if description.is_empty() || description.starts_with('[') {
            missing.push(line.trim().to_string());
        }
    }
    missing
}

#[test]
fn the_help_describes_the_tool_and_every_argument() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = sweep(dir, &["--help"]);
    let help = text(&out).0;
    assert!(out.status.success());
    assert!(
        help.starts_with("Hyperparameter grid search for image classifiers"),
        "{help}"
    );
    assert!(!help.contains("turns arguments into calls"), "{help}");
    let commands = [
        &["run"][..],
        &["ls"],
        &["show"],
        &["best"],
        &["query"],
        &["report"],
        &["predict"],
        &["train"],
        &["trial"],
        &["data", "synth"],
        &["data", "check"],
        &["bench"],
    ];
    for command in commands {
        let out = sweep(dir, &[command, &["-h"]].concat());
        let help = text(&out).0;
        assert!(out.status.success(), "{command:?}");
        assert!(help.contains("Options:"), "{command:?}: {help}");
        assert_eq!(
            undescribed(&help),
            Vec::<String>::new(),
            "{command:?} has arguments without a description:\n{help}"
        );
    }
}

#[test]
fn bad_data_exits_2_from_predict_and_from_a_trial_process() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    synthetic_data(dir, 24, 12, 6);
    let text_of_file = sweep_file("bd", "lr = [0.01]").replace(
        "synthetic = { classes = 2, size = 8, train = 8, val = 4, test = 2, seed = 1 }",
        "dir = \"data\"",
    );
    let (code, stderr) = run(dir, "bd.toml", &text_of_file);
    assert_eq!(code, Some(0), "{stderr}");
    std::fs::rename(dir.join("data"), dir.join("moved")).unwrap();

    let out = sweep(
        dir,
        &["predict", "bd", "--db", "sweep.db", "--out", "s.csv"],
    );
    let stderr = text(&out).1;
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("data: missing"), "{stderr}");
    assert!(!dir.join("s.csv").exists(), "nothing written");

    let trials = std::fs::read_dir(dir.join("results/bd/trials")).unwrap();
    let trial_dir = trials.map(|e| e.unwrap().path()).next().unwrap();
    let trial_dir = trial_dir.to_str().unwrap();
    let out = sweep(dir, &["trial", trial_dir, "--device", "cpu"]);
    let stdout = text(&out).0;
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains(r#"{"event":"failed","reason":"data: missing"#),
        "the trial reports why: {stdout}"
    );
}

#[test]
fn a_closed_pipe_ends_a_command_quietly() {
    use std::io::BufRead;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // 5,000 trials: far more output than a pipe holds, so the reader's leaving is seen.
    let seeds: Vec<String> = (0..5000).map(|s| s.to_string()).collect();
    let grid = format!("seed = [{}]", seeds.join(", "));
    std::fs::write(dir.join("big.toml"), sweep_file("big", &grid)).unwrap();
    let mut child = std::process::Command::new(crate::common::sweep_bin())
        .args(["run", "big.toml", "--dry-run"])
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first, "sweep `big`: 5000 trials\n");
    // The reader is gone (as `| head -1` leaves).
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&out.status),
        Some(libc::SIGPIPE),
        "ended by SIGPIPE, as `head` expects"
    );
}
