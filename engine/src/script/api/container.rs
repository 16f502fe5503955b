//! Container primitives: the image store (pull, list, remove, prune, import)
//! and running a container in the foreground with the embedded runtime.

use std::path::PathBuf;

use locald_image::{ImageStore, PullOptions, PullPolicy, StoredImage};
use locald_runtime::{ContainerSpec, VolumeMount};
use rhai::plugin::*;
use rhai::{Array, Map};

/// The store shared by every project of this user.
pub fn store() -> Result<ImageStore, String> {
    ImageStore::open_default().map_err(|e| e.to_string())
}

/// Why a primitive's pull gave no result.
#[derive(Debug)]
pub enum PullStopped {
    /// Ctrl-C or SIGTERM: the pull was dropped and cleaned up after itself.
    Interrupted,
    Failed(String),
}

impl PullStopped {
    /// The script error: an interrupt ends the script (it cannot be caught,
    /// like Ctrl-C anywhere else); a failure is an ordinary error.
    fn into_eval(self, ctx: &NativeCallContext) -> Box<EvalAltResult> {
        match self {
            PullStopped::Interrupted => Box::new(EvalAltResult::ErrorTerminated(
                crate::sandbox::INTERRUPTED.into(),
                ctx.call_position(),
            )),
            PullStopped::Failed(message) => crate::script::api::fail(ctx, message),
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
        .map_err(|e| PullStopped::Failed(format!("cannot start the async runtime: {e}")))?;
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

pub fn policy(value: &str) -> Result<PullPolicy, String> {
    match value {
        "always" => Ok(PullPolicy::Always),
        "missing" => Ok(PullPolicy::Missing),
        "never" => Ok(PullPolicy::Never),
        other => Err(format!(
            "unknown pull policy `{other}` (known: always, missing, never)"
        )),
    }
}

/// The image, from the store or pulled according to `policy`.
pub fn ensure_image(reference: &str, policy: PullPolicy) -> Result<StoredImage, PullStopped> {
    let store = store().map_err(PullStopped::Failed)?;
    // A stored image needs no async runtime (nor anything of the registry client): look it up
    // directly, as every `container run` of a pulled image does.
    if policy != PullPolicy::Always {
        if let Some(image) = store
            .resolve(reference)
            .map_err(|e| PullStopped::Failed(e.to_string()))?
        {
            return Ok(image);
        }
    }
    block_on(store.ensure(reference, policy, &pull_options()))?
        .map_err(|e| PullStopped::Failed(e.to_string()))
}

/// The argv of option `what`: a shell line, an array of words or a `Program`.
fn argv(value: &Dynamic, what: &str) -> Result<Vec<String>, String> {
    super::process::program_from(value)
        .map(|program| program.argv())
        .map_err(|e| format!("`{what}`: {e}"))
}

/// `HOST:CONTAINER[:ro|rw]`, HOST relative to the current directory.
pub fn volume(spec: &str) -> Result<VolumeMount, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (host, container, read_only) = match parts.as_slice() {
        [host, container] => (*host, *container, false),
        [host, container, "ro"] => (*host, *container, true),
        [host, container, "rw"] => (*host, *container, false),
        _ => {
            return Err(format!(
                "invalid volume `{spec}` (expected HOST:CONTAINER[:ro])"
            ))
        }
    };
    if !container.starts_with('/') {
        return Err(format!(
            "invalid volume `{spec}`: the container path must be absolute"
        ));
    }
    let host = std::path::absolute(PathBuf::from(host))
        .map_err(|e| format!("invalid volume `{spec}`: {e}"))?;
    if !host.exists() {
        return Err(format!("volume source {} does not exist", host.display()));
    }
    Ok(VolumeMount {
        host,
        container: container.to_string(),
        read_only,
    })
}

/// The strings of option `what`: an array of strings, or one string.
fn string_list(value: &Dynamic, what: &str) -> Result<Vec<String>, String> {
    if let Some(one) = value.clone().try_cast::<ImmutableString>() {
        return Ok(vec![one.to_string()]);
    }
    value
        .clone()
        .try_cast::<Array>()
        .map(|items| items.iter().map(|item| item.to_string()).collect())
        .ok_or_else(|| format!("`{what}` must be an array of strings"))
}

/// Applies `security_opt` items; a seccomp profile path is taken from the current directory.
fn security_opts(spec: &mut ContainerSpec, value: &Dynamic) -> Result<(), String> {
    let cwd =
        std::env::current_dir().map_err(|e| format!("cannot read the current directory: {e}"))?;
    for item in string_list(value, "security_opt")? {
        let option = locald_runtime::parse_security_opt(&item, &cwd).map_err(|e| e.to_string())?;
        spec.security.apply(option);
    }
    Ok(())
}

/// Builds the container from `image` and the options of `container_run`.
pub fn container_spec(image: StoredImage, options: &Map) -> Result<ContainerSpec, String> {
    let mut spec = ContainerSpec::new(container_id(), image);
    for (key, value) in options {
        if value.is_unit() {
            continue;
        }
        match key.as_str() {
            "command" => {
                // No words: the image's own command, as `docker run IMAGE`.
                let empty = value
                    .clone()
                    .try_cast::<Array>()
                    .is_some_and(|a| a.is_empty());
                if !empty {
                    spec.command = Some(argv(value, "command")?);
                }
            }
            "entrypoint" => spec.entrypoint = Some(argv(value, "entrypoint")?),
            "env" => {
                let env = value
                    .clone()
                    .try_cast::<Map>()
                    .ok_or("`env` must be a map of strings")?;
                spec.env = env
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
            }
            "volumes" => {
                let items = value
                    .clone()
                    .try_cast::<Array>()
                    .ok_or("`volumes` must be an array of HOST:CONTAINER[:ro]")?;
                spec.volumes = items
                    .iter()
                    .map(|v| volume(&v.to_string()))
                    .collect::<Result<_, _>>()?;
            }
            "cap_add" => {
                for name in string_list(value, "cap_add")? {
                    spec.security.add_cap(&name).map_err(|e| e.to_string())?;
                }
            }
            "cap_drop" => {
                for name in string_list(value, "cap_drop")? {
                    spec.security.drop_cap(&name).map_err(|e| e.to_string())?;
                }
            }
            "security_opt" => security_opts(&mut spec, value)?,
            "workdir" => spec.workdir = Some(value.to_string()),
            "user" => spec.user = Some(value.to_string()),
            "hostname" => spec.hostname = Some(value.to_string()),
            "tty" => spec.tty = value.as_bool().map_err(|_| "`tty` must be true or false")?,
            "interactive" => {
                spec.interactive = value
                    .as_bool()
                    .map_err(|_| "`interactive` must be true or false")?
            }
            // Containers run from a fresh overlay and are always removed;
            // `rm` is accepted for Docker users' muscle memory.
            "rm" | "pull" => {}
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    Ok(spec)
}

fn container_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("locald-{}-{nanos:08x}", std::process::id())
}

fn image_map(image: &StoredImage) -> Map {
    let mut map = Map::new();
    map.insert("reference".into(), image.reference.clone().into());
    map.insert("digest".into(), image.manifest_digest.clone().into());
    map
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

    /// Deletes blobs and unpacked images no name refers to; returns a report.
    #[rhai_fn(return_raw)]
    pub fn prune_images(ctx: NativeCallContext) -> Result<Dynamic, Box<EvalAltResult>> {
        let store = super::store().map_err(|e| fail(&ctx, e))?;
        let report = store.prune().map_err(|e| fail(&ctx, e))?;
        rhai::serde::to_dynamic(&report).map_err(|e| fail(&ctx, e))
    }

    /// Imports an OCI layout directory, or a rootfs tarball, as `name`.
    #[rhai_fn(return_raw)]
    pub fn import_image(
        ctx: NativeCallContext,
        path: &str,
        name: Dynamic,
    ) -> Result<Map, Box<EvalAltResult>> {
        let store = super::store().map_err(|e| fail(&ctx, e))?;
        let path = std::path::Path::new(path);
        let name = if name.is_unit() {
            None
        } else {
            Some(name.to_string())
        };
        let image = if path.is_dir() {
            store.import_oci_layout(path, name.as_deref())
        } else {
            let name = name.ok_or_else(|| fail(&ctx, "importing a rootfs tarball needs a name"))?;
            store.import_rootfs_tar(path, &name)
        }
        .map_err(|e| fail(&ctx, e))?;
        Ok(super::image_map(&image))
    }

    /// Runs a container in the foreground and returns its exit code. Options:
    /// `command` (array or shell line), `entrypoint`, `env` (map), `volumes`
    /// (array of `HOST:CONTAINER[:ro]`), `workdir`, `user`, `interactive`,
    /// `tty`, `pull` (`"always"`, `"missing"` (default), `"never"`),
    /// `cap_add` / `cap_drop` (arrays of capability names or `"ALL"`),
    /// `security_opt` (array of `"seccomp=unconfined"`, `"seccomp=FILE"`,
    /// `"no-new-privileges=false"`).
    #[rhai_fn(return_raw)]
    pub fn container_run(
        ctx: NativeCallContext,
        image: &str,
        options: Map,
    ) -> Result<i64, Box<EvalAltResult>> {
        let policy = match options.get("pull") {
            Some(p) if !p.is_unit() => super::policy(&p.to_string()).map_err(|e| fail(&ctx, e))?,
            _ => locald_image::PullPolicy::Missing,
        };
        let image = super::ensure_image(image, policy).map_err(|e| e.into_eval(&ctx))?;
        let reference = image.reference.clone();
        let spec = super::container_spec(image, &options).map_err(|e| fail(&ctx, e))?;
        // Held until the container has exited: `image rm`/`prune` leave its
        // rootfs alone meanwhile (see locald_image's leases).
        let lease = super::store()
            .and_then(|store| {
                store
                    .lease(
                        &spec.image,
                        &format!(
                            "container {} (`locald container run {reference}`, pid {})",
                            spec.id,
                            std::process::id()
                        ),
                    )
                    .map_err(|e| e.to_string())
            })
            .map_err(|e| fail(&ctx, e))?;
        // A Ctrl-C between the pull and here must not start the container:
        // once it runs, the terminal's signals are the shim's to forward.
        if crate::sandbox::interrupt::take() {
            return Err(PullStopped::Interrupted.into_eval(&ctx));
        }
        // The shim inherits the lease: killed, this process would drop it
        // while the container still runs its stop timeout.
        locald_runtime::run_foreground_holding(&spec, &[std::os::fd::AsFd::as_fd(&lease)])
            .map(i64::from)
            .map_err(|e| fail(&ctx, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use locald_image::ImageConfig;
    use locald_runtime::SeccompChoice;

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

    fn options(source: &str) -> Map {
        rhai::Engine::new().eval(source).unwrap()
    }

    #[test]
    fn confinement_options_reach_the_container() {
        let spec = container_spec(image(), &options("#{}")).unwrap();
        assert_eq!(spec.security, locald_runtime::Security::default());

        let spec = container_spec(
            image(),
            &options(
                r#"#{ cap_add: ["net_raw"], cap_drop: "ALL",
                      security_opt: ["seccomp=unconfined", "no-new-privileges=false"] }"#,
            ),
        )
        .unwrap();
        assert_eq!(spec.security.cap_add, ["CAP_NET_RAW"]);
        assert_eq!(spec.security.cap_drop, ["ALL"]);
        assert_eq!(spec.security.seccomp, SeccompChoice::Unconfined);
        assert!(!spec.security.no_new_privileges);

        // A profile path is taken from the current directory.
        let spec = container_spec(
            image(),
            &options(r#"#{ security_opt: ["seccomp=p.json"] }"#),
        )
        .unwrap();
        assert_eq!(
            spec.security.seccomp,
            SeccompChoice::Profile(std::env::current_dir().unwrap().join("p.json"))
        );
    }

    #[test]
    fn bad_confinement_options_are_named() {
        let error = container_spec(image(), &options(r#"#{ cap_add: ["FLY"] }"#)).unwrap_err();
        assert!(error.contains("unknown capability `FLY`"), "{error}");
        let error =
            container_spec(image(), &options(r#"#{ security_opt: ["label=x"] }"#)).unwrap_err();
        assert!(
            error.contains("unsupported security option `label=x`"),
            "{error}"
        );
        let error = container_spec(image(), &options("#{ cap_drop: 3 }")).unwrap_err();
        assert_eq!(error, "`cap_drop` must be an array of strings");
    }
}
