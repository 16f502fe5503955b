//! A small WebDriver client: headless Chromium driven through chromedriver's
//! HTTP API (W3C WebDriver), over a plain `TcpStream`, for the browser tests
//! of the dashboard. The test starts chromedriver and stops it (and the
//! browser) when the [`Browser`] is dropped.
//!
//! Chromium and chromedriver are Debian's `chromium` and `chromium-driver`,
//! which `scripts/install-deps` installs: a missing one fails the test, it
//! does not skip it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// What the web element's id is called in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A headless Chromium with one session, through its own chromedriver.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium `width`×`height`.
    pub fn start(width: u32, height: u32) -> Browser {
        for tool in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(tool).exists(),
                "{tool} is missing: run scripts/install-deps (Debian's chromium and chromium-driver)"
            );
        }
        // A free port for chromedriver; it binds it again right away.
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::Builder::new()
            .prefix("locald-e2e-chromium-")
            .tempdir()
            .expect("a profile directory");
        let mut browser = Browser {
            driver,
            port,
            session: String::new(),
            _profile: profile,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while browser.request("GET", "/status", None).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        // The flags Chromium needs on a machine with no network but
        // loopback, as root, with no display.
        let args = [
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--hide-scrollbars".into(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", browser._profile.path().display()),
        ];
        let capabilities = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
            }}
        });
        let answer = browser.call("POST", "/session", Some(capabilities));
        browser.session = answer["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {answer}"))
            .to_string();
        // `--window-size` is the window's; make the page's viewport that
        // size, so screenshots are `width`×`height`.
        let inner = browser.script("return [window.innerWidth, window.innerHeight]", json!([]));
        let rect = browser.session_call("GET", "/window/rect", None);
        let grow = |key: &str, index: usize, want: u32| {
            rect[key].as_i64().unwrap_or(0) + i64::from(want) - inner[index].as_i64().unwrap_or(0)
        };
        browser.session_call(
            "POST",
            "/window/rect",
            Some(json!({ "width": grow("width", 0, width), "height": grow("height", 1, height) })),
        );
        browser
    }

    /// One HTTP exchange with chromedriver: `(status, body)`.
    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> std::io::Result<(u16, String)> {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        let body = body.map(Value::to_string).unwrap_or_default();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.port,
            body.len()
        )?;
        let mut reader = BufReader::new(stream);
        let mut status_line = String::new();
        reader.read_line(&mut status_line)?;
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        let mut length = None;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line)?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse::<usize>().ok();
                }
            }
        }
        let mut answer = Vec::new();
        match length {
            Some(length) => {
                answer.resize(length, 0);
                reader.read_exact(&mut answer)?;
            }
            None => {
                reader.read_to_end(&mut answer)?;
            }
        }
        Ok((status, String::from_utf8_lossy(&answer).into_owned()))
    }

    /// A WebDriver command; panics with chromedriver's error when it fails.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, answer) = self
            .request(method, path, body.as_ref())
            .unwrap_or_else(|error| panic!("chromedriver {method} {path}: {error}"));
        let value: Value = serde_json::from_str(&answer)
            .unwrap_or_else(|error| panic!("chromedriver {method} {path}: {error}: {answer}"));
        assert_eq!(status, 200, "chromedriver {method} {path}: {answer}");
        value["value"].clone()
    }

    fn session_call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(
            method,
            &format!("/session/{}{path}", self.session),
            body.or(Some(json!({}))).filter(|_| method == "POST"),
        )
    }

    pub fn goto(&self, url: &str) {
        self.session_call("POST", "/url", Some(json!({ "url": url })));
    }

    pub fn url(&self) -> String {
        self.session_call("GET", "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    pub fn script(&self, script: &str, args: Value) -> Value {
        self.session_call(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// The one element `css` selects.
    pub fn find(&self, css: &str) -> String {
        let found = self.session_call(
            "POST",
            "/element",
            Some(json!({ "using": "css selector", "value": css })),
        );
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_string()
    }

    /// Clicks the element `css` selects, as a person would (a real mouse
    /// event at its place on the page).
    pub fn click(&self, css: &str) {
        let element = self.find(css);
        self.session_call("POST", &format!("/element/{element}/click"), None);
    }

    /// Types `text` into the element `css` selects, key by key.
    pub fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css);
        self.session_call(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// Picks the `<option>` with `value` in the `<select>` `css` selects.
    pub fn choose(&self, css: &str, value: &str) {
        self.click(css);
        self.click(&format!("{css} option[value=\"{value}\"]"));
    }

    /// Turns the mouse wheel over `element` by `delta_y` pixels (negative:
    /// up), as a person scrolls.
    pub fn scroll_wheel(&self, element: &str, delta_y: i64) {
        let scroll = json!({
            "type": "scroll", "x": 0, "y": 0, "deltaX": 0, "deltaY": delta_y,
            "origin": { ELEMENT: element },
        });
        self.session_call(
            "POST",
            "/actions",
            Some(json!({ "actions": [
                { "type": "wheel", "id": "wheel", "actions": [scroll] }
            ]})),
        );
    }

    /// A PNG of the page as shown.
    pub fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let encoded = self.session_call("GET", "/screenshot", None);
        base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().expect("a base64 screenshot"))
            .expect("a base64 screenshot")
    }

    /// Waits until `script` returns something truthy; returns it.
    pub fn wait_for(&self, what: &str, timeout: Duration, script: &str) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.script(script, json!([]));
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::String(s) => !s.is_empty(),
                Value::Array(a) => !a.is_empty(),
                _ => true,
            };
            if truthy {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.request("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
