//! Invalid configuration is refused with the file, line, column and key, and
//! nothing starts.

use crate::harness::Project;

#[test]
fn unknown_key_names_line_and_suggests() {
    let project =
        Project::with_toml("[project]\nname = \"demo\"\n\n[services.web]\ncomand = \"echo hi\"\n");
    let expected = format!(
        "error: unknown key `comand` in [services.web]\n  --> {}/locald.toml:5:1\n   |\n 5 | comand = \"echo hi\"\n   | ^^^^^^ did you mean `command`?\n",
        project.path().display()
    );
    project
        .locald(["run", "web", "--", "true"])
        .code(1)
        .stderr_is(&expected);
    assert!(!project.path().join(".locald").exists(), "nothing ran");
}

#[test]
fn wrong_type_names_the_key() {
    let project = Project::with_toml("[services.web]\ncommand = \"x\"\nport = \"eighty\"\n");
    project
        .locald(["compile"])
        .code(1)
        .stderr_has("locald.toml:3:8")
        .stderr_has("port");
}

#[test]
fn unknown_dependency_and_cycles_are_refused() {
    let project = Project::with_toml(
        "[services.web]\ncommand = \"x\"\ndepends_on = [\"dbb\"]\n\n[services.db]\ncommand = \"y\"\n",
    );
    project
        .locald(["up", "-d", "--wait"])
        .code(1)
        .stderr_has("locald.toml:3:")
        .stderr_has("dbb")
        .stderr_has("did you mean `db`");
    assert!(!project.path().join(".locald/supervisor.sock").exists());

    let cycle = Project::with_toml(
        "[services.a]\ncommand = \"x\"\ndepends_on = [\"b\"]\n\n[services.b]\ncommand = \"y\"\ndepends_on = [\"a\"]\n",
    );
    cycle
        .locald(["up"])
        .code(1)
        .stderr_has("cycle")
        .stderr_has("a -> b -> a");
}

#[test]
fn syntax_error_has_position() {
    let project = Project::with_toml("[services.web\ncommand = \"x\"\n");
    project
        .locald(["compile"])
        .code(1)
        .stderr_has("locald.toml:1:");
}

#[test]
fn script_errors_name_script_line_and_column() {
    let project = Project::new().file(
        "locald.rhai",
        "project(\"p\");\n\nservice(\"web\", #{ command: \"x\", prot: 1 });\n",
    );
    project
        .locald(["run", "web", "--", "true"])
        .code(1)
        .stderr_has("locald.rhai:3:1")
        .stderr_has("prot");

    let task = Project::new().file("task.rhai", "let x = 1;\nx.nope();\n");
    task.locald(["script", "task.rhai"])
        .code(1)
        .stderr_has("task.rhai:2:")
        .stderr_has("nope");
}
