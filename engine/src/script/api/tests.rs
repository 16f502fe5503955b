//! The primitives as scripts see them: small scripts evaluated in a verb
//! engine (every primitive registered), with no supervisor and no container.

use rhai::{Dynamic, EvalAltResult, Position, Scope};

use crate::script::ProjectHandle;

fn eval(scope: &mut Scope, script: &str) -> Result<Dynamic, Box<EvalAltResult>> {
    crate::script::verb_engine().eval_with_scope::<Dynamic>(scope, script)
}

fn value(script: &str) -> Dynamic {
    eval(&mut Scope::new(), script).unwrap_or_else(|e| panic!("{script}: {e}"))
}

/// The error `script` fails with: its message and where.
fn failure(scope: &mut Scope, script: &str) -> (String, Position) {
    match eval(scope, script) {
        Ok(value) => panic!("{script}: gave {value:?}"),
        Err(error) => match *error {
            EvalAltResult::ErrorRuntime(message, position) => (message.to_string(), position),
            other => (other.to_string(), other.position()),
        },
    }
}

/// A scope with `p`, a project of one host service `web` and one container
/// service `db`, in a fresh directory.
fn with_project() -> (tempfile::TempDir, Scope<'static>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(crate::config::TOML_FILE),
        "[services.web]\ncommand = \"sleep 1\"\n[services.db]\nimage = \"postgres:16\"\n",
    )
    .unwrap();
    let project = crate::project::load_project(dir.path()).unwrap();
    let mut scope = Scope::new();
    scope.push("p", ProjectHandle::new(project));
    (dir, scope)
}

#[test]
fn run_command_runs_shell_lines_argvs_and_programs() {
    assert_eq!(value(r#"run_command("exit 3")"#).as_int(), Ok(3));
    assert_eq!(
        value(r#"run_command(["sh", "-c", "exit 4"])"#).as_int(),
        Ok(4)
    );
    assert_eq!(value(r#"run_command(program(["exit 5"]))"#).as_int(), Ok(5));
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path().canonicalize().unwrap();
    let script = format!(
        r#"run_command("test \"$(pwd -P)\" = {} && exit $X", #{{ env: #{{ X: 6 }}, cwd: "{}" }})"#,
        dir.display(),
        dir.display()
    );
    assert_eq!(value(&script).as_int(), Ok(6));
    // `()` is an option not given: the current directory.
    assert_eq!(
        value(r#"run_command("exit 0", #{ cwd: (), env: () })"#).as_int(),
        Ok(0)
    );
}

#[test]
fn a_misspelt_option_fails_at_the_call_with_the_known_ones() {
    let (message, position) = failure(
        &mut Scope::new(),
        "let code = 0;\ncode = run_command(\"true\", #{ evn: #{} });",
    );
    assert_eq!(
        message,
        "run_command: unknown option `evn` (known: env, cwd, on_interrupt)"
    );
    assert_eq!((position.line(), position.position()), (Some(2), Some(8)));

    // Options are read before anything runs: no image is pulled, no
    // supervisor started, nothing imported.
    let (_dir, mut scope) = with_project();
    for (script, expected) in [
        (
            r#"run_container("example.test/none", #{ comand: "ls" })"#,
            "run_container: unknown option `comand` (known: command, entrypoint, env, volumes, \
             workdir, user, hostname, interactive, tty, pull, cap_add, cap_drop, security_opt, rm, init)",
        ),
        (
            r#"import_image("/nonexistent", #{ nmae: "x" })"#,
            "import_image: unknown option `nmae` (known: name)",
        ),
        (
            "up(p, #{ detatch: true })",
            "up: unknown option `detatch` (known: detach, wait, timeout, services, dashboard)",
        ),
        (
            "print_logs(p, #{ folow: true })",
            "print_logs: unknown option `folow` (known: service, services, lines, since, timestamps, follow)",
        ),
        (
            "print_status(p, #{ jsn: true })",
            "print_status: unknown option `jsn` (known: json)",
        ),
        (
            r#"up(p, #{ detach: "yes" })"#,
            "up: option `detach`: expected true or false, not a string",
        ),
        (
            r#"up(p, #{ services: ["api"] })"#,
            "unknown service `api`; known services: web, db",
        ),
        (
            r#"print_logs(p, #{ service: "api" })"#,
            "no service or process ID `api`; known services: web, db",
        ),
        (
            "processes(p, #{ al: true })",
            "processes: unknown option `al` (known: all)",
        ),
        (
            "print_processes(p, #{ jsn: true })",
            "print_processes: unknown option `jsn` (known: all, json)",
        ),
    ] {
        assert_eq!(failure(&mut scope, script).0, expected, "{script}");
    }
}

#[test]
fn renamed_primitives_are_gone() {
    let (_dir, mut scope) = with_project();
    for script in [
        r#"container_run("example.test/none", #{})"#,
        "logs(p, (), 10, false)",
        "print_status(p, false)",
        r#"import_image("/nonexistent", ())"#,
        "compile_config(())",
    ] {
        let error = eval(&mut scope, script).unwrap_err();
        assert!(
            matches!(*error, EvalAltResult::ErrorFunctionNotFound(..)),
            "{script}: {error}"
        );
    }
}

#[test]
fn programs_follow_the_command_line_rule() {
    assert!(value(r#"program(["npm start"]).is_shell"#)
        .as_bool()
        .unwrap());
    assert_eq!(
        value(r#"program(["ls", "-l", "a b"]).line"#).to_string(),
        "ls -l 'a b'"
    );
    assert_eq!(
        value(r#"program("echo $PORT").argv"#)
            .into_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        value(r#"program(["./bin/server", "-p"]).name"#).to_string(),
        "server"
    );
    let (message, _) = failure(&mut Scope::new(), "program([])");
    assert_eq!(message, "the command is empty");
    let (message, _) = failure(&mut Scope::new(), "run_command(3)");
    assert_eq!(
        message,
        "a command is a string, an array of strings or a Program, not i64"
    );
}

#[test]
fn logs_returns_the_last_lines_as_data() {
    use crate::supervisor::logs::{LogFile, Stream};

    let (dir, mut scope) = with_project();
    let state = crate::project::StateDir::new(&dir.path().join(".locald"));
    state.ensure().unwrap();
    let mut web = LogFile::open(&state.service_log("web")).unwrap();
    web.write_line("2024-01-01T00:00:01.000Z", Stream::Stdout, b"listening")
        .unwrap();
    web.write_line("2024-01-01T00:00:02.000Z", Stream::Event, b"exited with 0")
        .unwrap();
    web.flush().unwrap();

    let lines = eval(&mut scope, r#"logs(p, #{ service: "web", lines: 5 })"#)
        .unwrap()
        .into_array()
        .unwrap();
    let lines: Vec<String> = lines
        .into_iter()
        .map(|l| {
            let l = l.cast::<rhai::Map>();
            format!("{} {} {}", l["service"], l["stream"], l["line"])
        })
        .collect();
    assert_eq!(lines, ["web stdout listening", "web locald exited with 0"]);
    let last = eval(&mut scope, "logs(p, #{ lines: 1 })[0].line").unwrap();
    assert_eq!(last.to_string(), "exited with 0");
    let (message, _) = failure(&mut scope, "logs(p, #{ follow: true })");
    assert_eq!(
        message,
        "logs: unknown option `follow` (known: service, services, lines, since)"
    );
    let time = eval(
        &mut scope,
        r#"logs(p, #{ services: ["web"], since: "2024-01-01T00:00:02Z" })[0].time"#,
    )
    .unwrap();
    assert_eq!(time.to_string(), "2024-01-01T00:00:02.000Z");
}

#[test]
fn confirm_without_a_person_gives_the_default() {
    // Nobody answers where tests run (CI sets `CI`); at a terminal the
    // question would wait for a person.
    if super::terminal::interactive() {
        return;
    }
    assert_eq!(value(r#"confirm("Go?")"#).as_bool(), Ok(false));
    assert_eq!(
        value(r#"confirm("Go?", #{ default_answer: true })"#).as_bool(),
        Ok(true)
    );
    let (message, _) = failure(&mut Scope::new(), r#"confirm("Go?", true)"#);
    assert!(
        message.starts_with("Function not found: confirm"),
        "{message}"
    );
    let (message, _) = failure(&mut Scope::new(), r#"confirm("Go?", #{ "default": true })"#);
    assert_eq!(
        message,
        "confirm: unknown option `default` (known: default_answer)"
    );
}

#[test]
fn capture_command_gives_a_map_and_checks_its_options() {
    let captured = value(r#"capture_command(["sh", "-c", "echo hi; exit 2"])"#);
    let map = captured.cast::<rhai::Map>();
    assert_eq!(map["code"].as_int(), Ok(2));
    assert_eq!(map["stdout"].clone().into_string().unwrap(), "hi\n");
    assert_eq!(map["stderr"].clone().into_string().unwrap(), "");
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path().canonicalize().unwrap();
    let script = format!(
        r#"capture_command("pwd -P", #{{ cwd: "{}", stdin: () }}).stdout"#,
        dir.display()
    );
    assert_eq!(
        value(&script).into_string().unwrap(),
        format!("{}\n", dir.display())
    );
    let (message, _) = failure(
        &mut Scope::new(),
        r#"capture_command("true", #{ input: "" })"#,
    );
    assert_eq!(
        message,
        "capture_command: unknown option `input` (known: env, cwd, stdin)"
    );
    let (message, _) = failure(
        &mut Scope::new(),
        r#"capture_command("true", #{ cwd: "/nonexistent/dir" })"#,
    );
    assert_eq!(
        message,
        "working directory /nonexistent/dir does not exist (or is not a directory)"
    );
}

#[test]
fn sleep_is_locald_s_own_whatever_the_argument() {
    // Rhai's standard `sleep` would ignore these; locald's refuses them.
    for (script, expected) in [
        ("sleep(-1)", "sleep: must not be negative"),
        ("sleep(-0.5)", "sleep: must not be negative"),
        ("sleep(\"-1s\")", "sleep: invalid duration `-1s`"),
        ("sleep(true)", "sleep: "),
        ("sleep(100000)", "sleep: 1day 3h 46m 40s is longer"),
    ] {
        let (message, _) = failure(&mut Scope::new(), script);
        assert!(message.starts_with(expected), "{script}: {message}");
    }
    assert!(value("sleep(0); sleep(0.01); sleep(\"1ms\"); true")
        .as_bool()
        .unwrap());
}

#[test]
fn env_flags_read_as_docker_reads_them() {
    // PATH is always set; a name nobody sets is left out.
    let env =
        value(r#"env_assignments(["A=1", "B=x=y", "C=", "PATH", "LOCALD_NOBODY_SETS_THIS"])"#)
            .cast::<rhai::Map>();
    assert_eq!(env["A"].to_string(), "1");
    assert_eq!(env["B"].to_string(), "x=y");
    assert_eq!(env["C"].to_string(), "");
    assert_eq!(env["PATH"].to_string(), std::env::var("PATH").unwrap());
    assert!(!env.contains_key("LOCALD_NOBODY_SETS_THIS"));
}
