//! Images built by locald's own CNB lifecycle run like any image: the fixture builder's
//! buildpacks build a site on the host, the exporter writes the image with the real
//! static launcher (`scripts/build-launcher`), `locald image import` stores it, and the
//! embedded runtime runs it — each process type through `/cnb/process/<type>`, the launch
//! environment from the layers, as the build user, and as a service on its `$PORT`; and
//! the same build run in a container of the builder image by the static `lifecycle`.

#[path = "../../cnb/tests/support/mod.rs"]
mod cnb_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use cnb_support::HostBuild;
use locald_cnb::build::BuildMetadata;
use locald_image::testing::{cnb_builder_image, CnbBuilder};

use crate::containers::{http_get, up_healthy};
use crate::harness::{Project, Run};

/// Builds the launcher statically (once per test binary) and returns its path.
pub(crate) fn static_launcher() -> PathBuf {
    static LAUNCHER: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    LAUNCHER
        .get_or_init(|| {
            let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            // target/debug/locald → target
            let target = Path::new(crate::harness::locald_bin())
                .ancestors()
                .nth(2)
                .expect("the target directory")
                .to_path_buf();
            let status = std::process::Command::new(repo.join("scripts/build-launcher"))
                .env("CARGO_TARGET_DIR", &target)
                .status()
                .expect("run scripts/build-launcher");
            assert!(status.success(), "scripts/build-launcher failed");
            let rustc = std::process::Command::new("rustc")
                .arg("-vV")
                .output()
                .unwrap();
            let host = String::from_utf8_lossy(&rustc.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
                .expect("rustc names its host");
            target.join(host).join("cnb/launcher")
        })
        .clone()
}

/// A project whose store (at the returned dir) holds the site built and exported as
/// `app:1`.
fn project_with_built_site() -> (Project, tempfile::TempDir, HostBuild) {
    project_with_built(CnbBuilder::Httpd, |build| {
        build.site_app();
        build.app_file(
            "static/index.html",
            "<h1>hello from the built site 975101</h1>\n",
        );
    })
}

/// A project whose store holds, as `app:1`, the app `write` makes built by `builder`.
fn project_with_built(
    builder: CnbBuilder,
    write: impl FnOnce(&HostBuild),
) -> (Project, tempfile::TempDir, HostBuild) {
    let build = HostBuild::new(builder);
    write(&build);
    let (metadata, _) = build.build();
    let project = Project::new();
    let data = tempfile::tempdir().expect("data dir");
    export_as_app(&build, &metadata, &project, data.path());
    (project, data, build)
}

/// Exports what `build` built (with the static launcher) and imports it as `app:1`.
fn export_as_app(build: &HostBuild, metadata: &BuildMetadata, project: &Project, data: &Path) {
    let layout = build.path().join("layout");
    let options = cnb_support::ExportOptions::default();
    cnb_support::export(build, metadata, &layout, &static_launcher(), options).expect("export");
    import(project, data, &layout, "app:1");
}

/// `locald image import LAYOUT --name NAME` into the store at `data`.
fn import(project: &Project, data: &Path, layout: &Path, name: &str) {
    let layout = layout.to_str().unwrap();
    with_store(
        project.locald(["image", "import", layout, "--name", name]),
        data,
    )
    .success();
}

pub(crate) fn with_store(run: Run, data: &Path) -> Run {
    run.env("LOCALD_DATA_DIR", data.to_str().unwrap())
}

pub(crate) fn container_run(project: &Project, data: &Path, args: &[&str]) -> String {
    let mut all = vec!["container", "run"];
    all.extend(args);
    with_store(project.locald(all), data)
        .success()
        .stdout
        .clone()
}

#[test]
fn built_image_runs_process_types_through_the_launcher() {
    let (project, data, _build) = project_with_built_site();
    let data = data.path();
    let greet = ["--entrypoint", "/cnb/process/greet", "app:1"];
    assert_eq!(container_run(&project, data, &greet), "hello world\n");
    assert_eq!(
        container_run(&project, data, &[&greet[..], &["there"]].concat()),
        "hello there\n",
        "user arguments replace the process's args"
    );

    let env = container_run(
        &project,
        data,
        &["--entrypoint", "/cnb/process/env-dump", "app:1"],
    );
    let vars: Vec<&str> = env.lines().collect();
    assert!(vars.contains(&"PORT=8080"), "env.launch default: {env}");
    assert!(vars.contains(&"HTTPD_ROOT=/workspace/static"), "{env}");
    let path = vars.iter().find(|v| v.starts_with("PATH=")).unwrap();
    assert!(
        path.starts_with("PATH=/layers/test_httpd/httpd/bin:"),
        "{path}"
    );
    assert!(
        !path.contains("/cnb/process") && !path.contains("/cnb/lifecycle"),
        "{path}"
    );
    assert!(!env.contains("HTTPD_BUILT"), "a build-only variable: {env}");
    assert!(
        !env.contains("CNB_LAYERS_DIR") && !env.contains("CNB_APP_DIR"),
        "{env}"
    );

    // A $PORT given to the container wins over the layer's default.
    let env = container_run(
        &project,
        data,
        &[
            "-e",
            "PORT=9751",
            "--entrypoint",
            "/cnb/process/env-dump",
            "app:1",
        ],
    );
    assert!(env.lines().any(|l| l == "PORT=9751"), "{env}");

    // The launcher itself: `-- CMD` runs CMD directly, `CMD` as shell text; both in
    // /workspace, as the build user. (The first `--` ends locald's own options.)
    let launcher = ["--entrypoint", "/cnb/lifecycle/launcher", "app:1"];
    assert_eq!(
        container_run(
            &project,
            data,
            &[&launcher[..], &["--", "--", "echo", "direct", "975102"]].concat()
        ),
        "direct 975102\n"
    );
    assert_eq!(
        container_run(
            &project,
            data,
            &[
                &launcher[..],
                &["echo $HTTPD_ROOT $(pwd) $(id -u):$(id -g) 975103"]
            ]
            .concat()
        ),
        "/workspace/static /workspace 1000:1000 975103\n"
    );
    // An unknown command is the launcher's exit 82, with its reason.
    with_store(
        project.locald(
            [
                &["container", "run"][..],
                &launcher[..],
                &["--", "--", "nosuch975104"],
            ]
            .concat(),
        ),
        data,
    )
    .code(82)
    .stderr_has("`nosuch975104` was not found on PATH");
}

#[test]
fn a_built_image_runs_under_runc_as_well() {
    // Nothing in a built image is locald's but its static launcher: another OCI runtime
    // runs it the same way (umoci makes the bundle from the exported layout).
    let (_project, _data, build) = project_with_built_site();
    let layout = build.path().join("layout");
    let bundle = build.path().join("runc-bundle");
    let unpacked = std::process::Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:latest", layout.display()))
        .arg(&bundle)
        .output()
        .expect("umoci (scripts/install-deps installs it)");
    assert!(
        unpacked.status.success(),
        "{}",
        String::from_utf8_lossy(&unpacked.stderr)
    );
    let config_path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    // The image's own process serves forever: run `greet` and ask who runs it.
    config["process"]["args"] = serde_json::json!([
        "/cnb/lifecycle/launcher",
        "echo \"$(id -u):$(id -g) $PORT $HTTPD_ROOT\"; /cnb/process/greet"
    ]);
    config["process"]["terminal"] = serde_json::json!(false);
    std::fs::write(&config_path, config.to_string()).unwrap();
    let id = format!("locald-e2e-runc-{}", std::process::id());
    let runc = |args: &[&str]| {
        std::process::Command::new("runc")
            .args(args)
            .output()
            .expect("runc (scripts/install-deps installs it)")
    };
    let out = runc(&["run", "--bundle", bundle.to_str().unwrap(), &id]);
    let _ = runc(&["delete", "--force", &id]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "1000:1000 8080 /workspace/static\nhello world\n",
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn built_image_serves_as_a_service_on_its_port() {
    let (project, data, _build) = project_with_built_site();
    project.write(
        "locald.toml",
        r#"
# The image's entrypoint is /cnb/process/web: the launcher runs `serve` from the httpd
# layer, which serves /workspace/static on $PORT.
[services.web]
image = "app:1"
health = { http = "/" }
"#,
    );
    let port = up_healthy(&project, data.path(), "web");
    assert_ne!(port, 8080, "locald's $PORT, not the layer's default");
    let page = http_get(port, "/index.html");
    assert!(page.contains("hello from the built site 975101"), "{page}");
    project.locald(["down"]).success();
    project.wait_for("the server to stop", Duration::from_secs(10), |_| {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
    });
}

/// The second builder's image: the default process with its default argument and its
/// own `env.launch/<type>` variables, another process's working directory, the build
/// layer's `bin` on `PATH` at launch and its `lib` on `LD_LIBRARY_PATH`.
#[test]
fn pipeline_image_runs_its_default_process_with_process_env() {
    let (project, data, _build) = project_with_built(CnbBuilder::Pipeline, |build| {
        build.app_file(
            "main.sh",
            "echo \"main $* role=${APP_ROLE:-none} greeting=$APP_GREETING flavour=$RUNTIME_FLAVOUR lib=$LD_LIBRARY_PATH 975105\"\n",
        );
        build.app_file("runtime.txt", "3.1\n");
        build.app_file("sub/.keep", "");
    });
    let data = data.path();
    assert_eq!(
        container_run(&project, data, &["app:1"]),
        "main default-arg role=main greeting=hi flavour=runtime \
         lib=/layers/test_app/deps/lib 975105\n"
    );
    assert_eq!(
        container_run(&project, data, &["app:1", "given", "975106"]),
        "main given 975106 role=main greeting=hi flavour=runtime \
         lib=/layers/test_app/deps/lib 975105\n"
    );
    // `version` runs in /workspace/sub, without main's own variable.
    assert_eq!(
        container_run(
            &project,
            data,
            &["--entrypoint", "/cnb/process/version", "app:1"]
        ),
        "runtime 3.1 (runtime)\n"
    );
    assert_eq!(
        container_run(
            &project,
            data,
            &[
                "--entrypoint",
                "/cnb/lifecycle/launcher",
                "app:1",
                "echo ${APP_ROLE:-none} $(pwd) 975107"
            ]
        ),
        "none /workspace 975107\n"
    );
}

/// The build itself in the build container: the builder image as `builder:1`, the static
/// `lifecycle` (built beside the launcher) mounted in it, run as the builder's user with
/// the app and layers at `/workspace` and `/layers`; then exported from what it left and
/// run. As root it refuses.
#[test]
fn a_build_runs_in_the_builder_container_as_its_user() {
    use std::os::unix::fs::MetadataExt as _;
    let build = HostBuild::new(CnbBuilder::Httpd);
    build.site_app();
    for dir in [&build.dirs.app, &build.dirs.layers] {
        let status = std::process::Command::new("chown")
            .args(["-R", "1000:1000"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(status.success());
    }
    let project = Project::new();
    let data = tempfile::tempdir().expect("data dir");
    let data = data.path();
    let builder_layout = build.path().join("builder-layout");
    cnb_builder_image(CnbBuilder::Httpd, cnb_support::RUN_IMAGE)
        .unwrap()
        .write_layout(&builder_layout, "latest")
        .unwrap();
    import(&project, data, &builder_layout, "builder:1");
    let lifecycle = static_launcher().with_file_name("lifecycle");
    let mounts = [
        format!("{}:/workspace", build.dirs.app.display()),
        format!("{}:/layers", build.dirs.layers.display()),
        format!("{}:/cnb/lifecycle/lifecycle:ro", lifecycle.display()),
    ];
    let run = |user: &str| {
        let mut args = vec!["container", "run", "--user", user];
        for mount in &mounts {
            args.extend(["-v", mount.as_str()]);
        }
        args.extend(["--entrypoint", "/cnb/lifecycle/lifecycle", "builder:1"]);
        with_store(project.locald(args), data)
    };
    run("0:0")
        .code(1)
        .stderr_has("refusing to run buildpacks as root");
    let out = run("1000:1000").success();
    out.stdout_has("detected test/httpd@0.0.1\n")
        .stdout_has("building httpd\n")
        .stdout_has("default `web`");

    // The buildpacks saw the real paths, and wrote as the build user.
    let observations = std::fs::read_to_string(build.dirs.app.join(".build-observations")).unwrap();
    assert!(
        observations.contains("serve=/layers/test_httpd/httpd/bin/serve\n"),
        "{observations}"
    );
    let serve = std::fs::metadata(build.layer("test_httpd", "httpd/bin/serve")).unwrap();
    assert_eq!((serve.uid(), serve.gid()), (1000, 1000));

    let metadata = locald_cnb::build::read_built(&build.dirs.layers, &locald_cnb::Limits::DEFAULT)
        .expect("read what the build left");
    export_as_app(&build, &metadata, &project, data);
    assert_eq!(
        container_run(
            &project,
            data,
            &["--entrypoint", "/cnb/process/greet", "app:1"]
        ),
        "hello world\n"
    );
    let env = container_run(
        &project,
        data,
        &["--entrypoint", "/cnb/process/env-dump", "app:1"],
    );
    assert!(env.contains("PATH=/layers/test_httpd/httpd/bin:"), "{env}");
}
