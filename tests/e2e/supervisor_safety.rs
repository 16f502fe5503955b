//! The supervisor against hostile or broken conditions: a stopped (SIGSTOP)
//! supervisor, a state directory deleted or prepared by someone else.

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::harness::{alive, one_pid, pids_with_arg, service_field, supervisor_pid, Project};

/// Sends SIGCONT to a stopped supervisor when dropped, so a failing test
/// leaves no frozen process behind (declare it after the project: it must
/// resume the supervisor before the project's drop brings it down).
struct Resume(i32);

impl Drop for Resume {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.0), Signal::SIGCONT);
    }
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
    // The three are dropped in whatever order the supervisor's tasks run.
    let dropped = |p: &Project| {
        p.read(".locald/supervisor.log")
            .matches("dropping a request whose client has gone")
            .count()
    };
    project.wait_for("three dropped requests", Duration::from_secs(10), |p| {
        dropped(p) >= 3
    });
    assert_eq!(
        dropped(&project),
        3,
        "{}",
        project.read(".locald/supervisor.log")
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

#[test]
fn links_planted_in_the_state_directory_are_not_written_through() {
    let project = Project::with_toml(
        r#"
[services.web]
command = "echo hello; sleep 987613"
health = "none"
"#,
    );
    let outside = tempfile::tempdir().unwrap();
    let victim = |name: &str| outside.path().join(name);
    for name in ["ports", "log", "pid"] {
        std::fs::write(victim(name), "precious\n").unwrap();
    }
    let state = project.path().join(".locald");
    std::fs::create_dir_all(state.join("logs")).unwrap();
    let link = |target: &str, at: &str| {
        std::os::unix::fs::symlink(victim(target), state.join(at)).unwrap();
    };
    link("ports", "ports.json");
    link("log", "logs/web.log");
    link("pid", "supervisor.pid");

    project
        .locald(["up", "-d", "--wait", "--timeout", "20s"])
        .success();
    one_pid("987613");
    // ports.json and the pid file are replaced whole: the links are gone.
    for at in ["ports.json", "supervisor.pid"] {
        let metadata = std::fs::symlink_metadata(state.join(at)).unwrap();
        assert!(metadata.is_file(), "{at} is still a link");
    }
    // The service log is refused (and the refusal logged); the service runs.
    let log = project.read(".locald/supervisor.log");
    assert!(log.contains("is a symbolic link"), "{log}");
    project.locald(["down"]).success();
    for name in ["ports", "log", "pid"] {
        assert_eq!(
            std::fs::read_to_string(victim(name)).unwrap(),
            "precious\n",
            "locald wrote through the link to {name}"
        );
    }

    // The supervisor's own log cannot be opened through a link: `up` refuses.
    std::fs::remove_file(state.join("supervisor.log")).unwrap();
    link("log", "supervisor.log");
    project
        .locald(["up", "-d"])
        .code(1)
        .stderr_has("supervisor.log is a symbolic link");
    assert_eq!(
        std::fs::read_to_string(victim("log")).unwrap(),
        "precious\n"
    );
    assert!(pids_with_arg("987613").is_empty());
}

#[test]
fn a_symlinked_or_foreign_state_directory_is_refused() {
    let toml = r#"
[services.web]
command = "sleep 987614"
health = "none"
"#;
    let project = Project::with_toml(toml);
    let elsewhere = tempfile::tempdir().unwrap();
    let state = project.path().join(".locald");
    std::os::unix::fs::symlink(elsewhere.path(), &state).unwrap();
    let out = project.locald(["up", "-d"]).code(1);
    out.stderr_has(&format!(
        "refusing to use state directory {}: it is a symbolic link",
        state.display()
    ));
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
    for verb in ["status", "logs"] {
        project
            .locald([verb])
            .code(1)
            .stderr_has("it is a symbolic link");
    }
    std::fs::remove_file(&state).unwrap();

    std::fs::create_dir(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(65534), Some(65534)).unwrap();
    project
        .locald(["up", "-d"])
        .code(1)
        .stderr_has("it is owned by uid 65534");
    assert!(pids_with_arg("987614").is_empty());
    std::fs::remove_dir(&state).unwrap();
}

#[test]
fn a_deleted_state_directory_stops_the_supervisor_and_blocks_a_second_one() {
    let project = Project::with_toml(
        r#"
[services.web]
command = "sleep 987615"
health = "none"
"#,
    );
    project
        .locald(["up", "-d", "--wait", "--timeout", "20s"])
        .success();
    let first = supervisor_pid(&project);
    one_pid("987615");

    // Frozen, the first supervisor cannot notice: `up` must refuse anyway.
    kill(Pid::from_raw(first), Signal::SIGSTOP).unwrap();
    let resume = Resume(first);
    std::fs::remove_dir_all(project.path().join(".locald")).unwrap();
    project.locald(["up", "-d"]).code(1).stderr_has(&format!(
        "a supervisor (pid {first}) still runs for this project"
    ));
    assert_eq!(pids_with_arg("987615").len(), 1, "a second web started");

    // Resumed, it finds its socket gone, stops its services and exits.
    drop(resume);
    project.wait_for(
        "the first supervisor to exit",
        Duration::from_secs(15),
        |_| !alive(first),
    );
    assert!(
        pids_with_arg("987615").is_empty(),
        "web outlived its supervisor"
    );

    // Then the project is free again.
    project
        .locald(["up", "-d", "--wait", "--timeout", "20s"])
        .success();
    project.locald(["down"]).success();
    assert!(pids_with_arg("987615").is_empty());
}
