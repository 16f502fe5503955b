//! The directories locald keeps containers and images in are the user's alone: another local
//! user can neither plant a rootless runtime directory for a victim to use (and swap their
//! bundles in it) nor reach the image store (and the setuid programs unpacked in it).
//!
//! These tests create the unprivileged accounts `lds1-victim` and `lds1-other` when missing
//! (and leave them for later runs).

use std::os::unix::fs::{chown, lchown, symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use locald_image::testing::{busybox_image, ConfigOverride, ImageBuilder, LayerBuilder};
use locald_image::testing::{BuiltImage, LayerCompression};

use crate::harness::account;

/// What a command run as another user printed.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `program args` as `(uid, gid)` with a clean environment: `PATH`, `HOME=home` and `env`.
fn run_as(
    (uid, gid): (u32, u32),
    home: &Path,
    env: &[(&str, &Path)],
    program: &str,
    args: &[&str],
) -> Ran {
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid", &uid.to_string(), "--regid", &gid.to_string()])
        .args(["--clear-groups", "--", program])
        .args(args)
        .current_dir(home)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", home);
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("run setpriv");
    Ran {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Removes whatever is at `path` (a directory tree, a file or a symlink, not followed).
fn clear(path: &Path) {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path).unwrap(),
        Ok(_) => std::fs::remove_file(path).unwrap(),
        Err(_) => {}
    }
}

/// A directory at `path` with `mode`, owned by `owner`.
fn dir_of(path: &Path, owner: (u32, u32), mode: u32) {
    std::fs::create_dir(path).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    chown(path, Some(owner.0), Some(owner.1)).unwrap();
}

/// The rootless runtime directory locald picks without `XDG_RUNTIME_DIR`.
fn tmp_runtime_dir(uid: u32) -> PathBuf {
    PathBuf::from(format!("/tmp/locald-{uid}"))
}

/// Without `XDG_RUNTIME_DIR`, a rootless locald keeps its bundles in `/tmp/locald-$UID`, a
/// name anyone can take first. Whatever another user (or a mistake) left there, owned by
/// someone else, writable by others, or a symlink, locald refuses it, says which directory and
/// why, and runs nothing; the same for a symlinked `bundles` and for an `XDG_RUNTIME_DIR` that
/// is not the user's. A directory it makes itself is 0700.
#[test]
fn a_planted_rootless_runtime_directory_is_refused() {
    let victim = account("lds1-victim");
    let other = account("lds1-other");
    let home = tempfile::Builder::new()
        .prefix("lds1-home-")
        .tempdir()
        .unwrap();
    busybox_image(&ConfigOverride::default())
        .unwrap()
        .write_layout(&home.path().join("layout"), "latest")
        .unwrap();
    crate::harness::give(home.path(), victim);
    let locald = crate::harness::locald_bin();
    let imported = run_as(
        victim,
        home.path(),
        &[],
        locald,
        &["image", "import", "layout", "--name", "bb:1"],
    );
    assert_eq!(imported.code, Some(0), "{}", imported.stderr);
    let run = |env: &[(&str, &Path)]| {
        run_as(
            victim,
            home.path(),
            env,
            locald,
            &["container", "run", "bb:1", "echo", "container ran"],
        )
    };
    let refused = |ran: &Ran, path: &Path, why: &str| {
        assert_ne!(ran.code, Some(0), "{}{}", ran.stdout, ran.stderr);
        assert!(!ran.stdout.contains("container ran"), "{}", ran.stdout);
        assert!(
            ran.stderr.contains(&path.display().to_string()) && ran.stderr.contains(why),
            "expected the error to name {} and say {why:?}: {}",
            path.display(),
            ran.stderr
        );
        // Said once, as the run's error (not first as a failed clean-up).
        assert_eq!(ran.stderr.matches("refusing").count(), 1, "{}", ran.stderr);
    };

    let planted = tmp_runtime_dir(victim.0);
    clear(&planted);
    // Another user's, open to all.
    dir_of(&planted, other, 0o777);
    refused(&run(&[]), &planted, &format!("owned by uid {}", other.0));
    assert_eq!(std::fs::read_dir(&planted).unwrap().count(), 0);
    clear(&planted);

    // The victim's own, but others may write to it: it may have been tampered with.
    dir_of(&planted, victim, 0o777);
    refused(&run(&[]), &planted, "lets other users write");
    assert_eq!(std::fs::read_dir(&planted).unwrap().count(), 0);
    clear(&planted);

    // A symlink to a directory of the other user's choosing.
    let lure = home.path().join("lure");
    dir_of(&lure, other, 0o777);
    symlink(&lure, &planted).unwrap();
    lchown(&planted, Some(other.0), Some(other.1)).unwrap();
    refused(&run(&[]), &planted, "symbolic link");
    assert_eq!(std::fs::read_dir(&lure).unwrap().count(), 0);
    clear(&planted);

    // In a proper XDG_RUNTIME_DIR, `bundles` swapped for a symlink is not followed either.
    let xdg = home.path().join("run");
    dir_of(&xdg, victim, 0o700);
    dir_of(&xdg.join("locald"), victim, 0o700);
    let elsewhere = home.path().join("elsewhere");
    dir_of(&elsewhere, victim, 0o700);
    symlink(&elsewhere, xdg.join("locald/bundles")).unwrap();
    lchown(xdg.join("locald/bundles"), Some(victim.0), Some(victim.1)).unwrap();
    refused(
        &run(&[("XDG_RUNTIME_DIR", &xdg)]),
        &xdg.join("locald/bundles"),
        "symbolic link",
    );
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);

    // An XDG_RUNTIME_DIR of someone else's is not trusted.
    let foreign = home.path().join("foreign");
    dir_of(&foreign, other, 0o777);
    let ran = run(&[("XDG_RUNTIME_DIR", &foreign)]);
    refused(&ran, &foreign, "XDG_RUNTIME_DIR");
    assert_eq!(std::fs::read_dir(&foreign).unwrap().count(), 0);

    // Nothing planted: it runs, in a directory of its own making that only the victim can use.
    let ran = run(&[]);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert_eq!(ran.stdout, "container ran\n");
    let made = std::fs::symlink_metadata(&planted).unwrap();
    assert!(made.is_dir());
    assert_eq!((made.uid(), made.mode() & 0o7777), (victim.0, 0o700));
    clear(&planted);
}

/// Busybox plus a setuid-root program, as real images carry (`su`, `passwd`).
fn image_with_a_setuid_program() -> BuiltImage {
    let busybox = busybox_image(&ConfigOverride::default()).unwrap();
    let mut layer = LayerBuilder::new();
    layer.dir("usr", 0o755).dir("usr/bin", 0o755).file(
        "usr/bin/setuid-tool",
        0o4755,
        b"#!/bin/sh\nid\n",
    );
    let mut builder = ImageBuilder::new();
    for blob in busybox.layers.iter().cloned() {
        builder = builder.layer(blob);
    }
    builder.layer(layer.build(LayerCompression::Gzip)).build()
}

/// An image imported by root lands in a store no other user can enter, even when the data
/// directory above it is open to all (as home directories often are): its setuid program is
/// out of their reach.
#[test]
fn another_user_cannot_reach_unpacked_images() {
    let other = account("lds1-other");
    let project = crate::harness::Project::new();
    let data = tempfile::Builder::new()
        .prefix("lds1-data-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(data.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let layout = project.path().join("layout");
    image_with_a_setuid_program()
        .write_layout(&layout, "latest")
        .unwrap();
    project
        .locald([
            "image",
            "import",
            layout.to_str().unwrap(),
            "--name",
            "suid:1",
        ])
        .env("LOCALD_DATA_DIR", data.path().to_str().unwrap())
        .success();

    let store = data.path().join("images");
    let rootfs: Vec<PathBuf> = std::fs::read_dir(store.join("rootfs"))
        .unwrap()
        .flatten()
        .map(|entry| entry.path().join("usr/bin/setuid-tool"))
        .collect();
    assert_eq!(rootfs.len(), 1, "{rootfs:?}");
    let program = &rootfs[0];
    assert!(program.is_file(), "{} was not unpacked", program.display());

    let stat = run_as(
        other,
        Path::new("/"),
        &[],
        "stat",
        &[program.to_str().unwrap()],
    );
    assert_ne!(
        stat.code,
        Some(0),
        "{} is reachable: {}",
        program.display(),
        stat.stdout
    );
    assert!(stat.stderr.contains("Permission denied"), "{}", stat.stderr);
    let run = run_as(other, Path::new("/"), &[], program.to_str().unwrap(), &[]);
    assert_ne!(run.code, Some(0), "{}", run.stdout);
    assert_eq!(std::fs::metadata(&store).unwrap().mode() & 0o7777, 0o700);
}
