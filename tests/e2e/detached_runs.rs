//! `locald run --detach`, `locald ps` and `locald stop ID`: one-off runs
//! under the supervisor, their output in the logs, their exit codes, and
//! nothing of them left after `down` or a `kill -9` of the supervisor.

use std::time::{Duration, Instant};

use crate::harness::{pids_with_arg, supervisor_pid, Project};

/// A project whose service sleeps with `marker` (each test its own).
fn toml(marker: u32) -> String {
    format!(
        r#"
[services.web]
command = "sleep {marker}"
health = "none"
env = {{ GREETING = "hello from web" }}
"#
    )
}

fn up(marker: u32) -> Project {
    let project = Project::with_toml(&toml(marker));
    project
        .locald(["up", "-d", "--wait", "--timeout", "20s"])
        .success();
    project
}

/// `ps --json` (`-a` with `all`) as values.
fn ps(project: &Project, all: bool) -> Vec<serde_json::Value> {
    let mut args = vec!["ps", "--json"];
    if all {
        args.push("-a");
    }
    let out = project.locald(args).success();
    serde_json::from_str::<serde_json::Value>(&out.stdout)
        .unwrap_or_else(|e| panic!("bad JSON ({e})\n{out}"))
        .as_array()
        .expect("an array")
        .clone()
}

fn process(project: &Project, id: &str) -> Option<serde_json::Value> {
    ps(project, true).into_iter().find(|p| p["id"] == id)
}

/// Start a detached run; its ID.
fn detach(project: &Project, command: &str) -> String {
    let out = project
        .locald(["run", "--detach", "web", "--", command])
        .success();
    let id = out.stdout.trim().to_string();
    assert!(
        id.len() == 6 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "an ID\n{out}"
    );
    id
}

fn wait_exited(project: &Project, id: &str) -> serde_json::Value {
    let mut last = None;
    project.wait_for("the run to exit", Duration::from_secs(10), |project| {
        last = process(project, id);
        last.as_ref().is_some_and(|p| p["state"] == "exited")
    });
    last.expect("the run")
}

#[test]
fn a_detached_run_returns_at_once_and_its_output_goes_to_the_logs() {
    let project = up(973110);
    let started = Instant::now();
    let id = detach(
        &project,
        "sleep 0.3; echo \"$GREETING\"; seq 1 3000; echo to-stderr >&2; exit 3",
    );
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "returned at once, not after the run: {:?}",
        started.elapsed()
    );
    let run = process(&project, &id).expect("ps shows the run");
    assert_eq!(run["service"], "web");
    assert_eq!(run["one_off"], true);
    assert_eq!(run["kind"], "host");
    let run = wait_exited(&project, &id);
    assert_eq!(run["exit_code"], 3, "{run}");
    // Finished runs show only with -a.
    assert!(ps(&project, false).iter().all(|p| p["id"] != id.as_str()));
    project
        .locald(["ps", "-a"])
        .success()
        .stdout_has("exited (3)");

    // Every line, in order: a run that prints fast and exits loses none.
    let out = project.locald(["logs", &id, "-n", "10000"]).success();
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|line| line.split_once(" | ").map(|(_, text)| text))
        .collect();
    let mut expected = vec!["hello from web".to_string()];
    expected.extend((1..=3000).map(|n| n.to_string()));
    expected.push("to-stderr".to_string());
    assert_eq!(
        lines,
        expected,
        "{}",
        &out.stdout[..out.stdout.len().min(2000)]
    );
    assert!(out.stdout.contains("exited with code 3"), "{out}");
    // A unique start of the ID is enough.
    project
        .locald(["logs", &id[..5], "-n", "1"])
        .success()
        .stdout_has("exited with code 3");
    // The service's own log has the run's lines, marked as a one-off.
    project
        .locald(["logs", "web", "-n", "10000"])
        .success()
        .stdout_has(&format!("[run {id}] hello from web"))
        .stdout_has(&format!("[run {id}] 3000"));
}

#[test]
fn following_a_run_ends_when_it_does() {
    let project = up(973114);
    let id = detach(&project, "echo first; sleep 0.5; echo last; exit 6");
    let started = Instant::now();
    let out = project.locald(["logs", "-f", &id]).success();
    assert!(started.elapsed() < Duration::from_secs(5), "{out}");
    let first = out.stdout.find("| first").expect("first");
    let last = out.stdout.find("| last").expect("last");
    assert!(first < last, "{out}");
    assert!(out.stdout.ends_with("exited with code 6\n"), "{out}");
    // Done already: the same at once.
    project
        .locald(["logs", "-f", &id])
        .success()
        .stdout_has("exited with code 6");
}

#[test]
fn stop_id_stops_a_run_that_has_no_time_limit() {
    let project = up(973100);
    let id = detach(&project, "sleep 973101");
    project.wait_for("the run's sleep", Duration::from_secs(5), |_| {
        pids_with_arg("973101").len() == 1
    });
    let run = process(&project, &id).expect("ps shows it");
    assert_eq!(run["state"], "running");
    assert_eq!(run["command"], "sleep 973101");
    let pid = run["pid"].as_i64().expect("a pid") as i32;
    assert!(crate::harness::alive(pid));
    // The service's own process is listed too, with its own ID.
    let service = ps(&project, false)
        .into_iter()
        .find(|p| p["service"] == "web" && p["one_off"] == false)
        .expect("the service's process");
    assert_ne!(service["id"], id.as_str());

    project.locald(["stop", &id[..5]]).success();
    assert!(
        pids_with_arg("973101").is_empty(),
        "stopped when stop returns"
    );
    assert_eq!(wait_exited(&project, &id)["exit_code"], 128 + 15);
    assert_eq!(pids_with_arg("973100").len(), 1, "the service still runs");
    // Stopping it again is no error (as `docker stop`).
    project.locald(["stop", &id]).success();
}

#[test]
fn nothing_of_a_run_is_left_after_down_or_a_kill_of_the_supervisor() {
    let project = up(973111);
    // `setsid` leaves the process group: only the PID namespace catches it.
    detach(&project, "setsid sleep 973102 & sleep 973103");
    project.wait_for("the run's sleepers", Duration::from_secs(5), |_| {
        pids_with_arg("973102").len() == 1 && pids_with_arg("973103").len() == 1
    });
    project.locald(["down"]).success();
    assert!(pids_with_arg("973102").is_empty() && pids_with_arg("973103").is_empty());

    project
        .locald(["up", "-d", "--wait", "--timeout", "20s"])
        .success();
    detach(&project, "setsid sleep 973104 & sleep 973105");
    project.wait_for("the run's sleepers", Duration::from_secs(5), |_| {
        pids_with_arg("973104").len() == 1 && pids_with_arg("973105").len() == 1
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(supervisor_pid(&project)),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    project.wait_for("no survivors", Duration::from_secs(5), |_| {
        pids_with_arg("973104").is_empty() && pids_with_arg("973105").is_empty()
    });
}

#[test]
fn the_primitives_work_from_a_task_script() {
    let project = up(973113);
    project.write(
        "tasks/oneoff.rhai",
        r#"
let project = load_project();
let id = run_detached(project.service("web"), ["sh", "-c", "echo from-a-task; exit 2"]);
let found = process(project, id);
print(`${found.service} ${found.one_off} ${found.kind}`);
let ours = processes(project).filter(|p| !p.one_off);
print(`${ours.len()} ${ours[0].command}`);
// Its log says when it is done; then `processes(project, #{ all: true })`
// has its exit code.
while !logs(project, #{ service: id }).some(|l| l.line.starts_with("exited")) {
    run_command(["sleep", "0.05"]);
}
let done = processes(project, #{ all: true }).filter(|p| p.id == id)[0];
print(`${done.state} ${done.exit_code}`);
print(exec(project, "web", "exit 4"));
"#,
    );
    project
        .locald(["script", "tasks/oneoff.rhai"])
        .success()
        .stdout_is("web true host\n1 sleep 973113\nexited 2\n4\n");
}

#[test]
fn detached_runs_and_ids_fail_clearly() {
    let project = Project::with_toml(&toml(973112));
    project
        .locald(["run", "-d", "web", "--", "true"])
        .code(1)
        .stderr_has("no supervisor is running")
        .stderr_has("locald up -d");
    project
        .locald(["ps"])
        .success()
        .stdout_is("ID  SERVICE  KIND  PID  STARTED  STATE  COMMAND\n");
    project
        .locald(["up", "-d", "--wait", "--timeout", "20s"])
        .success();
    project
        .locald(["run", "-d", "nope", "--", "true"])
        .code(1)
        .stderr_is("error: unknown service `nope`; known services: web\n");
    project
        .locald(["stop", "zzz"])
        .code(1)
        .stderr_has("no service or process ID `zzz`; known services: web; process IDs: ");
    // 17 IDs: two share their first digit, which is then ambiguous.
    let ids: Vec<String> = (0..17).map(|_| detach(&project, "true")).collect();
    let shared = ids
        .iter()
        .find(|id| ids.iter().filter(|other| other[..1] == id[..1]).count() > 1)
        .expect("two IDs share a first digit")[..1]
        .to_string();
    project
        .locald(["logs", &shared])
        .code(1)
        .stderr_has(&format!("`{shared}` is the start of several process IDs"));
}
