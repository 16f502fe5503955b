//! locald's Cloud Native Buildpacks lifecycle core, in Rust.
//!
//! What a CNB lifecycle does between "here is an app directory and a builder" and "here is
//! what the exporter needs", faithful to the Buildpack API (0.7–0.12, 0.10/0.11 semantics as
//! the target) and the Platform API files (0.12+), and to the reference lifecycle where the
//! specs leave room (noted where it matters):
//!
//! - [`formats`]: every file a platform, a builder or a buildpack writes (`buildpack.toml`,
//!   `order.toml`, `group.toml`, `plan.toml`, build plans, `launch.toml`, `build.toml`,
//!   `store.toml`, `<layer>.toml`, `run.toml`/`stack.toml`), read bounded, with typed errors
//!   that name the file and the key;
//! - [`detect()`](detect::detect): order expansion, group trials and plan resolution (the
//!   reference `DefaultDetectResolver`), giving `group.toml` and `plan.toml`;
//! - [`mod@env`]: the build-time environment (allow-list, `<platform>/env`, env files) and
//!   the start of the launch-time one;
//! - [`build()`](build::build): running each buildpack's `bin/build` and reading back what
//!   it wrote, giving the merged launch metadata (`<layers>/config/metadata.toml`);
//! - [`launch::plan`]: the process, arguments, environment and working directory a launcher
//!   execs, as a function of the metadata and the layers.
//!
//! Buildpack executables run through an [`exec::Executor`]: [`exec::HostExecutor`] spawns
//! them as child processes (what the tests use, and what runs inside the build container,
//! where `/workspace`, `/layers`, `/platform` and `/cnb` are real); the paths themselves are
//! parameters ([`Dirs`], [`launch::LaunchDirs`]), never constants. Everything a buildpack
//! writes is bounded ([`Limits`]) and confined: a layer name, a slice or a process working
//! directory cannot escape its directory.
//!
//! A build, detect then build, on the host:
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use locald_cnb::exec::HostExecutor;
//! use locald_cnb::formats::{order::read_order, target::RunTarget};
//! use locald_cnb::{build, detect, env::Env, Context, Dirs, Limits};
//!
//! let dirs = Dirs {
//!     app: "/workspace".into(),
//!     layers: "/layers".into(),
//!     platform: "/platform".into(),
//!     buildpacks: "/cnb/buildpacks".into(),
//!     build_config: Some("/cnb/build-config".into()),
//!     scratch: "/tmp".into(),
//! };
//! let os_release = std::fs::read_to_string("/etc/os-release").ok();
//! let target = RunTarget { os: "linux".into(), ..RunTarget::default() }.complete(os_release.as_deref());
//! let context = Context::new(&dirs, &HostExecutor, target, Env::for_build(std::env::vars()));
//! let order_path = detect::order_path(&dirs.layers, "/cnb/order.toml".as_ref());
//! let order = read_order(&order_path, &Limits::DEFAULT)?;
//! let detected = detect::detect(&context, &order)?;
//! detected.write(&dirs.layers.join("group.toml"), &dirs.layers.join("plan.toml"))?;
//! let metadata = build::build(&context, &detected.group, &detected.plan, &mut std::io::stdout())?;
//! println!("default process: {:?}", metadata.default_process);
//! # Ok(())
//! # }
//! ```

pub mod api;
pub mod build;
#[cfg(feature = "export")]
pub mod cache;
mod context;
pub mod detect;
pub mod env;
pub mod exec;
#[cfg(feature = "export")]
pub mod export;
pub mod formats;
pub mod id;
pub mod launch;
mod read;
#[cfg(test)]
mod test_support;

pub use api::Api;
pub use context::Context;
pub use id::BuildpackId;
pub use read::Limits;

use std::path::PathBuf;

/// Where the lifecycle's directories are, as both the lifecycle and the buildpacks see them
/// (the lifecycle runs where the buildpacks run: in the build container, or on the host in
/// tests). In a builder image these are `/workspace`, `/layers`, `/platform`,
/// `/cnb/buildpacks` and `/cnb/build-config`.
#[derive(Debug, Clone)]
pub struct Dirs {
    /// The application source (`CNB_APP_DIR`; the working directory of `bin/detect` and
    /// `bin/build`).
    pub app: PathBuf,
    /// `<layers>`: one directory per buildpack (its escaped id), plus `config/`.
    pub layers: PathBuf,
    /// `<platform>`: `env/` holds the user's build environment.
    pub platform: PathBuf,
    /// `<buildpacks>`: `<escaped id>/<version>/buildpack.toml`.
    pub buildpacks: PathBuf,
    /// The builder's `/cnb/build-config`, if any (its `env/` applies to every buildpack).
    pub build_config: Option<PathBuf>,
    /// Where the per-buildpack plan files are made (a fresh directory each run).
    pub scratch: PathBuf,
}
