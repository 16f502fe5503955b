//! Reading the service logs that [`super::logs`] writes: the last lines of
//! one file (reaching into the rotated one), of several services merged by
//! time, as data. Used by `locald logs` (through [`crate::control`]) and by
//! the dashboard the supervisor serves.

use std::fs::{self, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};

use super::logs::{parse_line, rotated_path, Stream};
use super::SupervisorError;
use crate::project::state_dir::{open_file, StateDir};

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

/// Which lines of the logs to show, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogQuery {
    /// These services' logs; every service's when empty (and `runs` too).
    pub services: Vec<String>,
    /// These one-off runs' logs, by full ID (`logs/runs/ID.log`), shown
    /// under their ID.
    pub runs: Vec<String>,
    /// How many lines from the end.
    pub lines: usize,
    /// Only lines written at or after this time (as logs write it, see
    /// [`since`]).
    pub since: Option<String>,
    /// Each line prefixed with the time it was written.
    pub timestamps: bool,
}

/// What `query` reads: its services and runs, or every service that has a
/// log when it names none.
pub(crate) fn sources(state: &StateDir, query: &LogQuery) -> Vec<String> {
    if query.services.is_empty() && query.runs.is_empty() {
        return services_with_logs(state, &[]);
    }
    let mut names = query.services.clone();
    names.extend(query.runs.iter().cloned());
    names
}

/// The log file of a source of `query`.
pub(crate) fn log_path(state: &StateDir, query: &LogQuery, name: &str) -> PathBuf {
    if query.runs.iter().any(|run| run == name) {
        state.run_log(name)
    } else {
        state.service_log(name)
    }
}

/// Names of the services that have a log, or just `services` when given.
pub(crate) fn services_with_logs(state: &StateDir, services: &[String]) -> Vec<String> {
    if !services.is_empty() {
        return services.to_vec();
    }
    log_names(&state.logs_dir())
}

/// The names of the `NAME.log` files in `dir`, sorted.
pub fn log_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
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

/// True when `line` was written at or after `since` (any line without one).
pub(crate) fn is_since(line: &str, since: Option<&str>) -> bool {
    match since {
        Some(since) => line.split(' ').next() >= Some(since),
        None => true,
    }
}

/// The last `count` lines across `services` (those since `since`), oldest
/// first, merged by time.
pub(crate) fn merged_tail(
    state: &StateDir,
    query: &LogQuery,
    services: &[String],
    count: usize,
    since: Option<&str>,
) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = services
        .iter()
        .flat_map(|service| {
            tail(&log_path(state, query, service), count)
                .into_iter()
                .filter(|line| is_since(line, since))
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
pub(crate) fn checked_state(state_dir: &Path) -> Result<StateDir, SupervisorError> {
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
    /// When it was written (RFC 3339, UTC, milliseconds).
    pub time: String,
    pub stream: Stream,
    pub text: String,
}

/// The lines of the logs `query` asks for, merged by time, oldest first:
/// what [`print_logs`] prints, as data.
pub fn read_logs(state_dir: &Path, query: &LogQuery) -> Result<Vec<StoredLine>, SupervisorError> {
    let state = checked_state(state_dir)?;
    let services = sources(&state, query);
    Ok(merged_tail(
        &state,
        query,
        &services,
        query.lines,
        query.since.as_deref(),
    )
    .into_iter()
    .filter_map(|(service, line)| {
        let parsed = parse_line(&line)?;
        Some(StoredLine {
            time: parsed.timestamp.to_string(),
            stream: parsed.stream,
            text: parsed.text.to_string(),
            service,
        })
    })
    .collect())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::supervisor::logs::LogFile;

    #[test]
    fn a_run_is_read_from_its_own_log_and_out_of_the_default_listing() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        state.ensure().unwrap();
        let mut web = LogFile::open(&state.service_log("web")).unwrap();
        web.write_line(
            "2024-01-01T00:00:01.000Z",
            Stream::Stdout,
            b"[run 0a1b2c] hi",
        )
        .unwrap();
        web.flush().unwrap();
        let mut run = LogFile::open(&state.run_log("0a1b2c")).unwrap();
        run.write_line("2024-01-01T00:00:01.000Z", Stream::Stdout, b"hi")
            .unwrap();
        run.flush().unwrap();
        let query = |runs: &[&str]| LogQuery {
            services: Vec::new(),
            runs: runs.iter().map(|s| s.to_string()).collect(),
            lines: 10,
            since: None,
            timestamps: false,
        };
        let lines = |query: &LogQuery| -> Vec<(String, String)> {
            read_logs(dir.path(), query)
                .unwrap()
                .into_iter()
                .map(|line| (line.service, line.text))
                .collect()
        };
        assert_eq!(
            lines(&query(&["0a1b2c"])),
            vec![("0a1b2c".to_string(), "hi".to_string())]
        );
        // Every service's log: the run shows there, marked, not twice.
        assert_eq!(
            lines(&query(&[])),
            vec![("web".to_string(), "[run 0a1b2c] hi".to_string())]
        );
    }

    /// Logs of services `a` (`a1` at 1 s, `exited` at 3 s, an event) and
    /// `b` (`b2` at 2 s, on stderr) in a new state directory at `dir`.
    pub(crate) fn two_service_logs(dir: &Path) -> StateDir {
        let state = StateDir::new(dir);
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
        state
    }

    #[test]
    fn merges_services_by_time_and_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let state = two_service_logs(dir.path());
        let services = services_with_logs(&state, &[]);
        assert_eq!(services, vec!["a", "b"]);
        let query = |services: &[&str], lines, since: Option<&str>| LogQuery {
            services: services.iter().map(|s| s.to_string()).collect(),
            runs: Vec::new(),
            lines,
            since: since.map(str::to_string),
            timestamps: false,
        };
        let merged = merged_tail(&state, &query(&[], 2, None), &services, 2, None);
        let texts: Vec<(&str, &str)> = merged
            .iter()
            .map(|(service, line)| (service.as_str(), parse_line(line).unwrap().text))
            .collect();
        assert_eq!(texts, vec![("b", "b2"), ("a", "exited")]);
        let read = read_logs(dir.path(), &query(&[], 2, None)).unwrap();
        let read: Vec<(&str, Stream, &str)> = read
            .iter()
            .map(|l| (l.service.as_str(), l.stream, l.text.as_str()))
            .collect();
        assert_eq!(
            read,
            vec![("b", Stream::Stderr, "b2"), ("a", Stream::Event, "exited")]
        );
        let read = read_logs(dir.path(), &query(&["a"], 5, None)).unwrap();
        assert_eq!(read.len(), 2);
        let read = read_logs(dir.path(), &query(&["b", "a"], 5, None)).unwrap();
        assert_eq!(read.len(), 3);
        // Since a time: that second's lines and later.
        let read = read_logs(dir.path(), &query(&[], 5, Some("2024-01-01T00:00:02.000Z"))).unwrap();
        let texts: Vec<&str> = read.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["b2", "exited"]);
        assert_eq!(read[0].time, "2024-01-01T00:00:02.000Z");
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
}
