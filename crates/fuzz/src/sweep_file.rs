//! The sweep-file reader (`SweepFile::parse`, and `SweepFile::load` for bytes that are not
//! UTF-8), fed the project's `sweeps/*.toml` mutated: it returns a file or a
//! `SweepFileError` that starts with the file's path, and never panics or overflows the stack.
//! A file it accepts is expanded when its trial count is small (the limit on large grids is
//! the reader's, tested where it is written).

use std::path::{Path, PathBuf};

use proptest::test_runner::TestCaseError;
use sweep_model::{Augment, ModelConfig, TrainConfig};
use sweep_scheduler::suggestions::next_trials;
use sweep_scheduler::sweep_file::{expand_grid, SweepFile, SweepFileError};

use crate::mutation::{escaped, Case, Corpus};
use crate::runner::{check, fuzz, Outcome};

/// TOML's own words and the sweep file's keys.
const WORDS: &[&[u8]] = &[
    b"[grid]\n",
    b"[random]\n",
    b"[run]\n",
    b"[prune]\n",
    b"[data]\n",
    b"[model]\n",
    b"[train]\n",
    b"[run.slurm]\n",
    b"[[grid]]\n",
    b"trials = ",
    b"seed = ",
    b"lr = { uniform = [-1e308, 1e308] }\n",
    b"lr = { log_uniform = [1e-308, 1e308] }\n",
    b"neurons = { int = [1, 9223372036854775807], log = true }\n",
    b"seed = { int = [-9223372036854775808, 9223372036854775807] }\n",
    b"dropout = { uniform = [0.0, 0.99] }\n",
    b"optimizer = { choice = [] }\n",
    b"max_retries = 4294967296\n",
    b"synthetic = { classes = 1000000000, size = 1000000 }\n",
    b"[random]\ntrials = 3\nlr = { log_uniform = [1e-308, 1e308] }\n",
    b"[random]\ntrials = 2\nbn_momentum = { uniform = [0.0, 1.0] }\nseed = { int = [0, 9223372036854775807] }\n",
    b"[random]\ntrials = 2\nepochs = { int = [1, 4294967295], log = true }\n",
    b"[search]\nmethod = \"tpe\"\ntrials = 3\nlr = { log_uniform = [1e-308, 1e308] }\n",
    b"[search]\nmethod = \"tpe\"\ntrials = 2\nstartup = 1\nparallel = 4\nneurons = { int = [1, 9223372036854775807], log = true }\n",
    b"[grid]\nbn_eps = [1e-308, 1e308]\nmomentum = [0.0, 0.999999]\n",
    b"[grid]\nfilters = [[1], [9223372036854775807]]\n",
    b"[[",
    b"]]",
    b"'''",
    b"\"\"\"",
    b"a.b.c",
    b"= [",
    b"= {",
    b"1979-05-27T07:32:00Z",
    b"0x7fffffffffffffff",
    b"0o777",
    b"1_000",
    b"true",
    b"false",
    b"#",
];

fn corpus() -> Corpus {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sweeps");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("the repository has sweeps/")
        .map(|e| e.expect("sweeps/ lists").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    let seeds = paths
        .iter()
        .map(|p| std::fs::read(p).expect("a sweep file reads"))
        .collect();
    Corpus::new(seeds, WORDS)
}

/// The property for one input: read as the tool reads it, an error names the file, a file
/// read has finite numbers, and a small accepted sweep expands.
fn read(dir: &Path, bytes: &[u8]) -> Result<Outcome, TestCaseError> {
    let path = dir.join("fuzzed.toml");
    let result = match std::str::from_utf8(bytes) {
        Ok(text) => SweepFile::parse(&path, text),
        Err(_) => {
            std::fs::write(&path, bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
            SweepFile::load(&path)
        }
    };
    match result {
        Err(e) => named(&path, &e).map(|()| Outcome::Refused),
        Ok(file) => accepted(&file).map(|()| Outcome::Read),
    }
}

fn named(path: &Path, error: &SweepFileError) -> Result<(), TestCaseError> {
    let message = error.to_string();
    check(
        error.path == path && message.starts_with(&path.display().to_string()),
        || format!("the error does not name the file: {message}"),
    )
}

/// Every number of a configuration is finite.
fn finite(
    model: &ModelConfig,
    train: &TrainConfig,
    augment: &Augment,
) -> Result<(), TestCaseError> {
    let floats = [
        ("train.lr", train.lr),
        ("train.momentum", train.momentum),
        ("train.eps", train.eps),
        ("model.dropout", model.dropout),
        ("model.bn_momentum", model.bn_momentum),
        ("model.bn_eps", model.bn_eps),
        ("data.augment.rotation", augment.rotation),
        ("data.augment.shift", augment.shift),
        ("data.augment.zoom", augment.zoom),
    ];
    for (key, value) in floats {
        check(value.is_finite(), || {
            format!("`{key}` was accepted as {value}")
        })?;
    }
    Ok(())
}

fn accepted(file: &SweepFile) -> Result<(), TestCaseError> {
    finite(&file.model, &file.train, &file.augment)?;
    if let Some(search) = &file.search {
        // Its first trials: the space is valid, and each draw a valid configuration.
        let first = next_trials(file, search, &file.goal(), &[]);
        check(first.as_ref().is_ok_and(|t| !t.is_empty()), || {
            format!("an accepted search makes no first trial: {first:?}")
        })?;
        for made in first.iter().flatten() {
            if let Some(c) = made.spec.config.builtin() {
                finite(&c.model, &c.train, &c.augment)?;
            }
        }
        return Ok(());
    }
    let cells = file
        .grid
        .iter()
        .try_fold(1usize, |n, axis| n.checked_mul(axis.values.len()));
    let samples = file.random.as_ref().map_or(1, |r| r.trials);
    if cells
        .and_then(|c| c.checked_mul(samples))
        .is_some_and(|n| n <= 2000)
    {
        let trials = expand_grid(file);
        check(!trials.is_empty(), || {
            "an accepted sweep has no trial".into()
        })?;
        for trial in &trials {
            if let Some(c) = trial.config.builtin() {
                finite(&c.model, &c.train, &c.augment)?;
            }
        }
    }
    Ok(())
}

#[test]
fn mutated_sweep_files_are_read_or_refused_with_the_file_named() {
    let corpus = corpus();
    let tmp = tempfile::tempdir().expect("a temporary folder");
    fuzz("sweep_file", 2000, 1.0, corpus.cases(8), |case: Case| {
        let bytes = corpus.bytes(&case);
        read(tmp.path(), &bytes)
            .map_err(|e| TestCaseError::fail(format!("{e}\ninput: {}", escaped(&bytes, 2000))))
    });
}

/// `depth` levels of `open`, an innermost `inner`, then `close` as often (when given).
fn nested(open: &str, inner: &str, close: &str, depth: usize) -> String {
    format!("{}{inner}{}", open.repeat(depth), close.repeat(depth))
}

/// Deep nesting, read on the test's own thread (2 MiB of stack, as a tokio worker has): a
/// recursive parser or drop overflows the stack and aborts the whole test binary, which no
/// `catch_unwind` could report.
#[test]
fn deeply_nested_sweep_files_are_refused_without_overflowing_the_stack() {
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let head = "name = \"deep\"\n[data]\nsynthetic = { classes = 2 }\n";
    for depth in [100, 10_000, 200_000] {
        let cases = [
            format!("{head}[grid]\nlr = {}\n", nested("[", "0.1", "]", depth)),
            format!("{head}[grid]\nlr = {}\n", nested("[", "", "", depth)),
            format!("{head}x = {}\n", nested("{a = ", "1", "}", depth)),
            format!("{head}x = {}\n", nested("{a = [", "1", "]}", depth)),
            format!("{head}x = {}\n", nested("{", "", "", depth)),
            format!("{head}{}a = 1\n", "a.".repeat(depth)),
            format!("{head}[{}a]\n", "a.".repeat(depth)),
            format!("{head}[[{}a]]\n", "a.".repeat(depth)),
            format!("{head}[grid]\n{}lr = [0.1]\n", "grid.".repeat(depth)),
            format!("{}{head}", nested("[", "", "]\n", depth)),
        ];
        for text in cases {
            let outcome = read(tmp.path(), text.as_bytes());
            assert!(outcome.is_ok(), "depth {depth}: {outcome:?}");
            assert!(
                SweepFile::parse(Path::new("deep.toml"), &text).is_err(),
                "depth {depth}: {}",
                escaped(text.as_bytes(), 200)
            );
        }
    }
}
