//! What each command does: parse nothing, decide little, call the libraries.

use std::sync::atomic::AtomicBool;

use sweep_model::{
    cache, kaggle, Arch, Augment, ModelConfig, Objective, SyntheticSpec, TrainConfig, Trial,
    TrialEvent,
};

use crate::args::{BenchArgs, CheckArgs, Cli, Command, DataCommand, SynthSpecArgs, TrainArgs};
use crate::errors::{BadInput, Context, Failed, Result};

/// Runs a parsed command line; the `Ok` value is the exit code.
pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Run(args) => crate::run::run(args),
        Command::Trial(args) => crate::run::trial(args),
        Command::Attach(args) => crate::run::attach(args),
        Command::Cancel(args) => crate::run::cancel(args),
        Command::Ls(args) => crate::results::ls(args),
        Command::Show(args) => crate::results::show(args),
        Command::Best(args) => crate::results::best(args),
        Command::Query(args) => crate::results::query(args),
        Command::Report(args) => crate::results::report(args),
        Command::Importance(args) => crate::results::importance(args),
        Command::Serve(args) => crate::serve::serve(args),
        Command::Predict(args) => crate::results::predict(args),
        Command::Train(args) => train(*args),
        Command::Data(DataCommand::Synth(args)) => {
            let spec = synth_spec(&args.spec, args.seed)?;
            let dataset = spec.generate();
            kaggle::write_layout(&dataset, &args.out).with_context(|| {
                format!("writing the synthetic data set to {}", args.out.display())
            })?;
            println!("wrote {} to {}", dataset.describe(), args.out.display());
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
        "{}: {}, {how} in {seconds:.3} s",
        args.dir.display(),
        dataset.describe()
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
        arch: args.arch,
        filters: args.filters.clone(),
        blocks: args.blocks.clone(),
        neurons: args.neurons,
        hidden: args.hidden.clone(),
        dropout: args.dropout,
        ..ModelConfig::default()
    };
    let config = TrainConfig {
        epochs: args.epochs,
        batch_size: args.batch_size,
        optimizer: args.optimizer,
        lr: args.lr,
        momentum: args.momentum,
        nesterov: args.nesterov,
        weight_decay: args.weight_decay,
        label_smoothing: args.label_smoothing,
        patience: args.patience,
        schedule: args.schedule,
        warmup_epochs: args.warmup_epochs,
        min_lr: args.min_lr,
        step_size: args.step_size,
        gamma: args.gamma,
        factor: args.factor,
        plateau_patience: args.plateau_patience,
        max_lr: args.max_lr,
        seed: args.seed,
        objective: Objective::ValF1,
        ..TrainConfig::default()
    };
    let augment = Augment {
        rotation: args.rotation,
        shift: args.shift,
        zoom: args.zoom,
        hflip: args.hflip,
        ..Augment::default()
    };
    let problem = [
        model.problem(),
        model.stages_problem(),
        config.problem(),
        config.schedule_problem(),
        augment.problem(),
    ]
    .into_iter()
    .flatten()
    .next();
    if let Some(problem) = problem {
        return Err(BadInput(problem).into());
    }
    let device = args.device.open().with_context(|| {
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
        TrialEvent::Epoch(m) if args.json => {
            println!("{}", serde_json::to_string(&m).expect("metrics serialise"));
        }
        TrialEvent::Epoch(m) => println!(
            "{:>5}  {:>10.4}  {:>9.4}  {:>8.4}  {:>7.4}  {:>6.4}  {:>7.1}",
            m.epoch, m.train_loss, m.train_acc, m.val_loss, m.val_acc, m.val_f1, m.seconds
        ),
        TrialEvent::Started {
            recovered: Some(recovery),
            ..
        } => eprintln!("{}: {recovery}", args.out.display()),
        TrialEvent::Started { history, .. } if !args.json && !history.is_empty() => println!(
            "resuming after epoch {} from {}",
            history.len(),
            args.out.display()
        ),
        _ => {}
    })?;
    let Some(best) = outcome.best else {
        return Err(Failed("no epoch finished".into()).into());
    };
    if let (false, Some(reason)) = (args.json, &outcome.stopped_early) {
        println!("{reason}");
    }
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
    if args.layers {
        return bench_layers(args);
    }
    let device = args.device.open().with_context(|| {
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
    let mut cases = sweep_model::bench::seed_cases(args.size);
    for case in cases.iter_mut().filter(|c| c.model.arch == Arch::Resnet) {
        if let Some(filters) = &args.filters {
            case.model.filters = filters.clone();
        }
        case.model.blocks = args.blocks.clone();
        if let Some(problem) = case.model.problem().or(case.model.stages_problem()) {
            return Err(BadInput(format!("--filters/--blocks: {problem}")).into());
        }
    }
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
    // The products' ceiling on this machine, to say how close each step comes to it: the best
    // of 30 products (≈ 0.2 s), since on a shared VM the best of 5 came out anywhere from 139
    // to 341 GFLOP/s within a minute.
    let peak = device.is_cpu().then(|| {
        let threads = sweep_model::bench::threads();
        let peak = sweep_model::bench::gemm_peak(1024, threads, 30);
        println!("gemm peak: {peak:.1} GFLOP/s (f32, 1024³, {threads} threads)");
        peak
    });
    for case in chosen {
        let m = sweep_model::bench::measure(case, args.batch, args.warmup, args.steps, &device)?;
        match peak {
            Some(peak) => println!("{m}, {:.0}% of the gemm peak", 100.0 * m.gflops / peak),
            None => println!("{m}"),
        }
    }
    Ok(0)
}

/// `sweep bench --layers`: the seed's ResNet's convolutions, one distinct shape per row.
fn bench_layers(args: BenchArgs) -> Result<i32> {
    if args.device != sweep_model::DeviceName::Cpu {
        return Err(BadInput(format!(
            "--layers times the CPU kernels: --device {} is not the CPU",
            args.device
        ))
        .into());
    }
    let threads = sweep_model::bench::threads();
    println!(
        "the seed's ResNet ({}x{}), batch {}, median of {} runs after {} warm-up, {threads} \
         threads; GFLOP/s (counted as dense convolutions) on the kernel this CPU runs, im2col's \
         in brackets",
        args.size, args.size, args.batch, args.steps, args.warmup
    );
    println!("{}", sweep_model::bench::layers::TABLE_HEADER);
    let model = sweep_model::ModelConfig::default();
    let rows = sweep_model::bench::layers::measure(
        &model,
        (args.size, args.batch),
        (args.warmup, args.steps),
        threads,
    );
    for row in &rows {
        println!("{row}");
    }
    let total: f64 = rows.iter().map(|row| row.step_seconds()).sum();
    println!(
        "the convolutions' products: {:.1} ms per training step",
        total * 1e3
    );
    Ok(0)
}
