//! OCI runtime specs and bundles for locald containers, and the client side of `locald-shim`.
//!
//! The engine describes a container with a [`ContainerSpec`]; [`runtime_spec`] turns it into an
//! OCI runtime spec with Docker's semantics, [`Bundle`] writes it to disk next to the overlay
//! directories, and `locald-shim` (found by [`shim_path`]) runs it. [`run_foreground`] does all
//! of it for `locald container run`. [`sweep_stale`] removes what containers of killed processes
//! left behind; call it when a supervisor starts.

mod bundle;
pub mod capabilities;
mod cleanup;
mod container_spec;
mod image_user;
mod init;
mod root;
mod runtime_spec;
pub mod seccomp;
mod security;
mod shim;
mod sweep;

pub use bundle::{bundles_root, runtime_root, state_root, Bundle, BundleError};
pub use capabilities::{CapabilityError, DEFAULT_CAPABILITIES};
pub use container_spec::{ContainerSpec, Mode, VolumeMount, VolumeSpecError};
pub use image_user::{ResolvedUser, UserError};
pub use init::{init_binary, InitError, INIT_BINARY, INIT_IN_CONTAINER};
pub use oci_spec;
pub use root::{prepare_runtime_root, RuntimeRoot};
pub use runtime_spec::{
    cgroup_relative_path, is_valid_id, process_args, process_cwd, process_env, runtime_spec,
    SpecError, CGROUP_PARENT, MASKED_PATHS, READONLY_PATHS,
};
pub use seccomp::SeccompError;
pub use security::{parse_security_opt, SeccompChoice, Security, SecurityOpt, SecurityOptError};
pub use shim::{
    inherit, run_foreground, run_foreground_holding, shim_path, ShimError, PARENT_ENV, SHIM_NAME,
};
pub use sweep::{sweep_stale, sweep_stale_in, SweepReport};

/// Any error of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Shim(#[from] ShimError),
}
