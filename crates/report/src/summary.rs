//! `summary.md` and `trials.csv`: every trial with its params, status, best epoch and
//! metrics, best first; the summary also has the importance table.

use std::fmt::Write;

use sweep_store::{EpochRow, Param, TrialRow, TrialStatus};

use crate::importance::Importance;

/// A trial with what the summary shows of it.
pub struct Line<'a> {
    pub trial: &'a TrialRow,
    pub epochs: &'a [EpochRow],
}

impl Line<'_> {
    /// The trial's value of a grid axis as the tables show it (empty without one).
    fn param(&self, axis: &str) -> String {
        let value = self.trial.summary.params.get(axis);
        value.map(Param::to_string).unwrap_or_default()
    }
}

fn best_epoch<'a>(line: &Line<'a>) -> Option<&'a EpochRow> {
    let best = line.trial.best_epoch?;
    line.epochs.iter().find(|e| e.epoch == best)
}

/// The metrics the tables show of each trial's best epoch: the built-in trainer's four, then
/// every other metric some trial reported (a command trial's own names), in name order.
fn metric_columns(lines: &[Line]) -> Vec<(String, String)> {
    let mut columns: Vec<(String, String)> = [
        ("val_f1", "val F1"),
        ("val_acc", "val acc"),
        ("val_loss", "val loss"),
        ("train_loss", "train loss"),
    ]
    .map(|(name, title)| (name.to_string(), title.to_string()))
    .to_vec();
    let mut others: Vec<&String> = lines
        .iter()
        .flat_map(|l| l.epochs.iter().flat_map(|e| e.metrics.keys()))
        .filter(|name| !sweep_store::METRIC_COLUMNS.contains(&name.as_str()))
        .collect();
    others.sort();
    others.dedup();
    columns.extend(others.into_iter().map(|name| (name.clone(), name.clone())));
    columns
}

fn fmt(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.4}")).unwrap_or_default()
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The CSV (quoted where needed): one row per trial, a column per grid axis.
pub fn csv(lines: &[Line], axes: &[String]) -> String {
    let quote = csv_field;
    let mut out = String::from("rank,trial");
    for axis in axes {
        out.push(',');
        out.push_str(&quote(axis));
    }
    let metrics = metric_columns(lines);
    out.push_str(",status,epochs,best_epoch,objective");
    for (name, _) in &metrics {
        out.push(',');
        out.push_str(&quote(name));
    }
    out.push_str(",device,attempts,error\n");
    for (rank, line) in lines.iter().enumerate() {
        let t = line.trial;
        let best = best_epoch(line);
        let _ = write!(out, "{},{}", rank + 1, t.number);
        for axis in axes {
            out.push(',');
            out.push_str(&quote(&line.param(axis)));
        }
        let _ = write!(
            out,
            ",{},{},{},{}",
            t.status,
            line.epochs.len(),
            t.best_epoch.map(|e| e.to_string()).unwrap_or_default(),
            fmt(t.objective),
        );
        for (name, _) in &metrics {
            let _ = write!(out, ",{}", fmt(best.and_then(|e| e.metric(name))));
        }
        let _ = writeln!(
            out,
            ",{},{},{}",
            t.device.as_deref().unwrap_or(""),
            t.attempts,
            quote(t.error_line())
        );
    }
    out
}

/// The Markdown summary.
pub fn markdown(
    sweep: &str,
    file_path: &str,
    lines: &[Line],
    axes: &[String],
    importance: &Importance,
    images: &[String],
) -> String {
    let count = |status: TrialStatus| lines.iter().filter(|l| l.trial.status == status).count();
    let mut out = format!(
        "# Sweep `{sweep}`\n\nSweep file: `{file_path}`. {} trials: ",
        lines.len()
    );
    let counts: Vec<String> = TrialStatus::ALL
        .into_iter()
        .map(|s| (s, count(s)))
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| format!("{n} {s}"))
        .collect();
    out.push_str(&counts.join(", "));
    out.push_str(".\n\n");
    let pruned = lines
        .iter()
        .any(|l| l.trial.until_epoch.is_some() || l.trial.status == TrialStatus::Stopped);
    if pruned {
        let trained: usize = lines.iter().map(|l| l.epochs.len()).sum();
        let full: u64 = lines
            .iter()
            .map(|l| u64::from(l.trial.summary.epochs))
            .sum();
        let _ = writeln!(
            out,
            "Pruning trained {trained} epochs of a full grid's {full} ({:.1}× fewer).\n",
            full as f64 / trained.max(1) as f64
        );
    }
    if let Some(best) = lines
        .first()
        .filter(|l| l.trial.status == TrialStatus::Done)
    {
        let params: Vec<String> = axes
            .iter()
            .filter_map(|a| best.trial.summary.params.get(a).map(|v| format!("{a}={v}")))
            .collect();
        let _ = writeln!(
            out,
            "Best: trial {} ({}), objective {} at epoch {}; checkpoint `{}`.\n",
            best.trial.number,
            params.join(" "),
            fmt(best.trial.objective),
            best.trial.best_epoch.unwrap_or(0),
            best.trial.checkpoint.as_deref().unwrap_or("")
        );
    }
    out.push_str("| rank | trial |");
    for axis in axes {
        let _ = write!(out, " {axis} |");
    }
    let metrics = metric_columns(lines);
    out.push_str(" status | epochs | best epoch | objective |");
    for (_, title) in &metrics {
        let _ = write!(out, " {title} |");
    }
    out.push_str("\n|");
    for _ in 0..axes.len() + 6 + metrics.len() {
        out.push_str(" --- |");
    }
    out.push('\n');
    for (rank, line) in lines.iter().enumerate() {
        let best = best_epoch(line);
        let _ = write!(out, "| {} | {} |", rank + 1, line.trial.number);
        for axis in axes {
            let _ = write!(out, " {} |", line.param(axis));
        }
        let _ = write!(
            out,
            " {} | {} | {} | {} |",
            line.trial.status,
            line.epochs.len(),
            line.trial
                .best_epoch
                .map(|e| e.to_string())
                .unwrap_or_default(),
            fmt(line.trial.objective),
        );
        for (name, _) in &metrics {
            let _ = write!(out, " {} |", fmt(best.and_then(|e| e.metric(name))));
        }
        out.push('\n');
    }
    importance_section(&mut out, importance);
    let failed: Vec<&Line> = lines
        .iter()
        .filter(|l| l.trial.error.is_some() && l.trial.status != TrialStatus::Done)
        .collect();
    if !failed.is_empty() {
        out.push_str("\n## Errors\n\n");
        for line in failed {
            let _ = writeln!(
                out,
                "- trial {}: {}",
                line.trial.number,
                line.trial
                    .error
                    .as_deref()
                    .unwrap_or("")
                    .lines()
                    .next()
                    .unwrap_or("")
            );
        }
    }
    if !images.is_empty() {
        out.push_str("\n## Plots\n\n");
        for image in images {
            let _ = writeln!(out, "![{image}]({image})");
        }
    }
    out
}

/// `## Importance`: how the shares were found, what was left out, and the shares.
fn importance_section(out: &mut String, importance: &Importance) {
    let _ = writeln!(
        out,
        "\n## Importance\n\nEach term's share of the objective's variance; {}.\n",
        importance.description
    );
    for line in &importance.left_out {
        let _ = writeln!(out, "- left out: {line}");
    }
    if !importance.left_out.is_empty() {
        out.push('\n');
    }
    if importance.shares.is_empty() {
        return;
    }
    out.push_str("| term | share | 95% interval |\n| --- | --- | --- |\n");
    for share in &importance.shares {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            share.term,
            share.percent(),
            share.interval_text()
        );
    }
}
