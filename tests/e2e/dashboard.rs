//! The dashboard against a real supervisor: its address, the services and
//! the controls through its API, log history and the live stream, and the
//! refusals that keep other users and other sites out.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::{service_field, Project};

/// A dashboard address: `http://127.0.0.1:PORT/?token=TOKEN`.
struct Dashboard {
    port: u16,
    token: String,
}

impl Dashboard {
    fn of(project: &Project) -> Dashboard {
        let out = project.locald(["dashboard", "--no-open"]).success();
        let url = out.stdout.trim().to_string();
        let rest = url
            .strip_prefix("http://127.0.0.1:")
            .unwrap_or_else(|| panic!("not a dashboard address: {url}"));
        let (port, token) = rest.split_once("/?token=").expect("a token in the address");
        Dashboard {
            port: port.parse().unwrap(),
            token: token.to_string(),
        }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A request with these extra headers; `(status, headers, body)`.
    fn raw(&self, method: &str, target: &str, headers: &[(&str, String)]) -> (u16, String, String) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut head = format!("{method} {target} HTTP/1.1\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, head.to_string(), body.to_string())
    }

    /// An authorised request (bearer token, our Host).
    fn call(&self, method: &str, target: &str) -> (u16, String) {
        let (status, _, body) = self.raw(
            method,
            target,
            &[
                ("Host", self.host()),
                ("Authorization", format!("Bearer {}", self.token)),
            ],
        );
        (status, body)
    }

    fn services(&self) -> serde_json::Value {
        let (status, body) = self.call("GET", "/api/services");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }
}

fn service<'a>(services: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    services["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {services}"))
}

const TOML: &str = r#"
[project]
name = "board"

[services.web]
command = "python3 -m http.server $PORT --bind 127.0.0.1"

[services.ticker]
command = "echo 'started 973' ; while true; do read line < ticks.fifo && echo \"tick $line\"; done"
"#;

fn started() -> Project {
    started_with(TOML)
}

/// `toml`'s project up in the background, with a `ticks.fifo` for [`tick`].
pub fn started_with(toml: &str) -> Project {
    let project = Project::with_toml(toml);
    let fifo = project.path().join("ticks.fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let out = project
        .locald(["up", "-d", "--wait", "--timeout", "30s"])
        .success();
    assert!(out.stderr.contains("dashboard: http://127.0.0.1:"), "{out}");
    project
}

/// Writes a line to the project's `ticks.fifo`.
pub fn tick(project: &Project, text: &str) {
    let mut fifo = std::fs::OpenOptions::new()
        .write(true)
        .open(project.path().join("ticks.fifo"))
        .unwrap();
    writeln!(fifo, "{text}").unwrap();
}

#[test]
fn services_and_controls_through_the_api() {
    let project = started();
    let board = Dashboard::of(&project);
    let services = board.services();
    assert_eq!(services["project"], "board");
    let web = service(&services, "web");
    assert_eq!(web["state"], "healthy");
    assert_eq!(web["kind"], "host");
    let port = service_field(&project, "web", "port");
    assert_eq!(web["port"], port);
    assert_eq!(web["url"], format!("http://127.0.0.1:{port}/"));

    let before = service(&board.services(), "ticker")["pid"].clone();
    let (status, body) = board.call("POST", "/api/services/ticker/restart");
    assert_eq!((status, body.trim()), (200, r#"{"ok":true}"#));
    let after = service(&board.services(), "ticker")["pid"].clone();
    assert_ne!(before, after, "restarted: a new process");

    let (status, _) = board.call("POST", "/api/services/web/stop");
    assert_eq!(status, 200);
    assert_eq!(service_field(&project, "web", "state"), "stopped");
    let (status, _) = board.call("POST", "/api/services/web/start");
    assert_eq!(status, 200);
    project.wait_for("web healthy again", Duration::from_secs(20), |p| {
        service_field(p, "web", "state") == "healthy"
    });

    let (status, body) = board.call("POST", "/api/services/nope/restart");
    assert_eq!((status, body.trim()), (404, r#"unknown service "nope""#));
    let (status, _) = board.call("POST", "/api/services/web/explode");
    assert_eq!(status, 404);
    let (status, _) = board.call("GET", "/api/services/web/restart");
    assert_eq!(status, 404, "a control is POST only");
    let (status, _) = board.call("DELETE", "/api/services");
    assert_eq!(status, 405);

    let (status, _) = board.call("POST", "/api/all/stop");
    assert_eq!(status, 200);
    for name in ["web", "ticker"] {
        assert_eq!(service_field(&project, name, "state"), "stopped");
    }
    let (status, _) = board.call("POST", "/api/all/start");
    assert_eq!(status, 200);
    project.wait_for("all running again", Duration::from_secs(20), |p| {
        ["web", "ticker"]
            .iter()
            .all(|name| service_field(p, name, "state") == "healthy")
    });
}

#[test]
fn log_history_then_live_lines() {
    let project = started();
    let board = Dashboard::of(&project);
    tick(&project, "one 973001");
    project.wait_for("the first tick in the log", Duration::from_secs(10), |p| {
        p.locald(["logs", "ticker"])
            .output()
            .stdout
            .contains("tick one 973001")
    });
    let (status, body) = board.call("GET", "/api/logs?service=ticker&lines=50");
    assert_eq!(status, 200, "{body}");
    let lines: serde_json::Value = serde_json::from_str(&body).unwrap();
    let texts: Vec<&str> = lines
        .as_array()
        .unwrap()
        .iter()
        .filter(|line| line["stream"] == "stdout")
        .map(|line| line["line"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["started 973", "tick one 973001"]);
    assert!(lines
        .as_array()
        .unwrap()
        .iter()
        .all(|line| line["service"] == "ticker"));
    let (status, _) = board.call("GET", "/api/logs?service=nope");
    assert_eq!(status, 404);
    let (status, _) = board.call("GET", "/api/logs?lines=many");
    assert_eq!(status, 400);

    // The live stream: the services at once, then each new line.
    let mut stream = TcpStream::connect(("127.0.0.1", board.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    write!(
        stream,
        "GET /api/events HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\r\n",
        board.host(),
        board.token
    )
    .unwrap();
    let mut seen = String::new();
    let mut read_until = |needle: &str, seen: &mut String| {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buffer = [0u8; 8192];
        while !seen.contains(needle) {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in the stream: {seen}"
            );
            if let Ok(count) = stream.read(&mut buffer) {
                assert!(count > 0, "the stream ended: {seen}");
                seen.push_str(&String::from_utf8_lossy(&buffer[..count]));
            }
        }
    };
    read_until("event: services", &mut seen);
    assert!(seen.starts_with("HTTP/1.1 200 OK\r\n"), "{seen}");
    assert!(seen.contains("Content-Type: text/event-stream"), "{seen}");
    tick(&project, "two 973002");
    read_until("tick two 973002", &mut seen);
    let event = seen[seen.find("event: logs").unwrap()..]
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    let batches: serde_json::Value =
        serde_json::from_str(event.strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(batches[0]["service"], "ticker");
    assert_eq!(batches[0]["stream"], "stdout");
    // A restart shows as a services event and as locald's own events.
    project.locald(["restart", "ticker"]).success();
    read_until("\"stream\":\"locald\"", &mut seen);
}

#[test]
fn strangers_other_hosts_and_other_sites_are_refused() {
    let project = started();
    let board = Dashboard::of(&project);
    let host = ("Host", board.host());
    // No token, or a wrong one.
    let (status, _, body) = board.raw("GET", "/api/services", std::slice::from_ref(&host));
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("locald dashboard"), "{body}");
    let wrong = ("Authorization", "Bearer 00".to_string());
    assert_eq!(
        board.raw("GET", "/api/services", &[host.clone(), wrong]).0,
        401
    );
    // The page is public (static, nothing secret in it), and sets no
    // cookie: a cookie of 127.0.0.1 would go to every local port.
    let (status, head, page) = board.raw(
        "GET",
        &format!("/?token={}", board.token),
        std::slice::from_ref(&host),
    );
    assert_eq!(status, 200);
    assert!(!head.contains("Set-Cookie"), "{head}");
    assert!(page.contains("<script src=\"/assets/app.js\""), "{page}");
    let (status, _, _) = board.raw("GET", "/assets/app.js", std::slice::from_ref(&host));
    assert_eq!(status, 200);
    let cookie = (
        "Cookie",
        format!("locald_dashboard_{}={}", board.port, board.token),
    );
    assert_eq!(
        board.raw("GET", "/api/services", &[host.clone(), cookie]).0,
        401,
        "a cookie is not the token"
    );
    let bearer = ("Authorization", format!("Bearer {}", board.token));
    // The event stream takes the token in its address (EventSource sends
    // no headers); nothing else does.
    let (status, _, _) = board.raw(
        "GET",
        &format!("/api/services?token={}", board.token),
        std::slice::from_ref(&host),
    );
    assert_eq!(status, 401);

    // DNS rebinding: another name for 127.0.0.1.
    let rebound = ("Host", format!("evil.example:{}", board.port));
    assert_eq!(
        board
            .raw("GET", "/api/services", &[rebound, bearer.clone()])
            .0,
        421
    );
    // Another site's page in the person's browser.
    let pid = service_field(&project, "web", "pid");
    let other = ("Origin", "http://evil.example".to_string());
    let (status, _, _) = board.raw(
        "POST",
        "/api/services/web/restart",
        &[host.clone(), bearer.clone(), other],
    );
    assert_eq!(status, 403);
    let (status, _, _) = board.raw(
        "POST",
        "/api/services/web/restart",
        &[host.clone(), ("Origin", board.origin())],
    );
    assert_eq!(status, 401, "a form post has no token");
    assert_eq!(
        service_field(&project, "web", "pid"),
        pid,
        "nothing restarted"
    );
    // The page itself.
    let ours = ("Origin", board.origin());
    let (status, _, _) = board.raw("POST", "/api/services/web/restart", &[host, bearer, ours]);
    assert_eq!(status, 200);
    assert_ne!(service_field(&project, "web", "pid"), pid);

    // A request with a body, or a head that never ends, is refused.
    let (status, _, _) = board.raw(
        "POST",
        "/api/all/stop",
        &[("Host", board.host()), ("Content-Length", "3".into())],
    );
    assert_eq!(status, 400);
}

#[test]
fn the_dashboard_can_be_turned_off_and_keeps_its_port() {
    let project = started();
    let first = Dashboard::of(&project).port;
    project.locald(["down"]).success();
    project
        .locald(["up", "-d", "--wait", "--timeout", "30s"])
        .success();
    assert_eq!(
        Dashboard::of(&project).port,
        first,
        "the same port across ups"
    );
    project.locald(["down"]).success();
    let out = project
        .locald(["up", "-d", "--no-dashboard", "--wait", "--timeout", "30s"])
        .success();
    assert!(!out.stderr.contains("dashboard"), "{out}");
    project
        .locald(["dashboard", "--no-open"])
        .code(1)
        .stderr_has("serves no dashboard");
    project.locald(["down"]).success();
    project
        .locald(["dashboard", "--no-open"])
        .code(1)
        .stderr_has("no supervisor is running for board: start one with `locald up -d`");
}

#[test]
fn the_config_fixes_the_port_or_turns_the_dashboard_off() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let project = started_with(&format!("{TOML}\n[dashboard]\nport = {port}\n"));
    assert_eq!(Dashboard::of(&project).port, port);
    project.locald(["down"]).success();
    project.write(
        "locald.toml",
        &format!("{TOML}\n[dashboard]\nenabled = false\n"),
    );
    let out = project
        .locald(["up", "-d", "--wait", "--timeout", "30s"])
        .success();
    assert!(!out.stderr.contains("dashboard"), "{out}");
    project
        .locald(["dashboard", "--no-open"])
        .code(1)
        .stderr_has("serves no dashboard");
}

#[test]
fn the_browser_is_given_a_private_page_never_the_token() {
    use std::os::unix::fs::PermissionsExt;
    let project = started();
    let board = Dashboard::of(&project);
    // A browser that notes its command line, which every user of the
    // machine can read in /proc.
    let opened = project.path().join("opened");
    project.write(
        "browser",
        &format!("#!/bin/sh\nprintf '%s\\n' \"$@\" > {}\n", opened.display()),
    );
    let browser = project.path().join("browser");
    std::fs::set_permissions(&browser, std::fs::Permissions::from_mode(0o755)).unwrap();
    project
        .locald(["dashboard"])
        .env("BROWSER", browser.to_str().unwrap())
        .success();
    project.wait_for("the browser", Duration::from_secs(10), |project| {
        project.read("opened").ends_with('\n')
    });
    let argument = project.read("opened");
    assert!(!argument.contains(&board.token), "{argument}");
    let page = project.path().join(".locald/dashboard.html");
    assert_eq!(
        argument.trim(),
        format!("file://{}", page.display()),
        "the browser opens the page"
    );
    let mode = std::fs::metadata(&page).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains(&format!(
            "url=http://127.0.0.1:{}/?token={}\"",
            board.port, board.token
        )),
        "{html}"
    );
}

/// `python3 -c SCRIPT ARGS...` as another local user.
fn as_other_user(script: &str, args: &[String]) -> std::process::Command {
    let (uid, gid) = crate::harness::account("lds5-board");
    let mut command = std::process::Command::new("setpriv");
    command
        .args(["--reuid", &uid.to_string(), "--regid", &gid.to_string()])
        .args(["--clear-groups", "--", "python3", "-c", script])
        .args(args)
        .current_dir("/")
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    command
}

#[test]
fn another_local_user_is_refused_even_with_the_token_and_cannot_hold_it() {
    use std::io::BufRead;
    let project = started();
    let board = Dashboard::of(&project);
    let port = board.port.to_string();

    // Connections that never send their request (more than the dashboard
    // serves at once), held while the person uses the dashboard.
    let mut holder = as_other_user(
        "import socket, sys, time\n\
         held = [socket.create_connection(('127.0.0.1', int(sys.argv[1]))) for _ in range(40)]\n\
         print('held', flush=True)\n\
         time.sleep(30)\n",
        std::slice::from_ref(&port),
    )
    .stdout(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "held\n");
    let start = Instant::now();
    let (status, _) = board.call("GET", "/api/services");
    let waited = start.elapsed();
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(status, 200);
    assert!(waited < Duration::from_secs(3), "answered after {waited:?}");

    // The right token, from another user: refused before it is read.
    let output = as_other_user(
        "import socket, sys\n\
         s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))\n\
         s.sendall(('GET /api/services HTTP/1.1\\r\\nHost: 127.0.0.1:%s\\r\\nAuthorization: Bearer %s\\r\\n\\r\\n' % (sys.argv[1], sys.argv[2])).encode())\n\
         print(s.makefile('rb').readline().decode().strip())\n",
        &[port, board.token.clone()],
    )
    .output()
    .unwrap();
    let answer = String::from_utf8_lossy(&output.stdout);
    assert_eq!(answer.trim(), "HTTP/1.1 403 Forbidden", "{output:?}");
}
