//! The environments buildpacks and launched processes get, and the env files that modify
//! them (the Buildpack API's Environment Variable Modification Rules, applied as the
//! reference lifecycle's `env` package does).
//!
//! - Build: only an allow-list of the platform's own environment goes through ([`Env::for_build`]);
//!   then, per buildpack, the user's `<platform>/env/NAME` files (override, or prepend for
//!   path variables; skipped for `clear-env` buildpacks) and the builder's
//!   `/cnb/build-config/env` (an unsuffixed file is a default there)
//!   ([`Env::with_overrides`]); earlier buildpacks' build layers add their `bin`, `lib`,
//!   `include` and `pkgconfig` directories ([`Env::add_root_dir`]) and their `env/` and
//!   `env.build/` files ([`Env::add_env_dir`]).
//! - Launch: the container's environment less the lifecycle's own variables
//!   ([`Env::for_launch`]), then each launch layer's `bin`/`lib`, `env/`, `env.launch/` and
//!   `env.launch/<process>/`.
//!
//! Env file names are `NAME[.suffix]`: the suffix (`override`, `default`, `append`,
//! `prepend`; none means override) says how the contents change `NAME`; `NAME.delim` holds
//! the separator append and prepend use within the same directory (none without it);
//! unknown suffixes are ignored. Files are applied in name order and their contents are
//! used as they are: never trimmed, never evaluated by a shell.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::formats::FormatError;
use crate::read::{read_text, Limits};

/// What an env file does to its variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Override,
    Default,
    Append,
    Prepend,
    /// `NAME.` (an empty suffix): prepend with `:` unless a `.delim` says otherwise (the
    /// reference lifecycle's `ActionTypePrependPath`).
    PrependPath,
}

/// Which directories of a layer are added to which path variables.
pub type RootDirs = &'static [(&'static str, &'static [&'static str])];

/// At build time: `bin` → `PATH`, `lib` → `LD_LIBRARY_PATH` and `LIBRARY_PATH`, `include`
/// → `CPATH`, `pkgconfig` → `PKG_CONFIG_PATH`.
pub const BUILD_ROOT_DIRS: RootDirs = &[
    ("bin", &["PATH"]),
    ("include", &["CPATH"]),
    ("lib", &["LD_LIBRARY_PATH", "LIBRARY_PATH"]),
    ("pkgconfig", &["PKG_CONFIG_PATH"]),
];

/// At launch: `bin` → `PATH`, `lib` → `LD_LIBRARY_PATH`.
pub const LAUNCH_ROOT_DIRS: RootDirs = &[("bin", &["PATH"]), ("lib", &["LD_LIBRARY_PATH"])];

/// The platform variables buildpacks see (besides the path variables of
/// [`BUILD_ROOT_DIRS`]).
pub const BUILD_ALLOW_LIST: [&str; 9] = [
    "CNB_STACK_ID",
    "HOSTNAME",
    "HOME",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// The lifecycle's own variables, removed from a launched process's environment.
pub const LAUNCH_EXCLUDE_LIST: [&str; 5] = [
    "CNB_LAYERS_DIR",
    "CNB_APP_DIR",
    "CNB_PROCESS_TYPE",
    "CNB_PLATFORM_API",
    "CNB_DEPRECATION_MODE",
];

/// An env directory or file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error(transparent)]
    File(#[from] FormatError),
    #[error("{}: {source}", path.display())]
    Dir { path: PathBuf, source: io::Error },
    #[error("{}: more than {limit} env files", path.display())]
    TooManyFiles { path: PathBuf, limit: usize },
    #[error("{}: a NUL byte cannot be in an environment variable", path.display())]
    Nul { path: PathBuf },
}

/// A set of environment variables, with the path variables its layers' directories feed.
#[derive(Debug, Clone)]
pub struct Env {
    vars: BTreeMap<String, String>,
    root_dirs: RootDirs,
}

impl Env {
    /// The environment buildpacks start from: the allow-listed variables and the path
    /// variables of `host` (the lifecycle's own environment, the builder's config `Env`).
    pub fn for_build(host: impl IntoIterator<Item = (String, String)>) -> Env {
        let keep = |key: &str| {
            BUILD_ALLOW_LIST.contains(&key)
                || BUILD_ROOT_DIRS.iter().any(|(_, vars)| vars.contains(&key))
        };
        Env {
            vars: host.into_iter().filter(|(k, _)| keep(k)).collect(),
            root_dirs: BUILD_ROOT_DIRS,
        }
    }

    /// The environment a launched process starts from: `host` (the container's) less
    /// [`LAUNCH_EXCLUDE_LIST`], with `process_dir` and `lifecycle_dir` (`/cnb/process`,
    /// `/cnb/lifecycle`) taken out of `PATH`.
    pub fn for_launch(
        host: impl IntoIterator<Item = (String, String)>,
        process_dir: &str,
        lifecycle_dir: &str,
    ) -> Env {
        let mut vars: BTreeMap<String, String> = host
            .into_iter()
            .filter(|(k, _)| !LAUNCH_EXCLUDE_LIST.contains(&k.as_str()))
            .collect();
        if let Some(path) = vars.get_mut("PATH") {
            *path = path
                .split(':')
                .filter(|part| *part != process_dir && *part != lifecycle_dir)
                .collect::<Vec<_>>()
                .join(":");
        }
        Env {
            vars,
            root_dirs: LAUNCH_ROOT_DIRS,
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str)
    }

    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.vars.insert(key.into(), value.into());
    }

    /// The variables, sorted by name.
    pub fn vars(&self) -> Vec<(String, String)> {
        self.vars
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn value(&self, key: &str) -> &str {
        self.get(key).unwrap_or("")
    }

    /// Prepends `dir`'s `bin`, `lib` … (those that exist) to their path variables.
    pub fn add_root_dir(&mut self, dir: &Path) {
        for (sub, keys) in self.root_dirs {
            let child = dir.join(sub);
            if !child.is_dir() {
                continue;
            }
            let child = child.to_string_lossy().into_owned();
            for key in *keys {
                let value = join(&child, ":", self.value(key));
                self.set(*key, value);
            }
        }
    }

    /// Applies the env files of `dir` (if it exists); an unsuffixed file does `default`.
    pub fn add_env_dir(
        &mut self,
        dir: &Path,
        default: Action,
        limits: &Limits,
    ) -> Result<(), EnvError> {
        for (file, value) in env_files(dir, limits)? {
            let (name, action) = match file.split_once('.') {
                None => (file.as_str(), default),
                Some((name, suffix)) => {
                    let action = match suffix {
                        "override" => Action::Override,
                        "default" => Action::Default,
                        "append" => Action::Append,
                        "prepend" => Action::Prepend,
                        "" => Action::PrependPath,
                        // `.delim` is read by the operations it separates; anything else
                        // is not an env file.
                        _ => continue,
                    };
                    (name, action)
                }
            };
            if !is_env_name(name) {
                continue;
            }
            let delim = |fallback: &str| -> Result<String, EnvError> {
                let path = dir.join(format!("{name}.delim"));
                match read_value(&path, limits)? {
                    Some(delim) => Ok(delim),
                    None => Ok(fallback.to_string()),
                }
            };
            let current = self.value(name).to_string();
            let new = match action {
                Action::Override => value,
                Action::Default if !current.is_empty() => continue,
                Action::Default => value,
                Action::Append => join(&current, &delim("")?, &value),
                Action::Prepend => join(&value, &delim("")?, &current),
                Action::PrependPath => join(&value, &delim(":")?, &current),
            };
            self.set(name, new);
        }
        Ok(())
    }

    /// The environment one buildpack runs with: this one, then the user's
    /// `<platform>/env` (if `platform` is given: not for a `clear-env` buildpack), then the
    /// builder's `<build_config>/env` (an unsuffixed file there is a default).
    pub fn with_overrides(
        &self,
        platform: Option<&Path>,
        build_config: Option<&Path>,
        limits: &Limits,
    ) -> Result<Env, EnvError> {
        let mut env = self.clone();
        if let Some(platform) = platform {
            for (key, value) in env_files(&platform.join("env"), limits)? {
                if !is_env_name(&key) {
                    continue;
                }
                let is_path = self
                    .root_dirs
                    .iter()
                    .any(|(_, vars)| vars.contains(&key.as_str()));
                let value = if is_path {
                    join(&value, ":", env.value(&key))
                } else {
                    value
                };
                env.set(key, value);
            }
        }
        if let Some(build_config) = build_config {
            env.add_env_dir(&build_config.join("env"), Action::Default, limits)?;
        }
        Ok(env)
    }
}

/// `first` and `second` joined by `delim`, or whichever is not empty.
fn join(first: &str, delim: &str, second: &str) -> String {
    match (first.is_empty(), second.is_empty()) {
        (_, true) => first.to_string(),
        (true, false) => second.to_string(),
        (false, false) => format!("{first}{delim}{second}"),
    }
}

/// A name `Command` can set: not empty, no `=`, no NUL.
fn is_env_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('=') && !name.contains('\0')
}

fn read_value(path: &Path, limits: &Limits) -> Result<Option<String>, EnvError> {
    let value = read_text(path, limits.env_value_bytes)?;
    if value.as_deref().is_some_and(|v| v.contains('\0')) {
        return Err(EnvError::Nul {
            path: path.to_path_buf(),
        });
    }
    Ok(value)
}

/// The files of `dir` (none if it does not exist), sorted by name, with their contents;
/// directories (and links to them) are skipped, other links refused.
fn env_files(dir: &Path, limits: &Limits) -> Result<Vec<(String, String)>, EnvError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(EnvError::Dir {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| EnvError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
        if names.len() == limits.env_files {
            return Err(EnvError::TooManyFiles {
                path: dir.to_path_buf(),
                limit: limits.env_files,
            });
        }
        if entry.path().is_dir() {
            continue;
        }
        // A name that is not UTF-8 cannot be a variable name.
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    names.sort();
    let mut files = Vec::with_capacity(names.len());
    for name in names {
        let path = dir.join(&name);
        if let Some(value) = read_value(&path, limits)? {
            files.push((name, value));
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn write(dir: &Path, files: &[(&str, &str)]) {
        std::fs::create_dir_all(dir).unwrap();
        for (name, value) in files {
            std::fs::write(dir.join(name), value).unwrap();
        }
    }

    #[test]
    fn the_build_environment_starts_from_the_allow_list() {
        let env = Env::for_build(host(&[
            ("HOME", "/home/cnb"),
            ("PATH", "/bin"),
            ("PKG_CONFIG_PATH", "/pc"),
            ("SECRET", "x"),
            ("CNB_STACK_ID", "s"),
            ("http_proxy", "p"),
            ("BP_X", "user"),
        ]));
        assert_eq!(
            env.vars(),
            host(&[
                ("CNB_STACK_ID", "s"),
                ("HOME", "/home/cnb"),
                ("PATH", "/bin"),
                ("PKG_CONFIG_PATH", "/pc"),
                ("http_proxy", "p")
            ])
        );
    }

    #[test]
    fn suffixes_follow_the_modification_rules() {
        let dir = tempfile::tempdir().unwrap();
        let env_dir = dir.path().join("env");
        write(
            &env_dir,
            &[
                ("OVER", "new"),
                ("OVER2.override", "new2"),
                ("DEF.default", "d"),
                ("SET.default", "ignored"),
                ("APP.append", "a"),
                ("APP.delim", ","),
                ("PRE.prepend", "p"),
                ("NODELIM.append", "x"),
                ("PATHY.", "/p"),
                ("UNKNOWN.suffix", "no"),
                ("RAW", " spaced \n"),
            ],
        );
        std::fs::create_dir(env_dir.join("web")).unwrap();
        let mut env = Env::for_build(Vec::new());
        for (k, v) in [
            ("OVER", "old"),
            ("SET", "kept"),
            ("APP", "start"),
            ("PRE", "end"),
            ("NODELIM", "y"),
            ("PATHY", "/q"),
        ] {
            env.set(k, v);
        }
        env.add_env_dir(&env_dir, Action::Override, &Limits::DEFAULT)
            .unwrap();
        assert_eq!(env.get("OVER"), Some("new"));
        assert_eq!(env.get("OVER2"), Some("new2"));
        assert_eq!(env.get("DEF"), Some("d"));
        assert_eq!(env.get("SET"), Some("kept"));
        assert_eq!(env.get("APP"), Some("start,a"));
        assert_eq!(env.get("PRE"), Some("pend"));
        assert_eq!(env.get("NODELIM"), Some("yx"));
        assert_eq!(env.get("PATHY"), Some("/p:/q"));
        assert_eq!(env.get("UNKNOWN"), None);
        assert_eq!(
            env.get("RAW"),
            Some(" spaced \n"),
            "contents are used as they are"
        );
        assert_eq!(env.get("web"), None, "directories are not env files");
        // An unsuffixed file under a default action (build-config) is a default.
        let mut env = Env::for_build(Vec::new());
        env.set("OVER", "old");
        env.add_env_dir(&env_dir, Action::Default, &Limits::DEFAULT)
            .unwrap();
        assert_eq!(env.get("OVER"), Some("old"));
    }

    #[test]
    fn platform_env_overrides_or_prepends_and_build_config_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let platform = dir.path().join("platform");
        write(
            &platform.join("env"),
            &[
                ("BP_X", "user"),
                ("PATH", "/user/bin"),
                ("HOME", "/override"),
            ],
        );
        let config = dir.path().join("build-config");
        write(
            &config.join("env"),
            &[
                ("BP_X", "builder"),
                ("BP_Y", "builder"),
                ("HOME.override", "/cfg"),
            ],
        );
        let base = Env::for_build(host(&[("PATH", "/bin"), ("HOME", "/home")]));
        let env = base
            .with_overrides(Some(&platform), Some(&config), &Limits::DEFAULT)
            .unwrap();
        assert_eq!(
            env.get("BP_X"),
            Some("user"),
            "the user's value wins over the builder default"
        );
        assert_eq!(env.get("BP_Y"), Some("builder"));
        assert_eq!(env.get("PATH"), Some("/user/bin:/bin"));
        assert_eq!(env.get("HOME"), Some("/cfg"));
        // clear-env: no platform files.
        let env = base
            .with_overrides(None, Some(&config), &Limits::DEFAULT)
            .unwrap();
        assert_eq!(env.get("BP_X"), Some("builder"));
        assert_eq!(env.get("PATH"), Some("/bin"));
        assert_eq!(base.get("BP_X"), None, "the base is not changed");
    }

    #[test]
    fn layer_root_dirs_are_prepended() {
        let dir = tempfile::tempdir().unwrap();
        let layer = dir.path().join("layer");
        for sub in ["bin", "lib", "pkgconfig"] {
            std::fs::create_dir_all(layer.join(sub)).unwrap();
        }
        let mut env = Env::for_build(host(&[("PATH", "/bin")]));
        env.add_root_dir(&layer);
        let l = layer.display();
        assert_eq!(
            env.get("PATH").map(String::from),
            Some(format!("{l}/bin:/bin"))
        );
        assert_eq!(
            env.get("LD_LIBRARY_PATH").map(String::from),
            Some(format!("{l}/lib"))
        );
        assert_eq!(
            env.get("LIBRARY_PATH").map(String::from),
            Some(format!("{l}/lib"))
        );
        assert_eq!(env.get("CPATH"), None);
        let mut launch = Env::for_launch(
            host(&[("PATH", "/cnb/process:/bin:/cnb/lifecycle")]),
            "/cnb/process",
            "/cnb/lifecycle",
        );
        assert_eq!(launch.get("PATH"), Some("/bin"));
        launch.add_root_dir(&layer);
        assert_eq!(launch.get("LIBRARY_PATH"), None, "not at launch");
    }

    #[test]
    fn env_files_are_bounded_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &[("A", "1"), ("B", "2"), ("C", "3")]);
        let tight = Limits {
            env_files: 2,
            ..Limits::DEFAULT
        };
        let mut env = Env::for_build(Vec::new());
        assert!(matches!(
            env.add_env_dir(dir.path(), Action::Override, &tight),
            Err(EnvError::TooManyFiles { limit: 2, .. })
        ));
        let small = Limits {
            env_value_bytes: 0,
            ..Limits::DEFAULT
        };
        let error = env
            .add_env_dir(dir.path(), Action::Override, &small)
            .unwrap_err();
        assert!(
            error.to_string().ends_with("/A: larger than 0 bytes"),
            "{error}"
        );
        let nul = tempfile::tempdir().unwrap();
        write(nul.path(), &[("N", "a\0b")]);
        assert!(matches!(
            env.add_env_dir(nul.path(), Action::Override, &Limits::DEFAULT),
            Err(EnvError::Nul { .. })
        ));
        env.add_env_dir(
            &dir.path().join("absent"),
            Action::Override,
            &Limits::DEFAULT,
        )
        .unwrap();
    }
}
