//! Ranking trials best first, in their goal's direction.

use crate::rows::{TrialRow, TrialStatus};

/// Orders trials best first: finished trials by their objective (in its direction), then
/// the others in grid order. What `sweep best` and `predict` pick from: a finished trial.
pub fn rank_best_first(trials: &mut [TrialRow]) {
    rank_by_score(trials, |t| {
        (t.status == TrialStatus::Done)
            .then_some(t.objective)
            .flatten()
    });
}

/// Orders trials best first by `score` (in their goal's direction, ties in grid order),
/// then those without a finite score in grid order. `sweep show` and `ls` score a trial that
/// pruning paused or stopped by its best epoch so far, as the report page does.
pub fn rank_by_score(trials: &mut [TrialRow], score: impl Fn(&TrialRow) -> Option<f64>) {
    // A sweep's trials share their goal: its objective is no hyperparameter.
    let Some(direction) = trials.first().map(|t| t.summary.goal.direction) else {
        return;
    };
    let scores: std::collections::HashMap<i64, f64> = trials
        .iter()
        .filter_map(|t| Some((t.id, score(t).filter(|v| v.is_finite())?)))
        .collect();
    trials.sort_by(|a, b| match (scores.get(&a.id), scores.get(&b.id)) {
        (Some(x), Some(y)) => direction
            .best_first(*x, *y)
            .then(a.grid_index.cmp(&b.grid_index)),
        (x, y) => y
            .is_some()
            .cmp(&x.is_some())
            .then(a.grid_index.cmp(&b.grid_index)),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::summary;

    #[test]
    fn trials_rank_by_score_whatever_their_status() {
        let row = |id: i64, status: TrialStatus, objective: Option<f64>| TrialRow {
            id,
            number: id,
            grid_index: id - 1,
            summary: summary(),
            config: "{}".into(),
            config_hash: format!("h{id}"),
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
        };
        // Stopped and paused trials carry no objective of their own: the score is given.
        let so_far = [(1, 0.52), (2, 0.19), (4, 0.82), (5, 0.52)];
        let mut trials = vec![
            row(1, TrialStatus::Stopped, None),
            row(2, TrialStatus::Stopped, None),
            row(3, TrialStatus::Done, Some(0.70)),
            row(4, TrialStatus::Paused, None),
            row(5, TrialStatus::Stopped, None),
            row(6, TrialStatus::Failed, None),
        ];
        let score = |t: &TrialRow| {
            t.objective
                .or_else(|| so_far.iter().find(|(id, _)| *id == t.id).map(|s| s.1))
        };
        rank_by_score(&mut trials, score);
        let order: Vec<i64> = trials.iter().map(|t| t.number).collect();
        assert_eq!(
            order,
            [4, 3, 1, 5, 2, 6],
            "ties in grid order, unscored last"
        );
        rank_best_first(&mut trials);
        let order: Vec<i64> = trials.iter().map(|t| t.number).collect();
        assert_eq!(
            order,
            [3, 1, 2, 4, 5, 6],
            "a finished trial first, then grid order"
        );
    }
}
