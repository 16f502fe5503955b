//! Test fixtures shared by this crate's tests, other crates' tests and the
//! repo scripts (through the `locald-fixtures` binary): a throw-away local
//! registry, OCI images built from the host's static busybox (plain,
//! multi-layer with whiteouts, malicious, multi-arch; Cloud Native Buildpacks
//! builders, a run image and buildpackages), and pushing them; a
//! hostile registry that misbehaves on purpose.

mod builder;
mod cnb;
mod hostile;
mod images;
mod push;
mod registry;

pub use builder::BuiltBlob;
pub use builder::{BuiltImage, BuiltIndex, ImageBuilder, LayerBuilder, LayerCompression};
pub use cnb::{
    cnb_builder_image, cnb_hostile_buildpackage, cnb_run_image, CnbBuilder, CnbBuildpackage,
    CnbFile, HostileBuildpackage, CNB_GROUP_ID, CNB_USER_ID,
};
pub use hostile::{BlobMisbehaviour, HostileRegistry, ManifestMisbehaviour};
pub use images::{
    bench_gzip_image, bench_image, busybox_image, malicious_image, multiarch_index,
    multilayer_image, ConfigOverride, MaliciousKind,
};
pub use push::{push_image, push_index};
pub use registry::TestRegistry;

/// Why a fixture could not be built, started or pushed.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("{action} `{path}`: {source}")]
    Io {
        action: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the test registry did not start: {0}")]
    Registry(String),
    #[error("push to {target} failed: {message}")]
    Push { target: String, message: String },
    #[error("{0}")]
    Invalid(String),
}
