//! `locald task`: project tasks from `[tasks]` and `tasks/*.rhai`, listed
//! as `just --list` does and run with their arguments, in a service's world
//! (`service`) and after their services are healthy (`depends_on`).

use std::time::{Duration, Instant};

use crate::harness::{alive, pids_with_arg, Project};

const TOML: &str = r#"
[services.api]
command = "sleep 971100"
workdir = "api"
env = { GREETING = "hello from api" }

[tasks]
hello = { command = "echo hello", description = "Say hello" }
words = "printf '[%s]'"
fail = "exit 3"
in-api = { command = "echo \"$GREETING/$PORT\"; pwd", service = "api", description = "Print api's world" }
"#;

fn project() -> Project {
    Project::with_toml(TOML)
        .file("api/.keep", "")
        .file(
            "tasks/seed.rhai",
            "// Seed the database\n// (a second line)\nprint(`argv: ${args.argv}`);\n4\n",
        )
        .file("tasks/bare.rhai", "let x = 1;\n0\n")
}

#[test]
fn listing_shows_both_kinds_by_name_with_descriptions_aligned() {
    project().locald(["task"]).success().stdout_is(
        "Available tasks:
    bare    # tasks/bare.rhai
    fail    # exit 3
    hello   # Say hello
    in-api  # Print api's world
    seed    # Seed the database
    words   # printf '[%s]'
",
    );
}

#[test]
fn a_project_without_tasks_says_how_to_add_one() {
    let out = Project::with_toml("[services.web]\ncommand = \"true\"\n")
        .locald(["task"])
        .success();
    assert_eq!(out.stdout, "", "{out}");
    out.stderr_has("no tasks in ").stderr_has(
        "add one under [tasks] in locald.toml (test = \"cargo test\"), or write tasks/NAME.rhai",
    );
}

#[test]
fn arguments_reach_a_command_as_given() {
    project()
        .locald([
            "task",
            "words",
            "a b",
            "it's \"q\"",
            "--release",
            "-C",
            "$HOME",
            "",
        ])
        .success()
        .stdout_is("[a b][it's \"q\"][--release][-C][$HOME][]");
}

#[test]
fn arguments_reach_a_script_as_argv_and_its_value_is_the_exit_code() {
    project()
        .locald(["task", "seed", "--force", "two words"])
        .code(4)
        .stdout_is("argv: [\"--force\", \"two words\"]\n");
}

#[test]
fn exit_codes_pass_through() {
    let project = project();
    project.locald(["task", "fail"]).code(3);
    project
        .locald(["task", "hello"])
        .success()
        .stdout_is("hello\n");
    project.write("tasks/boom.rhai", "let x = 1;\nlet y = x + ;\n");
    project
        .locald(["task", "boom"])
        .code(1)
        .stderr_has("--> tasks/boom.rhai:2:");
    project.write(
        "tasks/throws.rhai",
        "// Fails\nlet x = 1;\n  throw \"no seed file\";\n",
    );
    project
        .locald(["task", "throws"])
        .code(1)
        .stderr_has("error: no seed file\n  --> tasks/throws.rhai:3:3\n");
}

#[test]
fn tasks_run_from_the_project_root_wherever_they_are_called() {
    let project = project();
    project.write("sub/dir/.keep", "");
    project.write("tasks/where.rhai", "run_command(\"pwd\")\n");
    project
        .locald(["-C", "sub/dir", "task", "where"])
        .success()
        .stdout_is(&format!("{}\n", project.path().display()));
    project.write(
        "locald.toml",
        &TOML.replace("words = ", "here = \"pwd\"\nwords = "),
    );
    project
        .locald(["-C", "sub", "task", "here"])
        .success()
        .stdout_is(&format!("{}\n", project.path().display()));
}

#[test]
fn a_task_with_a_service_runs_in_its_world() {
    let project = project();
    let out = project.locald(["task", "in-api"]).success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    let (greeting, port) = lines[0].split_once('/').expect("greeting/port");
    assert_eq!(greeting, "hello from api", "{out}");
    let port: u16 = port.parse().expect("PORT is a number");
    assert!(port > 0);
    assert_eq!(
        lines[1],
        project.path().join("api").display().to_string(),
        "in api's workdir\n{out}"
    );
    // `locald run` gives the same world (one place decides it).
    let run = project
        .locald(["run", "api", "--", "echo \"$GREETING/$PORT\""])
        .success();
    assert_eq!(run.stdout.lines().next(), lines.first().copied());
}

#[test]
fn a_task_script_runs_another_task() {
    let project = project();
    project.write(
        "tasks/outer.rhai",
        "// Runs words then fail\nlet p = load_project();\nrun_task(p, \"words\", [\"x y\"]);\nprint(\"\");\nrun_task(p, \"fail\") + 10\n",
    );
    project
        .locald(["task", "outer"])
        .code(13)
        .stdout_is("[x y]\n");
}

#[test]
fn unknown_tasks_and_bad_configs_are_clear_errors() {
    let project = project();
    project.locald(["task", "helo"]).code(1).stderr_is(
        "error: unknown task `helo`: did you mean `hello`? (tasks: bare, fail, hello, in-api, seed, words)\n",
    );
    project.write("tasks/hello.rhai", "0\n");
    project.locald(["task"]).code(1).stderr_is(
        "error: task `hello` is declared twice: in locald.toml ([tasks] hello) and as tasks/hello.rhai; rename or remove one\n",
    );
    std::fs::remove_file(project.path().join("tasks/hello.rhai")).unwrap();

    project.write(
        "locald.toml",
        "[services.api]\ncommand = \"x\"\n[tasks]\nseed = { command = \"x\", depends_on = [\"apu\"] }\n",
    );
    project
        .locald(["task", "seed"])
        .code(1)
        .stderr_has("error: task `seed` depends on unknown service `apu`\n  --> ")
        .stderr_has("locald.toml:4:39\n")
        .stderr_has("^^^^^ did you mean `api`?");
}

/// Runs `locald task NAME` in a project, Ctrl-C's it once `marker` runs,
/// and checks it ends with 130 and the command is gone.
fn interrupt_task(project: &Project, name: &str, marker: &str) {
    let child = project.locald(["task", name]).process_group().spawn();
    let group = nix::unistd::Pid::from_raw(child.id() as i32);
    let deadline = Instant::now() + Duration::from_secs(10);
    let sleeper = loop {
        if let Some(pid) = pids_with_arg(marker)
            .into_iter()
            .find(|p| *p != child.id() as i32)
        {
            break pid;
        }
        assert!(Instant::now() < deadline, "the task never started");
        std::thread::sleep(Duration::from_millis(20));
    };
    nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{name}: {out:?}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("not reached"),
        "{name}: {out:?}"
    );
    assert!(!alive(sleeper), "{name}: the task's command is gone");
}

#[test]
fn ctrl_c_stops_a_running_task_with_130() {
    let project = Project::with_toml("[tasks]\nwait = \"sleep 971101; echo not reached\"\n")
        .file(
            "tasks/script.rhai",
            "run_command(\"sleep 971102\");\nprint(\"not reached\");\n",
        )
        .file(
            "tasks/nested.rhai",
            "run_task(load_project(), \"script\");\nprint(\"not reached\");\n",
        );
    interrupt_task(&project, "wait", "971101");
    interrupt_task(&project, "script", "971102");
    interrupt_task(&project, "nested", "971102");
}

#[test]
fn depends_on_starts_the_services_and_waits_until_they_answer() {
    let project = Project::with_toml(
        r#"
[services.web]
command = "exec python3 -m http.server --bind 127.0.0.1 $PORT"
health = { http = "/" }

[tasks]
fetch = { command = "python3 -c 'import os, urllib.request; print(urllib.request.urlopen(\"http://127.0.0.1:%s/\" % os.environ[\"PORT\"]).status)'", service = "web", depends_on = ["web"] }
"#,
    );
    project
        .locald(["task", "fetch"])
        .success()
        .stdout_is("200\n");
    let state = crate::harness::service_field(&project, "web", "state");
    assert_eq!(state, "healthy", "a detached supervisor keeps web running");
    // Healthy already: nothing to start, nothing said.
    let again = project.locald(["task", "fetch"]).success();
    again.stdout_is("200\n").stderr_is("");
    project.locald(["down"]).success();
}

/// A copy of `examples/notes` (its sources only), to run in.
fn notes_example() -> Project {
    let project = Project::new();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/notes");
    for dir in ["", "tasks"] {
        for entry in std::fs::read_dir(example.join(dir)).expect("examples/notes") {
            let path = entry.unwrap().path();
            if path.is_file() {
                let name = format!("{dir}/{}", path.file_name().unwrap().to_str().unwrap());
                project.write(
                    name.trim_start_matches('/'),
                    &std::fs::read_to_string(&path).unwrap(),
                );
            }
        }
    }
    project
}

#[test]
fn the_notes_example_seeds_its_database_and_runs_its_tests() {
    let project = notes_example();
    let list = project.locald(["task"]).success();
    list.stdout_has("    seed  # Seed the database with sample notes")
        .stdout_has("    ci    # Run the tests against a fresh `up`");

    // ci: a fresh up, seeded, tested, taken down.
    let ci = project.locald(["task", "ci"]).success();
    ci.stdout_has("seeded 3 notes")
        .stderr_has("OK\n")
        .stderr_has("ci: passed");
    assert!(
        !project.path().join(".locald/supervisor.sock").exists()
            && crate::harness::status_json(&project)[0]["state"] == "stopped",
        "ci took the services down\n{ci}"
    );

    // seed starts db when nothing runs, and it keeps running for what follows.
    project
        .locald(["task", "seed", "1"])
        .success()
        .stdout_is("seeded 2 notes\n");
    project
        .locald(["task", "get", "welcome"])
        .success()
        .stdout_is("Welcome to notes!\n");
    project
        .locald(["task", "keys"])
        .success()
        .stdout_is("note-1\nnote-2\nwelcome\n");
    // ci wants a fresh supervisor.
    project
        .locald(["task", "ci"])
        .code(1)
        .stderr_has("a supervisor already runs for this project: `locald down` first");
    project.locald(["down"]).success();
}

#[test]
fn a_job_that_finished_well_counts_as_ready_and_is_not_run_again() {
    let project = Project::with_toml(
        r#"
[services.migrate]
command = "echo migrated >> migrations.log"
restart = "never"

[services.idle]
command = "sleep 971103"

[tasks]
check = { command = "cat migrations.log", depends_on = ["migrate"] }
"#,
    );
    project
        .locald(["task", "check"])
        .success()
        .stdout_is("migrated\n");
    // The supervisor keeps it as a job that exited 0: ready, not started again.
    project
        .locald(["task", "check"])
        .success()
        .stdout_is("migrated\n");
    assert!(
        pids_with_arg("971103").is_empty(),
        "only what the task depends on was started"
    );
    project.locald(["down"]).success();
}
