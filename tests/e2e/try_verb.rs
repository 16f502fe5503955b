//! `locald try`: a scratch command with a free $PORT, its exit code, and
//! saving it into locald.toml without losing the user's comments.

use crate::harness::Project;

#[test]
fn try_gives_a_port_and_returns_the_exit_code() {
    let project = Project::new();
    let out = project
        .locald(["try", "--no-save", "--", "echo port=$PORT; exit 7"])
        .code(7);
    let port: u16 = out
        .stdout
        .trim()
        .strip_prefix("port=")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {out}"));
    assert!(port > 0);
    assert!(!project.path().join("locald.toml").exists());
}

#[test]
fn try_without_a_terminal_never_prompts() {
    let project = Project::with_toml("[project]\nname = \"p\"\n");
    project.locald(["try", "--", "true"]).success();
    assert_eq!(project.read("locald.toml"), "[project]\nname = \"p\"\n");
}

#[test]
fn try_save_keeps_comments_and_formatting() {
    let original = "# My project, my comments.\n[project]\nname   =   \"p\"   # spaced on purpose\n\n[services.db]  # the database\ncommand = \"sleep 100\"\n";
    let project = Project::with_toml(original);
    project
        .locald(["try", "--save", "web", "--", "echo serving on $PORT"])
        .success()
        .stdout_has("serving on ");
    let saved = project.read("locald.toml");
    assert!(saved.starts_with(original), "comments lost:\n{saved}");
    assert!(
        saved.contains("[services.web]\ncommand = \"echo serving on $PORT\"\n"),
        "{saved}"
    );
    // The saved service is a real service.
    project
        .locald(["run", "web", "--", "echo ok"])
        .success()
        .stdout_is("ok\n");
}

#[test]
fn try_save_refuses_an_existing_service_and_keeps_the_file() {
    let original = "[services.web]\ncommand = \"a\"\n";
    let project = Project::with_toml(original);
    project
        .locald(["try", "--save", "web", "--", "true"])
        .code(1)
        .stderr_has("web");
    assert_eq!(project.read("locald.toml"), original);
}

#[test]
fn try_words_are_run_as_argv() {
    let project = Project::new();
    project
        .locald(["try", "--no-save", "--", "printf", "%s|", "a b", "$PORT"])
        .success()
        .stdout_is("a b|$PORT|");
}

#[test]
fn a_locald_toml_that_try_creates_is_not_writable_by_others() {
    use std::os::unix::fs::PermissionsExt;
    let project = Project::new();
    project
        .locald(["try", "--save", "web", "--", "true"])
        .env("CI", "1")
        .success();
    let mode = std::fs::metadata(project.path().join("locald.toml"))
        .unwrap()
        .permissions()
        .mode();
    // 0644 less the umask (the test runner's, which locald inherits).
    assert_eq!(mode & 0o022, 0, "locald.toml is {:o}", mode & 0o7777);
    assert_eq!(mode & 0o600, 0o600, "locald.toml is {:o}", mode & 0o7777);
}

#[test]
fn try_refuses_a_bad_or_taken_save_name_before_running_anything() {
    let original = "[services.web]\ncommand = \"sleep 963340\"\n";
    let project = Project::with_toml(original);
    for (name, says) in [
        ("web", "already exists"),
        ("bad name!", "invalid service name"),
    ] {
        project
            .locald(["try", "--save", name, "--", "touch ran-963341"])
            .code(1)
            .stderr_has(says);
        assert!(
            !project.path().join("ran-963341").exists(),
            "the command ran before `{name}` was refused"
        );
    }
    assert_eq!(project.read("locald.toml"), original);
}

#[test]
fn service_add_command_takes_options_after_the_command() {
    let project = Project::with_toml("[project]\nname = \"p\"\n");
    project
        .locald([
            "service",
            "add",
            "command",
            "python3 -m http.server $PORT",
            "--name",
            "web",
            "--port",
            "8000",
        ])
        .success();
    let toml = project.read("locald.toml");
    assert!(
        toml.contains("[services.web]\ncommand = \"python3 -m http.server $PORT\"\nport = 8000\n"),
        "{toml}"
    );
}
