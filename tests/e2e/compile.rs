//! `locald compile` prints the Rhai script a `locald.toml` becomes, and that
//! script is a working project on its own.

use crate::harness::Project;

const TOML: &str = r#"# the demo
[project]
name = "demo"

[services.db]
command = "echo db"
port = 6543

[services.web]
command = "echo $PORT"
depends_on = ["db"]
env = { DB_URL = "${services.db.url}", "WEIRD-KEY" = "quote\"back\\slash" }
health = { http = "/health", interval = "250ms" }
"#;

#[test]
fn compile_prints_a_script_that_runs_the_same_project() {
    let project = Project::with_toml(TOML);
    let compiled = project.locald(["compile"]).success().stdout.clone();
    assert!(compiled.contains("project(\"demo\");"), "{compiled}");
    assert!(compiled.contains("service(\"web\""), "{compiled}");

    let from_toml = project
        .locald(["run", "web", "--", "printenv", "DB_URL", "WEIRD-KEY"])
        .success()
        .stdout
        .clone();

    // The compiled script alone is the same project.
    std::fs::remove_file(project.path().join("locald.toml")).unwrap();
    project.write("locald.rhai", &compiled);
    let from_rhai = project
        .locald(["run", "web", "--", "printenv", "DB_URL", "WEIRD-KEY"])
        .success()
        .stdout
        .clone();
    assert_eq!(from_toml, from_rhai);
    assert_eq!(from_toml, "http://127.0.0.1:6543\nquote\"back\\slash\n");
}

#[test]
fn compile_takes_a_file() {
    let project = Project::new().file("other.toml", "[services.a]\ncommand = \"true\"\n");
    project
        .locald(["compile", "-f", "other.toml"])
        .success()
        .stdout_has("service(\"a\"");
}
