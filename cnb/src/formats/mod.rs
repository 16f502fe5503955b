//! The lifecycle's files, one module per family, each read bounded and validated into typed
//! values, with errors that name the file and the key.
//!
//! Third-party files are parsed leniently (unknown keys are ignored, as the reference
//! lifecycle does: buildpacks and builders add their own), but every key the lifecycle acts
//! on is checked: ids and API versions, process types, paths that must stay inside their
//! directory, and the rules the reference lifecycle enforces (no top-level `version` in a
//! plan's requires, no `direct` in `launch.toml` from Buildpack API 0.9, `[types]` not at the
//! top of a `<layer>.toml`).

pub mod descriptor;
pub mod order;
pub mod outputs;
pub mod plan;
pub mod run_image;
pub mod target;

use std::io;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::api::ApiError;
use crate::id::IdError;
use crate::read::read_text;

/// A file that could not be read, parsed or accepted.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("{}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{}: larger than {limit} bytes", path.display())]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("{}: not UTF-8 text", path.display())]
    NotUtf8 { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("{}: `{key}` {problem}", path.display())]
    Invalid {
        path: PathBuf,
        key: String,
        problem: Problem,
    },
    #[error("{}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("{}: {source}", path.display())]
    Serialize {
        path: PathBuf,
        source: toml::ser::Error,
    },
}

/// What is wrong with a key's value.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error("is missing")]
    Missing,
    #[error("{0}")]
    Id(#[from] IdError),
    #[error("{0}")]
    Api(#[from] ApiError),
    #[error("has more than {limit} entries")]
    TooMany { limit: usize },
    #[error("must be in the [types] table")]
    TypesAtTopLevel,
    #[error("is not supported from Buildpack API 0.9 (commands are direct)")]
    Direct,
    #[error("`{0}` may only have letters, digits, `.`, `_` and `-`")]
    ProcessType(String),
    #[error("`{0}` is defined twice by the same buildpack")]
    DuplicateProcessType(String),
    #[error("is set on more than one process (`{first}` and `{second}`)")]
    MultipleDefaults { first: String, second: String },
    #[error("is empty")]
    Empty,
    #[error("of `{0}` is not supported: use `metadata.version`")]
    TopLevelVersion(String),
    #[error("of `{0}` is given twice (`version` and `metadata.version`)")]
    DoublyVersion(String),
    #[error("`{0}` is not an entry of the buildpack's plan")]
    UnmetNotInPlan(String),
    #[error("`{0}` leaves {1}")]
    Escapes(String, &'static str),
    #[error("names {found}, but the buildpack is looked up as {wanted}")]
    Mismatch { found: String, wanted: String },
    #[error("is not supported by this platform ({0})")]
    Unsupported(&'static str),
    #[error("must be {0}")]
    Expected(&'static str),
    #[error("`{0}` is reserved")]
    Reserved(String),
    #[error("has a NUL byte")]
    Nul,
}

impl FormatError {
    pub(crate) fn invalid(
        path: &Path,
        key: impl Into<String>,
        problem: impl Into<Problem>,
    ) -> FormatError {
        FormatError::Invalid {
            path: path.to_path_buf(),
            key: key.into(),
            problem: problem.into(),
        }
    }

    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            FormatError::Read { path, .. }
            | FormatError::TooLarge { path, .. }
            | FormatError::NotUtf8 { path }
            | FormatError::Parse { path, .. }
            | FormatError::Invalid { path, .. }
            | FormatError::Write { path, .. }
            | FormatError::Serialize { path, .. } => path,
        }
    }
}

/// Parses `text` (the contents of `path`) as `T`.
pub(crate) fn parse<T: DeserializeOwned>(text: &str, path: &Path) -> Result<T, FormatError> {
    toml::from_str(text).map_err(|source| FormatError::Parse {
        path: path.to_path_buf(),
        source: Box::new(source),
    })
}

/// Reads `path`, which must exist.
pub(crate) fn read_required(path: &Path, limit: u64) -> Result<String, FormatError> {
    read_text(path, limit)?.ok_or_else(|| FormatError::Read {
        path: path.to_path_buf(),
        source: io::Error::from(io::ErrorKind::NotFound),
    })
}

/// Writes `value` as TOML to `path` (replacing it).
pub(crate) fn write_toml<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), FormatError> {
    let text = to_toml(path, value)?;
    std::fs::write(path, text).map_err(|source| FormatError::Write {
        path: path.to_path_buf(),
        source,
    })
}

pub(crate) fn to_toml<T: serde::Serialize>(path: &Path, value: &T) -> Result<String, FormatError> {
    toml::to_string(value).map_err(|source| FormatError::Serialize {
        path: path.to_path_buf(),
        source,
    })
}

/// Fails with [`Problem::TooMany`] when `len` is over `limit`.
pub(crate) fn bounded(path: &Path, key: &str, len: usize, limit: usize) -> Result<(), FormatError> {
    if len > limit {
        return Err(FormatError::invalid(path, key, Problem::TooMany { limit }));
    }
    Ok(())
}

/// Whether `path` (a relative path, or an absolute one) stays inside `dir` lexically: a
/// relative path may not climb above its start with `..`, an absolute one must be `dir` or
/// under it and may not climb out either. No file system access: what is checked is the
/// text a buildpack wrote, before anything uses it.
pub(crate) fn stays_inside(path: &str, dir: &Path) -> bool {
    let candidate = Path::new(path);
    let relative = if candidate.is_absolute() {
        match candidate.strip_prefix(dir) {
            Ok(rest) => rest,
            Err(_) => return false,
        }
    } else {
        candidate
    };
    let mut depth = 0usize;
    for component in relative.components() {
        match component {
            std::path::Component::Normal(_) => depth += 1,
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            std::path::Component::RootDir | std::path::Component::Prefix(_) => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_climb_out_are_caught() {
        let app = Path::new("/workspace");
        for inside in [
            "static",
            "a/../b",
            "./x",
            "/workspace",
            "/workspace/static/*.css",
            "*",
        ] {
            assert!(stays_inside(inside, app), "{inside}");
        }
        for outside in [
            "..",
            "../x",
            "a/../../x",
            "/etc",
            "/workspacex",
            "/workspace/../etc",
        ] {
            assert!(!stays_inside(outside, app), "{outside}");
        }
    }
}
