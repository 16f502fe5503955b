//! Exit codes as shells and Docker give them: 127 when the command is not
//! found, 126 when it cannot be executed, for `run`, `try` and
//! `container run` alike, with a short message naming the command.

use std::os::unix::fs::PermissionsExt;

use crate::harness::Project;

fn project() -> Project {
    Project::with_toml("[services.web]\ncommand = \"sleep 963310\"\n")
}

/// `run` and `try` of `program` (as an argv) both exit `code`, saying
/// `reason` in one line (after `try`'s PORT line).
fn both_fail(project: &Project, program: &str, code: i32, reason: &str) {
    let said = format!("locald: {program}: {reason}\n");
    project
        .locald(["run", "web", "--", program, "arg"])
        .code(code)
        .stderr_is(&said);
    project
        .locald(["try", "--no-save", "--", program, "arg"])
        .code(code)
        .stderr_has(&said);
}

#[test]
fn a_command_not_found_exits_127() {
    let project = project();
    both_fail(&project, "nosuch-963311", 127, "command not found");
    both_fail(
        &project,
        "./missing-963311",
        127,
        "no such file or directory",
    );
    // A shell line: the shell says it, with the same code.
    project
        .locald(["run", "web", "--", "nosuch-963311"])
        .code(127);
}

#[test]
fn a_command_that_cannot_be_executed_exits_126() {
    let project = project().file("not-executable", "#!/bin/sh\necho no\n");
    both_fail(&project, "./not-executable", 126, "permission denied");
    std::fs::create_dir(project.path().join("a-dir")).unwrap();
    both_fail(&project, "./a-dir", 126, "is a directory");
    // Executable, but not a format the kernel runs.
    let garbage = project.path().join("garbage");
    std::fs::write(&garbage, b"\x7fELF\x00\x00garbage").unwrap();
    std::fs::set_permissions(&garbage, std::fs::Permissions::from_mode(0o755)).unwrap();
    both_fail(&project, "./garbage", 126, "exec format error");
}
