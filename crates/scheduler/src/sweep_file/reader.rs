//! Reading a sweep file's TOML, key by key, with the line of every key and value at hand: each
//! error says `FILE:LINE:` and names the key as it is written.

use std::path::{Path, PathBuf};

use sweep_model::data::MAX_CLASSES;
use sweep_model::train::config::schedule_keys_problem;
use sweep_model::train::schedule::SCHEDULE_KEYS;
use sweep_model::{Augment, DeviceName, ScheduleKind, SyntheticSpec};
use toml_edit::{Item, TableLike, Value};

use super::error::{closest, Problem, Refusal, SweepFileError};
use super::grid::MAX_TRIALS;
use super::hyperparameters::{
    self as hyper, Configs, Form, Hyperparameter, Param, Section, Setting,
};
use super::prune::Prune;
use super::random::{Distribution, Random, RandomAxis};
use super::schema::{
    Axis, CommandTrial, DataSource, Devices, Executor, RunSettings, SlurmSettings, SweepFile,
};
use super::search::{Search, SearchMethod};
use crate::command::contract;
use sweep_store::{Direction, Goal, Params};

/// Reads one file's keys, turning byte offsets into line numbers for errors.
struct Reader<'a> {
    path: &'a Path,
    text: &'a str,
    /// A command sweep's `[params]`: then they, not the built-in trainer's keys, are what a
    /// grid or a draw may vary.
    params: Option<&'a Params>,
}

impl<'a> Reader<'a> {
    /// The hyperparameter a grid axis or a draw `key` varies, if it may be one.
    fn axis(&self, key: &str) -> Option<Hyperparameter<'a>> {
        match self.params {
            Some(params) => params.get_key_value(key).map(|(k, v)| hyper::param(k, v)),
            None => hyper::axis(key).copied(),
        }
    }

    /// The keys a grid axis or a draw may vary.
    fn axes(&self) -> Vec<&'a str> {
        match self.params {
            Some(params) => params.keys().map(String::as_str).collect(),
            None => hyper::axes(),
        }
    }

    fn line(&self, span: Option<std::ops::Range<usize>>) -> usize {
        let offset = span.map_or(0, |s| s.start).min(self.text.len());
        self.text[..offset].matches('\n').count() + 1
    }

    fn key_line(&self, table: &dyn TableLike, key: &str) -> usize {
        let span = table.get_key_value(key).and_then(|(k, _)| k.span());
        self.line(span)
    }

    /// `problem`, at `line` of the file.
    fn at(&self, line: usize, problem: Problem) -> SweepFileError {
        SweepFileError {
            path: self.path.to_path_buf(),
            line: Some(line),
            problem,
        }
    }

    fn wrong_type(&self, line: usize, key: &str, expected: &str) -> SweepFileError {
        let key = key.to_string();
        let expected = expected.to_string();
        self.at(line, Problem::WrongType { key, expected })
    }

    fn out_of_range(&self, line: usize, key: &str, message: String) -> SweepFileError {
        let key = key.to_string();
        self.at(line, Problem::OutOfRange { key, message })
    }

    /// The value as written in the file, on one line.
    fn written(&self, value: &Value) -> String {
        let Some(text) = value.span().and_then(|span| self.text.get(span)) else {
            // A value without a span (never one read from a file).
            return match (value.as_str(), value.as_integer(), value.as_float()) {
                (Some(s), _, _) => format!("{s:?}"),
                (_, Some(i), _) => i.to_string(),
                (_, _, Some(f)) => f.to_string(),
                _ => "this value".into(),
            };
        };
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// `value` of `key`, refused.
    fn refused(&self, line: usize, key: &str, value: &Value, refusal: Refusal) -> SweepFileError {
        match refusal {
            Refusal::Expected { expected, hint } => {
                let written = self.written(value);
                let found = match hint {
                    Some(hint) => format!("{written} (did you mean {hint}?)"),
                    None => written,
                };
                let key = key.to_string();
                self.at(
                    line,
                    Problem::BadValue {
                        key,
                        expected,
                        found,
                    },
                )
            }
            Refusal::Range(message) => self.out_of_range(line, key, message),
        }
    }

    /// Refuses keys of `table` (named `section`) that are not in `known`.
    fn only_known(
        &self,
        table: &dyn TableLike,
        section: &str,
        known: &[&str],
    ) -> Result<(), SweepFileError> {
        let full = |key: &str| match section {
            "" => key.to_string(),
            _ => format!("{section}.{key}"),
        };
        match table.iter().find(|(key, _)| !known.contains(key)) {
            Some((key, _)) => Err(self.at(
                self.key_line(table, key),
                Problem::UnknownKey {
                    key: full(key),
                    hint: closest(key, known).map(full),
                },
            )),
            None => Ok(()),
        }
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

    /// The value of `key` in `table`, which must not be a table.
    fn value<'t>(
        &self,
        item: &'t Item,
        line: usize,
        key: &str,
        expected: &str,
    ) -> Result<&'t Value, SweepFileError> {
        item.as_value()
            .ok_or_else(|| self.wrong_type(line, key, expected))
    }

    fn int(&self, value: &Value, line: usize, key: &str, min: i64) -> Result<i64, SweepFileError> {
        hyper::int(value, min).map_err(|r| self.refused(line, key, value, r))
    }

    /// An integer of at least `min` that fits a `u32` (a larger one is refused, not cut).
    fn u32(&self, value: &Value, line: usize, key: &str, min: i64) -> Result<u32, SweepFileError> {
        let v = self.int(value, line, key, min)?;
        u32::try_from(v).map_err(|_| self.out_of_range(line, key, format!("{v} is too large")))
    }

    fn float(&self, value: &Value, line: usize, key: &str) -> Result<f64, SweepFileError> {
        hyper::float(value).map_err(|r| self.refused(line, key, value, r))
    }

    /// Reads `value` of a hyperparameter (named `written` in errors: `train.lr`, or `grid.lr`
    /// for a grid value), sets it in `configs` and checks the result with the model crate's
    /// own rules.
    fn setting(
        &self,
        hyperparameter: &Hyperparameter,
        written: &str,
        value: &Value,
        line: usize,
        configs: &mut Configs,
    ) -> Result<Setting, SweepFileError> {
        let setting = hyperparameter
            .kind
            .read(value)
            .map_err(|r| self.refused(line, written, value, r))?;
        setting.apply(configs);
        // The defaults are valid, so a problem now comes from this key.
        let problem = match hyperparameter.section {
            Section::Model => configs.model.problem(),
            Section::Train => configs.train.problem(),
            // Any value of the param's type is the program's to judge.
            Section::Params => None,
        };
        if let Some(message) = problem {
            // The model crate names the key its own way (`train.lr must be …`); the error
            // already names it as written.
            let own_name = format!("{}.{} ", hyperparameter.section.name(), hyperparameter.key);
            let message = match message.strip_prefix(&own_name) {
                Some(rest) => rest.to_string(),
                None => message,
            };
            return Err(self.out_of_range(line, written, message));
        }
        Ok(setting)
    }
}

/// Validates the text of a sweep file; `path` is used in errors and to resolve `data.dir`.
pub fn parse(path: &Path, text: &str) -> Result<SweepFile, SweepFileError> {
    let r = Reader {
        path,
        text,
        params: None,
    };
    let doc = toml_edit::Document::parse(text).map_err(|e| {
        r.at(
            r.line(e.span()),
            Problem::Syntax(e.message().trim().to_string()),
        )
    })?;
    let root: &dyn TableLike = doc.as_table();
    let sections = [
        "name", "data", "model", "train", "grid", "random", "search", "prune", "run", "trial",
        "params",
    ];
    r.only_known(root, "", &sections)?;
    let missing = |key: &str| SweepFileError {
        path: path.to_path_buf(),
        line: None,
        problem: Problem::Missing {
            key: key.to_string(),
        },
    };

    let name = match root.get("name") {
        Some(item) => {
            let (line, expected) = (r.key_line(root, "name"), "a non-empty string");
            let value = r.value(item, line, "name", expected)?;
            match value.as_str() {
                Some(s) if !s.trim().is_empty() => match crate::sweep_name::check(s) {
                    None => s.to_string(),
                    Some(reason) => {
                        let message = format!("{:?} {reason}", s);
                        return Err(r.out_of_range(line, "name", message));
                    }
                },
                _ => return Err(r.refused(line, "name", value, Refusal::expected(expected))),
            }
        }
        None => return Err(missing("name")),
    };

    if root.contains_key("trial") {
        return r.command_sweep(root, name);
    }
    if root.contains_key("params") {
        let message = "is for a command trial's params: add a `[trial]` table with its \
                       `command`, or set the built-in trainer's keys in `[model]` and `[train]`";
        return Err(r.out_of_range(r.key_line(root, "params"), "params", message.into()));
    }
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
            let (line, expected) = (r.key_line(data, "dir"), "a folder path");
            let value = r.value(dir, line, "data.dir", expected)?;
            let dir = value
                .as_str()
                .ok_or_else(|| r.refused(line, "data.dir", value, Refusal::expected(expected)))?;
            DataSource::Dir(PathBuf::from(dir))
        }
        (None, Some(synthetic)) => DataSource::Synthetic(r.synthetic(data, synthetic)?),
        (None, None) => return Err(missing("data.dir` or `data.synthetic")),
    };
    let classes = match data.get("classes") {
        Some(item) => {
            let line = r.key_line(data, "classes");
            let value = r.value(item, line, "data.classes", "an integer")?;
            let classes = r.int(value, line, "data.classes", 2)?;
            if classes as u64 > MAX_CLASSES as u64 {
                let message = format!("at most {MAX_CLASSES}, not {classes}");
                return Err(r.out_of_range(line, "data.classes", message));
            }
            Some(classes as usize)
        }
        None => None,
    };
    let augment = match data.get("augment") {
        Some(item) => r.augment(data, item)?,
        None => Augment::default(),
    };

    let mut configs = Configs::default();
    for section in [Section::Model, Section::Train] {
        let Some(table) = r.section(root, section.name(), &hyper::keys(section))? else {
            continue;
        };
        for (key, item) in table.iter() {
            let hyperparameter = hyper::find(section, key).expect("only known keys are left");
            let line = r.key_line(table, key);
            let written = format!("{}.{key}", section.name());
            let value = r.value(item, line, &written, "a value")?;
            r.setting(hyperparameter, &written, value, line, &mut configs)?;
        }
    }
    let trainer = Trainer {
        data: source,
        classes,
        augment,
    };
    r.sweep_file(
        root,
        name,
        configs,
        trainer,
        None,
        |r, configs, grid, random| {
            r.schedule_keys(root, configs, grid, random)?;
            r.stages(root, configs, grid, random)
        },
    )
}

/// What a built-in trainer's sweep reads in `[data]`.
struct Trainer {
    data: DataSource,
    classes: Option<usize>,
    augment: Augment,
}

impl<'a> Reader<'a> {
    /// The rest of every sweep file, whatever its trials run: the grid, the draws (each value
    /// checked on top of `configs`, then all of them by `check`), their count, pruning and
    /// `[run]`; and the file, read.
    fn sweep_file(
        &self,
        root: &dyn TableLike,
        name: String,
        configs: Configs,
        trainer: Trainer,
        command: Option<CommandTrial>,
        check: impl FnOnce(&Self, &Configs, &[Axis], Option<&Random>) -> Result<(), SweepFileError>,
    ) -> Result<SweepFile, SweepFileError> {
        let grid = self.grid(root, &configs)?;
        let random = self.random(root, &configs)?;
        check(self, &configs, &grid, random.as_ref())?;
        self.trial_count(root, &grid, random.as_ref())?;
        let prune = self.prune(root)?;
        let run = self.run(root)?;
        let search = self.search(root, &configs, &run, prune.as_ref())?;
        Ok(SweepFile {
            path: self.path.to_path_buf(),
            text: self.text.to_string(),
            name,
            data: trainer.data,
            classes: trainer.classes,
            augment: trainer.augment,
            model: configs.model,
            train: configs.train,
            grid,
            random,
            search,
            prune,
            run,
            command,
        })
    }
}

/// Reading a command sweep: `[trial]` and `[params]`.
impl<'a> Reader<'a> {
    /// A sweep of the user's program: `[trial]` and `[params]` in place of `[data]`,
    /// `[model]` and `[train]`; grids and draws vary the params.
    fn command_sweep(
        &self,
        root: &dyn TableLike,
        name: String,
    ) -> Result<SweepFile, SweepFileError> {
        for builtin in ["data", "model", "train"] {
            if root.contains_key(builtin) {
                let message = "configures the built-in trainer, which a sweep with `[trial]` \
                               does not run: its program's hyperparameters go in `[params]`";
                return Err(self.out_of_range(
                    self.key_line(root, builtin),
                    builtin,
                    message.into(),
                ));
            }
        }
        let mut params = Params::new();
        if let Some(item) = root.get("params") {
            let line = self.key_line(root, "params");
            let table = item
                .as_table_like()
                .ok_or_else(|| self.wrong_type(line, "params", "a table"))?;
            for (key, item) in table.iter() {
                let line = self.key_line(table, key);
                let written = format!("params.{key}");
                if !contract::is_param_name(key) {
                    let message = "a param's name is letters, digits and _, not starting \
                                   with a digit (the command names it as {name})";
                    return Err(self.out_of_range(line, &written, message.into()));
                }
                let value = self.value(item, line, &written, "a value")?;
                let param = hyper::param_default(value)
                    .map_err(|r| self.refused(line, &written, value, r))?;
                params.insert(key.to_string(), param);
            }
        }
        let command = self.trial(root, &params)?;
        let r = Reader {
            path: self.path,
            text: self.text,
            params: Some(&params),
        };
        // The built-in trainer's sections are absent, and unused.
        let unused = Trainer {
            data: DataSource::Synthetic(SyntheticSpec::default()),
            classes: None,
            augment: Augment::default(),
        };
        let command = Some(CommandTrial {
            params: params.clone(),
            ..command
        });
        r.sweep_file(
            root,
            name,
            Configs::default(),
            unused,
            command,
            |_, _, _, _| Ok(()),
        )
    }

    /// The `[trial]` table, its command checked against the `params` it may name.
    fn trial(&self, root: &dyn TableLike, params: &Params) -> Result<CommandTrial, SweepFileError> {
        let keys = [
            "command",
            "epochs",
            "objective",
            "direction",
            "files",
            "resumable",
            "grace_seconds",
        ];
        let table = self
            .section(root, "trial", &keys)?
            .expect("the caller saw `[trial]`");
        let trial_line = self.key_line(root, "trial");
        let missing = |key: &str| {
            self.at(
                trial_line,
                Problem::Missing {
                    key: format!("trial.{key}"),
                },
            )
        };
        let get = |key: &str, expected: &str| -> Result<Option<(&Value, usize)>, SweepFileError> {
            let Some(item) = table.get(key) else {
                return Ok(None);
            };
            let line = self.key_line(table, key);
            let value = self.value(item, line, &format!("trial.{key}"), expected)?;
            Ok(Some((value, line)))
        };
        let strings = |key: &str,
                       expected: &str|
         -> Result<Option<(Vec<String>, usize)>, SweepFileError> {
            let Some((value, line)) = get(key, expected)? else {
                return Ok(None);
            };
            let list: Option<Vec<String>> = value
                .as_array()
                .and_then(|a| a.iter().map(|v| v.as_str().map(String::from)).collect());
            let written = format!("trial.{key}");
            let list = list
                .ok_or_else(|| self.refused(line, &written, value, Refusal::expected(expected)))?;
            Ok(Some((list, line)))
        };

        let expected = "a list of strings: the program and its arguments";
        let (command, line) = strings("command", expected)?.ok_or_else(|| missing("command"))?;
        if command.first().is_none_or(|program| program.is_empty()) {
            let message = "give the program first, then its arguments: \
                           [\"python3\", \"train.py\", \"--lr\", \"{lr}\"]";
            return Err(self.out_of_range(line, "trial.command", message.into()));
        }
        for arg in &command {
            let pieces =
                contract::pieces(arg).map_err(|m| self.out_of_range(line, "trial.command", m))?;
            for piece in pieces {
                if let contract::Piece::Name(name) = piece {
                    if !params.contains_key(name) {
                        let known: Vec<&str> = params.keys().map(String::as_str).collect();
                        let hint = closest(name, &known)
                            .map(|h| format!(" (did you mean `{{{h}}}`?)"))
                            .unwrap_or_default();
                        let message = format!("`{{{name}}}` is not a key of `[params]`{hint}");
                        return Err(self.out_of_range(line, "trial.command", message));
                    }
                }
            }
        }

        let (value, line) = get("epochs", "an integer")?.ok_or_else(|| missing("epochs"))?;
        let epochs = self.u32(value, line, "trial.epochs", 1)?;
        let (value, line) =
            get("objective", "a metric's name")?.ok_or_else(|| missing("objective"))?;
        let metric = match value.as_str() {
            Some(name) if !name.is_empty() && name != "epoch" && name != "seconds" => {
                name.to_string()
            }
            _ => {
                let expected =
                    "the name of a metric the program reports (not `epoch` or `seconds`)";
                return Err(self.refused(
                    line,
                    "trial.objective",
                    value,
                    Refusal::expected(expected),
                ));
            }
        };
        let expected = "\"maximize\" or \"minimize\"";
        let (value, line) = get("direction", expected)?.ok_or_else(|| missing("direction"))?;
        let direction = match value.as_str() {
            Some("maximize" | "maximise") => Direction::Maximise,
            Some("minimize" | "minimise") => Direction::Minimise,
            _ => {
                return Err(self.refused(
                    line,
                    "trial.direction",
                    value,
                    Refusal::expected(expected),
                ))
            }
        };

        let workdir = std::env::current_dir().map_err(|e| self.at(trial_line, Problem::Io(e)))?;
        let mut files = Vec::new();
        if let Some((names, line)) = strings("files", "a list of file paths")? {
            for name in names {
                let path = workdir.join(&name);
                let digest = file_digest(&path).map_err(|e| {
                    let message = format!("cannot read {name:?} (from {}): {e}", workdir.display());
                    self.out_of_range(line, "trial.files", message)
                })?;
                files.push((PathBuf::from(name), digest));
            }
        }
        let resumable = match get("resumable", "true or false")? {
            None => true,
            Some((value, line)) => value.as_bool().ok_or_else(|| {
                self.refused(
                    line,
                    "trial.resumable",
                    value,
                    Refusal::expected("true or false"),
                )
            })?,
        };
        let grace_seconds = match get("grace_seconds", "an integer")? {
            None => 30,
            Some((value, line)) => self.u32(value, line, "trial.grace_seconds", 0)?,
        };
        Ok(CommandTrial {
            command,
            epochs,
            goal: Goal { metric, direction },
            files,
            resumable,
            grace_seconds,
            params: Params::new(),
            workdir,
        })
    }
}

/// The SHA-256 of a file's contents, in hex, read piece by piece.
fn file_digest(path: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1 << 16];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

impl Reader<'_> {
    /// The `[grid]` axes; each value is checked on top of the file's own `configs`.
    fn grid(&self, root: &dyn TableLike, configs: &Configs) -> Result<Vec<Axis>, SweepFileError> {
        let Some(table) = root.get("grid") else {
            return Ok(Vec::new());
        };
        let table = table
            .as_table_like()
            .ok_or_else(|| self.wrong_type(self.key_line(root, "grid"), "grid", "a table"))?;
        let mut grid = Vec::new();
        for (key, item) in table.iter() {
            let line = self.key_line(table, key);
            let Some(hyperparameter) = self.axis(key) else {
                return Err(self.not_an_axis(line, "grid", key, &[]));
            };
            let written = format!("grid.{key}");
            let expected = "a list of values";
            let values = match self.value(item, line, &written, expected)? {
                Value::Array(values) => values,
                value => {
                    return Err(self.refused(line, &written, value, Refusal::expected(expected)))
                }
            };
            if values.is_empty() {
                let key = written;
                return Err(self.at(line, Problem::EmptyAxis { key }));
            }
            let values = values
                .iter()
                .map(|value| {
                    let line = self.line(value.span()).max(line);
                    let mut trial = configs.clone();
                    self.setting(&hyperparameter, &written, value, line, &mut trial)
                })
                .collect::<Result<_, _>>()?;
            grid.push(Axis {
                key: key.to_string(),
                values,
            });
        }
        Ok(grid)
    }

    /// Where `key` is given, first in `[train]`, then `[grid]`, then `[random]`: its line and
    /// its name as written there.
    fn given(&self, root: &dyn TableLike, section: &str, key: &str) -> Option<(usize, String)> {
        [section, "grid", "random"].into_iter().find_map(|table| {
            let table_like = root.get(table).and_then(Item::as_table_like)?;
            table_like
                .contains_key(key)
                .then(|| (self.key_line(table_like, key), format!("{table}.{key}")))
        })
    }

    /// The values `key` takes in the sweep's trials, each set on the file's `configs`: its
    /// grid axis's, or its distribution's choices, or (neither) the file's own.
    fn trial_values(
        configs: &Configs,
        grid: &[Axis],
        random: Option<&Random>,
        key: &str,
    ) -> Vec<Configs> {
        let set = |setting: &Setting| {
            let mut trial = configs.clone();
            setting.apply(&mut trial);
            trial
        };
        let drawn = random
            .and_then(|r| r.axes.iter().find(|a| a.key == key))
            .and_then(|axis| match &axis.distribution {
                Distribution::Choice(values) => Some(values.iter().map(set).collect()),
                _ => None,
            });
        grid.iter()
            .find(|axis| axis.key == key)
            .map(|axis| axis.values.iter().map(set).collect())
            .or(drawn)
            .unwrap_or_else(|| vec![configs.clone()])
    }

    /// Refuses `model.blocks` whose stages are not `model.filters`' in some trial: checked
    /// once every key, axis and distribution is read, since either may be gridded.
    fn stages(
        &self,
        root: &dyn TableLike,
        configs: &Configs,
        grid: &[Axis],
        random: Option<&Random>,
    ) -> Result<(), SweepFileError> {
        for blocks in Self::trial_values(configs, grid, random, "blocks") {
            for filters in Self::trial_values(configs, grid, random, "filters") {
                let mut trial = blocks.clone();
                trial.model.filters = filters.model.filters;
                if let Some(message) = trial.model.stages_problem() {
                    let (line, written) = self
                        .given(root, "model", "blocks")
                        .expect("blocks that are not the default's are given");
                    let message = message
                        .strip_prefix("model.blocks ")
                        .unwrap_or(&message)
                        .to_string();
                    return Err(self.out_of_range(line, &written, message));
                }
            }
        }
        Ok(())
    }

    /// Refuses a schedule key that no schedule of the sweep reads (`max_lr` without
    /// `onecycle`), and a schedule without a key it needs (`step` without `step_size`).
    /// Checked once `[train]`, `[grid]` and `[random]` are read, since the keys may come in
    /// any order, and each as a grid axis or a distribution. A key that some of a grid's
    /// schedules read is kept by the others' trials, which ignore it.
    fn schedule_keys(
        &self,
        root: &dyn TableLike,
        configs: &Configs,
        grid: &[Axis],
        random: Option<&Random>,
    ) -> Result<(), SweepFileError> {
        let schedules: Vec<ScheduleKind> = Self::trial_values(configs, grid, random, "schedule")
            .iter()
            .map(|trial| trial.train.schedule)
            .collect();
        let given: Vec<&str> = SCHEDULE_KEYS
            .into_iter()
            .filter(|key| self.given(root, "train", key).is_some())
            .collect();
        for key in &given {
            if schedules.iter().any(|s| s.keys().contains(key)) {
                continue;
            }
            let (line, written) = self.given(root, "train", key).expect("the key is given");
            let message = match schedules[..] {
                [schedule] => schedule_keys_problem(schedule, &[key])
                    .expect("the schedule does not read the key"),
                _ => {
                    let names: Vec<String> = schedules
                        .iter()
                        .map(|s| format!("\"{}\"", s.name()))
                        .collect();
                    let readers: Vec<String> = ScheduleKind::ALL
                        .iter()
                        .filter(|s| s.keys().contains(key))
                        .map(|s| format!("\"{}\"", s.name()))
                        .collect();
                    format!(
                        "train.{key} is for the schedule {}, and none of the sweep's \
                         schedules ({}) reads it",
                        readers.join(" or "),
                        names.join(", ")
                    )
                }
            };
            let message = message
                .strip_prefix(&format!("train.{key} "))
                .unwrap_or(&message)
                .to_string();
            return Err(self.out_of_range(line, &written, message));
        }
        for schedule in &schedules {
            if let Some(key) = schedule.required().iter().find(|k| !given.contains(k)) {
                let (line, written) = self
                    .given(root, "train", "schedule")
                    .unwrap_or((self.key_line(root, "train"), "train.schedule".to_string()));
                let message = format!("\"{}\" needs `{key}`", schedule.name());
                return Err(self.out_of_range(line, &written, message));
            }
        }
        Ok(())
    }

    /// Refuses a file whose grid cells times random samples are more than [`MAX_TRIALS`],
    /// counted (without overflow) before anything is expanded.
    fn trial_count(
        &self,
        root: &dyn TableLike,
        grid: &[Axis],
        random: Option<&Random>,
    ) -> Result<(), SweepFileError> {
        let limit = format!(
            "at most {} trials in a sweep",
            thousands(MAX_TRIALS as u128)
        );
        let cells = grid
            .iter()
            .try_fold(1u128, |n, axis| n.checked_mul(axis.values.len() as u128));
        let cells_text = |cells: Option<u128>| match cells {
            Some(n) => thousands(n),
            None => "more than 10^38".into(),
        };
        if cells.is_none_or(|n| n > MAX_TRIALS as u128) {
            let message = format!("the grid has {} cells; {limit}", cells_text(cells));
            return Err(self.at(self.key_line(root, "grid"), Problem::TooLarge(message)));
        }
        let Some(random) = random else {
            return Ok(());
        };
        let table = root
            .get("random")
            .and_then(Item::as_table_like)
            .expect("`random` was read as a table");
        let line = self.key_line(table, "trials");
        let samples = random.trials as u128;
        if samples > MAX_TRIALS as u128 {
            let message = format!("{} samples; {limit}", thousands(samples));
            return Err(self.out_of_range(line, "random.trials", message));
        }
        let cells = cells.unwrap_or(1);
        if cells * samples > MAX_TRIALS as u128 {
            let message = format!(
                "the grid's {} cells × {} samples make {} trials; {limit}",
                thousands(cells),
                thousands(samples),
                thousands(cells * samples)
            );
            return Err(self.out_of_range(line, "random.trials", message));
        }
        Ok(())
    }

    /// `section.key`, at `line`, is not a hyperparameter that may vary; hints come from the
    /// axes and the section's `own` keys.
    fn not_an_axis(&self, line: usize, section: &str, key: &str, own: &[&str]) -> SweepFileError {
        let axes = self.axes();
        let known: Vec<&str> = own.iter().copied().chain(axes.iter().copied()).collect();
        let problem = match closest(key, &known) {
            Some(hint) => Problem::UnknownKey {
                key: format!("{section}.{key}"),
                hint: Some(format!("{section}.{hint}")),
            },
            None => Problem::NotAHyperparameter {
                key: format!("{section}.{key}"),
                known: axes.join(", "),
            },
        };
        self.at(line, problem)
    }

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
            let value = self.value(item, line, &full, "an integer")?;
            let v = self.int(value, line, &full, 0)? as usize;
            match key {
                "classes" => spec.classes = v,
                "size" => spec.size = v,
                "train" => spec.train = v,
                "val" => spec.val = v,
                "test" => spec.test = v,
                "seed" => spec.seed = v as u64,
                _ => unreachable!("only_known checked the keys"),
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
        let keys = ["rotation", "shift", "zoom", "hflip", "fill"];
        self.only_known(table, "data.augment", &keys)?;
        let mut augment = Augment::default();
        for (key, item) in table.iter() {
            let full = format!("data.augment.{key}");
            let line = self.key_line(table, key).max(line);
            let value = self.value(item, line, &full, "a value")?;
            match key {
                "hflip" => {
                    augment.hflip = value.as_bool().ok_or_else(|| {
                        self.refused(line, &full, value, Refusal::expected("true or false"))
                    })?
                }
                "fill" => {
                    augment.fill = value.as_str().and_then(|n| n.parse().ok()).ok_or_else(|| {
                        let expected = Refusal::expected("\"nearest\" or \"constant\"");
                        self.refused(line, &full, value, expected)
                    })?
                }
                "rotation" => augment.rotation = self.float(value, line, &full)?,
                "shift" => augment.shift = self.float(value, line, &full)?,
                "zoom" => augment.zoom = self.float(value, line, &full)?,
                _ => unreachable!("only_known checked the keys"),
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
            executor: Executor::Local,
            slurm: SlurmSettings::default(),
        };
        let keys = [
            "devices",
            "trials_per_device",
            "max_retries",
            "executor",
            "slurm",
        ];
        let Some(table) = self.section(root, "run", &keys)? else {
            return Ok(run);
        };
        for (key, item) in table.iter() {
            let full = format!("run.{key}");
            let line = self.key_line(table, key);
            if key == "slurm" {
                run.slurm = self.slurm(table, item)?;
                continue;
            }
            let value = self.value(item, line, &full, "a value")?;
            match key {
                "executor" => {
                    let names: Vec<&str> = Executor::ALL.iter().map(|e| e.name()).collect();
                    run.executor =
                        value.as_str().and_then(|v| v.parse().ok()).ok_or_else(|| {
                            let hint = value
                                .as_str()
                                .and_then(|v| closest(v, &names))
                                .map(|h| format!("\"{h}\""));
                            let refusal = Refusal::Expected {
                                expected: "\"local\" or \"slurm\"".into(),
                                hint,
                            };
                            self.refused(line, &full, value, refusal)
                        })?;
                }
                "devices" => run.devices = self.devices(value, line)?,
                "trials_per_device" => {
                    run.trials_per_device = self.int(value, line, &full, 1)? as usize
                }
                "max_retries" => run.max_retries = self.u32(value, line, &full, 0)?,
                _ => unreachable!("only_known checked the keys"),
            }
        }
        Ok(run)
    }

    /// The `[run.slurm]` table.
    fn slurm(&self, run: &dyn TableLike, item: &Item) -> Result<SlurmSettings, SweepFileError> {
        let line = self.key_line(run, "slurm");
        let table = item
            .as_table_like()
            .ok_or_else(|| self.wrong_type(line, "run.slurm", "a table"))?;
        let keys = [
            "partition",
            "gpus_per_trial",
            "cpus_per_trial",
            "mem",
            "time",
            "account",
            "qos",
            "max_parallel",
            "array_size",
            "sbatch_args",
            "warning_seconds",
            "max_requeues",
        ];
        self.only_known(table, "run.slurm", &keys)?;
        let mut slurm = SlurmSettings::default();
        for (key, item) in table.iter() {
            let full = format!("run.slurm.{key}");
            let line = self.key_line(table, key).max(line);
            let value = self.value(item, line, &full, "a value")?;
            let text = |shape: fn(&str) -> bool, expected: &str| match value.as_str() {
                Some(v) if shape(v) => Ok(Some(v.to_string())),
                _ => Err(self.refused(line, &full, value, Refusal::expected(expected))),
            };
            let name = |v: &str| !v.is_empty() && !v.contains(char::is_whitespace);
            let count = |min: i64| self.u32(value, line, &full, min);
            match key {
                "partition" => slurm.partition = text(name, "a partition's name")?,
                "account" => slurm.account = text(name, "an account's name")?,
                "qos" => slurm.qos = text(name, "a QOS's name")?,
                "mem" => slurm.mem = text(slurm_memory, "a size such as \"16G\" or \"4000M\"")?,
                "time" => {
                    let expected = "a time limit such as \"30\", \"2:00:00\" or \"1-12:00:00\"";
                    slurm.time = text(slurm_time, expected)?
                }
                "gpus_per_trial" => slurm.gpus_per_trial = count(0)?,
                "cpus_per_trial" => slurm.cpus_per_trial = count(1)?,
                "max_parallel" => slurm.max_parallel = Some(count(1)?),
                "array_size" => slurm.array_size = Some(count(1)?),
                "warning_seconds" => slurm.warning_seconds = count(1)?,
                "max_requeues" => slurm.max_requeues = count(0)?,
                "sbatch_args" => {
                    let args: Option<Vec<String>> = value
                        .as_array()
                        .and_then(|a| a.iter().map(|v| v.as_str().map(str::to_string)).collect());
                    slurm.sbatch_args = args.ok_or_else(|| {
                        let expected = "a list of strings, such as [\"--constraint=a100\"]";
                        self.refused(line, &full, value, Refusal::expected(expected))
                    })?;
                    if let Some((arg, option)) = slurm
                        .sbatch_args
                        .iter()
                        .find_map(|arg| reserved_sbatch_option(arg).map(|option| (arg, option)))
                    {
                        let message = format!(
                            "{arg:?} sets sbatch's `{option}`, which sweep sets itself (where \
                             the jobs write and what they run); use the `[run.slurm]` keys"
                        );
                        return Err(self.out_of_range(line, &full, message));
                    }
                }
                _ => unreachable!("only_known checked the keys"),
            }
        }
        Ok(slurm)
    }

    fn devices(&self, value: &Value, line: usize) -> Result<Devices, SweepFileError> {
        let refused = || {
            let expected = "\"auto\", \"cpu\", \"cuda:K\" or a list of \"cpu\"/\"cuda:K\"";
            self.refused(line, "run.devices", value, Refusal::expected(expected))
        };
        let device = |v: &Value| v.as_str()?.parse::<DeviceName>().ok();
        if value.as_str() == Some("auto") {
            return Ok(Devices::Auto);
        }
        if let Some(device) = device(value) {
            return Ok(Devices::List(vec![device]));
        }
        let list: Option<Vec<DeviceName>> = value
            .as_array()
            .and_then(|array| array.iter().map(device).collect());
        match list {
            Some(list) if !list.is_empty() => Ok(Devices::List(list)),
            _ => Err(refused()),
        }
    }
}

/// `n` with a comma between each group of three digits: `1,000,000`.
fn thousands(n: u128) -> String {
    let digits = n.to_string();
    let mut text = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            text.push(',');
        }
        text.push(digit);
    }
    text
}

/// Reading `[random]` and `[prune]`.
impl Reader<'_> {
    /// The `[random]` table; each distribution's bounds or values are checked like grid
    /// values, on top of the file's own `configs`.
    fn random(
        &self,
        root: &dyn TableLike,
        configs: &Configs,
    ) -> Result<Option<Random>, SweepFileError> {
        let Some(item) = root.get("random") else {
            return Ok(None);
        };
        let line = self.key_line(root, "random");
        let table = item
            .as_table_like()
            .ok_or_else(|| self.wrong_type(line, "random", "a table"))?;
        let (mut trials, mut seed) = (None, configs.train.seed);
        for (key, item) in table.iter() {
            let key_line = self.key_line(table, key);
            let full = format!("random.{key}");
            if let "trials" | "seed" = key {
                let value = self.value(item, key_line, &full, "an integer")?;
                match key {
                    "trials" => trials = Some(self.int(value, key_line, &full, 1)? as usize),
                    _ => seed = self.int(value, key_line, &full, 0)? as u64,
                }
            }
        }
        let axes = self.drawn(root, table, "random", &["trials", "seed"], configs)?;
        let Some(trials) = trials else {
            let key = "random.trials".to_string();
            return Err(self.at(line, Problem::Missing { key }));
        };
        if axes.is_empty() {
            let message = "draws no hyperparameter: add one, such as \
                           lr = { log_uniform = [0.0001, 0.1] }";
            return Err(self.out_of_range(line, "random", message.into()));
        }
        Ok(Some(Random { trials, seed, axes }))
    }

    /// The `[search]` table; its distributions are read as `[random]`'s. It stands alone: not
    /// with `[grid]` or `[random]` (its trials are suggested one by one, not crossed with
    /// cells), nor with halving, whose rungs wait for every trial of the sweep.
    fn search(
        &self,
        root: &dyn TableLike,
        configs: &Configs,
        run: &RunSettings,
        prune: Option<&Prune>,
    ) -> Result<Option<Search>, SweepFileError> {
        let Some(item) = root.get("search") else {
            return Ok(None);
        };
        let line = self.key_line(root, "search");
        let table = item
            .as_table_like()
            .ok_or_else(|| self.wrong_type(line, "search", "a table"))?;
        for other in ["grid", "random"] {
            if root.contains_key(other) {
                let message = format!(
                    "a search suggests its trials one by one from the results so far: it \
                     cannot be crossed with `[{other}]` (line {}); remove one of them",
                    self.key_line(root, other)
                );
                return Err(self.out_of_range(line, "search", message));
            }
        }
        if let Some(Prune::Halving { .. }) = prune {
            let message = "halving waits for every trial of the sweep at each rung, and a \
                           search makes its trials as others end: use `method = \"median\"`";
            let prune_line = self.key_line(root, "prune");
            return Err(self.out_of_range(prune_line, "prune.method", message.into()));
        }
        let own = ["method", "trials", "seed", "startup", "parallel"];
        let mut search = Search {
            method: SearchMethod::Tpe,
            trials: 0,
            seed: configs.train.seed,
            startup: sweep_search::Tpe::default().startup,
            parallel: run.trials_per_device,
            axes: Vec::new(),
        };
        let (mut method, mut trials) = (None, None);
        for (key, item) in table.iter().filter(|(key, _)| own.contains(key)) {
            let key_line = self.key_line(table, key);
            let full = format!("search.{key}");
            if key == "method" {
                let quoted: Vec<String> = SearchMethod::NAMES
                    .iter()
                    .map(|m| format!("\"{m}\""))
                    .collect();
                let expected = quoted.join(" or ");
                let value = self.value(item, key_line, &full, &expected)?;
                method = match value.as_str() {
                    Some("tpe") => Some(SearchMethod::Tpe),
                    Some("random") => {
                        let message = "random search is the `[random]` table: \
                                       `[random] trials = N` and the same distributions";
                        return Err(self.out_of_range(key_line, &full, message.into()));
                    }
                    _ => {
                        let hint = value
                            .as_str()
                            .and_then(|m| closest(m, &SearchMethod::NAMES))
                            .map(|h| format!("\"{h}\""));
                        let refusal = Refusal::Expected { expected, hint };
                        return Err(self.refused(key_line, &full, value, refusal));
                    }
                };
                continue;
            }
            let value = self.value(item, key_line, &full, "an integer")?;
            match key {
                "trials" => {
                    let n = self.int(value, key_line, &full, 1)? as u128;
                    if n > MAX_TRIALS as u128 {
                        let message = format!(
                            "{} trials; at most {} trials in a sweep",
                            thousands(n),
                            thousands(MAX_TRIALS as u128)
                        );
                        return Err(self.out_of_range(key_line, &full, message));
                    }
                    trials = Some(n as usize);
                }
                "seed" => search.seed = self.int(value, key_line, &full, 0)? as u64,
                "startup" => search.startup = self.u32(value, key_line, &full, 1)? as usize,
                "parallel" => search.parallel = self.u32(value, key_line, &full, 1)? as usize,
                _ => unreachable!("one of the own keys"),
            }
        }
        let missing = |key: &str| {
            let key = format!("search.{key}");
            self.at(line, Problem::Missing { key })
        };
        search.method = method.ok_or_else(|| missing("method"))?;
        search.trials = trials.ok_or_else(|| missing("trials"))?;
        search.axes = self.drawn(root, table, "search", &own, configs)?;
        if search.axes.is_empty() {
            let message = "searches no hyperparameter: add one, such as \
                           lr = { log_uniform = [0.0001, 0.1] }";
            return Err(self.out_of_range(line, "search", message.into()));
        }
        Ok(Some(search))
    }

    /// The drawn hyperparameters of `table` (the `[random]` or `[search]` table, named
    /// `section`): every key but its `own`, in file order, each a distribution checked on top
    /// of the file's `configs` and refused when it is also a grid axis.
    fn drawn(
        &self,
        root: &dyn TableLike,
        table: &dyn TableLike,
        section: &str,
        own: &[&str],
        configs: &Configs,
    ) -> Result<Vec<RandomAxis>, SweepFileError> {
        let grid = root.get("grid").and_then(Item::as_table_like);
        let mut axes = Vec::new();
        for (key, item) in table.iter().filter(|(key, _)| !own.contains(key)) {
            let key_line = self.key_line(table, key);
            let Some(hyperparameter) = self.axis(key) else {
                return Err(self.not_an_axis(key_line, section, key, own));
            };
            if let Some(grid) = grid.filter(|g| g.contains_key(key)) {
                let problem = Problem::GriddedAndDrawn {
                    section: section.to_string(),
                    key: key.to_string(),
                    grid_line: self.key_line(grid, key),
                };
                return Err(self.at(key_line, problem));
            }
            let distribution =
                self.distribution(&hyperparameter, section, item, key_line, configs)?;
            axes.push(RandomAxis {
                key: key.to_string(),
                distribution,
                param: self.params.is_some(),
            });
        }
        Ok(axes)
    }

    /// The distribution of `SECTION.KEY` (`random.lr`), written at `line`: `{ uniform = [low, high] }`, …
    fn distribution(
        &self,
        hyperparameter: &Hyperparameter,
        section: &str,
        item: &Item,
        line: usize,
        configs: &Configs,
    ) -> Result<Distribution, SweepFileError> {
        let full = format!("{section}.{}", hyperparameter.key);
        let form = hyperparameter.kind.form();
        let allowed: &[&str] = match form {
            Form::Float => &["uniform", "log_uniform", "choice"],
            Form::Int => &["int", "choice"],
            Form::Bool | Form::List | Form::Name => &["choice"],
        };
        let shapes: Vec<String> = allowed
            .iter()
            .map(|&name| match name {
                "choice" => "{ choice = [values] }".to_string(),
                _ => format!("{{ {name} = [low, high] }}"),
            })
            .collect();
        let shapes = match shapes.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => unreachable!("every form has a distribution"),
        };
        let Some(table) = item.as_table_like() else {
            let expected = format!("a distribution ({shapes})");
            let value = self.value(item, line, &full, &expected)?;
            return Err(self.refused(line, &full, value, Refusal::expected(&expected)));
        };
        let known: Vec<&str> = Distribution::NAMES.iter().copied().chain(["log"]).collect();
        self.only_known(table, &full, &known)?;
        let names: Vec<&str> = table
            .iter()
            .map(|(k, _)| k)
            .filter(|&k| k != "log")
            .collect();
        let name = match names[..] {
            [name] => name,
            [] => {
                let message = format!("give a distribution: {shapes}");
                return Err(self.out_of_range(line, &full, message));
            }
            [first, second, ..] => {
                let message = format!("give one distribution, not `{first}` and `{second}`");
                return Err(self.out_of_range(
                    self.key_line(table, second).max(line),
                    &full,
                    message,
                ));
            }
        };
        let name_line = self.key_line(table, name).max(line);
        let written = format!("{full}.{name}");
        if !allowed.contains(&name) {
            let values = match form {
                Form::Float => "numbers",
                Form::Int => "integers",
                Form::Bool => "true or false",
                Form::List => "lists of integers",
                Form::Name => "names",
            };
            let message = format!(
                "`{}` takes {values}: draw it from {shapes}",
                hyperparameter.key
            );
            return Err(self.out_of_range(name_line, &written, message));
        }
        let log = match table.get("log") {
            None => false,
            Some(item) => {
                let log_line = self.key_line(table, "log").max(line);
                let key = format!("{full}.log");
                if name != "int" {
                    let message = match name {
                        "uniform" => "only for `int`; for numbers use `log_uniform`",
                        _ => "only for `int`",
                    };
                    return Err(self.out_of_range(log_line, &key, message.into()));
                }
                let expected = "true or false";
                let value = self.value(item, log_line, &key, expected)?;
                value.as_bool().ok_or_else(|| {
                    self.refused(log_line, &key, value, Refusal::expected(expected))
                })?
            }
        };
        let expected = match name {
            "choice" => "a list of values",
            _ => "[low, high]",
        };
        let item = table.get(name).expect("`name` is a key of the table");
        let value = self.value(item, name_line, &written, expected)?;
        let values = match value {
            Value::Array(values) if name == "choice" || values.len() == 2 => values,
            _ => return Err(self.refused(name_line, &written, value, Refusal::expected(expected))),
        };
        if values.is_empty() {
            return Err(self.at(name_line, Problem::EmptyAxis { key: written }));
        }
        // Each bound or value is read as a grid value would be, under `random.KEY`.
        let settings = values
            .iter()
            .map(|v| {
                let line = self.line(v.span()).max(name_line);
                let mut trial = configs.clone();
                self.setting(hyperparameter, &full, v, line, &mut trial)
            })
            .collect::<Result<Vec<_>, _>>()?;
        if name == "choice" {
            return Ok(Distribution::Choice(settings));
        }
        let bounds_line = |i: usize| {
            self.line(values.get(i).and_then(Value::span))
                .max(name_line)
        };
        let out = |line: usize, message: String| Err(self.out_of_range(line, &written, message));
        match (&settings[0].param, &settings[1].param) {
            (&Param::Float(low), &Param::Float(high)) => {
                if let Some(i) = [low, high].iter().position(|b| !b.is_finite()) {
                    return out(
                        bounds_line(i),
                        format!("bounds must be finite, not {}", [low, high][i]),
                    );
                }
                if name == "log_uniform" {
                    if let Some(i) = [low, high].iter().position(|&b| b <= 0.0) {
                        return out(
                            bounds_line(i),
                            format!("bounds must be positive, not {}", [low, high][i]),
                        );
                    }
                }
                if low >= high {
                    let message = format!("low must be below high, not {}", self.written(value));
                    return out(name_line, message);
                }
                // A span past f64's range makes every draw and density infinite or NaN.
                if name == "uniform" && !(high - low).is_finite() {
                    let message = format!(
                        "high − low must be a finite number, not {}",
                        self.written(value)
                    );
                    return out(name_line, message);
                }
                Ok(match name {
                    "uniform" => Distribution::Uniform { low, high },
                    _ => Distribution::LogUniform { low, high },
                })
            }
            (&Param::Int(low), &Param::Int(high)) => {
                if low > high {
                    let message =
                        format!("low must not be above high, not {}", self.written(value));
                    return out(name_line, message);
                }
                if log && low < 1 {
                    let message = format!("log = true needs a low bound of at least 1, not {low}");
                    return out(bounds_line(0), message);
                }
                Ok(Distribution::Int { low, high, log })
            }
            _ => unreachable!("a float or int kind reads a float or an int"),
        }
    }

    /// The `[prune]` table.
    fn prune(&self, root: &dyn TableLike) -> Result<Option<Prune>, SweepFileError> {
        let keys = [
            "method",
            "min_epochs",
            "reduction_factor",
            "warmup_epochs",
            "min_trials",
        ];
        let Some(table) = self.section(root, "prune", &keys)? else {
            return Ok(None);
        };
        let Some(item) = table.get("method") else {
            let key = "prune.method".to_string();
            return Err(self.at(self.key_line(root, "prune"), Problem::Missing { key }));
        };
        let line = self.key_line(table, "method");
        let quoted: Vec<String> = Prune::METHODS.iter().map(|m| format!("\"{m}\"")).collect();
        let expected = quoted.join(" or ");
        let value = self.value(item, line, "prune.method", &expected)?;
        let Some(method) = value.as_str().filter(|m| Prune::METHODS.contains(m)) else {
            let hint = value
                .as_str()
                .and_then(|m| closest(m, &Prune::METHODS))
                .map(|h| format!("\"{h}\""));
            let refusal = Refusal::Expected { expected, hint };
            return Err(self.refused(line, "prune.method", value, refusal));
        };
        let own: [&str; 2] = match method {
            "halving" => ["min_epochs", "reduction_factor"],
            _ => ["warmup_epochs", "min_trials"],
        };
        if let Some((key, _)) = table
            .iter()
            .find(|(k, _)| *k != "method" && !own.contains(k))
        {
            let other = Prune::METHODS
                .iter()
                .find(|&&m| m != method)
                .expect("two methods");
            let message = format!("a key of method \"{other}\", not of \"{method}\"");
            let key_line = self.key_line(table, key);
            return Err(self.out_of_range(key_line, &format!("prune.{key}"), message));
        }
        let int = |key: &str, min: i64| -> Result<Option<u32>, SweepFileError> {
            let Some(item) = table.get(key) else {
                return Ok(None);
            };
            let full = format!("prune.{key}");
            let line = self.key_line(table, key);
            let value = self.value(item, line, &full, "an integer")?;
            let v = self.int(value, line, &full, min)?;
            u32::try_from(v)
                .map(Some)
                .map_err(|_| self.out_of_range(line, &full, format!("{v} is too large")))
        };
        Ok(Some(match method {
            "halving" => Prune::Halving {
                min_epochs: int("min_epochs", 1)?.ok_or_else(|| {
                    let key = "prune.min_epochs".to_string();
                    self.at(self.key_line(root, "prune"), Problem::Missing { key })
                })?,
                reduction_factor: int("reduction_factor", 2)?.unwrap_or(3),
            },
            _ => Prune::Median {
                warmup_epochs: int("warmup_epochs", 0)?.unwrap_or(1),
                min_trials: int("min_trials", 1)?.unwrap_or(3) as usize,
            },
        }))
    }
}

/// Whether `text` is a memory size as sbatch's `--mem` takes it: digits, then K, M, G or T.
/// The sbatch option that `arg` sets, when sweep sets it itself: what a job writes where
/// (`--output`, `--chdir`, …), what it runs (`--wrap`, `--array`) and how sweep follows it.
/// sbatch takes the last of repeated options, and `sbatch_args` come last, so a shared file
/// could otherwise send the jobs' logs anywhere.
fn reserved_sbatch_option(arg: &str) -> Option<&'static str> {
    const LONG: &[&str] = &[
        "--output",
        "--error",
        "--input",
        "--chdir",
        "--wrap",
        "--array",
        "--job-name",
        "--parsable",
        "--signal",
        "--requeue",
        "--no-requeue",
        "--open-mode",
        "--export",
        "--export-file",
    ];
    const SHORT: &[(&str, &str)] = &[
        ("-o", "--output"),
        ("-e", "--error"),
        ("-i", "--input"),
        ("-D", "--chdir"),
        ("-a", "--array"),
        ("-J", "--job-name"),
    ];
    let long = LONG.iter().copied().find(|option| {
        arg.strip_prefix(option)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('='))
    });
    long.or_else(|| {
        SHORT
            .iter()
            .find(|(short, _)| arg.starts_with(short))
            .map(|(_, long)| *long)
    })
}

fn slurm_memory(text: &str) -> bool {
    let digits = text.trim_end_matches(['K', 'M', 'G', 'T']);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && text.len() - digits.len() <= 1
}

/// Whether `text` is a time limit as sbatch's `--time` takes it: `M`, `M:S`, `H:M:S`, `D-H`,
/// `D-H:M` or `D-H:M:S`.
fn slurm_time(text: &str) -> bool {
    let number = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let (days, clock) = match text.split_once('-') {
        Some((days, clock)) => (Some(days), clock),
        None => (None, text),
    };
    let parts: Vec<&str> = clock.split(':').collect();
    days.is_none_or(number) && parts.iter().all(|p| number(p)) && parts.len() <= 3
}
