//! The training engine through the command line: synthetic data on disk, training from it,
//! resuming, and bad input refused with exit code 2.

use crate::common::{sweep, synthetic_data, text};

#[test]
fn synthetic_data_written_to_disk_trains_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = sweep(
        dir,
        &[
            "data",
            "synth",
            "--out",
            "data",
            "--classes",
            "4",
            "--size",
            "16",
            "--train",
            "200",
            "--val",
            "60",
            "--test",
            "20",
            "--seed",
            "3",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("wrote 200 training, 60 validation and 20 test images"),
        "{stdout}"
    );
    let train_csv = std::fs::read_to_string(dir.join("data/train.csv")).unwrap();
    assert!(
        train_csv.starts_with("Image,Class\ntrain_00000.png,0\n"),
        "{train_csv}"
    );
    assert_eq!(
        std::fs::read_dir(dir.join("data/test_images"))
            .unwrap()
            .count(),
        20
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("data/test.csv"))
            .unwrap()
            .lines()
            .next(),
        Some("Image")
    );

    let train = |epochs: &str| {
        sweep(
            dir,
            &[
                "train",
                "--data",
                "data",
                "--filters",
                "8,16",
                "--epochs",
                epochs,
                "--batch-size",
                "32",
                "--json",
                "--out",
                "trial",
            ],
        )
    };
    let out = train("2");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let epochs: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(epochs.len(), 2, "{stdout}");
    assert_eq!(epochs[1]["epoch"], 2);
    assert!(epochs[1]["val_f1"].as_f64().unwrap() > 0.0);
    assert!(
        dir.join("trial/last.safetensors").exists() && dir.join("trial/best.safetensors").exists()
    );
    assert_eq!(
        std::fs::read_dir(dir.join("results/cache"))
            .unwrap()
            .count(),
        1,
        "one cache file"
    );

    // A third epoch resumes from the checkpoint: only epoch 3 is trained and printed.
    let out = train("3");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let epochs: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(epochs.len(), 1, "{stdout}");
    assert_eq!(epochs[0]["epoch"], 3);
}

#[test]
fn a_corrupt_image_is_refused_with_its_name_and_exit_code_2() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    synthetic_data(dir, 10, 5, 2);
    let victim = dir.join("data/val_images/val_00003.png");
    let bytes = std::fs::read(&victim).unwrap();
    std::fs::write(&victim, &bytes[..bytes.len() / 3]).unwrap();
    let out = sweep(
        dir,
        &["train", "--data", "data", "--epochs", "1", "--out", "trial"],
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("val_00003.png") && stderr.contains("cannot decode"),
        "{stderr}"
    );
    assert!(!dir.join("trial").exists(), "nothing written for bad input");
}

#[test]
fn out_of_range_arguments_exit_with_2() {
    let tmp = tempfile::tempdir().unwrap();
    let out = sweep(
        tmp.path(),
        &["data", "synth", "--out", "d", "--classes", "101"],
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("classes must be between 2 and 100"),
        "{stderr}"
    );
    assert!(!tmp.path().join("d").exists());
    let out = sweep(tmp.path(), &["train", "--lr", "0", "--epochs", "1"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("train.lr"), "{stderr}");
}

#[test]
fn bench_prints_images_per_second_for_each_model() {
    let tmp = tempfile::tempdir().unwrap();
    let out = sweep(
        tmp.path(),
        &[
            "bench", "--size", "16", "--batch", "8", "--warmup", "1", "--steps", "2",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    for line in [
        "resnet     16x16 train",
        "mlp-24-48  16x16 train",
        "resnet     16x16 infer",
    ] {
        assert!(stdout.contains(line), "{line:?} missing from {stdout}");
    }
    assert_eq!(stdout.matches(" img/s").count(), 3, "{stdout}");
}

#[test]
fn bench_layers_prints_a_row_per_convolution_shape_of_the_resnet() {
    let tmp = tempfile::tempdir().unwrap();
    let args = [
        "bench", "--layers", "--size", "16", "--batch", "2", "--warmup", "0", "--steps", "1",
    ];
    let out = sweep(tmp.path(), &args);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("| layer | shape |"), "{stdout}");
    assert!(
        stdout.contains("| stem | 3→64 7×7/2 on 16×16 | 1 |"),
        "{stdout}"
    );
    // The header's two lines and one row per distinct shape.
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with('|')).count(),
        2 + 8,
        "{stdout}"
    );
    assert!(stdout.contains("ms per training step"), "{stdout}");
    let out = sweep(tmp.path(), &[&args[..2], &["--device", "cuda:0"]].concat());
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--layers times the CPU kernels"),
        "{stderr}"
    );
}

#[test]
fn data_check_decodes_once_then_reads_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = sweep(
        dir,
        &[
            "data",
            "synth",
            "--out",
            "data",
            "--classes",
            "5",
            "--size",
            "12",
            "--train",
            "30",
            "--val",
            "10",
            "--test",
            "10",
        ],
    );
    assert!(out.status.success());
    let first = text(&sweep(dir, &["data", "check", "data"])).0;
    assert!(first.contains("30 training, 10 validation and 10 test images of 12×12 in 5 classes, decoded and cached"), "{first}");
    let second = text(&sweep(dir, &["data", "check", "data"])).0;
    assert!(second.contains("loaded from the cache"), "{second}");
}
