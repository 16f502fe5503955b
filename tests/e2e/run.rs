//! `locald run SVC -- CMD`: a one-off command in a service's world.

use crate::harness::Project;

const TOML: &str = r#"
[services.db]
command = "sleep 100"

[services.api]
command = "sleep 100"
workdir = "api"
env_file = "api.env"
env = { DB = "${services.db.url}", OVERRIDDEN = "by-env" }
"#;

fn project() -> Project {
    Project::with_toml(TOML)
        .file(".env", "FROM_DOTENV=dotenv\nOVERRIDDEN=by-dotenv\n")
        .file("api.env", "# comment\nexport FROM_FILE=\"file value\"\n")
        .file("api/marker", "")
}

#[test]
fn run_uses_the_service_environment_and_workdir() {
    let project = project();
    let out = project
        .locald([
            "run",
            "api",
            "--",
            "echo $FROM_DOTENV/$FROM_FILE/$OVERRIDDEN/$DB/$PORT; ls",
        ])
        .success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    let fields: Vec<&str> = lines[0].split('/').collect();
    assert_eq!(&fields[..3], ["dotenv", "file value", "by-env"], "{out}");
    assert!(fields[3].starts_with("http:"), "{out}");
    let port: u16 = fields.last().unwrap().parse().expect("PORT is a number");
    assert!(port > 0);
    assert_eq!(lines[1], "marker", "runs in the workdir\n{out}");

    // The same port next time: ports are kept per service.
    let again = project.locald(["run", "api", "--", "echo $PORT"]).success();
    assert_eq!(again.stdout.trim(), port.to_string());
}

#[test]
fn run_returns_the_exit_code() {
    project().locald(["run", "api", "--", "exit 42"]).code(42);
    project()
        .locald(["run", "api", "--", "sh", "-c", "kill -TERM $$"])
        .code(128 + 15);
}

#[test]
fn run_unknown_service_lists_known_ones() {
    project()
        .locald(["run", "nope", "--", "true"])
        .code(1)
        .stderr_is("error: unknown service `nope`; known services: db, api\n");
}

#[test]
fn run_outside_a_project_is_a_clear_error() {
    Project::new()
        .locald(["run", "web", "--", "true"])
        .code(1)
        .stderr_has("no locald.toml or locald.rhai");
}
