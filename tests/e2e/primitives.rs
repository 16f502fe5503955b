//! The primitives task scripts use, from `locald script`: capturing a
//! command's output, sleeping, waiting for services to be healthy, and
//! importing helper files from the project. Marker numbers: 972100-972199.

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::harness::{pids_with_arg, Project};
use crate::stopping::{exit_of, signal_during_command};

#[test]
fn capture_command_returns_code_and_output() {
    let project = Project::new().file(
        "task.rhai",
        r#"
let r = capture_command("echo out; echo err >&2; exit 3");
print(`${r.code}|${r.stdout}|${r.stderr}`);
let r = capture_command(["tr", "a-z", "A-Z"], #{ stdin: "shout" });
print(r.stdout);
let r = capture_command("printf %s \"$X\"", #{ env: #{ X: 42 } });
print(r.stdout);
"#,
    );
    project
        .locald(["script", "task.rhai"])
        .success()
        .stdout_is("3|out\n|err\n\nSHOUT\n42\n");
}

#[test]
fn ctrl_c_or_sigterm_during_capture_command_stops_the_command_and_the_script() {
    // The command's group (a child it started too) ends, and the script with
    // 128+N, as after `run_command`.
    let project = Project::new().file(
        "task.rhai",
        "capture_command(\"sleep 972101 & exec sleep 972102\");\nprint(\"after\");\n",
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        let output = signal_during_command(&project, &["script", "task.rhai"], "972102", signal);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(!stdout.contains("after"), "{signal}: went on: {stdout}");
        assert_eq!(output.status.code(), Some(128 + signal as i32), "{signal}");
        // The group is SIGKILLed as locald ends; a loaded machine may take a moment to
        // carry the kill out.
        for marker in ["972101", "972102"] {
            project.wait_for(
                &format!("{signal}: {marker} to end"),
                Duration::from_secs(5),
                |_| pids_with_arg(marker).is_empty(),
            );
        }
    }
}

#[test]
fn sleep_waits_and_ends_at_once_on_ctrl_c_or_sigterm() {
    let project = Project::new().file(
        "task.rhai",
        r#"
let started = timestamp();
sleep("300ms");
sleep(0.1);
print(started.elapsed >= 0.4);
try { sleep(-1) } catch (e) { print(e) }
"#,
    );
    project
        .locald(["script", "task.rhai"])
        .success()
        .stdout_is("true\nsleep: must not be negative\n");

    let project = Project::new().file(
        "task.rhai",
        "run_command(\"touch started\");\nsleep(60);\nprint(\"after\");\n",
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        let _ = std::fs::remove_file(project.path().join("started"));
        let child = project
            .locald(["script", "task.rhai"])
            .process_group()
            .spawn();
        let pid = Pid::from_raw(child.id() as i32);
        project.wait_for("the script to sleep", Duration::from_secs(10), |p| {
            p.path().join("started").exists()
        });
        let sent = Instant::now();
        kill(pid, signal).expect("signal locald");
        let output = exit_of(child);
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "{signal}: not at once"
        );
        assert!(!String::from_utf8_lossy(&output.stdout).contains("after"));
        assert_eq!(output.status.code(), Some(128 + signal as i32), "{signal}");
    }
}

#[test]
fn wait_healthy_returns_once_ready_and_says_what_is_not() {
    // `web` is ready at once; `slow` never is (nothing listens on its port).
    let project = Project::with_toml(
        r#"
[services.web]
command = "exec sleep 972110"
health = { none = true, settle = 0 }

[services.slow]
command = "exec sleep 972111"
health = "tcp"
"#,
    )
    .file(
        "wait.rhai",
        r#"
let p = load_project();
try { wait_healthy(p) } catch (e) { print(`1: ${e}`) }
up(p, #{ detach: true, services: ["web"] });
// Only what runs: the stopped `slow` is not waited for.
wait_healthy(p);
print(`2: ${status(p).filter(|s| s.name == "web")[0].state}`);
start(p, "slow");
try {
    wait_healthy(p, #{ services: ["slow"], timeout: "1s" });
} catch (e) { print(`3: ${e}`) }
try { wait_healthy(p, #{ services: ["nope"] }) } catch (e) { print(`4: ${e}`) }
try { wait_healthy(p, #{ timeout: -1 }) } catch (e) { print(`5: ${e}`) }
"#,
    );
    let out = project.locald(["script", "wait.rhai"]).success();
    let name = project.path().file_name().unwrap().to_string_lossy();
    out.stdout_has(&format!(
        "1: no supervisor is running for project `{name}` (start one with `locald up -d`)"
    ));
    out.stdout_has("2: healthy\n");
    out.stdout_has("3: timed out after 1s waiting for: slow (running)");
    out.stdout_has("4: unknown service `nope`; known services: web, slow");
    out.stdout_has("5: wait_healthy: option `timeout`: must not be negative");
    project.locald(["down"]).success();
    assert!(pids_with_arg("972110").is_empty() && pids_with_arg("972111").is_empty());
}

#[test]
fn wait_healthy_fails_on_a_service_that_fails_with_its_last_log_lines() {
    let project = Project::with_toml(
        r#"
[services.crashy]
command = "echo out-972112; sleep 0.5; exit 3"
health = "none"
restart = "never"
"#,
    )
    .file(
        "wait.rhai",
        r#"
let p = load_project();
up(p, #{ detach: true });
try { wait_healthy(p, #{ timeout: 30 }) } catch (e) { print(e); throw e; }
print("not reached");
"#,
    );
    let out = project.locald(["script", "wait.rhai"]).code(1);
    out.stdout_has("service crashy failed (exit code 3)\nlast log lines of crashy:\n");
    out.stdout_has("out-972112");
    assert!(!out.stdout.contains("not reached"));
    // Uncaught, it reads as `up --wait` prints it.
    out.stderr_has("error: service crashy failed (exit code 3)\nlast log lines of crashy:\n");
    project.locald(["down"]).success();
}

#[test]
fn ctrl_c_ends_wait_healthy_at_once_and_leaves_the_services() {
    let project = Project::with_toml(
        r#"
[services.slow]
command = "exec sleep 972113"
health = "tcp"
"#,
    )
    .file(
        "wait.rhai",
        r#"
let p = load_project();
up(p, #{ detach: true });
run_command("touch started");
wait_healthy(p);
print("after");
"#,
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        let _ = std::fs::remove_file(project.path().join("started"));
        let child = project
            .locald(["script", "wait.rhai"])
            .process_group()
            .spawn();
        let pid = Pid::from_raw(child.id() as i32);
        project.wait_for("the wait", Duration::from_secs(20), |p| {
            p.path().join("started").exists()
        });
        std::thread::sleep(Duration::from_millis(300));
        let sent = Instant::now();
        match signal {
            Signal::SIGINT => nix::sys::signal::killpg(pid, signal).unwrap(),
            _ => kill(pid, signal).unwrap(),
        }
        let output = exit_of(child);
        assert!(
            sent.elapsed() < Duration::from_secs(2),
            "{signal}: not at once"
        );
        assert!(!String::from_utf8_lossy(&output.stdout).contains("after"));
        assert_eq!(output.status.code(), Some(128 + signal as i32), "{signal}");
        // Only the wait ended, as with compose.
        assert_eq!(pids_with_arg("972113").len(), 1, "{signal}");
    }
    project.locald(["down"]).success();
    assert!(pids_with_arg("972113").is_empty());
}

#[test]
fn wait_healthy_takes_any_timeout_a_script_gives() {
    let project = Project::with_toml(
        r#"
[services.quick]
command = "exec sleep 976110"
"#,
    )
    .file(
        "wait.rhai",
        r#"
let p = load_project();
up(p, #{ detach: true, wait: true });
// Past what an `Instant` can hold: as good as no timeout, never a crash.
wait_healthy(p, #{ timeout: 9223372036854775807 });
print("ready");
wait_healthy(p, #{ timeout: 9.0e18 });
print("ready");
"#,
    );
    project
        .locald(["script", "wait.rhai"])
        .success()
        .stdout_is("ready\nready\n");
    project.locald(["down"]).success();
}
