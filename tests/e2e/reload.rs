//! `locald reload`: the running supervisor applies an edited `locald.toml`
//! without touching the services that did not change.

use std::time::Duration;

use crate::harness::{one_pid, pids_with_arg, service_field, status_json, Project};

const BEFORE: &str = r#"
# Two services; the test edits this file while they run.
[services.steady]
command = "sleep 987901"
health = "none"

[services.web]
command = "sleep 987902"
health = "none"

[services.old]
command = "sleep 987903"
health = "none"
"#;

#[test]
fn reload_starts_added_restarts_changed_and_stops_removed_services() {
    let project = Project::with_toml(BEFORE);
    project.locald(["up", "-d", "--wait"]).success();
    let steady = one_pid("987901");
    let steady_port = service_field(&project, "steady", "port");
    let web = one_pid("987902");
    one_pid("987903");

    project.write(
        "locald.toml",
        r#"
# Two services; the test edits this file while they run.
[services.steady]
command = "sleep 987901"
health = "none"

[services.web]
command = "sleep 987912"
health = "none"

[services.new]
command = "sleep 987904"
health = "none"
"#,
    );
    project
        .locald(["reload"])
        .success()
        .stderr_is("locald: new: started\nlocald: web: restarted\nlocald: old: stopped\n");

    assert_eq!(
        one_pid("987901"),
        steady,
        "an unchanged service keeps running"
    );
    assert_eq!(service_field(&project, "steady", "port"), steady_port);
    assert!(pids_with_arg("987902").is_empty(), "the old web is gone");
    assert_ne!(one_pid("987912"), web);
    assert!(
        pids_with_arg("987903").is_empty(),
        "a removed service is stopped"
    );
    project.wait_for("the new service", Duration::from_secs(10), |p| {
        service_field(p, "new", "state") == "healthy" && pids_with_arg("987904").len() == 1
    });
    let names: Vec<String> = status_json(&project)
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["steady", "web", "new"]);
    assert!(service_field(&project, "new", "port").is_u64());

    project
        .locald(["reload"])
        .success()
        .stderr_is("locald: nothing changed\n");
    project.locald(["down"]).success();
    assert!(pids_with_arg("987904").is_empty() && pids_with_arg("987912").is_empty());
}

#[test]
fn a_config_error_on_reload_changes_nothing() {
    // Markers of its own: tests run in parallel.
    let before = BEFORE.replace("9879", "9877");
    let project = Project::with_toml(&before);
    project.locald(["up", "-d", "--wait"]).success();
    let web = one_pid("987702");
    project.write(
        "locald.toml",
        &before.replace("command = \"sleep 987702\"", "command = 42"),
    );
    let failed = project.locald(["reload"]).code(1);
    failed.stderr_has("locald.toml:8:11");
    failed.stderr_has("command");
    // The supervisor's diagnostic is shown whole, as a local one is.
    assert!(
        failed
            .stderr
            .starts_with("error: invalid `command` in [services.web]")
            && !failed.stderr.contains("error: error"),
        "{}",
        failed.stderr
    );
    assert_eq!(one_pid("987702"), web);
    assert_eq!(service_field(&project, "web", "state"), "healthy");
    // `down` needs no valid config to stop what runs.
    project.locald(["down"]).success();
    assert!(
        pids_with_arg("987702").is_empty(),
        "down left a service running"
    );
}

#[test]
fn reload_without_a_supervisor_says_how_to_start_one() {
    let project = Project::with_toml(BEFORE);
    project
        .locald(["reload"])
        .code(1)
        .stderr_has("no supervisor is running for project");
}

/// `up -d` beside a running supervisor brings it up to date and succeeds,
/// as `docker compose up -d` does: the edited config is applied and
/// services that were stopped start again.
#[test]
fn up_detached_again_applies_the_config_and_starts_what_is_down() {
    let before = BEFORE.replace("9879", "9876");
    let project = Project::with_toml(&before);
    project.locald(["up", "-d", "--wait"]).success();
    let steady = one_pid("987601");
    project
        .locald(["up", "-d"])
        .success()
        .stderr_has("nothing changed");

    project.locald(["stop", "old"]).success();
    project.write(
        "locald.toml",
        &format!("{before}\n[services.new]\ncommand = \"sleep 987604\"\nhealth = \"none\"\n"),
    );
    // What it did, then the summary of every service (see
    // cli::up_detached_summarises_each_service_with_its_url).
    let out = project.locald(["up", "-d", "--wait"]).success();
    assert!(
        out.stderr
            .starts_with("locald: new: started\nlocald: old: started\n  "),
        "{out}"
    );
    assert_eq!(
        one_pid("987601"),
        steady,
        "an unchanged service keeps running"
    );
    one_pid("987603");
    one_pid("987604");
    project.locald(["down"]).success();
    assert!(pids_with_arg("987601").is_empty() && pids_with_arg("987604").is_empty());
}
