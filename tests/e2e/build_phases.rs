//! The build as primitives: a task script that runs the phases itself
//! (`prepare_build`, `b.detect()`, `b.build()`, `b.export_image()`), reads what each
//! gave, and runs a process type of the image it stored with `run_container`, as
//! `image_processes` lists them.

use crate::builds::{registry_with_builder, site_project};
use crate::cnb_images::with_store;

/// What the task prints, one line per fact the phases gave.
const PHASES_TASK: &str = r#"
let builder = args.argv[0];

// A detect that fails ends its build, and releases the name's cache at once: the next
// build of the same name below does not wait for it.
let failing = prepare_build(".", #{ builder: builder, tag: "site:979501", env: #{ HTTPD_FAIL: "1" } });
try {
    failing.detect();
} catch (e) {
    print(`detect failed: ${e}`);
}
print(`then ${failing.phase}`);
try { failing.build(); } catch (e) { print(`refused: ${e}`); }

let b = prepare_build(".", #{ builder: builder, tag: "site:979501" });
print(`prepared ${b.tag} from ${b.builder} on ${b.run_image}: ${b.phase}`);
try { b.build(); } catch (e) { print(`refused: ${e}`); }
let found = b.detect();
for bp in found.group { print(`group ${bp.id}@${bp.version}`); }
for entry in found.plan {
    print(`plan ${entry.name} provided by ${entry.providers[0].id}, root ${entry.requires[0].metadata.root}`);
}
let made = b.build();
for p in made.processes { print(`process ${p.type}: ${p.command} ${p.args}`); }
print(`default ${made.default_process}`);
let image = b.export_image();
print(`stored ${image.reference} ${image.digest.len()}, ${b.phase}`);

for p in image_processes(image.reference) {
    if p.type == "greet" {
        let code = run_container(image.reference, #{ entrypoint: ["/cnb/process/" + p.type], command: ["979502"] });
        print(`greet exited ${code}`);
    }
}
"#;

#[test]
fn a_task_script_runs_the_build_phases_itself() {
    let (_registry, builder) = registry_with_builder();
    let project = site_project(979503);
    project.write(
        "locald.toml",
        "[services.idle]\ncommand = \"sleep 979504\"\n",
    );
    project.write("tasks/phases.rhai", PHASES_TASK);
    let data = tempfile::tempdir().expect("data dir");

    let out = with_store(
        project.locald(["task", "phases", builder.as_str()]),
        data.path(),
    )
    .success();
    out.stdout_has("===> DETECTING\n")
        .stdout_has(
            "detect failed: the build failed: a buildpack errored during detection (exit 21)",
        )
        .stdout_has("then failed\n")
        .stdout_has("refused: build: this build failed at detect;")
        .stdout_has(&format!("prepared site:979501 from {builder} on "))
        .stdout_has(": prepared\n")
        .stdout_has("refused: build: this build is not detected yet;")
        .stdout_has("group test/httpd@0.0.1\ngroup test/procfile@0.0.1\n")
        .stdout_has("plan httpd provided by test/httpd, root static\n")
        .stdout_has("===> BUILDING\n")
        .stdout_has("process greet: [\"echo\", \"hello\"] [\"world\"]\n")
        .stdout_has("default web\n")
        .stdout_has("===> EXPORTING\n")
        .stdout_has("stored docker.io/library/site:979501 71, exported\n")
        // The user's arguments replace the process's default ones.
        .stdout_has("hello 979502\n")
        .stdout_has("greet exited 0\n");
    // The phases print what `locald build` prints, in order.
    let at = |line: &str| out.stdout.rfind(line).unwrap();
    assert!(
        at("===> RESTORING") < at("===> DETECTING")
            && at("===> DETECTING") < at("===> BUILDING")
            && at("===> BUILDING") < at("===> EXPORTING"),
        "{}",
        out.stdout
    );
    let images = with_store(project.locald(["image", "ls"]), data.path()).success();
    images.stdout_has("site:979501");
}
