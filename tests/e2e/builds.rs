//! `locald build`: an app built from source by the fixture CNB builder pulled from a
//! local registry (with the run image its `/cnb/run.toml` names), the lifecycle run in
//! a container of the builder as its user, phase lines and buildpack output shown, the
//! image exported into the store and run with `locald container run`.

use locald_image::testing::{cnb_builder_image, cnb_run_image, CnbBuilder, TestRegistry};

use crate::cnb_images::{container_run, static_launcher, with_store};
use crate::containers::push;
use std::path::Path;

use crate::harness::{Project, Run};

/// A local registry with the fixture builder pushed ([`push_fixture_builder`]): the
/// registry and the builder's reference.
pub(crate) fn registry_with_builder() -> (TestRegistry, String) {
    let registry = TestRegistry::start();
    let builder = push_fixture_builder(&registry);
    (registry, builder)
}

/// Pushes the fixture run image and the `Httpd` builder to `registry` (with the static
/// lifecycle and launcher built where `locald build` finds them beside a development
/// build) and returns the builder's reference.
pub(crate) fn push_fixture_builder(registry: &TestRegistry) -> String {
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

/// A project holding the fixture site: a `Procfile` (`web: serve`) and
/// `static/index.html` with `marker` in it.
pub(crate) fn site_project(marker: u32) -> Project {
    let project = Project::new();
    project.write("Procfile", "web: serve\n");
    project.write("static/index.html", &format!("<h1>built {marker}</h1>\n"));
    project
}

/// `locald build --builder BUILDER ARGS…` in `project`, with the image store in `data`.
pub(crate) fn build_with(project: &Project, data: &Path, builder: &str, args: &[&str]) -> Run {
    let mut all = vec!["build", "--builder", builder];
    all.extend(args);
    with_store(project.locald(all), data)
}

#[test]
fn build_pulls_the_builder_builds_the_app_and_stores_a_runnable_image() {
    let (_registry, builder) = registry_with_builder();

    let project = site_project(977101);
    project.write(".git/HEAD", "ref: refs/heads/main\n");
    project.write(".locald/state", "local state\n");
    let data = tempfile::tempdir().expect("data dir");
    let data = data.path();
    let build = |args: &[&str]| build_with(&project, data, &builder, args);

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

    // Without --tag: the directory's name and path digest; without --verbose: no detect
    // results.
    let tag = locald::script::api::build::default_tag(&project.path().canonicalize().unwrap());
    let out = build(&[]).env("SOURCE_DATE_EPOCH", "1700000000").success();
    out.stdout_has(&tag);
    assert!(!out.stdout.contains(": pass"), "{}", out.stdout);

    // With SOURCE_DATE_EPOCH the same source builds the same image, digest for digest.
    let digest = |stdout: &str| {
        let built = stdout.lines().find(|l| l.starts_with("built ")).unwrap();
        built.split("(sha256:").nth(1).unwrap().to_string()
    };
    // (A cold build again: a warm one restores the fixture's store.toml count, which is
    // in the image's label, from the previous image and the cache.)
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
    // No user config either (it could name a default builder).
    let config = tempfile::tempdir().unwrap();
    project
        .locald(["build"])
        .env("XDG_CONFIG_HOME", config.path().to_str().unwrap())
        .code(1)
        .stderr_has("no builder: give one with `builder` (locald build --builder REF)")
        .stderr_has("user config");
}
