//! Stopping when asked: a Ctrl-C during a script's command ends the script
//! (as make and just do), `try` still offers to save a server stopped by
//! Ctrl-C, and stopping services says what it waits for and can be forced by
//! a second Ctrl-C.

use std::process::{Child, Output};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

use crate::bounded_scripts::wait_for_handler;
use crate::harness::{alive, one_pid, pids_with_arg, Project};

/// Waits for `child` to exit by itself (the bound is a guard against a hang,
/// not a timing check) and returns its output.
fn exit_of(child: Child) -> Output {
    let pid = child.id() as i32;
    let deadline = Instant::now() + Duration::from_secs(30);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let still_running = alive(pid);
    if still_running {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let output = child.wait_with_output().expect("wait locald");
    assert!(!still_running, "locald did not end");
    output
}

/// Starts `locald ARGS` in its own process group, waits for the command
/// carrying `marker` and sends `signal` as a terminal would (Ctrl-C: to the
/// whole group) or as `kill` would (SIGTERM: to locald only).
fn signal_during_command(project: &Project, args: &[&str], marker: &str, signal: Signal) -> Output {
    let child = project.locald(args).process_group().spawn();
    let pid = child.id() as i32;
    wait_for_handler(pid, signal);
    one_pid(marker);
    match signal {
        Signal::SIGINT => killpg(Pid::from_raw(pid), signal).expect("signal the group"),
        _ => kill(Pid::from_raw(pid), signal).expect("signal locald"),
    }
    exit_of(child)
}

#[test]
fn ctrl_c_or_sigterm_during_run_command_ends_the_script() {
    let project = Project::new().file(
        "task.rhai",
        "run_command(\"exec sleep 961101\");\nprint(\"after\");\n",
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        let output = signal_during_command(&project, &["script", "task.rhai"], "961101", signal);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            !stdout.contains("after"),
            "{signal}: the script went on: {stdout}"
        );
        assert_eq!(output.status.code(), Some(128 + signal as i32), "{signal}");
        assert!(
            pids_with_arg("961101").is_empty(),
            "{signal}: the command survived"
        );
    }
}

#[test]
fn a_script_that_asks_to_continue_gets_the_interrupt_as_its_code() {
    let project = Project::new().file(
        "task.rhai",
        "let code = run_command(\"exec sleep 961102\", #{ on_interrupt: \"continue\" });\nprint(`after ${code}`);\n",
    );
    let output =
        signal_during_command(&project, &["script", "task.rhai"], "961102", Signal::SIGINT);
    assert_eq!(String::from_utf8_lossy(&output.stdout), "after 130\n");
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn try_save_keeps_a_server_stopped_by_ctrl_c() {
    let project = Project::new();
    let output = signal_during_command(
        &project,
        &["try", "--save", "web", "--", "sleep 961103"],
        "961103",
        Signal::SIGINT,
    );
    assert_eq!(output.status.code(), Some(130));
    let saved = project.read("locald.toml");
    assert!(
        saved.contains("[services.web]\ncommand = \"sleep 961103\"\n"),
        "{saved}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
