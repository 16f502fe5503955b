//! The exporter over real builds with the fixture builder: layer order and tar headers,
//! the image config and `io.buildpacks.*` labels, reproducible digests, reuse of a launch
//! layer from the previous image, and an import of the result into the image store.

mod support;

use std::io::Read as _;
use std::path::Path;

use locald_cnb::export::{ExportError, Exported};
use locald_image::testing::CnbBuilder;
use serde_json::Value;
use support::{export, layout_image, ExportOptions, HostBuild};

/// One tar entry: path, kind, mode, uid, gid, mtime, link target.
#[derive(Debug)]
struct Entry {
    path: String,
    kind: tar::EntryType,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    link: Option<String>,
}

fn entries(out: &Path, digest: &str) -> Vec<Entry> {
    let blob = out.join("blobs/sha256").join(&digest["sha256:".len()..]);
    let mut archive = tar::Archive::new(std::fs::File::open(blob).unwrap());
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let header = e.header().clone();
            let mut content = Vec::new();
            e.read_to_end(&mut content).unwrap();
            Entry {
                path: e
                    .path()
                    .unwrap()
                    .to_string_lossy()
                    .trim_end_matches('/')
                    .to_string(),
                kind: header.entry_type(),
                mode: header.mode().unwrap(),
                uid: header.uid().unwrap(),
                gid: header.gid().unwrap(),
                mtime: header.mtime().unwrap(),
                link: e
                    .link_name()
                    .unwrap()
                    .map(|l| l.to_string_lossy().into_owned()),
            }
        })
        .collect()
}

fn paths(out: &Path, digest: &str) -> Vec<String> {
    entries(out, digest).into_iter().map(|e| e.path).collect()
}

fn layer<'a>(exported: &'a Exported, name: &str) -> &'a str {
    &exported
        .layers
        .iter()
        .find(|l| l.name == name)
        .unwrap_or_else(|| panic!("{name}: {:?}", exported.layers))
        .digest
}

fn label(exported: &Exported, key: &str) -> Value {
    serde_json::from_str(exported.config["config"]["Labels"][key].as_str().unwrap()).unwrap()
}

fn fake_launcher(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("launcher-binary");
    std::fs::write(&path, b"#!/bin/sh\necho launcher\n").unwrap();
    path
}

#[test]
fn export_lays_out_layers_headers_config_and_labels() {
    let build = HostBuild::new(CnbBuilder::Httpd);
    build.site_app();
    let (metadata, _) = build.build();
    let out = build.path().join("out");
    let launcher = fake_launcher(build.path());
    let exported = export(&build, &metadata, &out, &launcher, ExportOptions::default()).unwrap();

    let names: Vec<&str> = exported.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "test/httpd:httpd",
            "test/httpd:launch-only",
            "slice:0",
            "app",
            "launcher",
            "config",
            "process-types"
        ]
    );
    let diff_ids = exported.config["rootfs"]["diff_ids"].as_array().unwrap();
    assert_eq!(
        diff_ids.len(),
        1 + names.len(),
        "the run image's one layer, then ours"
    );

    let httpd = entries(&out, layer(&exported, "test/httpd:httpd"));
    let serve = httpd
        .iter()
        .find(|e| e.path == "layers/test_httpd/httpd/bin/serve")
        .unwrap();
    assert_eq!(
        (serve.mode, serve.uid, serve.gid, serve.mtime),
        (0o755, 1000, 1000, 315_532_801)
    );
    assert_eq!(serve.kind, tar::EntryType::Regular);
    let httpd_paths: Vec<&str> = httpd.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        &httpd_paths[..3],
        ["layers", "layers/test_httpd", "layers/test_httpd/httpd"]
    );
    let mut sorted = httpd_paths.clone();
    sorted.sort_by(|a, b| a.split('/').cmp(b.split('/')));
    assert_eq!(httpd_paths, sorted, "entries are sorted");
    assert!(httpd
        .iter()
        .all(|e| e.mtime == 315_532_801 && e.uid == 1000));
    for (name, digest) in exported.layers.iter().map(|l| (&l.name, &l.digest)) {
        for path in paths(&out, digest) {
            assert!(
                !path.ends_with(".toml") || path == "layers/config/metadata.toml",
                "{name}: {path}"
            );
            assert!(
                !path.contains("counter") && !path.contains("scratch"),
                "{name}: {path}"
            );
        }
    }

    let slice = paths(&out, layer(&exported, "slice:0"));
    assert!(
        slice.contains(&"workspace/static/index.html".to_string()),
        "{slice:?}"
    );
    assert!(
        !slice.contains(&"workspace/Procfile".to_string()),
        "{slice:?}"
    );
    let app = paths(&out, layer(&exported, "app"));
    assert!(app.contains(&"workspace/Procfile".to_string()), "{app:?}");
    assert!(
        !app.iter().any(|p| p.starts_with("workspace/static/")),
        "{app:?}"
    );

    let launcher_entries = entries(&out, layer(&exported, "launcher"));
    let binary = launcher_entries.last().unwrap();
    assert_eq!(
        (binary.path.as_str(), binary.mode, binary.uid),
        ("cnb/lifecycle/launcher", 0o755, 0)
    );
    let types = entries(&out, layer(&exported, "process-types"));
    let links: Vec<(&str, Option<&str>)> = types
        .iter()
        .filter(|e| e.kind == tar::EntryType::Symlink)
        .map(|e| (e.path.as_str(), e.link.as_deref()))
        .collect();
    assert_eq!(
        links,
        [
            ("cnb/process/env-dump", Some("/cnb/lifecycle/launcher")),
            ("cnb/process/greet", Some("/cnb/lifecycle/launcher")),
            ("cnb/process/web", Some("/cnb/lifecycle/launcher")),
        ]
    );

    let config = &exported.config["config"];
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/cnb/process/web"])
    );
    assert_eq!(config["WorkingDir"], "/workspace");
    assert_eq!(config["User"], "1000:1000");
    assert!(config.get("Cmd").is_none());
    let env: Vec<&str> = config["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        env.contains(&"CNB_LAYERS_DIR=/layers") && env.contains(&"CNB_APP_DIR=/workspace"),
        "{env:?}"
    );
    let path = env.iter().find(|e| e.starts_with("PATH=")).unwrap();
    assert!(
        path.starts_with("PATH=/cnb/process:/cnb/lifecycle:/usr/local/sbin"),
        "{path}"
    );
    assert_eq!(exported.config["created"], "1980-01-01T00:00:01Z");
    assert_eq!(config["Labels"]["io.test.httpd"], "yes");

    let lifecycle = label(&exported, "io.buildpacks.lifecycle.metadata");
    let httpd_bp = &lifecycle["buildpacks"][0];
    assert_eq!(httpd_bp["key"], "test/httpd");
    assert_eq!(httpd_bp["layers"]["httpd"]["data"]["version"], "1");
    assert_eq!(
        httpd_bp["layers"]["httpd"]["sha"],
        layer(&exported, "test/httpd:httpd")
    );
    assert_eq!(httpd_bp["layers"]["httpd"]["cache"], true);
    assert_eq!(httpd_bp["store"]["metadata"]["builds"], 1);
    assert_eq!(lifecycle["launcher"]["sha"], layer(&exported, "launcher"));
    assert_eq!(
        lifecycle["app"].as_array().unwrap().len(),
        2,
        "the slice and the app"
    );
    assert_eq!(
        lifecycle["runImage"]["reference"],
        build.run_image.manifest_digest
    );
    let build_label = label(&exported, "io.buildpacks.build.metadata");
    let web = build_label["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["type"] == "web")
        .unwrap();
    assert_eq!(web["buildpackID"], "test/procfile");
    assert_eq!(web["command"], serde_json::json!(["sh", "-c", "serve"]));
    assert_eq!(
        label(&exported, "io.buildpacks.project.metadata"),
        serde_json::json!({})
    );

    // The layout imports into the store like any image, its rootfs the app.
    let stored = build
        .store
        .import_oci_layout(&out, Some("localhost/app:1"))
        .unwrap();
    assert_eq!(stored.manifest_digest, exported.manifest_digest);
    assert_eq!(stored.config.entrypoint, ["/cnb/process/web"]);
    let rootfs = &stored.rootfs;
    assert!(rootfs.join("layers/test_httpd/httpd/bin/serve").is_file());
    assert!(rootfs.join("workspace/static/index.html").is_file());
    assert!(rootfs.join("layers/config/metadata.toml").is_file());
    assert_eq!(
        std::fs::read_link(rootfs.join("cnb/process/greet")).unwrap(),
        Path::new("/cnb/lifecycle/launcher")
    );
}

#[test]
fn the_same_build_exports_to_the_same_digests() {
    let build = HostBuild::new(CnbBuilder::Httpd);
    build.site_app();
    let (metadata, _) = build.build();
    let launcher = fake_launcher(build.path());
    // An export into `dir` at time `epoch`.
    let at = |metadata, dir: &str, epoch| {
        let options = ExportOptions {
            epoch: Some(epoch),
            ..Default::default()
        };
        export(
            &build,
            metadata,
            &build.path().join(dir),
            &launcher,
            options,
        )
        .unwrap()
    };
    let first = at(&metadata, "a", 1_700_000_000);
    let second = at(&metadata, "b", 1_700_000_000);
    assert_eq!(first.manifest_digest, second.manifest_digest);
    assert_eq!(first.layers, second.layers);
    assert_eq!(first.config["created"], "2023-11-14T22:13:20Z");
    let serve = entries(&build.path().join("a"), layer(&first, "test/httpd:httpd"))
        .into_iter()
        .find(|e| e.path.ends_with("bin/serve"))
        .unwrap();
    assert_eq!(serve.mtime, 1_700_000_000);

    // What the build left, read back as an exporter elsewhere would, exports the same.
    let read =
        locald_cnb::build::read_built(&build.dirs.layers, &locald_cnb::Limits::DEFAULT).unwrap();
    assert_eq!(
        at(&read, "r", 1_700_000_000).manifest_digest,
        first.manifest_digest
    );

    // Another time is another image, with the same layer contents otherwise.
    assert_ne!(
        at(&metadata, "c", 1_700_000_001).manifest_digest,
        first.manifest_digest
    );

    // A changed page changes the slice and nothing else of the app.
    build.app_file("static/index.html", "<h1>changed</h1>\n");
    let edited = at(&metadata, "d", 1_700_000_000);
    let changed: Vec<&str> = first
        .layers
        .iter()
        .zip(&edited.layers)
        .filter(|(a, b)| a.digest != b.digest)
        .map(|(a, _)| a.name.as_str())
        .collect();
    assert_eq!(changed, ["slice:0"]);
}

#[test]
fn a_launch_layer_without_its_directory_is_reused_from_the_previous_image() {
    let build = HostBuild::new(CnbBuilder::Httpd);
    build.site_app();
    let (metadata, _) = build.build();
    let launcher = fake_launcher(build.path());
    let first_out = build.path().join("first");
    let first = export(
        &build,
        &metadata,
        &first_out,
        &launcher,
        ExportOptions::default(),
    )
    .unwrap();

    // A rebuild in which the buildpack kept only `launch-only.toml`: the layer comes from
    // the previous image, by the digest its label recorded.
    std::fs::remove_dir_all(build.layer("test_httpd", "launch-only")).unwrap();
    let previous = layout_image(&first_out, &first);
    let label = locald_cnb::export::lifecycle_label(&previous)
        .unwrap()
        .unwrap();
    assert_eq!(label["buildpacks"][0]["key"], "test/httpd");
    assert_eq!(
        label["buildpacks"][0]["layers"]["launch-only"]["sha"],
        layer(&first, "test/httpd:launch-only")
    );
    let second_out = build.path().join("second");
    let second = export(
        &build,
        &metadata,
        &second_out,
        &launcher,
        ExportOptions {
            previous: Some(&previous),
            ..Default::default()
        },
    )
    .unwrap();
    let reused = second
        .layers
        .iter()
        .find(|l| l.name == "test/httpd:launch-only")
        .unwrap();
    assert!(reused.reused);
    assert_eq!(reused.digest, layer(&first, "test/httpd:launch-only"));
    assert!(
        !second
            .layers
            .iter()
            .find(|l| l.name == "test/httpd:httpd")
            .unwrap()
            .reused
    );
    assert_eq!(
        second.manifest_digest, first.manifest_digest,
        "nothing else changed"
    );
    assert!(second_out
        .join("blobs/sha256")
        .join(&reused.digest["sha256:".len()..])
        .is_file());

    let error = export(
        &build,
        &metadata,
        &build.path().join("third"),
        &launcher,
        ExportOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(error, ExportError::NoPreviousLayer { ref layer, .. } if layer == "launch-only"),
        "{error}"
    );
}

/// `CNB_PROCESS_TYPE` picks the entrypoint (an unknown one is an error), the project
/// metadata becomes its label, and links and special files in the app are handled: a
/// link is exported as a link, a FIFO is refused by name.
#[test]
fn process_type_project_metadata_links_and_special_files() {
    let build = HostBuild::new(CnbBuilder::Httpd);
    build.site_app();
    let (metadata, _) = build.build();
    let launcher = fake_launcher(build.path());
    std::os::unix::fs::symlink("Procfile", build.dirs.app.join("procfile-link")).unwrap();
    let out = build.path().join("out");
    let exported = export(
        &build,
        &metadata,
        &out,
        &launcher,
        ExportOptions {
            process_type: Some("greet"),
            project: Some(serde_json::json!({ "source": { "type": "git" } })),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        exported.config["config"]["Entrypoint"],
        serde_json::json!(["/cnb/process/greet"])
    );
    assert_eq!(
        label(&exported, "io.buildpacks.project.metadata"),
        serde_json::json!({ "source": { "type": "git" } })
    );
    let app = entries(&out, layer(&exported, "app"));
    let link = app
        .iter()
        .find(|e| e.path == "workspace/procfile-link")
        .unwrap();
    assert_eq!(
        (link.kind, link.link.as_deref()),
        (tar::EntryType::Symlink, Some("Procfile"))
    );

    let error = export(
        &build,
        &metadata,
        &build.path().join("x"),
        &launcher,
        ExportOptions {
            process_type: Some("nosuch"),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(error.to_string().contains("`nosuch`"), "{error}");

    let fifo = build.dirs.app.join("a-fifo");
    mkfifo(&fifo);
    let error = export(
        &build,
        &metadata,
        &build.path().join("y"),
        &launcher,
        ExportOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(error, ExportError::SpecialFile { ref path } if path == &fifo),
        "{error}"
    );
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}
