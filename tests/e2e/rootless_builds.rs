//! `locald build` by an unprivileged user: the lifecycle runs in a user namespace of the
//! user's own where the caller is the builder's `CNB_USER_ID` (nothing is chowned, which
//! only root could do), the image lands in the user's store with its layers owned by
//! `CNB_USER_ID:CNB_GROUP_ID` in their tar headers (whoever owned the files on disk), and
//! `locald container run` runs it as the builder's user.

use std::path::Path;
use std::process::Command;

use crate::builds::registry_with_builder;
use crate::harness::give;
use crate::rootless_services::UserProject;

/// The `uid/gid` the stored layer blobs under `store` give `entry` in their tar headers.
fn tar_owners(store: &Path, entry: &str) -> Vec<String> {
    let blobs = store.join("images/blobs/sha256");
    let mut owners = Vec::new();
    for blob in std::fs::read_dir(&blobs)
        .expect("the store's blobs")
        .flatten()
    {
        // Exported layers are uncompressed tars; other blobs make tar fail.
        let listing = Command::new("tar")
            .args(["--numeric-owner", "-tvf"])
            .arg(blob.path())
            .output()
            .expect("run tar");
        let text = String::from_utf8_lossy(&listing.stdout);
        for line in text.lines().filter(|l| l.ends_with(&format!(" {entry}"))) {
            owners.extend(line.split_whitespace().nth(1).map(str::to_string));
        }
    }
    owners
}

#[test]
fn an_unprivileged_user_builds_an_app_and_runs_it_as_the_builders_user() {
    let (_registry, builder) = registry_with_builder();

    let project = UserProject::without_images("");
    let app = project.home().join("app");
    std::fs::create_dir_all(app.join("static")).unwrap();
    std::fs::write(app.join("Procfile"), "web: serve\n").unwrap();
    std::fs::write(app.join("static/index.html"), "<h1>rootless 979401</h1>\n").unwrap();
    give(&app, project.user);
    assert_ne!(project.user.0, 1000, "the caller is not the builder's user");

    let out = project.ok(&[
        "build",
        "app",
        "--builder",
        &builder,
        "--tag",
        "site:979402",
    ]);
    assert!(
        out.contains("===> BUILDING\n") && out.contains("building httpd\n"),
        "{out}"
    );
    assert!(out.contains("site:979402 (sha256:"), "{out}");

    // Written by the exporter, not taken from the disk (where the caller owns them).
    let store = project.home().join(".local/share/locald");
    let owners = tar_owners(&store, "workspace/static/index.html");
    assert_eq!(owners, ["1000/1000"], "the app layer's headers");

    assert_eq!(
        project.ok(&[
            "container",
            "run",
            "--entrypoint",
            "/cnb/process/greet",
            "site:979402"
        ]),
        "hello world\n"
    );
    let inside = project.ok(&[
        "container",
        "run",
        "--entrypoint",
        "/cnb/lifecycle/launcher",
        "site:979402",
        "id -u; id -g; stat -c %u:%g static/index.html; cat static/index.html",
    ]);
    assert_eq!(inside, "1000\n1000\n1000:1000\n<h1>rootless 979401</h1>\n");

    // The launcher in the image is the optimized, stripped build (a debug one is ~10 MB).
    let size = project.ok(&[
        "container",
        "run",
        "--entrypoint",
        "/cnb/lifecycle/launcher",
        "site:979402",
        "stat -c %s /cnb/lifecycle/launcher",
    ]);
    let size: u64 = size.trim().parse().expect("a size");
    assert!(size < 3_000_000, "the launcher is {size} bytes");
}

#[test]
fn an_unprivileged_users_built_service_is_built_under_the_supervisor_and_served() {
    let (_registry, builder) = registry_with_builder();
    let project = UserProject::without_images(&format!(
        "[services.web]\nbuild = {{ builder = \"{builder}\", path = \"site\" }}\nhealth = {{ http = \"/\" }}\n"
    ));
    let site = project.home().join("site");
    std::fs::create_dir_all(site.join("static")).unwrap();
    std::fs::write(site.join("Procfile"), "web: serve\n").unwrap();
    std::fs::write(site.join("static/index.html"), "<h1>rootless 979403</h1>\n").unwrap();
    give(&site, project.user);

    let (code, stdout, stderr) = project.run(&["up", "-d", "--wait", "--timeout", "120s"]);
    if code != Some(0) {
        let (_, log, _) = project.run(&["logs", "web"]);
        panic!("up failed: {stdout}{stderr}\nlog of web:\n{log}");
    }
    let status: serde_json::Value =
        serde_json::from_str(&project.ok(&["status", "--json"])).unwrap();
    assert_eq!(status[0]["state"], "healthy", "{status}");
    let port = u16::try_from(status[0]["port"].as_u64().expect("a port")).unwrap();
    assert!(crate::containers::http_get(port, "/index.html").contains("rootless 979403"));
    assert!(project.ok(&["logs", "web"]).contains("===> EXPORTING"));
    project.ok(&["down"]);
    assert!(crate::harness::pids_with_arg("__build-service").is_empty());
}
