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

/// `-v` diagnostics written to a file or a pipe carry no colour codes.
#[test]
fn verbose_diagnostics_in_a_pipe_have_no_escape_codes() {
    let project = Project::new();
    let store = tempfile::tempdir().unwrap();
    let out = project
        .locald(["-v", "image", "prune"])
        .env("LOCALD_DATA_DIR", store.path().to_str().unwrap())
        .success();
    assert!(out.stderr.contains("pruned image store"), "{out}");
    assert!(!out.stderr.contains('\u{1b}'), "{out}");
}

/// `up -d` ends with what runs and where, as `docker compose up -d` does.
#[test]
fn up_detached_summarises_each_service_with_its_url() {
    let project = Project::with_toml(
        "[services.web]\ncommand = \"exec sleep 963360\"\n[services.db]\ncommand = \"exec sleep 963361\"\n",
    );
    let out = project
        .locald(["up", "-d", "--wait", "--timeout", "20s"])
        .success();
    for service in ["web", "db"] {
        let port = crate::harness::service_field(&project, service, "port");
        let line = out
            .stderr
            .lines()
            .find(|line| line.trim_start().starts_with(&format!("{service} ")))
            .unwrap_or_else(|| panic!("no line for {service}: {out}"));
        assert!(line.contains("healthy"), "{line}");
        assert!(
            line.ends_with(&format!("http://127.0.0.1:{port}")),
            "{line}"
        );
    }
    project.locald(["down"]).success();
}

/// `-v` shows locald's own steps (a service started, stopped), not only
/// what its libraries say.
#[test]
fn verbose_up_shows_locald_s_own_steps() {
    let project =
        Project::with_toml("[services.job]\ncommand = \"echo done-963370\"\nrestart = \"never\"\n");
    let out = project.locald(["-v", "up"]).success();
    assert!(out.stdout.contains("done-963370"), "{out}");
    let started = out
        .stderr
        .lines()
        .find(|line| line.contains("started"))
        .unwrap_or_else(|| panic!("no start step: {out}"));
    assert!(started.contains("service=job"), "{started}");
    assert!(started.contains("echo done-963370"), "{started}");
}
