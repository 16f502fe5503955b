//! Build primitives: an app built from source by Cloud Native Buildpacks into the image
//! store.
//!
//! `build_image(source, #{ builder, buildpacks, env, tag, verbose })` is the build's
//! phases in one call (`Prepared`; `super::build_phases` gives them to scripts one by
//! one): it pulls the builder
//! (and the run image its `/cnb/run.toml` names) through the store, resolves the
//! `buildpacks` given (`super::buildpacks`: they replace the builder's order), copies the source (less `.git`,
//! `.locald` and what `.gitignore` files ignore: [`copy_source`]) into a fresh work directory, and runs locald's static `lifecycle`
//! (`lifecycle detect`, then `lifecycle build`, each in its own container) of the
//! builder image as its `CNB_USER_ID` (rootless:
//! the caller mapped to it in the container's user namespace, so nothing is chowned), with
//! `/workspace`, `/layers` and `/platform` mounted and `/cnb` the builder's own: through
//! the same foreground runtime as `run_container`, so buildpack output streams to the
//! terminal and Ctrl-C stops the build. The exporter (`locald_cnb::export`) then writes
//! the image on the host from what the build left, with the static `launcher`, and the
//! store imports it under `tag`.
//!
//! The `lifecycle` and `launcher` binaries run inside images that may have no C library,
//! so they are built static (`scripts/build-launcher`); [`cnb_binary`] says where they
//! are looked for.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use locald_cnb::build::BuildMetadata;
use locald_cnb::export::layer::Owner;
use locald_cnb::export::{ExportError, ExportInput, SourceImage};
use locald_cnb::formats::order::{write_order, Group, OrderGroup};
use locald_cnb::formats::plan::Plan;
use locald_cnb::formats::run_image::builder_run_images;
use locald_cnb::formats::FormatError;
use locald_cnb::Limits;
use locald_image::{PullPolicy, StoredImage};
use rhai::plugin::*;
use rhai::Map;
use serde::Deserialize;

use super::container::{self, ContainerError, PullStopped, RunContainerOptions};
use super::options::{self, OptionsError};
use crate::program::Program;

/// Where the lifecycle's directories are in the build container.
const WORKSPACE: &str = "/workspace";
const LAYERS: &str = "/layers";
const PLATFORM: &str = "/platform";
const LIFECYCLE_IN_CONTAINER: &str = "/cnb/lifecycle/lifecycle";

/// Overrides where the static `lifecycle` and `launcher` are looked for.
pub const CNB_BIN_DIR_ENV: &str = "LOCALD_CNB_BIN_DIR";

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Options(#[from] OptionsError),
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Image(#[from] locald_image::Error),
    #[error(transparent)]
    UserConfig(#[from] locald_image::UserConfigError),
    #[error(
        "build_image: no builder: give one with `builder` (locald build --builder REF), or set \
         a default in the user config (~/.config/locald/config.toml: `[build]` then \
         `builder = \"REF\"`)"
    )]
    NoBuilder,
    #[error("the source {} is not a directory", .0.display())]
    NotADirectory(PathBuf),
    #[error("cannot read the source {}: {reason}", path.display())]
    Source { path: PathBuf, reason: String },
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the build's work directory: {0}")]
    WorkDir(#[source] std::io::Error),
    #[error("the builder {builder} is not a CNB builder: it has no /cnb/run.toml (nor the legacy /cnb/stack.toml) naming its run image")]
    NoRunImage { builder: String },
    #[error(transparent)]
    RunImage(#[from] FormatError),
    #[error(
        "the builder {builder} does not say which user builds: its image sets no valid {variable}"
    )]
    BuilderUser {
        builder: String,
        variable: &'static str,
    },
    #[error(
        "`{0}` cannot be a build environment variable name (it names a file in /platform/env)"
    )]
    EnvName(String),
    #[error(
        "the CNB `{name}` binary was not found (looked in: {searched}): build it with \
         scripts/build-launcher, or set {CNB_BIN_DIR_ENV} to the directory holding the static \
         `lifecycle` and `launcher`"
    )]
    MissingBinary {
        name: &'static str,
        searched: String,
    },
    #[error("{}", lifecycle_failure(*.0))]
    Lifecycle(i64),
    #[error("cannot read what the build left: {0}")]
    ReadBuilt(#[from] locald_cnb::build::BuildError),
    #[error("cannot export the built image: {0}")]
    Export(#[from] ExportError),
    #[error(transparent)]
    Buildpack(Box<super::buildpacks::BuildpackError>),
    #[error("build cache: {0}")]
    Cache(#[from] locald_cnb::cache::CacheError),
    #[error(transparent)]
    Phase(#[from] super::build_phases::PhaseError),
}

/// The Platform API's exit codes of the detector and builder, in words.
fn lifecycle_failure(code: i64) -> String {
    match code {
        20 => "the build failed: no buildpack group passed detection (exit 20)".into(),
        21 => "the build failed: a buildpack errored during detection (exit 21)".into(),
        51 => "the build failed: a buildpack failed to build (exit 51)".into(),
        code => format!("the build failed: the lifecycle exited with {code}"),
    }
}

/// The options of `build_image`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BuildImageOptions {
    /// The builder image (pulled when missing).
    pub builder: Option<String>,
    /// The build's environment: `/platform/env/<NAME>` files, which buildpacks read.
    #[serde(deserialize_with = "options::env_map")]
    pub env: BTreeMap<String, String>,
    /// The name to store the image under (default `locald-build/<dir name>-<digest>:latest`).
    pub tag: Option<String>,
    /// Show every buildpack's detect output (`CNB_LOG_LEVEL=debug`).
    pub verbose: bool,
    /// Buildpacks that replace the builder's order with one group of them
    /// (`super::buildpacks`: images, `.cnb` files, directories, the builder's ids).
    pub buildpacks: Vec<String>,
}

/// The default name of an image built from `source` (absolute):
/// `locald-build/<dir name>-<digest>:latest` (`model::built_dir_name`: the digest of its
/// path keeps directories of the same name apart, as their build caches must be).
pub fn default_tag(source: &Path) -> String {
    format!(
        "locald-build/{}:latest",
        crate::model::built_dir_name(source)
    )
}

/// The profile `scripts/build-launcher` builds the static binaries with (see the
/// workspace's `Cargo.toml`): a stripped release build.
const CNB_PROFILE: &str = "cnb";

/// Finds the static CNB binary `name` (`lifecycle` or `launcher`): in
/// `$LOCALD_CNB_BIN_DIR`; else in `../lib/locald/` from the `locald` executable (where a
/// release installs them: `/usr/bin/locald`, `/usr/lib/locald/launcher`); else where
/// `scripts/build-launcher` puts them beside a development build (`target/debug/locald`,
/// `target/<host triple>/cnb/launcher`).
pub fn cnb_binary(name: &'static str) -> Result<PathBuf, BuildError> {
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::var_os(CNB_BIN_DIR_ENV).filter(|d| !d.is_empty()) {
        candidates.push(PathBuf::from(dir).join(name));
    } else if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(PathBuf::from))
    {
        candidates.extend(beside_locald(&exe_dir, name));
    }
    match candidates.iter().find(|path| path.is_file()) {
        Some(found) => Ok(found.clone()),
        None => Err(BuildError::MissingBinary {
            name,
            searched: candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Where `name` is looked for from the directory of the `locald` executable: the
/// release layout's `../lib/locald/`, then `scripts/build-launcher`'s output in the
/// target directory (`target/debug/locald` → `target/<host triple>/cnb/`).
fn beside_locald(exe_dir: &Path, name: &str) -> Vec<PathBuf> {
    let Some(prefix) = exe_dir.parent() else {
        return Vec::new();
    };
    let triple = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    vec![
        prefix.join("lib/locald").join(name),
        prefix.join(triple).join(CNB_PROFILE).join(name),
    ]
}

/// The run image the builder names first in `/cnb/run.toml` (or the legacy `stack.toml`),
/// never through a link in the builder's tree (`builder_run_images`).
fn run_image_reference(builder: &StoredImage) -> Result<String, BuildError> {
    let images = builder_run_images(&builder.rootfs, Limits::DEFAULT.file_bytes)?;
    images
        .and_then(|images| images.into_iter().next())
        .map(|first| first.image)
        .ok_or_else(|| BuildError::NoRunImage {
            builder: builder.reference.clone(),
        })
}

/// The builder's `CNB_USER_ID` and `CNB_GROUP_ID`, from its image config.
fn builder_owner(builder: &StoredImage) -> Result<Owner, BuildError> {
    let id = |variable: &'static str| {
        builder
            .config
            .env
            .iter()
            .find_map(|entry| entry.strip_prefix(variable)?.strip_prefix('='))
            .and_then(|value| value.parse::<u32>().ok())
            .ok_or_else(|| BuildError::BuilderUser {
                builder: builder.reference.clone(),
                variable,
            })
    };
    Ok(Owner {
        uid: id("CNB_USER_ID")?.into(),
        gid: id("CNB_GROUP_ID")?.into(),
    })
}

/// Copies the app's source to the build's work directory: the paths
/// `project::build::source_files` lists (less `.git` and `.locald` at the top and what
/// the tree's `.gitignore` files ignore, as a `git push` to a buildpacks platform sends
/// only what git tracks; the very files a built service's fingerprint covers, so an
/// edit the build would see always builds again). Links are copied as links, never
/// followed (a link to a host file puts no host file in the image); FIFOs, sockets and
/// devices are left out.
fn copy_source(from: &Path, to: &Path) -> Result<(), BuildError> {
    let io = |action, path: &Path| {
        let path = path.to_path_buf();
        move |source| BuildError::Io {
            action,
            path,
            source,
        }
    };
    let mut paths = crate::project::build::source_files(from)
        .map_err(|(path, reason)| BuildError::Source { path, reason })?;
    // A directory sorts before what it holds.
    paths.sort();
    for source in paths {
        let Ok(relative) = source.strip_prefix(from) else {
            continue;
        };
        let target = to.join(relative);
        let kind = std::fs::symlink_metadata(&source)
            .map_err(io("read", &source))?
            .file_type();
        if kind.is_dir() {
            std::fs::create_dir(&target).map_err(io("create", &target))?;
        } else if kind.is_symlink() {
            let link = std::fs::read_link(&source).map_err(io("read the link", &source))?;
            std::os::unix::fs::symlink(link, &target).map_err(io("create", &target))?;
        } else if kind.is_file() {
            std::fs::copy(&source, &target).map_err(io("copy", &source))?;
        }
    }
    Ok(())
}

/// Gives the tree at `path` to `owner` (links themselves, not their targets): the
/// buildpacks run as the builder's user and write into the app and layers directories.
fn chown_tree(path: &Path, owner: Owner) -> Result<(), BuildError> {
    let uid = u32::try_from(owner.uid).ok();
    let gid = u32::try_from(owner.gid).ok();
    std::os::unix::fs::lchown(path, uid, gid).map_err(|source| BuildError::Io {
        action: "change the owner of",
        path: path.to_path_buf(),
        source,
    })?;
    if path.is_dir() && !path.is_symlink() {
        let entries = std::fs::read_dir(path).map_err(|source| BuildError::Io {
            action: "read the directory",
            path: path.to_path_buf(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| BuildError::Io {
                action: "read the directory",
                path: path.to_path_buf(),
                source,
            })?;
            chown_tree(&entry.path(), owner)?;
        }
    }
    Ok(())
}

/// Writes the user's build environment as `<platform>/env/<NAME>` files.
fn write_platform_env(platform: &Path, env: &BTreeMap<String, String>) -> Result<(), BuildError> {
    let dir = platform.join("env");
    std::fs::create_dir_all(&dir).map_err(|source| BuildError::Io {
        action: "create",
        path: dir.clone(),
        source,
    })?;
    for (name, value) in env {
        if name.is_empty() || name == "." || name == ".." || name.contains(['/', '=', '\0']) {
            return Err(BuildError::EnvName(name.clone()));
        }
        let path = dir.join(name);
        std::fs::write(&path, value).map_err(|source| BuildError::Io {
            action: "write",
            path,
            source,
        })?;
    }
    Ok(())
}

/// The build's directories on the host, removed when it is dropped.
struct WorkDir {
    root: tempfile::TempDir,
}

impl WorkDir {
    fn new() -> Result<WorkDir, BuildError> {
        use std::os::unix::fs::PermissionsExt as _;
        // 0700, not tempfile's default (0777 less the umask): the copy of the source and
        // the layers are the caller's alone, and as root the parent keeps the host's
        // user of CNB_USER_ID out of the directories given to that id.
        let root = tempfile::Builder::new()
            .prefix("locald-build-")
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir()
            .map_err(BuildError::WorkDir)?;
        for dir in ["workspace", "layers", "platform", "layout"] {
            std::fs::create_dir(root.path().join(dir)).map_err(BuildError::WorkDir)?;
        }
        Ok(WorkDir { root })
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }
}

/// A build under way: what [`Prepared::prepare`] pulled, copied and restored, then each
/// phase in its own container of the builder (`lifecycle detect`, `lifecycle build`), and
/// the export on the host. Dropped before the export, it removes its work directory and
/// leaves the name's build cache as it was (its lock released).
pub struct Prepared {
    source: PathBuf,
    tag: String,
    builder: StoredImage,
    run_image: StoredImage,
    owner: Owner,
    buildpacks: super::buildpacks::Chosen,
    lifecycle: PathBuf,
    launcher: PathBuf,
    verbose: bool,
    store: locald_image::ImageStore,
    analysis: super::build_cache::Analysis,
    /// The builder, the run image and the buildpackages, leased while the build lives:
    /// `image rm` and `prune` leave them alone between its phases.
    _leases: Vec<locald_image::ImageLease>,
    work: WorkDir,
}

impl Prepared {
    /// Pulls the builder and its run image, resolves the buildpacks, copies the source
    /// into a fresh work directory with the build's environment, and restores the last
    /// build of the tag (analysis, restore: `===> RESTORING`).
    pub fn prepare(source: &Path, options: BuildImageOptions) -> Result<Prepared, PullStopped> {
        if !source.is_dir() {
            return Err(BuildError::NotADirectory(source.to_path_buf()).into());
        }
        let source = source
            .canonicalize()
            .map_err(|source_error| BuildError::Io {
                action: "read",
                path: source.to_path_buf(),
                source: source_error,
            })?;
        let builder_ref = match options.builder.clone() {
            Some(builder) => builder,
            None => locald_image::user_config::configured_default_builder()
                .map_err(BuildError::from)?
                .ok_or(BuildError::NoBuilder)?,
        };
        // Found first: a missing binary should not cost a pull.
        let lifecycle = cnb_binary("lifecycle")?;
        let launcher = cnb_binary("launcher")?;
        let builder = container::ensure_image(&builder_ref, PullPolicy::Missing)?;
        let owner = builder_owner(&builder)?;
        let run_image =
            container::ensure_image(&run_image_reference(&builder)?, PullPolicy::Missing)?;
        let buildpacks = super::buildpacks::resolve(&options.buildpacks, &builder)?;
        let store = container::store()?;
        let user = format!("build of {} (pid {})", source.display(), std::process::id());
        let mut leases = buildpacks.lease(&user)?;
        for image in [&builder, &run_image] {
            leases.push(store.lease(image, &user)?);
        }

        let work = WorkDir::new()?;
        let (workspace, layers, platform) = (
            work.dir("workspace"),
            work.dir("layers"),
            work.dir("platform"),
        );
        copy_source(&source, &workspace)?;
        write_platform_env(&platform, &options.env)?;
        let tag = options.tag.unwrap_or_else(|| default_tag(&source));
        let analysis = super::build_cache::analyze_and_restore(&store, &tag, &layers, &run_image)?;
        if !buildpacks.group.is_empty() {
            // The lifecycle reads `<layers>/order.toml` before the builder's.
            let group = vec![OrderGroup {
                group: buildpacks.group.clone(),
            }];
            write_order(&layers.join("order.toml"), &group).map_err(BuildError::from)?;
        }
        // As root the container's ids are the host's: the buildpacks' user must own what
        // it writes into. Rootless, the runtime maps the caller to the user the container
        // runs as (the builder's CNB_USER_ID), so the caller's own files already are that
        // user's.
        if nix::unistd::geteuid().is_root() {
            for dir in [&workspace, &layers, &platform] {
                chown_tree(dir, owner)?;
            }
        }
        Ok(Prepared {
            source,
            tag,
            builder,
            run_image,
            owner,
            buildpacks,
            lifecycle,
            launcher,
            verbose: options.verbose,
            store,
            analysis,
            _leases: leases,
            work,
        })
    }

    /// The name the image will be stored under.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The builder image's reference.
    pub fn builder(&self) -> &str {
        &self.builder.reference
    }

    /// The run image's reference.
    pub fn run_image(&self) -> &str {
        &self.run_image.reference
    }

    /// The source directory (absolute).
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// Runs `lifecycle PHASE` in a container of the builder as its user, with the work
    /// directory's `/workspace`, `/layers` and `/platform` (read-only) and the chosen
    /// buildpacks mounted; a non-zero exit is the Platform API's code in words.
    fn run_phase(&self, phase: &str) -> Result<(), PullStopped> {
        let mount = |host: &Path, container: &str, read_only: bool| {
            let spec = format!(
                "{}:{container}{}",
                host.display(),
                if read_only { ":ro" } else { "" }
            );
            container::parse_volume(&spec).map_err(|e| BuildError::Io {
                action: "mount",
                path: host.to_path_buf(),
                source: std::io::Error::other(e.to_string()),
            })
        };
        let mut env = BTreeMap::new();
        if self.verbose {
            env.insert("CNB_LOG_LEVEL".to_string(), "debug".to_string());
        }
        let run = RunContainerOptions {
            entrypoint: Some(Program::Exec(vec![
                LIFECYCLE_IN_CONTAINER.to_string(),
                phase.to_string(),
            ])),
            user: Some(format!("{}:{}", self.owner.uid, self.owner.gid)),
            volumes: vec![
                mount(&self.work.dir("workspace"), WORKSPACE, false)?,
                mount(&self.work.dir("layers"), LAYERS, false)?,
                mount(&self.work.dir("platform"), PLATFORM, true)?,
                mount(&self.lifecycle, LIFECYCLE_IN_CONTAINER, true)?,
            ]
            .into_iter()
            .chain(self.buildpacks.mounts.iter().cloned())
            .collect(),
            env,
            pull: container::Pull::Never,
            ..RunContainerOptions::default()
        };
        let code = container::run_container_options(&self.builder.reference, run)?;
        if code != 0 {
            return Err(BuildError::Lifecycle(code).into());
        }
        Ok(())
    }

    /// Detection (`===> DETECTING`): the group that passed and the resolved plan, as
    /// `lifecycle detect` left them in the layers directory.
    pub fn detect(&self) -> Result<(Group, Plan), PullStopped> {
        self.run_phase("detect")?;
        let layers = self.work.dir("layers");
        let limits = Limits::DEFAULT;
        let group = Group::read(&layers.join("group.toml"), &limits).map_err(BuildError::from)?;
        let plan = Plan::read(&layers.join("plan.toml"), &limits).map_err(BuildError::from)?;
        Ok((group, plan))
    }

    /// The build phase (`===> BUILDING`) over what detection left: what the buildpacks
    /// made, read back on the host.
    pub fn build(&self) -> Result<BuildMetadata, PullStopped> {
        self.run_phase("build")?;
        let layers = self.work.dir("layers");
        Ok(locald_cnb::build::read_built(&layers, &Limits::DEFAULT).map_err(BuildError::from)?)
    }

    /// The export (`===> EXPORTING`) of what [`Prepared::build`] made: the image written
    /// on the host, stored under the tag, and the cache committed with it.
    pub fn export(self, metadata: &BuildMetadata) -> Result<StoredImage, PullStopped> {
        println!("===> EXPORTING");
        let run_source = SourceImage {
            blobs: self.store.blobs_dir(),
            manifest_digest: self.run_image.manifest_digest.clone(),
            reference: self.run_image.reference.clone(),
        };
        let source_date_epoch = std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|v| v.trim().parse().ok());
        let (layers, workspace) = (self.work.dir("layers"), self.work.dir("workspace"));
        let input = ExportInput {
            layers: &layers,
            app: &workspace,
            metadata,
            run_image: &run_source,
            previous: self.analysis.previous.as_ref(),
            launcher: &self.launcher,
            owner: self.owner,
            source_date_epoch,
            process_type: None,
            project: None,
        };
        let layout = self.work.dir("layout");
        let exported =
            locald_cnb::export::export(&input, &layout, "latest").map_err(BuildError::from)?;
        self.analysis.report_layers(&exported);
        let staged = self.analysis.stage_cache(
            metadata,
            &exported,
            &layout.join("blobs/sha256"),
            self.owner,
        )?;
        let image = self.store.import_oci_layout(&layout, Some(&self.tag))?;
        // The cache goes with the image it was built with: kept only once that is stored.
        staged.commit()?;
        Ok(image)
    }
}

/// `build_image(source, options)`: every phase in turn (see the module's doc).
pub fn build_image(source: &Path, options: BuildImageOptions) -> Result<Map, PullStopped> {
    let build = Prepared::prepare(source, options)?;
    build.detect()?;
    let metadata = build.build()?;
    let image = build.export(&metadata)?;
    Ok(container::image_map(&image))
}

impl From<BuildError> for ContainerError {
    fn from(error: BuildError) -> Self {
        match error {
            BuildError::Container(error) => error,
            other => ContainerError::Build(Box::new(other)),
        }
    }
}

#[export_module]
pub mod build_api {
    use rhai::Map;

    /// Builds the app in the directory `source` with Cloud Native Buildpacks into the
    /// image store: `#{ builder, buildpacks, env, tag, verbose }` (the builder image,
    /// required; buildpacks that replace the builder's order with one group of them, in
    /// order: each a buildpackage image, a `.cnb` file, a buildpack directory, or
    /// `ID`/`ID@VERSION` of the builder's; the build's environment as `/platform/env`
    /// files; the name to store the image under, default `locald-build/<dir name>-<digest>:latest`;
    /// every buildpack's detect output).
    /// Buildpack output streams as it comes; Ctrl-C stops the build. Returns
    /// `#{ reference, digest }`. The phases in one call: `prepare_build`, then
    /// `b.detect()`, `b.build()` and `b.export_image()`.
    #[rhai_fn(return_raw)]
    pub fn build_image(
        ctx: NativeCallContext,
        source: &str,
        options: Map,
    ) -> Result<Map, Box<EvalAltResult>> {
        let options = super::options::read("build_image", options)
            .map_err(|e| crate::script::api::fail(&ctx, e))?;
        super::build_image(std::path::Path::new(source), options).map_err(|e| e.into_eval(&ctx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_tag_is_the_directory_name_as_a_reference() {
        let tag = default_tag(Path::new("/src/My App!"));
        let digest = tag
            .strip_prefix("locald-build/my-app-")
            .and_then(|rest| rest.strip_suffix(":latest"))
            .unwrap_or_else(|| panic!("{tag}"));
        assert!(
            digest.len() == 12 && digest.bytes().all(|b| b.is_ascii_hexdigit()),
            "{tag}"
        );
        assert!(default_tag(Path::new("/")).starts_with("locald-build/app-"));
        assert_eq!(
            default_tag(Path::new("/src/site")),
            default_tag(Path::new("/src/site"))
        );
    }

    #[test]
    fn directories_of_the_same_name_build_under_different_tags() {
        // Each tag has its own build cache and previous image, which a build restores
        // from: a checkout of someone else's `site` must not share the user's.
        assert_ne!(
            default_tag(Path::new("/home/me/site")),
            default_tag(Path::new("/tmp/site"))
        );
    }

    #[test]
    fn a_builder_names_its_run_image_and_user() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("cnb")).unwrap();
        let mut builder = StoredImage {
            reference: "localhost/builder:1".into(),
            manifest_digest: "sha256:00".into(),
            config: locald_image::ImageConfig::default(),
            rootfs: dir.path().to_path_buf(),
        };
        let error = run_image_reference(&builder).unwrap_err().to_string();
        assert!(error.contains("not a CNB builder"), "{error}");
        std::fs::write(
            dir.path().join("cnb/stack.toml"),
            "[run-image]\nimage = \"localhost/stack-run:1\"\n",
        )
        .unwrap();
        assert_eq!(
            run_image_reference(&builder).unwrap(),
            "localhost/stack-run:1"
        );
        std::fs::write(
            dir.path().join("cnb/run.toml"),
            "[[images]]\nimage = \"localhost/run:1\"\n[[images]]\nimage = \"localhost/run:2\"\n",
        )
        .unwrap();
        assert_eq!(run_image_reference(&builder).unwrap(), "localhost/run:1");

        let error = builder_owner(&builder).unwrap_err().to_string();
        assert!(error.contains("no valid CNB_USER_ID"), "{error}");
        builder.config.env = vec!["CNB_USER_ID=1001".into(), "CNB_GROUP_ID=1002".into()];
        let owner = builder_owner(&builder).unwrap();
        assert_eq!((owner.uid, owner.gid), (1001, 1002));
    }

    #[test]
    fn a_builder_run_toml_linked_to_a_host_file_is_not_read() {
        let host = tempfile::tempdir().unwrap();
        let secret = host.path().join("secret.toml");
        std::fs::write(&secret, "[[images]]\nimage = \"host-secret\"\n").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("cnb")).unwrap();
        std::os::unix::fs::symlink(&secret, dir.path().join("cnb/run.toml")).unwrap();
        let builder = StoredImage {
            reference: "localhost/builder:1".into(),
            manifest_digest: "sha256:00".into(),
            config: locald_image::ImageConfig::default(),
            rootfs: dir.path().to_path_buf(),
        };
        let result = run_image_reference(&builder);
        assert!(result.is_err(), "{result:?}");
    }

    #[test]
    fn the_source_is_copied_without_git_locald_and_ignored_files() {
        let from = tempfile::tempdir().unwrap();
        let to = tempfile::tempdir().unwrap();
        for dir in [".git", ".locald", "src/.git", "node_modules/x"] {
            std::fs::create_dir_all(from.path().join(dir)).unwrap();
            std::fs::write(from.path().join(dir).join("f"), "x").unwrap();
        }
        std::fs::write(from.path().join(".gitignore"), "node_modules/\n.env\n").unwrap();
        std::fs::write(from.path().join(".env"), "SECRET=1\n").unwrap();
        std::fs::write(from.path().join("src/app.txt"), "app\n").unwrap();
        std::fs::write(from.path().join("Procfile"), "web: serve\n").unwrap();
        std::os::unix::fs::symlink("Procfile", from.path().join("link")).unwrap();
        copy_source(from.path(), to.path()).unwrap();
        assert!(!to.path().join(".git").exists() && !to.path().join(".locald").exists());
        // Only the top's: a nested `.git` is the app's own file.
        assert!(to.path().join("src/.git/f").is_file());
        assert!(to.path().join("src/app.txt").is_file());
        // What git would not send, the build does not see (nor does the fingerprint).
        assert!(!to.path().join(".env").exists() && !to.path().join("node_modules").exists());
        assert!(to.path().join(".gitignore").is_file());
        assert_eq!(
            std::fs::read_to_string(to.path().join("Procfile")).unwrap(),
            "web: serve\n"
        );
        assert_eq!(
            std::fs::read_link(to.path().join("link")).unwrap(),
            Path::new("Procfile")
        );
    }

    #[test]
    fn the_work_directory_is_the_callers_alone() {
        use std::os::unix::fs::PermissionsExt as _;
        let work = WorkDir::new().unwrap();
        let mode = std::fs::metadata(work.root.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn build_env_names_are_file_names() {
        let dir = tempfile::tempdir().unwrap();
        let env = BTreeMap::from([("BP_X".to_string(), "1".to_string())]);
        write_platform_env(dir.path(), &env).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("env/BP_X")).unwrap(),
            "1"
        );
        for bad in ["../X", "A=B", ".."] {
            let env = BTreeMap::from([(bad.to_string(), "1".to_string())]);
            let error = write_platform_env(dir.path(), &env).unwrap_err();
            assert!(matches!(error, BuildError::EnvName(_)), "{bad}: {error}");
        }
    }

    #[test]
    fn the_binaries_are_looked_for_where_a_release_then_build_launcher_put_them() {
        let triple = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
        assert_eq!(
            beside_locald(Path::new("/usr/bin"), "launcher"),
            [
                PathBuf::from("/usr/lib/locald/launcher"),
                PathBuf::from(format!("/usr/{triple}/cnb/launcher")),
            ]
        );
        assert_eq!(
            beside_locald(Path::new("/src/target/debug"), "lifecycle")[1],
            PathBuf::from(format!("/src/target/{triple}/cnb/lifecycle"))
        );
    }

    #[test]
    fn a_missing_lifecycle_names_where_it_was_looked_for() {
        // Only this test sets the variable in this process's environment.
        std::env::set_var(CNB_BIN_DIR_ENV, "/nonexistent/cnb-bin");
        let error = cnb_binary("lifecycle").unwrap_err().to_string();
        std::env::remove_var(CNB_BIN_DIR_ENV);
        assert!(
            error.contains("/nonexistent/cnb-bin/lifecycle")
                && error.contains("scripts/build-launcher"),
            "{error}"
        );
    }
}
