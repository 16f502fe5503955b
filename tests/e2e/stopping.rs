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
pub fn exit_of(child: Child) -> Output {
    let pid = child.id() as i32;
    let deadline = Instant::now() + Duration::from_secs(30);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let still_running = alive(pid);
    if still_running {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        // What it started may hold its output open: started in its own
        // process group, they go with it, so the wait below cannot hang.
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let output = child.wait_with_output().expect("wait locald");
    assert!(!still_running, "locald did not end");
    output
}

/// Starts `locald ARGS` in its own process group, waits for the command
/// carrying `marker` and sends `signal` as a terminal would (Ctrl-C: to the
/// whole group) or as `kill` would (SIGTERM: to locald only).
pub fn signal_during_command(
    project: &Project,
    args: &[&str],
    marker: &str,
    signal: Signal,
) -> Output {
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

/// A service that ignores SIGTERM (its stop signal), with a `stop_timeout`
/// longer than the tests' guard: only a forced stop ends it in time.
fn stubborn_service(marker: &str) -> Project {
    Project::with_toml(&format!(
        "[services.web]\ncommand = \"trap '' TERM; exec sleep {marker}\"\nhealth = \"none\"\nstop_timeout = \"60s\"\n"
    ))
}

/// The lines `child` writes to stderr, as they come.
fn stderr_lines(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let stderr = child.stderr.take().expect("stderr piped");
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    received
}

/// Reads `lines` until one contains `needle` (under a guard); returns them.
fn read_until(lines: &std::sync::mpsc::Receiver<String>, needle: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(100)) {
            let found = line.contains(needle);
            seen.push(line);
            if found {
                return seen;
            }
        }
    }
    panic!("no line with {needle:?} in {seen:#?}");
}

#[test]
fn ctrl_c_of_up_says_what_it_waits_for_and_a_second_one_kills() {
    let project = stubborn_service("961110");
    let mut child = project.locald(["up"]).process_group().spawn();
    let pid = Pid::from_raw(child.id() as i32);
    let lines = stderr_lines(&mut child);
    wait_for_handler(pid.as_raw(), Signal::SIGINT);
    one_pid("961110");
    kill(pid, Signal::SIGINT).expect("first Ctrl-C");
    let said = read_until(&lines, "waiting for web to stop");
    let notice = said.last().expect("a line");
    assert!(
        notice.contains("(SIGTERM ")
            && notice.contains("killed at 60s); Ctrl-C again to kill it now"),
        "{notice}"
    );
    kill(pid, Signal::SIGINT).expect("second Ctrl-C");
    let output = exit_of(child);
    assert!(output.status.code().is_some(), "{:?}", output.status);
    assert!(pids_with_arg("961110").is_empty(), "the service survived");
    let later: Vec<String> = lines.try_iter().collect();
    assert!(
        !later.iter().any(|line| line.contains("waiting for")),
        "said once: {later:#?}"
    );
}

#[test]
fn ctrl_c_during_down_kills_what_it_waits_for() {
    let project = stubborn_service("961111");
    project
        .locald(["up", "-d", "--wait", "--timeout", "20"])
        .success();
    one_pid("961111");
    let output = down_with_ctrl_c(&project);
    assert_eq!(output.status.code(), Some(0), "down did its job");
    assert!(pids_with_arg("961111").is_empty(), "the service survived");
    assert!(
        !project.path().join(".locald/supervisor.sock").exists(),
        "the supervisor is gone once down returns"
    );
}

#[test]
fn a_slow_stop_says_what_it_waits_for_and_ctrl_c_kills_it() {
    let project = stubborn_service("961112");
    project
        .locald(["up", "-d", "--wait", "--timeout", "20"])
        .success();
    for verb in ["stop", "restart"] {
        let before = one_pid("961112");
        let mut child = project.locald([verb, "web"]).process_group().spawn();
        let pid = Pid::from_raw(child.id() as i32);
        let lines = stderr_lines(&mut child);
        let said = read_until(&lines, "waiting for web to stop");
        assert!(
            said.last()
                .is_some_and(|line| line.ends_with("killed at 60s); Ctrl-C to kill it now")),
            "{verb}: {said:#?}"
        );
        kill(pid, Signal::SIGINT).expect("Ctrl-C");
        read_until(&lines, "killing web now");
        let output = exit_of(child);
        assert_eq!(output.status.code(), Some(0), "{verb} did its job");
        assert!(!alive(before), "{verb}: the old process survived");
        if verb == "stop" {
            assert!(pids_with_arg("961112").is_empty(), "the service survived");
            project.locald(["start", "web"]).success();
            project.wait_for("web back", Duration::from_secs(20), |_| {
                !pids_with_arg("961112").is_empty()
            });
        } else {
            project.wait_for("web restarted", Duration::from_secs(20), |_| {
                pids_with_arg("961112").iter().any(|pid| *pid != before)
            });
        }
    }
    // Not the 60 s a plain `down` would wait.
    down_with_ctrl_c(&project);
}

/// `locald down` of a stubborn `web`: once it says it waits for web (and
/// that a Ctrl-C kills it), a Ctrl-C; its output.
fn down_with_ctrl_c(project: &Project) -> Output {
    let mut child = project.locald(["down"]).process_group().spawn();
    let lines = stderr_lines(&mut child);
    let said = read_until(&lines, "waiting for web to stop");
    assert!(
        said.last()
            .is_some_and(|line| line.ends_with("killed at 60s); Ctrl-C to kill it now")),
        "{said:#?}"
    );
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).expect("Ctrl-C");
    exit_of(child)
}
