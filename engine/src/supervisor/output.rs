//! Where a service's output goes: every line read from its stdout/stderr
//! pipes is written to its log file, echoed to the console in foreground
//! mode, and matched against a `log` readiness probe. Events about the
//! service take the same path.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use regex::Regex;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::watch;

use super::console::Console;
use super::live::LiveLogs;
use super::logs::{timestamp, LineSplitter, LogFile, Stream, MAX_LINE};

/// Read buffer per pipe; large reads keep the per-line cost low.
/// One pipe read. A pipe holds 64 KiB, so a larger buffer gains nothing, and
/// every service has two of these alive for its whole life: keep them small
/// (50 idle services must stay within a few MB).
const READ_CHUNK: usize = 32 * 1024;

/// The sinks of one service's output.
pub struct ServiceOutput {
    name: String,
    log: Mutex<Option<LogFile>>,
    console: Option<Console>,
    ready_pattern: Option<Regex>,
    ready: watch::Sender<bool>,
    live: Option<LiveLogs>,
    /// A one-off run's output is also written to its service's log (and
    /// console and live view), each line after this marker: `[run ID] `.
    mirror: Option<(Arc<ServiceOutput>, String)>,
}

impl ServiceOutput {
    /// Output to `log_path` (a log that cannot be opened is reported once and
    /// skipped: the service still runs), to `console` when given, and
    /// matched against `ready_pattern` when given.
    pub fn new(
        name: &str,
        log_path: &Path,
        console: Option<Console>,
        ready_pattern: Option<Regex>,
    ) -> Self {
        let log = match LogFile::open(log_path) {
            Ok(log) => Some(log),
            Err(error) => {
                tracing::warn!(service = name, path = %log_path.display(), %error, "cannot open log file");
                None
            }
        };
        ServiceOutput {
            name: name.to_string(),
            log: Mutex::new(log),
            console,
            ready_pattern,
            ready: watch::Sender::new(false),
            live: None,
            mirror: None,
        }
    }

    /// The output of one-off run `id` of a service: its own log at
    /// `log_path` (what `locald logs ID` reads), and the service's log and
    /// console through `service`, marked as the run's.
    pub fn for_run(id: &str, log_path: &Path, service: Arc<ServiceOutput>) -> Self {
        ServiceOutput {
            mirror: Some((service, format!("[run {id}] "))),
            ..ServiceOutput::new(id, log_path, None, None)
        }
    }

    /// Also hands every line to the supervisor's watchers (the dashboard).
    pub fn with_live(mut self, live: LiveLogs) -> Self {
        self.live = Some(live);
        self
    }

    fn log(&self) -> MutexGuard<'_, Option<LogFile>> {
        // A panic while holding the lock leaves a usable log file behind.
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Record an event about the service (log file and console).
    pub fn event(&self, text: &str) {
        tracing::info!(service = %self.name, "{text}");
        let stamp = timestamp();
        if let Some(log) = self.log().as_mut() {
            let _ = log.write_line(&stamp, Stream::Event, text.as_bytes());
            let _ = log.flush();
        }
        if let Some(live) = &self.live {
            live.send(&self.name, Stream::Event, &stamp, vec![text.to_string()]);
        }
        if let Some(console) = &self.console {
            let mut out = Vec::new();
            console.format_event(&mut out, &self.name, text);
            console.write(&out);
        }
        if let Some((service, marker)) = &self.mirror {
            service.event(&format!("{marker}{text}"));
        }
    }

    /// Readiness from a `log` probe: true once a line matched since the last
    /// [`ServiceOutput::reset_ready`].
    pub fn ready(&self) -> watch::Receiver<bool> {
        self.ready.subscribe()
    }

    pub fn reset_ready(&self) {
        self.ready.send_replace(false);
    }

    /// Record a batch of lines read together (one timestamp, one flush).
    fn write_chunk(&self, splitter: &mut LineSplitter, stream: Stream, chunk: Option<&[u8]>) {
        let stamp = timestamp();
        let mut console_bytes = Vec::new();
        let mut matched = false;
        // Copied only while someone watches.
        let mut live_lines = self
            .live
            .as_ref()
            .filter(|live| live.watched())
            .map(|_| Vec::new());
        let mut mirrored = Vec::new();
        {
            let mut log = self.log();
            let mut record = |line: &[u8]| {
                if let Some(log) = log.as_mut() {
                    let _ = log.write_line(&stamp, stream, line);
                }
                if let Some((_, marker)) = &self.mirror {
                    mirrored.push([marker.as_bytes(), line].concat());
                }
                if let Some(console) = &self.console {
                    console.format_line(&mut console_bytes, &self.name, line);
                }
                if let Some(lines) = live_lines.as_mut() {
                    lines.push(String::from_utf8_lossy(line).into_owned());
                }
                if let Some(pattern) = &self.ready_pattern {
                    if !matched && pattern.is_match(&String::from_utf8_lossy(line)) {
                        matched = true;
                    }
                }
            };
            match chunk {
                Some(chunk) => splitter.push(chunk, &mut record),
                None => splitter.finish(&mut record),
            }
            if let Some(log) = log.as_mut() {
                let _ = log.flush();
            }
        }
        if let Some(console) = &self.console {
            console.write(&console_bytes);
        }
        if let (Some(live), Some(lines)) = (&self.live, live_lines) {
            live.send(&self.name, stream, &stamp, lines);
        }
        if matched {
            self.ready.send_replace(true);
        }
        if let Some((service, _)) = &self.mirror {
            service.write_lines(&stamp, stream, &mirrored);
        }
    }

    /// Record whole lines (a one-off run's, marked) as this service's.
    fn write_lines(&self, stamp: &str, stream: Stream, lines: &[Vec<u8>]) {
        if lines.is_empty() {
            return;
        }
        let mut console_bytes = Vec::new();
        {
            let mut log = self.log();
            for line in lines {
                if let Some(log) = log.as_mut() {
                    let _ = log.write_line(stamp, stream, line);
                }
                if let Some(console) = &self.console {
                    console.format_line(&mut console_bytes, &self.name, line);
                }
            }
            if let Some(log) = log.as_mut() {
                let _ = log.flush();
            }
        }
        if let Some(console) = &self.console {
            console.write(&console_bytes);
        }
        if let Some(live) = self.live.as_ref().filter(|live| live.watched()) {
            let text = lines
                .iter()
                .map(|line| String::from_utf8_lossy(line).into_owned())
                .collect();
            live.send(&self.name, stream, stamp, text);
        }
    }
}

/// Read one pipe to end of file, recording every line.
pub async fn collect(mut pipe: impl AsyncRead + Unpin, stream: Stream, output: Arc<ServiceOutput>) {
    let mut splitter = LineSplitter::new(MAX_LINE);
    let mut buffer = vec![0u8; READ_CHUNK];
    loop {
        match pipe.read(&mut buffer).await {
            Ok(0) => break,
            Ok(read) => output.write_chunk(&mut splitter, stream, Some(&buffer[..read])),
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => {
                tracing::warn!(service = %output.name, %error, "cannot read service output");
                break;
            }
        }
    }
    output.write_chunk(&mut splitter, stream, None);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::logs::parse_line;

    #[test]
    fn every_line_of_a_fast_writer_is_recorded_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fast.log");
        let output = Arc::new(ServiceOutput::new(
            "fast",
            &path,
            None,
            Regex::new("^99999$").ok(),
        ));
        let ready = output.ready();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut child = tokio::process::Command::new("seq")
                .args(["1", "200000"])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let stdout = child.stdout.take().unwrap();
            collect(stdout, Stream::Stdout, output.clone()).await;
            child.wait().await.unwrap();
        });
        let text = std::fs::read_to_string(&path).unwrap();
        let numbers: Vec<u32> = text
            .lines()
            .map(|line| parse_line(line).unwrap().text.parse().unwrap())
            .collect();
        assert_eq!(numbers, (1..=200000).collect::<Vec<u32>>());
        assert!(*ready.borrow(), "the readiness pattern matched");
    }

    #[test]
    fn events_are_logged_with_their_stream() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("svc.log");
        let output = ServiceOutput::new("svc", &path, None, None);
        output.event("starting");
        let text = std::fs::read_to_string(&path).unwrap();
        let line = parse_line(text.lines().next().unwrap()).unwrap();
        assert_eq!((line.stream, line.text), (Stream::Event, "starting"));
    }
}
