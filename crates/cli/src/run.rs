//! `sweep run` and the hidden `sweep trial` that it starts for each trial.

use std::io::Write;
use sweep_model::{DeviceName, TrialEvent};
use sweep_store::TrialStatus;

use sweep_model::gpu_count;
use sweep_scheduler::event_log::{EventWriter, EVENTS_FILE};
use sweep_scheduler::executor::slurm;
use sweep_scheduler::prune::{halving_plan, planned_epochs};
use sweep_scheduler::sweep_file::{Prune, TrialSpec};
use sweep_scheduler::trial::{run_trial, TrialExit};
use sweep_scheduler::{
    expand_grid, prepare_data, run_sweep, Devices, Executor, RunOptions, SweepFile,
};

use crate::args::{AttachArgs, RunArgs, SweepArgs, TrialArgs};
use crate::errors::{BadInput, Context, Failed, Result};
use crate::progress::{params_label, status_count, Display};

/// Exit code of a run stopped by Ctrl-C.
pub const EXIT_INTERRUPTED: i32 = 130;

fn parse_devices(text: &str) -> Result<Devices> {
    if text == "auto" {
        return Ok(Devices::Auto);
    }
    let list = text.split(',').map(|d| d.trim().parse::<DeviceName>());
    match list.collect() {
        Ok(list) => Ok(Devices::List(list)),
        Err(unknown) => Err(BadInput(format!("--devices: {unknown}; or use auto")).into()),
    }
}

/// `sweep run FILE`.
pub fn run(args: RunArgs) -> Result<i32> {
    run_file(args, false)
}

/// `sweep attach FILE`: a Slurm run that follows the jobs submitted earlier and submits
/// nothing.
pub fn attach(args: AttachArgs) -> Result<i32> {
    let args = RunArgs {
        file: args.file,
        db: args.db,
        results: args.results,
        jobs: None,
        devices: None,
        dry_run: false,
        retry_failed: false,
        executor: Some(Executor::Slurm.name().to_string()),
        detach: false,
    };
    run_file(args, true)
}

/// `sweep cancel SWEEP`: the sweep's running trials become interrupted, then their jobs are
/// cancelled (so a runner following them sees them interrupted, not failed).
pub fn cancel(args: SweepArgs) -> Result<i32> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        if !args.db.db.exists() {
            return Err(BadInput(format!(
                "{}: no results database here (pass --db)",
                args.db.db.display()
            ))
            .into());
        }
        let pool = sweep_store::open(&args.db.db).await?;
        let Some(sweep) = sweep_store::find_sweep(&pool, &args.sweep).await? else {
            return Err(crate::errors::unknown_sweep(&pool, &args.sweep).await);
        };
        let jobs = sweep_store::interrupt_submitted(&pool, sweep).await?;
        sweep_store::close(pool).await;
        slurm::cancel(&jobs, None)
            .map_err(|e| Failed(format!("scancel {}: {e}", jobs.join(" "))))?;
        println!(
            "sweep `{}`: cancelled {} Slurm job{}{}; the trials are interrupted and resume from their checkpoints with `sweep run FILE`",
            args.sweep,
            jobs.len(),
            if jobs.len() == 1 { "" } else { "s" },
            if jobs.is_empty() { String::new() } else { format!(" ({})", jobs.join(" ")) }
        );
        Ok(0)
    })
}

fn run_file(args: RunArgs, follow_only: bool) -> Result<i32> {
    let file = SweepFile::load(&args.file)?;
    let trials = expand_grid(&file);
    if args.jobs == Some(0) {
        return Err(BadInput("--jobs must be at least 1".into()).into());
    }
    let devices = args.devices.as_deref().map(parse_devices).transpose()?;
    if args.dry_run {
        return dry_run(&file, &trials, &args.db.db);
    }
    let executor = args
        .executor
        .as_deref()
        .map(|e| e.parse::<Executor>().map_err(BadInput))
        .transpose()?;
    let slurm = executor.unwrap_or(file.run.executor) == Executor::Slurm;
    if args.detach && !slurm {
        return Err(BadInput(
            "--detach needs the Slurm executor (`--executor slurm`, or `run.executor = \"slurm\"`)"
                .into(),
        )
        .into());
    }
    let gpus = if slurm { 0 } else { gpu_count() };
    if !slurm && devices.as_ref().unwrap_or(&file.run.devices) == &Devices::Auto && gpus == 0 {
        eprintln!(
            "no GPU visible{}: running on the CPU",
            if cfg!(feature = "cuda") {
                ""
            } else {
                " (a CPU-only build)"
            }
        );
    }
    prepare_data(&file, &args.results)?;
    let options = RunOptions {
        db: args.db.db.clone(),
        results: args.results.clone(),
        devices,
        jobs: args.jobs,
        exe: std::env::current_exe().context("finding the sweep binary")?,
        gpus,
        retry_failed: args.retry_failed,
        executor,
        detach: args.detach,
        follow_only,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let summary = runtime.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let display = tokio::spawn(async move {
            let mut display = Display::new();
            while let Some(update) = rx.recv().await {
                display.show(update);
            }
            display.finish();
        });
        let summary = run_sweep(&file, &options, tx).await;
        let _ = display.await;
        summary
    })?;

    let (done, failed, stopped, paused) = (
        summary.count(TrialStatus::Done),
        summary.count(TrialStatus::Failed),
        summary.count(TrialStatus::Stopped),
        summary.count(TrialStatus::Paused),
    );
    let pending = summary.trials.len() - done - failed - stopped - paused;
    let mut pruned = String::new();
    if summary.pruned.is_some() {
        pruned.push_str(&format!(
            ", {}",
            status_count(TrialStatus::Stopped, stopped)
        ));
    }
    if paused > 0 {
        pruned.push_str(&format!(", {}", status_count(TrialStatus::Paused, paused)));
    }
    let overhead = if summary.launched > 0 {
        (summary.wall_seconds * summary.slots as f64 - summary.trial_seconds).max(0.0)
            / summary.launched as f64
    } else {
        0.0
    };
    println!(
        "sweep `{}`: {done} done, {failed} failed{pruned}, {pending} not finished of {} trials; ran {} in {:.1} s (scheduler idle per trial and slot: {:.2} s)",
        file.name,
        summary.trials.len(),
        summary.launched,
        summary.wall_seconds,
        overhead
    );
    if let Some(epochs) = summary.pruned {
        println!(
            "pruning: trained {} epochs of a full grid's {} ({:.1}× fewer)",
            epochs.trained,
            epochs.full,
            epochs.full as f64 / epochs.trained.max(1) as f64
        );
    }
    let mut ranked = summary.trials.clone();
    sweep_store::rank_best_first(&mut ranked);
    if let Some(best) = ranked.first().filter(|t| t.status == TrialStatus::Done) {
        let checkpoint = best
            .checkpoint
            .as_deref()
            .map(|c| format!(" ({c})"))
            .unwrap_or_default();
        println!(
            "best: trial {} {} with {} {:.4} at epoch {}{checkpoint}",
            best.number,
            params_label(&best.summary.params),
            file.goal().metric,
            best.objective.unwrap_or(f64::NAN),
            best.best_epoch.unwrap_or(0),
        );
    }
    for t in summary
        .trials
        .iter()
        .filter(|t| t.status == TrialStatus::Failed)
    {
        println!(
            "failed: trial {} {}: {}",
            t.number,
            params_label(&t.summary.params),
            t.error_line()
        );
    }
    Ok(if summary.interrupted && !args.detach {
        EXIT_INTERRUPTED
    } else if failed > 0 {
        1
    } else {
        0
    })
}

/// `sweep run --dry-run`: the trials by the numbers every other command shows (those the
/// database has already, with their status; the new ones as they would be numbered) and,
/// for a sweep that prunes, what pruning would train. Writes nothing.
fn dry_run(file: &SweepFile, trials: &[TrialSpec], db: &std::path::Path) -> Result<i32> {
    if let Some(search) = &file.search {
        println!(
            "sweep `{}`: {} trials suggested one by one by TPE (seed {}, {} at random first, \
             trial k once trials 0..=k-{} have ended)",
            file.name, search.trials, search.seed, search.startup, search.parallel
        );
        return Ok(0);
    }
    let plural = if trials.len() == 1 { "" } else { "s" };
    println!("sweep `{}`: {} trial{plural}", file.name, trials.len());
    let recorded = recorded_trials(&file.name, db)?;
    let mut next = recorded.values().map(|&(n, _)| n).max().unwrap_or(0);
    let width = (next as usize + trials.len()).to_string().len().max(5);
    println!("  {:>width$}  params", "trial");
    for t in trials {
        let params = params_label(&t.params);
        match recorded.get(&t.hash) {
            Some((number, status)) => println!("  {number:>width$}  {params}  ({status})"),
            None => {
                next += 1;
                println!("  {next:>width$}  {params}");
            }
        }
    }
    match file.prune {
        Some(prune @ Prune::Halving {
            reduction_factor, ..
        }) => {
            let plan = halving_plan(&prune.rungs(file.epochs()), reduction_factor, trials.len());
            let rungs: Vec<String> = plan
                .iter()
                .map(|(epoch, n)| format!("epoch {epoch}: {n} trial{}", if *n == 1 { "" } else { "s" }))
                .collect();
            println!(
                "halving (η {reduction_factor}) trains to {}; {} epochs of a full grid's {}",
                rungs.join(", "),
                planned_epochs(&plan),
                trials.len() * file.epochs() as usize
            );
        }
        Some(Prune::Median {
            warmup_epochs,
            min_trials,
        }) => println!(
            "median stopping: from epoch {} on, a trial below the median of the others (once {min_trials} reached that epoch) stops",
            warmup_epochs + 1
        ),
        None => {}
    }
    Ok(0)
}

/// The trials of sweep `name` that the database at `db` holds, by configuration hash: their
/// number and status (none without the database or the sweep).
fn recorded_trials(
    name: &str,
    db: &std::path::Path,
) -> Result<std::collections::HashMap<String, (i64, TrialStatus)>> {
    if !db.exists() {
        return Ok(Default::default());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let pool = sweep_store::open_read_only(db).await?;
        let rows = match sweep_store::find_sweep(&pool, name).await? {
            Some(sweep) => sweep_store::trials(&pool, sweep).await?,
            None => Vec::new(),
        };
        pool.close().await;
        Ok(rows
            .into_iter()
            .map(|t| (t.config_hash, (t.number, t.status)))
            .collect())
    })
}

/// `sweep trial DIR`: one trial, its events appended to `DIR/events.jsonl` (what the
/// scheduler follows) and echoed on stdout (for a person running it by hand).
pub fn trial(args: TrialArgs) -> Result<i32> {
    let stdout = std::io::stdout();
    // A folder that cannot hold the file cannot hold the trial either: the trial reports
    // that itself (on stdout), as a bad configuration.
    let mut events = EventWriter::open(&args.dir).ok();
    let exit = run_trial(
        &args.dir,
        args.device,
        &args.cache,
        args.until,
        &mut |event| {
            if let TrialEvent::Started {
                recovered: Some(recovery),
                ..
            } = &event
            {
                eprintln!("{}: {recovery}", args.dir.display());
            }
            if let Some(file) = &mut events {
                if let Err(e) = file.write(&event) {
                    eprintln!(
                        "cannot append to {}: {e}",
                        args.dir.join(EVENTS_FILE).display()
                    );
                }
            }
            let mut out = stdout.lock();
            // A closed pipe only means nobody reads the echo.
            let _ = writeln!(out, "{}", event.to_line()).and_then(|_| out.flush());
        },
    );
    Ok(match exit {
        TrialExit::Finished | TrialExit::Interrupted | TrialExit::Paused => 0,
        TrialExit::Failed => 1,
        TrialExit::BadInput => crate::errors::EXIT_BAD_INPUT,
    })
}
