//! Service log files: `.locald/logs/<service>.log`, one line per output line
//! as `TIMESTAMP STREAM TEXT` (RFC 3339 with milliseconds; stream `stdout`,
//! `stderr`, or `locald` for the supervisor's own events), kept across
//! restarts and rotated to `.1`, `.2`, … at a size bound. Also the splitter
//! that cuts a byte stream into lines no longer than [`MAX_LINE`].

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;

use crate::project::state_dir::open_file;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Rotate once a log file would grow past this.
pub const ROTATE_AT: u64 = 10 * 1024 * 1024;
/// Rotated files kept besides the live one (`.1` is the newest).
pub const KEEP_ROTATED: u32 = 3;
/// Longer lines are split into pieces of this size.
pub const MAX_LINE: usize = 64 * 1024;

/// Write buffer of a log file; flushed after every batch of lines anyway.
const LOG_BUFFER: usize = 16 * 1024;

/// Which output a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
    /// A supervisor event about the service (starting, exited, …).
    Event,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::Event => "locald",
        }
    }

    pub fn parse(text: &str) -> Option<Stream> {
        match text {
            "stdout" => Some(Stream::Stdout),
            "stderr" => Some(Stream::Stderr),
            "locald" => Some(Stream::Event),
            _ => None,
        }
    }
}

/// The current time as written in logs; lexical order is time order.
pub fn timestamp() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// Path of the `index`-th rotated file (`x.log.1`, …).
pub fn rotated_path(path: &Path, index: u32) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(format!(".{index}"));
    PathBuf::from(name)
}

/// An append-only, size-bounded log file.
pub struct LogFile {
    path: PathBuf,
    writer: BufWriter<File>,
    size: u64,
    rotate_at: u64,
}

impl LogFile {
    pub fn open(path: &Path) -> io::Result<LogFile> {
        Self::open_with_limit(path, ROTATE_AT)
    }

    pub fn open_with_limit(path: &Path, rotate_at: u64) -> io::Result<LogFile> {
        let file = open_file(
            OpenOptions::new().create(true).append(true).mode(0o600),
            path,
        )?;
        let size = file.metadata()?.len();
        Ok(LogFile {
            path: path.to_path_buf(),
            writer: BufWriter::with_capacity(LOG_BUFFER, file),
            size,
            rotate_at,
        })
    }

    /// Append one line (buffered; call [`LogFile::flush`] after a batch).
    pub fn write_line(&mut self, timestamp: &str, stream: Stream, text: &[u8]) -> io::Result<()> {
        let stream = stream.as_str();
        let length = (timestamp.len() + stream.len() + text.len() + 3) as u64;
        if self.size > 0 && self.size + length > self.rotate_at {
            self.rotate()?;
        }
        self.writer.write_all(timestamp.as_bytes())?;
        self.writer.write_all(b" ")?;
        self.writer.write_all(stream.as_bytes())?;
        self.writer.write_all(b" ")?;
        self.writer.write_all(text)?;
        self.writer.write_all(b"\n")?;
        self.size += length;
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.writer.flush()?;
        let oldest = rotated_path(&self.path, KEEP_ROTATED);
        match fs::remove_file(&oldest) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
        for index in (1..KEEP_ROTATED).rev() {
            let from = rotated_path(&self.path, index);
            if from.exists() {
                fs::rename(&from, rotated_path(&self.path, index + 1))?;
            }
        }
        fs::rename(&self.path, rotated_path(&self.path, 1))?;
        let file = open_file(
            OpenOptions::new().create(true).append(true).mode(0o600),
            &self.path,
        )?;
        self.writer = BufWriter::with_capacity(LOG_BUFFER, file);
        self.size = 0;
        Ok(())
    }
}

/// Cuts a byte stream into lines (without the `\n`), splitting any line
/// longer than the limit so a runaway line can neither exhaust memory nor
/// stall the collector.
pub struct LineSplitter {
    pending: Vec<u8>,
    max_line: usize,
}

impl LineSplitter {
    pub fn new(max_line: usize) -> Self {
        LineSplitter {
            pending: Vec::new(),
            max_line: max_line.max(1),
        }
    }

    /// Feed a chunk; `emit` gets every line completed by it.
    pub fn push(&mut self, mut chunk: &[u8], mut emit: impl FnMut(&[u8])) {
        while let Some(newline) = chunk.iter().position(|byte| *byte == b'\n') {
            let (line, rest) = (&chunk[..newline], &chunk[newline + 1..]);
            if self.pending.is_empty() {
                self.emit_bounded(line, &mut emit);
            } else {
                self.pending.extend_from_slice(line);
                let whole = std::mem::take(&mut self.pending);
                self.emit_bounded(&whole, &mut emit);
                self.pending = whole;
                self.pending.clear();
            }
            chunk = rest;
        }
        self.pending.extend_from_slice(chunk);
        while self.pending.len() >= self.max_line {
            emit(&self.pending[..self.max_line]);
            self.pending.drain(..self.max_line);
        }
    }

    /// End of stream: emit what is left of an unterminated last line.
    pub fn finish(&mut self, mut emit: impl FnMut(&[u8])) {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.emit_bounded(&rest, &mut emit);
        }
    }

    fn emit_bounded(&self, line: &[u8], emit: &mut impl FnMut(&[u8])) {
        if line.is_empty() {
            emit(line);
            return;
        }
        for piece in line.chunks(self.max_line) {
            emit(piece);
        }
    }
}

/// One parsed log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine<'a> {
    pub timestamp: &'a str,
    pub stream: Stream,
    pub text: &'a str,
}

/// Parse a line written by [`LogFile::write_line`].
pub fn parse_line(line: &str) -> Option<LogLine<'_>> {
    let (timestamp, rest) = line.split_once(' ')?;
    let (stream, text) = rest.split_once(' ').unwrap_or((rest, ""));
    Some(LogLine {
        timestamp,
        stream: Stream::parse(stream)?,
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_all(chunks: &[&[u8]], max: usize) -> Vec<Vec<u8>> {
        let mut splitter = LineSplitter::new(max);
        let mut lines = Vec::new();
        for chunk in chunks {
            splitter.push(chunk, |line| lines.push(line.to_vec()));
        }
        splitter.finish(|line| lines.push(line.to_vec()));
        lines
    }

    #[test]
    fn splits_lines_across_chunks() {
        let lines = split_all(&[b"ab", b"c\nde\n\nf", b"g\nh"], 100);
        assert_eq!(
            lines,
            vec![
                b"abc".to_vec(),
                b"de".to_vec(),
                b"".to_vec(),
                b"fg".to_vec(),
                b"h".to_vec()
            ]
        );
    }

    #[test]
    fn long_lines_are_cut_without_losing_bytes() {
        let long = [b'x'; 10];
        let lines = split_all(&[&long[..3], &long[3..], b"\nyy\n"], 4);
        assert_eq!(
            lines,
            vec![
                b"xxxx".to_vec(),
                b"xxxx".to_vec(),
                b"xx".to_vec(),
                b"yy".to_vec()
            ]
        );
        // A huge line in one chunk is cut, never buffered whole.
        let huge = vec![b'z'; MAX_LINE * 3 + 5];
        let lines = split_all(&[&huge], MAX_LINE);
        assert_eq!(
            lines.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![MAX_LINE, MAX_LINE, MAX_LINE, 5]
        );
    }

    #[test]
    fn writes_parsable_lines_and_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("svc.log");
        let mut log = LogFile::open_with_limit(&path, 100).unwrap();
        let stamp = timestamp();
        for index in 0..20 {
            log.write_line(
                &stamp,
                Stream::Stdout,
                format!("line {index:02}").as_bytes(),
            )
            .unwrap();
        }
        log.flush().unwrap();
        let current = fs::read_to_string(&path).unwrap();
        assert!(current.len() <= 100);
        let last = current.lines().last().unwrap();
        let parsed = parse_line(last).unwrap();
        assert_eq!(
            parsed,
            LogLine {
                timestamp: &stamp,
                stream: Stream::Stdout,
                text: "line 19"
            }
        );
        assert!(rotated_path(&path, 1).exists());
        assert!(rotated_path(&path, KEEP_ROTATED).exists());
        assert!(!rotated_path(&path, KEEP_ROTATED + 1).exists());
        // The newest lines survive rotation in order: .1 ends right before the live file starts.
        let previous = fs::read_to_string(rotated_path(&path, 1)).unwrap();
        let before = parse_line(previous.lines().last().unwrap())
            .unwrap()
            .text
            .to_string();
        let first = parse_line(current.lines().next().unwrap())
            .unwrap()
            .text
            .to_string();
        assert!(before < first, "{before} then {first}");
    }

    #[test]
    fn timestamps_sort_lexically() {
        let first = timestamp();
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(timestamp() > first);
        assert!(first.ends_with('Z') && first.contains('.'), "{first}");
    }
}
