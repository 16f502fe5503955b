//! What the runtime's integration tests share: a container of a busybox rootfs.

use std::path::Path;

use locald_image::{ImageConfig, StoredImage};
use locald_runtime::ContainerSpec;

/// A container `id` of the busybox rootfs at `rootfs` running `command`
/// (as the image's, with `PATH=/bin`), confined by default.
pub fn busybox_container(id: String, rootfs: &Path, command: Vec<String>) -> ContainerSpec {
    let image = StoredImage {
        reference: "localhost/busybox:test".into(),
        manifest_digest: "sha256:test".into(),
        config: ImageConfig {
            entrypoint: vec![],
            cmd: vec!["sh".into()],
            env: vec!["PATH=/bin".into()],
            working_dir: None,
            user: None,
            exposed_ports: vec![],
        },
        rootfs: rootfs.to_path_buf(),
    };
    ContainerSpec {
        command: Some(command),
        ..ContainerSpec::new(id, image)
    }
}
