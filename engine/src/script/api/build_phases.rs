//! The build as primitives, one per phase, which `locald build` (`stdlib/build.rhai`)
//! composes and scripts may compose otherwise:
//!
//! ```rhai
//! let b = prepare_build(".", #{ builder: "…" });  // pull, copy, restore
//! let found = b.detect();                          // #{ group, plan }
//! let made = b.build();                            // #{ processes, default_process, labels }
//! let image = b.export_image();                          // #{ reference, digest }
//! ```
//!
//! A `Build` value is a handle on one build under way (`build::Prepared`): it owns the
//! work directory, the build cache's lock and the leases on its images, shared by every
//! copy of the value. The phases run once each, in order; one that fails (or is
//! interrupted) ends the build, as does the export: the work directory is removed and
//! the cache's lock released at once, not when the script lets go of the value. A build
//! dropped before its export leaves the name's image and cache as they were.
//!
//! `image_processes(image)` is the launch side: the process types a built image's
//! launcher runs (its `io.buildpacks.build.metadata` label). Running one is
//! `run_container(image, #{ entrypoint: ["/cnb/process/TYPE"] })`, as the image's own
//! entrypoint is for its default type.

use std::sync::{Arc, Mutex, MutexGuard};

use locald_cnb::build::BuildMetadata;
use locald_cnb::export::LABEL_BUILD;
use locald_cnb::formats::order::Group;
use locald_cnb::formats::plan::Plan;
use locald_image::PullPolicy;
use rhai::plugin::*;
use rhai::{Array, Dynamic, Map};
use serde::Deserialize;

use super::build::{BuildError, Prepared};
use super::container::{self, ContainerError, PullStopped};

/// Why a phase was refused, or an image's processes could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PhaseError {
    #[error(
        "{wanted}: this build {state}; its phases run once each, in order: detect(), \
         build(), export_image()"
    )]
    OutOfOrder { wanted: &'static str, state: String },
    #[error(
        "{image} was not built with buildpacks: it has no {LABEL_BUILD} label (build it \
         with `locald build`)"
    )]
    NotBuilt { image: String },
    #[error("{image}: its {LABEL_BUILD} label cannot be read: {reason}")]
    BadLabel { image: String, reason: String },
}

impl From<PhaseError> for ContainerError {
    fn from(error: PhaseError) -> Self {
        BuildError::Phase(error).into()
    }
}

/// Where a build is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Prepared,
    Detected,
    Built,
    Exported,
    /// The phase that failed (or was interrupted).
    Failed(&'static str),
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Prepared => "prepared",
            Phase::Detected => "detected",
            Phase::Built => "built",
            Phase::Exported => "exported",
            Phase::Failed(_) => "failed",
        }
    }

    /// What the build's state means to a phase asked for out of turn.
    fn refusal(self) -> String {
        match self {
            Phase::Prepared => "is not detected yet".into(),
            Phase::Detected => "is detected, not built yet".into(),
            Phase::Built => "is already built".into(),
            Phase::Exported => "is already exported".into(),
            Phase::Failed(at) => format!("failed at {at}"),
        }
    }
}

struct State {
    phase: Phase,
    /// Until the export or a failure.
    prepared: Option<Prepared>,
    /// What the build phase made, for the export.
    built: Option<BuildMetadata>,
    tag: String,
    builder: String,
    run_image: String,
    source: String,
}

/// A build under way, as scripts hold it (`Build`): see the module's doc.
#[derive(Clone)]
pub struct Build(Arc<Mutex<State>>);

impl Build {
    fn new(prepared: Prepared) -> Build {
        Build(Arc::new(Mutex::new(State {
            phase: Phase::Prepared,
            tag: prepared.tag().to_string(),
            builder: prepared.builder().to_string(),
            run_image: prepared.run_image().to_string(),
            source: prepared.source().display().to_string(),
            prepared: Some(prepared),
            built: None,
        })))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while a phase held the lock leaves nothing half-written that a later
        // phase would trust: the phase is still the one before.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `phase` (named `wanted`) when the build is at `from`, moving it to `to`; a
    /// failure ends the build (its work directory removed, its cache lock released).
    fn advance<T>(
        &self,
        wanted: &'static str,
        from: Phase,
        to: Phase,
        phase: impl FnOnce(&mut State) -> Result<T, PullStopped>,
    ) -> Result<T, PullStopped> {
        let mut state = self.state();
        if state.phase != from {
            return Err(PhaseError::OutOfOrder {
                wanted,
                state: state.phase.refusal(),
            }
            .into());
        }
        match phase(&mut state) {
            Ok(value) => {
                state.phase = to;
                Ok(value)
            }
            Err(error) => {
                state.phase = Phase::Failed(wanted);
                state.prepared = None;
                state.built = None;
                Err(error)
            }
        }
    }

    fn detect(&self) -> Result<Map, PullStopped> {
        self.advance("detect", Phase::Prepared, Phase::Detected, |state| {
            let prepared = state.prepared.as_ref().ok_or_else(gone)?;
            let (group, plan) = prepared.detect()?;
            Ok(detected_map(&group, &plan))
        })
    }

    fn build(&self) -> Result<Map, PullStopped> {
        self.advance("build", Phase::Detected, Phase::Built, |state| {
            let prepared = state.prepared.as_ref().ok_or_else(gone)?;
            let metadata = prepared.build()?;
            let map = built_map(&metadata);
            state.built = Some(metadata);
            Ok(map)
        })
    }

    fn export_image(&self) -> Result<Map, PullStopped> {
        self.advance("export_image", Phase::Built, Phase::Exported, |state| {
            let prepared = state.prepared.take().ok_or_else(gone)?;
            let metadata = state.built.take().ok_or_else(gone)?;
            let image = prepared.export(&metadata)?;
            Ok(container::image_map(&image))
        })
    }
}

/// A phase found its build's resources gone: they go only with the phase moving to
/// exported or failed, which the order check refuses first, so this is a bug's error.
fn gone() -> PullStopped {
    PhaseError::OutOfOrder {
        wanted: "build",
        state: "has ended".into(),
    }
    .into()
}

/// `#{ group, plan }`: `group` the buildpacks that passed, in order (`#{ id, version,
/// api, homepage }`), `plan` one entry per dependency name (`#{ name, providers: [#{ id,
/// version }], requires: [#{ name, metadata }] }`).
fn detected_map(group: &Group, plan: &Plan) -> Map {
    let group: Array = group
        .group
        .iter()
        .map(|member| {
            let mut map = Map::new();
            map.insert("id".into(), member.id.to_string().into());
            map.insert("version".into(), member.version.clone().into());
            map.insert("api".into(), member.api.to_string().into());
            map.insert(
                "homepage".into(),
                member.homepage.clone().map_or(Dynamic::UNIT, Dynamic::from),
            );
            Dynamic::from_map(map)
        })
        .collect();
    let plan: Array = plan
        .entries
        .iter()
        .map(|entry| {
            let mut map = Map::new();
            let name = entry.requires.first().map(|r| r.name.clone());
            map.insert("name".into(), name.map_or(Dynamic::UNIT, Dynamic::from));
            let providers: Array = entry
                .providers
                .iter()
                .map(|p| {
                    let mut provider = Map::new();
                    provider.insert("id".into(), p.id.to_string().into());
                    provider.insert("version".into(), p.version.clone().into());
                    Dynamic::from_map(provider)
                })
                .collect();
            map.insert("providers".into(), providers.into());
            let requires: Array = entry
                .requires
                .iter()
                .map(|r| {
                    let mut require = Map::new();
                    require.insert("name".into(), r.name.clone().into());
                    // Buildpack-written TOML: tables, strings, numbers, arrays.
                    let metadata = rhai::serde::to_dynamic(&r.metadata)
                        .unwrap_or_else(|_| Dynamic::from_map(Map::new()));
                    require.insert("metadata".into(), metadata);
                    Dynamic::from_map(require)
                })
                .collect();
            map.insert("requires".into(), requires.into());
            Dynamic::from_map(map)
        })
        .collect();
    let mut map = Map::new();
    map.insert("group".into(), group.into());
    map.insert("plan".into(), plan.into());
    map
}

/// One process type as scripts see it, from the build or an image's label.
struct ProcessView<'a> {
    kind: &'a str,
    command: &'a [String],
    args: &'a [String],
    default: bool,
    working_dir: Option<&'a str>,
    buildpack_id: &'a str,
}

fn process_map(process: ProcessView<'_>) -> Dynamic {
    let strings =
        |items: &[String]| -> Array { items.iter().cloned().map(Dynamic::from).collect() };
    let mut map = Map::new();
    map.insert("type".into(), process.kind.to_string().into());
    map.insert("command".into(), strings(process.command).into());
    map.insert("args".into(), strings(process.args).into());
    map.insert("default".into(), process.default.into());
    map.insert(
        "working_dir".into(),
        process
            .working_dir
            .map_or(Dynamic::UNIT, |d| Dynamic::from(d.to_string())),
    );
    map.insert(
        "buildpack_id".into(),
        process.buildpack_id.to_string().into(),
    );
    Dynamic::from_map(map)
}

/// `#{ processes, default_process, labels }` of a finished build phase.
fn built_map(metadata: &BuildMetadata) -> Map {
    let default = metadata.default_process.as_deref();
    let processes: Array = metadata
        .processes
        .iter()
        .map(|p| {
            let buildpack_id = p.buildpack_id.to_string();
            process_map(ProcessView {
                kind: &p.r#type,
                command: &p.command,
                args: &p.args,
                default: default == Some(p.r#type.as_str()),
                working_dir: p.working_dir.as_deref(),
                buildpack_id: &buildpack_id,
            })
        })
        .collect();
    let labels: Map = metadata
        .image_labels()
        .into_iter()
        .map(|(key, value)| (key.into(), value.into()))
        .collect();
    let mut map = Map::new();
    map.insert("processes".into(), processes.into());
    map.insert(
        "default_process".into(),
        default.map_or(Dynamic::UNIT, |d| Dynamic::from(d.to_string())),
    );
    map.insert("labels".into(), labels.into());
    map
}

/// `io.buildpacks.build.metadata` as the exporter writes it (the parts read here).
#[derive(Deserialize)]
struct BuildLabel {
    #[serde(default)]
    processes: Vec<LabelProcess>,
    #[serde(rename = "buildpack-default-process-type", default)]
    default_process: Option<String>,
}

#[derive(Deserialize)]
struct LabelProcess {
    r#type: String,
    command: Vec<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(rename = "buildpackID", default)]
    buildpack_id: String,
    #[serde(rename = "working-dir", default)]
    working_dir: Option<String>,
}

/// The process types of the built image `reference` (in the store), from its label.
pub fn image_processes(reference: &str) -> Result<Array, PullStopped> {
    let image = container::ensure_image(reference, PullPolicy::Never)?;
    let labels = container::store()?.labels(&image)?;
    let label = labels
        .get(LABEL_BUILD)
        .ok_or_else(|| PhaseError::NotBuilt {
            image: image.reference.clone(),
        })?;
    processes_of_label(&image.reference, label)
}

fn processes_of_label(image: &str, label: &str) -> Result<Array, PullStopped> {
    let label: BuildLabel = serde_json::from_str(label).map_err(|e| PhaseError::BadLabel {
        image: image.to_string(),
        reason: e.to_string(),
    })?;
    let default = label.default_process.as_deref();
    Ok(label
        .processes
        .iter()
        .map(|p| {
            process_map(ProcessView {
                kind: &p.r#type,
                command: &p.command,
                args: &p.args,
                default: default == Some(p.r#type.as_str()),
                working_dir: p.working_dir.as_deref(),
                buildpack_id: &p.buildpack_id,
            })
        })
        .collect())
}

/// Registers the `Build` type's name and text forms.
pub fn register_types(engine: &mut rhai::Engine) {
    engine
        .register_type_with_name::<Build>("Build")
        .register_fn("to_string", |b: &mut Build| build_text(b))
        .register_fn("to_debug", |b: &mut Build| build_text(b));
}

fn build_text(build: &Build) -> String {
    let state = build.state();
    format!("Build({}, {})", state.tag, state.phase.name())
}

#[export_module]
pub mod build_phases_api {
    use super::{Build, Prepared};
    use crate::script::api::build::BuildImageOptions;
    use rhai::{Array, Map};

    /// Prepares a build of the app in the directory `source`, with the builder from
    /// the user config (`prepare_build(source, options)` says the rest).
    #[rhai_fn(return_raw)]
    pub fn prepare_build(
        ctx: NativeCallContext,
        source: &str,
    ) -> Result<Build, Box<EvalAltResult>> {
        Prepared::prepare(std::path::Path::new(source), BuildImageOptions::default())
            .map(Build::new)
            .map_err(|e| e.into_eval(&ctx))
    }

    /// Prepares a build of the app in the directory `source` with Cloud Native
    /// Buildpacks, the first step of what `build_image` does: pulls the builder and its
    /// run image, copies the source (less `.git`, `.locald` and what `.gitignore` files
    /// ignore) into a private work directory, and restores the last build of the same
    /// name (`===> RESTORING`).
    /// Options `#{ builder, buildpacks, env, tag, verbose }`, as `build_image`'s.
    /// Returns a `Build`, whose phases run once each, in order: `b.detect()`,
    /// `b.build()`, `b.export_image()`; a phase that fails ends the build. A `Build` never
    /// exported leaves the name's image and build cache as they were.
    #[rhai_fn(name = "prepare_build", return_raw)]
    pub fn prepare_build_with(
        ctx: NativeCallContext,
        source: &str,
        options: Map,
    ) -> Result<Build, Box<EvalAltResult>> {
        let options: BuildImageOptions = super::super::options::read("prepare_build", options)
            .map_err(|e| crate::script::api::fail(&ctx, e))?;
        Prepared::prepare(std::path::Path::new(source), options)
            .map(Build::new)
            .map_err(|e| e.into_eval(&ctx))
    }

    /// Detection (`===> DETECTING`), in a container of the builder: runs the
    /// buildpacks' `bin/detect` over the builder's order (or the `buildpacks` given)
    /// and returns `#{ group, plan }`: the group that passed, in order (`#{ id,
    /// version, api, homepage }` each), and the resolved build plan (`#{ name,
    /// providers, requires }` per dependency: providers `#{ id, version }`, requires
    /// `#{ name, metadata }`). Throws, naming the Platform API's exit code, when no
    /// group passes (20) or a buildpack errors (21).
    #[rhai_fn(return_raw)]
    pub fn detect(ctx: NativeCallContext, build: &mut Build) -> Result<Map, Box<EvalAltResult>> {
        build.detect().map_err(|e| e.into_eval(&ctx))
    }

    /// The build phase (`===> BUILDING`), in a container of the builder: each
    /// buildpack of the detected group runs `bin/build`, its output streaming as it
    /// comes. Returns `#{ processes, default_process, labels }`: the process types
    /// (`#{ type, command, args, default, working_dir, buildpack_id }` each, as
    /// `image_processes` gives them), the default type (or `()`), the image labels the
    /// buildpacks set. Throws when a buildpack fails (exit 51).
    #[rhai_fn(name = "build", return_raw)]
    pub fn build_phase(
        ctx: NativeCallContext,
        build: &mut Build,
    ) -> Result<Map, Box<EvalAltResult>> {
        build.build().map_err(|e| e.into_eval(&ctx))
    }

    /// The export (`===> EXPORTING`): writes the built image, stores it under the
    /// build's tag, and keeps its cache layers for the next build of that name. Returns
    /// `#{ reference, digest }`.
    /// (Not `export`: that is a Rhai keyword, which no method can be named.)
    #[rhai_fn(name = "export_image", return_raw)]
    pub fn export_phase(
        ctx: NativeCallContext,
        build: &mut Build,
    ) -> Result<Map, Box<EvalAltResult>> {
        build.export_image().map_err(|e| e.into_eval(&ctx))
    }

    /// The name the build's image is stored under.
    #[rhai_fn(get = "tag", pure)]
    pub fn tag(build: &mut Build) -> String {
        build.state().tag.clone()
    }

    /// The builder image.
    #[rhai_fn(get = "builder", pure)]
    pub fn builder(build: &mut Build) -> String {
        build.state().builder.clone()
    }

    /// The run image the built image is based on.
    #[rhai_fn(get = "run_image", pure)]
    pub fn run_image(build: &mut Build) -> String {
        build.state().run_image.clone()
    }

    /// The source directory (absolute).
    #[rhai_fn(get = "source", pure)]
    pub fn source(build: &mut Build) -> String {
        build.state().source.clone()
    }

    /// Where the build is: `"prepared"`, `"detected"`, `"built"`, `"exported"` or
    /// `"failed"`.
    #[rhai_fn(get = "phase", pure)]
    pub fn phase(build: &mut Build) -> String {
        build.state().phase.name().to_string()
    }

    /// The process types of the image `image` (in the store) built with buildpacks,
    /// what its launcher runs: `#{ type, command, args, default, working_dir,
    /// buildpack_id }` each (`args` the default arguments a command's own replace;
    /// `working_dir` `()` for the app directory). `run_container(image, #{ entrypoint:
    /// ["/cnb/process/" + type] })` runs one. Throws for an image not built with
    /// buildpacks.
    #[rhai_fn(return_raw)]
    pub fn image_processes(
        ctx: NativeCallContext,
        image: &str,
    ) -> Result<Array, Box<EvalAltResult>> {
        super::image_processes(image).map_err(|e| e.into_eval(&ctx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A build at `phase` with nothing behind it: what the order checks see.
    fn bare(phase: Phase) -> Build {
        Build(Arc::new(Mutex::new(State {
            phase,
            prepared: None,
            built: None,
            tag: "site:dev".into(),
            builder: "builder:1".into(),
            run_image: "run:1".into(),
            source: "/src/site".into(),
        })))
    }

    fn message(result: Result<Map, PullStopped>) -> String {
        match result {
            Ok(map) => panic!("succeeded: {map:?}"),
            Err(PullStopped::Failed(error)) => error.to_string(),
            Err(PullStopped::Interrupted) => "interrupted".into(),
        }
    }

    #[test]
    fn phases_run_in_order_and_a_failure_ends_the_build() {
        let build = bare(Phase::Prepared);
        let error = message(build.build());
        assert!(
            error.starts_with("build: this build is not detected yet;"),
            "{error}"
        );
        let error = message(build.export_image());
        assert!(
            error.starts_with("export_image: this build is not detected yet;"),
            "{error}"
        );
        // Refused phases change nothing.
        assert_eq!(build.state().phase, Phase::Prepared);
        assert_eq!(build_text(&build), "Build(site:dev, prepared)");

        // A phase that fails (here: nothing prepared behind it) ends the build.
        let copy = build.clone();
        assert!(message(copy.detect()).contains("has ended"));
        assert_eq!(build.state().phase, Phase::Failed("detect"));
        let error = message(build.detect());
        assert!(
            error.starts_with("detect: this build failed at detect;"),
            "{error}"
        );

        let error = message(bare(Phase::Detected).export_image());
        assert!(
            error.starts_with("export_image: this build is detected, not built yet;"),
            "{error}"
        );
        let error = message(bare(Phase::Exported).export_image());
        assert!(
            error.starts_with("export_image: this build is already exported;"),
            "{error}"
        );
    }

    #[test]
    fn prepare_build_checks_its_options_and_source() {
        let engine = crate::script::verb_engine();
        // `export` is a Rhai keyword, even after a `.`: the export is `export_image`.
        assert!(engine.compile("fn f(b) { b.export() }").is_err());
        engine
            .compile("fn f(b) { b.detect(); b.build(); b.export_image() }")
            .unwrap();
        let error = engine
            .eval::<Dynamic>(r#"prepare_build(".", #{ bulder: "b:1" })"#)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("prepare_build: unknown option `bulder`") && error.contains("builder"),
            "{error}"
        );
        let error = engine
            .eval::<Dynamic>(r#"prepare_build("/nonexistent/app", #{ builder: "b:1" })"#)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("the source /nonexistent/app is not a directory"),
            "{error}"
        );
        let error = engine
            .eval::<Dynamic>(r#"image_processes("localhost/never-stored-979599:1")"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("never-stored-979599"), "{error}");
    }

    #[test]
    fn phases_refused_out_of_turn_say_why() {
        for (phase, expected) in [
            (Phase::Prepared, "is not detected yet"),
            (Phase::Built, "is already built"),
            (Phase::Failed("detect"), "failed at detect"),
        ] {
            let error = PhaseError::OutOfOrder {
                wanted: "export_image",
                state: phase.refusal(),
            }
            .to_string();
            assert!(
                error.starts_with(&format!("export_image: this build {expected};"))
                    && error.contains("in order: detect(), build(), export_image()"),
                "{error}"
            );
        }
    }

    #[test]
    fn an_images_processes_come_from_its_build_label() {
        let label = r#"{"bom":null,"buildpacks":[],"buildpack-default-process-type":"web",
            "processes":[
              {"type":"web","command":["httpd"],"args":["-f"],"direct":true,"buildpackID":"test/httpd"},
              {"type":"worker","command":["sh","-c"],"args":[],"direct":true,"buildpackID":"test/procfile","working-dir":"/workspace/w"}
            ]}"#;
        let processes = processes_of_label("site:1", label).unwrap();
        let maps: Vec<Map> = processes.into_iter().map(|p| p.cast::<Map>()).collect();
        let get = |m: &Map, k: &str| m.get(k).unwrap().to_string();
        assert_eq!(get(&maps[0], "type"), "web");
        assert_eq!(get(&maps[0], "default"), "true");
        assert_eq!(get(&maps[0], "args"), r#"["-f"]"#);
        assert_eq!(get(&maps[0], "buildpack_id"), "test/httpd");
        assert!(maps[0].get("working_dir").unwrap().is_unit());
        assert_eq!(get(&maps[1], "default"), "false");
        assert_eq!(get(&maps[1], "working_dir"), "/workspace/w");

        let error = processes_of_label("site:1", "{\"processes\": 3}")
            .err()
            .map(|e| match e {
                PullStopped::Failed(e) => e.to_string(),
                PullStopped::Interrupted => "interrupted".into(),
            })
            .unwrap();
        assert!(
            error.contains("site:1: its io.buildpacks.build.metadata label cannot be read"),
            "{error}"
        );
    }
}
