//! A project's scripts and config cannot take the machine or the terminal
//! hostage: loading is bounded in memory, value sizes and time, ends on
//! Ctrl-C and SIGTERM, and `down` and `status` answer whatever the config
//! does. Config errors never print what a file named by the config holds.

use std::process::{Child, Output};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::harness::{alive, Project};

/// Holds 2,000 closures, each over its own 1 MB string: every value is
/// within Rhai's per-value limits, the total is 2 GB.
const HOARDING_RHAI: &str = r#"let kept = [];
let base = "y"; base.pad(1000000, "y");
for i in 0..2000 { let s = base + i; kept.push(|| s.len()); }
project("hoard");
"#;

const LOOPING_RHAI: &str = "let x = 0;\nloop { x += 1; }\n";

#[test]
fn a_config_that_hoards_memory_is_stopped_where_it_is() {
    let project = Project::new().file("locald.rhai", HOARDING_RHAI);
    let out = project.locald(["status"]).code(1);
    out.stderr_has("error: loading the project uses more than 256 MiB of memory (the limit)")
        .stderr_has(&format!("{}/locald.rhai:3:", project.path().display()));
}

#[test]
fn growing_an_array_without_end_is_refused() {
    // `push` re-measures the whole array: a million pushes would take hours
    // within the operation limit. The collection limit refuses it early.
    let project = Project::new().file(
        "locald.rhai",
        "let a = [];\nfor i in 0..1000000 { a.push(i); }\n",
    );
    project
        .locald(["status"])
        .code(1)
        .stderr_has("Size of array/BLOB too large")
        .stderr_has("locald.rhai:2:");
}

/// Starts `locald ARGS` in a project whose `locald.rhai` loops, lets the load
/// begin, sends `signal` and returns what the command printed: it must end
/// by itself (the wait here is a guard against a hang, not a timing check).
fn interrupt_a_looping_load(args: &[&str], signal: Signal) -> (String, Option<i32>) {
    let project = Project::new().file("locald.rhai", LOOPING_RHAI);
    let output = signal_once_handled(
        project.locald(args).process_group().spawn(),
        signal,
        // The load has begun.
        Duration::from_millis(100),
    );
    (
        String::from_utf8_lossy(&output.stderr).into_owned(),
        output.status.code(),
    )
}

/// Sends `signal` to `child` once it handles it (before, the signal's
/// default action would end it, which proves nothing) and `settle` has
/// passed, and returns its output: it must end by itself (the wait is a
/// guard against a hang, not a timing check).
fn signal_once_handled(child: Child, signal: Signal, settle: Duration) -> Output {
    let pid = Pid::from_raw(child.id() as i32);
    wait_for_handler(pid.as_raw(), signal);
    std::thread::sleep(settle);
    kill(pid, signal).expect("signal locald");
    let deadline = Instant::now() + Duration::from_secs(8);
    while alive(pid.as_raw()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let still_running = alive(pid.as_raw());
    if still_running {
        let _ = kill(pid, Signal::SIGKILL);
    }
    let output = child.wait_with_output().expect("wait locald");
    assert!(!still_running, "locald ignored {signal}");
    output
}

/// Waits (under a guard) until process `pid` has a handler for `signal`.
pub fn wait_for_handler(pid: i32, signal: Signal) {
    let bit = 1u64 << (signal as i32 - 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let caught = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|status| {
                let mask = status.lines().find_map(|l| l.strip_prefix("SigCgt:"))?;
                u64::from_str_radix(mask.trim(), 16).ok()
            })
            .is_some_and(|mask| mask & bit != 0);
        if caught {
            return;
        }
        assert!(Instant::now() < deadline, "{pid} never handled {signal}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_looping_config_ends_on_sigterm_and_ctrl_c() {
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        for verb in [
            ["status"].as_slice(),
            &["up", "-d"],
            &["run", "web", "--", "true"],
        ] {
            let (stderr, code) = interrupt_a_looping_load(verb, signal);
            assert!(
                stderr.contains("interrupted"),
                "{verb:?} {signal}: {stderr}"
            );
            assert_ne!(code, Some(0), "{verb:?} {signal}: {stderr}");
        }
    }
}

#[test]
fn down_and_status_answer_while_the_config_loops() {
    let project = Project::with_toml("[services.web]\ncommand = \"sleep 600\"\n");
    project
        .locald(["up", "-d", "--wait", "--timeout", "20s"])
        .success();
    let pid = crate::harness::service_field(&project, "web", "pid")
        .as_i64()
        .expect("web's pid");

    // The config is edited into a script that never ends.
    std::fs::remove_file(project.path().join("locald.toml")).unwrap();
    project.write("locald.rhai", LOOPING_RHAI);

    project.locald(["status"]).success().stdout_has("web");
    project.locald(["down"]).success();
    assert!(!alive(pid as i32), "down stopped web");
}

#[test]
fn a_large_env_table_loads_in_one_pass() {
    // 40,000 variables used to go through a generated Rhai map literal, whose
    // parse is quadratic (15 s in a release build).
    let mut toml = String::from("[services.web]\ncommand = \"sleep 600\"\n[services.web.env]\n");
    for i in 0..40_000 {
        toml.push_str(&format!("K{i} = \"v{i}\"\n"));
    }
    let project = Project::with_toml(&toml);
    project
        .locald(["run", "web", "--", "printenv K39999"])
        .success()
        .stdout_is("v39999\n");
}

#[test]
fn env_file_errors_give_the_line_not_its_content() {
    let project =
        Project::with_toml("[services.web]\ncommand = \"sleep 600\"\nenv_file = \"shadow\"\n")
            .file("shadow", "root:$6$s3cr3tsalt$hash:19000:0:99999:7:::\n");
    let out = project.locald(["run", "web", "--", "true"]).code(1);
    out.stderr_has("shadow:1: expected KEY=value");
    assert!(!out.stderr.contains("s3cr3t"), "{out}");
}

#[test]
fn a_missing_workdir_is_one_clear_error_not_a_restart_loop() {
    let project =
        Project::with_toml("[services.web]\ncommand = \"sleep 600\"\nworkdir = \"gone\"\n");
    let missing = project.path().join("gone");
    project
        .locald(["run", "web", "--", "true"])
        .code(1)
        .stderr_is(&format!(
            "error: working directory {} does not exist (or is not a directory)\n",
            missing.display()
        ));

    project
        .locald(["up", "-d", "--wait", "--timeout", "20s"])
        .code(1)
        .stderr_has(&format!(
            "working directory {} does not exist",
            missing.display()
        ));
    assert_eq!(
        crate::harness::service_field(&project, "web", "state"),
        "failed"
    );
    assert_eq!(
        crate::harness::service_field(&project, "web", "restarts"),
        0
    );
}

#[test]
fn service_names_that_read_as_options_are_refused() {
    let project = Project::with_toml("[services.\"-rf\"]\ncommand = \"true\"\n");
    project
        .locald(["status"])
        .code(1)
        .stderr_has("invalid service name `-rf`")
        .stderr_has("do not start with `-`");
    project
        .locald(["service", "add", "command", "--name=-x", "--", "true"])
        .code(1)
        .stderr_has("invalid service name `-x`");
}

#[test]
fn following_logs_ends_on_ctrl_c_and_sigterm() {
    let project = Project::with_toml(
        "[services.web]\ncommand = \"echo hi; exec sleep 600\"\nhealth = \"none\"\n",
    );
    // A bare number of seconds, as in locald.toml.
    project
        .locald(["up", "-d", "--wait", "--timeout", "20"])
        .success();
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        let child = project
            .locald(["logs", "web", "-f"])
            .process_group()
            .spawn();
        let output = signal_once_handled(child, signal, Duration::ZERO);
        assert_eq!(output.status.code(), Some(128 + signal as i32), "{signal}");
    }
    project.locald(["down"]).success();
}

#[test]
fn an_environment_that_is_not_utf8_is_no_panic() {
    use std::os::unix::ffi::OsStrExt;
    let project = Project::with_toml("[services.web]\ncommand = \"sleep 600\"\n");
    let status = std::process::Command::new(crate::harness::locald_bin())
        .args(["run", "web", "--", "true"])
        .current_dir(project.path())
        .env("NOT_UTF8", std::ffi::OsStr::from_bytes(b"\xff\xfe"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run locald");
    assert_eq!(
        status.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
}
