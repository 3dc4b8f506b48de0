//! Hostile input, as a user meets it in a sweep file or a data folder passed around: a name
//! that would leave the results folder, a grid or a random search of a billion trials, a data
//! CSV whose rows name files elsewhere or labels in the billions, a PNG whose header claims
//! a giant image. Each is refused with exit 2 and a message that names the file, line and
//! key, quickly and in little memory, and nothing is written outside the chosen folders.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{sweep, sweep_bin, synthetic_data, text, tiny_sweep_file as sweep_file};

/// Every path under `dir`, relative to it, sorted.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            out.push(path.strip_prefix(root).unwrap().display().to_string());
            if path.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn hostile_sweep_names_are_refused_and_nothing_is_written() {
    let outer = tempfile::tempdir().unwrap();
    let dir = outer.path().join("work");
    std::fs::create_dir(&dir).unwrap();
    let absolute = outer.path().join("abs");
    let absolute = absolute.display().to_string();
    let names = [
        ("../../../tmp/x", "holds a path separator"),
        ("../escape", "holds a path separator"),
        (absolute.as_str(), "holds a path separator"),
        ("..", "starts with `.`"),
        ("a\\\\b", "holds a path separator"),
        ("nul\\u0000", "holds a control character"),
        ("new\\nline", "holds a control character"),
        ("$(touch pwned)", "holds `$`"),
        ("cache", "is taken by the results folder's data cache"),
    ];
    for (name, reason) in names {
        std::fs::write(dir.join("s.toml"), sweep_file(name, "")).unwrap();
        for extra in [&[][..], &["--dry-run"]] {
            let args = [&["run", "s.toml", "--db", "sweep.db"][..], extra].concat();
            let out = sweep(&dir, &args);
            let stderr = text(&out).1;
            assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
            assert!(
                stderr.starts_with("error: s.toml:1: `name`: ") && stderr.contains(reason),
                "{name}: {stderr}"
            );
        }
        assert_eq!(tree(outer.path()), ["work", "work/s.toml"], "{name}");
    }
}

#[test]
fn a_report_of_a_hostile_name_from_an_old_database_writes_nothing() {
    let outer = tempfile::tempdir().unwrap();
    let dir = outer.path().join("work");
    std::fs::create_dir(&dir).unwrap();
    // A database written before names were checked.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let pool = sweep_store::open(&dir.join("sweep.db")).await.unwrap();
        for name in ["fine", "../escape"] {
            sweep_store::record_sweep(&pool, name, "old.toml", "", &[])
                .await
                .unwrap();
        }
        sweep_store::close(pool).await;
    });
    // SQLite's own -shm and -wal beside the database may come and go with any connection
    // (a read-only one may not delete them); nothing else may appear.
    let own = |path: &String| !path.ends_with("sweep.db-shm") && !path.ends_with("sweep.db-wal");
    let files = || -> Vec<String> { tree(outer.path()).into_iter().filter(own).collect() };
    let before = files();
    for args in [
        &["report", "--db", "sweep.db"][..],
        &["report", "--db", "sweep.db", "--out", "reports"],
        &["report", "../escape", "--db", "sweep.db"],
    ] {
        let out = sweep(&dir, args);
        let stderr = text(&out).1;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("the sweep name \"../escape\" holds a path separator"),
            "{args:?}: {stderr}"
        );
        assert_eq!(files(), before, "{args:?}");
    }
}

/// Runs `sweep ARGS` in `dir`; its exit code, stderr, peak resident memory (KiB) and time.
fn measured(dir: &Path, args: &[&str]) -> (Option<i32>, String, i64, Duration) {
    let stderr_path = dir.join("stderr.txt");
    let started = Instant::now();
    // Reaped by wait4 below, which also gives its peak memory (std's wait does not).
    #[allow(clippy::zombie_processes)]
    let child = Command::new(sweep_bin())
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the child is ours and not waited for elsewhere; both pointers are valid.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32);
    let elapsed = started.elapsed();
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    std::fs::remove_file(&stderr_path).unwrap();
    (code, stderr, usage.ru_maxrss, elapsed)
}

/// `count` distinct values for `key`, as a TOML list.
fn axis(key: &str, count: usize) -> String {
    let values: Vec<String> = match key {
        "lr" => (1..=count).map(|i| format!("{}", i as f64 / 1e4)).collect(),
        _ => (2..count + 2).map(|i| i.to_string()).collect(),
    };
    format!("{key} = [{}]\n", values.join(", "))
}

#[test]
fn a_billion_trials_are_refused_quickly_in_little_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let grid = format!(
        "[grid]\n{}{}{}",
        axis("lr", 1000),
        axis("neurons", 1000),
        axis("batch_size", 1000)
    );
    let random = "[random]\ntrials = 1000000000\nlr = { log_uniform = [0.0001, 0.1] }\n";
    let both = format!(
        "[grid]\n{}{}[random]\ntrials = 1000\nlr = {{ log_uniform = [0.0001, 0.1] }}\n",
        axis("neurons", 100),
        axis("batch_size", 10)
    );
    let cases = [
        (
            grid.as_str(),
            "big.toml:17: the grid has 1,000,000,000 cells; at most 100,000 trials in a sweep",
        ),
        (
            random,
            "big.toml:18: `random.trials`: 1,000,000,000 samples; at most 100,000 trials in a \
             sweep",
        ),
        (
            both.as_str(),
            "big.toml:21: `random.trials`: the grid's 1,000 cells × 1,000 samples make \
             1,000,000 trials; at most 100,000 trials in a sweep",
        ),
    ];
    for (rest, expected) in cases {
        std::fs::write(dir.join("big.toml"), sweep_file("big", rest)).unwrap();
        for extra in [&[][..], &["--dry-run"]] {
            let args = [&["run", "big.toml", "--db", "sweep.db"][..], extra].concat();
            let (code, stderr, peak_kib, elapsed) = measured(dir, &args);
            assert_eq!(code, Some(2), "{stderr}");
            assert_eq!(stderr.trim_end(), format!("error: {expected}"));
            // A refusal, not an expansion: generous bounds, far below what expanding takes
            // (2.4 GB for the cells' indices alone).
            assert!(peak_kib < 200 * 1024, "peak {peak_kib} KiB");
            assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
        }
    }
    assert!(!dir.join("sweep.db").exists());
}

#[test]
fn a_hostile_data_folder_is_refused_with_its_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    synthetic_data(dir, 6, 3, 2);
    std::fs::write(
        dir.join("s.toml"),
        sweep_file("data", "").replace(
            "synthetic = { classes = 2, size = 8, train = 8, val = 4, test = 2, seed = 1 }",
            "dir = \"data\"",
        ),
    )
    .unwrap();
    let train_csv = std::fs::read_to_string(dir.join("data/train.csv")).unwrap();
    let first = train_csv.lines().nth(1).unwrap().to_string();
    let (image, _) = first.split_once(',').unwrap();
    // A secret the CSV tries to have read as an image.
    std::fs::write(dir.join("secret.png"), b"not for you").unwrap();
    let cases = [
        (
            first.replacen(image, "../../secret.png", 1),
            "data/train.csv:2: image \"../../secret.png\" is not a file name",
        ),
        (
            first.replacen(image, &dir.join("secret.png").display().to_string(), 1),
            "is not a file name",
        ),
        (
            format!("{image},4000000000"),
            "data/train.csv:2: label 4000000000 is out of range: a data set has at most 1000 \
             classes (0–999)",
        ),
    ];
    for (row, expected) in cases {
        let csv = train_csv.replacen(&first, &row, 1);
        std::fs::write(dir.join("data/train.csv"), csv).unwrap();
        let out = sweep(dir, &["run", "s.toml", "--db", "sweep.db"]);
        let stderr = text(&out).1;
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(expected), "{expected}: {stderr}");
        assert!(!dir.join("results").exists(), "{stderr}");
    }
    std::fs::write(dir.join("data/train.csv"), &train_csv).unwrap();

    // A PNG whose header claims 100,000 × 100,000 pixels.
    let png = dir.join("data/train_images").join(format!(
        "{}{}",
        image,
        if image.ends_with(".png") { "" } else { ".png" }
    ));
    std::fs::write(&png, giant_png_header(100_000)).unwrap();
    let (code, stderr, peak_kib, _) = measured(dir, &["run", "s.toml", "--db", "sweep.db"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot decode the PNG image: larger than 512×512 pixels"),
        "{stderr}"
    );
    assert!(peak_kib < 500 * 1024, "peak {peak_kib} KiB");
}

/// The signature and IHDR chunk of a PNG of `side` × `side` RGB pixels, with no data.
fn giant_png_header(side: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(side.to_be_bytes());
    ihdr.extend(side.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(13u32.to_be_bytes());
    png.extend(&ihdr);
    png.extend(crc32(&ihdr).to_be_bytes());
    png
}

/// The CRC-32 of PNG chunks (ISO 3309), bit by bit: a test needs no table.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
