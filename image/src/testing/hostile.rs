//! A hostile registry for tests: `tests/hostile_registry.py` (a small Python
//! HTTP server) serving files the test writes, and misbehaving on the
//! manifests and blobs the test marks: endless or oversized bodies, blobs
//! longer than their descriptor, blobs trickling in. It reports how many
//! bytes each response really sent, which is how a test proves that locald
//! stopped reading. Killed on drop; it also exits by itself after two minutes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::builder::BuiltBlob;
use super::{BuiltImage, FixtureError};

const SCRIPT: &str = include_str!("../../tests/hostile_registry.py");
/// A guard for waits on the server, never reached by a passing test.
const WAIT_GUARD: Duration = Duration::from_secs(30);

/// How a manifest is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestMisbehaviour {
    /// A chunked body that never ends (stopped by the server after 256 MiB).
    Endless,
    /// A `Content-Length` of 1 TiB, then an endless body.
    HugeLength,
}

/// How a blob is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobMisbehaviour {
    /// The real bytes, then garbage without end (chunked).
    Overflow,
    /// The same with a `Content-Length` that counts the garbage.
    OverflowWithLength,
    /// One byte every 50 ms.
    Trickle,
    /// HTTP 500 with an endless body.
    EndlessError,
    /// Half the bytes, then silence.
    Stall,
    /// HTTP 500 with this body (e.g. terminal escape sequences).
    ErrorBody(&'static [u8]),
}

/// What the server said it sent: (request path, bytes).
#[derive(Default)]
struct Sent {
    lines: Mutex<Vec<(String, u64)>>,
    changed: Condvar,
}

/// A running hostile registry; `addr()` is `127.0.0.1:PORT`.
pub struct HostileRegistry {
    child: Child,
    addr: String,
    root: tempfile::TempDir,
    sent: Arc<Sent>,
}

impl HostileRegistry {
    /// Starts the server, panicking with the reason if it cannot (a test fixture).
    pub fn start() -> HostileRegistry {
        match Self::try_start() {
            Ok(registry) => registry,
            Err(e) => panic!("{e}"),
        }
    }

    pub fn try_start() -> Result<HostileRegistry, FixtureError> {
        let root = tempfile::Builder::new()
            .prefix("locald-hostile-registry-")
            .tempdir()
            .map_err(|source| io("create temp dir for", &std::env::temp_dir(), source))?;
        for dir in ["manifests", "blobs"] {
            let path = root.path().join(dir);
            std::fs::create_dir(&path).map_err(|source| io("create", &path, source))?;
        }
        let script = root.path().join("hostile_registry.py");
        std::fs::write(&script, SCRIPT).map_err(|source| io("write", &script, source))?;
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(root.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|source| io("run", Path::new("python3"), source))?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(FixtureError::Registry("no stdout".into()));
        };
        let mut lines = BufReader::new(stdout);
        let mut first = String::new();
        let port = match lines.read_line(&mut first) {
            Ok(_) => first.trim().strip_prefix("PORT ").map(str::to_string),
            Err(_) => None,
        };
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(FixtureError::Registry(format!(
                "hostile registry did not say its port: `{}`",
                first.trim()
            )));
        };
        let sent = Arc::new(Sent::default());
        std::thread::spawn({
            let sent = Arc::clone(&sent);
            move || read_reports(lines, &sent)
        });
        Ok(HostileRegistry {
            child,
            addr: format!("127.0.0.1:{port}"),
            root,
            sent,
        })
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Serves `image` under `tag` (and its digest): manifest, config, layers.
    pub fn serve_image(&self, tag: &str, image: &BuiltImage) {
        self.serve_manifest(tag, &image.manifest.bytes);
        self.serve_manifest(&image.manifest.digest, &image.manifest.bytes);
        self.serve_blob(&image.config);
        for layer in &image.layers {
            self.serve_blob(layer);
        }
    }

    /// Serves `bytes` as the manifest `reference` (a tag or a digest).
    pub fn serve_manifest(&self, reference: &str, bytes: &[u8]) {
        self.write(&self.manifest_path(reference), bytes);
    }

    pub fn serve_blob(&self, blob: &BuiltBlob) {
        self.write(&self.blob_path(&blob.digest), &blob.bytes);
    }

    pub fn misbehave_manifest(&self, reference: &str, how: ManifestMisbehaviour) {
        let marker = match how {
            ManifestMisbehaviour::Endless => "endless",
            ManifestMisbehaviour::HugeLength => "huge",
        };
        self.write(&marker_path(self.manifest_path(reference), marker), b"");
    }

    pub fn misbehave_blob(&self, digest: &str, how: BlobMisbehaviour) {
        let (marker, content): (&str, &[u8]) = match how {
            BlobMisbehaviour::Overflow => ("overflow", b""),
            BlobMisbehaviour::OverflowWithLength => ("overflow-cl", b""),
            BlobMisbehaviour::Trickle => ("trickle", b""),
            BlobMisbehaviour::EndlessError => ("error-endless", b""),
            BlobMisbehaviour::Stall => ("stall", b""),
            BlobMisbehaviour::ErrorBody(body) => ("error-body", body),
        };
        self.write(&marker_path(self.blob_path(digest), marker), content);
    }

    /// From now on, every request needs a bearer token from the server's
    /// token endpoint (Docker's token protocol), and each token expires after
    /// two requests, so a pull must renew it.
    pub fn require_tokens(&self) {
        self.write(&self.root.path().join("auth"), b"");
    }

    /// Makes the token endpoint answer with an endless body.
    pub fn endless_tokens(&self) {
        self.write(&self.root.path().join("token-endless"), b"");
    }

    /// Waits until at least `count` responses to paths starting with `prefix`
    /// are recorded (the server records a response after sending it, so the
    /// client may be done before the record is), or a generous guard passes;
    /// returns how many there are then.
    pub fn wait_responses(&self, prefix: &str, count: usize) -> usize {
        let seen = |lines: &[(String, u64)]| {
            lines
                .iter()
                .filter(|(path, _)| path.starts_with(prefix))
                .count()
        };
        self.wait_for_record(|lines| Some(seen(lines)).filter(|n| *n >= count))
            .unwrap_or_else(|lines| seen(&lines))
    }

    /// Waits until a response to a path ending with `suffix` is over (sent
    /// whole, or cut by the client) and returns how many body bytes the
    /// server wrote. Panics after a generous guard.
    pub fn wait_sent(&self, suffix: &str) -> u64 {
        self.wait_for_record(|lines| {
            lines
                .iter()
                .find(|(path, _)| path.ends_with(suffix))
                .map(|(_, bytes)| *bytes)
        })
        .unwrap_or_else(|_| panic!("the hostile registry never finished a response to `…{suffix}`"))
    }

    /// What `found` finds in the records of finished responses, waiting for
    /// new records until it finds something or [`WAIT_GUARD`] passes (then
    /// the records as they are).
    fn wait_for_record<T>(
        &self,
        found: impl Fn(&[(String, u64)]) -> Option<T>,
    ) -> Result<T, Vec<(String, u64)>> {
        let deadline = Instant::now() + WAIT_GUARD;
        let mut lines = self.sent.lines.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(value) = found(&lines) {
                return Ok(value);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(lines.clone());
            }
            lines = self
                .sent
                .changed
                .wait_timeout(lines, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn manifest_path(&self, reference: &str) -> PathBuf {
        self.root
            .path()
            .join("manifests")
            .join(reference.replace(':', "_"))
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.root.path().join("blobs").join(hex)
    }

    fn write(&self, path: &Path, bytes: &[u8]) {
        if let Err(e) = std::fs::write(path, bytes) {
            panic!("cannot write {}: {e}", path.display());
        }
    }
}

impl Drop for HostileRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_reports(lines: BufReader<ChildStdout>, sent: &Sent) {
    for line in lines.lines() {
        let Ok(line) = line else { return };
        let mut words = line.split_whitespace();
        if let (Some("SENT"), Some(path), Some(bytes)) = (words.next(), words.next(), words.next())
        {
            if let Ok(bytes) = bytes.parse() {
                let mut lines = sent.lines.lock().unwrap_or_else(|e| e.into_inner());
                lines.push((path.to_string(), bytes));
                sent.changed.notify_all();
            }
        }
    }
}

fn marker_path(path: PathBuf, marker: &str) -> PathBuf {
    let mut name = path.into_os_string();
    name.push(".");
    name.push(marker);
    PathBuf::from(name)
}

fn io(action: &'static str, path: &Path, source: std::io::Error) -> FixtureError {
    FixtureError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}
