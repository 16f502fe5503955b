//! A small fluent builder that runs the real `locald` binary in a temporary
//! project and checks what it printed, in the style of casey/just's tests.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn locald_bin() -> &'static str {
    env!("CARGO_BIN_EXE_locald")
}

/// A temporary project directory. Dropping it brings any supervisor down, so
/// a failing test leaves no process behind.
pub struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("locald-e2e-")
            .tempdir()
            .expect("temp dir");
        Project { dir }
    }

    /// A project whose `locald.toml` is `toml`.
    pub fn with_toml(toml: &str) -> Self {
        Project::new().file("locald.toml", toml)
    }

    pub fn file(self, path: &str, contents: &str) -> Self {
        self.write(path, contents);
        self
    }

    pub fn write(&self, path: &str, contents: &str) {
        let full = self.path().join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).expect("create dirs");
        }
        std::fs::write(full, contents).expect("write file");
    }

    pub fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.path().join(path)).unwrap_or_default()
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A `locald` invocation in this project.
    pub fn locald<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Run {
            cwd: self.path().to_path_buf(),
            args: args.into_iter().map(|a| a.as_ref().to_string()).collect(),
            env: BTreeMap::new(),
            stdin: None,
            own_process_group: false,
        }
    }

    /// Waits until `check` holds, or panics after `timeout` with `what`.
    pub fn wait_for(&self, what: &str, timeout: Duration, mut check: impl FnMut(&Project) -> bool) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if check(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("timed out after {timeout:?} waiting for {what}");
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        if self.path().join(".locald").exists() {
            let _ = Command::new(locald_bin())
                .arg("down")
                .current_dir(self.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// One `locald` run being set up.
pub struct Run {
    cwd: PathBuf,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    stdin: Option<String>,
    own_process_group: bool,
}

impl Run {
    /// Runs locald in a process group of its own, as a shell does for a
    /// foreground job, so a test can signal the group like Ctrl-C does.
    pub fn process_group(mut self) -> Self {
        self.own_process_group = true;
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// Runs from `dir` (a subdirectory of the project, say) instead of its root.
    pub fn current_dir(mut self, dir: &Path) -> Self {
        self.cwd = dir.to_path_buf();
        self
    }

    pub fn stdin(mut self, input: &str) -> Self {
        self.stdin = Some(input.into());
        self
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(locald_bin());
        cmd.args(&self.args)
            .current_dir(&self.cwd)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .envs(&self.env);
        if self.own_process_group {
            std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        }
        cmd
    }

    /// Runs to completion and returns what happened.
    pub fn output(self) -> Outcome {
        let mut cmd = self.command();
        cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn locald");
        if let Some(input) = &self.stdin {
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(input.as_bytes()).expect("write stdin");
        }
        let output = child.wait_with_output().expect("wait locald");
        Outcome::new(&self.args, output)
    }

    /// Starts without waiting (stdout/stderr piped), e.g. a foreground `up`.
    pub fn spawn(self) -> Child {
        let mut cmd = self.command();
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.spawn().expect("spawn locald")
    }

    /// Runs and asserts success; returns the outcome.
    pub fn success(self) -> Outcome {
        let out = self.output();
        assert_eq!(out.code, Some(0), "expected success\n{out}");
        out
    }

    /// Runs and asserts the exit code.
    pub fn code(self, code: i32) -> Outcome {
        let out = self.output();
        assert_eq!(out.code, Some(code), "unexpected exit code\n{out}");
        out
    }
}

/// What a finished run printed.
pub struct Outcome {
    pub args: Vec<String>,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    fn new(args: &[String], output: Output) -> Self {
        Outcome {
            args: args.to_vec(),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub fn stdout_is(&self, expected: &str) -> &Self {
        assert_eq!(self.stdout, expected, "stdout differs\n{self}");
        self
    }

    pub fn stderr_is(&self, expected: &str) -> &Self {
        assert_eq!(self.stderr, expected, "stderr differs\n{self}");
        self
    }

    pub fn stdout_has(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}\n{self}"
        );
        self
    }

    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n{self}"
        );
        self
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "locald {}\n-- exit: {:?}\n-- stdout:\n{}\n-- stderr:\n{}",
            self.args.join(" "),
            self.code,
            self.stdout,
            self.stderr
        )
    }
}

/// True while a process with this pid exists (and is not a zombie).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Pids of processes whose command line contains `needle` as one argument.
pub fn pids_with_arg(needle: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if cmdline
            .split(|b| *b == 0)
            .any(|arg| arg == needle.as_bytes())
            && alive(pid)
        {
            pids.push(pid);
        }
    }
    pids
}

pub fn status_json(project: &Project) -> serde_json::Value {
    let out = project.locald(["status", "--json"]).success();
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("bad JSON ({e})\n{out}"))
}

pub fn service_field(project: &Project, service: &str, field: &str) -> serde_json::Value {
    status_json(project)
        .as_array()
        .expect("status is an array")
        .iter()
        .find(|s| s["name"] == service)
        .unwrap_or_else(|| panic!("no {service} in status"))[field]
        .clone()
}

/// The pid the running supervisor of `project` wrote in its pid file.
pub fn supervisor_pid(project: &Project) -> i32 {
    project
        .read(".locald/supervisor.pid")
        .trim()
        .parse()
        .expect("supervisor pid file")
}

/// The pid of the one process with `marker` as an argument, waiting a little
/// for it: `health = "none"` is ready before the shell has forked `sleep`.
pub fn one_pid(marker: &str) -> i32 {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while pids_with_arg(marker).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let pids = pids_with_arg(marker);
    assert_eq!(pids.len(), 1, "one process with {marker}: {pids:?}");
    pids[0]
}

/// `(uid, gid)` of the account `name`, created when missing.
pub fn account(name: &str) -> (u32, u32) {
    let id = |flag: &str| -> Option<u32> {
        let out = std::process::Command::new("id")
            .args([flag, name])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    if id("-u").is_none() {
        // Two tests may race to create it; the loser's failure is harmless.
        let _ = std::process::Command::new("useradd")
            .args(["--no-create-home", name])
            .status();
    }
    (
        id("-u").expect("test account exists"),
        id("-g").expect("test account has a group"),
    )
}

/// Hands `root` and everything below it to `owner`.
pub fn give(root: &Path, owner: (u32, u32)) {
    let mut paths = vec![root.to_path_buf()];
    while let Some(path) = paths.pop() {
        if path.is_dir() && !path.is_symlink() {
            paths.extend(
                std::fs::read_dir(&path)
                    .unwrap()
                    .flatten()
                    .map(|e| e.path()),
            );
        }
        std::os::unix::fs::lchown(&path, Some(owner.0), Some(owner.1)).unwrap();
    }
}

/// Runs `locald ARGS` under `script(1)`, which gives it a real
/// pseudo-terminal as a person's shell would (with `env` added); whether it
/// succeeded, and what the terminal showed.
pub fn in_a_terminal(project: &Project, args: &str, env: &[(&str, &str)]) -> (bool, String) {
    let command = format!("{} {args}", locald_bin());
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(project.path())
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .output()
        .expect("run script(1)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// `locald ARGS` as the unprivileged `user` (`setpriv`, no groups), in
/// `home` (also its `HOME`) with `runtime_dir` as its `XDG_RUNTIME_DIR` and
/// nothing else of the environment but a plain `PATH`: exit code, stdout
/// and stderr.
pub fn locald_as_user(
    (uid, gid): (u32, u32),
    home: &Path,
    runtime_dir: &Path,
    args: &[&str],
) -> (Option<i32>, String, String) {
    let output = Command::new("setpriv")
        .args(["--reuid", &uid.to_string(), "--regid", &gid.to_string()])
        .args(["--clear-groups", "--"])
        .arg(locald_bin())
        .args(args)
        .current_dir(home)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", home)
        .env("XDG_RUNTIME_DIR", runtime_dir)
        .stdin(Stdio::null())
        .output()
        .expect("run setpriv");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
