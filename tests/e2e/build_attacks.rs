//! Hostile buildpacks against `locald build`: what an untrusted buildpack does in the
//! build container must not keep the build (or the host) hostage.

use std::time::{Duration, Instant};

use crate::builds::{registry_with_builder, site_project};
use crate::cnb_images::with_store;
use crate::harness::{pids_with_arg, Project};

/// Writes a buildpack directory `attack/<name>@0.0.1` at `<project>/<name>` whose
/// `bin/build` is `build` (its `bin/detect` passes).
fn buildpack_dir(project: &Project, name: &str, build: &str) {
    project.write(
        &format!("{name}/buildpack.toml"),
        &format!(
            "api = \"0.10\"\n\n[buildpack]\nid = \"attack/{name}\"\nversion = \"0.0.1\"\n\n\
             [[targets]]\nos = \"linux\"\n"
        ),
    );
    project.write(&format!("{name}/bin/detect"), "#!/bin/sh\nexit 0\n");
    project.write(&format!("{name}/bin/build"), &format!("#!/bin/sh\n{build}"));
    for bin in ["detect", "build"] {
        let path = project.path().join(name).join("bin").join(bin);
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
}

#[test]
fn a_buildpack_daemon_holding_its_output_does_not_hold_the_build() {
    let (_registry, builder) = registry_with_builder();
    let project = site_project(979600);
    // `server &` in bin/build: the daemon keeps the buildpack's stdout open.
    buildpack_dir(
        &project,
        "daemon",
        "sleep 979601 &\necho \"daemon started\"\nexit 0\n",
    );
    let data = tempfile::tempdir().expect("data dir");
    let mut child = with_store(
        project.locald([
            "build",
            "--builder",
            builder.as_str(),
            "-b",
            "./daemon",
            "--tag",
            "daemon:979602",
        ]),
        data.path(),
    )
    .process_group()
    .spawn();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(180) {
            // Ctrl-C, as a user would: it stops the build container too.
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
            let _ = child.wait();
            panic!("the build waited for the buildpack's daemon");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("daemon started"), "{stdout}");
    // The build container ended it with the build.
    assert!(pids_with_arg("979601").is_empty());
}
