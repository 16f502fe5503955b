//! `locald build --buildpack REF`: the buildpacks given replace the builder's order with
//! one group of them, in order: buildpackage images pulled from a local registry, a
//! `.cnb` file (which `image import` takes too), a buildpack directory, ids (and
//! `id@version`) of the builder's own; an unknown ref and hostile buildpackages are
//! refused before anything runs, and the builder's image is left as it was.

use locald_image::testing::{cnb_hostile_buildpackage, CnbBuildpackage, HostileBuildpackage};

use crate::builds::{build_with, registry_with_builder, site_project};
use crate::cnb_images::{container_run, with_store};
use crate::containers::push;

/// The buildpacks a build's output says it detected, in order.
fn detected(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("detected "))
        .map(String::from)
        .collect()
}

/// The group of `-b test/httpd -b test/procfile@0.0.1 -b meta.cnb`: the composite
/// expanded where it stands.
const WITH_META: [&str; 4] = [
    "test/httpd@0.0.1",
    "test/procfile@0.0.1",
    "test/extra@0.0.2",
    "test/greeting@0.0.1",
];

#[test]
fn buildpacks_given_replace_the_builders_order() {
    let (registry, builder) = registry_with_builder();
    push(&registry, "cnb/bp-extra:1", &CnbBuildpackage::Extra.image());
    let extra = format!("{}/cnb/bp-extra:1", registry.addr());

    let project = site_project(979301);
    let data = tempfile::tempdir().expect("data dir");
    let data = data.path();
    let build = |args: &[&str]| build_with(&project, data, &builder, args);
    let run = |args: &[&str]| container_run(&project, data, args);

    // A buildpackage image the builder lacks: it alone is the group (the builder's
    // order would have chosen test/httpd and test/procfile for this app).
    let out = build(&["--buildpack", &extra, "--tag", "extra:979302"]).success();
    assert_eq!(
        detected(&out.stdout),
        ["test/extra@0.0.2"],
        "{}",
        out.stdout
    );
    out.stdout_has("extra: built by a buildpackage\n");
    let process = ["--entrypoint", "/cnb/process/extra", "extra:979302"];
    assert_eq!(run(&process), "hello from test/extra\n");

    // The builder's buildpacks by id and id@version, then a composite `.cnb` file: one
    // group in the order given, the composite expanded where it stands.
    CnbBuildpackage::Meta
        .write_cnb_file(&project.path().join("meta.cnb"))
        .unwrap();
    let out = build(&[
        "-b",
        "test/httpd",
        "-b",
        "test/procfile@0.0.1",
        "-b",
        "meta.cnb",
        "--tag",
        "meta:979303",
    ])
    .success();
    assert_eq!(detected(&out.stdout), WITH_META, "{}", out.stdout);
    out.stdout_has("building httpd\n")
        .stdout_has("greeting: built by a composite buildpackage\n");
    let greeting = ["--entrypoint", "/cnb/process/greeting", "meta:979303"];
    assert_eq!(run(&greeting), "greetings from a composite\n");
    let greet = ["--entrypoint", "/cnb/process/greet", "meta:979303"];
    assert_eq!(run(&greet), "hello world\n");
    // It was imported as locald-buildpackage/<file name>; `image import` takes a `.cnb`
    // as the OCI archive it is too.
    let images = with_store(project.locald(["image", "ls"]), data).success();
    images.stdout_has("locald-buildpackage/meta:latest");
    with_store(project.locald(["image", "import", "meta.cnb"]), data)
        .code(1)
        .stderr_has("OCI layout `meta.cnb` does not name its image")
        .stderr_has("with --name");
    with_store(
        project.locald(["image", "import", "meta.cnb", "--name", "bp-meta:979307"]),
        data,
    )
    .success()
    .stderr_has("imported docker.io/library/bp-meta:979307");

    // A buildpack directory.
    CnbBuildpackage::Extra
        .write_dir(&project.path().join("bp-dir"))
        .unwrap();
    let out = build(&["-b", "./bp-dir", "--tag", "dir:979304"]).success();
    assert_eq!(
        detected(&out.stdout),
        ["test/extra@0.0.2"],
        "{}",
        out.stdout
    );

    // The builder's image is untouched: without --buildpack, its own order again, and
    // no buildpack of the packages in its /cnb.
    let out = build(&["--tag", "plain:979305"]).success();
    assert_eq!(
        detected(&out.stdout),
        ["test/httpd@0.0.1", "test/procfile@0.0.1"],
        "{}",
        out.stdout
    );
    let listing = run(&["--entrypoint", "ls", builder.as_str(), "/cnb/buildpacks"]);
    assert!(!listing.contains("test_extra"), "{listing}");

    // Unknown refs: refused before the lifecycle runs, naming the ref.
    let missing = format!("{}/cnb/none:979306", registry.addr());
    for (reference, expected) in [
        (
            "test/nope@1.0.0",
            "buildpack `test/nope@1.0.0` was not found".to_string(),
        ),
        (
            "test/httpd@9.9.9",
            "not a buildpack of the builder (it has test/httpd@0.0.1)".to_string(),
        ),
        (
            missing.as_str(),
            format!("buildpack `{missing}` was not found"),
        ),
        (
            &format!("docker://{missing}"),
            format!("buildpack `docker://{missing}`: cannot pull its image"),
        ),
        (
            "urn:cnb:builder:test/extra",
            "buildpack `urn:cnb:builder:test/extra`: the builder has no such buildpack".to_string(),
        ),
    ] {
        let failed = build(&["-b", reference]).code(1);
        failed.stderr_has(&expected);
        assert!(
            !failed.stdout.contains("===> DETECTING"),
            "{}",
            failed.stdout
        );
    }

    // Hostile buildpackages: refused before anything runs.
    for (name, kind, expected) in [
        (
            "cnb/bp-path:1",
            HostileBuildpackage::PathInLabel,
            "the id `../../etc`",
        ),
        (
            "cnb/bp-outside:1",
            HostileBuildpackage::OutsideTree,
            "/etc is outside the buildpacks",
        ),
    ] {
        push(&registry, name, &cnb_hostile_buildpackage(kind));
        let reference = format!("{}/{name}", registry.addr());
        let failed = build(&["-b", &reference]).code(1);
        failed
            .stderr_has(&format!(
                "buildpack `{reference}` is not a usable buildpackage"
            ))
            .stderr_has(expected);
        assert!(
            !failed.stdout.contains("===> DETECTING"),
            "{}",
            failed.stdout
        );
    }
}

#[test]
fn a_services_buildpacks_are_paths_of_the_project_wherever_locald_runs() {
    let (_registry, builder) = registry_with_builder();
    let project = site_project(979311);
    project.write("bp/.keep", "");
    project.write("deep/down/.keep", "");
    CnbBuildpackage::Meta
        .write_cnb_file(&project.path().join("bp/meta.cnb"))
        .unwrap();
    project.write(
        "locald.toml",
        &format!(
            "[services.web]\nbuild = {{ builder = \"{builder}\", \
             buildpacks = [\"test/httpd\", \"test/procfile\", \"bp/meta.cnb\"] }}\n"
        ),
    );
    let data = tempfile::tempdir().expect("data dir");
    let out = with_store(
        project
            .locald(["build", "web"])
            .current_dir(&project.path().join("deep/down")),
        data.path(),
    )
    .success();
    assert_eq!(detected(&out.stdout), WITH_META, "{}", out.stdout);
    out.stdout_has("built web: ");
}
