//! Finding a project's configuration: the nearest directory at or above the
//! starting point that holds `locald.toml` and/or `locald.rhai`.

use std::path::{Path, PathBuf};

/// The file name of the declarative configuration.
pub const TOML_FILE: &str = "locald.toml";
/// The file name of the scripted configuration.
pub const RHAI_FILE: &str = "locald.rhai";

/// The configuration files of one project directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFiles {
    /// The directory holding them (absolute).
    pub dir: PathBuf,
    pub toml: Option<PathBuf>,
    pub rhai: Option<PathBuf>,
}

/// Walks up from `start` (a directory, made absolute against the current
/// directory) to the nearest directory with `locald.toml` and/or `locald.rhai`.
pub fn find_config(start: &Path) -> Option<ConfigFiles> {
    let start = std::path::absolute(start).ok()?;
    start.ancestors().find_map(|dir| {
        let toml = Some(dir.join(TOML_FILE)).filter(|p| p.is_file());
        let rhai = Some(dir.join(RHAI_FILE)).filter(|p| p.is_file());
        (toml.is_some() || rhai.is_some()).then(|| ConfigFiles {
            dir: dir.to_owned(),
            toml,
            rhai,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn finds_the_nearest_directory_with_a_config() {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path();
        let nested = root.join("app/src/deep");
        fs::create_dir_all(&nested).unwrap();
        fs::write(root.join(TOML_FILE), "").unwrap();
        fs::write(root.join("app").join(RHAI_FILE), "").unwrap();
        fs::write(root.join("app").join(TOML_FILE), "").unwrap();

        let found = find_config(&nested).unwrap();
        assert_eq!(found.dir, root.join("app"));
        assert_eq!(found.toml, Some(root.join("app").join(TOML_FILE)));
        assert_eq!(found.rhai, Some(root.join("app").join(RHAI_FILE)));

        let top = find_config(root).unwrap();
        assert_eq!(
            top,
            ConfigFiles {
                dir: root.to_owned(),
                toml: Some(root.join(TOML_FILE)),
                rhai: None
            }
        );
    }

    #[test]
    fn a_directory_named_like_the_config_does_not_count() {
        let temp = tempfile::tempdir().unwrap();
        let inner = temp.path().join("inner");
        fs::create_dir_all(inner.join(TOML_FILE)).unwrap();
        let found = find_config(&inner);
        assert!(found.as_ref().is_none_or(|f| f.dir != inner), "{found:?}");
    }
}
