//! `buildpack.toml`: a component buildpack (with `bin/detect` and `bin/build`) or a
//! composite one (an `[[order]]` of other buildpacks), and finding one in the buildpacks
//! directory (`<buildpacks>/<escaped id>/<version>/`).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::order::OrderGroup;
use super::target::{Distro, Target};
use super::{parse, read_required, FormatError, Problem};
use crate::api::Api;
use crate::id::{check_version, BuildpackId};
use crate::read::Limits;

/// A buildpack, as its `buildpack.toml` describes it.
#[derive(Debug, Clone)]
pub struct Descriptor {
    pub api: Api,
    pub id: BuildpackId,
    pub version: String,
    pub name: Option<String>,
    pub homepage: Option<String>,
    /// `clear-env`: the user's `<platform>/env` is not applied to this buildpack.
    pub clear_env: bool,
    /// A composite buildpack's order; empty for a component buildpack.
    pub order: Vec<OrderGroup>,
    /// The targets, with the deprecated stacks and the `bin/build` inference applied.
    pub targets: Vec<Target>,
    /// The buildpack's directory (`CNB_BUILDPACK_DIR`).
    pub dir: PathBuf,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Raw {
    api: Option<String>,
    buildpack: Option<RawInfo>,
    #[serde(default)]
    order: Vec<OrderGroup>,
    #[serde(default)]
    targets: Vec<Target>,
    #[serde(default)]
    stacks: Vec<RawStack>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawInfo {
    id: Option<String>,
    version: Option<String>,
    name: Option<String>,
    homepage: Option<String>,
    #[serde(default)]
    clear_env: bool,
}

#[derive(Deserialize)]
struct RawStack {
    id: String,
}

const BIONIC: &str = "io.buildpacks.stacks.bionic";

impl Descriptor {
    /// Parses `text`, the `buildpack.toml` at `path` in the buildpack directory `dir`.
    /// `has_bin_build` says whether `dir/bin/build` exists (for the target inference).
    pub fn parse(
        text: &str,
        path: &Path,
        dir: &Path,
        has_bin_build: bool,
    ) -> Result<Descriptor, FormatError> {
        let raw: Raw = parse(text, path)?;
        let api = raw
            .api
            .ok_or_else(|| FormatError::invalid(path, "api", Problem::Missing))?;
        let api = Api::parse_buildpack(&api).map_err(|e| FormatError::invalid(path, "api", e))?;
        let info = raw
            .buildpack
            .ok_or_else(|| FormatError::invalid(path, "buildpack", Problem::Missing))?;
        let id = info
            .id
            .ok_or_else(|| FormatError::invalid(path, "buildpack.id", Problem::Missing))?;
        let id =
            BuildpackId::parse(&id).map_err(|e| FormatError::invalid(path, "buildpack.id", e))?;
        let version = info
            .version
            .ok_or_else(|| FormatError::invalid(path, "buildpack.version", Problem::Missing))?;
        check_version(&version).map_err(|e| FormatError::invalid(path, "buildpack.version", e))?;
        for (i, group) in raw.order.iter().enumerate() {
            if group.group.is_empty() {
                return Err(FormatError::invalid(
                    path,
                    format!("order[{i}].group"),
                    Problem::Empty,
                ));
            }
        }

        // The reference lifecycle's reading of targets: `[[targets]]` if any; else the
        // deprecated stacks (`*` matches anything, bionic is Ubuntu 18.04 on amd64); else
        // `os = "linux"` when there is a `bin/build`.
        let mut targets = raw.targets;
        if targets.is_empty() {
            for stack in &raw.stacks {
                if stack.id == BIONIC && (api.at_least(0, 10) || raw.stacks.len() == 1) {
                    targets.push(Target {
                        os: "linux".into(),
                        arch: "amd64".into(),
                        arch_variant: String::new(),
                        distros: vec![Distro {
                            name: "ubuntu".into(),
                            version: "18.04".into(),
                        }],
                    });
                } else if stack.id == "*" {
                    targets.push(Target::default());
                }
            }
        }
        if targets.is_empty() && has_bin_build {
            targets.push(Target {
                os: "linux".into(),
                ..Target::default()
            });
        }

        Ok(Descriptor {
            api,
            id,
            version,
            name: info.name,
            homepage: info.homepage,
            clear_env: info.clear_env,
            order: raw.order,
            targets,
            dir: dir.to_path_buf(),
        })
    }

    /// Reads `dir/buildpack.toml`.
    pub fn read(dir: &Path, limits: &Limits) -> Result<Descriptor, FormatError> {
        let path = dir.join("buildpack.toml");
        let text = read_required(&path, limits.file_bytes)?;
        let has_bin_build = dir.join("bin").join("build").exists();
        Descriptor::parse(&text, &path, dir, has_bin_build)
    }

    /// Finds buildpack `id` at `version` in `buildpacks` (`<escaped id>/<version>/`) and
    /// checks its `buildpack.toml` names that buildpack.
    pub fn lookup(
        buildpacks: &Path,
        id: &BuildpackId,
        version: &str,
        limits: &Limits,
    ) -> Result<Descriptor, FormatError> {
        let dir = buildpacks.join(id.escaped()).join(version);
        if let Err(error) = check_version(version) {
            return Err(FormatError::invalid(&dir, "version", error));
        }
        let descriptor = Descriptor::read(&dir, limits)?;
        if !descriptor.id.same_as(id) || descriptor.version != version {
            return Err(FormatError::invalid(
                &dir.join("buildpack.toml"),
                "buildpack",
                Problem::Mismatch {
                    found: format!("{}@{}", descriptor.id, descriptor.version),
                    wanted: format!("{id}@{version}"),
                },
            ));
        }
        Ok(descriptor)
    }

    pub fn is_composite(&self) -> bool {
        !self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str, has_bin_build: bool) -> Result<Descriptor, FormatError> {
        Descriptor::parse(
            text,
            Path::new("/bp/buildpack.toml"),
            Path::new("/bp"),
            has_bin_build,
        )
    }

    #[test]
    fn a_component_buildpack() {
        let d = parse_text(
            r#"api = "0.10"
[buildpack]
id = "test/httpd"
version = "0.0.1"
name = "HTTPD"
clear-env = true
unknown-key = "ignored"
[[targets]]
os = "linux"
arch = "amd64"
variant = "v8"
[[targets.distros]]
name = "ubuntu"
version = "22.04"
[metadata]
anything = 1
"#,
            true,
        )
        .unwrap();
        assert_eq!(d.api, Api::new(0, 10));
        assert_eq!(d.id.as_str(), "test/httpd");
        assert!(d.clear_env && !d.is_composite());
        assert_eq!(d.targets.len(), 1);
        assert_eq!(d.targets[0].arch_variant, "v8");
        assert_eq!(d.targets[0].distros[0].version, "22.04");
    }

    #[test]
    fn targets_are_inferred_as_the_reference_lifecycle_does() {
        let base = "api = \"0.10\"\n[buildpack]\nid = \"a\"\nversion = \"1\"\n";
        let d = parse_text(base, true).unwrap();
        assert_eq!(
            d.targets,
            vec![Target {
                os: "linux".into(),
                ..Target::default()
            }]
        );
        assert!(parse_text(base, false).unwrap().targets.is_empty());
        let any = parse_text(&format!("{base}[[stacks]]\nid = \"*\"\n"), true).unwrap();
        assert_eq!(any.targets, vec![Target::default()]);
        let bionic = parse_text(&format!("{base}[[stacks]]\nid = \"{BIONIC}\"\n"), false).unwrap();
        assert_eq!(bionic.targets[0].distros[0].name, "ubuntu");
    }

    #[test]
    fn a_composite_buildpack() {
        let d = parse_text(
            r#"api = "0.10"
[buildpack]
id = "test/web-meta"
version = "1.0.0"
[[order]]
[[order.group]]
id = "test/procfile"
version = "1.0.0"
[[order.group]]
id = "test/needs-python"
version = "1.0.0"
optional = true
"#,
            false,
        )
        .unwrap();
        assert!(d.is_composite());
        let group = &d.order[0].group;
        assert_eq!(group[1].id.as_str(), "test/needs-python");
        assert!(group[1].optional && !group[0].optional);
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        let error = parse_text(
            "api = \"0.10\"\n[buildpack]\nid = \"app\"\nversion = \"1\"\n",
            true,
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "/bp/buildpack.toml: `buildpack.id` `app` is reserved"
        );
        let error = parse_text(
            "api = \"0.4\"\n[buildpack]\nid = \"a\"\nversion = \"1\"\n",
            true,
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("`api` Buildpack API 0.4 is not supported"),
            "{error}"
        );
        let error = parse_text("[buildpack]\nid = \"a\"\nversion = \"1\"\n", true).unwrap_err();
        assert_eq!(error.to_string(), "/bp/buildpack.toml: `api` is missing");
        let error = parse_text("api = \"0.10\"\n[buildpack]\nid = \"a\"\n", true).unwrap_err();
        assert_eq!(
            error.to_string(),
            "/bp/buildpack.toml: `buildpack.version` is missing"
        );
        let error = parse_text(
            "api = \"0.10\"\n[buildpack]\nid = \"a\"\nversion = \"..\"\n",
            true,
        )
        .unwrap_err();
        assert!(
            matches!(error, FormatError::Invalid { ref key, .. } if key == "buildpack.version"),
            "{error}"
        );
        let error = parse_text(
            "api = \"0.10\"\n[buildpack]\nid = \"a\"\nversion = \"1\"\n[[order]]\ngroup = []\n",
            false,
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("`order[0].group` is empty"),
            "{error}"
        );
        let error = parse_text("api = 0.10\n", true).unwrap_err();
        assert!(matches!(error, FormatError::Parse { .. }), "{error}");
    }

    #[test]
    fn lookup_escapes_the_id_and_checks_what_it_finds() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("test_httpd").join("0.0.1");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("buildpack.toml"),
            "api = \"0.10\"\n[buildpack]\nid = \"test/httpd\"\nversion = \"0.0.1\"\n",
        )
        .unwrap();
        let id = BuildpackId::parse("test/httpd").unwrap();
        let d = Descriptor::lookup(root.path(), &id, "0.0.1", &Limits::DEFAULT).unwrap();
        assert_eq!(d.dir, dir);
        let other = BuildpackId::parse("test/other").unwrap();
        std::fs::create_dir_all(root.path().join("test_other").join("0.0.1")).unwrap();
        std::fs::copy(
            dir.join("buildpack.toml"),
            root.path().join("test_other/0.0.1/buildpack.toml"),
        )
        .unwrap();
        let error = Descriptor::lookup(root.path(), &other, "0.0.1", &Limits::DEFAULT).unwrap_err();
        assert!(
            error.to_string().contains("names test/httpd@0.0.1"),
            "{error}"
        );
        assert!(matches!(
            Descriptor::lookup(root.path(), &id, "9.9.9", &Limits::DEFAULT),
            Err(FormatError::Read { .. })
        ));
    }
}
