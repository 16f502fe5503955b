//! `locald logs`: the last lines of one service's log, or of all services
//! interleaved by timestamp, printed like foreground output; with `follow`,
//! new lines as they come, across rotations, until interrupted.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::project::state_dir::{open_file, StateDir};
use crate::supervisor::console::Console;
use crate::supervisor::logs::{parse_line, rotated_path, Stream};
use crate::supervisor::SupervisorError;

const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// The last `count` lines of a log file (reaching into the newest rotated
/// file when the live one is shorter), as stored.
pub fn tail(path: &Path, count: usize) -> Vec<String> {
    if count == 0 {
        return Vec::new();
    }
    let mut lines = last_lines(path, count);
    if lines.len() < count {
        let mut older = last_lines(&rotated_path(path, 1), count - lines.len());
        older.append(&mut lines);
        lines = older;
    }
    lines
}

fn last_lines(path: &Path, count: usize) -> Vec<String> {
    // Never through a link planted in the state directory.
    let mut text = Vec::new();
    let read = open_file(OpenOptions::new().read(true), path)
        .and_then(|mut file| file.read_to_end(&mut text));
    if read.is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&text);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(count)..]
        .iter()
        .map(|line| line.to_string())
        .collect()
}

/// Names of the services that have a log, or just `service`.
fn services_with_logs(state: &StateDir, service: Option<&str>) -> Vec<String> {
    if let Some(service) = service {
        return vec![service.to_string()];
    }
    let mut names: Vec<String> = fs::read_dir(state.logs_dir())
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|entry| {
                    let name = entry.file_name().to_string_lossy().to_string();
                    name.strip_suffix(".log").map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Format one stored line for display; `false` when it is not a log line.
fn format_stored(console: &Console, out: &mut Vec<u8>, service: &str, line: &str) -> bool {
    match parse_line(line) {
        Some(parsed) if parsed.stream == Stream::Event => {
            console.format_event(out, service, parsed.text)
        }
        Some(parsed) => console.format_line(out, service, parsed.text.as_bytes()),
        None => return false,
    }
    true
}

/// The last `count` lines across `services`, oldest first, merged by time.
fn merged_tail(state: &StateDir, services: &[String], count: usize) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = services
        .iter()
        .flat_map(|service| {
            tail(&state.service_log(service), count)
                .into_iter()
                .map(move |line| (service.clone(), line))
        })
        .collect();
    // Timestamps lead every line and sort lexically; a stable sort keeps
    // each file's own order for equal stamps.
    all.sort_by(|(_, a), (_, b)| a.split(' ').next().cmp(&b.split(' ').next()));
    let skip = all.len().saturating_sub(count);
    all.split_off(skip)
}

/// The project's state directory, checked before any log is read: never
/// through a `.locald` (or `logs/`) someone else prepared.
fn checked_state(state_dir: &Path) -> Result<StateDir, SupervisorError> {
    let state = StateDir::new(state_dir);
    if state.check()? && fs::symlink_metadata(state.logs_dir()).is_ok() {
        state.check_logs()?;
    }
    Ok(state)
}

/// One line of a service's log, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLine {
    pub service: String,
    pub stream: Stream,
    pub text: String,
}

/// The last `lines` lines of one service's log (or all services', merged by
/// time), oldest first: what [`print_logs`] prints, as data.
pub fn read_logs(
    state_dir: &Path,
    service: Option<&str>,
    lines: usize,
) -> Result<Vec<StoredLine>, SupervisorError> {
    let state = checked_state(state_dir)?;
    let services = services_with_logs(&state, service);
    Ok(merged_tail(&state, &services, lines)
        .into_iter()
        .filter_map(|(service, line)| {
            let parsed = parse_line(&line)?;
            Some(StoredLine {
                stream: parsed.stream,
                text: parsed.text.to_string(),
                service,
            })
        })
        .collect())
}

/// Print the last `lines` lines of one service's log (or all services'),
/// then with `follow` keep printing new lines until interrupted.
pub fn print_logs(
    state_dir: &Path,
    service: Option<&str>,
    lines: usize,
    follow: bool,
) -> Result<(), SupervisorError> {
    let state = checked_state(state_dir)?;
    let mut services = services_with_logs(&state, service);
    let console = Console::for_stdout(&services);
    let mut out = Vec::new();
    for (service, line) in merged_tail(&state, &services, lines) {
        format_stored(&console, &mut out, &service, &line);
    }
    console.write(&out);
    if !follow {
        return Ok(());
    }
    let mut followers: BTreeMap<String, Follower> = services
        .iter()
        .map(|name| (name.clone(), Follower::at_end(state.service_log(name))))
        .collect();
    let mut console = console;
    loop {
        std::thread::sleep(FOLLOW_POLL);
        if crate::sandbox::interrupt::take() {
            return Err(SupervisorError::Interrupted);
        }
        if service.is_none() {
            let current = services_with_logs(&state, None);
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
                format_stored(&console, &mut out, name, &line);
            }
        }
        console.write(&out);
    }
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
    use crate::supervisor::logs::{LogFile, Stream};

    #[test]
    fn merges_services_by_time_and_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        state.ensure().unwrap();
        let mut a = LogFile::open(&state.service_log("a")).unwrap();
        let mut b = LogFile::open(&state.service_log("b")).unwrap();
        a.write_line("2024-01-01T00:00:01.000Z", Stream::Stdout, b"a1")
            .unwrap();
        b.write_line("2024-01-01T00:00:02.000Z", Stream::Stderr, b"b2")
            .unwrap();
        a.write_line("2024-01-01T00:00:03.000Z", Stream::Event, b"exited")
            .unwrap();
        a.flush().unwrap();
        b.flush().unwrap();
        let services = services_with_logs(&state, None);
        assert_eq!(services, vec!["a", "b"]);
        let merged = merged_tail(&state, &services, 2);
        let texts: Vec<(&str, &str)> = merged
            .iter()
            .map(|(service, line)| (service.as_str(), parse_line(line).unwrap().text))
            .collect();
        assert_eq!(texts, vec![("b", "b2"), ("a", "exited")]);
        let read = read_logs(dir.path(), None, 2).unwrap();
        let read: Vec<(&str, Stream, &str)> = read
            .iter()
            .map(|l| (l.service.as_str(), l.stream, l.text.as_str()))
            .collect();
        assert_eq!(
            read,
            vec![("b", Stream::Stderr, "b2"), ("a", Stream::Event, "exited")]
        );
        let read = read_logs(dir.path(), Some("a"), 5).unwrap();
        assert_eq!(read.len(), 2);
        let console = Console::new(&services, false);
        let mut out = Vec::new();
        for (service, line) in &merged {
            format_stored(&console, &mut out, service, line);
        }
        assert_eq!(String::from_utf8(out).unwrap(), "b | b2\na * exited\n");
    }

    #[test]
    fn tail_reaches_into_the_rotated_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.log");
        fs::write(rotated_path(&path, 1), "old1\nold2\n").unwrap();
        fs::write(&path, "new1\n").unwrap();
        assert_eq!(tail(&path, 2), vec!["old2", "new1"]);
        assert_eq!(tail(&path, 1), vec!["new1"]);
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
