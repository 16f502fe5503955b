//! Exit codes as shells and Docker give them: 127 when the command is not
//! found, 126 when it cannot be executed, for `run`, `try` and
//! `container run` alike, with a short message naming the command.

use std::os::unix::fs::PermissionsExt;

use crate::harness::Project;

fn project() -> Project {
    Project::with_toml("[services.web]\ncommand = \"sleep 963310\"\n")
}

#[test]
fn a_command_not_found_exits_127() {
    let project = project();
    project
        .locald(["run", "web", "--", "nosuch-963311", "arg"])
        .code(127)
        .stderr_is("locald: nosuch-963311: command not found\n");
    project
        .locald(["try", "--no-save", "--", "nosuch-963311", "arg"])
        .code(127)
        .stderr_has("locald: nosuch-963311: command not found\n");
    project
        .locald(["run", "web", "--", "./missing-963311", "arg"])
        .code(127)
        .stderr_is("locald: ./missing-963311: no such file or directory\n");
    // A shell line: the shell says it, with the same code.
    project
        .locald(["run", "web", "--", "nosuch-963311"])
        .code(127);
}

#[test]
fn a_command_that_cannot_be_executed_exits_126() {
    let project = project().file("not-executable", "#!/bin/sh\necho no\n");
    project
        .locald(["run", "web", "--", "./not-executable", "arg"])
        .code(126)
        .stderr_is("locald: ./not-executable: permission denied\n");
    project
        .locald(["try", "--no-save", "--", "./not-executable", "arg"])
        .code(126)
        .stderr_has("locald: ./not-executable: permission denied\n");
    std::fs::create_dir(project.path().join("a-dir")).unwrap();
    project
        .locald(["run", "web", "--", "./a-dir", "arg"])
        .code(126)
        .stderr_is("locald: ./a-dir: is a directory\n");
    // Executable, but not a format the kernel runs.
    let garbage = project.path().join("garbage");
    std::fs::write(&garbage, b"\x7fELF\x00\x00garbage").unwrap();
    std::fs::set_permissions(&garbage, std::fs::Permissions::from_mode(0o755)).unwrap();
    project
        .locald(["run", "web", "--", "./garbage", "arg"])
        .code(126)
        .stderr_is("locald: ./garbage: exec format error\n");
}
