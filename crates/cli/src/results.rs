//! The commands that read results: `ls`, `show`, `best`, `query`, `report`, `importance`
//! and `predict`.

use std::path::Path;
use sweep_scheduler::sweep_name;
use sweep_store::{Goal, TrialStatus};

use sweep_model::SplitName;
use sweep_store::{Cell, Pool, TrialRow};

use crate::args::{
    DbArgs, Format, ImportanceArgs, ImportanceFormat, PredictArgs, QueryArgs, ReportArgs, SplitArg,
    SweepArgs,
};
use crate::errors::{unknown_sweep, BadInput, CommandError, Context, Failed, Result};
use crate::progress::params_label;

fn block_on<T>(future: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(future)
}

async fn open(db: &DbArgs) -> Result<Pool> {
    if !db.db.exists() {
        return Err(BadInput(format!(
            "{}: no results database here (run a sweep first, or pass --db)",
            db.db.display()
        ))
        .into());
    }
    Ok(sweep_store::open_read_only(&db.db).await?)
}

async fn ranked_trials(pool: &Pool, sweep: &str) -> Result<Vec<TrialRow>> {
    let Some(id) = sweep_store::find_sweep(pool, sweep).await? else {
        return Err(unknown_sweep(pool, sweep).await);
    };
    let mut trials = sweep_store::trials(pool, id).await?;
    sweep_store::rank_best_first(&mut trials);
    Ok(trials)
}

/// Prints rows as an aligned text table.
fn print_table(columns: &[String], rows: &[Vec<String>]) {
    let widths: Vec<usize> = (0..columns.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([columns[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    println!("{}", line(columns));
    println!(
        "{}",
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("  ")
    );
    for row in rows {
        println!("{}", line(row));
    }
}

/// The Slurm states of the jobs of these trials that are running, by job (none when no
/// trial runs on Slurm, or squeue cannot be asked).
fn slurm_states<'a>(
    trials: impl IntoIterator<Item = &'a TrialRow>,
) -> std::collections::HashMap<String, sweep_scheduler::executor::slurm::JobState> {
    let jobs: Vec<String> = trials
        .into_iter()
        .filter(|t| t.status == TrialStatus::Running)
        .filter_map(|t| t.slurm_job.clone())
        .collect();
    if jobs.is_empty() {
        return Default::default();
    }
    sweep_scheduler::executor::slurm::job_states(&jobs).unwrap_or_default()
}

/// A trial's Slurm job as `sweep show` prints it: `12_3 RUNNING on node7` while it runs.
fn slurm_cell(
    t: &TrialRow,
    states: &std::collections::HashMap<String, sweep_scheduler::executor::slurm::JobState>,
) -> String {
    match (&t.slurm_job, t.status) {
        (Some(job), TrialStatus::Running) => match states.get(job) {
            Some(state) => format!("{job} {}", state.describe()),
            None => format!("{job} (state unknown)"),
        },
        (Some(job), _) => job.clone(),
        (None, _) => "-".into(),
    }
}

fn number(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into())
}

/// `sweep ls`.
pub fn ls(db: DbArgs) -> Result<i32> {
    block_on(async {
        let pool = open(&db).await?;
        let mut rows = Vec::new();
        let mut on_slurm = false;
        for sweep in sweep_store::sweeps(&pool).await? {
            let mut trials = sweep_store::trials(&pool, sweep.id).await?;
            let states = slurm_states(&trials);
            let mut counts: Vec<(String, usize)> = Vec::new();
            for state in trials
                .iter()
                .filter(|t| t.status == TrialStatus::Running)
                .filter_map(|t| states.get(t.slurm_job.as_ref()?))
            {
                let name = match state.state.as_str() {
                    "PENDING" if !state.reason.is_empty() => format!("PENDING ({})", state.reason),
                    other => other.to_string(),
                };
                match counts.iter_mut().find(|(n, _)| *n == name) {
                    Some((_, count)) => *count += 1,
                    None => counts.push((name, 1)),
                }
            }
            on_slurm |= !counts.is_empty();
            let slurm: Vec<String> = counts.iter().map(|(n, c)| format!("{c} {n}")).collect();
            let epochs = sweep_store::sweep_epochs(&pool, sweep.id).await?;
            let scored = |t: &TrialRow| score(t, history_of(&epochs, t)).1;
            sweep_store::rank_by_score(&mut trials, scored);
            let count =
                |s: TrialStatus| trials.iter().filter(|t| t.status == s).count().to_string();
            let best = trials.first().and_then(scored);
            let mut row = vec![sweep.name, trials.len().to_string()];
            row.extend(TrialStatus::ALL.map(count));
            row.extend([number(best), sweep.created_at]);
            row.push(if slurm.is_empty() {
                "-".into()
            } else {
                slurm.join(", ")
            });
            rows.push(row);
        }
        let mut columns = vec!["sweep", "trials"];
        columns.extend(TrialStatus::ALL.map(TrialStatus::name));
        columns.extend(["best", "created"]);
        // The Slurm column only while some sweep has jobs.
        if on_slurm {
            columns.push("slurm");
        } else {
            rows.iter_mut().for_each(|r| {
                r.pop();
            });
        }
        let columns: Vec<String> = columns.into_iter().map(String::from).collect();
        print_table(&columns, &rows);
        Ok(0)
    })
}

/// `sweep show SWEEP`.
pub fn show(args: SweepArgs) -> Result<i32> {
    block_on(async {
        let pool = open(&args.db).await?;
        let Some(id) = sweep_store::find_sweep(&pool, &args.sweep).await? else {
            return Err(unknown_sweep(&pool, &args.sweep).await);
        };
        let mut trials = sweep_store::trials(&pool, id).await?;
        let epochs = sweep_store::sweep_epochs(&pool, id).await?;
        // Best first by the objective whatever the status: a trial pruning paused or stopped
        // counts with its best epoch so far.
        sweep_store::rank_by_score(&mut trials, |t| score(t, history_of(&epochs, t)).1);
        let decisions = sweep_store::last_decisions(&pool, id).await?;
        // The pruning column only for a sweep that prunes, the Slurm one for a sweep that ran
        // on Slurm.
        let pruned = trials.iter().any(|t| t.until_epoch.is_some()) || !decisions.is_empty();
        let on_slurm = trials.iter().any(|t| t.slurm_job.is_some());
        // The note column only where some trial has one (it got past a damaged checkpoint).
        let noted = trials.iter().any(|t| t.note.is_some());
        // The origin column only for a search sweep (its trials were chosen in two ways).
        let searched = trials.iter().any(|t| {
            matches!(
                t.origin,
                Some(sweep_store::TrialOrigin::Startup | sweep_store::TrialOrigin::Model)
            )
        });
        let states = slurm_states(&trials);
        let metrics = shown_metrics(&epochs);
        let rows: Vec<Vec<String>> = trials
            .iter()
            .map(|t| {
                let history = history_of(&epochs, t);
                let (best, objective) = score(t, history);
                let mut row = vec![
                    t.number.to_string(),
                    params_label(&t.summary.params),
                    t.status.to_string(),
                    history.len().to_string(),
                    best.map_or("-".into(), |e| e.epoch.to_string()),
                    number(objective),
                ];
                row.extend(
                    metrics
                        .iter()
                        .map(|m| number(best.and_then(|e| e.metric(m)))),
                );
                row.push(t.device.clone().unwrap_or_else(|| "-".into()));
                if searched {
                    row.push(t.origin.map_or("-".into(), |o| o.to_string()));
                }
                if pruned {
                    row.push(pruning_of(t, decisions.get(&t.id)));
                }
                if on_slurm {
                    row.push(slurm_cell(t, &states));
                }
                if noted {
                    row.push(t.note.clone().unwrap_or_else(|| "-".into()));
                }
                row
            })
            .collect();
        let mut columns = vec![
            "trial",
            "params",
            "status",
            "epochs",
            "best_epoch",
            "objective",
        ];
        columns.extend(metrics.iter().map(String::as_str));
        columns.push("device");
        if searched {
            columns.push("origin");
        }
        if pruned {
            columns.push("pruning");
        }
        if on_slurm {
            columns.push("slurm");
        }
        if noted {
            columns.push("note");
        }
        let columns: Vec<String> = columns.into_iter().map(String::from).collect();
        print_table(&columns, &rows);
        Ok(0)
    })
}

/// The metrics `sweep show` gives of each trial's best epoch beside its objective: the
/// built-in trainer's validation accuracy and loss (unless no epoch has them: a command
/// trial's program that reports neither), then every metric of the program's own naming.
fn shown_metrics(
    epochs: &std::collections::HashMap<i64, Vec<sweep_store::EpochRow>>,
) -> Vec<String> {
    let all = || epochs.values().flatten();
    let any = all().next().is_some();
    let mut shown: Vec<String> = ["val_acc", "val_loss"]
        .into_iter()
        .filter(|m| !any || all().any(|e| e.metric(m).is_some()))
        .map(String::from)
        .collect();
    let mut own: Vec<&String> = all()
        .flat_map(|e| e.metrics.keys())
        .filter(|m| !sweep_store::METRIC_COLUMNS.contains(&m.as_str()))
        .collect();
    own.sort();
    own.dedup();
    shown.extend(own.into_iter().cloned());
    shown
}

/// Where pruning has a trial (`-` where it has not touched it).
fn pruning_of(t: &TrialRow, decision: Option<&String>) -> String {
    sweep_report::pruning::pruning_note(t, decision).unwrap_or_else(|| "-".into())
}

/// A trial's recorded epochs (none yet: empty).
fn history_of<'a>(
    epochs: &'a std::collections::HashMap<i64, Vec<sweep_store::EpochRow>>,
    t: &TrialRow,
) -> &'a [sweep_store::EpochRow] {
    epochs.get(&t.id).map(Vec::as_slice).unwrap_or(&[])
}

/// A trial's best epoch and objective: the recorded ones of a finished trial, else (paused,
/// stopped, running, interrupted, failed) the best of its epochs so far.
fn score<'a>(
    t: &TrialRow,
    history: &'a [sweep_store::EpochRow],
) -> (Option<&'a sweep_store::EpochRow>, Option<f64>) {
    let goal = &t.summary.goal;
    let best = match t.best_epoch {
        Some(epoch) => history.iter().find(|e| e.epoch == epoch),
        None => best_so_far(goal, history),
    };
    let objective = t.objective.or_else(|| best?.objective(goal));
    (best, objective)
}

/// The best of a trial's recorded epochs by its `goal` (the first of equals, as training
/// keeps it); none where the epochs do not record the goal's metric.
fn best_so_far<'a>(
    goal: &Goal,
    history: &'a [sweep_store::EpochRow],
) -> Option<&'a sweep_store::EpochRow> {
    let mut best: Option<(&sweep_store::EpochRow, f64)> = None;
    for e in history {
        let value = e.objective(goal)?;
        if best.is_none_or(|(_, b)| goal.direction.better(value, b)) {
            best = Some((e, value));
        }
    }
    best.map(|(e, _)| e)
}

/// `sweep best SWEEP`.
pub fn best(args: SweepArgs) -> Result<i32> {
    block_on(async {
        let pool = open(&args.db).await?;
        let trials = ranked_trials(&pool, &args.sweep).await?;
        let Some(best) = trials.first().filter(|t| t.status == TrialStatus::Done) else {
            return Err(Failed(format!("sweep `{}` has no finished trial yet", args.sweep)).into());
        };
        let epochs = sweep_store::epochs(&pool, sweep_store::TrialId(best.id)).await?;
        let at_best = epochs.iter().find(|e| Some(e.epoch) == best.best_epoch);
        println!("trial       {}", best.number);
        println!("params      {}", params_label(&best.summary.params));
        println!(
            "objective   {} at epoch {}",
            number(best.objective),
            best.best_epoch.unwrap_or(0)
        );
        if let Some(e) = at_best {
            // The built-in trainer's in its order, then the program's own by name.
            let order = ["val_f1", "val_acc", "val_loss", "train_loss", "train_acc"];
            let mut names: Vec<&str> = order
                .into_iter()
                .filter(|m| e.metric(m).is_some())
                .collect();
            names.extend(
                e.metrics
                    .keys()
                    .map(String::as_str)
                    .filter(|m| !order.contains(m) && *m != "lr"),
            );
            let text: Vec<String> = names
                .iter()
                .map(|m| format!("{m} {:.4}", e.metrics[*m]))
                .collect();
            println!("metrics     {}", text.join("  "));
        }
        println!("checkpoint  {}", best.checkpoint.as_deref().unwrap_or("-"));
        Ok(0)
    })
}

fn cell_text(cell: &Cell) -> String {
    match cell {
        Cell::Null => String::new(),
        Cell::Int(v) => v.to_string(),
        Cell::Real(v) => v.to_string(),
        Cell::Text(s) => s.clone(),
        Cell::Blob(b) => format!("<{} bytes>", b.len()),
    }
}

/// A query's row as a JSON object whose keys keep the SELECT's order (serde_json's own map
/// sorts them, and its `preserve_order` feature would change every map of the workspace,
/// the trial configurations that are hashed among them).
struct JsonRow<'a> {
    columns: &'a [String],
    cells: &'a [Cell],
}

impl serde::Serialize for JsonRow<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.columns.len()))?;
        for (column, cell) in self.columns.iter().zip(self.cells) {
            map.serialize_entry(column, cell)?;
        }
        map.end()
    }
}

/// `sweep query SQL`.
pub fn query(args: QueryArgs) -> Result<i32> {
    block_on(async {
        let pool = open(&args.db).await?;
        let (columns, rows) = match sweep_store::query(&pool, &args.sql).await {
            Ok(result) => result,
            Err(e @ sweep_store::StoreError::ReadOnly) => {
                return Err(BadInput(e.to_string()).into())
            }
            Err(e) => return Err(BadInput(format!("the query failed: {e}")).into()),
        };
        match args.format {
            Format::Table => {
                let rows: Vec<Vec<String>> = rows
                    .iter()
                    .map(|r| r.iter().map(cell_text).collect())
                    .collect();
                print_table(&columns, &rows);
                if rows.is_empty() {
                    println!("0 rows");
                }
            }
            Format::Csv => {
                let quote = |s: String| sweep_report::summary::csv_field(&s);
                println!(
                    "{}",
                    columns
                        .iter()
                        .cloned()
                        .map(quote)
                        .collect::<Vec<_>>()
                        .join(",")
                );
                for row in &rows {
                    println!(
                        "{}",
                        row.iter()
                            .map(|c| quote(cell_text(c)))
                            .collect::<Vec<_>>()
                            .join(",")
                    );
                }
                // Said beside the CSV, which stays a header alone.
                if rows.is_empty() {
                    eprintln!("0 rows");
                }
            }
            Format::Json => {
                let objects: Vec<JsonRow> = rows
                    .iter()
                    .map(|cells| JsonRow {
                        columns: &columns,
                        cells,
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&objects)?);
            }
        }
        Ok(0)
    })
}

/// `sweep report [SWEEP]`.
pub fn report(args: ReportArgs) -> Result<i32> {
    block_on(async {
        let pool = open(&args.db).await?;
        let reported = write_reports(&pool, &args).await;
        // Closed before the runtime ends on every path, the refusals included: a read-only
        // pool dropped unclosed can leave SQLite's -shm and -wal beside the database.
        pool.close().await;
        reported
    })
}

/// The reports of `args`: its sweep, or every sweep of the database.
async fn write_reports(pool: &Pool, args: &ReportArgs) -> Result<i32> {
    let names: Vec<String> = match &args.sweep {
        Some(name) => vec![name.clone()],
        None => sweep_store::sweeps(pool)
            .await?
            .into_iter()
            .map(|s| s.name)
            .collect(),
    };
    // Every folder is decided before the first file is written: a name that cannot be a
    // folder (from a database written before names were checked) writes nothing.
    let folders = names
        .iter()
        .map(|name| match (&args.out, &args.sweep) {
            (Some(out), Some(_)) => Ok(out.clone()),
            (Some(out), None) => sweep_name::folder(out, name),
            (None, _) => sweep_name::folder(Path::new("results"), name),
        })
        .collect::<Result<Vec<_>, _>>()?;
    for (name, out) in names.into_iter().zip(folders) {
        let written = match sweep_report::write_report(pool, &name, &out).await {
            Err(sweep_report::ReportError::NoSweep(name)) => {
                return Err(unknown_sweep(pool, &name).await)
            }
            other => other?,
        };
        println!("{name}: wrote {} files to {}", written.len(), out.display());
        for path in written {
            println!("  {}", path.display());
        }
    }
    Ok(0)
}

/// `sweep importance SWEEP`.
pub fn importance(args: ImportanceArgs) -> Result<i32> {
    block_on(async {
        let pool = open(&args.db).await?;
        let found = match sweep_report::sweep_importance(&pool, &args.sweep).await {
            Err(sweep_report::ReportError::NoSweep(name)) => Err(unknown_sweep(&pool, &name).await),
            other => other.map_err(CommandError::from),
        };
        pool.close().await;
        let found = found?;
        match args.format {
            ImportanceFormat::Json => println!("{}", serde_json::to_string_pretty(&found)?),
            ImportanceFormat::Table => {
                let i = &found.importance;
                println!(
                    "sweep `{}`, {}: {}",
                    found.sweep, found.objective, i.description
                );
                for line in &i.left_out {
                    println!("left out: {line}");
                }
                let columns: Vec<String> =
                    ["term", "share", "95% interval"].map(String::from).to_vec();
                let rows: Vec<Vec<String>> = i
                    .shares
                    .iter()
                    .map(|s| vec![s.term.clone(), s.percent(), s.interval_text()])
                    .collect();
                println!();
                print_table(&columns, &rows);
            }
        }
        Ok(0)
    })
}

/// `sweep predict SWEEP`.
pub fn predict(args: PredictArgs) -> Result<i32> {
    let trial = block_on(async {
        let pool = open(&args.db).await?;
        let trials = ranked_trials(&pool, &args.sweep).await?;
        let trial = match args.trial {
            Some(n) => trials
                .into_iter()
                .find(|t| t.number == n)
                .ok_or_else(|| BadInput(format!("sweep `{}` has no trial {n}", args.sweep)))?,
            None => trials
                .into_iter()
                .next()
                .filter(|t| t.status == TrialStatus::Done)
                .ok_or_else(|| {
                    BadInput(format!("sweep `{}` has no finished trial yet", args.sweep))
                })?,
        };
        Ok(trial)
    })?;
    let Some(checkpoint) = trial.checkpoint.as_deref() else {
        return Err(BadInput(format!(
            "trial {} has no best checkpoint (status {})",
            trial.number, trial.status
        ))
        .into());
    };
    let split = match args.split {
        SplitArg::Test => SplitName::Test,
        SplitArg::Val => SplitName::Val,
    };
    let labelled = sweep_scheduler::predict::predict_split(
        &trial.config,
        Path::new(checkpoint),
        split,
        &args.cache,
        args.device,
    )
    .with_context(|| format!("predicting with trial {}", trial.number))?;
    let dataset = &labelled.dataset;
    let names = &dataset.split(split).names;
    let mut csv = format!("{},{}\n", dataset.columns.image, dataset.columns.label);
    for (name, label) in names.iter().zip(&labelled.prediction.labels) {
        csv.push_str(&format!("{name},{label}\n"));
    }
    let dir = args
        .out
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // Written beside and renamed into place: a full disk or a kill never leaves half a
    // submission where a whole one was.
    let writing = || format!("writing {}", args.out.display());
    let mut tmp = tempfile::NamedTempFile::new_in(dir).with_context(writing)?;
    std::io::Write::write_all(&mut tmp, csv.as_bytes()).with_context(writing)?;
    tmp.as_file().sync_all().with_context(writing)?;
    // The persist error's text repeats its io error's, which it also gives as its source.
    tmp.persist(&args.out)
        .map_err(|e| e.error)
        .with_context(writing)?;
    println!(
        "wrote {} predictions of trial {} ({}, epoch {}) to {}",
        names.len(),
        trial.number,
        params_label(&trial.summary.params),
        labelled.prediction.card.epoch,
        args.out.display()
    );
    if let Some(confusion) = &labelled.prediction.confusion {
        println!(
            "macro F1 on the {} split: {:.6} (accuracy {:.4})",
            if split == SplitName::Val {
                "validation"
            } else {
                "test"
            },
            confusion.macro_f1(),
            confusion.accuracy()
        );
    }
    Ok(0)
}
