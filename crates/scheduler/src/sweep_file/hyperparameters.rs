//! The hyperparameters, in one table: [`HYPERPARAMETERS`] says for each key of `[model]` and
//! `[train]` how its values are written, whether it may be a grid axis, and what it sets in a
//! trial's configuration. The key check, the grid axes and how a value reaches a trial all
//! read it, so adding a hyperparameter is one line here.

use std::sync::Arc;

use sweep_model::{
    Arch, ModelConfig, Objective, OptimizerKind, ScheduleKind, TrainConfig, WeightInit,
};
use toml_edit::Value;

use super::error::Refusal;

/// What hyperparameters set: a trial's model and training configurations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Configs {
    pub model: ModelConfig,
    pub train: TrainConfig,
}

/// The section of the sweep file a hyperparameter belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Model,
    Train,
    /// A command trial's `[params]`: the user's program's own hyperparameters.
    Params,
}

impl Section {
    pub fn name(self) -> &'static str {
        match self {
            Section::Model => "model",
            Section::Train => "train",
            Section::Params => "params",
        }
    }
}

/// One value of a hyperparameter, as written in the file (and shown in a trial's params):
/// the store's, which keeps it typed in the database.
pub use sweep_store::Param;

/// A hyperparameter's value, read: what it shows, and how it sets a configuration.
#[derive(Clone)]
pub struct Setting {
    pub param: Param,
    set: Arc<dyn Fn(&mut Configs) + Send + Sync>,
}

impl Setting {
    fn new(param: Param, set: impl Fn(&mut Configs) + Send + Sync + 'static) -> Self {
        Setting {
            param,
            set: Arc::new(set),
        }
    }

    /// Sets this value in `configs`.
    pub fn apply(&self, configs: &mut Configs) {
        (self.set)(configs)
    }
}

impl std::fmt::Debug for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.param.fmt(f)
    }
}

impl PartialEq for Setting {
    /// Two settings of the same key are equal when their values are.
    fn eq(&self, other: &Self) -> bool {
        self.param == other.param
    }
}

/// The form of a hyperparameter's values, which decides the distributions it may be drawn
/// from in `[random]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Int,
    Float,
    Bool,
    List,
    Name,
}

/// How a hyperparameter's values are written, and what one sets.
pub trait Kind: Sync {
    fn read(&self, value: &Value) -> Result<Setting, Refusal>;
    fn form(&self) -> Form;
}

/// A hyperparameter: its key, its section, whether it may be a grid axis, and its kind.
#[derive(Clone, Copy)]
pub struct Hyperparameter<'k> {
    pub key: &'k str,
    pub section: Section,
    pub axis: bool,
    pub kind: &'static dyn Kind,
}

const AXIS: bool = true;
const FIXED: bool = false;

const fn hyperparameter(
    key: &'static str,
    section: Section,
    axis: bool,
    kind: &'static dyn Kind,
) -> Hyperparameter<'static> {
    Hyperparameter {
        key,
        section,
        axis,
        kind,
    }
}

use Section::{Model, Train};

/// Every hyperparameter, in the order the grid axes are listed in errors.
pub const HYPERPARAMETERS: &[Hyperparameter<'static>] = &[
    hyperparameter(
        "arch",
        Model,
        AXIS,
        &Choice::<Arch>(|c, v| c.model.arch = v),
    ),
    hyperparameter("filters", Model, AXIS, &Widths(|c, v| c.model.filters = v)),
    hyperparameter("blocks", Model, AXIS, &Widths(|c, v| c.model.blocks = v)),
    hyperparameter(
        "neurons",
        Model,
        AXIS,
        &Int::<usize>(1, |c, v| c.model.neurons = v),
    ),
    hyperparameter("hidden", Model, AXIS, &Widths(|c, v| c.model.hidden = v)),
    hyperparameter("dropout", Model, AXIS, &Float(|c, v| c.model.dropout = v)),
    hyperparameter(
        "block_dense",
        Model,
        AXIS,
        &Bool(|c, v| c.model.block_dense = v),
    ),
    hyperparameter(
        "init",
        Model,
        AXIS,
        &Choice::<WeightInit>(|c, v| c.model.init = v),
    ),
    hyperparameter(
        "bn_momentum",
        Model,
        AXIS,
        &Float(|c, v| c.model.bn_momentum = v),
    ),
    hyperparameter("bn_eps", Model, AXIS, &Float(|c, v| c.model.bn_eps = v)),
    hyperparameter(
        "epochs",
        Train,
        AXIS,
        &Int::<u32>(1, |c, v| c.train.epochs = v),
    ),
    hyperparameter(
        "batch_size",
        Train,
        AXIS,
        &Int::<usize>(2, |c, v| c.train.batch_size = v),
    ),
    hyperparameter(
        "optimizer",
        Train,
        AXIS,
        &Choice::<OptimizerKind>(|c, v| c.train.optimizer = v),
    ),
    hyperparameter("lr", Train, AXIS, &Float(|c, v| c.train.lr = v)),
    hyperparameter("momentum", Train, AXIS, &Float(|c, v| c.train.momentum = v)),
    hyperparameter("seed", Train, AXIS, &Int::<u64>(0, |c, v| c.train.seed = v)),
    hyperparameter("eps", Train, AXIS, &Float(|c, v| c.train.eps = v)),
    hyperparameter(
        "weight_decay",
        Train,
        AXIS,
        &Float(|c, v| c.train.weight_decay = v),
    ),
    hyperparameter("nesterov", Train, AXIS, &Bool(|c, v| c.train.nesterov = v)),
    hyperparameter(
        "label_smoothing",
        Train,
        AXIS,
        &Float(|c, v| c.train.label_smoothing = v),
    ),
    hyperparameter(
        "patience",
        Train,
        AXIS,
        &Int::<u32>(0, |c, v| c.train.patience = v),
    ),
    hyperparameter(
        "schedule",
        Train,
        AXIS,
        &Choice::<ScheduleKind>(|c, v| c.train.schedule = v),
    ),
    hyperparameter(
        "warmup_epochs",
        Train,
        AXIS,
        &Int::<u32>(0, |c, v| c.train.warmup_epochs = Some(v)),
    ),
    hyperparameter(
        "min_lr",
        Train,
        AXIS,
        &Float(|c, v| c.train.min_lr = Some(v)),
    ),
    hyperparameter(
        "step_size",
        Train,
        AXIS,
        &Int::<u32>(1, |c, v| c.train.step_size = Some(v)),
    ),
    hyperparameter("gamma", Train, AXIS, &Float(|c, v| c.train.gamma = Some(v))),
    hyperparameter(
        "factor",
        Train,
        AXIS,
        &Float(|c, v| c.train.factor = Some(v)),
    ),
    hyperparameter(
        "plateau_patience",
        Train,
        AXIS,
        &Int::<u32>(0, |c, v| c.train.plateau_patience = Some(v)),
    ),
    hyperparameter(
        "max_lr",
        Train,
        AXIS,
        &Float(|c, v| c.train.max_lr = Some(v)),
    ),
    hyperparameter(
        "objective",
        Train,
        FIXED,
        &Choice::<Objective>(|c, v| c.train.objective = v),
    ),
];

/// The hyperparameter `key` of `section`.
pub fn find(section: Section, key: &str) -> Option<&'static Hyperparameter<'static>> {
    HYPERPARAMETERS
        .iter()
        .find(|h| h.section == section && h.key == key)
}

/// The keys of `section`.
pub fn keys(section: Section) -> Vec<&'static str> {
    HYPERPARAMETERS
        .iter()
        .filter(|h| h.section == section)
        .map(|h| h.key)
        .collect()
}

/// The hyperparameter a grid axis `key` varies, if it may be one.
pub fn axis(key: &str) -> Option<&'static Hyperparameter<'static>> {
    HYPERPARAMETERS.iter().find(|h| h.axis && h.key == key)
}

/// The keys that may be grid axes.
pub fn axes() -> Vec<&'static str> {
    HYPERPARAMETERS
        .iter()
        .filter(|h| h.axis)
        .map(|h| h.key)
        .collect()
}

/// A command trial's param `key`, whose default `value` decides the values it takes: an
/// integer's are integers, a number's numbers (integers too), a flag's flags, a name's names,
/// a list of integers' lists of integers. Its values set nothing in [`Configs`]: a command
/// trial's params are the values themselves.
pub fn param<'k>(key: &'k str, default: &Param) -> Hyperparameter<'k> {
    let kind: &'static dyn Kind = match default {
        Param::Int(_) => &ANY_INT,
        Param::Float(_) => &AnyFloat,
        Param::Bool(_) => &ANY_BOOL,
        Param::Text(_) => &AnyName,
        Param::Ints(_) => &AnyInts,
    };
    Hyperparameter {
        key,
        section: Section::Params,
        axis: AXIS,
        kind,
    }
}

/// A command trial's param's default, read from `[params]`.
pub fn param_default(value: &Value) -> Result<Param, Refusal> {
    let kind: &dyn Kind = match value {
        Value::Integer(_) => &ANY_INT,
        Value::Float(_) => &AnyFloat,
        Value::Boolean(_) => &ANY_BOOL,
        Value::String(_) => &AnyName,
        Value::Array(_) => &AnyInts,
        _ => {
            return Err(Refusal::expected(
                "a number, a string, true or false, or a list of integers",
            ))
        }
    };
    kind.read(value).map(|setting| setting.param)
}

/// Any integer (a command trial's param): it sets nothing.
const ANY_INT: Int<i64> = Int(i64::MIN, |_, _| {});
/// `true` or `false` (a command trial's param).
const ANY_BOOL: Bool = Bool(|_, _| {});
/// Any finite number (a command trial's param: `inf` has no JSON to pass it on in).
struct AnyFloat;
/// Any string (a command trial's param).
struct AnyName;
/// Any list of integers (a command trial's param).
struct AnyInts;

impl Kind for AnyFloat {
    fn form(&self) -> Form {
        Form::Float
    }
    fn read(&self, value: &Value) -> Result<Setting, Refusal> {
        let v = float(value)?;
        if !v.is_finite() {
            return Err(Refusal::Range(format!("must be finite, not {v}")));
        }
        Ok(Setting::new(Param::Float(v), |_| {}))
    }
}

impl Kind for AnyName {
    fn form(&self) -> Form {
        Form::Name
    }
    fn read(&self, value: &Value) -> Result<Setting, Refusal> {
        let v = value
            .as_str()
            .ok_or_else(|| Refusal::expected("a string"))?;
        Ok(Setting::new(Param::Text(v.to_string()), |_| {}))
    }
}

impl Kind for AnyInts {
    fn form(&self) -> Form {
        Form::List
    }
    fn read(&self, value: &Value) -> Result<Setting, Refusal> {
        Ok(Setting::new(Param::Ints(ints(value)?), |_| {}))
    }
}

/// An integer of at least its first field, converted to `T`.
pub struct Int<T>(pub i64, pub fn(&mut Configs, T));

/// A number.
pub struct Float(pub fn(&mut Configs, f64));

/// A flag: `true` or `false`.
pub struct Bool(pub fn(&mut Configs, bool));

/// A list of positive widths (channels or neurons).
pub struct Widths(pub fn(&mut Configs, Vec<usize>));

/// One of the names of `T`.
pub struct Choice<T>(pub fn(&mut Configs, T));

/// An integer of at least `min`.
pub fn int(value: &Value, min: i64) -> Result<i64, Refusal> {
    let v = value
        .as_integer()
        .ok_or_else(|| Refusal::expected("an integer"))?;
    if v < min {
        return Err(Refusal::Range(format!("must be at least {min}, not {v}")));
    }
    Ok(v)
}

/// A list of integers.
fn ints(value: &Value) -> Result<Vec<i64>, Refusal> {
    value
        .as_array()
        .and_then(|a| a.iter().map(Value::as_integer).collect())
        .ok_or_else(|| Refusal::expected("a list of integers"))
}

/// A number (an integer is one too).
pub fn float(value: &Value) -> Result<f64, Refusal> {
    value
        .as_float()
        .or_else(|| value.as_integer().map(|i| i as f64))
        .ok_or_else(|| Refusal::expected("a number"))
}

impl<T: TryFrom<i64> + Clone + Send + Sync + 'static> Kind for Int<T> {
    fn form(&self) -> Form {
        Form::Int
    }

    fn read(&self, value: &Value) -> Result<Setting, Refusal> {
        let v = int(value, self.0)?;
        let t = T::try_from(v).map_err(|_| Refusal::Range(format!("{v} is too large")))?;
        let set = self.1;
        Ok(Setting::new(Param::Int(v), move |c| set(c, t.clone())))
    }
}

impl Kind for Float {
    fn form(&self) -> Form {
        Form::Float
    }

    fn read(&self, value: &Value) -> Result<Setting, Refusal> {
        let v = float(value)?;
        let set = self.0;
        Ok(Setting::new(Param::Float(v), move |c| set(c, v)))
    }
}

impl Kind for Bool {
    fn form(&self) -> Form {
        Form::Bool
    }

    fn read(&self, value: &Value) -> Result<Setting, Refusal> {
        let v = value
            .as_bool()
            .ok_or_else(|| Refusal::expected("true or false"))?;
        let set = self.0;
        Ok(Setting::new(Param::Bool(v), move |c| set(c, v)))
    }
}

impl Kind for Widths {
    fn form(&self) -> Form {
        Form::List
    }

    fn read(&self, value: &Value) -> Result<Setting, Refusal> {
        let ints = ints(value)?;
        if let Some(bad) = ints.iter().find(|&&w| w < 1) {
            return Err(Refusal::Range(format!("must be at least 1, not {bad}")));
        }
        let widths: Vec<usize> = ints.iter().map(|&w| w as usize).collect();
        let set = self.0;
        Ok(Setting::new(Param::Ints(ints), move |c| {
            set(c, widths.clone())
        }))
    }
}

/// A hyperparameter whose values are names: the model crate's `ALL`, `name()` and `FromStr`.
pub trait Choices: std::str::FromStr + Clone + Send + Sync + 'static {
    fn all() -> &'static [Self];
    fn name(&self) -> &'static str;
}

impl<T: Choices> Kind for Choice<T> {
    fn form(&self) -> Form {
        Form::Name
    }

    fn read(&self, value: &Value) -> Result<Setting, Refusal> {
        let name = value.as_str();
        let Some(choice) = name.and_then(|n| n.parse::<T>().ok()) else {
            let names: Vec<&str> = T::all().iter().map(T::name).collect();
            let quoted: Vec<String> = names.iter().map(|c| format!("\"{c}\"")).collect();
            let hint = name.and_then(|n| super::error::closest(n, &names));
            return Err(Refusal::Expected {
                expected: format!("one of {}", quoted.join(", ")),
                hint: hint.map(|h| format!("\"{h}\"")),
            });
        };
        let set = self.0;
        Ok(Setting::new(Param::Text(choice.name().into()), move |c| {
            set(c, choice.clone())
        }))
    }
}

impl Choices for Arch {
    fn all() -> &'static [Self] {
        &Arch::ALL
    }
    fn name(&self) -> &'static str {
        Arch::name(self)
    }
}

impl Choices for WeightInit {
    fn all() -> &'static [Self] {
        &WeightInit::ALL
    }
    fn name(&self) -> &'static str {
        WeightInit::name(self)
    }
}

impl Choices for OptimizerKind {
    fn all() -> &'static [Self] {
        &OptimizerKind::ALL
    }
    fn name(&self) -> &'static str {
        OptimizerKind::name(self)
    }
}

impl Choices for ScheduleKind {
    fn all() -> &'static [Self] {
        &ScheduleKind::ALL
    }
    fn name(&self) -> &'static str {
        ScheduleKind::name(self)
    }
}

impl Choices for Objective {
    fn all() -> &'static [Self] {
        &Objective::ALL
    }
    fn name(&self) -> &'static str {
        Objective::name(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> Value {
        text.parse().unwrap()
    }

    #[test]
    fn every_hyperparameter_reads_a_value_and_sets_its_own_field_only() {
        let written = [
            ("arch", "\"mlp\""),
            ("filters", "[8, 16]"),
            ("blocks", "[3, 4, 6]"),
            ("neurons", "7"),
            ("hidden", "[5]"),
            ("dropout", "0.25"),
            ("block_dense", "true"),
            ("init", "\"keras\""),
            ("bn_momentum", "0.01"),
            ("bn_eps", "0.001"),
            ("epochs", "3"),
            ("batch_size", "16"),
            ("optimizer", "\"sgd\""),
            ("lr", "0.5"),
            ("momentum", "0.8"),
            ("seed", "11"),
            ("eps", "1e-7"),
            ("weight_decay", "5e-4"),
            ("nesterov", "true"),
            ("label_smoothing", "0.1"),
            ("patience", "3"),
            ("schedule", "\"cosine\""),
            ("warmup_epochs", "2"),
            ("min_lr", "1e-5"),
            ("step_size", "4"),
            ("gamma", "0.5"),
            ("factor", "0.2"),
            ("plateau_patience", "3"),
            ("max_lr", "0.1"),
            ("objective", "\"val_loss\""),
        ];
        assert_eq!(
            written.map(|(k, _)| k).to_vec(),
            HYPERPARAMETERS.iter().map(|h| h.key).collect::<Vec<_>>(),
            "every hyperparameter is tested"
        );
        for (key, text) in written {
            let hyper = HYPERPARAMETERS.iter().find(|h| h.key == key).unwrap();
            let mut configs = Configs::default();
            hyper.kind.read(&value(text)).unwrap().apply(&mut configs);
            assert_ne!(configs, Configs::default(), "{key} changes something");
            let json = |c: &Configs| {
                let mut v = serde_json::json!({ "model": c.model, "train": c.train });
                v[hyper.section.name()][key] = serde_json::Value::Null;
                v
            };
            assert_eq!(
                json(&configs),
                json(&Configs::default()),
                "{key} changes nothing but `{}.{key}`",
                hyper.section.name()
            );
        }
    }

    #[test]
    fn values_of_the_wrong_kind_or_range_are_refused() {
        let read = |key: &str, text: &str| {
            let hyper = HYPERPARAMETERS.iter().find(|h| h.key == key).unwrap();
            hyper.kind.read(&value(text)).unwrap_err()
        };
        assert_eq!(read("neurons", "1.5"), Refusal::expected("an integer"));
        assert_eq!(
            read("neurons", "0"),
            Refusal::Range("must be at least 1, not 0".into())
        );
        assert_eq!(
            read("epochs", "5000000000"),
            Refusal::Range("5000000000 is too large".into())
        );
        assert_eq!(read("lr", "\"fast\""), Refusal::expected("a number"));
        assert_eq!(read("block_dense", "1"), Refusal::expected("true or false"));
        assert_eq!(
            read("block_dense", "\"true\""),
            Refusal::expected("true or false")
        );
        assert_eq!(
            read("filters", "[8, \"x\"]"),
            Refusal::expected("a list of integers")
        );
        assert_eq!(
            read("optimizer", "\"rmsprob\""),
            Refusal::Expected {
                expected: "one of \"adam\", \"sgd\", \"rmsprop\", \"adamw\"".into(),
                hint: Some("\"rmsprop\"".into())
            }
        );
        assert_eq!(
            axes().len(),
            HYPERPARAMETERS.len() - 1,
            "all but the objective"
        );
        assert!(axis("objective").is_none());
        assert_eq!(find(Section::Train, "lr").map(|h| h.key), Some("lr"));
        assert!(find(Section::Model, "lr").is_none());
    }
}
