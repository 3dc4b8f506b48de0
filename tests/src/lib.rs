//! Helpers for the end-to-end tests in `tests/tests/`, which drive the built `sweep` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `sweep` binary of the same profile as the running test (`cargo build [--release]`
/// builds it; `cargo test` of this crate alone does not).
pub fn sweep_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("tests run from target/<profile>/deps");
    let bin = profile_dir.join(format!("sweep{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: build it first (`cargo build --release`, as .ci/run does)",
        bin.display()
    );
    bin
}

/// Runs `sweep ARGS` in `dir` and returns what it printed and its exit status.
pub fn sweep(dir: &Path, args: &[&str]) -> Output {
    Command::new(sweep_bin())
        .args(args)
        .current_dir(dir)
        .env("RAYON_NUM_THREADS", "2")
        .output()
        .expect("the sweep binary starts")
}

/// The text a run printed on stdout and stderr.
pub fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
