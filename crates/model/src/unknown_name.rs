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

/// Asserts that every item's name parses back to the item, and that an unknown name's error
/// lists every valid name.
#[cfg(test)]
pub(crate) fn assert_names_round_trip<T>(all: &[T], name: fn(&T) -> &'static str)
where
    T: std::str::FromStr<Err = UnknownName> + PartialEq + std::fmt::Debug,
{
    for item in all {
        assert_eq!(name(item).parse::<T>().as_ref(), Ok(item));
    }
    let err = "nope".parse::<T>().unwrap_err().to_string();
    let valid: Vec<&str> = all.iter().map(name).collect();
    assert!(err.contains(&valid.join(", ")), "{err}");
}
