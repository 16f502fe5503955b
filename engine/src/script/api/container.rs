//! Container primitives: the image store (pull, list, remove, prune, import)
//! and running a container in the foreground with the embedded runtime.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use locald_image::{ImageStore, PullOptions, PullPolicy, StoredImage};
use locald_runtime::{CapabilityError, ContainerSpec, SecurityOpt, VolumeMount};
use rhai::plugin::*;
use rhai::{Array, Map};
use serde::Deserialize;

use super::options::{self, OptionsError};
use crate::program::Program;

/// Why a container primitive failed.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error(transparent)]
    Options(#[from] OptionsError),
    #[error(transparent)]
    Image(#[from] locald_image::Error),
    #[error("cannot start the async runtime: {0}")]
    AsyncRuntime(std::io::Error),
    #[error("volume source {} does not exist", .0.display())]
    MissingVolumeSource(PathBuf),
    #[error(transparent)]
    Capability(#[from] CapabilityError),
    #[error("{} is a root filesystem tarball, which has no name: give the name to store it under with --name (e.g. --name myapp:dev)", .0.display())]
    ImportNeedsName(PathBuf),
    /// An OCI layout that names no image, or several: the CLI's flag named.
    #[error("{0} with --name (e.g. --name myapp:{tag})", tag = .1.as_deref().unwrap_or("dev"))]
    LayoutNeedsName(locald_image::Error, Option<String>),
    #[error("`rm: false` is not supported: a container is always removed when it ends")]
    KeepNotSupported,
    #[error(transparent)]
    Runtime(#[from] locald_runtime::Error),
    #[error(transparent)]
    Init(#[from] locald_runtime::InitError),
    /// A build primitive's failure (`build_image` runs its build container through
    /// `run_container`'s path, whose errors are these).
    #[error(transparent)]
    Build(Box<super::build::BuildError>),
}

/// A volume given as text that is not `HOST:CONTAINER[:ro|rw]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VolumeError {
    #[error("{0} (expected HOST:CONTAINER[:ro])")]
    Spec(#[from] locald_runtime::VolumeSpecError),
    #[error("cannot read the current directory: {0}")]
    CurrentDir(String),
}

/// The store shared by every project of this user.
pub fn store() -> Result<ImageStore, ContainerError> {
    Ok(ImageStore::open_default()?)
}

/// Why a primitive's pull gave no result.
#[derive(Debug)]
pub enum PullStopped {
    /// Ctrl-C or SIGTERM: the pull was dropped and cleaned up after itself.
    Interrupted,
    Failed(ContainerError),
}

impl<E: Into<ContainerError>> From<E> for PullStopped {
    fn from(error: E) -> Self {
        PullStopped::Failed(error.into())
    }
}

impl PullStopped {
    /// The script error: an interrupt ends the script (it cannot be caught,
    /// like Ctrl-C anywhere else); a failure is an ordinary error.
    pub(super) fn into_eval(self, ctx: &NativeCallContext) -> Box<EvalAltResult> {
        match self {
            PullStopped::Interrupted => Box::new(EvalAltResult::ErrorTerminated(
                crate::sandbox::INTERRUPTED.into(),
                ctx.call_position(),
            )),
            PullStopped::Failed(error) => crate::script::api::fail(ctx, error),
        }
    }
}

/// Runs `future` (a pull) to completion unless Ctrl-C/SIGTERM comes first:
/// then the future is dropped, which removes its temp blobs and stops its
/// unpack task, and dropping the runtime waits for that task to have removed
/// its staging tree. Nothing of the pull is left installed.
fn block_on<F: std::future::Future>(future: F) -> Result<F::Output, PullStopped> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ContainerError::AsyncRuntime)?;
    runtime.block_on(async {
        tokio::select! {
            biased;
            () = crate::sandbox::interrupt::requested() => Err(PullStopped::Interrupted),
            output = future => Ok(output),
        }
    })
}

pub fn pull_options() -> PullOptions {
    PullOptions {
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        ..PullOptions::default()
    }
}

/// The image, from the store or pulled according to `policy`.
pub fn ensure_image(reference: &str, policy: PullPolicy) -> Result<StoredImage, PullStopped> {
    let store = store()?;
    tracing::debug!(image = %reference, ?policy, "resolving the image");
    // A stored image needs no async runtime (nor anything of the registry client): look it up
    // directly, as every `container run` of a pulled image does.
    if policy != PullPolicy::Always {
        if let Some(image) = store.resolve(reference)? {
            return Ok(image);
        }
    }
    Ok(block_on(store.ensure(reference, policy, &pull_options()))??)
}

/// `HOST:CONTAINER[:ro|rw]`, HOST relative to the current directory.
pub fn parse_volume(spec: &str) -> Result<VolumeMount, VolumeError> {
    let cwd = std::env::current_dir().map_err(|e| VolumeError::CurrentDir(e.to_string()))?;
    Ok(VolumeMount::parse(spec, &cwd)?)
}

/// `pull`: when to fetch the image.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Pull {
    Always,
    #[default]
    Missing,
    Never,
}

impl From<Pull> for PullPolicy {
    fn from(pull: Pull) -> Self {
        match pull {
            Pull::Always => PullPolicy::Always,
            Pull::Missing => PullPolicy::Missing,
            Pull::Never => PullPolicy::Never,
        }
    }
}

/// The options of `run_container`, Docker's `run` flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunContainerOptions {
    /// Replaces the image's command; no words (`[]`) keeps it.
    #[serde(deserialize_with = "image_command")]
    pub command: Option<Program>,
    #[serde(deserialize_with = "some_program")]
    pub entrypoint: Option<Program>,
    #[serde(deserialize_with = "options::env_map")]
    pub env: BTreeMap<String, String>,
    #[serde(deserialize_with = "volumes")]
    pub volumes: Vec<VolumeMount>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub interactive: bool,
    pub tty: bool,
    pub pull: Pull,
    #[serde(deserialize_with = "options::one_or_many")]
    pub cap_add: Vec<String>,
    #[serde(deserialize_with = "options::one_or_many")]
    pub cap_drop: Vec<String>,
    #[serde(deserialize_with = "security_opts")]
    pub security_opt: Vec<SecurityOpt>,
    /// Containers run from a fresh overlay and are always removed; `rm:
    /// true` is accepted for Docker users' muscle memory, `rm: false` refused.
    pub rm: Option<bool>,
    /// Run an init (tini) as PID 1 in front of the command, as `docker run --init`.
    pub init: bool,
}

fn image_command<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Program>, D::Error> {
    let value = <Dynamic as Deserialize>::deserialize(deserializer)?;
    // No words: the image's own command, as `docker run IMAGE`.
    if value
        .clone()
        .try_cast::<Array>()
        .is_some_and(|a| a.is_empty())
    {
        return Ok(None);
    }
    super::process::program_from(&value)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn some_program<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Program>, D::Error> {
    super::process::program_option(deserializer).map(Some)
}

/// The items of an option given as one value or an array of them, each a
/// typed `T` as it is (what a service handle gives) or text that `parse`
/// reads (what a person writes).
fn typed_items<T: Clone + Send + Sync + 'static, E: std::fmt::Display>(
    value: Dynamic,
    what: &str,
    parse: impl Fn(&str) -> Result<T, E>,
) -> Result<Vec<T>, String> {
    let items = match value.clone().try_cast::<Array>() {
        Some(items) => items,
        None => vec![value],
    };
    items
        .into_iter()
        .map(|item| {
            if let Some(typed) = item.clone().try_cast::<T>() {
                return Ok(typed);
            }
            match item.clone().try_cast::<ImmutableString>() {
                Some(text) => parse(&text).map_err(|e| e.to_string()),
                None => Err(format!("expected {what}, not {}", item.type_name())),
            }
        })
        .collect()
}

/// `volumes`: `Volume` values (what `svc.volumes` gives) or
/// `"HOST:CONTAINER[:ro]"` strings.
fn volumes<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<VolumeMount>, D::Error> {
    let value = <Dynamic as Deserialize>::deserialize(deserializer)?;
    typed_items(
        value,
        "a Volume or a \"HOST:CONTAINER[:ro]\" string",
        parse_volume,
    )
    .map_err(serde::de::Error::custom)
}

/// `security_opt`: `SecurityOpt` values (what `svc.security_opt` gives) or
/// Docker's words; a seccomp profile path is taken from the current directory.
fn security_opts<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<SecurityOpt>, D::Error> {
    let value = <Dynamic as Deserialize>::deserialize(deserializer)?;
    let cwd = std::env::current_dir()
        .map_err(|e| serde::de::Error::custom(format!("cannot read the current directory: {e}")))?;
    typed_items(value, "a SecurityOpt or a security option string", |text| {
        locald_runtime::parse_security_opt(text, &cwd)
    })
    .map_err(serde::de::Error::custom)
}

impl RunContainerOptions {
    /// The container of `image` these options describe.
    pub fn container_spec(self, image: StoredImage) -> Result<ContainerSpec, ContainerError> {
        if self.rm == Some(false) {
            return Err(ContainerError::KeepNotSupported);
        }
        // Checked now: a missing source would otherwise fail deep in the
        // runtime, as an error about mounts.
        if let Some(missing) = self.volumes.iter().find(|v| !v.host.exists()) {
            return Err(ContainerError::MissingVolumeSource(missing.host.clone()));
        }
        let mut spec = ContainerSpec::new(container_id(), image);
        spec.command = self.command.map(|p| p.argv());
        spec.entrypoint = self.entrypoint.map(|p| p.argv());
        spec.env = self.env.into_iter().collect();
        spec.volumes = self.volumes;
        spec.workdir = self.workdir;
        spec.user = self.user;
        spec.hostname = self.hostname;
        spec.interactive = self.interactive;
        spec.tty = self.tty;
        if self.init {
            spec.init = Some(locald_runtime::init_binary()?);
        }
        for name in &self.cap_add {
            spec.security.add_cap(name)?;
        }
        for name in &self.cap_drop {
            spec.security.drop_cap(name)?;
        }
        for option in self.security_opt {
            spec.security.apply(option);
        }
        Ok(spec)
    }
}

/// The options of `import_image`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImportOptions {
    /// The reference to store it as (required for a rootfs tarball).
    pub name: Option<String>,
}

fn container_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("locald-{}-{nanos:08x}", std::process::id())
}

pub(super) fn image_map(image: &StoredImage) -> Map {
    let mut map = Map::new();
    map.insert("reference".into(), image.reference.clone().into());
    map.insert("digest".into(), image.manifest_digest.clone().into());
    map
}

/// The image a layout import gave; a layout that names no image, or several, asks for
/// the name.
fn layout_imported(
    imported: Result<StoredImage, locald_image::Error>,
) -> Result<StoredImage, ContainerError> {
    use locald_image::ImportError;
    match imported {
        Ok(image) => Ok(image),
        Err(locald_image::Error::Import(ImportError::NoName { path, tag })) => {
            let error = ImportError::NoName {
                path,
                tag: tag.clone(),
            };
            Err(ContainerError::LayoutNeedsName(error.into(), tag))
        }
        Err(error @ locald_image::Error::Import(ImportError::Ambiguous { .. })) => {
            Err(ContainerError::LayoutNeedsName(error, None))
        }
        Err(error) => Err(error.into()),
    }
}

/// `import_image(path, options)`.
fn import_image(path: &Path, options: Map) -> Result<Map, ContainerError> {
    let ImportOptions { name } = options::read("import_image", options)?;
    let store = store()?;
    let image = if path.is_dir() {
        layout_imported(store.import_oci_layout(path, name.as_deref()))?
    } else if locald_image::is_oci_archive(path) {
        layout_imported(store.import_oci_archive(path, name.as_deref()))?
    } else {
        let name = name.ok_or_else(|| ContainerError::ImportNeedsName(path.to_path_buf()))?;
        store.import_rootfs_tar(path, &name)?
    };
    Ok(image_map(&image))
}

/// `size_text(bytes)`: tenths rounded down, so a size never reads larger
/// than it is.
pub(super) fn size_text(bytes: i64) -> String {
    let tenths = |unit: i64| {
        let tenths = bytes.saturating_mul(10) / unit;
        format!("{}.{}", tenths / 10, tenths % 10)
    };
    if bytes >= 1 << 30 {
        format!("{} GB", tenths(1 << 30))
    } else if bytes >= 1 << 20 {
        format!("{} MB", tenths(1 << 20))
    } else if bytes >= 1 << 10 {
        format!("{} kB", tenths(1 << 10))
    } else {
        format!("{bytes} B")
    }
}

/// `run_container(image, options)`.
fn run_container(reference: &str, options: Map) -> Result<i64, PullStopped> {
    run_container_options(reference, options::read("run_container", options)?)
}

/// Runs a container of `reference` in the foreground (pulled when missing,
/// by `options.pull`) and returns its exit code.
pub fn run_container_options(
    reference: &str,
    options: RunContainerOptions,
) -> Result<i64, PullStopped> {
    let image = ensure_image(reference, options.pull.into())?;
    let reference = image.reference.clone();
    let spec = options.container_spec(image)?;
    tracing::debug!(container = %spec.id, image = %reference, "running the container");
    // Held until the container has exited: `image rm`/`prune` leave its
    // rootfs alone meanwhile (see locald_image's leases).
    let lease = store()?.lease(
        &spec.image,
        &format!(
            "container {} (`locald container run {reference}`, pid {})",
            spec.id,
            std::process::id()
        ),
    )?;
    // A Ctrl-C between the pull and here must not start the container:
    // once it runs, the terminal's signals are the shim's to forward.
    if crate::sandbox::interrupt::take() {
        return Err(PullStopped::Interrupted);
    }
    // The shim inherits the lease: killed, this process would drop it
    // while the container still runs its stop timeout.
    let code = locald_runtime::run_foreground_holding(&spec, &[std::os::fd::AsFd::as_fd(&lease)])?;
    Ok(i64::from(code))
}

#[export_module]
pub mod container_api {
    use rhai::{Array, Map};

    use crate::script::api::fail;

    /// Pulls an image into the store (blobs already there are not fetched
    /// again); returns `#{ reference, digest, downloaded, reused }`.
    #[rhai_fn(return_raw)]
    pub fn pull_image(ctx: NativeCallContext, reference: &str) -> Result<Map, Box<EvalAltResult>> {
        let store = super::store().map_err(|e| fail(&ctx, e))?;
        let (image, report) = super::block_on(store.pull(reference, &super::pull_options()))
            .map_err(|e| e.into_eval(&ctx))?
            .map_err(|e| fail(&ctx, e))?;
        let mut map = super::image_map(&image);
        map.insert("downloaded".into(), (report.downloaded_blobs as i64).into());
        map.insert("reused".into(), (report.reused_blobs as i64).into());
        Ok(map)
    }

    /// `bytes` for people: `512 B`, `1.5 kB`, `12.3 MB` (powers of 1024,
    /// one decimal), as `image ls` and `image prune` show sizes.
    pub fn size_text(bytes: i64) -> String {
        super::size_text(bytes)
    }

    /// The stored images: array of `#{ reference, digest, size, created }`.
    #[rhai_fn(return_raw)]
    pub fn images(ctx: NativeCallContext) -> Result<Array, Box<EvalAltResult>> {
        let store = super::store().map_err(|e| fail(&ctx, e))?;
        let list = store.list().map_err(|e| fail(&ctx, e))?;
        list.iter()
            .map(|i| rhai::serde::to_dynamic(i).map_err(|e| fail(&ctx, e)))
            .collect()
    }

    /// Removes an image's name from the store (`prune_images` frees the space).
    #[rhai_fn(return_raw)]
    pub fn remove_image(ctx: NativeCallContext, reference: &str) -> Result<(), Box<EvalAltResult>> {
        let store = super::store().map_err(|e| fail(&ctx, e))?;
        store.remove(reference).map_err(|e| fail(&ctx, e))
    }

    /// Deletes blobs and unpacked images no name refers to, and every build cache; returns
    /// a report.
    #[rhai_fn(return_raw)]
    pub fn prune_images(ctx: NativeCallContext) -> Result<Dynamic, Box<EvalAltResult>> {
        let store = super::store().map_err(|e| fail(&ctx, e))?;
        let report = store.prune().map_err(|e| fail(&ctx, e))?;
        rhai::serde::to_dynamic(&report).map_err(|e| fail(&ctx, e))
    }

    /// Imports an OCI layout directory under the name its layout gives.
    #[rhai_fn(return_raw, name = "import_image")]
    pub fn import_image(ctx: NativeCallContext, path: &str) -> Result<Map, Box<EvalAltResult>> {
        import_image_with(ctx, path, Map::new())
    }

    /// Imports an OCI layout directory, an OCI archive (a tar of a layout, such
    /// as a `.cnb` buildpackage), or a rootfs tarball; options `#{ name }`
    /// (required for a rootfs tarball).
    #[rhai_fn(return_raw, name = "import_image")]
    pub fn import_image_with(
        ctx: NativeCallContext,
        path: &str,
        options: Map,
    ) -> Result<Map, Box<EvalAltResult>> {
        super::import_image(std::path::Path::new(path), options).map_err(|e| fail(&ctx, e))
    }

    /// Runs a container of `image` with its own command in the foreground
    /// and returns its exit code.
    #[rhai_fn(return_raw, name = "run_container")]
    pub fn run_container(ctx: NativeCallContext, image: &str) -> Result<i64, Box<EvalAltResult>> {
        run_container_with(ctx, image, Map::new())
    }

    /// Runs a container in the foreground and returns its exit code. Options:
    /// `command` (array, shell line or `Program`), `entrypoint`, `env` (map),
    /// `volumes` (array of `Volume`s or `HOST:CONTAINER[:ro]`), `workdir`,
    /// `user`, `hostname`, `interactive`, `tty`, `pull` (`"always"`,
    /// `"missing"` (default), `"never"`), `cap_add` / `cap_drop` (capability
    /// names or `"ALL"`), `security_opt` (`"seccomp=unconfined"`,
    /// `"seccomp=FILE"`, `"no-new-privileges=false"`), `rm`, `init` (an
    /// init as PID 1, as `docker run --init`).
    #[rhai_fn(return_raw, name = "run_container")]
    pub fn run_container_with(
        ctx: NativeCallContext,
        image: &str,
        options: Map,
    ) -> Result<i64, Box<EvalAltResult>> {
        super::run_container(image, options).map_err(|e| e.into_eval(&ctx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use locald_image::ImageConfig;
    use locald_runtime::SeccompChoice;

    #[test]
    fn sizes_read_as_people_read_them_never_larger() {
        assert_eq!(size_text(0), "0 B");
        assert_eq!(size_text(1023), "1023 B");
        assert_eq!(size_text(1536), "1.5 kB");
        assert_eq!(size_text(2 * 1024 * 1024 - 1), "1.9 MB");
        assert_eq!(size_text(5 << 30), "5.0 GB");
    }

    fn image() -> StoredImage {
        StoredImage {
            reference: "example.test/app:1".into(),
            manifest_digest: "sha256:00".into(),
            config: ImageConfig {
                entrypoint: vec![],
                cmd: vec!["sh".into()],
                env: vec![],
                working_dir: None,
                user: None,
                exposed_ports: vec![],
            },
            rootfs: PathBuf::from("/nonexistent/rootfs"),
        }
    }

    fn options(source: &str) -> Result<RunContainerOptions, OptionsError> {
        options::read("run_container", rhai::Engine::new().eval(source).unwrap())
    }

    fn spec(source: &str) -> Result<ContainerSpec, String> {
        options(source)
            .map_err(|e| e.to_string())?
            .container_spec(image())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn confinement_options_reach_the_container() {
        let spec_of = |source| spec(source).unwrap();
        assert_eq!(spec_of("#{}").security, locald_runtime::Security::default());

        let spec = spec_of(
            r#"#{ cap_add: ["net_raw"], cap_drop: "ALL",
                  security_opt: ["seccomp=unconfined", "no-new-privileges=false"] }"#,
        );
        assert_eq!(spec.security.cap_add, ["CAP_NET_RAW"]);
        assert_eq!(spec.security.cap_drop, ["ALL"]);
        assert_eq!(spec.security.seccomp, SeccompChoice::Unconfined);
        assert!(!spec.security.no_new_privileges);

        // A profile path is taken from the current directory.
        let spec = spec_of(r#"#{ security_opt: "seccomp=p.json" }"#);
        assert_eq!(
            spec.security.seccomp,
            SeccompChoice::Profile(std::env::current_dir().unwrap().join("p.json"))
        );
    }

    #[test]
    fn bad_confinement_options_are_named() {
        let error = spec(r#"#{ cap_add: ["FLY"] }"#).unwrap_err();
        assert!(error.contains("unknown capability `FLY`"), "{error}");
        let error = spec(r#"#{ security_opt: ["label=x"] }"#).unwrap_err();
        assert!(
            error.starts_with("run_container: option `security_opt`: ")
                && error.contains("unsupported security option `label=x`"),
            "{error}"
        );
        let error = spec("#{ cap_drop: 3 }").unwrap_err();
        assert_eq!(
            error,
            "run_container: option `cap_drop`: a string or an array of strings"
        );
    }

    #[test]
    fn every_option_reaches_the_container() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().display();
        let spec = spec(&format!(
            r#"#{{ command: "echo $X", entrypoint: ["/init"], env: #{{ X: 1 }},
                  volumes: ["{host}:/data:ro"], workdir: "/w", user: "1000",
                  hostname: "web", interactive: true, tty: false, pull: "never", rm: true,
                  init: true }}"#
        ))
        .unwrap();
        assert_eq!(spec.command.unwrap(), ["sh", "-c", "echo $X"]);
        assert_eq!(spec.entrypoint.unwrap(), ["/init"]);
        assert_eq!(spec.env, [("X".to_string(), "1".to_string())]);
        assert_eq!(
            spec.volumes,
            [VolumeMount {
                host: dir.path().to_path_buf(),
                container: "/data".into(),
                read_only: true,
            }]
        );
        assert_eq!(spec.workdir.as_deref(), Some("/w"));
        assert_eq!(spec.user.as_deref(), Some("1000"));
        assert_eq!(spec.hostname.as_deref(), Some("web"));
        assert!(spec.interactive && !spec.tty);
        assert_eq!(
            spec.init.as_deref(),
            Some(std::path::Path::new(locald_runtime::INIT_BINARY))
        );

        // No words keep the image's command; `()` is not given.
        let spec = self::spec("#{ command: [], workdir: (), user: () }").unwrap();
        assert_eq!(spec.command, None);
        assert_eq!(spec.workdir, None);
    }

    #[test]
    fn bad_options_are_named() {
        let error = spec(r#"#{ comand: "ls" }"#).unwrap_err();
        assert_eq!(
            error,
            "run_container: unknown option `comand` (known: command, entrypoint, env, volumes, \
             workdir, user, hostname, interactive, tty, pull, cap_add, cap_drop, security_opt, rm, init)"
        );
        let error = spec(r#"#{ tty: "yes" }"#).unwrap_err();
        assert_eq!(
            error,
            "run_container: option `tty`: expected true or false, not a string"
        );
        let error = spec(r#"#{ pull: "sometimes" }"#).unwrap_err();
        assert_eq!(
            error,
            "run_container: option `pull`: unknown variant `sometimes`, expected one of \
             `always`, `missing`, `never`"
        );
        let error = spec(r#"#{ volumes: ["/tmp"] }"#).unwrap_err();
        assert_eq!(
            error,
            "run_container: option `volumes`: \"/tmp\" is not a volume (expected HOST:CONTAINER[:ro])"
        );
        let error = spec("#{ volumes: [3] }").unwrap_err();
        assert_eq!(
            error,
            "run_container: option `volumes`: expected a Volume or a \"HOST:CONTAINER[:ro]\" \
             string, not i64"
        );
        let error = spec(r#"#{ volumes: ["/nonexistent/x:/x"] }"#).unwrap_err();
        assert_eq!(error, "volume source /nonexistent/x does not exist");
        let error = spec("#{ command: 3 }").unwrap_err();
        assert_eq!(
            error,
            "run_container: option `command`: a command is a string, an array of strings or \
             a Program, not i64"
        );
        let error = spec("#{ rm: false }").unwrap_err();
        assert!(error.contains("always removed"), "{error}");
    }
}
