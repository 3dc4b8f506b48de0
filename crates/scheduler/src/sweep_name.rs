//! A sweep's name becomes a folder (`results/NAME/`), a Slurm job name and part of a page's
//! URL, and a sweep file is something people pass around: so the name is untrusted input.
//! [`check`] is the rule, applied where the file is read (with its line); [`folder`] is the
//! second line of defence, applied wherever a name becomes a path, so that a name from
//! anywhere else (an old database, the command line) cannot leave the folder either.

use std::path::{Component, Path, PathBuf};

/// The longest name, in bytes: well under any filesystem's limit for one path component
/// (255 bytes), with room for what other tools add (`sweep-NAME` as a Slurm job name).
pub const MAX_LEN: usize = 100;

/// Names that are folders of `results/` already.
const RESERVED: &[&str] = &["cache"];

/// Why `name` cannot be a sweep's name, or `None` when it can: one path component of 1 to
/// [`MAX_LEN`] bytes made of letters, digits, spaces and `-_.+=@,`, not starting with `.` or
/// `-` (no `..`, no hidden folder, no option) and not ending with a space.
pub fn check(name: &str) -> Option<String> {
    let allowed = |c: char| c.is_alphanumeric() || " -_.+=@,".contains(c);
    if name.is_empty() {
        return Some("is empty".into());
    }
    if name.len() > MAX_LEN {
        return Some(format!("is {} bytes long; at most {MAX_LEN}", name.len()));
    }
    if let Some(c) = name.chars().find(|&c| !allowed(c)) {
        let what = match c {
            '/' | '\\' => "a path separator".to_string(),
            c if c.is_control() => format!("a control character ({:?})", c),
            c => format!("`{c}`"),
        };
        return Some(format!(
            "holds {what}: a sweep's name becomes a folder, so it takes letters, digits, \
             spaces and -_.+=@, only"
        ));
    }
    if name.starts_with('.') || name.starts_with('-') {
        return Some("starts with `.` or `-`: a sweep's name becomes a folder".into());
    }
    if name.ends_with(' ') {
        return Some("ends with a space".into());
    }
    if RESERVED.contains(&name) {
        return Some("is taken by the results folder's data cache; choose another".into());
    }
    None
}

/// A name that [`folder`] refused.
#[derive(Debug, thiserror::Error)]
#[error("the sweep name {name:?} {reason}")]
pub struct UnsafeName {
    pub name: String,
    pub reason: String,
}

impl UnsafeName {
    /// Whether the user's input is at fault: yes, the name is the user's.
    pub fn is_bad_input(&self) -> bool {
        true
    }
}

/// The folder of sweep `name` inside `root`: `root/name`, refused unless the name passes
/// [`check`] and the joined path is lexically one level below `root`.
pub fn folder(root: &Path, name: &str) -> Result<PathBuf, UnsafeName> {
    let refused = |reason: String| UnsafeName {
        name: name.to_string(),
        reason,
    };
    if let Some(reason) = check(name) {
        return Err(refused(reason));
    }
    let mut components = Path::new(name).components();
    match (components.next(), components.next()) {
        (Some(Component::Normal(_)), None) => Ok(root.join(name)),
        _ => Err(refused("is not one folder's name".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_pass() {
        for name in [
            "cnn",
            "cnn-final",
            "resnet 64x64",
            "lr=0.01,adam",
            "mlp_v2.1",
            "ü",
        ] {
            assert_eq!(check(name), None, "{name}");
            assert_eq!(
                folder(Path::new("r"), name).unwrap(),
                Path::new("r").join(name)
            );
        }
    }

    #[test]
    fn names_that_would_leave_the_folder_are_refused() {
        let hostile = [
            "",
            "..",
            ".",
            "../../../tmp/x",
            "/some/abs/path",
            "a/b",
            "a\\b",
            "a\0b",
            "a\nb",
            "\u{1b}[31m",
            ".hidden",
            "-rf",
            "x ",
            "100%",
            "$(touch x)",
            "it's",
            "cache",
        ];
        for name in hostile {
            assert!(check(name).is_some(), "{name:?}");
            assert!(folder(Path::new("r"), name).is_err(), "{name:?}");
        }
        assert!(check(&"a".repeat(MAX_LEN)).is_none());
        assert!(check(&"a".repeat(MAX_LEN + 1)).is_some());
    }

    #[test]
    fn the_reason_names_the_character() {
        assert!(check("a/b").unwrap().starts_with("holds a path separator"));
        assert!(check("a\u{7}").unwrap().contains("control character"));
        let error = folder(Path::new("r"), "/abs").unwrap_err().to_string();
        assert!(
            error.starts_with("the sweep name \"/abs\" holds"),
            "{error}"
        );
    }
}
