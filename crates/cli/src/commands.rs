//! What each command does: parse nothing, decide little, call the libraries.

use std::sync::atomic::AtomicBool;

use anyhow::{bail, Context, Result};
use sweep_model::data::DataError;
use sweep_model::{
    cache, kaggle, Arch, Augment, ModelConfig, Objective, OptimizerKind, Progress, SyntheticSpec,
    TrainConfig, Trial,
};

use crate::args::{
    ArchArg, BenchArgs, CheckArgs, Cli, Command, DataCommand, OptimizerArg, SynthSpecArgs,
    TrainArgs,
};

/// Exit code for bad input (a sweep file, data or arguments that cannot be used).
pub const EXIT_BAD_INPUT: i32 = 2;

/// An error the user can fix in their input, as opposed to a failure while running.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// The error for a sweep name that is not in the database: it lists the sweeps that are, with
/// the closest name as a hint (`show`, `best`, `report` and `predict` share it).
pub async fn unknown_sweep(pool: &sweep_store::Pool, name: &str) -> anyhow::Error {
    let mut message = format!("no sweep named `{name}` in the database");
    match sweep_store::sweeps(pool).await {
        Ok(sweeps) if sweeps.is_empty() => {
            message.push_str(", which has no sweeps yet (`sweep run FILE` makes one)")
        }
        Ok(sweeps) => {
            let names: Vec<&str> = sweeps.iter().map(|s| s.name.as_str()).collect();
            if let Some(hint) = sweep_scheduler::sweep_file::closest(name, &names) {
                message.push_str(&format!(" (did you mean `{hint}`?)"));
            }
            let listed: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            message.push_str(&format!("; its sweeps: {}", listed.join(", ")));
        }
        // The name is what went wrong; a failure to list the others would only hide that.
        Err(_) => {}
    }
    BadInput(message).into()
}

/// An error as one line: its messages from the outermost in, each cause once. A library
/// error's text often already ends with its source's (`{path}: {source}`), which anyhow's
/// `{:#}` would print again.
pub fn error_report(err: &anyhow::Error) -> String {
    let mut report = String::new();
    for cause in err.chain() {
        let message = cause.to_string();
        if message.is_empty() || report.contains(&message) {
            continue;
        }
        if !report.is_empty() {
            report.push_str(": ");
        }
        report.push_str(&message);
    }
    report
}

/// The exit code for an error: 2 for bad input, 1 otherwise.
pub fn exit_code_of(err: &anyhow::Error) -> i32 {
    use sweep_scheduler::{RunError, SweepFileError};
    let bad = err.chain().any(|e| {
        e.is::<BadInput>()
            || e.is::<DataError>()
            || e.is::<SweepFileError>()
            || matches!(
                e.downcast_ref::<RunError>(),
                Some(RunError::Data(_) | RunError::NoData { .. })
            )
    });
    if bad {
        EXIT_BAD_INPUT
    } else {
        1
    }
}

/// Runs a parsed command line; the `Ok` value is the exit code.
pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Run(args) => crate::run::run(args),
        Command::Trial(args) => crate::run::trial(args),
        Command::Ls(args) => crate::results::ls(args),
        Command::Show(args) => crate::results::show(args),
        Command::Best(args) => crate::results::best(args),
        Command::Query(args) => crate::results::query(args),
        Command::Report(args) => crate::results::report(args),
        Command::Predict(args) => crate::results::predict(args),
        Command::Train(args) => train(args),
        Command::Data(DataCommand::Synth(args)) => {
            let spec = synth_spec(&args.spec, args.seed)?;
            let dataset = spec.generate();
            kaggle::write_layout(&dataset, &args.out).with_context(|| {
                format!("writing the synthetic data set to {}", args.out.display())
            })?;
            println!(
                "wrote {} training, {} validation and {} test images ({} classes, {}×{}) to {}",
                dataset.train.len(),
                dataset.val.len(),
                dataset.test.len(),
                dataset.classes,
                dataset.size,
                dataset.size,
                args.out.display()
            );
            Ok(0)
        }
        Command::Data(DataCommand::Check(args)) => check(args),
        Command::Bench(args) => bench(args),
    }
}

fn check(args: CheckArgs) -> Result<i32> {
    let started = std::time::Instant::now();
    let (dataset, how) = cache::load(&args.dir, &args.cache, None)?;
    let seconds = started.elapsed().as_secs_f64();
    let how = match how {
        cache::CacheUse::Hit => "loaded from the cache",
        cache::CacheUse::Built => "decoded and cached",
    };
    println!(
        "{}: {} training, {} validation and {} test images of {}×{} in {} classes, {how} in {seconds:.3} s",
        args.dir.display(),
        dataset.train.len(),
        dataset.val.len(),
        dataset.test.len(),
        dataset.size,
        dataset.size,
        dataset.classes,
    );
    Ok(0)
}

fn synth_spec(args: &SynthSpecArgs, seed: u64) -> Result<SyntheticSpec> {
    let spec = SyntheticSpec {
        classes: args.classes,
        size: args.size,
        train: args.train,
        val: args.val,
        test: args.test,
        seed,
    };
    if let Some(problem) = spec.problem() {
        return Err(BadInput(format!("synthetic data: {problem}")).into());
    }
    Ok(spec)
}

fn train(args: TrainArgs) -> Result<i32> {
    let dataset = match &args.data {
        Some(dir) => {
            let (dataset, _) = cache::load(dir, &args.cache, None)?;
            dataset
        }
        None => synth_spec(&args.synth, args.data_seed)?.generate(),
    };
    let model = ModelConfig {
        arch: match args.arch {
            ArchArg::Mlp => Arch::Mlp,
            ArchArg::Resnet => Arch::Resnet,
        },
        filters: args.filters.clone(),
        neurons: args.neurons,
        hidden: args.hidden.clone(),
        dropout: args.dropout,
        block_dense: false,
    };
    let config = TrainConfig {
        epochs: args.epochs,
        batch_size: args.batch_size,
        optimizer: match args.optimizer {
            OptimizerArg::Sgd => OptimizerKind::Sgd,
            OptimizerArg::Adam => OptimizerKind::Adam,
            OptimizerArg::Rmsprop => OptimizerKind::Rmsprop,
        },
        lr: args.lr,
        momentum: args.momentum,
        seed: args.seed,
        objective: Objective::ValF1,
    };
    let augment = Augment {
        rotation: args.rotation,
        shift: args.shift,
        zoom: args.zoom,
        hflip: args.hflip,
    };
    let problem = [model.problem(), config.problem(), augment.problem()]
        .into_iter()
        .flatten()
        .next();
    if let Some(problem) = problem {
        return Err(BadInput(problem).into());
    }
    let device = sweep_model::device(&args.device).with_context(|| {
        format!(
            "opening the device {} (is its driver installed?)",
            args.device
        )
    })?;
    let trial = Trial {
        dataset: &dataset,
        model: &model,
        train: &config,
        augment: &augment,
        device: &device,
        dir: &args.out,
    };
    if !args.json {
        println!(
            "{} images of {}×{} in {} classes; training a {:?} for {} epochs on {}",
            dataset.train.len(),
            dataset.size,
            dataset.size,
            dataset.classes,
            model.arch,
            config.epochs,
            args.device
        );
        println!("epoch  train_loss  train_acc  val_loss  val_acc  val_f1  seconds");
    }
    let stop = AtomicBool::new(false);
    let outcome = sweep_model::train(&trial, &stop, &mut |progress| match progress {
        Progress::Epoch(m) if args.json => {
            println!("{}", serde_json::to_string(&m).expect("metrics serialise"));
        }
        Progress::Epoch(m) => println!(
            "{:>5}  {:>10.4}  {:>9.4}  {:>8.4}  {:>7.4}  {:>6.4}  {:>7.1}",
            m.epoch, m.train_loss, m.train_acc, m.val_loss, m.val_acc, m.val_f1, m.seconds
        ),
        Progress::Resumed { history } if !args.json => println!(
            "resuming after epoch {} from {}",
            history.len(),
            args.out.display()
        ),
        _ => {}
    })?;
    let Some(best) = outcome.best else {
        bail!("no epoch finished");
    };
    if !args.json {
        println!(
            "best epoch {} with val_f1 {:.4}; checkpoints in {}",
            best.epoch,
            best.objective,
            args.out.display()
        );
    }
    Ok(0)
}

fn bench(args: BenchArgs) -> Result<i32> {
    let device = sweep_model::device(&args.device).with_context(|| {
        format!(
            "opening the device {} (is its driver installed?)",
            args.device
        )
    })?;
    println!(
        "batch {}, {} warm-up + {} timed steps, device {}, {} threads",
        args.batch,
        args.warmup,
        args.steps,
        args.device,
        sweep_model::bench::threads()
    );
    let cases = sweep_model::bench::seed_cases(args.size);
    let chosen: Vec<_> = cases
        .iter()
        .filter(|case| {
            args.case
                .as_deref()
                .is_none_or(|only| case.label().contains(only))
        })
        .collect();
    if chosen.is_empty() {
        let names: Vec<String> = cases.iter().map(|case| case.label()).collect();
        return Err(BadInput(format!(
            "--case {}: no benchmark case matches (the cases: {})",
            args.case.unwrap_or_default(),
            names.join(", ")
        ))
        .into());
    }
    for case in chosen {
        let m = sweep_model::bench::measure(case, args.batch, args.warmup, args.steps, &device)?;
        println!("{m}");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{path}: {source}")]
    struct WithPath {
        path: &'static str,
        source: std::io::Error,
    }

    #[test]
    fn an_error_report_names_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let err = anyhow::Error::new(WithPath {
            path: "s.toml",
            source: io,
        });
        assert_eq!(
            error_report(&err),
            "s.toml: No such file or directory",
            "a source already in its error's text"
        );
        let err = err.context("reading the sweep file");
        assert_eq!(
            error_report(&err),
            "reading the sweep file: s.toml: No such file or directory"
        );
        let err = anyhow::anyhow!("disk full")
            .context("writing trials.csv")
            .context("sweep `quick`");
        assert_eq!(
            error_report(&err),
            "sweep `quick`: writing trials.csv: disk full",
            "distinct causes are all kept, outermost first"
        );
    }

    #[test]
    fn an_unknown_sweep_lists_the_sweeps_with_the_closest_name() {
        let db = std::env::temp_dir().join(format!("sweep-unknown-{}.db", std::process::id()));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (empty, typo, far) = runtime.block_on(async {
            let pool = sweep_store::open(&db).await.unwrap();
            let empty = unknown_sweep(&pool, "quick").await.to_string();
            for name in ["quick", "cnn"] {
                sweep_store::record_sweep(&pool, name, "s.toml", "", &[])
                    .await
                    .unwrap();
            }
            let typo = unknown_sweep(&pool, "quik").await;
            let far = unknown_sweep(&pool, "resnet-large").await.to_string();
            pool.close().await;
            (empty, typo, far)
        });
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
        assert!(empty.starts_with("no sweep named `quick` in the database, which has no sweeps"));
        assert_eq!(exit_code_of(&typo), EXIT_BAD_INPUT);
        assert_eq!(
            typo.to_string(),
            "no sweep named `quik` in the database (did you mean `quick`?); its sweeps: `quick`, `cnn`"
        );
        assert_eq!(
            far,
            "no sweep named `resnet-large` in the database; its sweeps: `quick`, `cnn`"
        );
    }
}
