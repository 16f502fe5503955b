//! `locald exec` into a running host service: its PID namespace (and a
//! /proc of it), working directory and environment, exit codes, a real
//! terminal with -it, and an exec'd process never outliving the service.

use std::time::Duration;

use crate::harness::{pids_with_arg, supervisor_pid, Project};

/// A service that writes a file at start, in its own working directory,
/// and sleeps with `marker`.
fn up(marker: u32) -> Project {
    let toml = format!(
        r#"
[services.web]
command = "echo written-at-start > marker.txt; sleep {marker}"
workdir = "app"
health = "none"
env = {{ GREETING = "hello from web" }}
"#
    );
    let project = Project::with_toml(&toml).file("app/.keep", "");
    project
        .locald(["up", "-d", "--wait", "--timeout", "20s"])
        .success();
    project.wait_for("the service's sleep", Duration::from_secs(5), |_| {
        pids_with_arg(&marker.to_string()).len() == 1
    });
    project
}

#[test]
fn exec_runs_in_the_service_with_its_tree_environment_and_directory() {
    let project = up(973130);
    // `ps` lists the service's own processes only: its init as PID 1, its
    // command, and `ps` itself.
    let out = project
        .locald(["exec", "web", "--", "ps", "-e", "-o", "pid=,args="])
        .success();
    let processes: Vec<(u32, &str)> = out
        .stdout
        .lines()
        .map(|line| {
            let (pid, args) = line.trim().split_once(' ').expect("pid and args");
            (pid.parse().expect("a pid"), args.trim())
        })
        .collect();
    assert_eq!(processes.len(), 4, "{out}");
    assert_eq!(processes[0].0, 1, "the service's init is PID 1\n{out}");
    assert!(
        processes.iter().any(|(_, args)| *args == "sleep 973130"),
        "{out}"
    );
    assert!(
        processes.iter().any(|(_, args)| args.starts_with("ps ")),
        "{out}"
    );

    // Its environment, its working directory and a file it wrote at start.
    let out = project
        .locald([
            "exec",
            "-e",
            "EXTRA=given",
            "web",
            "--",
            "echo \"$GREETING/$EXTRA/$PORT\"; basename \"$PWD\"; cat marker.txt",
        ])
        .success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    let fields: Vec<&str> = lines[0].split('/').collect();
    assert_eq!(&fields[..2], ["hello from web", "given"], "{out}");
    assert!(fields[2].parse::<u16>().is_ok(), "PORT\n{out}");
    assert_eq!(&lines[1..], ["app", "written-at-start"], "{out}");
    // -w, relative to the service's directory.
    project.write("app/sub/.keep", "");
    project
        .locald(["exec", "-w", "sub", "web", "--", "pwd"])
        .success()
        .stdout_has("/app/sub\n");

    // -u: another user (root may).
    project
        .locald(["exec", "-u", "nobody", "web", "--", "id -un"])
        .success()
        .stdout_is("nobody\n");
    project
        .locald(["exec", "-u", "no-such-user-973130", "web", "--", "true"])
        .code(126)
        .stderr_has("unknown user `no-such-user-973130`");

    // Exit codes pass through; stdin only with -i.
    project.locald(["exec", "web", "--", "exit 7"]).code(7);
    project
        .locald(["exec", "web", "--", "no-such-command-973130"])
        .code(127)
        .stderr_has("no-such-command-973130: command not found");
    project
        .locald(["exec", "-i", "web", "--", "cat"])
        .stdin("piped in\n")
        .success()
        .stdout_is("piped in\n");
    project
        .locald(["exec", "web", "--", "cat"])
        .stdin("not passed on\n")
        .success()
        .stdout_is("");
    // The ID from `ps` names the same process.
    let ps = project.locald(["ps", "--json"]).success();
    let ps: serde_json::Value = serde_json::from_str(&ps.stdout).unwrap();
    let id = ps[0]["id"].as_str().expect("an ID").to_string();
    project
        .locald(["exec", &id, "--", "cat marker.txt"])
        .success()
        .stdout_is("written-at-start\n");
}

#[test]
fn exec_gets_a_real_terminal_with_it() {
    let project = up(973131);
    let (success, stdout) = crate::harness::in_a_terminal(
        &project,
        "exec -it web -- sh -c 'tty; echo terminal-ok'",
        &[],
    );
    assert!(success, "{stdout}");
    assert!(stdout.contains("/dev/pts/"), "a terminal: {stdout}");
    assert!(stdout.contains("terminal-ok"), "{stdout}");
    // Without one, -t is refused before anything runs.
    project
        .locald(["exec", "-t", "web", "--", "true"])
        .code(1)
        .stderr_is("error: -t (tty) needs a terminal: stdin is not one\n");
}

#[test]
fn an_exec_never_outlives_the_service() {
    let project = up(973132);
    // Stopping the service ends the exec'd process (and the exec).
    let mut exec = project
        .locald(["exec", "web", "--", "setsid sleep 973133 & sleep 973134"])
        .spawn();
    project.wait_for("the exec'd sleepers", Duration::from_secs(5), |_| {
        pids_with_arg("973133").len() == 1 && pids_with_arg("973134").len() == 1
    });
    project.locald(["stop", "web"]).success();
    project.wait_for("no exec'd process", Duration::from_secs(5), |_| {
        pids_with_arg("973133").is_empty() && pids_with_arg("973134").is_empty()
    });
    let status = exec.wait().expect("the exec ends");
    assert_eq!(status.code(), Some(128 + 9), "killed with the namespace");

    // Not running: a clear error that suggests `run`.
    project
        .locald(["exec", "web", "--", "true"])
        .code(1)
        .stderr_has("service `web` is not running")
        .stderr_has("locald run web -- COMMAND");

    // After a kill -9 of the supervisor, nothing is left either.
    project.locald(["start", "web"]).success();
    project.wait_for("the service again", Duration::from_secs(5), |_| {
        pids_with_arg("973132").len() == 1
    });
    let mut exec = project
        .locald(["exec", "web", "--", "setsid sleep 973135 & sleep 973136"])
        .spawn();
    project.wait_for("the exec'd sleepers", Duration::from_secs(5), |_| {
        pids_with_arg("973135").len() == 1 && pids_with_arg("973136").len() == 1
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(supervisor_pid(&project)),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    project.wait_for("no survivors", Duration::from_secs(5), |_| {
        ["973132", "973135", "973136"]
            .iter()
            .all(|marker| pids_with_arg(marker).is_empty())
    });
    let status = exec.wait().expect("the exec ends");
    assert_eq!(status.code(), Some(128 + 9), "killed with the namespace");
}

#[test]
fn exec_names_what_it_knows_when_the_target_is_unknown() {
    let project = up(973137);
    project
        .locald(["exec", "nope", "--", "true"])
        .code(1)
        .stderr_has("no service or process ID `nope`; known services: web; process IDs: ");
    Project::with_toml("[services.web]\ncommand = \"sleep 973138\"\n")
        .locald(["exec", "web", "--", "true"])
        .code(1)
        .stderr_has("no supervisor is running")
        .stderr_has("locald up -d");
}

/// `locald exec` as an unprivileged user: the supervisor's services run in
/// PID namespaces inside a user namespace of the user's own, which exec
/// joins first.
#[test]
fn rootless_exec_into_a_host_service() {
    let project = crate::rootless_services::UserProject::without_images(
        "[services.web]\ncommand = \"sleep 973151\"\nhealth = \"none\"\n",
    );
    let uid = project.user.0;
    let as_user = |args: &[&str]| project.run(args);
    let (code, _, stderr) = as_user(&["up", "-d", "--wait", "--timeout", "20s"]);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stdout, stderr) = as_user(&["exec", "web", "--", "id -u; ps -e -o pid=,args="]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().map(str::trim).collect();
    assert_eq!(lines[0], uid.to_string(), "the user's own id\n{stdout}");
    // `id`'s line, then the init (PID 1), the service's shell and sleep,
    // the exec'd shell and `ps`: nothing else.
    assert!(lines[1].starts_with("1 "), "{stdout}");
    assert!(lines.contains(&"3 sleep 973151"), "{stdout}");
    assert_eq!(lines.len(), 6, "the service's processes only\n{stdout}");
    let (code, _, _) = as_user(&["exec", "web", "--", "exit 3"]);
    assert_eq!(code, Some(3));
    let (code, _, stderr) = as_user(&["down"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(pids_with_arg("973151").is_empty());
}

/// `locald exec` into a container service of an unprivileged user: it
/// joins the container's own namespaces (its user namespace, two levels
/// below the user's, where they are root), its filesystem and environment.
#[test]
fn rootless_exec_into_a_container_service() {
    let project = crate::rootless_services::UserProject::new(
        r#"
[services.db]
image = "bb:1"
command = "echo written-at-start > /tmp/marker; exec sleep 978110"
env = { GREETING = "hello from db" }
health = "none"
"#,
    );
    project.ok(&["up", "-d", "--wait", "--timeout", "30s"]);
    crate::harness::one_pid("978110");
    let out = project.ok(&[
        "exec",
        "db",
        "--",
        "id -u; echo \"$GREETING\"; cat /tmp/marker; ps -o pid,args",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..3],
        ["0", "hello from db", "written-at-start"],
        "root in the container's user namespace\n{out}"
    );
    // The container's processes only: its command as PID 1, and the shell
    // become `ps` (busybox shows it as `{ps} sh -c ...`).
    let rows: Vec<Vec<&str>> = lines[4..]
        .iter()
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!(rows[0][..3], ["1", "sleep", "978110"], "{out}");
    assert!(rows[1].contains(&"ps"), "{out}");
    let (code, _, _) = project.run(&["exec", "db", "--", "exit 6"]);
    assert_eq!(code, Some(6));
    project.ok(&["down"]);
    assert!(pids_with_arg("978110").is_empty());
    assert!(project.bundles_left().is_empty());
}
