//! [`UnknownName`]: the error of parsing a name that is none of an enum's names (an
//! architecture, an optimizer, an objective), listing the valid ones.

/// A name that is not one of `valid`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{name}` (use one of: {})", valid.join(", "))]
pub struct UnknownName {
    /// What was being named: `architecture`, `optimizer`, `objective`.
    pub what: &'static str,
    pub name: String,
    pub valid: Vec<&'static str>,
}

/// The element of `all` whose `name` is `text`.
pub(crate) fn parse_name<T: Copy>(
    what: &'static str,
    text: &str,
    all: &[T],
    name: fn(&T) -> &'static str,
) -> Result<T, UnknownName> {
    all.iter()
        .find(|item| name(item) == text)
        .copied()
        .ok_or_else(|| UnknownName {
            what,
            name: text.to_string(),
            valid: all.iter().map(name).collect(),
        })
}
