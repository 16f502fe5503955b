//! Health tells the truth: `up -d --wait` fails on a service that fails
//! while waited for, `health = "none"` settles before it is ready, liveness
//! probes are slow, and a port answered or held by another process is never
//! taken for the service's.

use std::net::{Ipv4Addr, TcpListener};
use std::time::Duration;

use crate::harness::{pids_with_arg, service_field, Project};
use crate::supervise::LISTEN_PY;

/// An HTTP server on $PORT that appends the path of every request it
/// serves to requests.txt.
const HTTP_PY: &str = r#"
import os
from http.server import BaseHTTPRequestHandler, HTTPServer
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        with open("requests.txt", "a") as f:
            f.write(self.path + "\n")
        self.send_response(200)
        self.end_headers()
    def log_message(self, *args):
        pass
HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"#;

#[test]
fn wait_fails_on_a_service_that_crashes_after_ready_even_once_it_is_back() {
    // `flaky` is ready after its settle time, crashes at 1.5 s and is
    // restarted at once (and is ready again) while `slow` is still starting:
    // the wait must not end in success because `flaky` looks fine by then.
    let project = Project::with_toml(
        r#"
[services.flaky]
command = "echo run-962201; sleep 1.5; exit 3"
health = "none"

[services.slow]
command = "python3 listen.py 4 962202"
health = "tcp"
"#,
    )
    .file("listen.py", LISTEN_PY);
    let out = project
        .locald(["up", "-d", "--wait", "--timeout", "30s"])
        .code(1);
    // Seen in backoff, or already starting again (its exit code then only
    // in the log).
    out.stderr_has("error: service flaky failed");
    out.stderr_has("exited with code 3");
    out.stderr_has("last log lines of flaky:");
    out.stderr_has("run-962201");
    project.locald(["down"]).success();
    assert!(pids_with_arg("962202").is_empty());
}

#[test]
fn none_is_ready_only_once_it_has_settled() {
    // Crashes at once: never ready, so its dependent never starts, and the
    // wait fails instead of passing on the first poll.
    let project = Project::with_toml(
        r#"
[services.crashy]
command = "sleep 0.3; echo gone-962203; exit 2"
health = "none"

[services.after]
command = "sleep 962204"
health = "none"
depends_on = ["crashy"]
"#,
    );
    let out = project
        .locald(["up", "-d", "--wait", "--timeout", "30s"])
        .code(1);
    out.stderr_has("error: service crashy failed");
    out.stderr_has("gone-962203");
    assert!(
        !project.read(".locald/logs/crashy.log").contains("healthy"),
        "{}",
        project.read(".locald/logs/crashy.log")
    );
    assert!(pids_with_arg("962204").is_empty(), "after started");
    project.locald(["down"]).success();
}

#[test]
fn settle_is_configurable_and_holds_dependents_back() {
    let project = Project::with_toml(
        r#"
[services.base]
command = "date +%s.%N > base.txt; exec sleep 962205"
health = { none = true, settle = "2s" }

[services.dependent]
command = "date +%s.%N > dependent.txt; exec sleep 962206"
health = { none = true, settle = 0 }
depends_on = ["base"]
"#,
    );
    project
        .locald(["up", "-d", "--wait", "--timeout", "30s"])
        .success();
    // Healthy as soon as it is launched (`settle = 0`), and `--wait` answers
    // at that moment: its shell may not have written the file yet.
    project.wait_for("dependent.txt", Duration::from_secs(10), |p| {
        p.read("dependent.txt").ends_with('\n')
    });
    let time = |file: &str| -> f64 {
        project
            .read(file)
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{file}: {e}"))
    };
    let waited = time("dependent.txt") - time("base.txt");
    assert!(waited >= 1.9, "dependent started {waited:.2}s after base");
    assert_eq!(service_field(&project, "dependent", "state"), "healthy");
    project.locald(["down"]).success();
}

#[test]
fn liveness_probes_are_much_slower_than_readiness_probes() {
    let project = Project::with_toml(
        r#"
[services.web]
command = "python3 serve.py 962207"
health = { http = "/health" }
"#,
    )
    .file("serve.py", HTTP_PY);
    project
        .locald(["up", "-d", "--wait", "--timeout", "30s"])
        .success();
    let count = || project.read("requests.txt").lines().count();
    let at_ready = count();
    assert!(at_ready >= 1, "ready without a probe request");
    // At the default 10 s there is at most one more probe in 3 s; at the
    // old 500 ms there were about six.
    std::thread::sleep(Duration::from_secs(3));
    let after = count() - at_ready;
    assert!(after <= 1, "{after} probe requests in 3 s after ready");
    project.locald(["down"]).success();
}

#[test]
fn a_probe_answered_by_another_process_does_not_pass() {
    let project = Project::with_toml(
        r#"
[services.web]
command = "sleep 962208"
health = "tcp"
"#,
    );
    project.locald(["up", "-d"]).success();
    let port = service_field(&project, "web", "port").as_u64().unwrap() as u16;
    // The service never listens; this test answers on its port.
    let squatter = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
    let out = project
        .locald(["up", "-d", "--wait", "--timeout", "3s"])
        .code(1);
    out.stderr_has("timed out");
    let me = std::process::id();
    out.stderr_has(&format!("not ready: port {port} is answered by "));
    out.stderr_has(&format!("(pid {me}), not by this service"));
    assert_ne!(service_field(&project, "web", "state"), "healthy");
    drop(squatter);
    project.locald(["down"]).success();
}

#[test]
fn a_fixed_port_taken_before_a_restart_fails_that_start_naming_the_holder() {
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let project = Project::with_toml(&format!(
        r#"
[services.web]
command = "echo run-962209; sleep 0.5; exit 1"
port = {port}
health = "none"
"#
    ));
    project.locald(["up", "-d"]).success();
    project.wait_for("the first run", Duration::from_secs(10), |p| {
        p.read(".locald/logs/web.log").contains("run-962209")
    });
    // Taken by someone else before the restart.
    let squatter = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
    let me = std::process::id();
    let refused = format!("cannot start: port {port} of service `web` is in use by ");
    project.wait_for("the refused start", Duration::from_secs(10), |p| {
        p.read(".locald/logs/web.log").contains(&refused)
    });
    let log = project.read(".locald/logs/web.log");
    assert!(log.contains(&format!("(pid {me}); stop it")), "{log}");
    // The refused start counts as a failure (the crash before it did too).
    project.wait_for("two failures", Duration::from_secs(5), |p| {
        service_field(p, "web", "failures").as_u64().unwrap() >= 2
    });
    // Once the port is free again, the next start goes ahead.
    drop(squatter);
    let runs = log.matches("run-962209").count();
    project.wait_for(
        "a start after the port is free",
        Duration::from_secs(40),
        |p| p.read(".locald/logs/web.log").matches("run-962209").count() > runs,
    );
    project.locald(["down"]).success();
}

#[test]
fn a_failure_from_before_the_wait_is_not_held_against_a_fresh_start() {
    // Fails on its first run only; `restart = "never"` leaves it failed.
    let project = Project::with_toml(
        r#"
[services.once]
command = "if [ -e ran ]; then exec sleep 962210; fi; touch ran; exit 4"
health = "none"
restart = "never"
"#,
    );
    project.locald(["up", "-d"]).success();
    project.wait_for("the first failure", Duration::from_secs(10), |p| {
        service_field(p, "once", "state") == "failed"
    });
    // `up -d --wait` starts it again; its old failure is not this wait's.
    project
        .locald(["up", "-d", "--wait", "--timeout", "20s"])
        .success()
        .stderr_has("once: started");
    assert_eq!(service_field(&project, "once", "state"), "healthy");
    assert_eq!(service_field(&project, "once", "failures"), 1);
    project.locald(["down"]).success();
}
