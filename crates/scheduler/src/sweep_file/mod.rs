//! A sweep's TOML file: [`SweepFile::load`] reads and validates it before anything is
//! written, and [`expand_grid`] turns it into [`TrialSpec`]s. Split by job: the [`schema`]
//! (what a file describes, and the [`TrialConfig`] a trial process reads), the table of
//! [`hyperparameters`], the line-aware [`reader`] and its [`error`]s, the [`grid`], the
//! [`random`] search drawn in each grid cell, the model-based [`search`] and the early
//! stopping rule ([`prune`]).

pub mod error;
pub mod grid;
pub mod hyperparameters;
pub mod prune;
pub mod random;
pub mod reader;
pub mod schema;
pub mod search;

use std::path::Path;

pub use error::{closest, Problem, SweepFileError};
pub use grid::{expand_grid, TrialSpec, MAX_TRIALS};

/// The largest sweep file read, in bytes: a grid of thousands of values fits many times.
pub const MAX_FILE_BYTES: u64 = 1 << 20;
pub use hyperparameters::{Param, Setting};
pub use prune::Prune;
pub use random::{Distribution, Random, RandomAxis};
pub use schema::{
    Axis, BuiltinConfig, CommandConfig, CommandTrial, DataSource, Devices, Executor, RunSettings,
    SlurmSettings, SweepFile, TrialConfig,
};
pub use search::{Search, SearchMethod};

impl SweepFile {
    /// Reads and validates the sweep file at `path`.
    /// A file larger than [`MAX_FILE_BYTES`] is refused unread.
    pub fn load(path: &Path) -> Result<Self, SweepFileError> {
        use std::io::Read;
        let error = |problem| SweepFileError {
            path: path.to_path_buf(),
            line: None,
            problem,
        };
        let file = std::fs::File::open(path).map_err(|e| error(Problem::Io(e)))?;
        let mut bytes = Vec::new();
        file.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| error(Problem::Io(e)))?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            let message = format!("larger than {} KiB: not a sweep file", MAX_FILE_BYTES >> 10);
            return Err(error(Problem::TooLarge(message)));
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
            SweepFileError {
                path: path.to_path_buf(),
                line: Some(line),
                problem: Problem::Syntax("not UTF-8 text".into()),
            }
        })?;
        Self::parse(path, &text)
    }

    /// Validates the text of a sweep file; `path` is used in errors and to resolve `data.dir`
    /// (relative to the directory the command runs in).
    pub fn parse(path: &Path, text: &str) -> Result<Self, SweepFileError> {
        reader::parse(path, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sweep_model::{Augment, OptimizerKind, ScheduleKind};

    const SEED_GRID: &str = r#"
name = "cnn"

[data]
dir = "data/generated-images"
augment = { rotation = 15.0, shift = 0.1, zoom = 0.1, hflip = true }

[model]
arch = "resnet"
filters = [64, 128, 256]
neurons = 32
dropout = 0.5

[train]
epochs = 20
batch_size = 64
optimizer = "adam"
lr = 0.001
seed = 42
objective = "val_f1"

[grid]
neurons = [64, 128, 256]
lr = [0.01, 0.005, 0.001]
optimizer = ["adam", "sgd", "rmsprop"]

[run]
devices = "auto"
trials_per_device = 2
"#;

    fn parse(text: &str) -> Result<SweepFile, SweepFileError> {
        SweepFile::parse(Path::new("s.toml"), text)
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    /// The seed grid with `old` replaced by `new`.
    fn edited(old: &str, new: &str) -> String {
        assert!(SEED_GRID.contains(old), "{old}");
        SEED_GRID.replacen(old, new, 1)
    }

    #[test]
    fn the_seed_grid_expands_to_27_trials_in_a_stable_order() {
        let file = parse(SEED_GRID).unwrap();
        assert_eq!(file.name, "cnn");
        assert_eq!(
            file.augment,
            Augment {
                rotation: 15.0,
                shift: 0.1,
                zoom: 0.1,
                hflip: true,
                ..Augment::default()
            }
        );
        assert_eq!(file.run.trials_per_device, 2);
        let trials = expand_grid(&file);
        assert_eq!(trials.len(), 27);
        assert_eq!(trials[0].params["neurons"], Param::Int(64));
        assert_eq!(trials[0].params["lr"], Param::Float(0.01));
        assert_eq!(trials[0].params["optimizer"], Param::Text("adam".into()));
        assert_eq!(
            trials[1].params["optimizer"],
            Param::Text("sgd".into()),
            "the last axis varies fastest"
        );
        assert_eq!(trials[26].config.builtin().unwrap().model.neurons, 256);
        assert_eq!(trials[26].config.builtin().unwrap().train.lr, 0.001);
        assert_eq!(
            trials[26].config.builtin().unwrap().train.optimizer,
            OptimizerKind::Rmsprop
        );
        assert_eq!(
            trials[26].config.builtin().unwrap().train.epochs,
            20,
            "the rest comes from the file"
        );
        let again = expand_grid(&parse(SEED_GRID).unwrap());
        assert_eq!(trials, again);
    }

    #[test]
    fn a_trials_summary_is_its_typed_params_and_its_configurations_goal() {
        use sweep_store::{Direction, Goal};
        let trial = &expand_grid(&parse(SEED_GRID).unwrap())[0];
        let summary = trial.config.summary(trial.params.clone());
        assert_eq!(
            summary.params["neurons"],
            Param::Int(64),
            "an integer stays one"
        );
        assert_eq!(summary.params["neurons"].to_string(), "64");
        assert_eq!(summary.params["lr"], Param::Float(0.01));
        let goal = Goal {
            metric: "val_f1".into(),
            direction: Direction::Maximise,
        };
        assert_eq!((&summary.goal, summary.epochs), (&goal, 20));
        assert_eq!(
            summary.classes, None,
            "a data folder's classes are its labels'"
        );
        let text = "name = \"s\"\n[data]\nsynthetic = { classes = 7 }\n\
                    [train]\nobjective = \"val_loss\"\n[grid]\nepochs = [2, 5]\n";
        let trials = expand_grid(&parse(text).unwrap());
        let summaries: Vec<_> = trials
            .iter()
            .map(|t| t.config.summary(t.params.clone()))
            .map(|s| (s.goal.metric, s.goal.direction, s.epochs, s.classes))
            .collect();
        assert_eq!(
            summaries,
            [
                ("val_loss".into(), Direction::Minimise, 2, Some(7)),
                ("val_loss".into(), Direction::Minimise, 5, Some(7))
            ]
        );
    }

    #[test]
    fn trial_count_is_the_product_of_axis_lengths_and_hashes_are_unique() {
        for (grid, count) in [
            ("neurons = [64]", 1),
            ("neurons = [1, 2, 3, 4]\nlr = [0.1, 0.2]", 8),
            ("lr = [0.1, 0.2, 0.3]\nbatch_size = [16, 32]\nseed = [1, 2]\narch = [\"mlp\", \"resnet\"]", 24),
        ] {
            let text = format!("{}[grid]\n{grid}\n", SEED_GRID.split("[grid]").next().unwrap());
            let trials = expand_grid(&parse(&text).unwrap());
            assert_eq!(trials.len(), count, "{grid}");
            let mut hashes: Vec<&str> = trials.iter().map(|t| t.hash.as_str()).collect();
            hashes.sort();
            hashes.dedup();
            assert_eq!(hashes.len(), count, "{grid}");
        }
        let no_grid = SEED_GRID.split("[grid]").next().unwrap();
        assert_eq!(
            expand_grid(&parse(no_grid).unwrap()).len(),
            1,
            "no grid: one trial"
        );
    }

    #[test]
    fn a_grown_axis_keeps_the_hashes_of_the_old_cells() {
        let old = expand_grid(&parse(SEED_GRID).unwrap());
        let grown = expand_grid(
            &parse(&edited(
                "lr = [0.01, 0.005, 0.001]",
                "lr = [0.01, 0.005, 0.001, 0.0005]",
            ))
            .unwrap(),
        );
        assert_eq!(grown.len(), 36);
        let grown_hashes: Vec<&str> = grown.iter().map(|t| t.hash.as_str()).collect();
        assert!(old.iter().all(|t| grown_hashes.contains(&t.hash.as_str())));
    }

    #[test]
    fn the_projects_sweep_files_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sweeps");
        for (name, trials) in [
            ("quick.toml", 12),
            ("cnn.toml", 27),
            ("cnn-final.toml", 1),
            ("mlp.toml", 27),
            ("cnn-halving.toml", 27),
            ("random.toml", 8),
        ] {
            let file = SweepFile::load(&dir.join(name)).unwrap();
            assert_eq!(expand_grid(&file).len(), trials, "{name}");
        }
        let halving = SweepFile::load(&dir.join("cnn-halving.toml")).unwrap();
        assert_eq!(
            halving.prune.map(|p| p.rungs(halving.train.epochs)),
            Some(vec![2, 6, 18, 20])
        );
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = error(&edited("epochs = 20", "epochs = = 20"));
        assert_eq!(err, "s.toml:15: extra `=`, expected nothing");
    }

    #[test]
    fn unknown_keys_name_the_line_and_the_closest_key() {
        let err = error(&edited("optimizer = \"adam\"", "optimiser = \"adam\""));
        assert_eq!(
            err,
            "s.toml:17: unknown key `train.optimiser` (did you mean `train.optimizer`?)"
        );
        let err = error(&edited("[run]", "[runs]"));
        assert_eq!(err, "s.toml:27: unknown key `runs` (did you mean `run`?)");
        let err = error(&edited("hflip = true", "flip = true"));
        assert!(
            err.starts_with(
                "s.toml:6: unknown key `data.augment.flip` (did you mean `data.augment.hflip`?)"
            ),
            "{err}"
        );
        let err = error(&edited("trials_per_device = 2", "colour = 2"));
        assert_eq!(err, "s.toml:29: unknown key `run.colour`");
    }

    #[test]
    fn slurm_settings_are_read_and_checked_with_their_line() {
        let slurm = |table: &str| format!("{SEED_GRID}executor = \"slurm\"\n[run.slurm]\n{table}");
        let file = parse(&slurm(
            "partition = \"gpu\"\ngpus_per_trial = 1\ncpus_per_trial = 4\nmem = \"16G\"\n\
             time = \"1-02:00:00\"\naccount = \"lab\"\nqos = \"normal\"\nmax_parallel = 8\narray_size = 100\n\
             sbatch_args = [\"--constraint=a100\"]\nwarning_seconds = 300\nmax_requeues = 2\n",
        ))
        .unwrap();
        assert_eq!(file.run.executor, Executor::Slurm);
        assert_eq!(
            file.run.slurm,
            SlurmSettings {
                partition: Some("gpu".into()),
                gpus_per_trial: 1,
                cpus_per_trial: 4,
                mem: Some("16G".into()),
                time: Some("1-02:00:00".into()),
                account: Some("lab".into()),
                qos: Some("normal".into()),
                max_parallel: Some(8),
                array_size: Some(100),
                sbatch_args: vec!["--constraint=a100".into()],
                warning_seconds: 300,
                max_requeues: 2,
            }
        );
        assert_eq!(
            error(&slurm("partiton = \"gpu\"\n")),
            "s.toml:32: unknown key `run.slurm.partiton` (did you mean `run.slurm.partition`?)"
        );
        assert_eq!(
            error(&slurm("mem = \"lots\"\n")),
            "s.toml:32: `run.slurm.mem` must be a size such as \"16G\" or \"4000M\", not \"lots\""
        );
        assert!(
            error(&slurm("time = \"2h\"\n")).starts_with("s.toml:32: `run.slurm.time` must be"),
        );
        assert!(error(&slurm("cpus_per_trial = 0\n"))
            .starts_with("s.toml:32: `run.slurm.cpus_per_trial`"));
        assert!(error(&slurm("sbatch_args = \"--x\"\n"))
            .starts_with("s.toml:32: `run.slurm.sbatch_args` must be a list"));
        // A count past a u32 was cut to its low 32 bits (4294967296 became 0); now refused.
        assert_eq!(
            error(&slurm("max_requeues = 4294967296\n")),
            "s.toml:32: `run.slurm.max_requeues`: 4294967296 is too large"
        );
        assert_eq!(
            error(&edited("trials_per_device = 2", "max_retries = 4294967297")),
            "s.toml:29: `run.max_retries`: 4294967297 is too large"
        );
        let err = error(&edited("trials_per_device = 2", "executor = \"slurn\""));
        assert_eq!(
            err,
            "s.toml:29: `run.executor` must be \"local\" or \"slurm\", not \"slurn\" (did you mean \"slurm\"?)"
        );
    }

    #[test]
    fn wrong_types_name_the_key() {
        let err = error(&edited("lr = 0.001", "lr = \"fast\""));
        assert_eq!(err, "s.toml:18: `train.lr` must be a number, not \"fast\"");
        let err = error(&edited("optimizer = \"adam\"", "optimizer = \"adagrad\""));
        assert_eq!(
            err,
            "s.toml:17: `train.optimizer` must be one of \"adam\", \"sgd\", \"rmsprop\", \"adamw\", not \"adagrad\""
        );
        let err = error(&edited("optimizer = \"adam\"", "optimizer = \"rmsprob\""));
        assert!(
            err.ends_with("not \"rmsprob\" (did you mean \"rmsprop\"?)"),
            "{err}"
        );
        let err = error(&edited("hflip = true", "hflip = \"yes\""));
        assert!(
            err.starts_with("s.toml:6: `data.augment.hflip` must be true or false, not \"yes\""),
            "{err}"
        );
        let err = error(&edited("devices = \"auto\"", "devices = \"gpu\""));
        assert!(err.starts_with("s.toml:28: `run.devices` must be"), "{err}");
        assert!(err.ends_with(", not \"gpu\""), "{err}");
    }

    #[test]
    fn out_of_range_values_name_the_key() {
        let err = error(&edited("lr = 0.001", "lr = 0"));
        assert_eq!(
            err,
            "s.toml:18: `train.lr`: must be a positive number, not 0"
        );
        let err = error(&edited("epochs = 20", "epochs = 0"));
        assert_eq!(err, "s.toml:15: `train.epochs`: must be at least 1, not 0");
        let err = error(&edited("dropout = 0.5", "dropout = 1.0"));
        assert_eq!(err, "s.toml:12: `model.dropout`: must be in [0, 1), not 1");
        let err = error(&edited("lr = [0.01, 0.005, 0.001]", "lr = [0.01,\n  -0.5]"));
        assert_eq!(
            err, "s.toml:25: `grid.lr`: must be a positive number, not -0.5",
            "the grid key and the value's own line"
        );
        let err = error(&edited("zoom = 0.1", "zoom = 1.5"));
        assert!(err.starts_with("s.toml:6: `data.augment.zoom`:"), "{err}");
    }

    #[test]
    fn weight_decay_and_nesterov_are_keys_axes_and_distributions_and_keep_old_hashes() {
        let old = expand_grid(&parse(SEED_GRID).unwrap());
        let zero = expand_grid(
            &parse(&edited(
                "seed = 42",
                "seed = 42\nweight_decay = 0\nnesterov = false",
            ))
            .unwrap(),
        );
        assert_eq!(
            hashes(&old),
            hashes(&zero),
            "keys at their defaults change no identity"
        );

        let text = edited(
            "seed = 42",
            "seed = 42\nweight_decay = 5e-4\nmomentum = 0.9",
        )
        .replace(
            "optimizer = [\"adam\", \"sgd\", \"rmsprop\"]",
            "optimizer = [\"sgd\", \"adamw\"]\nnesterov = [false, true]",
        );
        let trials = expand_grid(&parse(&text).unwrap());
        assert_eq!(trials.len(), 3 * 3 * 2 * 2);
        let train = &trials[1].config.builtin().unwrap().train;
        assert_eq!(
            (train.optimizer, train.weight_decay, train.nesterov),
            (OptimizerKind::Sgd, 5e-4, true)
        );
        assert!(trials
            .iter()
            .any(|t| t.config.builtin().unwrap().train.optimizer == OptimizerKind::Adamw));

        let err = error(&edited("seed = 42", "seed = 42\nweight_decay = -0.1"));
        assert!(
            err.starts_with("s.toml:20: `train.weight_decay`: must be a number of at least 0"),
            "{err}"
        );
        let err = error(&edited("seed = 42", "seed = 42\nnesterov = 1"));
        assert!(
            err.starts_with("s.toml:20: `train.nesterov` must be true or false"),
            "{err}"
        );

        let random = random_sweep(
            "",
            "trials = 3\nweight_decay = { log_uniform = [1e-5, 1e-2] }\n\
             nesterov = { choice = [true, false] }",
        );
        assert_eq!(random.random.unwrap().axes.len(), 2);
    }

    #[test]
    fn the_schedule_keys_are_keys_axes_and_distributions_checked_together_with_their_lines() {
        let old = expand_grid(&parse(SEED_GRID).unwrap());
        let constant = expand_grid(
            &parse(&edited("seed = 42", "seed = 42\nschedule = \"constant\"")).unwrap(),
        );
        assert_eq!(
            hashes(&old),
            hashes(&constant),
            "the constant schedule changes no identity"
        );

        let cosine = "seed = 42\nwarmup_epochs = 2\nmin_lr = 1e-5\nschedule = \"cosine\"";
        let trials = expand_grid(&parse(&edited("seed = 42", cosine)).unwrap());
        let train = &trials[0].config.builtin().unwrap().train;
        assert_eq!(
            (train.schedule, train.warmup_epochs, train.min_lr),
            (ScheduleKind::Cosine, Some(2), Some(1e-5)),
            "the keys may come before the schedule"
        );
        assert_ne!(hashes(&old), hashes(&trials));

        let err = error(&edited("seed = 42", "seed = 42\nschedule = \"cosin\""));
        assert_eq!(
            err,
            "s.toml:20: `train.schedule` must be one of \"constant\", \"cosine\", \"step\", \
             \"plateau\", \"onecycle\", not \"cosin\" (did you mean \"cosine\"?)"
        );
        let err = error(&edited("seed = 42", "seed = 42\nmax_lr = 0.1"));
        assert_eq!(
            err,
            "s.toml:20: `train.max_lr`: is for the schedule \"onecycle\", not \"constant\""
        );
        let err = error(&edited(
            "seed = 42",
            "seed = 42\nschedule = \"cosine\"\nstep_size = 3",
        ));
        assert_eq!(
            err,
            "s.toml:21: `train.step_size`: is for the schedule \"step\", not \"cosine\""
        );
        let err = error(&edited("seed = 42", "seed = 42\nschedule = \"step\""));
        assert_eq!(
            err,
            "s.toml:20: `train.schedule`: \"step\" needs `step_size`"
        );
        let err = error(&edited("seed = 42", "seed = 42\nmin_lr = -1"));
        assert_eq!(
            err,
            "s.toml:20: `train.min_lr`: must be a number of at least 0, not -1"
        );
        let err = error(&edited("seed = 42", "seed = 42\nfactor = 1.5"));
        assert_eq!(err, "s.toml:20: `train.factor`: must be in (0, 1), not 1.5");
        let err = error(&edited("seed = 42", "seed = 42\nwarmup_epochs = -1"));
        assert!(
            err.starts_with("s.toml:20: `train.warmup_epochs`: must be at least 0"),
            "{err}"
        );

        // A grid over schedules: each key read by one of them, kept by the others' trials.
        let text = edited("seed = 42", "seed = 42\nstep_size = 3\nmax_lr = 0.05").replace(
            "optimizer = [\"adam\", \"sgd\", \"rmsprop\"]",
            "schedule = [\"step\", \"onecycle\", \"cosine\"]",
        );
        let trials = expand_grid(&parse(&text).unwrap());
        assert_eq!(trials.len(), 3 * 3 * 3);
        let schedules: Vec<ScheduleKind> = trials[..3]
            .iter()
            .map(|t| t.config.builtin().unwrap().train.schedule)
            .collect();
        assert_eq!(
            schedules,
            [
                ScheduleKind::Step,
                ScheduleKind::Onecycle,
                ScheduleKind::Cosine
            ]
        );
        let without = text.replace("max_lr = 0.05", "");
        assert_eq!(
            error(&without),
            "s.toml:27: `grid.schedule`: \"onecycle\" needs `max_lr`"
        );
        let plateau_patience = text.replace("max_lr = 0.05", "plateau_patience = 2");
        assert!(
            error(&plateau_patience).starts_with(
                "s.toml:21: `train.plateau_patience`: is for the schedule \"plateau\", and none"
            ),
            "{}",
            error(&plateau_patience)
        );

        let random = random_sweep(
            "",
            "trials = 3\nschedule = { choice = [\"cosine\", \"plateau\"] }\n\
             min_lr = { log_uniform = [1e-6, 1e-4] }\nfactor = { uniform = [0.2, 0.5] }",
        );
        assert_eq!(random.random.unwrap().axes.len(), 3);
    }

    #[test]
    fn blocks_at_the_seeds_depth_keep_the_hashes_and_must_match_the_filters() {
        let old = expand_grid(&parse(SEED_GRID).unwrap());
        let two = "filters = [64, 128, 256]\nblocks = [2, 2, 2]";
        let same = expand_grid(&parse(&edited("filters = [64, 128, 256]", two)).unwrap());
        assert_eq!(hashes(&old), hashes(&same), "[2, 2, 2] is the seed's depth");

        let deep = "blocks = [3, 4, 6, 3]\nfilters = [64, 128, 256, 512]";
        let trials = expand_grid(&parse(&edited("filters = [64, 128, 256]", deep)).unwrap());
        assert_eq!(
            trials[0].config.builtin().unwrap().model.blocks,
            [3, 4, 6, 3],
            "in either order"
        );
        assert_ne!(hashes(&old), hashes(&trials));

        let short = "filters = [64, 128, 256]\nblocks = [3, 4, 6, 3]";
        assert_eq!(
            error(&edited("filters = [64, 128, 256]", short)),
            "s.toml:11: `model.blocks`: gives 4 stages, but model.filters [64, 128, 256] has 3: \
             one entry each per stage"
        );
        assert_eq!(
            error(&edited("filters = [64, 128, 256]", "blocks = [2, 0, 2]")),
            "s.toml:10: `model.blocks`: must be at least 1, not 0"
        );
        let gridded = SEED_GRID.replace(
            "neurons = [64, 128, 256]",
            "blocks = [[2, 2, 2], [1, 2, 3]]\nfilters = [[8, 16, 32], [8, 16]]",
        );
        assert_eq!(
            error(&gridded),
            "s.toml:23: `grid.blocks`: gives 3 stages, but model.filters [8, 16] has 2: one \
             entry each per stage"
        );
    }

    #[test]
    fn the_recipe_keys_are_read_and_checked_by_name() {
        let keras = "dropout = 0.5\ninit = \"keras\"\nbn_momentum = 0.01\nbn_eps = 1e-3";
        let text = edited("dropout = 0.5", keras)
            .replace("epochs = 20", "epochs = 20\neps = 1e-7")
            .replace("hflip = true", "hflip = true, fill = \"constant\"");
        let file = parse(&text).unwrap();
        let trial = &expand_grid(&file)[0];
        assert_eq!(
            trial.config.builtin().unwrap().model.init,
            sweep_model::WeightInit::Keras
        );
        assert_eq!(
            (
                trial.config.builtin().unwrap().model.bn_momentum,
                trial.config.builtin().unwrap().model.bn_eps
            ),
            (0.01, 1e-3)
        );
        assert_eq!(trial.config.builtin().unwrap().train.eps, 1e-7);
        assert_eq!(file.augment.fill, sweep_model::Fill::Constant);

        let err = error(&edited("dropout = 0.5", "dropout = 0.5\ninit = \"glorot\""));
        assert_eq!(
            err,
            "s.toml:13: `model.init` must be one of \"kaiming\", \"pytorch\", \"keras\", not \"glorot\""
        );
        let err = error(&edited("dropout = 0.5", "dropout = 0.5\nbn_momentum = 1.5"));
        assert!(err.starts_with("s.toml:13: `model.bn_momentum`:"), "{err}");
        assert!(err.contains("Keras's 0.99 is 0.01"), "{err}");
        let err = error(&edited("epochs = 20", "epochs = 20\neps = 0"));
        assert!(err.starts_with("s.toml:16: `train.eps`:"), "{err}");
        let err = error(&edited("hflip = true", "hflip = true, fill = \"zeros\""));
        assert!(
            err.starts_with(
                "s.toml:6: `data.augment.fill` must be \"nearest\" or \"constant\", not \"zeros\""
            ),
            "{err}"
        );
    }

    #[test]
    fn bad_grid_values_name_the_grid_key_the_value_and_what_is_expected() {
        let grid = |old: &str, new: &str| error(&edited(old, new));
        let optimizers = "optimizer = [\"adam\", \"sgd\", \"rmsprop\"]";
        assert_eq!(
            grid(optimizers, "optimizer = [\"adam\", \"rmsprob\"]"),
            "s.toml:25: `grid.optimizer` must be one of \"adam\", \"sgd\", \"rmsprop\", \"adamw\", \
             not \"rmsprob\" (did you mean \"rmsprop\"?)"
        );
        assert_eq!(
            grid(optimizers, "optimizer = [\"adam\", \"lbfgs\"]"),
            "s.toml:25: `grid.optimizer` must be one of \"adam\", \"sgd\", \"rmsprop\", \"adamw\", not \"lbfgs\"",
            "no hint when nothing is close"
        );
        assert_eq!(
            grid(optimizers, "optimizer = [\"adam\", 3]"),
            "s.toml:25: `grid.optimizer` must be one of \"adam\", \"sgd\", \"rmsprop\", \"adamw\", not 3"
        );
        let neurons = "neurons = [64, 128, 256]";
        assert_eq!(
            grid(neurons, "neurons = [64, \"x\"]"),
            "s.toml:23: `grid.neurons` must be an integer, not \"x\""
        );
        assert_eq!(
            grid(neurons, "neurons = [64, 1.5]"),
            "s.toml:23: `grid.neurons` must be an integer, not 1.5"
        );
        assert_eq!(
            grid(neurons, "neurons = [64, 0]"),
            "s.toml:23: `grid.neurons`: must be at least 1, not 0"
        );
        assert_eq!(
            grid(neurons, "arch = [\"mlp\", \"resnt\"]"),
            "s.toml:23: `grid.arch` must be one of \"mlp\", \"resnet\", not \"resnt\" \
             (did you mean \"resnet\"?)"
        );
        assert_eq!(
            grid(neurons, "filters = [[8, 16], [8, \"x\"]]"),
            "s.toml:23: `grid.filters` must be a list of integers, not [8, \"x\"]"
        );
        assert_eq!(
            grid(neurons, "dropout = [0.1, 1.5]"),
            "s.toml:23: `grid.dropout`: must be in [0, 1), not 1.5"
        );
        let lrs = "lr = [0.01, 0.005, 0.001]";
        assert_eq!(
            grid(lrs, "lr = [0.01,\n  \"fast\"]"),
            "s.toml:25: `grid.lr` must be a number, not \"fast\"",
            "the value's own line"
        );
        assert_eq!(
            grid(lrs, "lr = [[0.1,\n  0.2]]"),
            "s.toml:24: `grid.lr` must be a number, not [0.1, 0.2]",
            "a value over several lines is shown on one"
        );
    }

    #[test]
    fn empty_and_unknown_axes_are_refused() {
        let err = error(&edited("lr = [0.01, 0.005, 0.001]", "lr = []"));
        assert_eq!(err, "s.toml:24: `grid.lr` has no values");
        let err = error(&edited("lr = [0.01, 0.005, 0.001]", "colour = [1, 2]"));
        assert!(
            err.starts_with("s.toml:24: `grid.colour` is not a hyperparameter (grid axes: arch, "),
            "{err}"
        );
        let err = error(&edited("lr = [0.01, 0.005, 0.001]", "lrs = [0.1]"));
        assert_eq!(
            err,
            "s.toml:24: unknown key `grid.lrs` (did you mean `grid.lr`?)"
        );
        let err = error(&edited("lr = [0.01, 0.005, 0.001]", "lr = 0.1"));
        assert_eq!(
            err,
            "s.toml:24: `grid.lr` must be a list of values, not 0.1"
        );
    }

    #[test]
    fn missing_and_conflicting_sections_are_refused() {
        assert_eq!(
            error(&edited("name = \"cnn\"", "")),
            "s.toml: missing `name`"
        );
        let err = error(&edited(
            "dir = \"data/generated-images\"",
            "dir = \"d\"\nsynthetic = { classes = 3 }",
        ));
        assert!(err.contains("`data.synthetic`: give either"), "{err}");
        let err = error(&edited(
            "dir = \"data/generated-images\"",
            "synthetic = { classes = 300 }",
        ));
        assert!(
            err.starts_with(
                "s.toml:5: `data.synthetic.classes`: classes must be between 2 and 100"
            ),
            "{err}"
        );
    }

    /// The seed grid with `extra` (starting on line 30) after it.
    fn with(extra: &str) -> String {
        format!("{SEED_GRID}{extra}\n")
    }

    #[test]
    fn prune_tables_are_read_with_their_defaults() {
        assert_eq!(parse(SEED_GRID).unwrap().prune, None);
        for (table, prune) in [
            (
                "[prune]\nmethod = \"halving\"\nmin_epochs = 2",
                Prune::Halving {
                    min_epochs: 2,
                    reduction_factor: 3,
                },
            ),
            (
                "[prune]\nmethod = \"halving\"\nmin_epochs = 1\nreduction_factor = 2",
                Prune::Halving {
                    min_epochs: 1,
                    reduction_factor: 2,
                },
            ),
            (
                "prune = { method = \"median\" }",
                Prune::Median {
                    warmup_epochs: 1,
                    min_trials: 3,
                },
            ),
            (
                "[prune]\nmethod = \"median\"\nwarmup_epochs = 0\nmin_trials = 5",
                Prune::Median {
                    warmup_epochs: 0,
                    min_trials: 5,
                },
            ),
        ] {
            // A root key must come before the first table.
            let text = match table.strip_prefix("prune = ") {
                Some(_) => format!("{table}\n{SEED_GRID}"),
                None => with(table),
            };
            assert_eq!(parse(&text).unwrap().prune, Some(prune), "{table}");
        }
    }

    #[test]
    fn bad_prune_tables_name_the_line_and_the_key() {
        let halving = "[prune]\nmethod = \"halving\"\n";
        for (table, message) in [
            (
                "[prune]\nmin_epochs = 2",
                "s.toml:30: missing `prune.method`",
            ),
            (
                "[prune]\nmethod = \"halfing\"",
                "s.toml:31: `prune.method` must be \"halving\" or \"median\", not \"halfing\" \
                 (did you mean \"halving\"?)",
            ),
            (
                "[prune]\nmethod = 3",
                "s.toml:31: `prune.method` must be \"halving\" or \"median\", not 3",
            ),
            (
                &format!("{halving}min_epoch = 2"),
                "s.toml:32: unknown key `prune.min_epoch` (did you mean `prune.min_epochs`?)",
            ),
            (
                &format!("{halving}min_epochs = 1.5"),
                "s.toml:32: `prune.min_epochs` must be an integer, not 1.5",
            ),
            (
                &format!("{halving}min_epochs = 0"),
                "s.toml:32: `prune.min_epochs`: must be at least 1, not 0",
            ),
            (
                &format!("{halving}min_epochs = 1\nreduction_factor = 1"),
                "s.toml:33: `prune.reduction_factor`: must be at least 2, not 1",
            ),
            (
                &format!("{halving}min_epochs = 1\nmin_trials = 2"),
                "s.toml:33: `prune.min_trials`: a key of method \"median\", not of \"halving\"",
            ),
            (halving, "s.toml:30: missing `prune.min_epochs`"),
            (
                "[prune]\nmethod = \"median\"\nreduction_factor = 2",
                "s.toml:32: `prune.reduction_factor`: a key of method \"halving\", not of \"median\"",
            ),
            (
                "[prune]\nmethod = \"median\"\nmin_trials = 0",
                "s.toml:32: `prune.min_trials`: must be at least 1, not 0",
            ),
            (
                "[prune]\nmethod = \"median\"\nwarmup_epochs = -1",
                "s.toml:32: `prune.warmup_epochs`: must be at least 0, not -1",
            ),
            (
                "[prune]\nmethod = \"median\"\nwarmup_epochs = 5000000000",
                "s.toml:32: `prune.warmup_epochs`: 5000000000 is too large",
            ),
            (
                "[prunes]\nmethod = \"median\"",
                "s.toml:30: unknown key `prunes` (did you mean `prune`?)",
            ),
        ] {
            assert_eq!(error(&with(table)), message, "{table}");
        }
    }

    /// A sweep on synthetic data with `grid` and `random` tables.
    fn random_sweep(grid: &str, random: &str) -> SweepFile {
        let text = format!(
            "name = \"r\"\n[data]\nsynthetic = {{ classes = 3 }}\n[train]\nseed = 5\n\
             {grid}\n[random]\n{random}\n"
        );
        parse(&text).unwrap()
    }

    fn hashes(trials: &[TrialSpec]) -> Vec<&str> {
        trials.iter().map(|t| t.hash.as_str()).collect()
    }

    #[test]
    fn random_tables_read_every_distribution() {
        let file = random_sweep(
            "",
            "trials = 4\n\
             lr = { log_uniform = [1e-4, 1e-1] }\n\
             dropout = { uniform = [0.0, 0.6] }\n\
             neurons = { int = [16, 256], log = true }\n\
             batch_size = { int = [16, 64] }\n\
             optimizer = { choice = [\"adam\", \"sgd\"] }\n\
             filters = { choice = [[8, 16], [16, 32]] }\n\
             block_dense = { choice = [true, false] }",
        );
        let random = file.random.unwrap();
        assert_eq!(
            (random.trials, random.seed),
            (4, 5),
            "the seed is train.seed"
        );
        let distributions: Vec<(&str, &Distribution)> = random
            .axes
            .iter()
            .map(|a| (a.key.as_str(), &a.distribution))
            .collect();
        assert_eq!(
            distributions[..4],
            [
                (
                    "lr",
                    &Distribution::LogUniform {
                        low: 1e-4,
                        high: 1e-1
                    }
                ),
                (
                    "dropout",
                    &Distribution::Uniform {
                        low: 0.0,
                        high: 0.6
                    }
                ),
                (
                    "neurons",
                    &Distribution::Int {
                        low: 16,
                        high: 256,
                        log: true
                    }
                ),
                (
                    "batch_size",
                    &Distribution::Int {
                        low: 16,
                        high: 64,
                        log: false
                    }
                ),
            ]
        );
        let Distribution::Choice(filters) = distributions[5].1 else {
            panic!("{distributions:?}");
        };
        assert_eq!(filters[1].param, Param::Ints(vec![16, 32]));
        let seeded = random_sweep("", "trials = 1\nseed = 0\nlr = { uniform = [0.1, 0.2] }");
        assert_eq!(seeded.random.unwrap().seed, 0);
        let table = random_sweep("", "trials = 1\n[random.lr]\nlog_uniform = [0.1, 0.2]");
        assert_eq!(
            table.random.unwrap().axes[0].distribution,
            Distribution::LogUniform {
                low: 0.1,
                high: 0.2
            },
            "a table of its own"
        );
    }

    #[test]
    fn bad_random_tables_name_the_line_and_the_key() {
        let random = "[random]\ntrials = 2\n";
        for (table, message) in [
            (
                "[random]\nbatch_size = { int = [2, 4] }",
                "s.toml:30: missing `random.trials`",
            ),
            (
                "[random]\ntrials = 0\nbatch_size = { int = [2, 4] }",
                "s.toml:31: `random.trials`: must be at least 1, not 0",
            ),
            (
                "[random]\ntrials = 2.5\nbatch_size = { int = [2, 4] }",
                "s.toml:31: `random.trials` must be an integer, not 2.5",
            ),
            (
                "[random]\ntrials = 2\nseed = -1\nmomentum = { uniform = [0, 0.5] }",
                "s.toml:32: `random.seed`: must be at least 0, not -1",
            ),
            (
                random,
                "s.toml:30: `random`: draws no hyperparameter: add one, such as \
                 lr = { log_uniform = [0.0001, 0.1] }",
            ),
            (
                "[random]\ntrails = 2",
                "s.toml:31: unknown key `random.trails` (did you mean `random.trials`?)",
            ),
            (
                &format!("{random}dropuot = {{ uniform = [0, 0.5] }}"),
                "s.toml:32: unknown key `random.dropuot` (did you mean `random.dropout`?)",
            ),
            (
                &format!("{random}objective = {{ choice = [\"val_loss\"] }}"),
                "s.toml:32: `random.objective` is not a hyperparameter (grid axes: arch, \
                 filters, blocks, neurons, hidden, dropout, block_dense, init, bn_momentum, bn_eps, \
                 epochs, batch_size, optimizer, lr, momentum, seed, eps, weight_decay, nesterov, label_smoothing, patience, \
                 schedule, warmup_epochs, min_lr, step_size, gamma, factor, plateau_patience, max_lr)",
            ),
            (
                &format!("{random}lr = {{ log_uniform = [1e-4, 1e-1] }}"),
                "s.toml:32: `random.lr` is also a grid axis (`grid.lr`, line 24): a \
                 hyperparameter is either gridded or drawn",
            ),
            (
                &format!("{random}batch_size = {{ uniform = [16, 64] }}"),
                "s.toml:32: `random.batch_size.uniform`: `batch_size` takes integers: draw it \
                 from { int = [low, high] } or { choice = [values] }",
            ),
            (
                &format!("{random}dropout = {{ int = [0, 1] }}"),
                "s.toml:32: `random.dropout.int`: `dropout` takes numbers: draw it from \
                 { uniform = [low, high] }, { log_uniform = [low, high] } or { choice = [values] }",
            ),
            (
                &format!("{random}arch = {{ uniform = [0, 1] }}"),
                "s.toml:32: `random.arch.uniform`: `arch` takes names: draw it from \
                 { choice = [values] }",
            ),
            (
                &format!("{random}dropout = {{ uniform = [0.0, 1.5] }}"),
                "s.toml:32: `random.dropout`: must be in [0, 1), not 1.5",
            ),
            (
                &format!("{random}momentum = {{ uniform = [0.1,\n  -0.5] }}"),
                "s.toml:33: `random.momentum`: must be in [0, 1), not -0.5",
            ),
            (
                &format!("{random}momentum = {{ log_uniform = [0, 0.9] }}"),
                "s.toml:32: `random.momentum.log_uniform`: bounds must be positive, not 0",
            ),
            (
                &format!("{random}momentum = {{ uniform = [0.5, 0.5] }}"),
                "s.toml:32: `random.momentum.uniform`: low must be below high, not [0.5, 0.5]",
            ),
            (
                &format!("{random}momentum = {{ uniform = [0.1] }}"),
                "s.toml:32: `random.momentum.uniform` must be [low, high], not [0.1]",
            ),
            (
                &format!("{random}momentum = {{ uniform = 0.1 }}"),
                "s.toml:32: `random.momentum.uniform` must be [low, high], not 0.1",
            ),
            (
                &format!("{random}batch_size = {{ int = [16.5, 64] }}"),
                "s.toml:32: `random.batch_size` must be an integer, not 16.5",
            ),
            (
                &format!("{random}batch_size = {{ int = [1, 64] }}"),
                "s.toml:32: `random.batch_size`: must be at least 2, not 1",
            ),
            (
                &format!("{random}batch_size = {{ int = [64, 16] }}"),
                "s.toml:32: `random.batch_size.int`: low must not be above high, not [64, 16]",
            ),
            (
                &format!("{random}batch_size = {{ int = [2, 16], log = 1 }}"),
                "s.toml:32: `random.batch_size.log` must be true or false, not 1",
            ),
            (
                &format!("{random}momentum = {{ uniform = [0.1, 0.5], log = true }}"),
                "s.toml:32: `random.momentum.log`: only for `int`; for numbers use `log_uniform`",
            ),
            (
                &format!("{random}momentum = {{ uniform = [0.1, 0.5], choice = [0.1] }}"),
                "s.toml:32: `random.momentum`: give one distribution, not `uniform` and `choice`",
            ),
            (
                &format!("{random}momentum = {{ unifrom = [0.1, 0.5] }}"),
                "s.toml:32: unknown key `random.momentum.unifrom` (did you mean \
                 `random.momentum.uniform`?)",
            ),
            (
                &format!("{random}momentum = {{}}"),
                "s.toml:32: `random.momentum`: give a distribution: { uniform = [low, high] }, \
                 { log_uniform = [low, high] } or { choice = [values] }",
            ),
            (
                &format!("{random}momentum = [0.1, 0.5]"),
                "s.toml:32: `random.momentum` must be a distribution ({ uniform = [low, high] }, \
                 { log_uniform = [low, high] } or { choice = [values] }), not [0.1, 0.5]",
            ),
            (
                &format!("{random}arch = {{ choice = [\"mlp\", \"resnt\"] }}"),
                "s.toml:32: `random.arch` must be one of \"mlp\", \"resnet\", not \"resnt\" \
                 (did you mean \"resnet\"?)",
            ),
            (
                &format!("{random}arch = {{ choice = [] }}"),
                "s.toml:32: `random.arch.choice` has no values",
            ),
            (
                &format!("{random}filters = {{ choice = [[8, 16],\n  [0, 32]] }}"),
                "s.toml:33: `random.filters`: must be at least 1, not 0",
            ),
            (
                &format!("{random}[random.momentum]\nuniform = [0.1, 0.5]\nlog = true"),
                "s.toml:34: `random.momentum.log`: only for `int`; for numbers use `log_uniform`",
            ),
        ] {
            assert_eq!(error(&with(table)), message, "{table}");
        }
    }

    #[test]
    fn random_samples_join_every_grid_cell_cell_major() {
        let grid = "[grid]\nlr = [0.1, 0.2, 0.3]\noptimizer = [\"adam\", \"sgd\"]";
        let random = "trials = 4\ndropout = { uniform = [0.0, 0.6] }\n\
                      neurons = { int = [16, 256], log = true }";
        let trials = expand_grid(&random_sweep(grid, random));
        assert_eq!(trials.len(), 6 * 4, "cells × samples");
        assert_eq!(
            hashes(&trials)
                .iter()
                .collect::<std::collections::HashSet<_>>()
                .len(),
            24
        );
        for (i, trial) in trials.iter().enumerate() {
            assert_eq!(trial.grid_index, i);
            let (cell, sample) = (i / 4, i % 4);
            let first_of_cell = &trials[cell * 4];
            assert_eq!(trial.params["lr"], first_of_cell.params["lr"], "cell-major");
            assert_eq!(trial.params["optimizer"], first_of_cell.params["optimizer"]);
            for key in ["dropout", "neurons"] {
                assert_eq!(
                    trial.params[key], trials[sample].params[key],
                    "sample {sample} is the same in every cell"
                );
            }
        }
        let Param::Float(dropout) = trials[0].params["dropout"] else {
            panic!("{:?}", trials[0].params);
        };
        assert_eq!(
            trials[0].config.builtin().unwrap().model.dropout,
            dropout,
            "the drawn value is used"
        );
        assert_eq!(
            expand_grid(&random_sweep("", random)).len(),
            4,
            "without a grid, the samples alone"
        );
    }

    #[test]
    fn raising_random_trials_keeps_the_first_samples_and_their_hashes() {
        let grid = "[grid]\noptimizer = [\"adam\", \"sgd\"]";
        let random = |n: usize| {
            format!(
                "trials = {n}\nlr = {{ log_uniform = [1e-4, 1e-1] }}\n\
                 neurons = {{ int = [16, 256] }}"
            )
        };
        let twenty = expand_grid(&random_sweep(grid, &random(20)));
        let forty = expand_grid(&random_sweep(grid, &random(40)));
        assert_eq!((twenty.len(), forty.len()), (40, 80));
        for cell in 0..2 {
            assert_eq!(
                hashes(&twenty[cell * 20..][..20]),
                hashes(&forty[cell * 40..][..20]),
                "cell {cell}"
            );
            assert_eq!(twenty[cell * 20].params, forty[cell * 40].params);
        }
        let again = expand_grid(&random_sweep(grid, &random(20)));
        assert_eq!(
            hashes(&twenty),
            hashes(&again),
            "the same seed, the same samples"
        );
        let explicit = expand_grid(&random_sweep(grid, &format!("seed = 5\n{}", random(20))));
        assert_eq!(hashes(&twenty), hashes(&explicit), "the seed is train.seed");
        let reseeded = expand_grid(&random_sweep(grid, &format!("seed = 6\n{}", random(20))));
        let old = hashes(&twenty);
        assert!(
            hashes(&reseeded).iter().all(|h| !old.contains(h)),
            "another seed, other samples"
        );
    }

    #[test]
    fn repeated_draws_are_one_trial() {
        let trials = expand_grid(&random_sweep(
            "",
            "trials = 50\noptimizer = { choice = [\"adam\", \"sgd\", \"rmsprop\"] }",
        ));
        let mut drawn: Vec<&Param> = trials.iter().map(|t| &t.params["optimizer"]).collect();
        assert_eq!(drawn.len(), 3, "{drawn:?}");
        drawn.dedup();
        assert_eq!(drawn.len(), 3);
        assert_eq!(
            trials.iter().map(|t| t.grid_index).collect::<Vec<_>>(),
            [0, 1, 2]
        );
    }

    #[test]
    fn sbatch_args_cannot_set_what_sweep_sets() {
        let slurm = |args: &str| {
            let text =
                format!("{SEED_GRID}executor = \"slurm\"\n[run.slurm]\nsbatch_args = {args}\n");
            parse(&text).map(|f| f.run.slurm.sbatch_args)
        };
        assert_eq!(
            slurm("[\"--constraint=a100\", \"--exclusive\"]").unwrap(),
            ["--constraint=a100", "--exclusive"]
        );
        for (arg, option) in [
            ("--output=/home/someone/.bashrc", "--output"),
            ("--output", "--output"),
            ("-o/tmp/x", "--output"),
            ("--chdir=/", "--chdir"),
            ("-D", "--chdir"),
            ("--wrap=rm -rf ~", "--wrap"),
            ("--array=0-100000", "--array"),
            ("--error=/tmp/e", "--error"),
        ] {
            let error = slurm(&format!("[\"--exclusive\", {arg:?}]"))
                .unwrap_err()
                .to_string();
            assert!(
                error.starts_with("s.toml:32: `run.slurm.sbatch_args`: ")
                    && error.contains(&format!("sets sbatch's `{option}`")),
                "{arg}: {error}"
            );
        }
        assert!(slurm("[\"--outputs\"]").is_ok(), "only the option itself");
    }

    const COMMAND: &str = r#"name = "own"

[trial]
command = ["python3", "train.py", "--lr={lr}", "{optimizer}"]
epochs = 20
objective = "val_acc"
direction = "maximize"

[params]
lr = 0.001
optimizer = "adam"
width = 64

[grid]
lr = [0.01, 1]
width = [32, 64]
"#;

    #[test]
    fn a_command_sweep_grids_over_its_params_and_each_trial_has_all_of_them() {
        let file = parse(COMMAND).unwrap();
        let command = file.command.as_ref().unwrap();
        assert_eq!(command.epochs, 20);
        assert_eq!(file.epochs(), 20);
        assert_eq!(file.goal().metric, "val_acc");
        assert!(command.resumable, "by default");
        let trials = expand_grid(&file);
        assert_eq!(trials.len(), 4);
        assert_eq!(
            trials[2].params["lr"],
            Param::Float(1.0),
            "a number axis keeps numbers"
        );
        let TrialConfig::Command(config) = &trials[2].config else {
            panic!("a command trial");
        };
        assert_eq!(config.params["width"], Param::Int(32));
        assert_eq!(
            config.params["optimizer"],
            Param::Text("adam".into()),
            "its default"
        );
        assert_eq!(
            crate::command::contract::substitute(&config.command, &config.params).unwrap(),
            ["python3", "train.py", "--lr=1.0", "adam"]
        );
        let summary = trials[2].config.summary(trials[2].params.clone());
        assert_eq!((summary.epochs, summary.classes), (20, None));
        // The identity is the command, the params and the goal, not the folder it runs in.
        let mut moved = trials[2].config.clone();
        if let TrialConfig::Command(c) = &mut moved {
            c.workdir = "/elsewhere".into();
        }
        assert_eq!(moved.identity(), trials[2].config.identity());
        let json = serde_json::to_string(&trials[2].config).unwrap();
        let back = crate::trial::read_config(Path::new("config.json"), &json).unwrap();
        assert_eq!(
            back, trials[2].config,
            "config.json reads back as a command trial"
        );
    }

    #[test]
    fn a_command_sweeps_mistakes_are_refused_with_their_line_and_key() {
        let edited = |old: &str, new: &str| {
            assert!(COMMAND.contains(old), "{old}");
            error(&COMMAND.replacen(old, new, 1))
        };
        for (old, new, message) in [
            (
                "\"{optimizer}\"]",
                "\"{optimiser}\"]",
                "s.toml:4: `trial.command`: `{optimiser}` is not a key of `[params]` (did you mean `{optimizer}`?)",
            ),
            ("--lr={lr}", "--lr={lr", "s.toml:4: `trial.command`: `{` without its `}`"),
            ("epochs = 20\n", "", "s.toml:3: missing `trial.epochs`"),
            (
                "direction = \"maximize\"",
                "direction = \"up\"",
                "s.toml:7: `trial.direction` must be \"maximize\" or \"minimize\", not \"up\"",
            ),
            (
                "width = [32, 64]",
                "depth = [1, 2]",
                "s.toml:16: `grid.depth` is not a hyperparameter (grid axes: lr, optimizer, width)",
            ),
            (
                "width = [32, 64]",
                "width = [32, \"wide\"]",
                "s.toml:16: `grid.width` must be an integer, not \"wide\"",
            ),
            (
                "lr = [0.01, 1]",
                "lr = [0.01, \"fast\"]",
                "s.toml:15: `grid.lr` must be a number, not \"fast\"",
            ),
            (
                "width = 64",
                "width = { a = 1 }",
                "s.toml:12: `params.width` must be a number, a string, true or false, or a list of integers",
            ),
            (
                "[params]",
                "[model]\nneurons = 3\n[params]",
                "s.toml:9: `model`: configures the built-in trainer",
            ),
            (
                "objective = \"val_acc\"",
                "objective = \"val_acc\"\nfiles = [\"no-such-file.py\"]",
                "s.toml:7: `trial.files`: cannot read \"no-such-file.py\"",
            ),
        ] {
            let got = edited(old, new);
            assert!(got.starts_with(message), "{new}:\n{got}\nnot\n{message}");
        }
        let builtin = SEED_GRID.replace("[grid]", "[params]\nwidth = 3\n[grid]");
        assert!(
            error(&builtin).contains("`params`: is for a command trial's params"),
            "{}",
            error(&builtin)
        );
    }

    #[test]
    fn a_command_trials_identity_follows_the_files_it_names() {
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("train.py");
        std::fs::write(&program, "print(1)\n").unwrap();
        let text = COMMAND.replace(
            "epochs = 20",
            &format!("epochs = 20\nfiles = [{:?}]", program.display().to_string()),
        );
        let hashes = || -> Vec<String> {
            expand_grid(&parse(&text).unwrap())
                .into_iter()
                .map(|t| t.hash)
                .collect()
        };
        let before = hashes();
        assert_eq!(before, hashes(), "the same files, the same trials");
        std::fs::write(&program, "print(2)\n").unwrap();
        let after = hashes();
        assert!(
            before.iter().zip(&after).all(|(a, b)| a != b),
            "an edited program is new trials"
        );
    }

    /// A sweep on synthetic data with `table` after its `[train]` (seed 5) and `[run]`.
    fn search_sweep(table: &str) -> String {
        format!(
            "name = \"t\"\n[data]\nsynthetic = {{ classes = 3 }}\n[train]\nseed = 5\n\
             [run]\ntrials_per_device = 3\n{table}\n"
        )
    }

    #[test]
    fn search_tables_read_the_random_distributions_and_their_defaults() {
        let file = parse(&search_sweep(
            "[search]\nmethod = \"tpe\"\ntrials = 30\n\
             lr = { log_uniform = [1e-4, 1e-1] }\n\
             neurons = { int = [16, 256], log = true }\n\
             optimizer = { choice = [\"adam\", \"sgd\"] }",
        ))
        .unwrap();
        let search = file.search.clone().unwrap();
        assert_eq!(search.method, SearchMethod::Tpe);
        assert_eq!(
            (search.trials, search.seed, search.startup, search.parallel),
            (30, 5, 10, 3),
            "the seed is train.seed, startup Optuna's 10, parallel run.trials_per_device"
        );
        let keys: Vec<&str> = search.axes.iter().map(|a| a.key.as_str()).collect();
        assert_eq!(keys, ["lr", "neurons", "optimizer"]);
        assert_eq!(
            search.axes[0].distribution,
            Distribution::LogUniform {
                low: 1e-4,
                high: 1e-1
            }
        );
        assert!(expand_grid(&file).is_empty(), "the runner makes the trials");
        let set = parse(&search_sweep(
            "[search]\nmethod = \"tpe\"\ntrials = 3\nseed = 0\nstartup = 2\nparallel = 1\n\
             dropout = { uniform = [0.0, 0.5] }",
        ))
        .unwrap()
        .search
        .unwrap();
        assert_eq!((set.seed, set.startup, set.parallel), (0, 2, 1));
    }

    #[test]
    fn a_suggested_point_becomes_rounded_settings_and_a_trial_back_its_point() {
        use sweep_search::Value;
        let file = parse(&search_sweep(
            "[search]\nmethod = \"tpe\"\ntrials = 3\n\
             lr = { log_uniform = [1e-4, 1e-1] }\nneurons = { int = [16, 256] }\n\
             optimizer = { choice = [\"adam\", \"sgd\"] }",
        ))
        .unwrap();
        let search = file.search.as_ref().unwrap();
        let point = vec![
            Value::Float(0.00316227766),
            Value::Int(40),
            Value::Choice(1),
        ];
        let settings = search.settings(&point);
        let trial = grid::trial(&file, 0, settings.iter().map(|(k, s)| (*k, s)));
        assert_eq!(
            trial.params["lr"],
            Param::Float(0.003162),
            "4 digits, as [random]"
        );
        assert_eq!(trial.params["optimizer"], Param::Text("sgd".into()));
        let config = trial.config.builtin().unwrap();
        assert_eq!((config.train.lr, config.model.neurons), (0.003162, 40));
        assert_eq!(
            search.point(&trial.params),
            Some(vec![
                Value::Float(0.003162),
                Value::Int(40),
                Value::Choice(1)
            ])
        );
        let mut outside = trial.params.clone();
        outside.insert("neurons".into(), Param::Int(300));
        assert_eq!(search.point(&outside), None, "a changed space");
    }

    #[test]
    fn a_command_sweep_searches_its_params() {
        let text = "name = \"c\"\n[trial]\ncommand = [\"python3\", \"t.py\"]\nepochs = 1\n\
                    objective = \"loss\"\ndirection = \"minimize\"\n\
                    [params]\nx = 0.0\nk = 1\n\
                    [search]\nmethod = \"tpe\"\ntrials = 4\n\
                    x = { uniform = [-5.0, 5.0] }\nk = { int = [-3, 3] }\n";
        let file = parse(text).unwrap();
        let search = file.search.as_ref().unwrap();
        let point = vec![
            sweep_search::Value::Float(-4.56789),
            sweep_search::Value::Int(-2),
        ];
        let settings = search.settings(&point);
        let trial = grid::trial(&file, 0, settings.iter().map(|(k, s)| (*k, s)));
        assert_eq!(trial.params["x"], Param::Float(-4.568));
        assert_eq!(
            trial.params["k"],
            Param::Int(-2),
            "any integer of the param's"
        );
        assert_eq!(
            error(&text.replace("k = { int", "colour = { int")),
            "s.toml:14: `search.colour` is not a hyperparameter (grid axes: k, x)"
        );
        assert_eq!(
            error(&text.replace("[-5.0, 5.0]", "[-1e308, 1e308]")),
            "s.toml:13: `search.x.uniform`: high − low must be a finite number, not \
             [-1e308, 1e308]",
            "a span past f64's range"
        );
    }

    #[test]
    fn bad_search_tables_name_the_line_and_the_key() {
        let tpe = "[search]\nmethod = \"tpe\"\ntrials = 5\n";
        for (table, message) in [
            (
                "[search]\ntrials = 5\nlr = { uniform = [0.1, 0.2] }",
                "s.toml:8: missing `search.method`",
            ),
            (
                "[search]\nmethod = \"tpe\"\nlr = { uniform = [0.1, 0.2] }",
                "s.toml:8: missing `search.trials`",
            ),
            (
                "[search]\nmethod = \"tpf\"\ntrials = 5\nlr = { uniform = [0.1, 0.2] }",
                "s.toml:9: `search.method` must be \"tpe\", not \"tpf\" (did you mean \"tpe\"?)",
            ),
            (
                "[search]\nmethod = \"random\"\ntrials = 5\nlr = { uniform = [0.1, 0.2] }",
                "s.toml:9: `search.method`: random search is the `[random]` table: \
                 `[random] trials = N` and the same distributions",
            ),
            (
                "[search]\nmethod = \"tpe\"\ntrials = 0\nlr = { uniform = [0.1, 0.2] }",
                "s.toml:10: `search.trials`: must be at least 1, not 0",
            ),
            (
                "[search]\nmethod = \"tpe\"\ntrials = 1000000\nlr = { uniform = [0.1, 0.2] }",
                "s.toml:10: `search.trials`: 1,000,000 trials; at most 100,000 trials in a sweep",
            ),
            (
                &format!("{tpe}parallel = 0\nlr = {{ uniform = [0.1, 0.2] }}"),
                "s.toml:11: `search.parallel`: must be at least 1, not 0",
            ),
            (
                &format!("{tpe}startup = 0\nlr = {{ uniform = [0.1, 0.2] }}"),
                "s.toml:11: `search.startup`: must be at least 1, not 0",
            ),
            (
                tpe,
                "s.toml:8: `search`: searches no hyperparameter: add one, such as \
                 lr = { log_uniform = [0.0001, 0.1] }",
            ),
            (
                &format!("{tpe}lr = {{ uniform = [0.1, 0.2] }}\nparalel = 2"),
                "s.toml:12: unknown key `search.paralel` (did you mean `search.parallel`?)",
            ),
            (
                &format!("{tpe}dropout = {{ uniform = [0.0, 1.5] }}"),
                "s.toml:11: `search.dropout`: must be in [0, 1), not 1.5",
            ),
            (
                &format!("{tpe}batch_size = {{ uniform = [16, 64] }}"),
                "s.toml:11: `search.batch_size.uniform`: `batch_size` takes integers: draw it \
                 from { int = [low, high] } or { choice = [values] }",
            ),
            (
                &format!("{tpe}lr = {{ uniform = [0.1, 0.2] }}\n[grid]\nneurons = [8, 16]"),
                "s.toml:8: `search`: a search suggests its trials one by one from the results \
                 so far: it cannot be crossed with `[grid]` (line 12); remove one of them",
            ),
            (
                &format!(
                    "{tpe}lr = {{ uniform = [0.1, 0.2] }}\n[random]\ntrials = 2\n\
                     neurons = {{ int = [8, 16] }}"
                ),
                "s.toml:8: `search`: a search suggests its trials one by one from the results \
                 so far: it cannot be crossed with `[random]` (line 12); remove one of them",
            ),
            (
                &format!(
                    "{tpe}lr = {{ uniform = [0.1, 0.2] }}\n[prune]\nmethod = \"halving\"\n\
                     min_epochs = 1"
                ),
                "s.toml:12: `prune.method`: halving waits for every trial of the sweep at \
                 each rung, and a search makes its trials as others end: use \
                 `method = \"median\"`",
            ),
        ] {
            assert_eq!(error(&search_sweep(table)), message, "{table}");
        }
    }
}
