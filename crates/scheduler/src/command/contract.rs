//! The contract between `sweep` and a command trial's program, apart from running it: the
//! environment it is given, how `{name}` in its command is replaced by a param's value, and
//! what one line of its metrics file must be. Documented for users in the README's "Command
//! trials"; the Python helper (`python/sweep_trial.py`) is one reading of it.

use std::collections::BTreeMap;

use sweep_store::{Param, Params};

/// The trial's folder, for the program's checkpoints and outputs (absolute).
pub const TRIAL_DIR: &str = "SWEEP_TRIAL_DIR";
/// The file the program appends its metrics to, one JSON object per line.
pub const METRICS: &str = "SWEEP_METRICS";
/// The trial's params, as one JSON object.
pub const PARAMS: &str = "SWEEP_PARAMS";
/// The epochs the trial trains in all.
pub const EPOCHS: &str = "SWEEP_EPOCHS";
/// When set: stop after this epoch and exit 0 (the trial pauses at a rung).
pub const UNTIL_EPOCH: &str = "SWEEP_UNTIL_EPOCH";
/// The trial's seed: its `seed` param when it has an integer one, else 0.
pub const SEED: &str = "SWEEP_SEED";
/// The device as the program sees it: `cpu`, or `cuda:0` (its one visible GPU).
pub const DEVICE: &str = "SWEEP_DEVICE";
/// The CPU threads the trial's slot has.
pub const THREADS: &str = "SWEEP_THREADS";

/// The file in a trial's folder that `SWEEP_METRICS` names.
pub const METRICS_FILE: &str = "metrics.jsonl";

/// The longest metrics line read, in bytes: a longer one fails the trial.
pub const MAX_METRICS_LINE: usize = 1 << 20;

/// A piece of a command argument: text as written, or a param's name in braces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(String),
    Name(&'a str),
}

/// `arg` cut into text and `{name}`s; `{{` and `}}` are literal braces.
pub fn pieces(arg: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut rest = arg;
    while let Some(i) = rest.find(['{', '}']) {
        text.push_str(&rest[..i]);
        let (brace, after) = (rest.as_bytes()[i], &rest[i + 1..]);
        if after.as_bytes().first() == Some(&brace) {
            text.push(brace as char);
            rest = &after[1..];
            continue;
        }
        if brace == b'}' {
            return Err(format!(
                "`}}` without its `{{` in {arg:?} (write `}}}}` for a brace)"
            ));
        }
        let Some(end) = after.find('}') else {
            return Err(format!(
                "`{{` without its `}}` in {arg:?} (write `{{{{` for a brace)"
            ));
        };
        let name = &after[..end];
        if !is_param_name(name) {
            return Err(format!(
                "`{{{name}}}` in {arg:?} is not a param's name (letters, digits and _)"
            ));
        }
        if !text.is_empty() {
            out.push(Piece::Text(std::mem::take(&mut text)));
        }
        out.push(Piece::Name(name));
        rest = &after[end + 1..];
    }
    text.push_str(rest);
    if !text.is_empty() || out.is_empty() {
        out.push(Piece::Text(text));
    }
    Ok(out)
}

/// Whether `name` may be a param's name (and so appear as `{name}` in a command).
pub fn is_param_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A param's value as it replaces `{name}`: a name as it is, a number or a list as JSON.
pub fn argument(value: &Param) -> String {
    value.to_string()
}

/// `command` with every `{name}` replaced by its param's value: the argv the program gets.
/// The sweep file's reader has checked that every name is a param.
pub fn substitute(command: &[String], params: &Params) -> Result<Vec<String>, String> {
    command
        .iter()
        .map(|arg| {
            let mut out = String::new();
            for piece in pieces(arg)? {
                match piece {
                    Piece::Text(text) => out.push_str(&text),
                    Piece::Name(name) => match params.get(name) {
                        Some(value) => out.push_str(&argument(value)),
                        None => return Err(format!("`{{{name}}}` names no param")),
                    },
                }
            }
            Ok(out)
        })
        .collect()
}

/// The seed a trial's program is given: its `seed` param, when it is an integer.
pub fn seed(params: &Params) -> i64 {
    match params.get("seed") {
        Some(Param::Int(seed)) => *seed,
        _ => 0,
    }
}

/// One epoch as the program reported it on a line of its metrics file.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub epoch: u32,
    /// The epoch's wall time, when the program says it (`"seconds"`).
    pub seconds: Option<f64>,
    /// Every other key: a metric.
    pub metrics: BTreeMap<String, f64>,
}

/// Reads one line of a metrics file: a JSON object with an integer `epoch` (from 1), an
/// optional `seconds`, and finite numbers for every other key. The error names what is wrong,
/// for the trial's error.
pub fn parse_report(line: &str) -> Result<Report, String> {
    let object: serde_json::Map<String, serde_json::Value> = match serde_json::from_str(line) {
        Ok(serde_json::Value::Object(object)) => object,
        Ok(_) => return Err("not a JSON object".into()),
        Err(e) => {
            return Err(match non_finite_key(line) {
                Some(key) => format!("`{key}` is not a finite number (NaN or infinite)"),
                None => format!("not JSON: {e}"),
            })
        }
    };
    let epoch = match object.get("epoch") {
        None => return Err("no `epoch`".into()),
        Some(value) => match value.as_u64() {
            Some(epoch @ 1..=0xffff_ffff) => epoch as u32,
            _ => return Err(format!("`epoch` must be an integer from 1, not {value}")),
        },
    };
    let mut seconds = None;
    let mut metrics = BTreeMap::new();
    for (key, value) in &object {
        if key == "epoch" {
            continue;
        }
        let Some(number) = value.as_f64() else {
            return Err(format!("`{key}` must be a number, not {value}"));
        };
        if key == "seconds" {
            if number < 0.0 {
                return Err(format!("`seconds` must not be negative, not {number}"));
            }
            seconds = Some(number);
        } else if key.is_empty() {
            return Err("a metric's name is empty".into());
        } else {
            metrics.insert(key.clone(), number);
        }
    }
    Ok(Report {
        epoch,
        seconds,
        metrics,
    })
}

/// The key of the first `NaN`, `Infinity` or `-Infinity` written as a bare value (as Python's
/// `json.dumps` writes them), outside strings: what made a line that is otherwise JSON fail.
fn non_finite_key(line: &str) -> Option<String> {
    let bytes = line.as_bytes();
    let (mut i, mut in_string, mut last_string) = (0, false, String::new());
    let mut current = String::new();
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => {
                    in_string = false;
                    last_string = std::mem::take(&mut current);
                }
                _ => current.push(b as char),
            }
        } else if b == b'"' {
            in_string = true;
        } else {
            let rest = &line[i..];
            if ["NaN", "Infinity", "-Infinity"]
                .iter()
                .any(|token| rest.starts_with(token))
            {
                return Some(last_string);
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params {
        [
            ("lr".to_string(), Param::Float(0.001)),
            ("optimizer".to_string(), Param::Text("adam".into())),
            ("width".to_string(), Param::Int(64)),
            ("widths".to_string(), Param::Ints(vec![8, 16])),
            ("flag".to_string(), Param::Bool(true)),
        ]
        .into()
    }

    #[test]
    fn each_name_in_braces_is_replaced_by_its_value_and_double_braces_are_braces() {
        let command: Vec<String> = [
            "python3",
            "train.py",
            "--lr={lr}",
            "{optimizer}",
            "w{width}x{width}",
            "{widths}",
            "{flag}",
            "{{lr}}",
            "a}}b{{",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            substitute(&command, &params()).unwrap(),
            [
                "python3",
                "train.py",
                "--lr=0.001",
                "adam",
                "w64x64",
                "[8,16]",
                "true",
                "{lr}",
                "a}b{"
            ]
        );
        let float = [("lr".to_string(), Param::Float(1.0))].into();
        assert_eq!(
            substitute(&["{lr}".to_string()], &float).unwrap(),
            ["1.0"],
            "a number stays one"
        );
    }

    #[test]
    fn a_brace_without_its_pair_or_an_unknown_name_is_refused() {
        for (arg, message) in [
            ("{lr", "`{` without its `}`"),
            ("lr}", "`}` without its `{`"),
            ("{}", "`{}` in \"{}\" is not a param's name"),
            ("{l r}", "is not a param's name"),
            ("{1x}", "is not a param's name"),
        ] {
            let error = pieces(arg).unwrap_err();
            assert!(error.contains(message), "{arg}: {error}");
        }
        let error = substitute(&["{lrr}".to_string()], &params()).unwrap_err();
        assert_eq!(error, "`{lrr}` names no param");
        assert_eq!(
            pieces("{lr}").unwrap(),
            [Piece::Name("lr")],
            "no empty text around a name"
        );
        assert_eq!(pieces("").unwrap(), [Piece::Text(String::new())]);
    }

    #[test]
    fn a_metrics_line_is_an_epoch_and_finite_numbers_by_name() {
        let report =
            parse_report(r#"{"epoch": 3, "train_loss": 0.81, "val_acc": 1, "seconds": 2.5}"#)
                .unwrap();
        assert_eq!(report.epoch, 3);
        assert_eq!(report.seconds, Some(2.5));
        assert_eq!(
            report.metrics,
            [
                ("train_loss".to_string(), 0.81),
                ("val_acc".to_string(), 1.0)
            ]
            .into()
        );
        for (line, error) in [
            ("[1, 2]", "not a JSON object"),
            ("{\"epoch\": 1, ", "not JSON"),
            ("{\"val_acc\": 0.5}", "no `epoch`"),
            ("{\"epoch\": 0}", "`epoch` must be an integer from 1, not 0"),
            (
                "{\"epoch\": 1.5}",
                "`epoch` must be an integer from 1, not 1.5",
            ),
            (
                "{\"epoch\": \"2\"}",
                "`epoch` must be an integer from 1, not \"2\"",
            ),
            (
                "{\"epoch\": 1, \"val_loss\": NaN}",
                "`val_loss` is not a finite number",
            ),
            (
                "{\"epoch\": 1, \"a\": 1, \"val_loss\": -Infinity}",
                "`val_loss` is not a finite number",
            ),
            (
                "{\"epoch\": 1, \"note\": \"NaN\"}",
                "`note` must be a number, not \"NaN\"",
            ),
            (
                "{\"epoch\": 1, \"ok\": true}",
                "`ok` must be a number, not true",
            ),
            (
                "{\"epoch\": 1, \"seconds\": -1}",
                "`seconds` must not be negative",
            ),
        ] {
            let got = parse_report(line).unwrap_err();
            assert!(got.contains(error), "{line}: {got}");
        }
    }

    #[test]
    fn the_seed_is_the_seed_param_when_it_is_an_integer() {
        assert_eq!(seed(&params()), 0);
        let with = [("seed".to_string(), Param::Int(7))].into();
        assert_eq!(seed(&with), 7);
        let text = [("seed".to_string(), Param::Text("x".into()))].into();
        assert_eq!(seed(&text), 0);
    }
}
