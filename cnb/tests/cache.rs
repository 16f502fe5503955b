//! The layer cache between two builds with the fixture builder (`test/httpd`'s `httpd`
//! launch+build+cache layer, its cache-only `counter`, its `launch-only` layer and its
//! `store.toml`): written after an export, restored before the next build, and what the
//! second build and export make of it; and restores that must leave layers out.

mod support;

use std::path::{Path, PathBuf};

use locald_cnb::build::BuildMetadata;
use locald_cnb::cache::{
    restore, write_cache, CacheError, CacheInput, LayersMetadata, RestoreInput, Restored,
};
use locald_cnb::export::layer::Owner;
use locald_cnb::export::{Exported, LABEL_LIFECYCLE};
use locald_image::testing::{CnbBuilder, LayerBuilder, LayerCompression};
use support::{export, layout_image, ExportOptions, HostBuild};

const EPOCH: u64 = 1_700_000_000;
const OWNER: Owner = Owner {
    uid: 1000,
    gid: 1000,
};

fn extract(tar: &Path, into: &Path) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let file = std::fs::File::open(tar)?;
    locald_image::unpack_archive("cache", file, into, locald_image::UnpackLimits::default())?;
    Ok(())
}

fn launcher(dir: &Path) -> PathBuf {
    let path = dir.join("launcher-binary");
    std::fs::write(&path, b"#!/bin/sh\necho launcher\n").unwrap();
    path
}

/// One build's results: the export and the cache it wrote.
struct Built {
    out: PathBuf,
    exported: Exported,
    cache: PathBuf,
    metadata: BuildMetadata,
    log: String,
}

impl Built {
    fn label(&self) -> LayersMetadata {
        let label = self.exported.config["config"]["Labels"][LABEL_LIFECYCLE]
            .as_str()
            .unwrap();
        LayersMetadata::from_json(label).unwrap()
    }

    fn cache_metadata(&self) -> LayersMetadata {
        LayersMetadata::read_cache(&self.cache).unwrap().unwrap()
    }

    fn digests(&self) -> Vec<(String, String)> {
        self.exported
            .layers
            .iter()
            .map(|l| (l.name.clone(), l.digest.clone()))
            .collect()
    }
}

/// Builds and exports (with `previous` as the previous image) into `<name>/`, and writes
/// the cache into `<name>-cache/`.
fn build_and_cache(build: &HostBuild, name: &str, previous: Option<&Built>) -> Built {
    let (metadata, log) = build.build();
    let out = build.path().join(name);
    let previous_image = previous.map(|p| layout_image(&p.out, &p.exported));
    let exported = export(
        build,
        &metadata,
        &out,
        &launcher(build.path()),
        ExportOptions {
            previous: previous_image.as_ref(),
            epoch: Some(EPOCH),
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let cache = build.path().join(format!("{name}-cache"));
    std::fs::create_dir(&cache).unwrap();
    let input = CacheInput {
        metadata: &metadata,
        exported: &exported,
        image_blobs: &out.join("blobs/sha256"),
        owner: OWNER,
    };
    write_cache(&input, &cache).unwrap();
    Built {
        out,
        exported,
        cache,
        metadata,
        log,
    }
}

/// The site built, exported and cached once, as `first`.
fn first_build() -> (HostBuild, Built) {
    let build = HostBuild::new(CnbBuilder::Httpd);
    build.site_app();
    let first = build_and_cache(&build, "first", None);
    (build, first)
}

/// Restores `previous` (its image and, if `with_cache`, its cache) into the build's layers.
fn restore_from(build: &HostBuild, previous: &Built, with_cache: bool) -> Restored {
    let label = previous.label();
    let cache = previous.cache_metadata();
    let input = RestoreInput {
        layers: &build.dirs.layers,
        previous: Some(&label),
        cache: with_cache.then_some((previous.cache.as_path(), &cache)),
    };
    restore(&input, &extract).unwrap()
}

/// The count in test/httpd's cache-only `counter` layer.
fn counter(build: &HostBuild) -> String {
    read(build.layer("test_httpd", "counter").join("count"))
        .trim()
        .to_string()
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_cache_holds_cache_layers_by_diff_id_with_their_metadata() {
    let (build, first) = first_build();
    let cached = first.cache_metadata();
    assert_eq!(cached.buildpacks.len(), 1, "only test/httpd caches");
    let httpd_bp = &cached.buildpacks[0];
    assert_eq!(
        (httpd_bp.key.as_str(), httpd_bp.version.as_str()),
        ("test/httpd", "0.0.1")
    );
    let names: Vec<&str> = httpd_bp.layers.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["counter", "httpd"],
        "launch-only and scratch are not cached"
    );
    let httpd = &httpd_bp.layers["httpd"];
    assert!(httpd.types.launch && httpd.types.build && httpd.types.cache);
    assert_eq!(httpd.data["version"].as_str(), Some("1"));
    // The launch+cache layer's tar is the image's layer.
    let image_httpd = first
        .exported
        .layers
        .iter()
        .find(|l| l.name == "test/httpd:httpd")
        .unwrap();
    assert_eq!(httpd.sha, image_httpd.digest);
    let counter = &httpd_bp.layers["counter"];
    assert!(counter.types.cache && !counter.types.launch && !counter.types.build);
    for layer in [httpd, counter] {
        let tar = first.cache.join(&layer.sha["sha256:".len()..]);
        let bytes = std::fs::read(&tar).unwrap();
        let digest = format!("sha256:{}", hex_digest(&bytes));
        assert_eq!(digest, layer.sha, "named by its diffID");
    }
    let mut files: Vec<String> = std::fs::read_dir(&first.cache)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files.len(), 3, "two tars and the metadata: {files:?}");
    assert!(files.contains(&"metadata.json".to_string()));
    assert!(first.log.contains("building httpd"), "{}", first.log);

    // A cache layer whose directory is gone cannot be cached.
    std::fs::remove_dir_all(build.layer("test_httpd", "counter")).unwrap();
    let empty = build.path().join("empty-cache");
    std::fs::create_dir(&empty).unwrap();
    let input = CacheInput {
        metadata: &first.metadata,
        exported: &first.exported,
        image_blobs: &first.out.join("blobs/sha256"),
        owner: OWNER,
    };
    let error = write_cache(&input, &empty).unwrap_err();
    assert!(
        matches!(error, CacheError::EmptyLayer { ref layer, .. } if layer == "counter"),
        "{error}"
    );
}

fn hex_digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn a_rebuild_reuses_cached_and_launch_layers_and_keeps_the_digests() {
    let (build, first) = first_build();

    let restored = restore_from(&build, &first, true);
    assert_eq!(
        restored.from_cache,
        ["test/httpd:httpd", "test/httpd:counter"]
    );
    assert_eq!(restored.metadata_only, ["test/httpd:launch-only"]);
    assert_eq!(restored.stores, ["test/httpd"]);
    assert!(restored.dropped.is_empty(), "{:?}", restored.dropped);
    // Metadata only, no [types]; contents from the cache; launch-only has no directory.
    let httpd_toml = read(build.layers_toml("httpd"));
    assert!(
        httpd_toml.contains("version = \"1\"") && !httpd_toml.contains("types"),
        "{httpd_toml}"
    );
    assert!(build
        .layer("test_httpd", "httpd")
        .join("bin/serve")
        .is_file());
    assert_eq!(counter(&build), "1");
    assert!(build.layers_toml("launch-only").is_file());
    assert!(!build.layer("test_httpd", "launch-only").exists());
    assert!(!build.layers_toml("scratch").exists());

    let second = build_and_cache(&build, "second", Some(&first));
    assert!(second.log.contains("reusing httpd"), "{}", second.log);
    assert!(second.log.contains("reusing launch-only"), "{}", second.log);
    assert!(!second.log.contains("building httpd"), "{}", second.log);
    assert_eq!(counter(&build), "2");
    assert_eq!(
        second.label().buildpacks[0]
            .store
            .as_ref()
            .unwrap()
            .metadata["builds"]
            .as_integer(),
        Some(2)
    );
    // Every layer has the digest it had; launch-only came from the previous image.
    assert_eq!(second.digests(), first.digests());
    let launch_only = second
        .exported
        .layers
        .iter()
        .find(|l| l.name == "test/httpd:launch-only")
        .unwrap();
    assert!(launch_only.reused);
    // Only the store's count differs, in the label: the image is otherwise the same.
    assert_ne!(
        second.exported.manifest_digest,
        first.exported.manifest_digest
    );

    // An edited page changes the slice and nothing else.
    build.app_file("static/index.html", "<h1>changed</h1>\n");
    restore_from(&build, &second, true);
    let third = build_and_cache(&build, "third", Some(&second));
    let changed: Vec<&str> = first
        .exported
        .layers
        .iter()
        .zip(&third.exported.layers)
        .filter(|(a, b)| a.digest != b.digest)
        .map(|(a, _)| a.name.as_str())
        .collect();
    assert_eq!(changed, ["slice:0"]);
    assert_eq!(counter(&build), "3");
}

#[test]
fn a_wiped_cache_rebuilds_httpd_and_restarts_the_counter() {
    let (build, first) = first_build();
    let restored = restore_from(&build, &first, false);
    assert!(restored.from_cache.is_empty());
    // httpd is launch+cache: without the cache its metadata is not restored either.
    assert!(!build.layers_toml("httpd").exists());
    assert_eq!(restored.metadata_only, ["test/httpd:launch-only"]);
    let second = build_and_cache(&build, "second", Some(&first));
    assert!(second.log.contains("building httpd"), "{}", second.log);
    assert_eq!(counter(&build), "1");
    assert_eq!(
        second.digests(),
        first.digests(),
        "a rebuilt httpd is the same layer"
    );
}

#[test]
fn httpd_is_rebuilt_when_its_restored_metadata_has_another_version() {
    let (build, first) = first_build();
    // The previous build's httpd layer says version 0: the buildpack's check fails.
    let mut label = first.label();
    let httpd = label.buildpacks[0].layers.get_mut("httpd").unwrap();
    httpd.data.insert("version".into(), "0".into());
    let cache = first.cache_metadata();
    let input = RestoreInput {
        layers: &build.dirs.layers,
        previous: Some(&label),
        cache: Some((first.cache.as_path(), &cache)),
    };
    let restored = restore(&input, &extract).unwrap();
    assert!(restored
        .from_cache
        .contains(&"test/httpd:httpd".to_string()));
    assert!(read(build.layers_toml("httpd")).contains("version = \"0\""));
    let (_, log) = build.build();
    assert!(log.contains("building httpd"), "{log}");
    assert!(!log.contains("reusing httpd"), "{log}");
}

#[test]
fn restore_drops_layers_the_cache_cannot_give_and_never_writes_outside_them() {
    let (build, first) = first_build();
    let label = first.label();
    let mut cache = first.cache_metadata();
    let layers = &mut cache.buildpacks[0].layers;

    // httpd: the cache says another sha than the image.
    layers.get_mut("httpd").unwrap().sha = format!("sha256:{}", "0".repeat(64));
    // counter: its tar is replaced by a hostile one, with the layer and things beside it.
    let counter_tar = first.cache.join(&layers["counter"].sha["sha256:".len()..]);
    let mut hostile = LayerBuilder::new();
    hostile
        .dir("layers", 0o755)
        .dir("layers/test_httpd", 0o755)
        .dir("layers/test_httpd/counter", 0o755)
        .file("layers/test_httpd/counter/count", 0o644, b"41\n")
        .dir("workspace", 0o755)
        .file("workspace/planted", 0o644, b"x")
        .file(
            "layers/test_httpd/planted.toml",
            0o644,
            b"[types]\nlaunch = true\n",
        );
    std::fs::write(&counter_tar, hostile.build(LayerCompression::None).bytes).unwrap();
    // A stale file in the layers directory: restore starts from an empty one.
    std::fs::write(build.dirs.layers.join("stale"), "x").unwrap();

    let input = RestoreInput {
        layers: &build.dirs.layers,
        previous: Some(&label),
        cache: Some((first.cache.as_path(), &cache)),
    };
    let restored = restore(&input, &extract).unwrap();
    assert_eq!(
        restored.dropped,
        [("test/httpd:httpd".to_string(), "wrong sha".to_string())]
    );
    assert!(!build.layers_toml("httpd").exists() && !build.layer("test_httpd", "httpd").exists());
    assert_eq!(restored.from_cache, ["test/httpd:counter"]);
    assert_eq!(
        read(build.layer("test_httpd", "counter").join("count")),
        "41\n"
    );
    assert!(!build.dirs.layers.join("stale").exists());
    assert!(!build.layers_toml("planted").exists());
    assert!(!build.dirs.app.join("planted").exists());
    let left: Vec<String> = std::fs::read_dir(&build.dirs.layers)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["test_httpd"], "no scratch directory is left");

    // A tar that climbs out through a link is refused: the layer is dropped, nothing written.
    let mut escape = LayerBuilder::new();
    escape
        .dir("layers", 0o755)
        .dir("layers/test_httpd", 0o755)
        .symlink("layers/test_httpd/counter", "../../../..")
        .file("layers/test_httpd/counter/escaped-from-cache", 0o644, b"x");
    std::fs::write(&counter_tar, escape.build(LayerCompression::None).bytes).unwrap();
    let restored = restore(&input, &extract).unwrap();
    let (name, reason) = &restored.dropped[1];
    assert_eq!(name, "test/httpd:counter");
    assert!(reason.contains("escapes"), "{reason}");
    assert!(!build.layers_toml("counter").exists());
    assert!(!build.path().join("escaped-from-cache").exists());
}
