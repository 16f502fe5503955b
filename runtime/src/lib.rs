//! OCI runtime specs and bundles for locald containers, and the client side of `locald-shim`.
//!
//! The engine describes a container with a [`ContainerSpec`]; [`runtime_spec`] turns it into an
//! OCI runtime spec with Docker's semantics, [`Bundle`] writes it to disk next to the overlay
//! directories, and `locald-shim` (found by [`shim_path`]) runs it. [`run_foreground`] does all
//! of it for `locald container run`.

mod bundle;
mod container_spec;
mod image_user;
mod runtime_spec;
mod shim;

pub use bundle::{runtime_root, state_root, Bundle, BundleError};
pub use container_spec::{ContainerSpec, Mode, VolumeMount};
pub use image_user::{ResolvedUser, UserError};
pub use oci_spec;
pub use runtime_spec::{
    is_valid_id, process_args, process_cwd, process_env, runtime_spec, SpecError,
    DEFAULT_CAPABILITIES, MASKED_PATHS, READONLY_PATHS,
};
pub use shim::{run_foreground, shim_path, ShimError, SHIM_NAME};

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
