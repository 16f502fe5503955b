//! The build phase: each buildpack of `group.toml`, in order, runs `bin/build` in the
//! environment the earlier ones left, and what it wrote is read back.
//!
//! Per buildpack, as the reference lifecycle's `Builder` and `DefaultBuildExecutor` do:
//! 1. `<layers>/<escaped id>/` is made;
//! 2. its Buildpack Plan (the requires of every `plan.toml` entry it provides that no
//!    earlier buildpack met) is written to a fresh file (`CNB_BP_PLAN_PATH`);
//! 3. `bin/build` runs (positional arguments `<layers>/<id> <platform> <plan>` too, for
//!    buildpacks that still read them), its output going to the build log; a non-zero exit
//!    fails the build (the platform's exit code 51);
//! 4. each `<layer>.toml` is read: a layer with no type is renamed `<layer>.ignore`; the
//!    `build` layers add their `bin`, `lib` … and their `env/` and `env.build/` files to the
//!    environment of the buildpacks after it (layers in name order);
//! 5. `build.toml`'s `[[unmet]]` entries stay in the plan for later providers, the rest of
//!    its plan counts as met; `launch.toml` gives processes, labels and slices;
//!    `store.toml` is kept.
//!
//! The result, [`BuildMetadata`], is what the exporter and the launcher need; it is also
//! written as `<layers>/config/metadata.toml`.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::env::{Action, Env, EnvError};
use crate::exec::Exit;
use crate::formats::descriptor::Descriptor;
use crate::formats::order::{members_from_raw, raw_members, Group, GroupMember, RawMember};
use crate::formats::outputs::{
    parse_build_toml, parse_launch, parse_layer, parse_store, Label, LayerMetadata, Slice, Store,
};
use crate::formats::plan::Plan;
use crate::formats::{bounded, parse, read_required, to_toml, FormatError, Problem};
use crate::id::BuildpackId;
use crate::read::{read_text, Limits};

/// The platform's exit code for a buildpack whose `bin/build` failed.
pub const EXIT_BUILDPACK_FAILED: i32 = 51;

/// Names in a buildpack's layers directory that are its own files, not layers.
const RESERVED_LAYER_NAMES: [&str; 3] = ["build", "launch", "store"];

/// Why the build stopped.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error("{id}: could not run bin/build: {source}")]
    Spawn {
        id: BuildpackId,
        source: std::io::Error,
    },
    #[error("{id}: bin/build failed ({exit})")]
    Failed { id: BuildpackId, exit: Exit },
    #[error("{id}: a composite buildpack cannot be built (group.toml lists component buildpacks)")]
    Composite { id: BuildpackId },
    #[error("{}: {problem}", path.display())]
    Layer {
        path: PathBuf,
        problem: LayerProblem,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What is wrong with a layer a buildpack made.
#[derive(Debug, thiserror::Error)]
pub enum LayerProblem {
    #[error("is not a layer name")]
    Name,
    #[error("is a symbolic link, not a directory")]
    Link,
    #[error("is not a directory")]
    NotDirectory,
    #[error("more than {limit} layers")]
    TooMany { limit: usize },
}

impl BuildError {
    /// The platform's exit code: 51 when a buildpack failed, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            BuildError::Failed { .. } | BuildError::Spawn { .. } => EXIT_BUILDPACK_FAILED,
            _ => 1,
        }
    }
}

/// A process type of the built image.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Process {
    pub r#type: String,
    pub command: Vec<String>,
    #[serde(default)]
    pub args: Vec<String>,
    pub direct: bool,
    pub buildpack_id: BuildpackId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exec_env: Vec<String>,
}

/// One layer a buildpack left, with its types and metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    pub name: String,
    /// `<layers>/<escaped id>/<name>` (renamed `<name>.ignore` when it has no type).
    pub path: PathBuf,
    pub metadata: LayerMetadata,
}

/// What one buildpack left in its layers directory.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildpackLayers {
    pub buildpack: GroupMember,
    /// In name order.
    pub layers: Vec<Layer>,
    pub store: Option<Store>,
}

/// What the build gives the exporter and the launcher.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildMetadata {
    pub buildpacks: Vec<GroupMember>,
    /// Sorted by type; a later buildpack's process of the same type replaced the earlier.
    pub processes: Vec<Process>,
    /// In buildpack order; the last of a key wins ([`BuildMetadata::image_labels`]).
    pub labels: Vec<Label>,
    /// In buildpack order.
    pub slices: Vec<Slice>,
    /// The last `default = true`, unless a later non-default process of that type
    /// replaced it.
    pub default_process: Option<String>,
    pub layers: Vec<BuildpackLayers>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
struct RawMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    buildpack_default_process_type: Option<String>,
    #[serde(default)]
    buildpacks: Vec<RawMember>,
    #[serde(default)]
    processes: Vec<Process>,
    #[serde(default)]
    labels: Vec<Label>,
    #[serde(default)]
    slices: Vec<Slice>,
}

impl BuildMetadata {
    /// The image labels: the last buildpack to set a key wins.
    pub fn image_labels(&self) -> std::collections::BTreeMap<String, String> {
        self.labels
            .iter()
            .map(|l| (l.key.clone(), l.value.clone()))
            .collect()
    }

    /// The text of `<layers>/config/metadata.toml` (Platform API 0.10+: array commands).
    pub fn to_toml(&self, path: &Path) -> Result<String, FormatError> {
        let raw = RawMetadata {
            buildpack_default_process_type: self.default_process.clone(),
            buildpacks: raw_members(&self.buildpacks),
            processes: self.processes.clone(),
            labels: self.labels.clone(),
            slices: self.slices.clone(),
        };
        to_toml(path, &raw)
    }

    /// Reads `metadata.toml` back (what a launcher does). Layers are not in it.
    pub fn read(path: &Path, limits: &Limits) -> Result<BuildMetadata, FormatError> {
        let text = read_required(path, limits.file_bytes)?;
        let raw: RawMetadata = parse(&text, path)?;
        bounded(
            path,
            "processes",
            raw.processes.len(),
            limits.launch_entries,
        )?;
        let buildpacks = members_from_raw(raw.buildpacks, path, "buildpacks", limits)?;
        for (i, p) in raw.processes.iter().enumerate() {
            if p.command.first().is_none_or(|c| c.is_empty()) {
                return Err(FormatError::invalid(
                    path,
                    format!("processes[{i}].command"),
                    Problem::Empty,
                ));
            }
        }
        Ok(BuildMetadata {
            buildpacks,
            processes: raw.processes,
            labels: raw.labels,
            slices: raw.slices,
            default_process: raw.buildpack_default_process_type,
            layers: Vec::new(),
        })
    }
}

/// The build phase under way.
struct Builder<'a> {
    context: &'a Context<'a>,
}

/// Builds `group` with `plan`, buildpack output going to `log`; writes
/// `<layers>/config/metadata.toml`.
pub fn build(
    context: &Context<'_>,
    group: &Group,
    plan: &Plan,
    log: &mut dyn Write,
) -> Result<BuildMetadata, BuildError> {
    Builder { context }.build(group, plan, log)
}

impl<'a> Builder<'a> {
    fn build(
        &self,
        group: &Group,
        plan: &Plan,
        log: &mut dyn Write,
    ) -> Result<BuildMetadata, BuildError> {
        let mut env = self.context.env.clone();
        let mut plan = plan.clone();
        let mut processes: Vec<Process> = Vec::new();
        let mut default_process: Option<String> = None;
        let mut labels = Vec::new();
        let mut slices = Vec::new();
        let mut layers = Vec::new();
        let mut buildpacks = Vec::new();
        for member in &group.group {
            let descriptor = Descriptor::lookup(
                &self.context.dirs.buildpacks,
                &member.id,
                &member.version,
                &self.context.limits,
            )?;
            if descriptor.is_composite() {
                return Err(BuildError::Composite {
                    id: member.id.clone(),
                });
            }
            let output = self.build_one(&descriptor, &mut env, &plan, log)?;
            plan = plan.without_met(&output.met);
            for process in output.processes {
                if process.default {
                    default_process = Some(process.r#type.clone());
                } else if default_process.as_deref() == Some(process.r#type.as_str()) {
                    tracing::warn!(process = %process.r#type, "a process not marked default redefines the default process type");
                    default_process = None;
                }
                let process = Process {
                    r#type: process.r#type,
                    command: process.command,
                    args: process.args,
                    direct: process.direct,
                    buildpack_id: descriptor.id.clone(),
                    working_dir: process.working_dir,
                    exec_env: process.exec_env,
                };
                processes.retain(|p| p.r#type != process.r#type);
                processes.push(process);
            }
            labels.extend(output.labels);
            slices.extend(output.slices);
            let member = GroupMember {
                id: descriptor.id.clone(),
                version: descriptor.version.clone(),
                api: descriptor.api,
                homepage: descriptor.homepage.clone(),
            };
            layers.push(BuildpackLayers {
                buildpack: member.clone(),
                layers: output.layers,
                store: output.store,
            });
            buildpacks.push(member);
        }
        processes.sort_by(|a, b| a.r#type.cmp(&b.r#type));
        let metadata = BuildMetadata {
            buildpacks,
            processes,
            labels,
            slices,
            default_process,
            layers,
        };
        let config = self.context.dirs.layers.join("config");
        std::fs::create_dir_all(&config).map_err(|source| BuildError::Io {
            path: config.clone(),
            source,
        })?;
        let path = config.join("metadata.toml");
        let text = metadata.to_toml(&path)?;
        std::fs::write(&path, text).map_err(|source| BuildError::Io { path, source })?;
        Ok(metadata)
    }

    fn build_one(
        &self,
        descriptor: &Descriptor,
        env: &mut Env,
        plan: &Plan,
        log: &mut dyn Write,
    ) -> Result<BuildpackOutput, BuildError> {
        let id = &descriptor.id;
        let io_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| BuildError::Io { path, source }
        };
        let bp_layers = self.context.dirs.layers.join(id.escaped());
        std::fs::create_dir_all(&bp_layers).map_err(io_error(&bp_layers))?;
        let scratch = self
            .context
            .scratch(&format!("{}-", id.escaped()))
            .map_err(io_error(&self.context.dirs.scratch))?;
        let plan_path = scratch.path().join("plan.toml");
        let bp_plan = plan.find(id);
        bp_plan.write(&plan_path)?;
        let platform = self.context.dirs.platform.as_path();
        let invocation = self.context.invocation(
            descriptor,
            env,
            "build",
            &[&bp_layers, platform, &plan_path],
            &[
                ("CNB_PLATFORM_DIR", platform),
                ("CNB_BP_PLAN_PATH", &plan_path),
                ("CNB_LAYERS_DIR", &bp_layers),
            ],
        )?;
        tracing::info!(buildpack = %id, version = %descriptor.version, "building");
        match self.context.executor.run(&invocation, log) {
            Ok(Exit::Code(0)) => {}
            Ok(exit) => {
                return Err(BuildError::Failed {
                    id: id.clone(),
                    exit,
                })
            }
            Err(source) => {
                return Err(BuildError::Spawn {
                    id: id.clone(),
                    source,
                })
            }
        }

        let layers = read_layers(&bp_layers, &self.context.limits)?;
        // Build layers change the environment of the buildpacks after this one.
        for layer in layers.iter().filter(|l| l.metadata.types.build) {
            env.add_root_dir(&layer.path);
            env.add_env_dir(
                &layer.path.join("env"),
                Action::Override,
                &self.context.limits,
            )?;
            env.add_env_dir(
                &layer.path.join("env.build"),
                Action::Override,
                &self.context.limits,
            )?;
        }

        let build_toml = bp_layers.join("build.toml");
        let unmet = match read_text(&build_toml, self.context.limits.file_bytes)? {
            Some(text) => parse_build_toml(&text, &build_toml, &bp_plan, &self.context.limits)?,
            None => Vec::new(),
        };
        let met = bp_plan
            .entries
            .iter()
            .filter(|e| !unmet.contains(&e.name))
            .map(|e| e.name.clone())
            .collect();

        let launch_toml = bp_layers.join("launch.toml");
        let launch = match read_text(&launch_toml, self.context.limits.file_bytes)? {
            Some(text) => parse_launch(
                &text,
                &launch_toml,
                descriptor.api,
                &self.context.dirs.app,
                &self.context.dirs.layers,
                &self.context.limits,
            )?,
            None => Default::default(),
        };
        let store_toml = bp_layers.join("store.toml");
        let store = read_text(&store_toml, self.context.limits.file_bytes)?
            .map(|text| parse_store(&text, &store_toml))
            .transpose()?;
        Ok(BuildpackOutput {
            met,
            processes: launch.processes,
            labels: launch.labels,
            slices: launch.slices,
            layers,
            store,
        })
    }
}

/// What a build left in `layers` (its `config/metadata.toml` and every buildpack's layer
/// metadata and `store.toml`), read back where the build ran elsewhere (in the build
/// container, the exporter on the host).
///
/// The buildpacks wrote `layers` as they pleased, and this reads it on the host (as root,
/// for a root build), where a link the container resolved inside itself leads to the
/// host's files: `config` and each buildpack's directory must be real directories, not
/// links (`<layers>/<bp> -> /some/host/dir` would have the host read, rename and export
/// that directory's layers), and the files in them are read without following links.
pub fn read_built(layers: &Path, limits: &Limits) -> Result<BuildMetadata, BuildError> {
    let config = layers.join("config");
    real_dir(&config)?;
    let mut metadata = BuildMetadata::read(&config.join("metadata.toml"), limits)?;
    for buildpack in &metadata.buildpacks {
        let bp_layers = layers.join(buildpack.id.escaped());
        let exists = real_dir(&bp_layers)?;
        let store_toml = bp_layers.join("store.toml");
        let store = read_text(&store_toml, limits.file_bytes)?
            .map(|text| parse_store(&text, &store_toml))
            .transpose()?;
        metadata.layers.push(BuildpackLayers {
            buildpack: buildpack.clone(),
            layers: match exists {
                true => read_layers(&bp_layers, limits)?,
                false => Vec::new(),
            },
            store,
        });
    }
    Ok(metadata)
}

/// Whether `path` is a directory (`false`: nothing is there); a link or another file is
/// an error.
fn real_dir(path: &Path) -> Result<bool, BuildError> {
    let problem = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => return Ok(true),
        Ok(meta) if meta.file_type().is_symlink() => LayerProblem::Link,
        Ok(_) => LayerProblem::NotDirectory,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(source) => {
            return Err(BuildError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    Err(BuildError::Layer {
        path: path.to_path_buf(),
        problem,
    })
}

/// Reads every `<layer>.toml` of a buildpack's layers directory, in name order, and
/// renames the layers with no type to `<layer>.ignore` (read again, as
/// [`read_built`] does, they stay ignored: their directory is gone).
fn read_layers(bp_layers: &Path, limits: &Limits) -> Result<Vec<Layer>, BuildError> {
    let entries = std::fs::read_dir(bp_layers).map_err(|source| BuildError::Io {
        path: bp_layers.to_path_buf(),
        source,
    })?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| BuildError::Io {
            path: bp_layers.to_path_buf(),
            source,
        })?;
        let file_name = entry.file_name();
        let Some(name) = file_name.to_str().and_then(|n| n.strip_suffix(".toml")) else {
            continue;
        };
        if RESERVED_LAYER_NAMES.contains(&name) || entry.path().is_dir() {
            continue;
        }
        if name.is_empty() || name == "." || name == ".." {
            return Err(BuildError::Layer {
                path: entry.path(),
                problem: LayerProblem::Name,
            });
        }
        names.push(name.to_string());
        if names.len() > limits.layers {
            return Err(BuildError::Layer {
                path: bp_layers.to_path_buf(),
                problem: LayerProblem::TooMany {
                    limit: limits.layers,
                },
            });
        }
    }
    names.sort();
    let mut layers = Vec::with_capacity(names.len());
    for name in names {
        let toml_path = bp_layers.join(format!("{name}.toml"));
        let text = read_required(&toml_path, limits.file_bytes)?;
        let metadata = parse_layer(&text, &toml_path)?;
        let mut path = bp_layers.join(&name);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(BuildError::Layer {
                    path,
                    problem: LayerProblem::Link,
                })
            }
            Ok(meta) if !meta.is_dir() => {
                return Err(BuildError::Layer {
                    path,
                    problem: LayerProblem::NotDirectory,
                })
            }
            Ok(_) if !metadata.types.any() => {
                let ignored = bp_layers.join(format!("{name}.ignore"));
                std::fs::rename(&path, &ignored).map_err(|source| BuildError::Io {
                    path: path.clone(),
                    source,
                })?;
                path = ignored;
            }
            Ok(_) => {}
            // A layer with metadata and no directory: a launch layer to be reused from
            // the previous image, which the exporter handles.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(BuildError::Io { path, source }),
        }
        layers.push(Layer {
            name,
            path,
            metadata,
        });
    }
    Ok(layers)
}

struct BuildpackOutput {
    met: Vec<String>,
    processes: Vec<crate::formats::outputs::ProcessEntry>,
    labels: Vec<Label>,
    slices: Vec<Slice>,
    layers: Vec<Layer>,
    store: Option<Store>,
}

#[cfg(test)]
mod tests;
