//! `locald up` and the supervisor: health-gated dependencies, restarts with
//! backoff, ordered shutdown, no survivors, logs.

use std::time::Duration;

use crate::harness::{pids_with_arg, service_field, Project};

/// Listens on $PORT after an optional delay, accepting forever.
pub(crate) const LISTEN_PY: &str = r#"
import os, socket, sys, time
time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 0)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(os.environ["PORT"])))
s.listen(16)
print("listening", flush=True)
while True:
    c, _ = s.accept()
    c.close()
"#;

/// Records whether DB_PORT accepted a connection when this process started.
const PROBE_PY: &str = r#"
import os, socket, time
try:
    socket.create_connection(("127.0.0.1", int(os.environ["DB_PORT"])), timeout=1).close()
    verdict = "db-was-ready"
except OSError:
    verdict = "db-was-not-ready"
with open("verdict.txt", "a") as f:
    f.write(verdict + "\n")
print(verdict, flush=True)
time.sleep(600)
"#;

#[test]
fn dependents_start_only_when_dependencies_are_healthy() {
    let project = Project::with_toml(
        r#"
[services.db]
command = "python3 listen.py 1.5"

[services.api]
command = "python3 probe.py"
depends_on = ["db"]
env = { DB_PORT = "${services.db.port}" }
"#,
    )
    .file("listen.py", LISTEN_PY)
    .file("probe.py", PROBE_PY);

    project
        .locald(["up", "-d", "--wait", "--timeout", "30s"])
        .success();
    // api has no dependents, so it is ready once started: wait for its verdict.
    project.wait_for("api's verdict", Duration::from_secs(10), |p| {
        p.read("verdict.txt").ends_with('\n')
    });
    assert_eq!(project.read("verdict.txt"), "db-was-ready\n");
    assert_eq!(service_field(&project, "db", "state"), "healthy");
    project.locald(["down"]).success();
}

#[test]
fn crashing_service_restarts_with_backoff_up_to_max_restarts() {
    let project = Project::with_toml(
        r#"
[services.crashy]
command = "date +%s.%N >> starts.txt; exit 1"
max_restarts = 3
"#,
    );
    project.locald(["up", "-d"]).success();
    project.wait_for("4 starts", Duration::from_secs(15), |p| {
        p.read("starts.txt").lines().count() >= 4
    });
    project.wait_for("failed state", Duration::from_secs(5), |p| {
        service_field(p, "crashy", "state") == "failed"
    });
    std::thread::sleep(Duration::from_millis(800));
    let starts: Vec<f64> = project
        .read("starts.txt")
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(starts.len(), 4, "max_restarts = 3 means 4 starts");
    let gaps: Vec<f64> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    // Backoff doubles from ~100 ms: the waits are at least 0.1, 0.2, 0.4 s.
    assert!(gaps[0] >= 0.09, "{gaps:?}");
    assert!(gaps[2] >= 0.35, "backoff grows: {gaps:?}");
    assert_eq!(service_field(&project, "crashy", "restarts"), 3);
    project.locald(["down"]).success();
}

#[test]
fn shutdown_stops_dependents_first_and_leaves_no_process() {
    let stopper = |name: &str| {
        format!(
            "trap 'echo {name} >> order.txt; exit 0' TERM; sleep 987601 & while :; do sleep 0.05; done"
        )
    };
    let project = Project::with_toml(&format!(
        r#"
[services.base]
command = "{}"
health = "none"

[services.middle]
command = "{}"
health = "none"
depends_on = ["base"]

[services.top]
command = "{}"
health = "none"
depends_on = ["middle"]
"#,
        stopper("base"),
        stopper("middle"),
        stopper("top")
    ));
    project
        .locald(["up", "-d", "--wait", "--timeout", "20s"])
        .success();
    project.wait_for("grandchildren", Duration::from_secs(5), |_| {
        pids_with_arg("987601").len() == 3
    });
    project.locald(["down"]).success();
    assert_eq!(project.read("order.txt"), "top\nmiddle\nbase\n");
    assert_eq!(
        pids_with_arg("987601"),
        Vec::<i32>::new(),
        "grandchildren survived down"
    );
}

#[test]
fn nothing_survives_a_killed_supervisor_and_the_next_up_works() {
    let project = Project::with_toml(
        r#"
[services.forker]
command = "sleep 987602 & setsid sleep 987602 & sleep 987602"
health = "none"
"#,
    );
    project
        .locald(["up", "-d", "--wait", "--timeout", "20s"])
        .success();
    project.wait_for("three sleepers", Duration::from_secs(5), |_| {
        pids_with_arg("987602").len() == 3
    });
    let pid: i32 = project
        .read(".locald/supervisor.pid")
        .trim()
        .parse()
        .expect("supervisor pid file");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    project.wait_for("no survivors", Duration::from_secs(5), |_| {
        pids_with_arg("987602").is_empty()
    });
    // The dead supervisor's socket and pid file do not block the next up.
    project
        .locald(["up", "-d", "--wait", "--timeout", "20s"])
        .success();
    project.locald(["down"]).success();
    assert!(pids_with_arg("987602").is_empty());
}

#[test]
fn logs_keep_every_line_across_restarts_and_exits() {
    let project = Project::with_toml(
        r#"
[services.burst]
command = "echo run-start; seq 1 20000; head -c 100000 /dev/zero | tr '\\0' x; echo; echo after-long-line; exit 1"
max_restarts = 1
"#,
    );
    project.locald(["up", "-d"]).success();
    project.wait_for("failed after one restart", Duration::from_secs(15), |p| {
        service_field(p, "burst", "state") == "failed"
    });
    let out = project.locald(["logs", "burst", "-n", "100000"]).success();
    let runs = out
        .stdout
        .lines()
        .filter(|l| *l == "burst | run-start")
        .count();
    assert_eq!(runs, 2, "both runs are in the log");
    for n in [1, 777, 20000] {
        let count = out
            .stdout
            .lines()
            .filter(|l| *l == format!("burst | {n}"))
            .count();
        assert_eq!(count, 2, "line {n} appears once per run");
    }
    assert_eq!(
        out.stdout
            .lines()
            .filter(|l| *l == "burst | after-long-line")
            .count(),
        2,
        "the collector survives a 100 KB line"
    );
    project.locald(["down"]).success();
}

#[test]
fn run_uses_the_running_supervisors_port_and_control_verbs_work() {
    let project = Project::with_toml(
        r#"
[services.web]
command = "python3 listen.py"
health = "tcp"
"#,
    )
    .file("listen.py", LISTEN_PY);
    project
        .locald(["up", "-d", "--wait", "--timeout", "20s"])
        .success();
    let port = service_field(&project, "web", "port");
    let out = project.locald(["run", "web", "--", "echo $PORT"]).success();
    assert_eq!(out.stdout.trim(), port.to_string());

    project.locald(["stop", "web"]).success();
    assert_eq!(service_field(&project, "web", "state"), "stopped");
    project.locald(["start", "web"]).success();
    project.wait_for("healthy again", Duration::from_secs(10), |p| {
        service_field(p, "web", "state") == "healthy"
    });
    let pid_before = service_field(&project, "web", "pid");
    project.locald(["restart", "web"]).success();
    project.wait_for("healthy after restart", Duration::from_secs(10), |p| {
        service_field(p, "web", "state") == "healthy"
    });
    assert_ne!(service_field(&project, "web", "pid"), pid_before);
    assert_eq!(
        service_field(&project, "web", "port"),
        port,
        "same port after restart"
    );

    // A second supervisor for the same project is refused; `up -d` brings
    // the running one up to date instead.
    project.locald(["up"]).code(1).stderr_has("already");
    project
        .locald(["up", "-d"])
        .success()
        .stderr_has("nothing changed");
    project.locald(["down"]).success();
    assert!(!project.path().join(".locald/supervisor.sock").exists());
}

#[test]
fn foreground_up_prefixes_output_and_stops_on_ctrl_c() {
    let project = Project::with_toml(
        r#"
[services.talker]
command = "echo hello from talker; trap 'echo bye; exit 0' INT TERM; while :; do sleep 0.05; done"
health = "none"
"#,
    );
    let mut child = project.locald(["up"]).spawn();
    project.wait_for("log line", Duration::from_secs(10), |p| {
        p.read(".locald/logs/talker.log")
            .contains("hello from talker")
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    let mut stdout = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    assert!(status.success(), "{status:?}\n{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("talker") && l.contains("| hello from talker")),
        "{stdout}"
    );
    assert!(stdout.contains("bye"), "{stdout}");
}

#[test]
fn run_beside_a_partial_up_keeps_every_port() {
    let project = Project::with_toml(
        r#"
[services.web]
command = "python3 listen.py"
health = "tcp"

[services.worker]
command = "sleep 100"
"#,
    )
    .file("listen.py", LISTEN_PY);
    // Both services get their ports recorded before anything runs.
    let worker_port = project
        .locald(["run", "worker", "--", "echo $PORT"])
        .success()
        .stdout
        .trim()
        .to_string();
    project
        .locald(["up", "-d", "--wait", "--timeout", "20s", "web"])
        .success();
    let web_port = service_field(&project, "web", "port").to_string();

    // `web` runs (its port is busy): `run` must neither move it nor worker's.
    for (service, port) in [("web", &web_port), ("worker", &worker_port)] {
        let out = project
            .locald(["run", service, "--", "echo $PORT"])
            .success();
        assert_eq!(out.stdout.trim(), port, "{service}");
    }
    let recorded: serde_json::Value =
        serde_json::from_str(&project.read(".locald/ports.json")).unwrap();
    assert_eq!(recorded["web"].to_string(), web_port);
    project.locald(["down"]).success();
}

#[test]
fn a_fixed_port_that_is_taken_is_refused_before_anything_starts() {
    let taken = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = taken.local_addr().unwrap().port();
    let project = Project::with_toml(&format!(
        "[services.web]\ncommand = \"sleep 986501\"\nport = {port}\n"
    ));
    for args in [&["up"][..], &["up", "-d"]] {
        let out = project.locald(args).code(1);
        out.stderr_has(&format!("port {port} of service `web` is in use by "));
        // This test process holds it.
        out.stderr_has(&format!("(pid {})", std::process::id()));
        assert!(
            pids_with_arg("986501").is_empty(),
            "{args:?} started the service"
        );
    }
    assert!(!project.path().join(".locald/supervisor.sock").exists());
}
