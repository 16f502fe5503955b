//! Pulling from a real local registry (Debian's docker-registry) with the
//! fixture images: reuse without download, whiteouts, multi-arch, malicious
//! images, missing images.

use std::path::Path;

use locald_image::testing::{
    busybox_image, malicious_image, multiarch_index, multilayer_image, push_image, push_index,
    ConfigOverride, MaliciousKind, TestRegistry,
};
use locald_image::{Error, ImageStore, PullError, PullOptions, PullPolicy};

fn store() -> (tempfile::TempDir, ImageStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path().join("images")).unwrap();
    (dir, store)
}

fn options() -> PullOptions {
    PullOptions::default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_busybox_then_reuse_without_downloading() {
    let registry = TestRegistry::start();
    let overrides = ConfigOverride {
        env: Some(vec!["PATH=/bin".into(), "GREETING=hi".into()]),
        ..Default::default()
    };
    let image = busybox_image(&overrides).unwrap();
    push_image(registry.addr(), "tools/busybox:1", &image)
        .await
        .unwrap();
    let (_dir, store) = store();
    let reference = format!("{}/tools/busybox:1", registry.addr());

    let (stored, report) = store.pull(&reference, &options()).await.unwrap();
    assert_eq!(report.downloaded_blobs, 2, "config and one layer");
    assert_eq!(report.reused_blobs, 0);
    assert_eq!(stored.manifest_digest, image.manifest.digest);
    assert_eq!(stored.config.cmd, vec!["sh"]);
    assert_eq!(stored.config.env, vec!["PATH=/bin", "GREETING=hi"]);
    let output = std::process::Command::new("chroot")
        .arg(&stored.rootfs)
        .args([
            "/bin/sh",
            "-c",
            "echo hello from $(cat /etc/passwd | head -c 4)",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "hello from root\n");

    let (again, report) = store.pull(&reference, &options()).await.unwrap();
    assert_eq!(report.downloaded_blobs, 0, "second pull must not download");
    assert_eq!(report.reused_blobs, 2);
    assert_eq!(again.rootfs, stored.rootfs);

    let ensured = store
        .ensure(&reference, PullPolicy::Never, &options())
        .await
        .unwrap();
    assert_eq!(ensured.rootfs, stored.rootfs);
    // By digest, also through `ensure(Missing)` which must resolve locally.
    let pinned = format!(
        "{}/tools/busybox@{}",
        registry.addr(),
        image.manifest.digest
    );
    drop(registry);
    assert_eq!(
        store
            .ensure(&reference, PullPolicy::Missing, &options())
            .await
            .unwrap()
            .rootfs,
        stored.rootfs
    );
    assert!(store.resolve(&pinned).unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multilayer_whiteouts_are_applied() {
    let registry = TestRegistry::start();
    push_image(
        registry.addr(),
        "ml:latest",
        &multilayer_image(&ConfigOverride::default()).unwrap(),
    )
    .await
    .unwrap();
    let (_dir, store) = store();
    let (stored, report) = store
        .pull(&format!("{}/ml", registry.addr()), &options())
        .await
        .unwrap();
    assert_eq!(report.downloaded_blobs, 4);
    let root = &stored.rootfs;
    assert!(root.join("opt/kept.txt").is_file());
    assert!(!root.join("opt/gone.txt").exists());
    assert!(root.join("data/new.txt").is_file());
    assert!(!root.join("data/old").exists());
    assert!(!root.join("data/keep.txt").exists());
    assert!(
        root.join("etc/motd").is_file(),
        "written through /etc-alias -> /etc inside the rootfs"
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(root.join("link-to-kept")).unwrap().ino(),
        std::fs::metadata(root.join("opt/kept.txt")).unwrap().ino()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multiarch_index_resolves_to_the_host_platform() {
    let registry = TestRegistry::start();
    let index = multiarch_index().unwrap();
    push_index(registry.addr(), "multi:latest", &index)
        .await
        .unwrap();
    let (_dir, store) = store();
    let (stored, _) = store
        .pull(&format!("{}/multi", registry.addr()), &options())
        .await
        .unwrap();
    let host = locald_image::platform::host_architecture();
    assert_eq!(
        std::fs::read_to_string(stored.rootfs.join("platform")).unwrap(),
        format!("linux/{host}\n")
    );
    assert_eq!(stored.manifest_digest, index.images[1].manifest.digest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malicious_images_are_refused_and_nothing_is_stored() {
    let registry = TestRegistry::start();
    let (_dir, store) = store();
    for kind in MaliciousKind::ALL {
        let image = malicious_image(kind).unwrap();
        let tag = format!("evil:{}", kind.name());
        push_image(registry.addr(), &tag, &image).await.unwrap();
        let error = store
            .pull(&format!("{}/{tag}", registry.addr()), &options())
            .await
            .unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, Error::Unpack(_)), "{kind:?}: {message}");
        assert!(
            message.contains(kind.entry()) && message.contains(&image.layers[1].digest),
            "{message}"
        );
    }
    assert!(store.list().unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(store.root().join("rootfs"))
            .unwrap()
            .count(),
        0
    );
    assert!(!Path::new("/tmp/escaped-symlink").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_images_and_unreachable_registries_say_so() {
    let registry = TestRegistry::start();
    let (_dir, store) = store();
    let error = store
        .pull(&format!("{}/nothing:here", registry.addr()), &options())
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Pull(PullError::NotFound { .. })),
        "{error}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "image `{0}/nothing:here` not found in registry {0}",
            registry.addr()
        )
    );
    let never = store
        .ensure("never/pulled", PullPolicy::Never, &options())
        .await
        .unwrap_err();
    assert!(
        never.to_string().contains("not in the local store"),
        "{never}"
    );

    let addr = registry.addr().to_string();
    drop(registry);
    let error = store
        .pull(&format!("{addr}/gone:1"), &options())
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Pull(PullError::Registry { .. })),
        "{error}"
    );
}
