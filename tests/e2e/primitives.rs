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
        for marker in ["972101", "972102"] {
            assert!(
                pids_with_arg(marker).is_empty(),
                "{signal}: {marker} survived"
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
