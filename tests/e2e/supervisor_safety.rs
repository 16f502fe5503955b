//! The supervisor against hostile or broken conditions: a stopped (SIGSTOP)
//! supervisor, a state directory deleted or prepared by someone else.

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::harness::{alive, one_pid, pids_with_arg, service_field, Project};

/// Sends SIGCONT to a stopped supervisor when dropped, so a failing test
/// leaves no frozen process behind (declare it after the project: it must
/// resume the supervisor before the project's drop brings it down).
struct Resume(i32);

impl Drop for Resume {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.0), Signal::SIGCONT);
    }
}

fn supervisor_pid(project: &Project) -> i32 {
    project
        .read(".locald/supervisor.pid")
        .trim()
        .parse()
        .expect("supervisor pid file")
}

/// Whether the process is stopped (state T in /proc).
fn stopped(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit(") ").next().unwrap_or("").starts_with('T'))
}

#[test]
fn a_stopped_supervisor_times_out_and_drops_abandoned_requests() {
    let project = Project::with_toml(
        r#"
[services.sleeper]
command = "sleep 987611"
health = "none"
"#,
    );
    project
        .locald(["up", "-d", "--wait", "--timeout", "20s"])
        .success();
    let sleeper = one_pid("987611");
    let pid = supervisor_pid(&project);
    kill(Pid::from_raw(pid), Signal::SIGSTOP).unwrap();
    let _resume = Resume(pid);
    project.wait_for("the supervisor to stop", Duration::from_secs(5), |_| {
        stopped(pid)
    });

    let not_answering = format!("the supervisor (pid {pid}) did not answer within 1s");
    for verb in [vec!["status"], vec!["stop", "sleeper"], vec!["down"]] {
        // Each ends on its own; without the timeout these would hang.
        project
            .locald(&verb)
            .env("LOCALD_ANSWER_TIMEOUT", "1s")
            .code(1)
            .stderr_has(&not_answering)
            .stderr_has(&format!("kill -CONT {pid}"));
    }

    kill(Pid::from_raw(pid), Signal::SIGCONT).unwrap();
    // Answered after the three abandoned requests, which it read first.
    assert_eq!(service_field(&project, "sleeper", "state"), "healthy");
    let log = project.read(".locald/supervisor.log");
    assert_eq!(
        log.matches("dropping a request whose client has gone")
            .count(),
        3,
        "{log}"
    );
    // The abandoned `stop sleeper` and `down` were not carried out.
    assert!(alive(sleeper), "the abandoned stop was carried out");
    project.locald(["down"]).success();
    assert!(pids_with_arg("987611").is_empty());
}

#[test]
fn up_wait_ends_at_its_timeout_when_the_supervisor_is_stopped() {
    let project = Project::with_toml(
        r#"
[services.never]
command = "sleep 987612"
health = { log = "^never printed$" }
"#,
    );
    let mut up = project
        .locald(["up", "-d", "--wait", "--timeout", "2s"])
        .spawn();
    project.wait_for("the pid file", Duration::from_secs(10), |p| {
        p.read(".locald/supervisor.pid").ends_with('\n')
    });
    let pid = supervisor_pid(&project);
    kill(Pid::from_raw(pid), Signal::SIGSTOP).unwrap();
    let _resume = Resume(pid);
    // A guard, not a timed assertion: without the fix `up` never returns.
    let guard = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = up.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > guard {
            let _ = up.kill();
            panic!("`up --wait --timeout 2s` hung on a stopped supervisor");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut up.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("(pid {pid}) did not answer")) || stderr.contains("timed out"),
        "{stderr}"
    );
    drop(_resume);
    project.locald(["down"]).success();
    assert!(pids_with_arg("987612").is_empty());
}
