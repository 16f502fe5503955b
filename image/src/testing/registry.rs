//! A throw-away OCI registry for tests: Debian's `docker-registry` (Docker
//! Distribution) serving from a temp dir on a free loopback port, killed and
//! cleaned up on drop.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::FixtureError;

const REGISTRY_BINARY: &str = "docker-registry";
const START_TIMEOUT: Duration = Duration::from_secs(15);
const START_ATTEMPTS: usize = 3;

/// A running registry; `addr()` is `127.0.0.1:PORT`.
pub struct TestRegistry {
    child: Child,
    addr: String,
    dir: tempfile::TempDir,
}

impl TestRegistry {
    /// Starts a registry, panicking with the reason if it cannot (a test fixture).
    pub fn start() -> TestRegistry {
        match Self::try_start() {
            Ok(registry) => registry,
            Err(e) => panic!("{e}"),
        }
    }

    /// Starts a registry and waits until `/v2/` answers. Retries on another
    /// port if the chosen one was taken in the meantime.
    pub fn try_start() -> Result<TestRegistry, FixtureError> {
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            match Self::start_once() {
                Ok(registry) => return Ok(registry),
                Err(e) => last_error = e.to_string(),
            }
        }
        Err(FixtureError::Registry(last_error))
    }

    fn start_once() -> Result<TestRegistry, FixtureError> {
        let dir = tempfile::Builder::new()
            .prefix("locald-test-registry-")
            .tempdir()
            .map_err(|source| FixtureError::Io {
                action: "create temp dir for",
                path: std::env::temp_dir(),
                source,
            })?;
        let port = free_port()?;
        let addr = format!("127.0.0.1:{port}");
        let storage = dir.path().join("storage");
        let config_path = dir.path().join("config.yml");
        let config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n  secret: locald-test\nhealth:\n  storagedriver:\n    enabled: false\n",
            storage.display()
        );
        std::fs::write(&config_path, config).map_err(|source| FixtureError::Io {
            action: "write",
            path: config_path.clone(),
            source,
        })?;
        let log_path = dir.path().join("registry.log");
        let log = std::fs::File::create(&log_path).map_err(|source| FixtureError::Io {
            action: "create",
            path: log_path.clone(),
            source,
        })?;
        let log_err = log.try_clone().map_err(|source| FixtureError::Io {
            action: "open",
            path: log_path.clone(),
            source,
        })?;
        let child = Command::new(REGISTRY_BINARY)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|source| FixtureError::Io {
                action: "run (install Debian's docker-registry)",
                path: REGISTRY_BINARY.into(),
                source,
            })?;
        let mut registry = TestRegistry { child, addr, dir };
        registry.wait_until_ready().map_err(|e| {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            FixtureError::Registry(format!("{e}; registry log: {}", log.trim()))
        })?;
        Ok(registry)
    }

    fn wait_until_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("docker-registry exited with {status}"));
            }
            if v2_answers(&self.addr) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!(
            "no answer on http://{}/v2/ within {START_TIMEOUT:?}",
            self.addr
        ))
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Where the registry keeps its data (for debugging failing tests).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16, FixtureError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|source| FixtureError::Io {
        action: "bind",
        path: "127.0.0.1:0".into(),
        source,
    })?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|source| FixtureError::Io {
            action: "bind",
            path: "127.0.0.1:0".into(),
            source,
        })
}

fn v2_answers(addr: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let request = format!("GET /v2/ HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}
