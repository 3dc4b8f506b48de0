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
    let ended = recorded.iter().take_while(|t| t.status.is_final()).count();
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use sweep_store::Param;

    fn file() -> SweepFile {
        file_with(
            "lr = { log_uniform = [1e-4, 1e-1] }\noptimizer = { choice = [\"adam\", \"sgd\"] }",
        )
    }

    /// A search of 8 trials, 2 at a time, over `dimensions`.
    fn file_with(dimensions: &str) -> SweepFile {
        let text = format!(
            "name = \"t\"\n[data]\nsynthetic = {{ classes = 3 }}\n\
             [search]\nmethod = \"tpe\"\ntrials = 8\nstartup = 2\nparallel = 2\n{dimensions}\n"
        );
        SweepFile::parse(Path::new("s.toml"), &text).unwrap()
    }

    /// The recorded row of a suggested trial, with `status` and `objective`.
    fn row(made: &Suggested, status: TrialStatus, objective: Option<f64>) -> TrialRow {
        let spec = &made.spec;
        TrialRow {
            id: spec.grid_index as i64 + 1,
            number: spec.grid_index as i64 + 1,
            grid_index: spec.grid_index as i64,
            summary: spec.config.summary(spec.params.clone()),
            config: String::new(),
            config_hash: spec.hash.clone(),
            status,
            until_epoch: None,
            device: None,
            attempts: 1,
            error: None,
            best_epoch: objective.map(|_| 1),
            objective,
            checkpoint: None,
            slurm_job: None,
            note: None,
            origin: Some(made.origin),
        }
    }

    /// The objective of a trial: best (largest) near lr = 0.003.
    fn objective(made: &Suggested) -> f64 {
        let Param::Float(lr) = made.spec.params["lr"] else {
            panic!("{:?}", made.spec.params);
        };
        -(lr.log10() + 2.5).powi(2)
    }

    #[test]
    fn extreme_bounds_give_valid_trials() {
        let file = file_with(
            "lr = { log_uniform = [1e-308, 1e308] }\nmomentum = { uniform = [0.0, 0.999999] }\n\
             bn_momentum = { uniform = [1e-300, 1.0] }\nneurons = { int = [1, 9223372036854775807], log = true }",
        );
        run_file(file, |_, _| 0);
        let text = "name = \"c\"\n[trial]\ncommand = [\"python3\", \"t.py\"]\nepochs = 1\n\
                    objective = \"loss\"\ndirection = \"minimize\"\n\
                    [params]\nlr = 0.0\nk = 1\n\
                    [search]\nmethod = \"tpe\"\ntrials = 8\nstartup = 2\nparallel = 2\n\
                    lr = { uniform = [-8e307, 8e307] }\n\
                    k = { int = [-9223372036854775808, 9223372036854775807] }\n";
        run_file(
            SweepFile::parse(Path::new("c.toml"), text).unwrap(),
            |_, _| 0,
        );
    }

    /// Runs the search to the end, ending the running trials in the order `pick` chooses
    /// among them (an index into those not ended); returns the trials' params in order.
    fn run(pick: impl Fn(usize, usize) -> usize) -> Vec<String> {
        run_file(file(), pick)
    }

    fn run_file(file: SweepFile, pick: impl Fn(usize, usize) -> usize) -> Vec<String> {
        let (mut rows, mut made) = (Vec::<TrialRow>::new(), Vec::new());
        let search = file.search.clone().unwrap();
        let goal = file.goal();
        for step in 0.. {
            for next in next_trials(&file, &search, &goal, &rows).unwrap() {
                rows.push(row(&next, TrialStatus::Running, None));
                made.push(next);
            }
            let running: Vec<usize> = (0..rows.len())
                .filter(|&i| rows[i].status == TrialStatus::Running)
                .collect();
            if running.is_empty() {
                break;
            }
            assert!(
                running.len() <= search.parallel,
                "at most `parallel` out at once"
            );
            let i = running[pick(step, running.len())];
            rows[i] = row(&made[i], TrialStatus::Done, Some(objective(&made[i])));
        }
        assert_eq!(rows.len(), 8);
        let origins: Vec<TrialOrigin> = made.iter().map(|m| m.origin).collect();
        assert_eq!(
            origins[..3],
            [TrialOrigin::Startup; 3],
            "2 results before the model"
        );
        assert!(origins[3..].iter().all(|&o| o == TrialOrigin::Model));
        made.iter()
            .map(|m| format!("{:?}", m.spec.params))
            .collect()
    }

    #[test]
    fn the_same_trials_come_in_the_same_order_whichever_ends_first() {
        let oldest_first = run(|_, _| 0);
        assert_eq!(run(|_, n| n - 1), oldest_first, "newest first");
        assert_eq!(run(|step, n| (step * 7 + 3) % n), oldest_first, "mixed");
    }

    #[test]
    fn a_trial_waits_for_the_trials_parallel_behind_it() {
        let (file, goal) = (file(), file().goal());
        let search = file.search.clone().unwrap();
        let first = next_trials(&file, &search, &goal, &[]).unwrap();
        assert_eq!(first.len(), 2, "trials 0 and 1 need nothing");
        let mut rows: Vec<TrialRow> = first
            .iter()
            .map(|m| row(m, TrialStatus::Running, None))
            .collect();
        rows[1] = row(&first[1], TrialStatus::Done, Some(0.5));
        assert!(
            next_trials(&file, &search, &goal, &rows)
                .unwrap()
                .is_empty(),
            "trial 2 waits for trial 0, though trial 1 ended"
        );
        rows[0] = row(&first[0], TrialStatus::Failed, None);
        let next = next_trials(&file, &search, &goal, &rows).unwrap();
        assert_eq!(next.len(), 2, "trials 2 and 3 once trials 0 and 1 ended");
        assert_eq!(next[0].spec.grid_index, 2);
    }

    #[test]
    fn the_startup_trials_are_the_random_tables_samples() {
        let search = file();
        let random_text = search.text.replace(
            "[search]\nmethod = \"tpe\"\ntrials = 8\nstartup = 2\nparallel = 2",
            "[random]\ntrials = 2",
        );
        let random = SweepFile::parse(Path::new("r.toml"), &random_text).unwrap();
        let drawn = crate::sweep_file::expand_grid(&random);
        let suggested = next_trials(
            &search,
            search.search.as_ref().unwrap(),
            &search.goal(),
            &[],
        )
        .unwrap();
        let hashes = |specs: Vec<&TrialSpec>| -> Vec<String> {
            specs.into_iter().map(|s| s.hash.clone()).collect()
        };
        assert_eq!(
            hashes(suggested.iter().map(|s| &s.spec).collect()),
            hashes(drawn.iter().collect())
        );
    }
}
