//! A `[search]` sweep's next trials, as a pure function of its recorded trials:
//! [`next_trials`] says which trials may be made now and what they are.
//!
//! Trial k (from 0) is made once trials `0..=k - parallel` have all ended (done, stopped or
//! failed), and its suggestion observes exactly those: the objective of each done one (negated
//! when maximised: the search minimises), with the trials after them as pending points (the
//! constant liar). So trial k's inputs are results every schedule has recorded by then, and a
//! sweep run twice, killed and resumed, or on Slurm, with any timing, makes the same trials in
//! the same order.

use sweep_search::{window, Origin, Point, SearchError, Tpe};
use sweep_store::{Direction, Goal, TrialOrigin, TrialRow, TrialStatus};

use crate::sweep_file::grid::{trial, TrialSpec, MAX_TRIALS};
use crate::sweep_file::{Search, SearchMethod, SweepFile};

/// How many times a suggestion that repeats a recorded trial's configuration (a small space
/// of choices) is drawn again, with another stream, before the search gives up on more trials.
const REDRAWS: usize = 100;

/// Why a search cannot suggest its next trial.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SuggestionError {
    /// A recorded trial's params are not a point of the file's `[search]` space.
    #[error("trial {number}'s params are outside the sweep file's `[search]` space (it changed since the trial was recorded): restore it, or search under another sweep name")]
    OutsideSpace { number: i64 },
    #[error("the search refused its own trials: {0}")]
    Search(#[from] SearchError),
}

/// A trial to record: where it comes in the search, what it is and how it was chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct Suggested {
    pub spec: TrialSpec,
    pub origin: TrialOrigin,
}

/// The trials the search may make now, in order, after `recorded` (the sweep's trials in
/// their order, `grid_index` 0, 1, …), judged by `goal`; none once `search.trials` are made.
/// Fewer when the space holds no new configuration.
pub fn next_trials(
    file: &SweepFile,
    search: &Search,
    goal: &Goal,
    recorded: &[TrialRow],
) -> Result<Vec<Suggested>, SuggestionError> {
    let SearchMethod::Tpe = search.method;
    let tpe = Tpe {
        startup: search.startup,
        ..Tpe::default()
    };
    let space = search.space();
    let ended = recorded
        .iter()
        .take_while(|t| t.status.is_final())
        .count();
    let mut points: Vec<Point> = recorded
        .iter()
        .map(|t| {
            search
                .point(&t.summary.params)
                .ok_or(SuggestionError::OutsideSpace { number: t.number })
        })
        .collect::<Result<_, _>>()?;
    let mut hashes: Vec<String> = recorded.iter().map(|t| t.config_hash.clone()).collect();
    let mut made = Vec::new();
    let mut k = recorded.len();
    while k < search.trials && window(k, search.parallel) <= ended {
        let seen = window(k, search.parallel);
        let observations: Vec<(Point, f64)> = recorded[..seen]
            .iter()
            .zip(&points)
            .filter(|(t, _)| t.status == TrialStatus::Done)
            .filter_map(|(t, point)| {
                let objective = t.objective?;
                let minimised = match goal.direction {
                    Direction::Minimise => objective,
                    Direction::Maximise => -objective,
                };
                Some((point.clone(), minimised))
            })
            .collect();
        let pending = &points[seen..];
        let mut fresh = None;
        for redraw in 0..REDRAWS {
            // A redraw's stream is labelled past any trial's index.
            let index = k + redraw * MAX_TRIALS;
            let suggestion = tpe.suggest(&space, search.seed, index, &observations, pending)?;
            let settings = search.settings(&suggestion.point);
            let spec = trial(file, k, settings.iter().map(|(key, s)| (*key, s)));
            if !hashes.contains(&spec.hash) {
                fresh = Some((spec, suggestion));
                break;
            }
        }
        let Some((spec, suggestion)) = fresh else {
            break;
        };
        let point = search
            .point(&spec.params)
            .expect("a rounded suggestion is a point of the space");
        points.push(point);
        hashes.push(spec.hash.clone());
        let origin = match suggestion.origin {
            Origin::Startup => TrialOrigin::Startup,
            Origin::Model => TrialOrigin::Model,
        };
        made.push(Suggested { spec, origin });
        k += 1;
    }
    Ok(made)
}
