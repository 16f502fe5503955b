//! What `bin/build` writes in its layers directory: `launch.toml` (processes, labels,
//! slices), `build.toml` (unmet plan entries), `store.toml` (metadata kept across builds)
//! and one `<layer>.toml` per layer (its types and metadata).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::plan::BuildpackPlan;
use super::{bounded, parse, stays_inside, FormatError, Problem};
use crate::api::Api;
use crate::read::Limits;

/// An image label a buildpack asks for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Label {
    pub key: String,
    pub value: String,
}

/// A process type a buildpack declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessEntry {
    pub r#type: String,
    /// `command[0]` is a path or a name on `PATH`; the rest are always passed.
    pub command: Vec<String>,
    /// Default arguments, replaced by the user's.
    pub args: Vec<String>,
    pub default: bool,
    /// Relative to the app directory, or absolute inside the app or layers directory.
    pub working_dir: Option<String>,
    pub exec_env: Vec<String>,
    /// Always true from Buildpack API 0.9; before it, `direct = false` ran the command
    /// through a shell.
    pub direct: bool,
}

/// App sub-paths (globs) exported as their own layer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Slice {
    #[serde(default)]
    pub paths: Vec<String>,
}

/// A `launch.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Launch {
    pub labels: Vec<Label>,
    pub processes: Vec<ProcessEntry>,
    pub slices: Vec<Slice>,
}

#[derive(Deserialize)]
struct RawLaunch {
    #[serde(default)]
    labels: Vec<Label>,
    #[serde(default)]
    processes: Vec<RawProcess>,
    #[serde(default)]
    slices: Vec<Slice>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawProcess {
    r#type: String,
    command: toml::Value,
    #[serde(default)]
    args: Vec<String>,
    direct: Option<bool>,
    #[serde(default)]
    default: bool,
    working_dir: Option<String>,
    #[serde(default)]
    exec_env: Vec<String>,
}

/// Whether `name` is a process type: letters, digits, `.`, `_` and `-` (and not empty).
pub fn is_process_type(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Parses `launch.toml` of a buildpack of API `api`. `app` and `layers` are the directories
/// slices and working directories must stay in.
pub fn parse_launch(
    text: &str,
    path: &Path,
    api: Api,
    app: &Path,
    layers: &Path,
    limits: &Limits,
) -> Result<Launch, FormatError> {
    let raw: RawLaunch = parse(text, path)?;
    bounded(path, "labels", raw.labels.len(), limits.launch_entries)?;
    bounded(
        path,
        "processes",
        raw.processes.len(),
        limits.launch_entries,
    )?;
    bounded(path, "slices", raw.slices.len(), limits.launch_entries)?;
    for (i, label) in raw.labels.iter().enumerate() {
        if label.key.is_empty() {
            return Err(FormatError::invalid(
                path,
                format!("labels[{i}].key"),
                Problem::Empty,
            ));
        }
    }
    let mut processes: Vec<ProcessEntry> = Vec::with_capacity(raw.processes.len());
    let mut default: Option<String> = None;
    for (i, p) in raw.processes.into_iter().enumerate() {
        let key = |k: &str| format!("processes[{i}].{k}");
        if !is_process_type(&p.r#type) {
            return Err(FormatError::invalid(
                path,
                key("type"),
                Problem::ProcessType(p.r#type),
            ));
        }
        if processes.iter().any(|q| q.r#type == p.r#type) {
            return Err(FormatError::invalid(
                path,
                key("type"),
                Problem::DuplicateProcessType(p.r#type),
            ));
        }
        // Buildpack API 0.9 made commands arrays and every process direct.
        let (command, direct) = if api.at_least(0, 9) {
            if p.direct.is_some() {
                return Err(FormatError::invalid(path, key("direct"), Problem::Direct));
            }
            let command = string_array(&p.command).ok_or_else(|| {
                FormatError::invalid(
                    path,
                    key("command"),
                    Problem::Expected("an array of strings"),
                )
            })?;
            (command, true)
        } else {
            let command = p
                .command
                .as_str()
                .map(|c| vec![c.to_string()])
                .ok_or_else(|| {
                    FormatError::invalid(
                        path,
                        key("command"),
                        Problem::Expected("a string before Buildpack API 0.9"),
                    )
                })?;
            (command, p.direct.unwrap_or(false))
        };
        if command.first().is_none_or(|c| c.is_empty()) {
            return Err(FormatError::invalid(path, key("command"), Problem::Empty));
        }
        if let Some(dir) = &p.working_dir {
            let inside = if Path::new(dir).is_absolute() {
                stays_inside(dir, app) || stays_inside(dir, layers)
            } else {
                stays_inside(dir, app)
            };
            if !inside {
                return Err(FormatError::invalid(
                    path,
                    key("working-dir"),
                    Problem::Escapes(dir.clone(), "the app and layers directories"),
                ));
            }
        }
        if p.default {
            if let Some(first) = &default {
                return Err(FormatError::invalid(
                    path,
                    key("default"),
                    Problem::MultipleDefaults {
                        first: first.clone(),
                        second: p.r#type,
                    },
                ));
            }
            default = Some(p.r#type.clone());
        }
        processes.push(ProcessEntry {
            r#type: p.r#type,
            command,
            args: p.args,
            default: p.default,
            working_dir: p.working_dir,
            exec_env: p.exec_env,
            direct,
        });
    }
    for (i, slice) in raw.slices.iter().enumerate() {
        bounded(
            path,
            &format!("slices[{i}].paths"),
            slice.paths.len(),
            limits.launch_entries,
        )?;
        for glob in &slice.paths {
            if !stays_inside(glob, app) {
                return Err(FormatError::invalid(
                    path,
                    format!("slices[{i}].paths"),
                    Problem::Escapes(glob.clone(), "the app directory"),
                ));
            }
        }
    }
    Ok(Launch {
        labels: raw.labels,
        processes,
        slices: raw.slices,
    })
}

fn string_array(value: &toml::Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_string))
        .collect()
}

#[derive(Deserialize)]
struct RawBuildToml {
    #[serde(default)]
    unmet: Vec<RawUnmet>,
}

#[derive(Deserialize)]
struct RawUnmet {
    name: Option<String>,
}

/// Parses `build.toml`, giving the names of the plan entries the buildpack did not meet;
/// each must be an entry of its plan.
pub fn parse_build_toml(
    text: &str,
    path: &Path,
    plan: &BuildpackPlan,
    limits: &Limits,
) -> Result<Vec<String>, FormatError> {
    let raw: RawBuildToml = parse(text, path)?;
    bounded(path, "unmet", raw.unmet.len(), limits.plan_entries)?;
    let mut unmet = Vec::with_capacity(raw.unmet.len());
    for (i, entry) in raw.unmet.into_iter().enumerate() {
        let key = format!("unmet[{i}].name");
        let name = entry
            .name
            .ok_or_else(|| FormatError::invalid(path, &key, Problem::Missing))?;
        if !plan.entries.iter().any(|e| e.name == name) {
            return Err(FormatError::invalid(
                path,
                key,
                Problem::UnmetNotInPlan(name),
            ));
        }
        unmet.push(name);
    }
    Ok(unmet)
}

/// `store.toml`: buildpack metadata persisted from one build to the next.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Store {
    #[serde(default)]
    pub metadata: toml::Table,
}

pub fn parse_store(text: &str, path: &Path) -> Result<Store, FormatError> {
    parse(text, path)
}

/// A layer's types (`[types]` of `<layer>.toml`; each false unless set).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct LayerTypes {
    #[serde(default)]
    pub launch: bool,
    #[serde(default)]
    pub build: bool,
    #[serde(default)]
    pub cache: bool,
}

impl LayerTypes {
    pub fn any(self) -> bool {
        self.launch || self.build || self.cache
    }
}

/// A `<layer>.toml`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct LayerMetadata {
    #[serde(default)]
    pub types: LayerTypes,
    #[serde(default)]
    pub metadata: toml::Table,
}

/// Parses a `<layer>.toml`. Type flags at the top level (the pre-0.6 form) are an error,
/// as in the reference lifecycle: silently ignoring them would drop the layer.
pub fn parse_layer(text: &str, path: &Path) -> Result<LayerMetadata, FormatError> {
    let table: toml::Table = parse(text, path)?;
    for key in ["launch", "build", "cache"] {
        if table.contains_key(key) {
            return Err(FormatError::invalid(path, key, Problem::TypesAtTopLevel));
        }
    }
    parse(text, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::plan::Require;

    const PATH: &str = "/layers/bp/launch.toml";

    fn launch(text: &str, api: Api) -> Result<Launch, FormatError> {
        parse_launch(
            text,
            Path::new(PATH),
            api,
            Path::new("/workspace"),
            Path::new("/layers"),
            &Limits::DEFAULT,
        )
    }

    #[test]
    fn processes_labels_and_slices() {
        let l = launch(
            r#"[[labels]]
key = "io.test.httpd"
value = "yes"

[[processes]]
type = "web"
command = ["sh", "-c", "serve"]
default = true
working-dir = "site"

[[processes]]
type = "greet"
command = ["echo", "hello"]
args = ["world"]

[[processes]]
type = "tool"
command = ["/layers/bp/tool/bin/tool"]
working-dir = "/layers/bp/tool"

[[slices]]
paths = ["static", "/workspace/assets/*.css"]
"#,
            Api::new(0, 10),
        )
        .unwrap();
        assert_eq!(
            l.labels,
            vec![Label {
                key: "io.test.httpd".into(),
                value: "yes".into()
            }]
        );
        assert_eq!(l.processes.len(), 3);
        let web = &l.processes[0];
        assert_eq!(web.command, vec!["sh", "-c", "serve"]);
        assert!(web.default && web.direct);
        assert_eq!(web.working_dir.as_deref(), Some("site"));
        assert_eq!(l.processes[1].args, vec!["world"]);
        assert_eq!(l.slices[0].paths.len(), 2);
    }

    #[test]
    fn the_command_form_follows_the_buildpack_api() {
        let error = launch(
            "[[processes]]\ntype = \"web\"\ncommand = \"serve\"\n",
            Api::new(0, 10),
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("`processes[0].command` must be an array of strings"),
            "{error}"
        );
        let error = launch(
            "[[processes]]\ntype = \"web\"\ncommand = [\"serve\"]\ndirect = true\n",
            Api::new(0, 9),
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("`processes[0].direct` is not supported"),
            "{error}"
        );
        let old = launch(
            "[[processes]]\ntype = \"web\"\ncommand = \"serve it\"\n",
            Api::new(0, 8),
        )
        .unwrap();
        assert_eq!(old.processes[0].command, vec!["serve it"]);
        assert!(!old.processes[0].direct);
        let error = launch(
            "[[processes]]\ntype = \"web\"\ncommand = []\n",
            Api::new(0, 10),
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("`processes[0].command` is empty"),
            "{error}"
        );
    }

    #[test]
    fn bad_processes_are_refused() {
        let api = Api::new(0, 10);
        let error = launch("[[processes]]\ntype = \"we b\"\ncommand = [\"x\"]\n", api).unwrap_err();
        assert!(
            error.to_string().contains("`we b` may only have"),
            "{error}"
        );
        let two = "[[processes]]\ntype = \"a\"\ncommand = [\"x\"]\ndefault = true\n[[processes]]\ntype = \"b\"\ncommand = [\"x\"]\ndefault = true\n";
        let error = launch(two, api).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("`processes[1].default` is set on more than one process (`a` and `b`)"),
            "{error}"
        );
        let dup = "[[processes]]\ntype = \"a\"\ncommand = [\"x\"]\n[[processes]]\ntype = \"a\"\ncommand = [\"y\"]\n";
        assert!(launch(dup, api)
            .unwrap_err()
            .to_string()
            .contains("defined twice"));
        let tight = Limits {
            launch_entries: 1,
            ..Limits::DEFAULT
        };
        let error = parse_launch(
            dup,
            Path::new(PATH),
            api,
            Path::new("/workspace"),
            Path::new("/layers"),
            &tight,
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("`processes` has more than 1 entries"),
            "{error}"
        );
    }

    #[test]
    fn working_dirs_and_slices_stay_inside() {
        let api = Api::new(0, 10);
        for dir in ["../etc", "/etc", "/workspace/../etc", "/layers/../root"] {
            let text = format!(
                "[[processes]]\ntype = \"a\"\ncommand = [\"x\"]\nworking-dir = \"{dir}\"\n"
            );
            let error = launch(&text, api).unwrap_err();
            assert!(
                error.to_string().contains("`processes[0].working-dir`"),
                "{dir}: {error}"
            );
        }
        for glob in ["../x", "/etc/*", "a/../../b"] {
            let text = format!("[[slices]]\npaths = [\"{glob}\"]\n");
            let error = launch(&text, api).unwrap_err();
            assert!(
                error.to_string().contains("leaves the app directory"),
                "{glob}: {error}"
            );
        }
    }

    #[test]
    fn build_toml_unmet_must_be_in_the_plan() {
        let plan = BuildpackPlan {
            entries: vec![Require {
                name: "httpd".into(),
                metadata: toml::Table::new(),
            }],
        };
        let path = Path::new("/layers/bp/build.toml");
        assert_eq!(
            parse_build_toml(
                "[[unmet]]\nname = \"httpd\"\n",
                path,
                &plan,
                &Limits::DEFAULT
            )
            .unwrap(),
            vec!["httpd"]
        );
        let error = parse_build_toml(
            "[[unmet]]\nname = \"python\"\n",
            path,
            &plan,
            &Limits::DEFAULT,
        )
        .unwrap_err();
        assert_eq!(error.to_string(), "/layers/bp/build.toml: `unmet[0].name` `python` is not an entry of the buildpack's plan");
        let error = parse_build_toml("[[unmet]]\n", path, &plan, &Limits::DEFAULT).unwrap_err();
        assert!(
            error.to_string().contains("`unmet[0].name` is missing"),
            "{error}"
        );
    }

    #[test]
    fn layer_types_and_metadata() {
        let path = Path::new("/layers/bp/httpd.toml");
        let layer = parse_layer(
            "[types]\nlaunch = true\ncache = true\n[metadata]\nversion = \"1\"\n",
            path,
        )
        .unwrap();
        assert_eq!(
            layer.types,
            LayerTypes {
                launch: true,
                build: false,
                cache: true
            }
        );
        assert_eq!(layer.metadata["version"].as_str(), Some("1"));
        assert!(!parse_layer("", path).unwrap().types.any());
        let error = parse_layer("launch = true\n", path).unwrap_err();
        assert_eq!(
            error.to_string(),
            "/layers/bp/httpd.toml: `launch` must be in the [types] table"
        );
        let store = parse_store(
            "[metadata]\nbuilds = 2\n",
            Path::new("/layers/bp/store.toml"),
        )
        .unwrap();
        assert_eq!(store.metadata["builds"].as_integer(), Some(2));
    }
}
