//! `locald build`: an app built from source by the fixture CNB builder pulled from a
//! local registry (with the run image its `/cnb/run.toml` names), the lifecycle run in
//! a container of the builder as its user, phase lines and buildpack output shown, the
//! image exported into the store and run with `locald container run`.

use locald_image::testing::{cnb_builder_image, cnb_run_image, CnbBuilder, TestRegistry};

use crate::cnb_images::{container_run, static_launcher, with_store};
use crate::containers::push;
use crate::harness::Project;

/// Builds the static lifecycle and launcher (where `locald build` finds them beside a
/// development build), pushes the run image and the `Httpd` fixture builder to
/// `registry`; returns the builder's reference.
pub(crate) fn push_httpd_builder(registry: &TestRegistry) -> String {
    static_launcher();
    let run_image = format!("{}/cnb/run:1", registry.addr());
    push(registry, "cnb/run:1", &cnb_run_image().unwrap());
    push(
        registry,
        "cnb/builder:1",
        &cnb_builder_image(CnbBuilder::Httpd, &run_image).unwrap(),
    );
    format!("{}/cnb/builder:1", registry.addr())
}

#[test]
fn build_pulls_the_builder_builds_the_app_and_stores_a_runnable_image() {
    let registry = TestRegistry::start();
    let builder = push_httpd_builder(&registry);

    let project = Project::new();
    project.write("Procfile", "web: serve\n");
    project.write("static/index.html", "<h1>built 977101</h1>\n");
    project.write(".git/HEAD", "ref: refs/heads/main\n");
    project.write(".locald/state", "local state\n");
    let data = tempfile::tempdir().expect("data dir");
    let data = data.path();
    let build = |args: &[&str]| {
        let mut all = vec!["build", "--builder", builder.as_str()];
        all.extend(args);
        with_store(project.locald(all), data)
    };

    // The build environment reaches the buildpacks: the fixture's detect errors on it.
    let failed = build(&["-e", "HTTPD_FAIL=1"]).code(1);
    failed
        .stderr_has("a buildpack errored during detection (exit 21)")
        .stdout_has("===> DETECTING");
    assert!(
        !failed.stdout.contains("===> EXPORTING"),
        "{}",
        failed.stdout
    );

    let out = build(&["--verbose", "--tag", "site:977102"]).success();
    out.stdout_has("===> DETECTING\n")
        .stdout_has("test/httpd@0.0.1: pass\n")
        .stdout_has("detected test/httpd@0.0.1\n")
        .stdout_has("===> BUILDING\n")
        .stdout_has("building httpd\n")
        .stdout_has("===> EXPORTING\n")
        .stdout_has("built ")
        .stdout_has("site:977102 (sha256:");
    let images = with_store(project.locald(["image", "ls"]), data).success();
    images.stdout_has("site:977102");

    let run = |args: &[&str]| container_run(&project, data, args);
    let greet = ["--entrypoint", "/cnb/process/greet", "site:977102"];
    assert_eq!(run(&greet), "hello world\n");
    // The app is the source less .git and .locald, owned by the build user.
    let launcher = ["--entrypoint", "/cnb/lifecycle/launcher", "site:977102"];
    let listing = run(&[
        &launcher[..],
        &["ls -a /workspace; stat -c %u static/index.html"],
    ]
    .concat());
    assert!(
        listing.contains("Procfile\n") && listing.contains("static\n"),
        "{listing}"
    );
    assert!(
        !listing.contains(".git") && !listing.contains(".locald"),
        "{listing}"
    );
    assert!(listing.ends_with("1000\n"), "{listing}");

    // Without --tag: the directory's name; without --verbose: no detect results.
    let dir_name = project
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_lowercase();
    let out = build(&[]).env("SOURCE_DATE_EPOCH", "1700000000").success();
    out.stdout_has(&format!("locald-build/{dir_name}:latest"));
    assert!(!out.stdout.contains(": pass"), "{}", out.stdout);

    // With SOURCE_DATE_EPOCH the same source builds the same image, digest for digest.
    let digest = |stdout: &str| {
        let built = stdout.lines().find(|l| l.starts_with("built ")).unwrap();
        built.split("(sha256:").nth(1).unwrap().to_string()
    };
    // (A cold build again: a warm one restores the fixture's store.toml count, which is
    // in the image's label, from the previous image and the cache.)
    let tag = format!("locald-build/{dir_name}:latest");
    with_store(project.locald(["image", "rm", tag.as_str()]), data).success();
    with_store(project.locald(["image", "prune"]), data).success();
    let again = build(&[]).env("SOURCE_DATE_EPOCH", "1700000000").success();
    again.stdout_has("building httpd\n");
    assert_eq!(digest(&out.stdout), digest(&again.stdout));
    let later = build(&[]).env("SOURCE_DATE_EPOCH", "1700000001").success();
    assert_ne!(
        digest(&out.stdout),
        digest(&later.stdout),
        "the time is the image's"
    );
}

#[test]
fn build_without_a_builder_says_how_to_name_one() {
    let project = Project::new();
    project
        .locald(["build"])
        .code(1)
        .stderr_has("no builder: give one with `builder` (locald build --builder REF)");
}

#[test]
fn a_rootless_build_is_refused_before_any_pull() {
    use std::os::unix::fs::PermissionsExt as _;
    let (uid, gid) = (977_150, 977_150);
    let home = tempfile::tempdir().unwrap();
    let runtime_dir = home.path().join("run");
    std::fs::create_dir(&runtime_dir).unwrap();
    std::fs::set_permissions(&runtime_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    for dir in [home.path(), runtime_dir.as_path()] {
        std::os::unix::fs::lchown(dir, Some(uid), Some(gid)).unwrap();
    }
    // No registry answers at this address: a pull would fail with another error.
    let (code, _, stderr) = crate::harness::locald_as_user(
        (uid, gid),
        home.path(),
        &runtime_dir,
        &["build", "--builder", "127.0.0.1:9/none:1"],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("builds need root for now"), "{stderr}");
}
