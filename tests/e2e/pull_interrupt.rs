//! Ctrl-C and SIGTERM during a pull (`image pull`, and the pull of
//! `container run`), against a hostile registry that trickles a layer one
//! byte every 50 ms: the command ends at once with 128 + the signal and
//! leaves nothing installed (no ref, no rootfs, no staging dir, no partial
//! blob).

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use locald_image::testing::{
    BlobMisbehaviour, BuiltImage, HostileRegistry, ImageBuilder, LayerBuilder, LayerCompression,
};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::harness::Project;

/// Guards the waits below; a passing run takes milliseconds.
const GUARD: Duration = Duration::from_secs(10);

/// An image whose single layer takes a minute to trickle in (over 1 KiB
/// at 20 bytes a second): the pull is certainly still running when signalled.
fn slow_image(registry: &HostileRegistry) -> BuiltImage {
    let mut layer = LayerBuilder::new();
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    layer.file("noise", 0o644, &noise);
    let image = ImageBuilder::new()
        .layer(layer.build(LayerCompression::Gzip))
        .build();
    assert!(image.layers[0].bytes.len() > 1024);
    registry.serve_image("1", &image);
    registry.misbehave_blob(&image.layers[0].digest, BlobMisbehaviour::Trickle);
    image
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Waits (under a guard) until the pull writes the trickling blob.
fn wait_for_download(images: &Path) {
    let deadline = Instant::now() + GUARD;
    while !entries(&images.join("tmp"))
        .iter()
        .any(|name| name.ends_with("-blob"))
    {
        assert!(Instant::now() < deadline, "the pull never started a blob");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits for `child` under a guard; kills it and fails if it does not end.
fn wait_exit(child: &mut Child) -> Option<i32> {
    let deadline = Instant::now() + GUARD;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("locald went on pulling after the signal");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn assert_nothing_installed(images: &Path, image: &BuiltImage) {
    let refs = std::fs::read_to_string(images.join("refs.json")).unwrap_or_default();
    assert!(
        !refs.contains(&image.manifest.digest),
        "a ref was recorded: {refs}"
    );
    assert_eq!(entries(&images.join("tmp")), Vec::<String>::new(), "tmp/");
    assert_eq!(
        entries(&images.join("rootfs")),
        Vec::<String>::new(),
        "rootfs/"
    );
    // Only the config, complete and verified, may have made it in.
    let config = image.config.digest.strip_prefix("sha256:").unwrap();
    for name in entries(&images.join("blobs/sha256")) {
        assert_eq!(name, config, "blob left behind");
    }
}

fn interrupted_pull(command: &[&str], signal: Signal) {
    let registry = HostileRegistry::start();
    let image = slow_image(&registry);
    let data = tempfile::tempdir().unwrap();
    let project = Project::new();
    let reference = format!("{}/slow/image:1", registry.addr());
    let args: Vec<&str> = command
        .iter()
        .map(|a| if *a == "REF" { reference.as_str() } else { a })
        .collect();
    let mut child = project
        .locald(args)
        .env("LOCALD_DATA_DIR", data.path().to_str().unwrap())
        .process_group()
        .spawn();
    let images = data.path().join("images");
    wait_for_download(&images);
    // Ctrl-C at a terminal signals the foreground process group; a service
    // manager sends SIGTERM the same way.
    killpg(Pid::from_raw(child.id() as i32), signal).unwrap();
    let code = wait_exit(&mut child);
    assert_eq!(
        code,
        Some(128 + signal as i32),
        "{command:?} after {signal}"
    );
    assert_nothing_installed(&images, &image);
}

#[test]
fn ctrl_c_stops_image_pull_at_once_and_installs_nothing() {
    interrupted_pull(&["image", "pull", "REF"], Signal::SIGINT);
}

#[test]
fn sigterm_stops_image_pull_at_once_and_installs_nothing() {
    interrupted_pull(&["image", "pull", "REF"], Signal::SIGTERM);
}

#[test]
fn ctrl_c_stops_the_pull_of_container_run() {
    interrupted_pull(&["container", "run", "REF", "true"], Signal::SIGINT);
}

/// A container service whose image is still being pulled: `down` does not
/// wait for the pull (it is abandoned and cleaned up).
#[test]
fn down_abandons_a_container_services_pull() {
    let registry = HostileRegistry::start();
    let image = slow_image(&registry);
    let data = tempfile::tempdir().unwrap();
    let project = Project::with_toml(&format!(
        "[services.slow]\nimage = \"{}/slow/image:1\"\ncommand = \"sleep 600\"\n",
        registry.addr()
    ));
    let data_dir = data.path().to_str().unwrap();
    project
        .locald(["up", "-d"])
        .env("LOCALD_DATA_DIR", data_dir)
        .success();
    let images = data.path().join("images");
    wait_for_download(&images);
    let supervisor: i32 = project
        .read(".locald/supervisor.pid")
        .trim()
        .parse()
        .unwrap();
    let mut down = project
        .locald(["down"])
        .env("LOCALD_DATA_DIR", data_dir)
        .spawn();
    assert_eq!(wait_exit(&mut down), Some(0));
    // `down` returns as the supervisor's sockets close on its way out.
    project.wait_for("the supervisor to be gone", GUARD, |_| {
        !crate::harness::alive(supervisor)
    });
    assert_nothing_installed(&images, &image);
}
