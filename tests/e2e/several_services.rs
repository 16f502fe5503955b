//! `start`, `stop`, `restart` and `logs` take several services, as
//! `docker compose` does; `restart` without names restarts all; `logs`
//! takes `--since` and `--timestamps`.

use std::time::Duration;

use crate::harness::{service_field, Project};

const THREE: &str = r#"
[services.a]
command = "echo from-a; exec sleep 963330"
[services.b]
command = "echo from-b; exec sleep 963331"
[services.c]
command = "echo from-c; exec sleep 963332"
"#;

fn up(project: &Project) {
    project
        .locald(["up", "-d", "--wait", "--timeout", "20s"])
        .success();
}

fn pid(project: &Project, service: &str) -> serde_json::Value {
    service_field(project, service, "pid")
}

#[test]
fn start_stop_and_restart_take_several_services() {
    let project = Project::with_toml(THREE);
    up(&project);
    project.locald(["stop", "a", "b"]).success();
    for service in ["a", "b"] {
        assert_eq!(service_field(&project, service, "state"), "stopped");
    }
    assert_ne!(service_field(&project, "c", "state"), "stopped");

    // An unknown name is refused before anything is done.
    project
        .locald(["start", "a", "nosuch"])
        .code(1)
        .stderr_has("nosuch");
    assert_eq!(service_field(&project, "a", "state"), "stopped");

    project.locald(["start", "a", "b"]).success();
    project.wait_for("a and b back", Duration::from_secs(10), |p| {
        ["a", "b"]
            .iter()
            .all(|s| !pid(p, s).is_null() && service_field(p, s, "state") != "stopped")
    });

    let before: Vec<_> = ["a", "b", "c"].iter().map(|s| pid(&project, s)).collect();
    project.locald(["restart", "c", "nosuch"]).code(1);
    assert_eq!(pid(&project, "c"), before[2], "nothing restarted");
    project.locald(["restart"]).success();
    project.wait_for("all restarted", Duration::from_secs(10), |p| {
        ["a", "b", "c"]
            .iter()
            .zip(&before)
            .all(|(s, old)| !pid(p, s).is_null() && pid(p, s) != *old)
    });
    project.locald(["down"]).success();
}

#[test]
fn logs_take_several_services_since_and_timestamps() {
    let project = Project::with_toml(THREE);
    up(&project);
    project.wait_for("each printed", Duration::from_secs(10), |p| {
        p.locald(["logs"])
            .success()
            .stdout
            .matches(" | from-")
            .count()
            == 3
    });
    let out = project.locald(["logs", "a", "c"]).success();
    assert!(out.stdout.contains("a | from-a\n"), "{out}");
    assert!(out.stdout.contains("c | from-c\n"), "{out}");
    assert!(!out.stdout.contains("from-b"), "{out}");

    let out = project.locald(["logs", "b", "--timestamps"]).success();
    let line = out
        .stdout
        .lines()
        .find(|l| l.ends_with(" from-b"))
        .unwrap_or_else(|| panic!("{out}"));
    let stamp = line
        .strip_prefix("b | ")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(
        stamp.len() == 24 && stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
        "{line}"
    );

    project
        .locald(["logs", "b", "--since", "1h"])
        .success()
        .stdout_has("b | from-b\n");
    // The stamp of the line itself: included (at or after).
    project
        .locald(["logs", "b", "--since", stamp])
        .success()
        .stdout_has("b | from-b\n");
    let later = project
        .locald(["logs", "--since", "2999-01-01T01:00:00+01:00"])
        .success();
    assert!(!later.stdout.contains("from-"), "{later}");
    project
        .locald(["logs", "--since", "bogus"])
        .code(1)
        .stderr_has("`bogus`");
    project.locald(["down"]).success();
}

#[test]
fn logs_since_shows_every_line_since_then_unless_counted() {
    let project = Project::with_toml(
        "[services.counter]\ncommand = \"for i in $(seq 1 150); do echo line-$i; done; sleep 963390\"\nhealth = \"none\"\n",
    );
    project.locald(["up", "-d", "--wait"]).success();
    project.wait_for("150 lines", Duration::from_secs(10), |p| {
        p.locald(["logs", "counter", "--since", "1h"])
            .success()
            .stdout
            .contains("line-150\n")
    });
    let count = |args: &[&str]| {
        project
            .locald(args)
            .success()
            .stdout
            .matches("| line-")
            .count()
    };
    // As `docker logs --since`: every line since then.
    assert_eq!(count(&["logs", "counter", "--since", "1h"]), 150);
    // Without --since, the last 100 lines (the service's events count too).
    assert!(count(&["logs", "counter"]) <= 100);
    let counted = project
        .locald(["logs", "counter", "--since", "1h", "-n", "5"])
        .success();
    assert_eq!(counted.stdout.lines().count(), 5, "{counted}");
    project.locald(["down"]).success();
}
