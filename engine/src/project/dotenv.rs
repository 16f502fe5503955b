//! A small dotenv parser: `KEY=value` lines with comments, an optional
//! `export ` prefix, single quotes (literal), and double quotes (with `\n`,
//! `\t`, `\"`, `\\` escapes, possibly spanning lines).
//!
//! Errors give the line number, never the line: `env_file` may name a file
//! that holds secrets (or one that is not a dotenv file at all, such as
//! `/etc/shadow`), and errors end up in terminals and logs.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum DotenvError {
    #[error("cannot read env file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("env file {path} is larger than {} MiB", MAX_SIZE >> 20)]
    TooLarge { path: PathBuf },
    #[error("{path}:{line}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// No sane env file comes near this; a larger one (or `/dev/zero`) is refused
/// rather than read into memory.
const MAX_SIZE: usize = 4 << 20;

/// Read and parse a dotenv file; pairs come back in file order.
pub fn load(path: &Path) -> Result<Vec<(String, String)>, DotenvError> {
    use std::io::Read;
    let read_error = |source| DotenvError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut text = String::new();
    // Not File::open: a FIFO named as an env file would block the open for good.
    locald_shim_protocol::regular_file::open_regular(path)
        .and_then(|file| file.take(MAX_SIZE as u64 + 1).read_to_string(&mut text))
        .map_err(read_error)?;
    if text.len() > MAX_SIZE {
        return Err(DotenvError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    parse(&text).map_err(|(line, message)| DotenvError::Syntax {
        path: path.to_path_buf(),
        line,
        message,
    })
}

/// Parse dotenv text. On error, returns the 1-based line and a message.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, (usize, String)> {
    let mut pairs = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((index, raw_line)) = lines.next() {
        let line_number = index + 1;
        let line = raw_line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line
            .strip_prefix("export ")
            .map(str::trim_start)
            .unwrap_or(line);
        let Some((key, rest)) = line.split_once('=') else {
            return Err((line_number, "expected KEY=value".into()));
        };
        let key = key.trim();
        if !is_valid_key(key) {
            return Err((
                line_number,
                "invalid variable name (names use letters, digits, `_` and `.`, \
                 and do not start with a digit)"
                    .into(),
            ));
        }
        let rest = rest.trim_start();
        let value = if let Some(body) = rest.strip_prefix('"') {
            // A double-quoted value may continue on following lines.
            let mut buffer = body.to_string();
            loop {
                if let Some(value) = take_double_quoted(&buffer) {
                    break value;
                }
                match lines.next() {
                    Some((_, next)) => {
                        buffer.push('\n');
                        buffer.push_str(next);
                    }
                    None => return Err((line_number, "unterminated double quote".into())),
                }
            }
        } else if let Some(body) = rest.strip_prefix('\'') {
            match body.find('\'') {
                Some(end) => body[..end].to_string(),
                None => return Err((line_number, "unterminated single quote".into())),
            }
        } else {
            strip_inline_comment(rest).trim_end().to_string()
        };
        pairs.push((key.to_string(), value));
    }
    Ok(pairs)
}

fn is_valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// An unquoted value ends at ` #` (a `#` glued to text is part of the value,
/// as in URLs with fragments).
fn strip_inline_comment(value: &str) -> &str {
    if value.starts_with('#') {
        return "";
    }
    match value.find(" #").or_else(|| value.find("\t#")) {
        Some(position) => &value[..position],
        None => value,
    }
}

/// The unescaped content of a double-quoted value whose opening quote has
/// been consumed, or `None` when the closing quote has not been seen yet.
fn take_double_quoted(body: &str) -> Option<String> {
    let mut value = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(value),
            '\\' => match chars.next() {
                Some('n') => value.push('\n'),
                Some('r') => value.push('\r'),
                Some('t') => value.push('\t'),
                Some(other @ ('"' | '\\' | '$')) => value.push(other),
                Some(other) => {
                    value.push('\\');
                    value.push(other);
                }
                None => return None,
            },
            other => value.push(other),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Vec<(String, String)> {
        parse(text).unwrap()
    }

    fn pair(key: &str, value: &str) -> (String, String) {
        (key.to_string(), value.to_string())
    }

    #[test]
    fn plain_values_comments_and_export() {
        let text =
            "# a comment\n\nA=1\nexport B = two words \nC=x # trailing\nD=http://h/#frag\nE=\n";
        assert_eq!(
            parsed(text),
            vec![
                pair("A", "1"),
                pair("B", "two words"),
                pair("C", "x"),
                pair("D", "http://h/#frag"),
                pair("E", ""),
            ]
        );
    }

    #[test]
    fn quotes_and_escapes() {
        let text = "S='lit $X \\n # not a comment'\nD=\"a\\nb \\\"q\\\" \\\\ # kept\"\n";
        assert_eq!(
            parsed(text),
            vec![
                pair("S", "lit $X \\n # not a comment"),
                pair("D", "a\nb \"q\" \\ # kept")
            ]
        );
    }

    #[test]
    fn double_quotes_span_lines() {
        assert_eq!(
            parsed("K=\"line1\nline2\"\nN=1"),
            vec![pair("K", "line1\nline2"), pair("N", "1")]
        );
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(parse("A=1\nnot a pair\n").unwrap_err().0, 2);
        assert_eq!(parse("A=\"open\n").unwrap_err().0, 1);
        assert_eq!(parse("1A=x").unwrap_err().0, 1);
        assert_eq!(parse("A='open").unwrap_err().0, 1);
    }

    #[test]
    fn errors_never_show_the_files_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shadow");
        std::fs::write(&path, "root:$6$s3cr3tsalt$hash:19000:0:99999:7:::\n").unwrap();
        let message = load(&path).unwrap_err().to_string();
        assert!(!message.contains("s3cr3t"), "{message}");
        assert!(message.contains(":1: expected KEY=value"), "{message}");
        std::fs::write(&path, "s3cr3t value=1\n").unwrap();
        let message = load(&path).unwrap_err().to_string();
        assert!(!message.contains("s3cr3t"), "{message}");
        assert!(message.contains(":1: invalid variable name"), "{message}");
    }

    #[test]
    fn an_endless_file_is_refused_not_read() {
        let error = load(Path::new("/dev/zero")).unwrap_err();
        assert!(matches!(error, DotenvError::Read { .. }), "{error}");
        assert!(error.to_string().contains("/dev/zero"), "{error}");
    }

    #[test]
    fn an_oversized_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(&path, "A=1\n".repeat(MAX_SIZE / 4 + 1)).unwrap();
        let error = load(&path).unwrap_err();
        assert!(matches!(error, DotenvError::TooLarge { .. }), "{error}");
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        // Nobody opens the FIFO's write end: File::open would block here for good.
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("env.fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let error = load(&fifo).unwrap_err().to_string();
        assert!(
            error.contains("env.fifo") && error.contains("a FIFO"),
            "{error}"
        );
    }

    #[test]
    fn load_reports_missing_file() {
        let error = load(Path::new("/nonexistent/.env")).unwrap_err();
        assert!(error.to_string().contains("/nonexistent/.env"));
    }
}
