//! The dashboard's page in a real browser (headless Chromium through
//! WebDriver) against a real supervisor: the services with their state and
//! port, a restart button that restarts, a printed line shown within a
//! second, the text filter, one service's logs, following the tail and
//! stopping when scrolled up; and the screenshot in docs/dashboard.png.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::dashboard::{started_with, tick};
use crate::harness::{service_field, Project};
use crate::webdriver::Browser;

const TOML: &str = r#"
[project]
name = "shop"

[services.web]
command = "python3 -m http.server $PORT --bind 127.0.0.1"

[services.ticker]
command = "echo 'ticker ready 974101' ; while true; do read line < ticks.fifo && echo \"tick $line\"; done"

[services.chatter]
command = "for i in $(seq 1 300); do echo \"chatter line $i\"; done; echo 'a warning 974102' >&2; exec sleep 974103"
"#;

/// The page of `project`'s dashboard, opened with the printed address, live.
fn open(project: &Project, width: u32, height: u32) -> Browser {
    let url = project
        .locald(["dashboard", "--no-open"])
        .success()
        .stdout
        .trim()
        .to_string();
    let browser = Browser::start(width, height);
    browser.goto(&url);
    let port = url
        .strip_prefix("http://127.0.0.1:")
        .and_then(|rest| rest.split('/').next())
        .unwrap();
    assert_eq!(
        browser.url(),
        format!("http://127.0.0.1:{port}/"),
        "the token leaves the address bar"
    );
    browser.wait_for(
        "the page to be live",
        Duration::from_secs(10),
        "return document.getElementById('connection').textContent === 'live'",
    );
    browser
}

/// The log lines shown (not hidden): `[service, text]`.
const SHOWN: &str = "return [...document.querySelectorAll('#log .l')]
    .filter((n) => n.offsetParent !== null)
    .map((n) => [n.dataset.service, n.querySelector('.x').textContent]);";

fn shown(browser: &Browser) -> Vec<(String, String)> {
    let value = browser.script(SHOWN, json!([]));
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            (
                pair[0].as_str().unwrap_or_default().to_string(),
                pair[1].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn wait_for_line(browser: &Browser, text: &str) {
    browser.wait_for(
        &format!("{text:?} on the page"),
        Duration::from_secs(10),
        &format!(
            "return [...document.querySelectorAll('#log .l .x')].some((n) => n.textContent === {})",
            json!(text)
        ),
    );
}

/// The value of a JavaScript expression in the page.
fn value(browser: &Browser, expression: &str) -> Value {
    browser.script(&format!("return {expression}"), json!([]))
}

fn assert_no_notice(browser: &Browser) {
    let notice = browser.script(
        "const n = document.getElementById('notice'); return n.hidden ? '' : n.textContent",
        json!([]),
    );
    assert_eq!(notice, "", "the page shows an error");
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

#[test]
fn the_page_lists_the_services_and_a_restart_button_restarts_one() {
    let project = started_with(TOML);
    let browser = open(&project, 1280, 800);
    let rows = browser.wait_for(
        "three services on the page",
        Duration::from_secs(10),
        "const rows = [...document.querySelectorAll('#services tr')].map((r) => ({
             name: r.querySelector('.name').textContent,
             state: r.querySelector('.state').textContent,
             kind: r.querySelector('.kind').textContent,
             port: r.querySelector('.port').textContent,
             link: r.querySelector('.port a') ? r.querySelector('.port a').href : null,
         }));
         return rows.length === 3 && rows.every((r) => r.state === 'healthy') ? rows : null;",
    );
    let names: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web", "ticker", "chatter"], "{rows}");
    let web = &rows[0];
    let port = service_field(&project, "web", "port");
    assert_eq!(web["port"], port.to_string(), "{rows}");
    assert_eq!(web["link"], format!("http://127.0.0.1:{port}/"));
    assert_eq!(web["kind"], "host");
    let ticker = service_field(&project, "ticker", "port");
    assert_eq!(rows[1]["port"], ticker.to_string(), "{rows}");
    assert_eq!(value(&browser, "document.title"), "shop · locald");

    let before = service_field(&project, "ticker", "pid");
    assert!(before.is_number());
    browser.click("tr[data-service=\"ticker\"] button[data-action=\"restart\"]");
    project.wait_for("ticker restarted", Duration::from_secs(20), |p| {
        let pid = service_field(p, "ticker", "pid");
        pid.is_number() && pid != before && service_field(p, "ticker", "state") == "healthy"
    });
    // The page shows the restart too, as locald's own event.
    browser.wait_for(
        "the restart in the page's logs",
        Duration::from_secs(10),
        "return [...document.querySelectorAll('#log .l.locald')].length > 0",
    );
    assert_no_notice(&browser);
}

#[test]
fn a_printed_line_shows_within_a_second_and_the_filter_and_selection_narrow_the_logs() {
    let project = started_with(TOML);
    let browser = open(&project, 1280, 800);
    wait_for_line(&browser, "a warning 974102");
    // Each service's name has the hue `locald up` gives it in a terminal: by
    // its place in the project (web, ticker, chatter: cyan, yellow, green),
    // whatever order its lines come in.
    let colours = browser.script(
        "const colour = {};
         for (const n of document.querySelectorAll('#log .l')) colour[n.dataset.service] = n.querySelector('.s').style.color;
         return colour;",
        json!([]),
    );
    assert_eq!(colours["ticker"], "rgb(227, 179, 65)", "{colours}");
    assert_eq!(colours["chatter"], "rgb(86, 211, 100)", "{colours}");
    // The page notes when each marked line reaches its DOM.
    browser.script(
        "window.seen = {};
         new MutationObserver((records) => {
           for (const record of records) for (const node of record.addedNodes) {
             const match = /latency-974110-(\\d+)/.exec(node.textContent);
             if (match && !(match[1] in window.seen)) window.seen[match[1]] = Date.now();
           }
         }).observe(document.getElementById('log'), { childList: true });",
        json!([]),
    );
    let mut latencies = Vec::new();
    for i in 0..5 {
        let mut fifo = std::fs::OpenOptions::new()
            .write(true)
            .open(project.path().join("ticks.fifo"))
            .unwrap();
        let sent = now_ms();
        writeln!(fifo, "latency-974110-{i}").unwrap();
        drop(fifo);
        let shown_at = browser.wait_for(
            "the marked line on the page",
            Duration::from_secs(10),
            &format!("return window.seen[{i}]"),
        );
        latencies.push(shown_at.as_f64().unwrap() - sent);
    }
    eprintln!("printed → shown on the page: {latencies:?} ms");
    assert!(
        latencies.iter().all(|ms| *ms < 1000.0),
        "a line took a second or more to show: {latencies:?} ms"
    );

    // The text filter hides the lines that do not match (case aside).
    browser.type_into("#text-filter", "LATENCY-974110-3");
    let lines = shown(&browser);
    assert_eq!(
        lines,
        [("ticker".to_string(), "tick latency-974110-3".to_string())]
    );
    browser.type_into("#text-filter", "\u{E009}a\u{E000}\u{E003}");
    let all = shown(&browser);
    assert!(all.len() > 300, "all lines again: {}", all.len());

    // Clicking a service's name shows only its lines; again shows all.
    browser.click("tr[data-service=\"ticker\"] td.name");
    let lines = shown(&browser);
    assert!(
        lines.iter().all(|(service, _)| service == "ticker"),
        "{lines:?}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|(_, text)| text.starts_with("tick "))
            .count(),
        5,
        "{lines:?}"
    );
    assert_eq!(
        value(&browser, "document.getElementById('service-filter').value"),
        "ticker"
    );
    // New lines of other services stay hidden; the service's own show.
    tick(&project, "selected 974111");
    wait_for_line(&browser, "tick selected 974111");
    assert!(shown(&browser)
        .iter()
        .all(|(service, _)| service == "ticker"));
    // The same through the list, and back to all.
    browser.choose("#service-filter", "chatter");
    let lines = shown(&browser);
    let printed = lines
        .iter()
        .filter(|(_, text)| text.starts_with("chatter line") || text == "a warning 974102");
    assert_eq!(printed.count(), 301, "chatter's 300 lines and its warning");
    assert!(lines.iter().all(|(service, _)| service == "chatter"));
    browser.choose("#service-filter", "");
    assert!(shown(&browser).len() > 300);
    // stderr is told apart.
    let stderr = value(
        &browser,
        "[...document.querySelectorAll('#log .l.stderr .x')].map((n) => n.textContent)",
    );
    assert!(
        stderr
            .as_array()
            .unwrap()
            .contains(&Value::from("a warning 974102")),
        "{stderr}"
    );
}

#[test]
fn no_line_is_lost_or_shown_twice_between_the_history_and_the_live_stream() {
    // A service that never pauses: whatever the page does between reading
    // the history and following the live stream, lines are printed then.
    let project = started_with(
        "[project]\nname = \"seamless\"\n\n[services.counter]\ncommand = \"python3 -u -c 'import time\\nfor i in range(974131000, 974139000): print(\\\"count\\\", i); time.sleep(0.001)'\"\n",
    );
    std::thread::sleep(Duration::from_millis(500));
    let browser = open(&project, 1280, 800);
    // Live for a while past the boundary, then stop the service: nothing
    // more comes and the page can be read as a whole.
    std::thread::sleep(Duration::from_millis(700));
    project.locald(["stop", "counter"]).success();
    std::thread::sleep(Duration::from_millis(500));
    let numbers: Vec<u64> = shown(&browser)
        .iter()
        .filter_map(|(_, text)| text.strip_prefix("count ")?.parse().ok())
        .collect();
    assert!(
        numbers.len() > 500,
        "too few lines shown: {}",
        numbers.len()
    );
    let breaks: Vec<(u64, u64)> = numbers
        .windows(2)
        .filter(|pair| pair[1] != pair[0] + 1)
        .map(|pair| (pair[0], pair[1]))
        .collect();
    assert!(
        breaks.is_empty(),
        "the shown count jumps or repeats at {breaks:?} (of {} lines from {} to {})",
        numbers.len(),
        numbers[0],
        numbers[numbers.len() - 1]
    );
}

#[test]
fn scrolling_up_stops_following_and_the_button_follows_again() {
    let project = started_with(TOML);
    let browser = open(&project, 1000, 600);
    wait_for_line(&browser, "a warning 974102");
    let at_bottom = "const log = document.getElementById('log');
        return log.scrollHeight - log.scrollTop - log.clientHeight < 2;";
    assert_eq!(
        browser.script(at_bottom, json!([])),
        true,
        "follows the tail: {}",
        browser.script("const log = document.getElementById('log'); return [log.scrollHeight, log.scrollTop, log.clientHeight, document.getElementById('follow').textContent]", json!([]))
    );
    // A person scrolls up with the mouse wheel.
    let log = browser.find("#log");
    browser.scroll_wheel(&log, -3000);
    browser.wait_for(
        "paused",
        Duration::from_secs(5),
        "return document.getElementById('follow').textContent.startsWith('paused')",
    );
    let top = value(&browser, "document.getElementById('log').scrollTop");
    tick(&project, "while paused 974112");
    wait_for_line(&browser, "tick while paused 974112");
    assert_eq!(
        value(&browser, "document.getElementById('log').scrollTop"),
        top,
        "the view stays where the person scrolled"
    );
    assert_eq!(browser.script(at_bottom, json!([])), false);
    browser.click("#jump");
    assert_eq!(browser.script(at_bottom, json!([])), true);
    assert_eq!(
        value(&browser, "document.getElementById('follow').textContent"),
        "following"
    );
    tick(&project, "following again 974113");
    wait_for_line(&browser, "tick following again 974113");
    assert_eq!(browser.script(at_bottom, json!([])), true);
}

/// A local server that prints the headers of every request it gets.
const SPY: &str = r#"
import http.server, os
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        print("request 974130", self.path, dict(self.headers), flush=True)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"hello")
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"#;

#[test]
fn the_token_goes_to_no_other_local_server_and_a_reload_keeps_it() {
    let project = Project::with_toml(
        "[project]\nname = \"spied\"\n\n[services.spy]\ncommand = \"python3 spy.py\"\n",
    )
    .file("spy.py", SPY);
    project
        .locald(["up", "-d", "--wait", "--timeout", "30s"])
        .success();
    let url = project
        .locald(["dashboard", "--no-open"])
        .success()
        .stdout
        .trim()
        .to_string();
    let token = url.split("token=").nth(1).unwrap().to_string();
    let browser = open(&project, 1280, 800);
    // The person follows the service's link from the dashboard: the same
    // site (127.0.0.1), another port, a server that is not locald's.
    let link = browser.wait_for(
        "the spy's link",
        Duration::from_secs(10),
        "const link = document.querySelector('tr[data-service=\"spy\"] .port a');
         return link && link.href;",
    );
    let link = link.as_str().unwrap().to_string();
    browser.goto(&format!("{link}from-the-dashboard"));
    project.wait_for("the spy's request", Duration::from_secs(10), |p| {
        p.locald(["logs", "spy"])
            .output()
            .stdout
            .contains("/from-the-dashboard")
    });
    let seen = project.locald(["logs", "spy"]).success().stdout;
    assert!(
        !seen.contains(&token),
        "the token reached another server: {seen}"
    );
    // Back on the dashboard without the token in the address: the page
    // kept it (for its own origin only).
    browser.goto(&link_to_dashboard(&url));
    browser.wait_for(
        "the page live again",
        Duration::from_secs(10),
        "return document.getElementById('connection').textContent === 'live'
            && document.querySelectorAll('#services tr').length === 1",
    );
    assert_no_notice(&browser);
}

/// `http://127.0.0.1:PORT/?token=T` → `http://127.0.0.1:PORT/`.
fn link_to_dashboard(url: &str) -> String {
    url.split('?').next().unwrap().to_string()
}

/// A project as a person's: a web front, an API, a worker and a
/// scheduler, with coloured logs.
const SHOP: &str = r#"
[project]
name = "shop"

[services.web]
command = "python3 -m http.server $PORT --bind 127.0.0.1"

[services.api]
command = "python3 api.py"
depends_on = ["web"]

[services.worker]
command = "sh worker.sh 974121"

[services.scheduler]
command = "sh scheduler.sh 974122"
"#;

const API: &str = r#"
import http.server, os, sys
G, Y, C, D, R = "\033[32m", "\033[33m", "\033[36m", "\033[2m", "\033[0m"
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = 404 if "missing" in self.path else 200
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b"{}")
    def log_message(self, fmt, *args):
        code = int(args[1]) if len(args) > 1 else 0
        colour = G if code < 400 else Y
        print(f"{C}GET{R} {self.path} {colour}{code}{R} {D}1.{code % 7}ms{R}", flush=True)
print(f"{G}INFO{R}  connected to postgres://127.0.0.1:5432/shop", flush=True)
print(f"{G}INFO{R}  listening on http://127.0.0.1:{os.environ['PORT']}", flush=True)
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"#;

const SCHEDULER: &str = r#"
printf '\033[1m3 jobs\033[0m loaded from schedule.toml\n'
printf 'next: \033[36mnightly-report\033[0m at 02:00, \033[36mcleanup-carts\033[0m in 14m\n'
exec sleep "$1"
"#;

const WORKER: &str = r#"
i=1
printf '\033[32mready\033[0m: waiting for jobs (queue "default")\n'
while [ $i -le 6 ]; do
  printf '\033[36mjob %s\033[0m send-receipt order=%s \033[2m(%sms)\033[0m\n' "$i" "$((1040 + i))" "$((20 + i * 7))"
  if [ $i -eq 4 ]; then
    printf '\033[33mWARN\033[0m  retrying smtp: connection reset (attempt 2/5)\n' >&2
  fi
  i=$((i + 1))
done
exec sleep "$1"
"#;

#[test]
fn a_screenshot_of_a_project_for_the_manual() {
    let project = Project::with_toml(SHOP)
        .file("api.py", API)
        .file("worker.sh", WORKER)
        .file("scheduler.sh", SCHEDULER);
    project
        .locald(["up", "-d", "--wait", "--timeout", "30s"])
        .success();
    let api = service_field(&project, "api", "port").as_u64().unwrap();
    let web = service_field(&project, "web", "port").as_u64().unwrap();
    for path in [
        "/api/products",
        "/api/cart/42",
        "/api/missing",
        "/api/orders",
    ] {
        let _ = std::process::Command::new("python3")
            .args([
                "-c",
                "import sys, urllib.request\ntry: urllib.request.urlopen(sys.argv[1]).read()\nexcept Exception: pass",
                &format!("http://127.0.0.1:{api}{path}"),
            ])
            .status();
    }
    let _ = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, urllib.request\nurllib.request.urlopen(sys.argv[1]).read()",
            &format!("http://127.0.0.1:{web}/"),
        ])
        .status();
    let browser = open(&project, 1280, 800);
    browser.wait_for(
        "four services, the lines of each",
        Duration::from_secs(10),
        "const services = new Set([...document.querySelectorAll('#log .l')].map((n) => n.dataset.service));
         return document.querySelectorAll('#services tr').length === 4
             && ['web', 'api', 'worker', 'scheduler'].every((s) => services.has(s))
             && [...document.querySelectorAll('#log .x')].some((n) => n.textContent.includes('/api/orders'));",
    );
    // Colours are rendered, not printed as escapes.
    let coloured = value(
        &browser,
        "document.querySelectorAll('#log .x span[style*=color]').length",
    );
    assert!(coloured.as_u64().unwrap() >= 10, "{coloured}");
    assert_eq!(
        value(&browser, "[...document.querySelectorAll('#log .x')].some((n) => n.textContent.includes('\\x1b'))"),
        false
    );
    std::thread::sleep(Duration::from_millis(300));
    let png = browser.screenshot();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    let size = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    assert_eq!((size(16), size(20)), (1280, 800), "the window's size");
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    std::fs::write(&path, &png).unwrap();
    eprintln!("screenshot: {}", path.display());
    // `LOCALD_UPDATE_SCREENSHOT=1` keeps it as the manual's picture.
    if std::env::var_os("LOCALD_UPDATE_SCREENSHOT").is_some() {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/dashboard.png");
        std::fs::write(docs, &png).unwrap();
    }
}
