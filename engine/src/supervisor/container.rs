//! Container services: the image (from the store, pulled when missing) and a
//! fresh OCI bundle per start, run by `locald-shim` under the same
//! per-service init as host services (see [`super::init`]), so stop
//! signals, logs, health and the no-survivors guarantee are the same. The bundle is removed when
//! the run ends.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd};
use std::time::{SystemTime, UNIX_EPOCH};

use locald_image::{ImageLease, ImageStore, PullOptions, PullPolicy};
use locald_runtime::{Bundle, ContainerSpec};

use super::launch::LaunchSpec;
use crate::model::{Project, Service};
use crate::program::Program;
use crate::project::env::container_env;

/// Why a container service's image could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum ImagePrepError {
    #[error(transparent)]
    Store(#[from] locald_image::Error),
    #[error("cannot start the pull's runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("the pull was abandoned")]
    Abandoned,
    #[error("the pull's thread failed: {0}")]
    Thread(#[from] tokio::task::JoinError),
}

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("image {reference}: {source}")]
    Image {
        reference: String,
        #[source]
        source: ImagePrepError,
    },
    #[error(transparent)]
    Env(#[from] crate::project::env::EnvError),
    #[error("cannot prepare the container: {0}")]
    Runtime(#[from] locald_runtime::Error),
    #[error(transparent)]
    Init(#[from] locald_runtime::InitError),
}

/// A container ready to launch; keep it until the run ends, then
/// [`PreparedContainer::finish`] it.
pub struct PreparedContainer {
    pub launch: LaunchSpec,
    bundle: Bundle,
    /// Keeps `image rm`/`prune` off the image while the container may run
    /// (released on drop, by the kernel if the supervisor dies).
    lease: ImageLease,
}

impl PreparedContainer {
    /// Remove the bundle once the shim has exited, then release the image.
    pub fn finish(self) {
        let id = self.bundle.id().to_string();
        if let Err(error) = self.bundle.remove() {
            tracing::warn!(container = %id, %error, "cannot remove the container bundle");
        }
        drop(self.lease);
    }
}

/// A container id unique per start: `project-service-xxxxxxxx`.
fn container_id(project: &Project, service: &Service) -> String {
    let clean = |text: &str| -> String {
        text.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}-{}-{:x}{:x}",
        clean(&project.name),
        clean(&service.name),
        std::process::id(),
        nanos
    )
}

/// Resolve the image and write the bundle for one start of `service`,
/// whose (already interpolated) `command` replaces the image's Cmd.
pub async fn prepare(
    project: &Project,
    service: &Service,
    reference: &str,
    command: Option<Program>,
    ports: &BTreeMap<String, u16>,
) -> Result<PreparedContainer, ContainerError> {
    let image_error = |source: ImagePrepError| ContainerError::Image {
        reference: reference.to_string(),
        source,
    };
    // On a thread of its own with its own runtime: a pull can take long,
    // and the supervisor's runtime must keep serving the other services.
    let owned_reference = reference.to_string();
    let id = container_id(project, service);
    tracing::debug!(service = %service.name, image = %reference, container = %id, "preparing the container");
    let user = format!(
        "container {id} (service {} of project {}, supervisor pid {})",
        service.name,
        project.name,
        std::process::id()
    );
    // Dropped with this future (the service was stopped, or the supervisor
    // is going away): the pull sees it and is abandoned, cleaning up after
    // itself, instead of keeping a blocking thread (and the supervisor's
    // shutdown) until it ends.
    let (_keep_pulling, pull_wanted) = tokio::sync::watch::channel(());
    let (image, lease) = tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ImagePrepError::Runtime)?;
        let store = ImageStore::open_default()?;
        let image = runtime.block_on(async {
            let mut pull_wanted = pull_wanted;
            let options = PullOptions::default();
            tokio::select! {
                image = store.ensure(&owned_reference, PullPolicy::Missing, &options) => {
                    Ok(image?)
                }
                _ = pull_wanted.changed() => Err(ImagePrepError::Abandoned),
            }
        })?;
        // Before the bundle mounts it, for as long as the container lives.
        let lease = store.lease(&image, &user)?;
        Ok::<_, ImagePrepError>((image, lease))
    })
    .await
    .map_err(|error| image_error(error.into()))?
    .map_err(image_error)?;
    let env = container_env(project, service, ports)?;
    // A built image's entrypoint runs its process type: a command of one's own goes to
    // its launcher, which gives it the launch environment.
    let (entrypoint, command) = match (&service.build, command) {
        (Some(_), Some(program)) => {
            let (entrypoint, args) = crate::project::build::through_launcher(&program);
            (Some(entrypoint), Some(args))
        }
        (_, command) => (None, command.map(|command| command.argv())),
    };
    let spec = ContainerSpec {
        entrypoint,
        command,
        env: env.into_iter().collect(),
        volumes: service.volumes.clone(),
        hostname: Some(service.name.clone()),
        security: service.security.clone(),
        init: match service.init {
            true => Some(locald_runtime::init_binary()?),
            false => None,
        },
        ..ContainerSpec::new(id, image)
    };
    let bundle = Bundle::create(&spec)?;
    let shim = bundle.command();
    let mut argv: Vec<OsString> = vec![shim.get_program().to_os_string()];
    argv.extend(shim.get_args().map(OsString::from));
    let launch = LaunchSpec {
        argv,
        // The shim itself runs on the host, with the host's environment.
        env: crate::project::env::host_env(),
        workdir: project.root.clone(),
        inherited: vec![lease.as_fd().as_raw_fd()],
        pid_namespace: true,
    };
    Ok(PreparedContainer {
        launch,
        bundle,
        lease,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::env::tests::{project, service};

    #[test]
    fn ids_are_valid_and_unique_per_start() {
        let root = std::path::Path::new("/tmp");
        let mut project = project(root, vec![]);
        project.name = "my shop/1".into();
        let web = service("web", "true", root);
        let first = container_id(&project, &web);
        std::thread::sleep(std::time::Duration::from_millis(1));
        let second = container_id(&project, &web);
        assert!(locald_runtime::is_valid_id(&first), "{first}");
        assert!(first.starts_with("my_shop_1-web-"), "{first}");
        assert_ne!(first, second);
    }
}
