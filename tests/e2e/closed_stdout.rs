//! A reader that goes away (`locald status | head -1`, `locald logs -f |
//! grep -m1 ready`) ends the command quietly with 141, as SIGPIPE ends other
//! Unix tools: no panic, no follow that goes on forever.

use std::io::{BufRead, BufReader};
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{locald_bin, Project};

/// A pipe whose reading end is already closed: every write gets EPIPE.
fn closed_pipe() -> OwnedFd {
    let (read, write) = nix::unistd::pipe().unwrap();
    drop(read);
    write
}

fn wait_with_deadline(child: &mut std::process::Child, within: Duration) -> i32 {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("locald went on after its reader left");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn status_into_a_closed_pipe_exits_141_without_a_panic() {
    let project = Project::with_toml("[services.web]\ncommand = \"sleep 1\"\n");
    for args in [&["status"][..], &["status", "--json"]] {
        let output = Command::new(locald_bin())
            .args(args)
            .current_dir(project.path())
            .stdout(Stdio::from(closed_pipe()))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(output.status.code(), Some(141), "{args:?}: {stderr}");
    }
}

#[test]
fn stdlib_and_the_repl_into_a_closed_pipe_exit_141_without_a_panic() {
    let project = Project::new();
    for (args, input) in [
        (&["stdlib"][..], ""),
        (&["stdlib", "up"], ""),
        (&["repl"], "1 + 1\n"),
    ] {
        let mut child = Command::new(locald_bin())
            .args(args)
            .current_dir(project.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::from(closed_pipe()))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(output.status.code(), Some(141), "{args:?}: {stderr}");
    }
}

#[test]
fn logs_follow_ends_when_its_reader_leaves() {
    let project = Project::with_toml(
        "[services.ticker]\ncommand = \"while true; do echo tick-4711; sleep 0.05; done\"\nhealth = \"none\"\n",
    );
    project.locald(["up", "-d", "--wait"]).success();
    let mut child = Command::new(locald_bin())
        .args(["logs", "-f", "ticker"])
        .current_dir(project.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.contains("tick-4711"), "{line}");
    drop(reader);
    assert_eq!(wait_with_deadline(&mut child, Duration::from_secs(10)), 141);
    project.locald(["down"]).success();
}
