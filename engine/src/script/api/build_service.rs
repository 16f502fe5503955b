//! Builds of a project's built services (`build = {...}`): `build_service(service,
//! #{...})` for `locald build SVC` (and `locald run` of a built service), and
//! [`build_main`], the process the supervisor runs to build a service before it starts
//! it (`locald __build-service`, its output in the service's log). Both build with
//! `build_image` under the service's tag, then record the fingerprint taken before the
//! build (`project::build`), so that `up` does not build the same source again.

use std::collections::BTreeMap;

use rhai::plugin::*;
use rhai::Map;
use serde::Deserialize;

use super::build::{build_image, BuildImageOptions};
use super::container::{ContainerError, PullStopped};
use super::options::{self, OptionsError};
use crate::project::build::{
    write_record, BuildRecord, BuildRequest, ServiceBuild, ServiceBuildError, BUILD_REQUEST_ENV,
};

/// Why a service's build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildServiceError {
    #[error(transparent)]
    Options(#[from] OptionsError),
    #[error(transparent)]
    Settings(#[from] ServiceBuildError),
    #[error(transparent)]
    Build(#[from] ContainerError),
    #[error("the build was interrupted")]
    Interrupted,
    #[error("cannot record the build of service `{service}`: {source}")]
    Record {
        service: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{BUILD_REQUEST_ENV} does not hold a build request: {0}")]
    Request(String),
}

impl From<PullStopped> for BuildServiceError {
    fn from(stopped: PullStopped) -> Self {
        match stopped {
            PullStopped::Interrupted => BuildServiceError::Interrupted,
            PullStopped::Failed(error) => BuildServiceError::Build(error),
        }
    }
}

/// The options of `build_service`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BuildServiceOptions {
    /// Another builder than the service's (`locald build SVC --builder REF`).
    pub builder: Option<String>,
    /// Other buildpacks than the service's (`locald build SVC --buildpack REF...`).
    pub buildpacks: Vec<String>,
    /// Build variables added to (or replacing) the service's.
    #[serde(deserialize_with = "options::env_map")]
    pub env: BTreeMap<String, String>,
    /// Every buildpack's detect output.
    pub verbose: bool,
    /// Build only when the source or the settings changed since the last build, or its
    /// image is gone (as `up` does).
    pub if_changed: bool,
}

/// Builds `build` under its tag and records it for `project_root`'s next `up`, unless
/// `if_changed` and the last build is current. Returns `#{ reference, digest, built }`.
pub fn build_service(
    project: &crate::model::Project,
    build: &ServiceBuild,
    verbose: bool,
    if_changed: bool,
) -> Result<Map, BuildServiceError> {
    // Taken before the source is copied: an edit during the build makes the next `up`
    // build again rather than trust an image that may not hold it.
    let fingerprint = build.fingerprint()?;
    if if_changed && build.is_current(project, &fingerprint)? {
        let image = super::container::ensure_image(&build.tag, locald_image::PullPolicy::Never)?;
        let mut map = super::container::image_map(&image);
        map.insert("built".into(), false.into());
        return Ok(map);
    }
    let options = BuildImageOptions {
        builder: Some(build.builder.clone()),
        env: build.env.clone(),
        tag: Some(build.tag.clone()),
        verbose,
        // A buildpack given as a path (a `.cnb` file, a directory) is the project's, as
        // every path in locald.toml is, wherever `up` or `build` runs from.
        buildpacks: build
            .buildpacks
            .iter()
            .map(|reference| {
                let path = project.root.join(reference);
                if path.exists() {
                    path.to_string_lossy().into_owned()
                } else {
                    reference.clone()
                }
            })
            .collect(),
    };
    let mut image = build_image(&build.source, options)?;
    let digest = image
        .get("digest")
        .map(|digest| digest.to_string())
        .unwrap_or_default();
    write_record(
        &project.root,
        &build.service,
        &BuildRecord {
            fingerprint,
            digest,
        },
    )
    .map_err(|source| BuildServiceError::Record {
        service: build.service.clone(),
        source,
    })?;
    image.insert("built".into(), true.into());
    Ok(image)
}

/// `locald __build-service`: builds the service the supervisor's [`BuildRequest`] names,
/// its output going to the service's log; the exit code says how it went (128+N when
/// signal N stopped it).
pub fn build_main() -> i32 {
    crate::sandbox::interrupt::install();
    let result = std::env::var(BUILD_REQUEST_ENV)
        .map_err(|e| BuildServiceError::Request(e.to_string()))
        .and_then(|json| {
            serde_json::from_str::<BuildRequest>(&json)
                .map_err(|e| BuildServiceError::Request(e.to_string()))
        })
        .and_then(|request| {
            // Only the root matters to the record; the build comes whole.
            let project = crate::model::Project {
                name: String::new(),
                root: request.project_root.clone(),
                services: Vec::new(),
                tasks: Vec::new(),
                dashboard: Default::default(),
            };
            build_service(&project, &request.build, false, false)
        });
    match result {
        Ok(image) => {
            let reference = image.get("reference").map(|r| r.to_string());
            println!("built {}", reference.unwrap_or_default());
            0
        }
        // Stopped by the supervisor: the container stopped with it, whatever the build
        // then made of its exit.
        Err(BuildServiceError::Interrupted) => crate::sandbox::interrupt::exit_code(),
        Err(_) if crate::sandbox::interrupt::pending() => {
            eprintln!("the build was stopped");
            crate::sandbox::interrupt::exit_code()
        }
        Err(error) => {
            eprintln!("error: {error}");
            1
        }
    }
}

/// The service's build with `options`' builder, buildpacks and env over its own.
fn with_overrides(
    service: &crate::model::Service,
    options: &BuildServiceOptions,
) -> Result<ServiceBuild, ServiceBuildError> {
    let mut service = service.clone();
    if let Some(build) = service.build.as_mut() {
        if let Some(builder) = &options.builder {
            build.builder = Some(builder.clone());
        }
        if !options.buildpacks.is_empty() {
            build.buildpacks = options.buildpacks.clone();
        }
    }
    let mut build = ServiceBuild::of(&service)?;
    build.env.extend(options.env.clone());
    Ok(build)
}

#[export_module]
pub mod build_service_api {
    use crate::script::handles::ServiceHandle;
    use rhai::Map;

    /// Builds a built service (`build = {...}`) with its settings under its tag, and
    /// records the build so that `up` does not build the same source again:
    /// `#{ builder, buildpacks, env, verbose, if_changed }` (another builder; other
    /// buildpacks; build variables over the service's; every buildpack's detect output; build only when the source or the
    /// settings changed, or the image is gone). Returns `#{ reference, digest, built }`.
    #[rhai_fn(return_raw)]
    pub fn build_service(
        ctx: NativeCallContext,
        service: ServiceHandle,
        options: Map,
    ) -> Result<Map, Box<EvalAltResult>> {
        let options: super::BuildServiceOptions = super::options::read("build_service", options)
            .map_err(|e| crate::script::api::fail(&ctx, e))?;
        let build = super::with_overrides(service.spec(), &options)
            .map_err(|e| crate::script::api::fail(&ctx, e))?;
        match super::build_service(
            &service.project,
            &build,
            options.verbose,
            options.if_changed,
        ) {
            Ok(map) => Ok(map),
            Err(super::BuildServiceError::Interrupted) => {
                Err(Box::new(EvalAltResult::ErrorTerminated(
                    crate::sandbox::INTERRUPTED.into(),
                    ctx.call_position(),
                )))
            }
            Err(error) => Err(crate::script::api::fail(&ctx, error)),
        }
    }
}
