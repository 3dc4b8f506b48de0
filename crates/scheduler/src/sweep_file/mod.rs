//! A sweep's TOML file: [`SweepFile::load`] reads and validates it before anything is
//! written, and [`expand_grid`] turns it into [`TrialSpec`]s. Split by job: the [`schema`]
//! (what a file describes, and the [`TrialConfig`] a trial process reads), the table of
//! [`hyperparameters`], the line-aware [`reader`] and its [`error`]s, the [`grid`], the
//! [`random`] search drawn in each grid cell, and the early stopping rule ([`prune`]).

pub mod error;
pub mod grid;
pub mod hyperparameters;
pub mod prune;
pub mod random;
pub mod reader;
pub mod schema;

use std::path::Path;

pub use error::{closest, Problem, SweepFileError};
pub use grid::{expand_grid, TrialSpec};
pub use hyperparameters::{Param, Setting};
pub use prune::Prune;
pub use random::{Distribution, Random, RandomAxis};
pub use schema::{Axis, DataSource, Devices, RunSettings, SweepFile, TrialConfig};

impl SweepFile {
    /// Reads and validates the sweep file at `path`.
    pub fn load(path: &Path) -> Result<Self, SweepFileError> {
        let text = std::fs::read_to_string(path).map_err(|e| SweepFileError {
            path: path.to_path_buf(),
            line: None,
            problem: Problem::Io(e),
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
    use sweep_model::{Augment, OptimizerKind};

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
                hflip: true
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
        assert_eq!(trials[26].config.model.neurons, 256);
        assert_eq!(trials[26].config.train.lr, 0.001);
        assert_eq!(trials[26].config.train.optimizer, OptimizerKind::Rmsprop);
        assert_eq!(
            trials[26].config.train.epochs, 20,
            "the rest comes from the file"
        );
        let again = expand_grid(&parse(SEED_GRID).unwrap());
        assert_eq!(trials, again);
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
        ] {
            let file = SweepFile::load(&dir.join(name)).unwrap();
            assert_eq!(expand_grid(&file).len(), trials, "{name}");
        }
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
    fn wrong_types_name_the_key() {
        let err = error(&edited("lr = 0.001", "lr = \"fast\""));
        assert_eq!(err, "s.toml:18: `train.lr` must be a number, not \"fast\"");
        let err = error(&edited("optimizer = \"adam\"", "optimizer = \"adagrad\""));
        assert_eq!(
            err,
            "s.toml:17: `train.optimizer` must be one of \"adam\", \"sgd\", \"rmsprop\", not \"adagrad\""
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
    fn bad_grid_values_name_the_grid_key_the_value_and_what_is_expected() {
        let grid = |old: &str, new: &str| error(&edited(old, new));
        let optimizers = "optimizer = [\"adam\", \"sgd\", \"rmsprop\"]";
        assert_eq!(
            grid(optimizers, "optimizer = [\"adam\", \"rmsprob\"]"),
            "s.toml:25: `grid.optimizer` must be one of \"adam\", \"sgd\", \"rmsprop\", \
             not \"rmsprob\" (did you mean \"rmsprop\"?)"
        );
        assert_eq!(
            grid(optimizers, "optimizer = [\"adam\", \"lbfgs\"]"),
            "s.toml:25: `grid.optimizer` must be one of \"adam\", \"sgd\", \"rmsprop\", not \"lbfgs\"",
            "no hint when nothing is close"
        );
        assert_eq!(
            grid(optimizers, "optimizer = [\"adam\", 3]"),
            "s.toml:25: `grid.optimizer` must be one of \"adam\", \"sgd\", \"rmsprop\", not 3"
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
}
