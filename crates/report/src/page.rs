//! `report.html`: one self-contained page (script, style and data inline) with the trial
//! table, interactive curves per optimizer, parallel coordinates, the hyperparameters'
//! importance and a slice per hyperparameter, and the best trial's confusion matrix. [`Snapshot`] is the data the page draws; `sweep serve` serves the same
//! page with [`Live`] set, and the same [`Snapshot`] (only what is new) as the JSON it polls.
//!
//! The page is hand-written SVG and a little vanilla JavaScript, embedded with
//! `include_str!`: a chart library would be most of the file's weight (uPlot alone is ~50 KB,
//! more than the data of a 27-trial sweep), would still need our own table, filters, parallel
//! coordinates and confusion matrix, and would have to be vendored and kept up to date. The
//! plots here are a few hundred lines that build SVG elements with `textContent`, so no name
//! or value from the database is ever parsed as HTML.

use serde::Serialize;
use sweep_store::{Direction, Pool, TrialRow, TrialStatus};

use crate::importance::{self, Importance};
use crate::layout::{Params, FIGURE_AXIS};
use crate::pruning::pruning_note;
use crate::rows::{self, Best, SweepRows};
use crate::ReportError;

const TEMPLATE: &str = include_str!("../page/report.html");
const STYLE: &str = include_str!("../page/report.css");
const SCRIPT: &str = include_str!("../page/report.js");

/// What the page knows of a sweep: everything for `report.html` and a first load of `sweep
/// serve`; for a poll, the trials (their status changes) and only the epochs written since.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub sweep: String,
    /// Which sweep this is (its row id and creation time): a page that sees another key
    /// (the database was replaced) starts over.
    pub key: String,
    /// The metric trials are ranked by (`val_f1`, `val_acc` or `val_loss`).
    pub objective: String,
    pub minimise: bool,
    /// The grid's axes, sorted.
    pub axes: Vec<String>,
    /// The axis whose values split the curves into figures (`optimizer`).
    pub figure_axis: &'static str,
    pub trials: Vec<PageTrial>,
    /// The metrics of `epochs`' values, in order: the built-in trainer's losses, accuracy
    /// and F1, then any other metric of these epochs (a command trial's), by name.
    pub metrics: Vec<String>,
    /// `[trial id, epoch, [a value per metric, null where the epoch has none]]`, in write
    /// order, values rounded to 5 significant digits.
    pub epochs: Vec<(i64, i64, Vec<Option<f64>>)>,
    /// The write-order number of the last epoch row (what to poll `?after=`).
    pub last: i64,
    /// Which hyperparameters mattered: every trial's, recomputed at each poll.
    pub importance: Importance,
    /// The best trial's confusion matrix: absent when the poller already has it (same
    /// trial), `null` when no trial has finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confusion: Option<Option<PageConfusion>>,
}

/// A trial as the page's table shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PageTrial {
    pub id: i64,
    pub number: i64,
    pub params: Params,
    pub status: TrialStatus,
    /// Why it stands where it does: the pruning decision, or the failure's first line.
    pub note: Option<String>,
    pub best_epoch: Option<i64>,
    pub objective: Option<f64>,
    /// How it was chosen (`grid`, `random`, `startup`, `model`); `null` for an old trial.
    pub origin: Option<sweep_store::TrialOrigin>,
}

/// A trial's confusion matrix at its best epoch: non-zero `[actual, predicted, count]` cells.
#[derive(Debug, Clone, Serialize)]
pub struct PageConfusion {
    pub trial: i64,
    pub number: i64,
    pub epoch: Option<i64>,
    pub classes: usize,
    pub cells: Vec<(i64, i64, i64)>,
}

/// How a served page stays current: where it polls and how often.
#[derive(Debug, Clone, Serialize)]
pub struct Live {
    /// The JSON endpoint, polled with `?after=LAST&confusion=TRIAL`.
    pub poll: String,
    pub interval_ms: u64,
}

/// A number rounded to 5 significant digits: what a plot or a table needs, at about a third
/// of the JSON of a full `f64`.
fn short(v: f64) -> f64 {
    if !v.is_finite() || v == 0.0 {
        return v;
    }
    format!("{v:.4e}").parse().unwrap_or(v)
}

/// The number of classes of a trial's data: from its configuration, else from the matrix.
pub(crate) fn classes_of(trial: &TrialRow, cells: &[(i64, i64, i64)]) -> usize {
    trial
        .summary
        .classes
        .map(|c| c as usize)
        .unwrap_or_else(|| {
            cells
                .iter()
                .map(|&(t, p, _)| t.max(p) as usize + 1)
                .max()
                .unwrap_or(1)
        })
}

/// Reads sweep `name`: its trials, the epochs written after `after`, and the best trial's
/// confusion matrix unless it is trial `have_confusion` (which the caller already holds).
pub async fn snapshot(
    pool: &Pool,
    name: &str,
    after: i64,
    have_confusion: Option<i64>,
) -> Result<Snapshot, ReportError> {
    let read = rows::load(pool, name, after, have_confusion).await?;
    Ok(snapshot_of(&read, after))
}

/// The importance of `design`. `sweep serve` asks on every poll of every open page, and
/// the design changes only when a trial ends; the analysis is deterministic (1,000 bootstrap
/// resamples, 0.75 s at 10,000 random trials), so the last one is kept and reused while the
/// design is the same.
fn importance_of(design: importance::Design) -> importance::Importance {
    static LAST: std::sync::Mutex<Option<(importance::Design, importance::Importance)>> =
        std::sync::Mutex::new(None);
    let mut last = LAST
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match &*last {
        Some((seen, result)) if *seen == design => result.clone(),
        _ => {
            let result = importance::analyse(&design);
            *last = Some((design, result.clone()));
            result
        }
    }
}

/// The page's view of rows read with [`rows::load`] (`after` as they were read with).
pub(crate) fn snapshot_of(read: &SweepRows, after: i64) -> Snapshot {
    let SweepRows {
        sweep,
        trials: rows,
        decisions,
        epochs,
        best,
    } = read;
    let objective = read.objective_name();
    let minimise = rows
        .first()
        .is_some_and(|t| t.summary.goal.direction == Direction::Minimise);
    let trials: Vec<PageTrial> = rows
        .iter()
        .map(|t| PageTrial {
            id: t.id,
            number: t.number,
            params: t.summary.params.clone(),
            status: t.status,
            note: pruning_note(t, decisions.get(&t.id)).or_else(|| {
                (t.status != TrialStatus::Done && !t.error_line().is_empty())
                    .then(|| t.error_line().to_string())
            }),
            best_epoch: t.best_epoch,
            objective: t.objective,
            origin: t.origin,
        })
        .collect();
    let mut axes: Vec<String> = trials
        .iter()
        .flat_map(|t| t.params.keys().cloned())
        .collect();
    axes.sort();
    axes.dedup();
    let confusion = match best {
        Some(Best { cells: None, .. }) => None,
        Some(Best {
            trial: b,
            cells: Some(cells),
        }) => Some(Some(PageConfusion {
            trial: b.id,
            number: b.number,
            epoch: b.best_epoch,
            classes: classes_of(b, cells),
            cells: cells.clone(),
        })),
        None => Some(None),
    };
    let mut metrics: Vec<String> = ["train_loss", "val_loss", "val_acc", "val_f1"]
        .map(String::from)
        .to_vec();
    let mut others: Vec<&String> = epochs
        .iter()
        .flat_map(|e| e.row.metrics.keys())
        .filter(|name| !sweep_store::METRIC_COLUMNS.contains(&name.as_str()))
        .collect();
    others.sort();
    others.dedup();
    metrics.extend(others.into_iter().cloned());
    Snapshot {
        sweep: sweep.name.clone(),
        key: format!("{}@{}", sweep.id.0, sweep.created_at),
        objective,
        minimise,
        axes,
        figure_axis: FIGURE_AXIS,
        trials,
        importance: importance_of(read.design()),
        last: epochs.last().map_or(after, |e| e.seq),
        epochs: epochs
            .iter()
            .map(|e| {
                let values = metrics.iter().map(|m| e.row.metric(m).map(short));
                (e.trial_id, e.row.epoch, values.collect())
            })
            .collect(),
        metrics,
        confusion,
    }
}

/// JSON that is safe inside a `<script>` element: no `<`, `>` or `&` (so no `</script>` or
/// `<!--`) and no line separators, each written as its `\uXXXX` escape, which JSON reads back
/// as the same character.
pub fn script_json(value: &impl Serialize) -> String {
    serde_json::to_string(value)
        .expect("page data serialises")
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// The page for `snapshot`: offline (`live: None`) or polling `live`.
pub fn html(snapshot: &Snapshot, live: Option<&Live>) -> String {
    #[derive(Serialize)]
    struct Embedded<'a> {
        data: &'a Snapshot,
        live: Option<&'a Live>,
    }
    let data = script_json(&Embedded {
        data: snapshot,
        live,
    });
    // Each placeholder is replaced once, data last, so nothing in the data is ever a
    // placeholder.
    TEMPLATE
        .replacen("/*STYLE*/", STYLE, 1)
        .replacen("/*SCRIPT*/", SCRIPT, 1)
        .replacen("/*DATA*/", &data, 1)
}

/// Text for HTML made outside the page's script (`sweep serve`'s list of sweeps).
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_json_cannot_close_the_script_and_reads_back_the_same() {
        let name = "</script><script>alert(\"x\")</script> & <!-- \u{2028}";
        let text = script_json(&serde_json::json!({ "sweep": name }));
        assert!(!text.contains('<') && !text.contains('>') && !text.contains('&'));
        assert!(!text.contains('\u{2028}'));
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["sweep"], name);
    }

    #[test]
    fn numbers_keep_five_significant_digits() {
        assert_eq!(short(0.123456789), 0.12346);
        assert_eq!(short(1234.5678), 1234.6);
        assert_eq!(short(0.0), 0.0);
        assert!(short(f64::NAN).is_nan());
        assert_eq!(
            serde_json::to_string(&short(0.000123456)).unwrap(),
            "0.00012346"
        );
    }

    #[test]
    fn html_escapes_every_special_character() {
        assert_eq!(
            escape_html(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
