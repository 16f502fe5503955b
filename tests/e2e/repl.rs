//! `locald repl` through a real pseudo-terminal (history across restarts,
//! multi-line entries, completion, Ctrl-C, the supervisor verbs, `help`),
//! and with piped input.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{locald_bin, one_pid, Project};

/// How long a screen may take to show what a test waits for.
const PATIENCE: Duration = Duration::from_secs(20);

/// A `locald repl` on a pseudo-terminal, as a person's shell would start it.
struct Terminal {
    master: File,
    /// Everything the REPL wrote, as it came.
    output: Arc<Mutex<Vec<u8>>>,
    child: Child,
    /// How much of the plain text earlier `expect`s have consumed.
    seen: usize,
}

impl Terminal {
    fn start(project: &Project) -> Terminal {
        Terminal::start_in(project.path(), &[])
    }

    fn start_in(dir: &std::path::Path, env: &[(&str, &str)]) -> Terminal {
        Terminal::spawn(dir, env, None)
    }

    /// With stdout going to `stdout` instead of the terminal.
    fn spawn(dir: &std::path::Path, env: &[(&str, &str)], stdout: Option<File>) -> Terminal {
        let size = nix::pty::Winsize {
            ws_row: 40,
            ws_col: 120,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(&size, None).expect("openpty");
        let slave: OwnedFd = pty.slave;
        let mut command = Command::new(locald_bin());
        command
            .arg("repl")
            .current_dir(dir)
            .env("TERM", "xterm")
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .stdin(Stdio::from(slave.try_clone().expect("dup")))
            .stdout(match stdout {
                Some(file) => Stdio::from(file),
                None => Stdio::from(slave.try_clone().expect("dup")),
            })
            .stderr(Stdio::from(slave));
        // SAFETY: only async-signal-safe calls between fork and exec: make
        // the terminal the child's controlling terminal, so Ctrl-C there is
        // SIGINT to it, as in a shell.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("spawn locald repl");
        let master = File::from(pty.master);
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut reader = master.try_clone().expect("dup master");
        let mut answer = master.try_clone().expect("dup master");
        let sink = output.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                let mut all = sink.lock().unwrap();
                let before = all.len();
                all.extend_from_slice(&buffer[..n]);
                // The line editor asks where the cursor is; a terminal
                // answers, and so must we.
                let from = before.saturating_sub(3);
                let asks = all[from..].windows(4).filter(|w| w == b"\x1b[6n").count();
                for _ in 0..asks {
                    let _ = answer.write_all(b"\x1b[1;1R");
                }
            }
        });
        Terminal {
            master,
            output,
            child,
            seen: 0,
        }
    }

    /// The output as text, escape sequences and carriage returns removed.
    fn text(&self) -> String {
        let raw = String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned();
        let escapes = regex::Regex::new(
            r"\x1b(\[[0-9;?<=>]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[0-9=>@-Z\\-_])",
        )
        .expect("regex");
        escapes.replace_all(&raw, "").replace('\r', "")
    }

    fn send(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).expect("type");
        self.master.flush().expect("flush");
    }

    /// Types `line` and Enter.
    fn enter(&mut self, line: &str) {
        self.send(line);
        // Apart, as a person types: Enter in the same read as the text could
        // arrive before the editor has taken the text in as typed.
        std::thread::sleep(Duration::from_millis(50));
        self.send("\r");
    }

    /// Waits until `needle` shows after what earlier calls consumed.
    fn expect(&mut self, needle: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let text = self.text();
            if let Some(at) = text.get(self.seen..).and_then(|t| t.find(needle)) {
                self.seen += at + needle.len();
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {needle:?} after:\n{}\n---- then:\n{}\n---- raw: {:?}",
                    &text[..self.seen.min(text.len())],
                    &text[self.seen.min(text.len())..],
                    String::from_utf8_lossy(&self.output.lock().unwrap())
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Ctrl-D, then the exit status.
    fn quit(mut self) -> ExitStatus {
        self.send("\x04");
        self.wait()
    }

    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the REPL did not exit; it shows:\n{}", self.text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn shop() -> Project {
    Project::with_toml(
        r#"
[project]
name = "shop"

[services.web]
command = "sleep 965501"
"#,
    )
}

#[test]
fn history_survives_a_restart_and_leaves_out_lines_starting_with_a_space() {
    let project = shop();
    let mut repl = Terminal::start(&project);
    repl.expect("shop > ");
    repl.enter("print(\"kept-\" + 965502)");
    repl.expect("kept-965502");
    repl.enter("print(\"other-\" + 2)");
    repl.expect("other-2");
    repl.enter(" print(\"secret-\" + 1)");
    repl.expect("secret-1");
    assert!(repl.quit().success());

    let history = project.path().join(".locald/history");
    let text = std::fs::read_to_string(&history).expect("history file");
    assert!(text.contains("print(\"kept-\" + 965502)"), "{text}");
    assert!(!text.contains("secret"), "{text}");
    let mode = std::fs::metadata(&history).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // Up recalls the last kept entry of the earlier session (not the one
    // that started with a space)...
    let mut repl = Terminal::start(&project);
    repl.expect("shop > ");
    repl.send("\x1b[A");
    std::thread::sleep(Duration::from_millis(100));
    repl.send("\r");
    repl.expect("other-2");
    // ...and Ctrl-R finds an older one.
    std::thread::sleep(Duration::from_millis(100));
    repl.send("\x12");
    repl.expect("(search: ) ");
    repl.send("kept");
    repl.expect("(search: kept) print(\"kept-\" + 965502)");
    repl.send("\r");
    std::thread::sleep(Duration::from_millis(100));
    repl.send("\r");
    repl.expect("kept-965502");
    assert!(repl.quit().success());
}

#[test]
fn history_outside_a_project_is_the_users_and_private() {
    let home = tempfile::tempdir().expect("temp dir");
    let state = home.path().join("state");
    let mut repl = Terminal::start_in(home.path(), &[("XDG_STATE_HOME", state.to_str().unwrap())]);
    repl.expect("No project here");
    repl.expect("locald > ");
    repl.enter("print(\"user-\" + 965503)");
    repl.expect("user-965503");
    assert!(repl.quit().success());
    let dir = state.join("locald");
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let file = dir.join("history");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(std::fs::read_to_string(file).unwrap().contains("965503"));
}

#[test]
fn entries_span_lines_as_the_parser_decides_and_share_definitions() {
    let project = shop();
    let mut repl = Terminal::start(&project);
    repl.expect("Project `shop`");
    repl.expect("1 service.");
    repl.expect("No supervisor is running");
    repl.expect("shop > ");
    repl.enter("fn twice(x) {");
    repl.enter("  x * 2");
    repl.enter("}");
    repl.enter("let base = 20 + 1;");
    // The function and the variable of earlier entries are still there.
    repl.enter("twice(base)");
    repl.expect("\n42\n");
    // A brace inside a string does not open a block.
    repl.enter("print(\"{\" + \"!\")");
    repl.expect("{!");
    // Values print as scripts see them, not as Rust type paths.
    repl.enter("project");
    repl.expect("Project(shop)");
    assert!(repl.quit().success());
}

#[test]
fn tab_completes_a_primitive() {
    let project = shop();
    let mut repl = Terminal::start(&project);
    repl.expect("shop > ");
    repl.send("load_pro");
    repl.expect("load_pro");
    repl.send("\t");
    // The one match is put in the line.
    repl.expect("load_project");
    repl.enter("().name + \"-\" + 965504");
    repl.expect("shop-965504");
    assert!(repl.quit().success());
}

#[test]
fn ctrl_c_stops_a_running_entry_and_clears_the_line_without_leaking() {
    let project = shop();
    let mut repl = Terminal::start(&project);
    repl.expect("shop > ");
    repl.enter("print(\"spin\" + \"ning\"); loop { }");
    repl.expect("spinning");
    std::thread::sleep(Duration::from_millis(200));
    repl.send("\x03");
    repl.expect("interrupted");
    // At the prompt, Ctrl-C drops what was typed; it does not fail the
    // next entry.
    repl.expect("shop > ");
    std::thread::sleep(Duration::from_millis(200));
    repl.send("this is not rhai");
    repl.expect("this is not rhai");
    repl.send("\x03");
    // The editor drops what follows a Ctrl-C in the same read: wait for the
    // fresh prompt.
    repl.expect("shop > ");
    std::thread::sleep(Duration::from_millis(100));
    repl.enter("print(\"after-\" + 965505)");
    repl.expect("after-965505");
    // Only the interrupted entry failed: the cleared line never ran.
    assert_eq!(repl.text().matches("error:").count(), 1, "{}", repl.text());
    assert!(repl.quit().success());
}

#[test]
fn sigterm_at_the_prompt_ends_the_session() {
    let project = shop();
    let mut repl = Terminal::start(&project);
    repl.expect("shop > ");
    let pid = nix::unistd::Pid::from_raw(repl.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("kill");
    assert_eq!(repl.wait().code(), Some(143));
}

#[test]
fn attached_to_the_supervisor_restart_a_service_and_follow_its_logs() {
    let project = Project::with_toml(
        r#"
[project]
name = "shop"

[services.web]
command = "echo web-up; sleep 965506"
"#,
    );
    project.locald(["up", "-d", "--wait"]).success();
    let before = one_pid("965506");

    let mut repl = Terminal::start(&project);
    repl.expect("Supervisor running: 1/1 healthy");
    repl.expect("shop 1/1 healthy > ");
    repl.enter("restart(\"web\")");
    repl.expect("shop ");
    project.wait_for("a new web", PATIENCE, |_| {
        crate::harness::pids_with_arg("965506")
            .first()
            .is_some_and(|pid| *pid != before)
    });
    repl.enter("status().len()");
    repl.expect("\n1\n");

    // A blocking primitive stops on Ctrl-C too.
    repl.enter("print_logs(\"web\", #{ follow: true })");
    repl.expect("web-up");
    // Healthy again once it has settled, so the next prompt says 1/1.
    project.wait_for("web healthy again", PATIENCE, |p| {
        crate::harness::service_field(p, "web", "state") == "healthy"
    });
    std::thread::sleep(Duration::from_millis(300));
    repl.send("\x03");
    repl.expect("shop 1/1 healthy > ");
    repl.enter("down()");
    repl.expect("true");
    repl.expect("shop > ");
    assert!(repl.quit().success());
    assert!(crate::harness::pids_with_arg("965506").is_empty());
}

#[test]
fn help_shows_a_primitives_signature_and_documentation() {
    let project = shop();
    let mut repl = Terminal::start(&project);
    repl.expect("shop > ");
    repl.enter("help");
    repl.expect(":functions");
    repl.enter(":help free_port");
    repl.expect("free_port() -> int");
    repl.expect("A TCP port that is free on 127.0.0.1");
    repl.enter("help(\"restart\")");
    repl.expect("restart(name: String)");
    repl.expect("restart(project: Project, service: String)");
    repl.enter("exit(4)");
    assert_eq!(repl.wait().code(), Some(4));
}

#[test]
fn the_banner_says_when_the_config_has_errors() {
    let project =
        Project::with_toml("[project]\nname = \"shop\"\n\n[services.web]\ncomand = \"x\"\n");
    let mut repl = Terminal::start(&project);
    repl.expect("without its services: its config has errors");
    repl.expect("shop > ");
    repl.enter("project.name");
    repl.expect("\nshop\n");
    assert!(repl.quit().success());
}

#[test]
fn with_stdout_redirected_the_terminal_is_read_as_lines() {
    let project = shop();
    let out = project.path().join("out.txt");
    let file = File::create(&out).expect("create out.txt");
    let mut repl = Terminal::spawn(project.path(), &[], Some(file));
    // No editor: the terminal's own line discipline echoes, and Ctrl-D at
    // the start of a line is the end of input.
    repl.send("print(40 + 2)\n");
    repl.expect("print(40 + 2)");
    repl.send("\x04");
    assert!(repl.wait().success());
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "42\n");
}

#[test]
fn piped_input_evaluates_without_prompts() {
    let project = shop();
    project
        .locald(["repl"])
        .stdin("print(1 + 1)\nfn f(x) {\n  x + 1\n}\nf(2)\nprint(\"{\")\n")
        .success()
        .stdout_is("2\n3\n{\n")
        .stderr_is("");
}

#[test]
fn piped_input_stops_at_the_first_error() {
    let project = shop();
    let out = project
        .locald(["repl"])
        .stdin("print(\"one\")\nlod_project()\nprint(\"two\")\n")
        .code(1);
    out.stdout_is("one\n")
        .stderr_has("did you mean `load_project`?");
    project
        .locald(["repl"])
        .stdin("exit(3)\nprint(\"never\")\n")
        .code(3)
        .stdout_is("");
}
