//! The layer cache between two `locald build`s of the same source and tag: the second
//! restores the cached layers and the previous image's layer metadata, the fixture's
//! buildpack reuses its layer, and every layer of the image is the one it was; `image
//! prune` clears the cache, and a cold build then is the first image again.

use locald_image::testing::TestRegistry;
use locald_image::ImageStore;

use crate::builds::push_fixture_builder;
use crate::cnb_images::{container_run, with_store};
use crate::harness::Project;

/// The layer digests of the image stored as `tag` in the store under `data`.
fn layer_digests(data: &std::path::Path, tag: &str) -> Vec<String> {
    let store = ImageStore::open(data.join("images")).unwrap();
    let image = store.resolve(tag).unwrap().expect("the built image");
    let hex = &image.manifest_digest["sha256:".len()..];
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.blobs_dir().join(hex)).unwrap()).unwrap();
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_second_build_restores_the_cache_and_reuses_every_layer() {
    let registry = TestRegistry::start();
    let builder = push_fixture_builder(&registry);
    let project = Project::new();
    project.write("Procfile", "web: serve\n");
    project.write("static/index.html", "<h1>cached 979201</h1>\n");
    let data = tempfile::tempdir().expect("data dir");
    let data = data.path();
    let tag = "site:979202";
    let build = || {
        let args = ["build", "--builder", builder.as_str(), "--tag", tag];
        with_store(project.locald(args), data).env("SOURCE_DATE_EPOCH", "1700000000")
    };

    let first = build().success();
    first
        .stdout_has("building httpd\n")
        .stdout_has("Adding layer 'test/httpd:httpd'\n");
    assert!(!first.stdout.contains("from cache"), "{}", first.stdout);
    let first_layers = layer_digests(data, tag);

    let second = build().success();
    second
        .stdout_has("===> RESTORING\n")
        .stdout_has("Restoring data for test/httpd:httpd from cache\n")
        .stdout_has("Restoring data for test/httpd:counter from cache\n")
        .stdout_has("Restoring metadata for test/httpd:launch-only from the previous image\n")
        .stdout_has("reusing httpd\n")
        .stdout_has("reusing launch-only\n")
        .stdout_has("Reusing layer 'test/httpd:httpd'\n")
        .stdout_has("reused 7 of 7 layers from the previous image\n");
    assert!(
        !second.stdout.contains("building httpd"),
        "{}",
        second.stdout
    );
    assert_eq!(layer_digests(data, tag), first_layers);
    // The image built from restored layers runs.
    let greet = ["--entrypoint", "/cnb/process/greet", tag];
    assert_eq!(container_run(&project, data, &greet), "hello world\n");

    // Without the image and its cache, the build is a first build again.
    with_store(project.locald(["image", "rm", tag]), data).success();
    let pruned = with_store(project.locald(["image", "prune"]), data).success();
    pruned.stderr_has("cleared 1 build caches (");
    let cold = build().success();
    cold.stdout_has("building httpd\n");
    assert_eq!(layer_digests(data, tag), first_layers);
    let digest = |stdout: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with("built "))
            .map(str::to_string)
    };
    assert_eq!(
        digest(&cold.stdout),
        digest(&first.stdout),
        "SOURCE_DATE_EPOCH: a cold build is the first image again"
    );
}
