//! OCI images for locald: references, the content-addressed store, pull, safe
//! unpack and import.
//!
//! Entry point: [`ImageStore`]. The store lives under the user's data
//! directory (`$LOCALD_DATA_DIR`, else `$XDG_DATA_HOME/locald`, else
//! `~/.local/share/locald`) in `images/`, shared by all projects; each image
//! gets one flattened rootfs that consumers must treat as read-only.

mod archive;
mod image_config;
mod import;
pub mod oci;
pub mod platform;
mod pull;
pub mod reference;
/// The private-directory checks, shared with the runtime and `locald-shim` (kept here under
/// their old path for the store and other users).
pub use locald_shim_protocol::private_dir;
pub mod remove_tree;
mod store;
mod tls;
mod token;
mod unpack;
pub mod user_config;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use archive::is_oci_archive;
pub use image_config::ImageConfig;
pub use import::ImportError;
pub use pull::{
    PullError, PullOptions, PullPolicy, PullReport, CONNECT_TIMEOUT, IDLE_TIMEOUT,
    MAX_CONFIG_BYTES, MAX_IMAGE_BYTES, MAX_INDEX_MANIFESTS, MAX_LAYERS, MAX_MANIFEST_BYTES,
};
pub use reference::{Reference, ReferenceError};
pub use store::{
    data_dir, BuildCache, ImageLease, ImageStore, ImageSummary, KeptImage, LeaseInfo, PruneReport,
    StagedCache, StoreError, StoredImage,
};
pub use unpack::{
    decompressing_reader, unpack_archive, UnpackError, UnpackLimits, MAX_UNPACKED_BYTES,
    MAX_UNPACKED_ENTRIES, MIN_FREE_BYTES, MIN_FREE_INODES,
};
pub use user_config::UserConfigError;

/// Every way an image operation can fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Pull(#[from] PullError),
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    #[error(transparent)]
    Import(#[from] ImportError),
    #[error(transparent)]
    Config(#[from] UserConfigError),
    #[error(transparent)]
    PrivateDir(#[from] private_dir::PrivateDirError),
}
