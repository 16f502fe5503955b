//! `locald logs`: the last lines of some services' logs (all by default)
//! interleaved by timestamp, printed like foreground output, only those since
//! a time when asked, with their times when asked; with `follow`, new lines
//! as they come, across rotations, until interrupted.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::project::state_dir::open_file;
use crate::supervisor::console::Console;
use crate::supervisor::log_store::{
    checked_state, is_since, log_path, merged_tail, services_with_logs, sources,
};
pub use crate::supervisor::log_store::{read_logs, tail, LogQuery, StoredLine};
use crate::supervisor::logs::{parse_line, Stream};
use crate::supervisor::SupervisorError;

const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// Why a `since` time was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid time `{text}`: expected a duration (10m, 1h30m) or an RFC 3339 time (2024-05-01T12:00:00Z)")]
pub struct SinceError {
    text: String,
}

/// The log timestamp for `since` as `locald logs --since` takes it: a
/// duration back from `now` (`10m`, `90s`), or an RFC 3339 time (`Z` or an
/// offset such as `+02:00`), as `docker logs --since` does.
pub fn since(text: &str, now: SystemTime) -> Result<String, SinceError> {
    let error = || SinceError {
        text: text.to_string(),
    };
    let text = text.trim();
    let time = if let Ok(duration) = humantime::parse_duration(text) {
        now.checked_sub(duration).ok_or_else(error)?
    } else {
        rfc3339(text).ok_or_else(error)?
    };
    Ok(humantime::format_rfc3339_millis(time).to_string())
}

/// An RFC 3339 time with `Z` or a numeric offset (humantime reads only UTC).
fn rfc3339(text: &str) -> Option<SystemTime> {
    if text.ends_with(['Z', 'z']) {
        return humantime::parse_rfc3339(text).ok();
    }
    let (at, sign) = text
        .rfind(['+', '-'])
        .filter(|at| *at > 10)
        .map(|at| (at, if text.as_bytes()[at] == b'+' { 1 } else { -1 }))?;
    let (hours, minutes) = text[at + 1..].split_once(':')?;
    let (hours, minutes): (u64, u64) = (hours.parse().ok()?, minutes.parse().ok()?);
    let local = humantime::parse_rfc3339(&format!("{}Z", &text[..at])).ok()?;
    let offset = Duration::from_secs(hours * 3600 + minutes * 60);
    // A time at +02:00 is two hours ahead of UTC: UTC is earlier.
    if sign > 0 {
        local.checked_sub(offset)
    } else {
        local.checked_add(offset)
    }
}

/// Format one stored line for display (after its time with `timestamps`);
/// `false` when it is not a log line.
fn format_stored(
    console: &Console,
    out: &mut Vec<u8>,
    service: &str,
    line: &str,
    timestamps: bool,
) -> bool {
    let Some(parsed) = parse_line(line) else {
        return false;
    };
    let text = if timestamps {
        format!("{} {}", parsed.timestamp, parsed.text)
    } else {
        parsed.text.to_string()
    };
    if parsed.stream == Stream::Event {
        console.format_event(out, service, &text)
    } else {
        console.format_line(out, service, text.as_bytes())
    }
    true
}

/// Print the lines of the logs `query` asks for, then with `follow` keep
/// printing new lines until interrupted.
pub fn print_logs(state_dir: &Path, query: &LogQuery, follow: bool) -> Result<(), SupervisorError> {
    let state = checked_state(state_dir)?;
    let mut services = sources(&state, query);
    let console = Console::for_stdout(&services);
    let since = query.since.as_deref();
    let mut out = Vec::new();
    for (service, line) in merged_tail(&state, query, &services, query.lines, since) {
        format_stored(&console, &mut out, &service, &line, query.timestamps);
    }
    console.write(&out);
    // Following only one-off runs ends once each has ended, as `docker logs
    // -f` of a container does.
    let mut running: std::collections::BTreeSet<&str> = query
        .runs
        .iter()
        .map(String::as_str)
        .filter(|run| !has_ended(&state.run_log(run)))
        .collect();
    if !follow || (query.services.is_empty() && !query.runs.is_empty() && running.is_empty()) {
        return Ok(());
    }
    let mut followers: BTreeMap<String, Follower> = services
        .iter()
        .map(|name| {
            let path = log_path(&state, query, name);
            (name.clone(), Follower::at_end(path))
        })
        .collect();
    let mut console = console;
    loop {
        std::thread::sleep(FOLLOW_POLL);
        if crate::sandbox::interrupt::take() {
            return Err(SupervisorError::Interrupted);
        }
        if query.services.is_empty() && query.runs.is_empty() {
            let current = services_with_logs(&state, &[]);
            if current != services {
                for name in &current {
                    followers
                        .entry(name.clone())
                        .or_insert_with(|| Follower::from_start(state.service_log(name)));
                }
                services = current;
                console = Console::for_stdout(&services);
            }
        }
        let mut out = Vec::new();
        for (name, follower) in &mut followers {
            for line in follower.poll() {
                if is_since(&line, since) {
                    format_stored(&console, &mut out, name, &line, query.timestamps);
                }
                if is_last_line(&line) {
                    running.remove(name.as_str());
                }
            }
        }
        console.write(&out);
        if query.services.is_empty() && !query.runs.is_empty() && running.is_empty() {
            return Ok(());
        }
    }
}

/// Whether a one-off run's log line is its last (see
/// [`crate::supervisor::oneoff::is_last_event`]).
fn is_last_line(line: &str) -> bool {
    parse_line(line).is_some_and(|parsed| {
        parsed.stream == Stream::Event && crate::supervisor::oneoff::is_last_event(parsed.text)
    })
}

/// Whether the one-off run whose log is `path` has ended.
fn has_ended(path: &Path) -> bool {
    tail(path, 1).iter().any(|line| is_last_line(line))
}

/// Follows one log path: reads what is appended, and when the file is
/// rotated away finishes the old file before switching to the new one.
struct Follower {
    path: PathBuf,
    file: Option<File>,
    inode: u64,
    partial: Vec<u8>,
}

impl Follower {
    fn at_end(path: PathBuf) -> Follower {
        let mut follower = Follower::from_start(path);
        follower.open(true);
        follower
    }

    fn from_start(path: PathBuf) -> Follower {
        Follower {
            path,
            file: None,
            inode: 0,
            partial: Vec::new(),
        }
    }

    fn open(&mut self, at_end: bool) {
        let Ok(mut file) = open_file(OpenOptions::new().read(true), &self.path) else {
            return;
        };
        let Ok(metadata) = file.metadata() else {
            return;
        };
        if at_end && file.seek(SeekFrom::End(0)).is_err() {
            return;
        }
        self.inode = metadata.ino();
        self.file = Some(file);
    }

    /// Complete lines appended since the last poll.
    fn poll(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        if self.file.is_none() {
            self.open(false);
        }
        self.read_available(&mut lines);
        let replaced = match fs::metadata(&self.path) {
            Ok(metadata) => metadata.ino() != self.inode,
            Err(_) => false,
        };
        if replaced && self.file.is_some() {
            // The old file was rotated: its tail was read above.
            self.file = None;
            self.partial.clear();
            self.open(false);
            self.read_available(&mut lines);
        }
        lines
    }

    fn read_available(&mut self, lines: &mut Vec<String>) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        let mut chunk = Vec::new();
        if file.read_to_end(&mut chunk).is_err() && chunk.is_empty() {
            return;
        }
        self.partial.extend_from_slice(&chunk);
        if let Some(last_newline) = self.partial.iter().rposition(|byte| *byte == b'\n') {
            let complete: Vec<u8> = self.partial.drain(..=last_newline).collect();
            lines.extend(
                String::from_utf8_lossy(&complete)
                    .lines()
                    .map(str::to_string),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::logs::rotated_path;

    #[test]
    fn stored_lines_print_like_foreground_output() {
        let dir = tempfile::tempdir().unwrap();
        let state = crate::supervisor::log_store::tests::two_service_logs(dir.path());
        let services = services_with_logs(&state, &[]);
        let query = LogQuery {
            services: Vec::new(),
            runs: Vec::new(),
            lines: 2,
            since: None,
            timestamps: false,
        };
        let merged = merged_tail(&state, &query, &services, 2, None);
        let console = Console::new(&services, false);
        let mut out = Vec::new();
        for (service, line) in &merged {
            format_stored(&console, &mut out, service, line, false);
        }
        assert_eq!(String::from_utf8(out).unwrap(), "b | b2\na * exited\n");
        let mut out = Vec::new();
        format_stored(&console, &mut out, "b", &merged[0].1, true);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "b | 2024-01-01T00:00:02.000Z b2\n"
        );
    }

    #[test]
    fn since_takes_a_duration_or_an_rfc3339_time() {
        let now = humantime::parse_rfc3339("2024-05-01T12:00:00Z").unwrap();
        assert_eq!(since("10m", now).unwrap(), "2024-05-01T11:50:00.000Z");
        assert_eq!(since("1h30m", now).unwrap(), "2024-05-01T10:30:00.000Z");
        assert_eq!(
            since("2024-05-01T11:00:00Z", now).unwrap(),
            "2024-05-01T11:00:00.000Z"
        );
        assert_eq!(
            since("2024-05-01T13:00:00+02:00", now).unwrap(),
            "2024-05-01T11:00:00.000Z"
        );
        assert_eq!(
            since("2024-05-01T08:30:00.250-02:30", now).unwrap(),
            "2024-05-01T11:00:00.250Z"
        );
        let error = since("yesterday", now).unwrap_err().to_string();
        assert!(error.contains("`yesterday`"), "{error}");
        assert!(since("2024-05-01", now).is_err());
    }

    #[test]
    fn follower_reads_across_rotation_without_losing_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.log");
        fs::write(&path, "before\n").unwrap();
        let mut follower = Follower::at_end(path.clone());
        assert!(follower.poll().is_empty());
        fs::write(&path, "before\nfirst\nhalf").unwrap();
        assert_eq!(follower.poll(), vec!["first"]);
        fs::write(&path, "before\nfirst\nhalf done\nlast old\n").unwrap();
        fs::rename(&path, rotated_path(&path, 1)).unwrap();
        fs::write(&path, "new\n").unwrap();
        assert_eq!(follower.poll(), vec!["half done", "last old", "new"]);
    }
}
