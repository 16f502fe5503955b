//! The lifecycle over the fixture builder images (not the unit tests' own buildpacks):
//! detection with composites, optional buildpacks and `or` alternatives, and a build's
//! layers, processes and environment, with the buildpacks unpacked from the image store.

mod support;

use locald_image::testing::CnbBuilder;
use support::HostBuild;

/// The group as `id@version` keys.
fn group_keys(detected: &locald_cnb::detect::Detected) -> Vec<String> {
    detected.group.group.iter().map(|m| m.key()).collect()
}

#[test]
fn httpd_builder_detects_groups_as_the_order_says() {
    let site = HostBuild::new(CnbBuilder::Httpd);
    site.site_app();
    let detected = site.detect().unwrap();
    assert_eq!(
        group_keys(&detected),
        ["test/httpd@0.0.1", "test/procfile@0.0.1"]
    );
    assert!(detected
        .group
        .group
        .iter()
        .all(|m| m.api.to_string() == "0.10"));
    let [entry] = &detected.plan.entries[..] else {
        panic!("{:?}", detected.plan)
    };
    assert_eq!(entry.providers[0].id.to_string(), "test/httpd");
    assert_eq!(entry.requires[0].name, "httpd");
    assert_eq!(entry.requires[0].metadata["root"].as_str(), Some("static"));

    let proc_only = HostBuild::new(CnbBuilder::Httpd);
    proc_only.app_file("Procfile", "worker: echo working\n");
    assert_eq!(
        group_keys(&proc_only.detect().unwrap()),
        ["test/procfile@0.0.1"]
    );

    let empty = HostBuild::new(CnbBuilder::Httpd);
    assert_eq!(empty.detect().unwrap_err().exit_code(), 20);

    let failing = HostBuild::new(CnbBuilder::Httpd);
    failing.site_app();
    failing.platform_env("HTTPD_FAIL", "1");
    let error = failing.detect().unwrap_err();
    assert_eq!(error.exit_code(), 21);
    assert!(error.to_string().contains("HTTPD_FAIL is set"), "{error}");
}

#[test]
fn httpd_builder_builds_layers_processes_and_observations() {
    let site = HostBuild::new(CnbBuilder::Httpd);
    site.site_app();
    let (metadata, log) = site.build();
    assert!(log.contains("building httpd"), "{log}");
    let types: Vec<_> = metadata
        .processes
        .iter()
        .map(|p| p.r#type.as_str())
        .collect();
    assert_eq!(types, ["env-dump", "greet", "web"]);
    assert_eq!(metadata.default_process.as_deref(), Some("web"));
    assert_eq!(metadata.slices[0].paths, ["static"]);
    assert_eq!(metadata.image_labels()["io.test.httpd"], "yes");
    assert!(site.layer("test_httpd", "httpd/bin/serve").is_file());
    assert!(site.layer("test_httpd", "scratch.ignore").is_dir());
    let observations = std::fs::read_to_string(site.dirs.app.join(".build-observations")).unwrap();
    let serve = site.layer("test_httpd", "httpd/bin/serve");
    assert!(
        observations.contains(&format!("serve={}\n", serve.display())),
        "{observations}"
    );
    assert!(observations.contains("HTTPD_BUILT=1\n"), "{observations}");
    assert!(observations.contains("PORT_SET=\n"), "{observations}");
    assert!(
        observations.contains("HTTPD_ROOT=/workspace/static\n"),
        "{observations}"
    );
}

#[test]
fn pipeline_builder_resolves_or_alternatives_and_drops_the_optional_linter() {
    let full = HostBuild::new(CnbBuilder::Pipeline);
    full.app_file("main.sh", "echo main\n");
    full.app_file("runtime.txt", "3.1\n");
    let detected = full.detect().unwrap();
    // test/stack expanded to test/runtime and test/lint; the linter's require is unmet and
    // it is optional, so it is dropped.
    assert_eq!(
        group_keys(&detected),
        ["test/runtime@0.0.1", "test/app@0.0.1"]
    );
    let names: Vec<_> = detected
        .plan
        .entries
        .iter()
        .map(|e| e.requires[0].name.as_str())
        .collect();
    assert_eq!(names, ["runtime"]);

    let lite = HostBuild::new(CnbBuilder::Pipeline);
    lite.app_file("main.sh", "echo main\n");
    lite.app_file("runtime.txt", "3.1\n");
    lite.app_file("LITE", "");
    let (metadata, log) = lite.build();
    let plan = std::fs::read_to_string(lite.dirs.layers.join("plan.toml")).unwrap();
    assert!(plan.contains("name = \"runtime-lite\""), "{plan}");
    assert!(log.contains("runtime: installed runtime-lite"), "{log}");
    // The runtime's build layer was on test/app's PATH.
    let at_build = std::fs::read_to_string(lite.dirs.app.join(".runtime-at-build")).unwrap();
    assert_eq!(at_build, "runtime 3.1 (runtime-lite)\n");
    assert_eq!(metadata.default_process.as_deref(), Some("main"));
    let version = metadata
        .processes
        .iter()
        .find(|p| p.r#type == "version")
        .unwrap();
    assert_eq!(version.working_dir.as_deref(), Some("sub"));

    let none = HostBuild::new(CnbBuilder::Pipeline);
    none.app_file("main.sh", "echo main\n");
    let error = none.detect().unwrap_err();
    assert_eq!(error.exit_code(), 20, "{error}");
}
