//! Pulling from a hostile registry (`hostile_registry.py`): endless or
//! oversized manifests, blobs longer than their descriptor, images with too
//! many layers or index entries. Each pull must fail at once with an error
//! naming the registry, the reference and the limit, read no more than the
//! limit, and leave nothing in the store.

use std::path::Path;

use sha2::Digest as _;

use locald_image::testing::{
    BlobMisbehaviour, BuiltImage, HostileRegistry, ImageBuilder, LayerBuilder, LayerCompression,
    ManifestMisbehaviour,
};
use locald_image::{Error, ImageStore, PullError, PullOptions, UnpackError, UnpackLimits};

/// What a pull may have read past a limit: TCP buffers on loopback hold a
/// few MiB. The servers send 256 MiB when nothing stops reading.
const SLACK: u64 = 32 << 20;

fn store() -> (tempfile::TempDir, ImageStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path().join("images")).unwrap();
    (dir, store)
}

fn small_image(name: &str) -> BuiltImage {
    let mut layer = LayerBuilder::new();
    layer.file(name, 0o644, name.as_bytes());
    ImageBuilder::new()
        .layer(layer.build(LayerCompression::Gzip))
        .build()
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<(std::path::PathBuf, u64)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let meta = std::fs::symlink_metadata(entry.path()).unwrap();
        if meta.is_dir() {
            found.extend(files(&entry.path()));
        } else {
            found.push((entry.path(), meta.len()));
        }
    }
    found
}

/// Nothing of a failed pull in the store: no ref, no rootfs, nothing staged,
/// no partial blob (blobs that were complete and verified may stay: they are
/// content-addressed, reused by the next pull and removed by `prune`).
fn assert_nothing_installed(data: &Path, store: &ImageStore) {
    assert!(store.list().unwrap().is_empty(), "a ref was recorded");
    let images = data.join("images");
    for dir in ["tmp", "rootfs"] {
        let left: Vec<_> = std::fs::read_dir(images.join(dir))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(left.is_empty(), "left in {dir}/: {left:?}");
    }
    for (path, _) in files(&images.join("blobs")) {
        let bytes = std::fs::read(&path).unwrap();
        let digest = hex::encode(sha2::Sha256::digest(&bytes));
        assert_eq!(
            path.file_name().unwrap().to_str().unwrap(),
            digest,
            "a partial or unverified blob was left"
        );
    }
}

/// Peak resident memory of this process, in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_or_oversized_manifest_fails_at_the_limit() {
    let registry = HostileRegistry::start();
    registry.misbehave_manifest("endless", ManifestMisbehaviour::Endless);
    registry.misbehave_manifest("huge", ManifestMisbehaviour::HugeLength);
    let (data, store) = store();
    for tag in ["endless", "huge"] {
        let reference = format!("{}/hostile/manifest:{tag}", registry.addr());
        let error = store
            .pull(&reference, &PullOptions::default())
            .await
            .unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(
                error,
                Error::Pull(PullError::DocumentTooLarge {
                    limit: locald_image::MAX_MANIFEST_BYTES,
                    ..
                })
            ),
            "{tag}: {message}"
        );
        assert!(
            message.contains(registry.addr())
                && message.contains(&reference)
                && message.contains("4194304 bytes"),
            "{tag}: {message}"
        );
        let sent = registry.wait_sent(&format!("/manifests/{tag}"));
        assert!(
            sent <= locald_image::MAX_MANIFEST_BYTES + SLACK,
            "{tag}: the registry could send {sent} bytes"
        );
        assert_nothing_installed(data.path(), &store);
    }
    // Buffering the 256 MiB the server offers would show here.
    assert!(
        peak_rss() < 128 << 20,
        "peak memory {} MiB",
        peak_rss() >> 20
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_longer_than_its_descriptor_is_cut_at_its_size() {
    for how in [
        BlobMisbehaviour::Overflow,
        BlobMisbehaviour::OverflowWithLength,
    ] {
        let registry = HostileRegistry::start();
        let image = small_image("overflowing");
        let layer = &image.layers[0];
        registry.serve_image("1", &image);
        registry.misbehave_blob(&layer.digest, how);
        let (data, store) = store();
        let reference = format!("{}/hostile/blob:1", registry.addr());
        let error = store
            .pull(&reference, &PullOptions::default())
            .await
            .unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, Error::Pull(PullError::BlobTooLong { .. })),
            "{how:?}: {message}"
        );
        let size = layer.bytes.len();
        assert!(
            message.contains(&layer.digest)
                && message.contains(&format!("more than the {size} bytes"))
                && message.contains(registry.addr()),
            "{how:?}: {message}"
        );
        let hex = layer.digest.strip_prefix("sha256:").unwrap();
        let sent = registry.wait_sent(hex);
        assert!(
            sent <= SLACK,
            "{how:?}: the registry could send {sent} bytes"
        );
        // The config (fetched at the same time) may be stored whole; nothing
        // is larger than what the manifest declares.
        let declared = size.max(image.config.bytes.len()) as u64;
        for (path, len) in files(data.path()) {
            assert!(
                len <= declared || path.ends_with("refs.json"),
                "{how:?}: {} has {len} bytes",
                path.display()
            );
        }
        assert_nothing_installed(data.path(), &store);
    }
}

/// A manifest naming `layers` (all served) and a config of `config_size`.
fn manifest_with(registry: &HostileRegistry, layers: usize, config_size: Option<u64>) -> Vec<u8> {
    let mut builder = ImageBuilder::new();
    for i in 0..layers {
        let mut layer = LayerBuilder::new();
        layer.file(&format!("f{i}"), 0o644, b"x");
        builder = builder.layer(layer.build(LayerCompression::None));
    }
    let image = builder.build();
    registry.serve_image("unused", &image);
    let mut manifest: serde_json::Value = serde_json::from_slice(&image.manifest.bytes).unwrap();
    if let Some(size) = config_size {
        manifest["config"]["size"] = size.into();
    }
    serde_json::to_vec(&manifest).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_layers_index_entries_or_bytes_are_refused() {
    let registry = HostileRegistry::start();
    let (data, store) = store();
    let pull = |tag: &'static str| {
        let store = store.clone();
        let reference = format!("{}/hostile/limits:{tag}", registry.addr());
        async move { store.pull(&reference, &PullOptions::default()).await }
    };

    let layers = locald_image::MAX_LAYERS + 1;
    registry.serve_manifest("layers", &manifest_with(&registry, layers, None));
    let message = pull("layers").await.unwrap_err().to_string();
    assert!(
        message.contains(&format!("has {layers} layers, more than the 128")),
        "{message}"
    );

    let config_size = locald_image::MAX_CONFIG_BYTES + 1;
    registry.serve_manifest("config", &manifest_with(&registry, 1, Some(config_size)));
    let message = pull("config").await.unwrap_err().to_string();
    assert!(
        message.contains(&format!("has {config_size} config bytes")),
        "{message}"
    );

    // An index whose entries all point at a good image: too many of them.
    let image = small_image("indexed");
    registry.serve_image("good", &image);
    let entry = serde_json::json!({
        "mediaType": image.manifest.media_type,
        "digest": image.manifest.digest,
        "size": image.manifest.bytes.len(),
        "platform": {"architecture": image.platform.architecture, "os": "linux"},
    });
    let entries = locald_image::MAX_INDEX_MANIFESTS + 1;
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": vec![entry; entries],
    });
    registry.serve_manifest("index", &serde_json::to_vec(&index).unwrap());
    let message = pull("index").await.unwrap_err().to_string();
    assert!(
        message.contains(&format!("has {entries} index entries, more than the 256")),
        "{message}"
    );
    assert_nothing_installed(data.path(), &store);

    // The same image, pulled directly, is fine: the limits are not in the way.
    let reference = format!("{}/hostile/limits:good", registry.addr());
    store
        .pull(&reference, &PullOptions::default())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_unpacking_past_the_bound_is_refused_and_removed() {
    let registry = HostileRegistry::start();
    let mut layer = LayerBuilder::new();
    layer
        .file("small", 0o644, &[1u8; 100])
        .file("big", 0o644, &[2u8; 4000]);
    let image = ImageBuilder::new()
        .layer(layer.build(LayerCompression::Gzip))
        .build();
    registry.serve_image("1", &image);
    let limits = UnpackLimits {
        max_bytes: 1000,
        ..UnpackLimits::default()
    };
    let (data, store) = store();
    let store = store.with_unpack_limits(limits);

    // Pulled (unpacked while downloading) ...
    let reference = format!("{}/hostile/big:1", registry.addr());
    let error = store
        .pull(&reference, &PullOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            &error,
            Error::Unpack(UnpackError::TooLarge { entry, limit: 1000, .. }) if entry == "big"
        ),
        "{error}"
    );
    assert_nothing_installed(data.path(), &store);

    // ... or imported (unpacked after): the same bound, the same cleanup.
    let layout = tempfile::tempdir().unwrap();
    image.write_layout(layout.path(), "local/big:1").unwrap();
    let error = store
        .import_oci_layout(layout.path(), Some("local/big:1"))
        .unwrap_err();
    assert!(
        matches!(&error, Error::Unpack(UnpackError::TooLarge { .. })),
        "{error}"
    );
    assert_nothing_installed(data.path(), &store);

    // Within the default bounds the same image installs.
    let (_other, store) = self::store();
    store
        .pull(&reference, &PullOptions::default())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_error_body_for_a_blob_is_not_buffered() {
    let registry = HostileRegistry::start();
    let image = small_image("erroring");
    registry.serve_image("1", &image);
    registry.misbehave_blob(&image.layers[0].digest, BlobMisbehaviour::EndlessError);
    let (data, store) = store();
    let reference = format!("{}/hostile/error:1", registry.addr());
    let error = store
        .pull(&reference, &PullOptions::default())
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, Error::Pull(PullError::Blob { .. })) && message.contains("HTTP 500"),
        "{message}"
    );
    assert!(message.len() < 8192, "the whole body in the message");
    let hex = image.layers[0].digest.strip_prefix("sha256:").unwrap();
    let sent = registry.wait_sent(hex);
    assert!(sent <= SLACK, "the registry could send {sent} bytes");
    assert_nothing_installed(data.path(), &store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_are_fetched_and_renewed_when_they_expire() {
    let registry = HostileRegistry::start();
    registry.require_tokens();
    let mut builder = ImageBuilder::new();
    for i in 0..3 {
        let mut layer = LayerBuilder::new();
        layer.file(&format!("f{i}"), 0o644, b"x");
        builder = builder.layer(layer.build(LayerCompression::Gzip));
    }
    let image = builder.build();
    registry.serve_image("1", &image);
    let (_data, store) = store();
    let reference = format!("{}/hostile/auth:1", registry.addr());
    let (stored, report) = store
        .pull(&reference, &PullOptions::default())
        .await
        .unwrap();
    assert_eq!(stored.manifest_digest, image.manifest.digest);
    assert_eq!(report.downloaded_blobs, 4);
    // One token for the manifest and a blob, then renewals for the rest.
    assert!(
        registry.wait_responses("/token", 2) >= 2,
        "the token was never renewed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_token_answer_is_not_buffered() {
    let registry = HostileRegistry::start();
    registry.require_tokens();
    registry.endless_tokens();
    registry.serve_image("1", &small_image("token"));
    let (data, store) = store();
    let reference = format!("{}/hostile/token:1", registry.addr());
    let error = store
        .pull(&reference, &PullOptions::default())
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, Error::Pull(PullError::Registry { .. }))
            && message.contains("token answer")
            && message.contains("larger than 1048576 bytes"),
        "{message}"
    );
    let sent = registry.wait_sent("service=hostile");
    assert!(sent <= SLACK, "the token endpoint could send {sent} bytes");
    assert_nothing_installed(data.path(), &store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_that_stalls_mid_blob_fails_the_pull() {
    let registry = HostileRegistry::start();
    let image = small_image("stalling");
    registry.serve_image("1", &image);
    registry.misbehave_blob(&image.layers[0].digest, BlobMisbehaviour::Stall);
    let (data, store) = store();
    let reference = format!("{}/hostile/stall:1", registry.addr());
    // The production default is a minute of silence; a short one keeps
    // the test fast (it only decides when the stall counts as one).
    let options = PullOptions {
        idle_timeout: Some(std::time::Duration::from_secs(2)),
        ..PullOptions::default()
    };
    let error = store.pull(&reference, &options).await.unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, Error::Pull(PullError::Blob { .. })) && message.contains("timed out"),
        "{message}"
    );
    assert_nothing_installed(data.path(), &store);
}
