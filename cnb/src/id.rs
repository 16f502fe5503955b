//! Buildpack ids: validated as the Buildpack API says, escaped for paths as the platform
//! lays buildpacks out (`<buildpacks>/<id with "/" as "_">/<version>/`).

use std::fmt;

/// A buildpack id: letters, digits, `.`, `/` and `-`; not `app`, `config`, `generated` or
/// `sbom` (compared case-insensitively, since ids are: those names are directories of
/// `<layers>` beside the buildpacks' own).
///
/// Also refused, though the spec's character set allows it: an id with an empty, `.` or `..`
/// part between its `/`s (`..` escaped is still `..`, and would climb out of the directory
/// the id is joined to).
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Deserialize, serde::Serialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct BuildpackId(String);

impl TryFrom<String> for BuildpackId {
    type Error = IdError;
    fn try_from(text: String) -> Result<BuildpackId, IdError> {
        BuildpackId::parse(&text)
    }
}

impl From<BuildpackId> for String {
    fn from(id: BuildpackId) -> String {
        id.0
    }
}

/// Why an id (or a version used as a path component) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("is empty")]
    Empty,
    #[error("`{0}` has a character other than letters, digits, `.`, `/` and `-`")]
    Character(String),
    #[error("`{0}` is reserved")]
    Reserved(String),
    #[error("`{0}` has an empty, `.` or `..` part")]
    Part(String),
    #[error("`{0}` is not a single path component (no `/`, not `.` or `..`)")]
    Version(String),
}

const RESERVED: [&str; 4] = ["app", "config", "generated", "sbom"];

impl BuildpackId {
    pub fn parse(text: &str) -> Result<BuildpackId, IdError> {
        if text.is_empty() {
            return Err(IdError::Empty);
        }
        if !text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'/' | b'-'))
        {
            return Err(IdError::Character(text.to_string()));
        }
        if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(text)) {
            return Err(IdError::Reserved(text.to_string()));
        }
        if text.split('/').any(|part| matches!(part, "" | "." | "..")) {
            return Err(IdError::Part(text.to_string()));
        }
        Ok(BuildpackId(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as a directory name: `/` becomes `_` (the reference `launch.EscapeID`).
    pub fn escaped(&self) -> String {
        self.0.replace('/', "_")
    }

    /// Whether two ids are the same buildpack (ids compare case-insensitively).
    pub fn same_as(&self, other: &BuildpackId) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl fmt::Display for BuildpackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a buildpack version is usable as the path component `<buildpacks>/<id>/<version>`.
/// The spec asks for `X.Y.Z`, but the reference lifecycle takes any string, and so do
/// builders in the wild; what must hold is that it names one directory.
pub fn check_version(version: &str) -> Result<(), IdError> {
    if version.is_empty() {
        return Err(IdError::Empty);
    }
    if version.contains('/') || version.contains('\0') || matches!(version, "." | "..") {
        return Err(IdError::Version(version.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_escaped_for_paths() {
        let id = BuildpackId::parse("test/httpd").unwrap();
        assert_eq!(id.escaped(), "test_httpd");
        assert_eq!(
            BuildpackId::parse("io.buildpacks.ruby").unwrap().escaped(),
            "io.buildpacks.ruby"
        );
    }

    #[test]
    fn ids_outside_the_spec_are_refused() {
        assert_eq!(BuildpackId::parse(""), Err(IdError::Empty));
        assert!(matches!(
            BuildpackId::parse("a b"),
            Err(IdError::Character(_))
        ));
        assert!(matches!(
            BuildpackId::parse("a_b"),
            Err(IdError::Character(_))
        ));
        assert!(matches!(
            BuildpackId::parse("é"),
            Err(IdError::Character(_))
        ));
        for reserved in ["app", "config", "generated", "sbom", "Config"] {
            assert!(
                matches!(BuildpackId::parse(reserved), Err(IdError::Reserved(_))),
                "{reserved}"
            );
        }
    }

    #[test]
    fn ids_that_would_climb_out_of_a_directory_are_refused() {
        for id in ["..", ".", "a/..", "../a", "/a", "a//b", "a/"] {
            assert!(
                matches!(BuildpackId::parse(id), Err(IdError::Part(_))),
                "{id}"
            );
        }
    }

    #[test]
    fn ids_compare_case_insensitively() {
        let a = BuildpackId::parse("Test/A").unwrap();
        assert!(a.same_as(&BuildpackId::parse("test/a").unwrap()));
    }

    #[test]
    fn versions_must_name_one_directory() {
        assert_eq!(check_version("0.0.1"), Ok(()));
        assert_eq!(check_version("1.2.3-rc.1"), Ok(()));
        for bad in ["..", ".", "1/2"] {
            assert!(
                matches!(check_version(bad), Err(IdError::Version(_))),
                "{bad}"
            );
        }
        assert_eq!(check_version(""), Err(IdError::Empty));
    }
}
