//! `sweep-report`: a sweep's plots and summaries from the results database (read through
//! `sweep-store` only): `loss_<optimizer>.png` and `f1_<optimizer>.png` (the seed's
//! "Performance with optimizer" figures), `confusion_best.png`, `importance.png` (which
//! hyperparameters mattered: [`importance`]), a search's `history.png` ([`history`]),
//! `summary.md`, `trials.csv`, and `report.html`, the interactive page that `sweep serve` also serves live.

pub mod confusion;
pub mod curves;
pub mod history;
pub mod importance;
pub mod importance_chart;
pub mod layout;
pub mod page;
pub mod pruning;
mod rows;
pub mod summary;

use std::path::{Path, PathBuf};

use sweep_store::{EpochRow, Pool, StoreError, TrialRow};

use crate::curves::{Curve, Metric};
use crate::layout::{lay_out, Params};

/// Why a report could not be written.
///
/// A variant that holds another error either says its text and has no `source`, or is
/// `transparent`: no part of an error's chain repeats another.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("no sweep named `{0}` in the database")]
    NoSweep(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("drawing a plot: {0}")]
    Draw(String),
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// A drawing backend's error as the report's (plotters' errors are not `Send`, so their text).
pub(crate) fn draw_err(e: impl std::fmt::Display) -> ReportError {
    ReportError::Draw(e.to_string())
}

impl ReportError {
    /// Whether the user's input is at fault (the cli exits 2 for it, 1 for any other failure).
    /// A match with no catch-all: a new variant must be decided here.
    pub fn is_bad_input(&self) -> bool {
        match self {
            ReportError::NoSweep(_) => true,
            ReportError::Store(e) => e.is_bad_input(),
            ReportError::Draw(_) | ReportError::Io { .. } => false,
        }
    }
}

static FONT: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");

/// Registers the embedded font (DejaVu Sans) as plotters' `sans-serif`, so text renders on a
/// machine without any font installed.
fn register_font() -> Result<(), ReportError> {
    plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, FONT)
        .map_err(|_| ReportError::Draw("the embedded font is invalid".into()))
}

/// A sweep's [`importance::Importance`], with what it is the importance of.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SweepImportance {
    pub sweep: String,
    /// The metric whose variance is shared out (`val_f1`, …).
    pub objective: String,
    #[serde(flatten)]
    pub importance: importance::Importance,
}

impl SweepImportance {
    fn of(read: &rows::SweepRows) -> SweepImportance {
        SweepImportance {
            sweep: read.sweep.name.clone(),
            objective: read.objective_name(),
            importance: importance::analyse(&read.design()),
        }
    }
}

/// The importance of sweep `name`'s hyperparameters (`sweep importance`).
pub async fn sweep_importance(pool: &Pool, name: &str) -> Result<SweepImportance, ReportError> {
    // Importance reads trials only: no epochs (none are written after i64::MAX).
    let read = rows::load(pool, name, i64::MAX, None).await?;
    Ok(SweepImportance::of(&read))
}

/// Writes the report of sweep `name` into `out` and returns the files written.
pub async fn write_report(
    pool: &Pool,
    name: &str,
    out: &Path,
) -> Result<Vec<PathBuf>, ReportError> {
    register_font()?;
    let read = rows::load(pool, name, 0, None).await?;
    let mut trials = read.trials.clone();
    let epochs = read.epochs_by_trial();
    sweep_store::rank_best_first(&mut trials);
    let params: Vec<Params> = trials.iter().map(|t| t.summary.params.clone()).collect();
    let no_epochs = Vec::new();
    let trial_epochs: Vec<&Vec<sweep_store::EpochRow>> = trials
        .iter()
        .map(|t| epochs.get(&t.id).unwrap_or(&no_epochs))
        .collect();
    std::fs::create_dir_all(out).map_err(|error| ReportError::Io {
        path: out.to_path_buf(),
        error,
    })?;
    let mut written = Vec::new();

    let curves: Vec<Curve> = trials
        .iter()
        .zip(&trial_epochs)
        .map(|(t, e)| Curve {
            epochs: e,
            status: t.status,
        })
        .collect();
    let drawn = figures(&trials, &trial_epochs);
    for figure in lay_out(&params) {
        let suffix = figure.key.clone().unwrap_or_else(|| "all".into());
        let mut heading = figure
            .key
            .as_ref()
            .map(|k| format!("Performance with optimizer: {k}"))
            .unwrap_or_else(|| format!("Performance of sweep {name}"));
        if !figure.shared.is_empty() {
            heading = format!("{heading}, {}", figure.shared.join(" "));
        }
        for (metric, prefix, what) in &drawn {
            let path = out.join(format!("{prefix}_{suffix}.png"));
            curves::draw_figure(
                &path,
                &format!("{heading} ({what})"),
                &figure,
                &curves,
                metric,
            )?;
            written.push(path);
        }
    }
    if let Some(rows::Best {
        trial: best,
        cells: Some(cells),
    }) = &read.best
    {
        let classes = page::classes_of(best, cells);
        let path = out.join("confusion_best.png");
        let title = format!(
            "Confusion matrix of trial {} at epoch {}",
            best.number,
            best.best_epoch.unwrap_or(0)
        );
        confusion::draw_confusion(&path, &title, classes, cells)?;
        written.push(path);
    }
    let importance = SweepImportance::of(&read);
    if !importance.importance.shares.is_empty() {
        let path = out.join("importance.png");
        let title = format!("Which hyperparameters mattered to {}", importance.objective);
        importance_chart::draw_importance(&path, &title, &importance.importance)?;
        written.push(path);
    }

    // The optimisation history of a search sweep, whose trials' order matters.
    let searched = read.trials.iter().any(|t| {
        matches!(
            t.origin,
            Some(sweep_store::TrialOrigin::Startup | sweep_store::TrialOrigin::Model)
        )
    });
    let steps = history::best_so_far(&read.trials);
    if searched && !steps.is_empty() {
        let path = out.join("history.png");
        let metric = read.objective_name();
        let title = format!("Optimisation history of {name}: best {metric} so far");
        history::draw_history(&path, &title, &metric, &steps)?;
        written.push(path);
    }

    let mut axes: Vec<String> = params.iter().flat_map(|p| p.keys().cloned()).collect();
    axes.sort();
    axes.dedup();
    let lines: Vec<summary::Line> = trials
        .iter()
        .zip(&trial_epochs)
        .map(|(trial, epochs)| summary::Line { trial, epochs })
        .collect();
    let images: Vec<String> = written
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    for (file, text) in [
        (
            "summary.md",
            summary::markdown(
                name,
                &read.sweep.file_path,
                &lines,
                &axes,
                &importance.importance,
                &images,
            ),
        ),
        ("trials.csv", summary::csv(&lines, &axes)),
    ] {
        let path = out.join(file);
        std::fs::write(&path, text).map_err(|error| ReportError::Io {
            path: path.clone(),
            error,
        })?;
        written.push(path);
    }
    let path = out.join("report.html");
    let snapshot = page::snapshot_of(&read, 0);
    std::fs::write(&path, page::html(&snapshot, None)).map_err(|error| ReportError::Io {
        path: path.clone(),
        error,
    })?;
    written.push(path);
    Ok(written)
}

/// The learning-curve figures of a sweep: its metric, the file names' prefix and what the
/// title calls it. The built-in trainer's loss and validation macro F1; a sweep whose trials
/// report other metrics (command trials) gets its losses where it reports them and its
/// objective. A sweep with no epochs yet gets the built-in pair, empty.
fn figures(trials: &[TrialRow], epochs: &[&Vec<EpochRow>]) -> Vec<(Metric, String, String)> {
    let reported = |name: &str| {
        epochs
            .iter()
            .any(|es| es.iter().any(|e| e.metric(name).is_some()))
    };
    let any = epochs.iter().any(|es| !es.is_empty());
    let mut drawn = Vec::new();
    if !any || reported("train_loss") || reported("val_loss") {
        drawn.push((Metric::Loss, "loss".to_string(), "loss".to_string()));
    }
    if !any || reported("val_f1") {
        let what = "validation macro F1".to_string();
        drawn.push((Metric::val_f1(), "f1".to_string(), what));
    }
    let objective = trials.first().map(|t| t.summary.goal.metric.clone());
    if let Some(name) = objective.filter(|name| {
        any && reported(name) && !["val_f1", "train_loss", "val_loss"].contains(&name.as_str())
    }) {
        // Named for what it is, not for the metric, whose name may be anything.
        drawn.push((Metric::Named(name.clone()), "objective".to_string(), name));
    }
    drawn
}
