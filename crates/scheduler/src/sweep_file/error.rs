//! [`SweepFileError`]: a [`Problem`] with the file, and the line when there is one, around
//! it (as ripgrep's `ignore::Error` wraps a cause in `WithPath` and `WithLineNumber`), so no
//! variant repeats where it happened.

use std::path::PathBuf;

/// Why a sweep file cannot be used: `FILE:LINE: problem`.
#[derive(Debug, thiserror::Error)]
#[error("{path}{}: {problem}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct SweepFileError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub problem: Problem,
}

/// What is wrong in a sweep file.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error("{0}")]
    Io(std::io::Error),
    #[error("{0}")]
    Syntax(String),
    #[error("unknown key `{key}`{}", hint.as_ref().map(|h| format!(" (did you mean `{h}`?)")).unwrap_or_default())]
    UnknownKey { key: String, hint: Option<String> },
    #[error("`{key}` must be {expected}")]
    WrongType { key: String, expected: String },
    /// `found` is the value as written in the file, with the closest valid value when it
    /// looks like a typo of one: `"rmsprob" (did you mean "rmsprop"?)`.
    #[error("`{key}` must be {expected}, not {found}")]
    BadValue {
        key: String,
        expected: String,
        found: String,
    },
    #[error("`{key}`: {message}")]
    OutOfRange { key: String, message: String },
    /// `key` is written in full: `grid.lr`, `random.optimizer.choice`.
    #[error("`{key}` has no values")]
    EmptyAxis { key: String },
    /// `key` is written in full: `grid.colour`, `random.colour`.
    #[error("`{key}` is not a hyperparameter (grid axes: {known})")]
    NotAHyperparameter { key: String, known: String },
    /// `section` is `random` or `search`.
    #[error("`{section}.{key}` is also a grid axis (`grid.{key}`, line {grid_line}): a hyperparameter is either gridded or drawn")]
    GriddedAndDrawn {
        section: String,
        key: String,
        grid_line: usize,
    },
    /// The file, or what it expands to, is beyond a documented limit.
    #[error("{0}")]
    TooLarge(String),
    #[error("missing `{key}`")]
    Missing { key: String },
}

impl SweepFileError {
    /// Whether the user's input is at fault (the cli exits 2 for it): its problem's answer.
    pub fn is_bad_input(&self) -> bool {
        self.problem.is_bad_input()
    }
}

impl Problem {
    /// Whether the user's input is at fault (the cli exits 2 for it, 1 for any other
    /// failure). A match with no catch-all: a new variant must be decided here.
    pub fn is_bad_input(&self) -> bool {
        match self {
            // The sweep file is the user's: one that cannot be read is bad input too.
            Problem::Io(_)
            | Problem::Syntax(_)
            | Problem::UnknownKey { .. }
            | Problem::WrongType { .. }
            | Problem::BadValue { .. }
            | Problem::OutOfRange { .. }
            | Problem::EmptyAxis { .. }
            | Problem::NotAHyperparameter { .. }
            | Problem::GriddedAndDrawn { .. }
            | Problem::TooLarge(_)
            | Problem::Missing { .. } => true,
        }
    }
}

/// Why a value was refused, before the reader says where and under which key.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// Not of the kind expected; `hint` is a quoted valid value it resembles.
    Expected {
        expected: String,
        hint: Option<String>,
    },
    /// Of the right kind, out of range.
    Range(String),
}

impl Refusal {
    pub fn expected(expected: &str) -> Self {
        Refusal::Expected {
            expected: expected.to_string(),
            hint: None,
        }
    }
}

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
