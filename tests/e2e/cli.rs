//! How the CLI ends a command: errors are shown by what they are (a config
//! diagnostic whole, anything else after `error: `), never by what their
//! text happens to say; the hidden daemon entry takes exactly the arguments
//! its launcher gives.

use crate::harness::Project;

const BAD_TOML: &str = "[services.web]\ncomand = \"x\"\n";

fn diagnostic(project: &Project) -> String {
    format!(
        "error: unknown key `comand` in [services.web]\n  --> {}/locald.toml:2:1\n   |\n 2 | comand = \"x\"\n   | ^^^^^^ did you mean `command`?\n",
        project.path().display()
    )
}

#[test]
fn a_thrown_message_is_an_error_whatever_it_says() {
    // Once, a message starting with "error" was taken for a diagnostic and
    // lost its `error: `, and one reading "interrupted" for a Ctrl-C.
    let project = Project::new()
        .file("a.rhai", "throw \"error-prone\";\n")
        .file("b.rhai", "throw \"interrupted\";\n");
    project.locald(["script", "a.rhai"]).code(1).stderr_is(
        "error: error-prone\n  --> a.rhai:1:1\n  |\n1 | throw \"error-prone\";\n  | ^\n",
    );
    project.locald(["script", "b.rhai"]).code(1).stderr_is(
        "error: interrupted\n  --> b.rhai:1:1\n  |\n1 | throw \"interrupted\";\n  | ^\n",
    );
}

#[test]
fn config_diagnostics_are_shown_whole_from_every_verb() {
    let project = Project::with_toml(BAD_TOML);
    let expected = diagnostic(&project);
    project.locald(["compile"]).code(1).stderr_is(&expected);
    project.locald(["status"]).code(1).stderr_is(&expected);
    // Refused before anything is written.
    project
        .locald(["service", "add", "command", "--name", "api", "--", "serve"])
        .code(1)
        .stderr_is(&expected);
    assert_eq!(project.read("locald.toml"), BAD_TOML);
}

#[test]
fn a_diagnostic_caught_and_thrown_again_stays_whole() {
    let project = Project::with_toml(BAD_TOML)
        .file("t.rhai", "try { load_project() } catch (e) { throw e }\n");
    let expected = format!(
        "{}\n  --> t.rhai:1:36\n  |\n1 | try {{ load_project() }} catch (e) {{ throw e }}\n  |                                    ^\n",
        diagnostic(&project)
    );
    project
        .locald(["script", "t.rhai"])
        .code(1)
        .stderr_is(&expected);
}

#[test]
fn the_daemon_entry_refuses_other_arguments() {
    let project = Project::new();
    for args in [
        &["__supervise"][..],
        &["__supervise", "--root"],
        &["__supervise", "--x", "."],
    ] {
        project
            .locald(args)
            .code(2)
            .stderr_is("usage: locald __supervise --root DIR\n");
    }
}

#[test]
fn the_repl_shows_errors_as_commands_do() {
    let project = Project::with_toml(BAD_TOML);
    // Once, the REPL put `error: ` before a diagnostic's own. Piped input
    // stops at its first error, as a script does.
    let expected = format!(
        "{}\n  --> <repl>:1:1\n  |\n1 | load_project()\n  | ^\n",
        diagnostic(&project)
    );
    project
        .locald(["repl"])
        .stdin("load_project()\n40 + 2\n")
        .code(1)
        .stdout_is("")
        .stderr_is(&expected);
    project
        .locald(["repl"])
        .stdin("throw \"error-prone\"\n")
        .code(1)
        .stderr_is("error: error-prone\n  --> <repl>:1:1\n  |\n1 | throw \"error-prone\"\n  | ^\n");
}
