//! [`SweepFile`]: a sweep's TOML file, read and validated before anything is written, and
//! [`expand_grid`], which turns it into [`TrialSpec`]s. Every error names the file, the line
//! and the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use sweep_model::{
    Arch, Augment, ModelConfig, Objective, OptimizerKind, SyntheticSpec, TrainConfig,
};
use toml_edit::{Item, TableLike, Value};

/// Why a sweep file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SweepFileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}:{line}: unknown key `{key}`{}", hint.as_ref().map(|h| format!(" (did you mean `{h}`?)")).unwrap_or_default())]
    UnknownKey {
        path: PathBuf,
        line: usize,
        key: String,
        hint: Option<String>,
    },
    #[error("{path}:{line}: `{key}` must be {expected}")]
    WrongType {
        path: PathBuf,
        line: usize,
        key: String,
        expected: String,
    },
    #[error("{path}:{line}: `{key}` must be {expected}, not {found}")]
    BadValue {
        path: PathBuf,
        line: usize,
        key: String,
        expected: String,
        /// The value as written in the file, and the closest valid value when it looks like
        /// a typo of one: `"rmsprob" (did you mean "rmsprop"?)`.
        found: String,
    },
    #[error("{path}:{line}: `{key}`: {message}")]
    OutOfRange {
        path: PathBuf,
        line: usize,
        key: String,
        message: String,
    },
    #[error("{path}:{line}: `grid.{axis}` has no values")]
    EmptyAxis {
        path: PathBuf,
        line: usize,
        axis: String,
    },
    #[error("{path}:{line}: `grid.{axis}` is not a hyperparameter (grid axes: {known})")]
    NotAHyperparameter {
        path: PathBuf,
        line: usize,
        axis: String,
        known: String,
    },
    #[error("{path}: missing `{key}`")]
    Missing { path: PathBuf, key: String },
}

/// Where a sweep's images come from.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataSource {
    /// A folder in the competition layout.
    Dir(PathBuf),
    /// The built-in synthetic set.
    Synthetic(SyntheticSpec),
}

/// Which devices a sweep runs on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Devices {
    /// Every visible GPU, else the CPU.
    Auto,
    /// These devices: `cpu` or `cuda:K`.
    List(Vec<String>),
}

/// The `[run]` section.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunSettings {
    pub devices: Devices,
    pub trials_per_device: usize,
    pub max_retries: u32,
}

/// One value of a hyperparameter, as written in the file.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum Param {
    Int(i64),
    Float(f64),
    Text(String),
    Ints(Vec<i64>),
}

/// A grid axis: a hyperparameter and its values.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub key: String,
    pub values: Vec<Param>,
}

/// A validated sweep file.
#[derive(Debug, Clone)]
pub struct SweepFile {
    pub path: PathBuf,
    pub text: String,
    pub name: String,
    pub data: DataSource,
    /// The number of classes, when the file sets it (else the data's largest label + 1).
    pub classes: Option<usize>,
    pub augment: Augment,
    pub model: ModelConfig,
    pub train: TrainConfig,
    pub grid: Vec<Axis>,
    pub run: RunSettings,
}

/// Everything one trial trains with; its hash is the trial's identity.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrialConfig {
    pub data: DataSource,
    pub classes: Option<usize>,
    pub augment: Augment,
    pub model: ModelConfig,
    pub train: TrainConfig,
}

/// One point of the grid with everything else filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialSpec {
    pub grid_index: usize,
    /// The grid point: axis → value.
    pub params: BTreeMap<String, Param>,
    pub config: TrialConfig,
    /// SHA-256 of the configuration's JSON: the same configuration, the same trial.
    pub hash: String,
}

const MODEL_KEYS: &[&str] = &["arch", "filters", "neurons", "hidden", "dropout"];
const TRAIN_KEYS: &[&str] = &[
    "epochs",
    "batch_size",
    "optimizer",
    "lr",
    "momentum",
    "seed",
    "objective",
];
/// Keys that may be grid axes: every hyperparameter of `[model]` and `[train]` but the objective.
const AXES: &[&str] = &[
    "arch",
    "filters",
    "neurons",
    "hidden",
    "dropout",
    "epochs",
    "batch_size",
    "optimizer",
    "lr",
    "momentum",
    "seed",
];

/// The closest of `known` to `key`, if it is close enough to be a likely typo (also the
/// command line's hint for a sweep name).
pub fn closest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min()
        .map(|(_, k)| k)
}

/// Levenshtein distance; a dozen lines are simpler than a dependency for one hint.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = (previous + (ca != *cb) as usize)
                .min(row[j] + 1)
                .min(current + 1);
            previous = current;
        }
    }
    row[b.len()]
}

/// Reads one file's keys, turning byte offsets into line numbers for errors.
struct Reader<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Reader<'_> {
    fn line(&self, span: Option<std::ops::Range<usize>>) -> usize {
        let offset = span.map_or(0, |s| s.start).min(self.text.len());
        self.text[..offset].matches('\n').count() + 1
    }

    fn key_line(&self, table: &dyn TableLike, key: &str) -> usize {
        let span = table.get_key_value(key).and_then(|(k, _)| k.span());
        self.line(span)
    }

    fn wrong_type(&self, line: usize, key: &str, expected: &str) -> SweepFileError {
        SweepFileError::WrongType {
            path: self.path.to_path_buf(),
            line,
            key: key.to_string(),
            expected: expected.to_string(),
        }
    }

    /// The value as written in the file, on one line.
    fn written(&self, value: &Value) -> String {
        let Some(text) = value.span().and_then(|span| self.text.get(span)) else {
            return match (value.as_str(), value.as_integer(), value.as_float()) {
                (Some(s), _, _) => format!("{s:?}"),
                (_, Some(i), _) => i.to_string(),
                (_, _, Some(f)) => f.to_string(),
                _ => "this value".into(),
            };
        };
        if text.contains('\n') {
            text.split_whitespace().collect::<Vec<_>>().join(" ")
        } else {
            text.to_string()
        }
    }

    /// `value` of `key` is not what it must be; `hint` is a quoted valid value it resembles.
    fn bad_value(
        &self,
        line: usize,
        key: &str,
        value: &Value,
        expected: &str,
        hint: Option<String>,
    ) -> SweepFileError {
        SweepFileError::BadValue {
            path: self.path.to_path_buf(),
            line,
            key: key.to_string(),
            expected: expected.to_string(),
            found: match hint {
                Some(hint) => format!("{} (did you mean {hint}?)", self.written(value)),
                None => self.written(value),
            },
        }
    }

    fn out_of_range(&self, line: usize, key: &str, message: String) -> SweepFileError {
        SweepFileError::OutOfRange {
            path: self.path.to_path_buf(),
            line,
            key: key.to_string(),
            message,
        }
    }

    /// Refuses keys of `table` (named `section`) that are not in `known`.
    fn only_known(
        &self,
        table: &dyn TableLike,
        section: &str,
        known: &[&str],
    ) -> Result<(), SweepFileError> {
        for (key, _) in table.iter() {
            if !known.contains(&key) {
                let full = if section.is_empty() {
                    key.to_string()
                } else {
                    format!("{section}.{key}")
                };
                return Err(SweepFileError::UnknownKey {
                    path: self.path.to_path_buf(),
                    line: self.key_line(table, key),
                    key: full,
                    hint: closest(key, known).map(|k| {
                        if section.is_empty() {
                            k.to_string()
                        } else {
                            format!("{section}.{k}")
                        }
                    }),
                });
            }
        }
        Ok(())
    }

    fn section<'t>(
        &self,
        root: &'t dyn TableLike,
        name: &str,
        known: &[&str],
    ) -> Result<Option<&'t dyn TableLike>, SweepFileError> {
        let Some(item) = root.get(name) else {
            return Ok(None);
        };
        let table = item
            .as_table_like()
            .ok_or_else(|| self.wrong_type(self.key_line(root, name), name, "a table"))?;
        self.only_known(table, name, known)?;
        Ok(Some(table))
    }

    fn int(&self, value: &Value, line: usize, key: &str, min: i64) -> Result<i64, SweepFileError> {
        let v = value
            .as_integer()
            .ok_or_else(|| self.bad_value(line, key, value, "an integer", None))?;
        if v < min {
            return Err(self.out_of_range(line, key, format!("must be at least {min}, not {v}")));
        }
        Ok(v)
    }

    fn float(&self, value: &Value, line: usize, key: &str) -> Result<f64, SweepFileError> {
        value
            .as_float()
            .or_else(|| value.as_integer().map(|i| i as f64))
            .ok_or_else(|| self.bad_value(line, key, value, "a number", None))
    }

    fn choice(
        &self,
        value: &Value,
        line: usize,
        key: &str,
        choices: &[&str],
    ) -> Result<String, SweepFileError> {
        let expected = format!(
            "one of {}",
            choices
                .iter()
                .map(|c| format!("\"{c}\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
        match value.as_str() {
            Some(s) if choices.contains(&s) => Ok(s.to_string()),
            text => {
                let hint = text.and_then(|s| closest(s, choices));
                let hint = hint.map(|c| format!("\"{c}\""));
                Err(self.bad_value(line, key, value, &expected, hint))
            }
        }
    }

    fn ints(&self, value: &Value, line: usize, key: &str) -> Result<Vec<i64>, SweepFileError> {
        let expected = "a list of integers";
        let array = value
            .as_array()
            .filter(|a| a.iter().all(|v| v.as_integer().is_some()))
            .ok_or_else(|| self.bad_value(line, key, value, expected, None))?;
        array.iter().map(|v| self.int(v, line, key, 1)).collect()
    }

    /// Reads hyperparameter `key` (of `[model]` or `[train]`) from `value` into the configs,
    /// and checks its range with the model crate's own rules. Errors name the key as `written`
    /// in the file (`train.lr`, or `grid.lr` for a grid value).
    fn set(
        &self,
        key: &str,
        written: &str,
        value: &Value,
        line: usize,
        model: &mut ModelConfig,
        train: &mut TrainConfig,
    ) -> Result<Param, SweepFileError> {
        let section = if MODEL_KEYS.contains(&key) {
            "model"
        } else {
            "train"
        };
        let full = written;
        let param = match key {
            "arch" => Param::Text(self.choice(value, line, full, &["mlp", "resnet"])?),
            "optimizer" => {
                Param::Text(self.choice(value, line, full, &["adam", "sgd", "rmsprop"])?)
            }
            "objective" => {
                Param::Text(self.choice(value, line, full, &["val_f1", "val_acc", "val_loss"])?)
            }
            "filters" | "hidden" => Param::Ints(self.ints(value, line, full)?),
            "neurons" | "epochs" => Param::Int(self.int(value, line, full, 1)?),
            "batch_size" => Param::Int(self.int(value, line, full, 2)?),
            "seed" => Param::Int(self.int(value, line, full, 0)?),
            _ => Param::Float(self.float(value, line, full)?),
        };
        if let ("epochs", Param::Int(epochs)) = (key, &param) {
            if u32::try_from(*epochs).is_err() {
                let message = format!("must be at most {}, not {epochs}", u32::MAX);
                return Err(self.out_of_range(line, full, message));
            }
        }
        apply(key, &param, model, train);
        // The defaults are valid, so a problem now comes from this key.
        let problem = if section == "model" {
            model.problem()
        } else {
            train.problem()
        };
        if let Some(message) = problem {
            // The model crate names the key its own way (`train.lr must be …`); the error
            // already names it as written.
            let own_name = format!("{section}.{key} ");
            let message = message
                .strip_prefix(&own_name)
                .map_or_else(|| message.clone(), str::to_string);
            return Err(self.out_of_range(line, full, message));
        }
        Ok(param)
    }
}

fn item_value(item: &Item) -> Option<&Value> {
    item.as_value()
}

impl SweepFile {
    /// Reads and validates the sweep file at `path`.
    pub fn load(path: &Path) -> Result<Self, SweepFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| SweepFileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Validates the text of a sweep file; `path` is used in errors and to resolve `data.dir`
    /// (relative to the directory the command runs in).
    pub fn parse(path: &Path, text: &str) -> Result<Self, SweepFileError> {
        let r = Reader { path, text };
        let doc = toml_edit::Document::parse(text).map_err(|e| SweepFileError::Syntax {
            path: path.to_path_buf(),
            line: r.line(e.span()),
            message: e.message().trim().to_string(),
        })?;
        let root: &dyn TableLike = doc.as_table();
        r.only_known(root, "", &["name", "data", "model", "train", "grid", "run"])?;
        let missing = |key: &str| SweepFileError::Missing {
            path: path.to_path_buf(),
            key: key.to_string(),
        };

        let name = match root.get("name") {
            Some(item) => {
                let (line, expected) = (r.key_line(root, "name"), "a non-empty string");
                match (item.as_str(), item.as_value()) {
                    (Some(s), _) if !s.trim().is_empty() => s.to_string(),
                    (_, Some(value)) => {
                        return Err(r.bad_value(line, "name", value, expected, None))
                    }
                    (_, None) => return Err(r.wrong_type(line, "name", expected)),
                }
            }
            None => return Err(missing("name")),
        };

        let data = r
            .section(root, "data", &["dir", "synthetic", "augment", "classes"])?
            .ok_or_else(|| missing("data"))?;
        let source = match (data.get("dir"), data.get("synthetic")) {
            (Some(_), Some(_)) => {
                return Err(r.out_of_range(
                    r.key_line(data, "synthetic"),
                    "data.synthetic",
                    "give either `data.dir` or `data.synthetic`, not both".into(),
                ))
            }
            (Some(dir), None) => {
                let line = r.key_line(data, "dir");
                let dir = match dir.as_value() {
                    Some(value) => value.as_str().ok_or_else(|| {
                        r.bad_value(line, "data.dir", value, "a folder path", None)
                    })?,
                    None => return Err(r.wrong_type(line, "data.dir", "a folder path")),
                };
                DataSource::Dir(PathBuf::from(dir))
            }
            (None, Some(synthetic)) => DataSource::Synthetic(r.synthetic(data, synthetic)?),
            (None, None) => return Err(missing("data.dir` or `data.synthetic")),
        };
        let classes = match data.get("classes").and_then(item_value) {
            Some(v) => Some(r.int(v, r.key_line(data, "classes"), "data.classes", 2)? as usize),
            None if data.contains_key("classes") => {
                return Err(r.wrong_type(r.key_line(data, "classes"), "data.classes", "an integer"))
            }
            None => None,
        };
        let augment = match data.get("augment") {
            Some(item) => r.augment(data, item)?,
            None => Augment::default(),
        };

        let mut model = ModelConfig::default();
        let mut train = TrainConfig::default();
        for (section, keys) in [("model", MODEL_KEYS), ("train", TRAIN_KEYS)] {
            let Some(table) = r.section(root, section, keys)? else {
                continue;
            };
            for (key, item) in table.iter() {
                let line = r.key_line(table, key);
                let value = item_value(item)
                    .ok_or_else(|| r.wrong_type(line, &format!("{section}.{key}"), "a value"))?;
                r.set(
                    key,
                    &format!("{section}.{key}"),
                    value,
                    line,
                    &mut model,
                    &mut train,
                )?;
            }
        }

        let mut grid = Vec::new();
        if let Some(table) = root.get("grid") {
            let table = table
                .as_table_like()
                .ok_or_else(|| r.wrong_type(r.key_line(root, "grid"), "grid", "a table"))?;
            for (axis, item) in table.iter() {
                let line = r.key_line(table, axis);
                if !AXES.contains(&axis) {
                    if let Some(hint) = closest(axis, AXES) {
                        return Err(SweepFileError::UnknownKey {
                            path: path.to_path_buf(),
                            line,
                            key: format!("grid.{axis}"),
                            hint: Some(format!("grid.{hint}")),
                        });
                    }
                    return Err(SweepFileError::NotAHyperparameter {
                        path: path.to_path_buf(),
                        line,
                        axis: axis.to_string(),
                        known: AXES.join(", "),
                    });
                }
                let written = format!("grid.{axis}");
                let values = match item.as_value() {
                    Some(Value::Array(values)) => values,
                    Some(value) => {
                        return Err(r.bad_value(line, &written, value, "a list of values", None))
                    }
                    None => return Err(r.wrong_type(line, &written, "a list of values")),
                };
                if values.is_empty() {
                    return Err(SweepFileError::EmptyAxis {
                        path: path.to_path_buf(),
                        line,
                        axis: axis.to_string(),
                    });
                }
                let mut params = Vec::new();
                for value in values.iter() {
                    let line = r.line(value.span()).max(line);
                    let (mut m, mut t) = (model.clone(), train.clone());
                    params.push(r.set(axis, &written, value, line, &mut m, &mut t)?);
                }
                grid.push(Axis {
                    key: axis.to_string(),
                    values: params,
                });
            }
        }

        let run = r.run(root)?;
        Ok(SweepFile {
            path: path.to_path_buf(),
            text: text.to_string(),
            name,
            data: source,
            classes,
            augment,
            model,
            train,
            grid,
            run,
        })
    }
}

impl Reader<'_> {
    fn synthetic(
        &self,
        data: &dyn TableLike,
        item: &Item,
    ) -> Result<SyntheticSpec, SweepFileError> {
        let line = self.key_line(data, "synthetic");
        let table = item
            .as_table_like()
            .ok_or_else(|| self.wrong_type(line, "data.synthetic", "a table"))?;
        let keys = ["classes", "size", "train", "val", "test", "seed"];
        self.only_known(table, "data.synthetic", &keys)?;
        let mut spec = SyntheticSpec::default();
        for (key, item) in table.iter() {
            let full = format!("data.synthetic.{key}");
            let line = self.key_line(table, key).max(line);
            let value =
                item_value(item).ok_or_else(|| self.wrong_type(line, &full, "an integer"))?;
            let v = self.int(value, line, &full, 0)? as usize;
            match key {
                "classes" => spec.classes = v,
                "size" => spec.size = v,
                "train" => spec.train = v,
                "val" => spec.val = v,
                "test" => spec.test = v,
                _ => spec.seed = v as u64,
            }
            if let Some(message) = spec.problem() {
                return Err(self.out_of_range(line, &full, message));
            }
        }
        Ok(spec)
    }

    fn augment(&self, data: &dyn TableLike, item: &Item) -> Result<Augment, SweepFileError> {
        let line = self.key_line(data, "augment");
        let table = item
            .as_table_like()
            .ok_or_else(|| self.wrong_type(line, "data.augment", "a table"))?;
        self.only_known(
            table,
            "data.augment",
            &["rotation", "shift", "zoom", "hflip"],
        )?;
        let mut augment = Augment::default();
        for (key, item) in table.iter() {
            let full = format!("data.augment.{key}");
            let line = self.key_line(table, key).max(line);
            let value = item_value(item).ok_or_else(|| self.wrong_type(line, &full, "a value"))?;
            match key {
                "hflip" => {
                    augment.hflip = value
                        .as_bool()
                        .ok_or_else(|| self.bad_value(line, &full, value, "true or false", None))?
                }
                "rotation" => augment.rotation = self.float(value, line, &full)?,
                "shift" => augment.shift = self.float(value, line, &full)?,
                _ => augment.zoom = self.float(value, line, &full)?,
            }
            if let Some(message) = augment.problem() {
                return Err(self.out_of_range(line, &full, message));
            }
        }
        Ok(augment)
    }

    fn run(&self, root: &dyn TableLike) -> Result<RunSettings, SweepFileError> {
        let mut run = RunSettings {
            devices: Devices::Auto,
            trials_per_device: 1,
            max_retries: 0,
        };
        let Some(table) = self.section(
            root,
            "run",
            &["devices", "trials_per_device", "max_retries"],
        )?
        else {
            return Ok(run);
        };
        for (key, item) in table.iter() {
            let full = format!("run.{key}");
            let line = self.key_line(table, key);
            let value = item_value(item).ok_or_else(|| self.wrong_type(line, &full, "a value"))?;
            match key {
                "devices" => run.devices = self.devices(value, line)?,
                "trials_per_device" => {
                    run.trials_per_device = self.int(value, line, &full, 1)? as usize
                }
                _ => run.max_retries = self.int(value, line, &full, 0)? as u32,
            }
        }
        Ok(run)
    }

    fn devices(&self, value: &Value, line: usize) -> Result<Devices, SweepFileError> {
        let expected = "\"auto\", \"cpu\", \"cuda:K\" or a list of \"cpu\"/\"cuda:K\"";
        let valid = |d: &str| {
            d == "cpu"
                || d.strip_prefix("cuda:")
                    .is_some_and(|k| k.parse::<usize>().is_ok())
        };
        if let Some(s) = value.as_str() {
            return match s {
                "auto" => Ok(Devices::Auto),
                d if valid(d) => Ok(Devices::List(vec![d.to_string()])),
                _ => Err(self.bad_value(line, "run.devices", value, expected, None)),
            };
        }
        let array = value
            .as_array()
            .ok_or_else(|| self.bad_value(line, "run.devices", value, expected, None))?;
        let list: Option<Vec<String>> = array
            .iter()
            .map(|v| v.as_str().filter(|d| valid(d)).map(str::to_string))
            .collect();
        match list {
            Some(list) if !list.is_empty() => Ok(Devices::List(list)),
            _ => Err(self.bad_value(line, "run.devices", value, expected, None)),
        }
    }
}

/// The trials of a sweep: the cartesian product of the grid's axes in file order, the last
/// axis varying fastest. Every trial uses the sweep's `train.seed` (or its `seed` axis), so
/// that trials differ only in their hyperparameters.
pub fn expand_grid(file: &SweepFile) -> Vec<TrialSpec> {
    let count: usize = file.grid.iter().map(|a| a.values.len()).product();
    (0..count)
        .map(|grid_index| {
            let mut rest = grid_index;
            let mut picks = vec![0; file.grid.len()];
            for (i, axis) in file.grid.iter().enumerate().rev() {
                picks[i] = rest % axis.values.len();
                rest /= axis.values.len();
            }
            let mut model = file.model.clone();
            let mut train = file.train.clone();
            let mut params = BTreeMap::new();
            for (axis, &pick) in file.grid.iter().zip(&picks) {
                let value = &axis.values[pick];
                apply(&axis.key, value, &mut model, &mut train);
                params.insert(axis.key.clone(), value.clone());
            }
            let config = TrialConfig {
                data: file.data.clone(),
                classes: file.classes,
                augment: file.augment,
                model,
                train,
            };
            let json = serde_json::to_string(&config).expect("a trial configuration serialises");
            let hash = Sha256::digest(json.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            TrialSpec {
                grid_index,
                params,
                config,
                hash,
            }
        })
        .collect()
}

/// Sets hyperparameter `key` to `value`, which [`Reader::set`] parsed for that key.
fn apply(key: &str, value: &Param, model: &mut ModelConfig, train: &mut TrainConfig) {
    match (key, value) {
        ("arch", Param::Text(s)) => model.arch = if s == "mlp" { Arch::Mlp } else { Arch::Resnet },
        ("filters", Param::Ints(v)) => model.filters = v.iter().map(|&w| w as usize).collect(),
        ("hidden", Param::Ints(v)) => model.hidden = v.iter().map(|&w| w as usize).collect(),
        ("neurons", Param::Int(v)) => model.neurons = *v as usize,
        ("dropout", Param::Float(v)) => model.dropout = *v,
        ("epochs", Param::Int(v)) => train.epochs = *v as u32,
        ("batch_size", Param::Int(v)) => train.batch_size = *v as usize,
        ("optimizer", Param::Text(s)) => {
            train.optimizer = match s.as_str() {
                "adam" => OptimizerKind::Adam,
                "sgd" => OptimizerKind::Sgd,
                _ => OptimizerKind::Rmsprop,
            }
        }
        ("lr", Param::Float(v)) => train.lr = *v,
        ("momentum", Param::Float(v)) => train.momentum = *v,
        ("seed", Param::Int(v)) => train.seed = *v as u64,
        ("objective", Param::Text(s)) => {
            train.objective = match s.as_str() {
                "val_f1" => Objective::ValF1,
                "val_acc" => Objective::ValAcc,
                _ => Objective::ValLoss,
            }
        }
        _ => unreachable!("grid values are validated against their key when the file is read"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        for (name, trials) in [("quick.toml", 12), ("cnn.toml", 27), ("mlp.toml", 27)] {
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
