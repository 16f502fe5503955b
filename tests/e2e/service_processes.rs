//! The processes locald adds around host services: one spawner per
//! supervisor and one small init per service (PID 1 of the service's own PID
//! namespace, a child of the supervisor), for root and for an unprivileged
//! user alike, with no survivor after a `kill -9` of the supervisor.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::harness::{account, give, locald_bin, pids_with_arg, supervisor_pid, Project};

/// `(pid, ppid, comm)` of every process.
fn processes() -> Vec<(i32, i32, String)> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let ppid = stat[close + 2..]
            .split(' ')
            .nth(1)
            .and_then(|field| field.parse().ok())
            .unwrap_or(0);
        all.push((pid, ppid, stat[open + 1..close].to_string()));
    }
    all
}

fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim_end()
        .to_string()
}

fn parent_of(pid: i32) -> i32 {
    processes()
        .into_iter()
        .find(|(p, _, _)| *p == pid)
        .map_or(0, |(_, ppid, _)| ppid)
}

/// The namespace `kind` (`pid`, `user`) of a process.
fn namespace(pid: i32, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .map(|link| link.display().to_string())
        .unwrap_or_default()
}

/// The `NSpid:` line of a process: its pid in each nested namespace.
fn ns_pids(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("NSpid:"))
        .map(|pids| {
            pids.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Each `sleep MARKER`'s shell's parent: the service's init.
fn init_of(marker: &str) -> i32 {
    let sleeper = pids_with_arg(marker)[0];
    parent_of(parent_of(sleeper))
}

#[test]
fn each_service_runs_under_one_init_the_supervisor_starts_from_one_spawner() {
    let project = Project::with_toml(
        r#"
[services.a]
command = "sleep 964401"
health = "none"

[services.b]
command = "sleep 964402"
health = "none"

[services.c]
command = "sleep 964403"
health = "none"
"#,
    );
    project
        .locald(["up", "-d", "--wait", "--timeout", "20s"])
        .success();
    project.wait_for("three sleepers", Duration::from_secs(5), |_| {
        ["964401", "964402", "964403"]
            .iter()
            .all(|marker| pids_with_arg(marker).len() == 1)
    });
    let supervisor = supervisor_pid(&project);
    for marker in ["964401", "964402", "964403"] {
        let init = init_of(marker);
        assert_eq!(
            parent_of(init),
            supervisor,
            "the init of `sleep {marker}` is the supervisor's child"
        );
        assert_eq!(
            ns_pids(init).last(),
            Some(&1),
            "the init is PID 1 of its namespace"
        );
        assert_ne!(namespace(init, "pid"), namespace(supervisor, "pid"));
        assert_eq!(comm(init), "locald-init");
    }
    // Three inits and the spawner, nothing else: the service's own `sh`
    // and `sleep` are below the inits.
    let helpers: Vec<(i32, i32, String)> = processes()
        .into_iter()
        .filter(|(_, ppid, _)| *ppid == supervisor)
        .collect();
    assert_eq!(helpers.len(), 4, "{helpers:?}");
    assert_eq!(
        helpers
            .iter()
            .filter(|(_, _, name)| name == "locald-spawner")
            .count(),
        1,
        "{helpers:?}"
    );
    project.locald(["down"]).success();
    for marker in ["964401", "964402", "964403"] {
        assert!(pids_with_arg(marker).is_empty());
    }
}

#[test]
fn the_services_of_a_killed_supervisor_follow_it_when_the_spawner_was_gone_already() {
    let project = Project::with_toml(
        r#"
[services.first]
command = "sleep 964404 & setsid sleep 964404 & wait"
health = "none"

[services.second]
command = "sleep 964405"
health = "none"
"#,
    );
    project
        .locald(["up", "-d", "--wait", "--timeout", "20s", "first"])
        .success();
    project.wait_for("first's sleepers", Duration::from_secs(5), |_| {
        pids_with_arg("964404").len() == 2
    });
    let supervisor = supervisor_pid(&project);
    // Kill the spawner: services already started do not depend on it, and
    // the next start makes a new one.
    let first_init = init_of("964404");
    let spawner = processes()
        .into_iter()
        .find(|(pid, ppid, _)| *ppid == supervisor && *pid != first_init)
        .expect("the spawner")
        .0;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(spawner),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    project.locald(["start", "second"]).success();
    project.wait_for("second's sleeper", Duration::from_secs(5), |_| {
        pids_with_arg("964405").len() == 1
    });
    assert_eq!(pids_with_arg("964404").len(), 2, "first kept running");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(supervisor),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    project.wait_for("no survivors", Duration::from_secs(5), |_| {
        pids_with_arg("964404").is_empty() && pids_with_arg("964405").is_empty()
    });
}

#[test]
fn services_get_the_default_sigpipe_disposition() {
    // locald ignores SIGPIPE (Rust's runtime does), and an ignored signal
    // stays ignored across exec: a service's `yes | head` must still end
    // `yes` by SIGPIPE (141), not by an EPIPE error (1), as in a shell.
    let project = Project::with_toml(
        r#"
[services.piper]
command = "{ (yes; echo \"yes-exit:$?\" >&3) | head -n 1 >/dev/null; } 3>&1; sleep 964406"
health = "none"
"#,
    );
    project
        .locald(["up", "-d", "--wait", "--timeout", "20s"])
        .success();
    project.wait_for("yes to end", Duration::from_secs(10), |p| {
        p.read(".locald/logs/piper.log").contains("yes-exit:1")
    });
    let log = project.read(".locald/logs/piper.log");
    assert!(log.contains("yes-exit:141"), "{log}");
    project.locald(["down"]).success();
    assert!(pids_with_arg("964406").is_empty());
}

/// Kills the unprivileged supervisor if the test fails before it does.
struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.0 > 0 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.0),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// `locald ARGS` in `dir` as `(uid, gid)`.
fn locald_as((uid, gid): (u32, u32), dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .args(["--reuid", &uid.to_string(), "--regid", &gid.to_string()])
        .args(["--clear-groups", "--", locald_bin()])
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", dir)
        .output()
        .expect("run setpriv")
}

#[test]
fn nothing_survives_a_killed_supervisor_run_by_an_unprivileged_user() {
    let user = account("lds9-light");
    let project = Project::with_toml(
        r#"
[services.forker]
command = "sleep 964410 & setsid sleep 964410 & sleep 964410"
health = "none"
"#,
    );
    give(project.path(), user);
    let up = locald_as(
        user,
        project.path(),
        &["up", "-d", "--wait", "--timeout", "20s"],
    );
    assert!(up.status.success(), "{up:?}");
    let supervisor = supervisor_pid(&project);
    let _guard = KillOnDrop(supervisor);
    project.wait_for("three sleepers", Duration::from_secs(5), |_| {
        pids_with_arg("964410").len() == 3
    });
    for sleeper in pids_with_arg("964410") {
        let owner = std::fs::read_to_string(format!("/proc/{sleeper}/status"))
            .unwrap()
            .lines()
            .find_map(|line| line.strip_prefix("Uid:").map(str::to_owned))
            .unwrap();
        assert_eq!(
            owner.split_whitespace().next(),
            Some(user.0.to_string().as_str()),
            "the service keeps the user's identity"
        );
    }
    // Unprivileged, the namespace needs a user namespace of its own.
    let init = init_of("964410");
    assert_eq!(parent_of(init), supervisor);
    assert_eq!(ns_pids(init).last(), Some(&1));
    assert_ne!(namespace(init, "user"), namespace(supervisor, "user"));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(supervisor),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    project.wait_for("no survivors", Duration::from_secs(5), |_| {
        pids_with_arg("964410").is_empty()
    });
}
