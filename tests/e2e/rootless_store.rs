//! A user without root keeps images whose directories they cannot read or enter: layers may
//! carry directories of mode 000 (and files of mode 000 in them). Removing such a rootfs must
//! open them up first: `image prune` failed with EACCES for good, and the user's own `rm -rf`
//! did too.
//!
//! This test creates the unprivileged account `lds5-rootless` when missing (and leaves it for
//! later runs).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use locald_image::testing::{ImageBuilder, LayerBuilder, LayerCompression};

use crate::harness::{account, locald_bin};

/// `locald args` as `(uid, gid)`, with its store in `data`.
fn locald_as((uid, gid): (u32, u32), data: &Path, args: &[&str]) -> Output {
    Command::new("setpriv")
        .args(["--reuid", &uid.to_string(), "--regid", &gid.to_string()])
        .args(["--clear-groups", "--", locald_bin()])
        .args(args)
        .current_dir(data)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", data)
        .env("LOCALD_DATA_DIR", data)
        .output()
        .expect("run setpriv")
}

fn succeeded(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_rootless_user_can_prune_an_image_with_unreadable_directories() {
    let user = account("lds5-rootless");
    let data = tempfile::Builder::new()
        .prefix("lds5-data-")
        .tempdir()
        .unwrap();
    let mut layer = LayerBuilder::new();
    layer
        .dir("locked", 0o000)
        .dir("locked/inner", 0o000)
        .file("locked/inner/secret", 0o000, b"x")
        .file("locked/file", 0o000, b"y");
    let image = ImageBuilder::new()
        .layer(layer.build(LayerCompression::Gzip))
        .build();
    let layout = data.path().join("layout");
    image.write_layout(&layout, "latest").unwrap();
    crate::harness::give(data.path(), user);
    std::fs::set_permissions(data.path(), std::fs::Permissions::from_mode(0o700)).unwrap();

    let layout = layout.to_str().unwrap();
    succeeded(
        &locald_as(
            user,
            data.path(),
            &["image", "import", layout, "--name", "locked:1"],
        ),
        "image import",
    );
    let rootfs = data.path().join("images/rootfs");
    assert_eq!(std::fs::read_dir(&rootfs).unwrap().count(), 1);
    succeeded(
        &locald_as(user, data.path(), &["image", "rm", "locked:1"]),
        "image rm",
    );
    succeeded(
        &locald_as(user, data.path(), &["image", "prune"]),
        "image prune",
    );
    assert_eq!(
        std::fs::read_dir(&rootfs).unwrap().count(),
        0,
        "the rootfs was removed"
    );
}
