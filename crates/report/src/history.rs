//! `history.png`: a search's optimisation history, each done trial's objective against its
//! number and the best objective so far as a step line; [`best_so_far`] computes it.

use std::path::Path;

use plotters::prelude::*;
use sweep_store::{TrialRow, TrialStatus};

use crate::{draw_err, ReportError};

/// One done trial of the history: its number, its objective, and the best objective of the
/// done trials up to it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    pub number: i64,
    pub objective: f64,
    pub best: f64,
}

/// The done trials of `trials` in the order of their numbers, each with the best objective
/// so far by its goal's direction (a trial that is not done, or has no objective, is left out).
pub fn best_so_far(trials: &[TrialRow]) -> Vec<Step> {
    let mut done: Vec<(i64, f64, sweep_store::Direction)> = trials
        .iter()
        .filter(|t| t.status == TrialStatus::Done)
        .filter_map(|t| Some((t.number, t.objective?, t.summary.goal.direction)))
        .filter(|(_, objective, _)| objective.is_finite())
        .collect();
    done.sort_by_key(|&(number, _, _)| number);
    let mut best: Option<f64> = None;
    done.into_iter()
        .map(|(number, objective, direction)| {
            let so_far = match best {
                Some(b) if !direction.better(objective, b) => b,
                _ => objective,
            };
            best = Some(so_far);
            Step {
                number,
                objective,
                best: so_far,
            }
        })
        .collect()
}

/// Draws `steps` (at least one) into a PNG at `path`: the objective `metric` of each trial
/// as a dot, the best so far as a line.
pub fn draw_history(
    path: &Path,
    title: &str,
    metric: &str,
    steps: &[Step],
) -> Result<(), ReportError> {
    let root = BitMapBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err)?;
    let last = steps.iter().map(|s| s.number).max().unwrap_or(1);
    let (mut lo, mut hi) = steps
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |r, s| {
            (r.0.min(s.objective), r.1.max(s.objective))
        });
    if lo >= hi {
        (lo, hi) = (lo - 0.5, hi + 0.5);
    }
    let pad = (hi - lo) * 0.05;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(0.5f64..last as f64 + 0.5, lo - pad..hi + pad)
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .x_desc("trial")
        .y_desc(metric)
        .x_labels((last as usize).clamp(2, 10))
        .x_label_formatter(&|v| match v.fract() {
            0.0 => format!("{v:.0}"),
            _ => String::new(),
        })
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 15))
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(TRANSPARENT)
        .draw()
        .map_err(draw_err)?;
    let dots = RGBColor(31, 119, 180);
    chart
        .draw_series(
            steps
                .iter()
                .map(|s| Circle::new((s.number as f64, s.objective), 3, dots.mix(0.6).filled())),
        )
        .map_err(draw_err)?
        .label("trial's objective")
        .legend(move |(x, y)| Circle::new((x + 10, y), 3, dots.filled()));
    let line = RGBColor(214, 39, 40);
    let mut points = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        if i > 0 {
            points.push((s.number as f64, steps[i - 1].best));
        }
        points.push((s.number as f64, s.best));
    }
    chart
        .draw_series(LineSeries::new(points, line.stroke_width(2)))
        .map_err(draw_err)?
        .label("best so far")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], line.stroke_width(2)));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(draw_err)?;
    root.present().map_err(draw_err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sweep_store::{Direction, Goal, TrialSummary};

    fn trial(number: i64, status: TrialStatus, objective: Option<f64>, minimise: bool) -> TrialRow {
        TrialRow {
            id: number,
            number,
            grid_index: number - 1,
            summary: TrialSummary {
                params: Default::default(),
                goal: Goal {
                    metric: "loss".into(),
                    direction: if minimise {
                        Direction::Minimise
                    } else {
                        Direction::Maximise
                    },
                },
                epochs: 1,
                classes: None,
            },
            config: String::new(),
            config_hash: format!("h{number}"),
            status,
            until_epoch: None,
            device: None,
            attempts: 1,
            error: None,
            best_epoch: None,
            objective,
            checkpoint: None,
            slurm_job: None,
            note: None,
            origin: None,
        }
    }

    #[test]
    fn the_best_so_far_follows_the_goals_direction_over_done_trials_in_number_order() {
        use TrialStatus::{Done, Failed};
        let trials = [
            trial(3, Done, Some(2.0), true),
            trial(1, Done, Some(5.0), true),
            trial(2, Failed, None, true),
            trial(4, Done, Some(4.0), true),
            trial(5, Done, Some(1.0), true),
        ];
        let steps: Vec<(i64, f64)> = best_so_far(&trials)
            .iter()
            .map(|s| (s.number, s.best))
            .collect();
        assert_eq!(steps, [(1, 5.0), (3, 2.0), (4, 2.0), (5, 1.0)], "minimised");
        let maximised: Vec<TrialRow> = trials
            .iter()
            .map(|t| trial(t.number, t.status, t.objective, false))
            .collect();
        let best: Vec<f64> = best_so_far(&maximised).iter().map(|s| s.best).collect();
        assert_eq!(best, [5.0, 5.0, 5.0, 5.0], "maximised");
    }
}
