//! Services built from source (`build = {...}`): `up` builds the image with the fixture
//! builder as the service's preparation (state `building`, the build's output in the
//! service's log), runs it as a container service on its `$PORT`, and builds again only
//! when the source or the build settings changed; `locald build SVC` builds and records
//! it for `up`; `locald run SVC -- CMD` runs CMD through the image's launcher; a bad
//! builder fails the service once, with the reason; a `down` during the build stops it,
//! recording nothing.

use std::path::Path;
use std::time::{Duration, Instant};

use locald_image::testing::TestRegistry;

use crate::builds::push_fixture_builder;
use crate::cnb_images::with_store;
use crate::containers::http_get;
use crate::harness::{pids_with_arg, service_field, Project};

/// How many builds the service's log shows (each prints `===> DETECTING` once).
fn builds_logged(project: &Project, data: &Path) -> usize {
    let logs = with_store(project.locald(["logs", "web"]), data).success();
    logs.stdout.matches("===> DETECTING").count()
}

fn up(project: &Project, data: &Path) -> u16 {
    let up = with_store(
        project.locald(["up", "-d", "--wait", "--timeout", "120s"]),
        data,
    )
    .output();
    if up.code != Some(0) {
        let logs = with_store(project.locald(["logs", "web"]), data).output();
        panic!("up failed: {}\nlog of web:\n{}", up.stderr, logs.stdout);
    }
    assert_eq!(service_field(project, "web", "state"), "healthy");
    service_field(project, "web", "port")
        .as_u64()
        .and_then(|port| u16::try_from(port).ok())
        .expect("web has a port")
}

/// `down`, and nothing left: not the server (the fixture's httpd serving
/// `/workspace/static` on the port), nor a build.
fn down(project: &Project, data: &Path, port: u16) {
    with_store(project.locald(["down"]), data).success();
    project.wait_for("the server to stop", Duration::from_secs(10), |_| {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
            && pids_with_arg("/workspace/static").is_empty()
    });
    assert!(pids_with_arg("__build-service").is_empty());
    assert!(pids_with_arg("979107").is_empty());
}

/// A project whose `locald.toml` is `toml` with `BUILDER` the fixture builder, pushed to
/// the registry returned (keep it while the test runs).
fn project_with_builder(toml: &str) -> (TestRegistry, Project) {
    let registry = TestRegistry::start();
    let builder = push_fixture_builder(&registry);
    let project = Project::new();
    project.write("locald.toml", &toml.replace("BUILDER", &builder));
    (registry, project)
}

#[test]
fn a_built_service_is_served_and_built_again_only_when_its_source_changes() {
    let (_registry, project) = project_with_builder(
        r#"
[services.web]
build = { builder = "BUILDER", path = "site" }
health = { http = "/" }

[services.after]
command = "sleep 979107"
depends_on = ["web"]
health = "none"
"#,
    );
    project.write("site/Procfile", "web: serve\n");
    project.write("site/static/index.html", "<h1>first 979101</h1>\n");
    project.write("site/.gitignore", "*.log\n");
    let data = tempfile::tempdir().unwrap();
    let data = data.path();

    let port = up(&project, data);
    assert!(http_get(port, "/index.html").contains("first 979101"));
    let logs = with_store(project.locald(["logs", "web"]), data).success();
    logs.stdout_has("===> BUILDING")
        .stdout_has("===> EXPORTING")
        .stdout_has("building locald-build/");
    // A dependent waits for the built service's health, as for any other.
    let after = with_store(project.locald(["logs", "after"]), data).success();
    after.stdout_has("waiting for web to be healthy");
    assert_eq!(service_field(&project, "after", "state"), "healthy");
    let status = with_store(project.locald(["status"]), data).success();
    status.stdout_has("web").stdout_has("healthy");
    let tag = locald::model::built_image_tag(&project.path().canonicalize().unwrap(), "web");
    with_store(project.locald(["image", "ls"]), data)
        .success()
        .stdout_has(&tag);
    down(&project, data, port);

    // Unchanged source (an ignored file is no source): no build, a quick start.
    project.write("site/debug.log", "noise\n");
    let started = Instant::now();
    let port = up(&project, data);
    let quick = started.elapsed();
    assert_eq!(builds_logged(&project, data), 1, "built again");
    assert!(quick < Duration::from_secs(10), "{quick:?}");
    down(&project, data, port);

    // An edit: built again, and the new content served.
    project.write("site/static/index.html", "<h1>second 979102</h1>\n");
    let port = up(&project, data);
    assert_eq!(builds_logged(&project, data), 2);
    assert!(http_get(port, "/index.html").contains("second 979102"));
    down(&project, data, port);

    // `locald build web` builds with the service's settings and tag, and records it:
    // the next `up` starts what it built without building again.
    project.write("site/static/index.html", "<h1>third 979103</h1>\n");
    let built = with_store(project.locald(["build", "web"]), data).success();
    built
        .stdout_has("===> EXPORTING")
        .stdout_has(&format!("built web: docker.io/{tag} (sha256:"));
    let port = up(&project, data);
    assert_eq!(
        builds_logged(&project, data),
        2,
        "built again after `locald build web`"
    );
    assert!(http_get(port, "/index.html").contains("third 979103"));

    // A command of one's own runs through the launcher: the layers' launch environment.
    let run = with_store(
        project.locald([
            "run",
            "web",
            "--",
            "echo root=$HTTPD_ROOT user=$(id -u) 979104",
        ]),
        data,
    )
    .success();
    run.stdout_has("root=/workspace/static user=1000 979104");
    let argv = with_store(
        project.locald(["run", "web", "--", "sh", "-c", "echo $HTTPD_ROOT 979105"]),
        data,
    )
    .success();
    argv.stdout_has("/workspace/static 979105");
    // So does one run in the running container.
    let exec = with_store(
        project.locald(["exec", "web", "--", "echo $HTTPD_ROOT $(id -u) 979106"]),
        data,
    )
    .success();
    exec.stdout_has("/workspace/static 1000 979106");
    down(&project, data, port);
}

#[test]
fn a_bad_builder_fails_the_service_once_with_the_reason() {
    let project = Project::new();
    let config = tempfile::tempdir().unwrap();
    let config_home = config.path().to_str().unwrap().to_string();
    let data = tempfile::tempdir().unwrap();
    let data = data.path();
    // The short form takes the builder from the user config: none there yet.
    project.write(
        "locald.toml",
        "[services.web]\nbuild = \".\"\nhealth = \"none\"\n",
    );
    project.write("static/index.html", "979110\n");
    let failed = with_store(project.locald(["build", "web"]), data)
        .env("XDG_CONFIG_HOME", &config_home)
        .code(1);
    failed
        .stderr_has("service `web` has no builder")
        .stderr_has("locald.toml")
        .stderr_has(&format!("{config_home}/locald/config.toml"));

    // No registry answers there: the build fails, and so does the service, once.
    std::fs::create_dir(config.path().join("locald")).unwrap();
    std::fs::write(
        config.path().join("locald/config.toml"),
        "[build]\nbuilder = \"127.0.0.1:9/none/builder:979111\"\n",
    )
    .unwrap();
    let up = with_store(
        project.locald(["up", "-d", "--wait", "--timeout", "60s"]),
        data,
    )
    .env("XDG_CONFIG_HOME", &config_home)
    .code(1);
    up.stderr_has("service web failed");
    let logs = with_store(project.locald(["logs", "web"]), data).success();
    logs.stdout_has("127.0.0.1:9/none/builder:979111")
        .stdout_has("build failed");
    assert_eq!(service_field(&project, "web", "state"), "failed");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(service_field(&project, "web", "restarts"), 0);
    assert_eq!(service_field(&project, "web", "failures"), 1);
    assert!(!project.path().join(".locald/build-web").exists());
    with_store(project.locald(["down"]), data).success();
}

#[test]
fn a_down_during_the_build_stops_it_and_records_nothing() {
    let (_registry, project) = project_with_builder(
        "[services.web]\nbuild = { builder = \"BUILDER\" }\nstop_signal = \"SIGUSR1\"\n",
    );
    project.write("Procfile", "web: serve\n");
    project.write("static/index.html", "979120\n");
    let data = tempfile::tempdir().unwrap();
    let data = data.path();
    with_store(project.locald(["up", "-d"]), data).success();
    project.wait_for("the build to start", Duration::from_secs(30), |project| {
        service_field(project, "web", "state") == "building"
    });
    with_store(project.locald(["down"]), data).success();
    assert_eq!(service_field(&project, "web", "state"), "stopped");
    project.wait_for("the build to end", Duration::from_secs(10), |_| {
        pids_with_arg("__build-service").is_empty()
    });
    assert!(!project.path().join(".locald/build-web").exists());
    let logs = with_store(project.locald(["logs", "web"]), data).success();
    // SIGTERM stopped it (not the service's stop signal), and it said so.
    logs.stdout_has("build stopped with code 143");
}
