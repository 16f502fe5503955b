//! Diagnostics: where a configuration problem is (key path, byte span), what it
//! is, and how it is shown — rustc-style snippets for `locald.toml`
//! (`ConfigError`) and plain `path: message (help)` lines for maps handed to
//! `service(...)` from Rhai (`FieldError`), whose position the script engine knows.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Byte range into the configuration source.
pub(crate) type Span = Range<usize>;

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

/// Where a value lives in the configuration, e.g. `services.web.health.status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeyPath(Vec<Segment>);

impl KeyPath {
    pub(crate) fn root() -> Self {
        KeyPath(Vec::new())
    }

    pub(crate) fn key(&self, key: &str) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Key(key.to_owned()));
        KeyPath(segments)
    }

    pub(crate) fn index(&self, index: usize) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Index(index));
        KeyPath(segments)
    }

    /// Splits into the enclosing table and the last key with any array indices
    /// after it: `services.web.depends_on[1]` → (`services.web`, `depends_on[1]`).
    fn split_leaf(&self) -> (KeyPath, String) {
        let last_key = self
            .0
            .iter()
            .rposition(|segment| matches!(segment, Segment::Key(_)))
            .unwrap_or(0);
        let parent = KeyPath(self.0[..last_key].to_vec());
        let leaf = KeyPath(self.0[last_key..].to_vec()).to_string();
        (parent, leaf)
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (position, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) => {
                    if position > 0 {
                        f.write_str(".")?;
                    }
                    write_key(f, key)?;
                }
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// Writes a key as TOML would need it: bare when it can be, quoted otherwise,
/// so a path like `services.web.env."MY VAR"` can be pasted back into a file.
fn write_key(f: &mut fmt::Formatter<'_>, key: &str) -> fmt::Result {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        f.write_str(key)
    } else {
        write!(f, "{key:?}")
    }
}

/// How a problem's headline is phrased around its key path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Headline {
    /// "invalid `port` in [services.web]: MESSAGE"
    InvalidValue,
    /// "unknown key `comand` in [services.web]"
    UnknownKey,
    /// The message stands on its own ("dependency cycle: a -> b -> a").
    Standalone,
}

/// A configuration problem before it is tied to a file: the shared currency of
/// the validator, rendered by whichever front end found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub path: KeyPath,
    pub headline: Headline,
    pub message: String,
    pub help: Option<String>,
    pub span: Option<Span>,
}

impl Problem {
    pub(crate) fn invalid(path: KeyPath, message: impl Into<String>) -> Self {
        Problem {
            path,
            headline: Headline::InvalidValue,
            message: message.into(),
            help: None,
            span: None,
        }
    }

    pub(crate) fn unknown_key(path: KeyPath, help: Option<String>) -> Self {
        let (_, leaf) = path.split_leaf();
        Problem {
            message: format!("unknown key `{leaf}`"),
            path,
            headline: Headline::UnknownKey,
            help,
            span: None,
        }
    }

    pub(crate) fn standalone(path: KeyPath, message: impl Into<String>) -> Self {
        Problem {
            path,
            headline: Headline::Standalone,
            message: message.into(),
            help: None,
            span: None,
        }
    }

    pub(crate) fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub(crate) fn with_span(mut self, span: Option<Span>) -> Self {
        self.span = span;
        self
    }

    /// Fills in a span only where the problem has none, so the most precise
    /// location found deeper down wins over an enclosing table's.
    pub(crate) fn or_span(mut self, span: Option<Span>) -> Self {
        if self.span.is_none() {
            self.span = span;
        }
        self
    }

    /// The one-line summary naming the key and where it sits.
    pub(crate) fn headline(&self) -> String {
        let (parent, leaf) = self.path.split_leaf();
        let place = if parent.0.is_empty() {
            "at the top level".to_owned()
        } else {
            format!("in [{parent}]")
        };
        match self.headline {
            Headline::Standalone => self.message.clone(),
            Headline::UnknownKey => format!("{} {place}", self.message),
            Headline::InvalidValue if leaf.is_empty() => self.message.clone(),
            Headline::InvalidValue => format!("invalid `{leaf}` {place}: {}", self.message),
        }
    }

    pub(crate) fn into_field_error(self) -> FieldError {
        FieldError {
            path: self.path.to_string(),
            message: self.message,
            help: self.help,
        }
    }
}

/// A problem in a service map handed to `service(name, #{...})` from Rhai:
/// the key path and what is wrong; the script engine adds the position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// e.g. `services.web.health.status`
    pub path: String,
    pub message: String,
    pub help: Option<String>,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)?;
        } else {
            write!(f, "{}: {}", self.path, self.message)?;
        }
        if let Some(help) = &self.help {
            write!(f, " ({help})")?;
        }
        Ok(())
    }
}

impl std::error::Error for FieldError {}

/// One located problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line of the offending key or value.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Dotted key path (`services.web.port`); empty for syntax errors.
    pub key_path: String,
    /// The summary line after `error: `.
    pub headline: String,
    /// What is wrong, without the location (as in a [`FieldError`]).
    pub message: String,
    /// A suggestion, shown under the snippet's carets.
    pub help: Option<String>,
    /// The rustc-style block: `--> file:line:col`, the source line, carets.
    pub snippet: String,
}

/// Why a configuration file was rejected: every problem found, each with its
/// file, line, column, key path and a rendered snippet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    file: PathBuf,
    diagnostics: Vec<Diagnostic>,
}

impl ConfigError {
    /// Locates problems found in `source` (the text of `file`). `problems`
    /// must not be empty.
    pub(crate) fn from_problems(file: &Path, source: &str, problems: Vec<Problem>) -> Self {
        let lines = LineIndex::new(source);
        let diagnostics = problems
            .into_iter()
            .map(|problem| {
                let span = problem.span.clone().unwrap_or(0..0);
                let headline = problem.headline();
                let key_path = problem.path.to_string();
                lines.diagnostic(
                    file,
                    source,
                    span,
                    headline,
                    key_path,
                    problem.message,
                    problem.help,
                )
            })
            .collect();
        ConfigError {
            file: file.to_owned(),
            diagnostics,
        }
    }

    /// A TOML syntax error, located by the parser's own span.
    pub(crate) fn from_syntax(file: &Path, source: &str, error: &toml_edit::TomlError) -> Self {
        let span = error.span().unwrap_or(source.len()..source.len());
        let (message, help) = super::toml_source::explain_syntax_error(source, error);
        let lines = LineIndex::new(source);
        let diagnostic = lines.diagnostic(
            file,
            source,
            span,
            message.clone(),
            String::new(),
            message,
            help,
        );
        ConfigError {
            file: file.to_owned(),
            diagnostics: vec![diagnostic],
        }
    }

    /// The file could not be read.
    pub fn unreadable(file: &Path, error: &std::io::Error) -> Self {
        let message = format!("cannot read {}: {error}", file.display());
        let diagnostic = Diagnostic {
            line: 1,
            column: 1,
            key_path: String::new(),
            headline: message.clone(),
            message,
            help: None,
            snippet: format!("  --> {}\n", file.display()),
        };
        ConfigError {
            file: file.to_owned(),
            diagnostics: vec![diagnostic],
        }
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    /// All problems, in file order of discovery. Never empty.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    fn first(&self) -> Option<&Diagnostic> {
        self.diagnostics.first()
    }

    /// Line of the first problem (1-based).
    pub fn line(&self) -> usize {
        self.first().map_or(1, |d| d.line)
    }

    /// Column of the first problem (1-based, in characters).
    pub fn column(&self) -> usize {
        self.first().map_or(1, |d| d.column)
    }

    /// Key path of the first problem (empty for a syntax error).
    pub fn key_path(&self) -> &str {
        self.first().map_or("", |d| d.key_path.as_str())
    }

    /// Message of the first problem.
    pub fn message(&self) -> &str {
        self.first().map_or("", |d| d.message.as_str())
    }

    /// Help of the first problem.
    pub fn help(&self) -> Option<&str> {
        self.first().and_then(|d| d.help.as_deref())
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, diagnostic) in self.diagnostics.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            writeln!(f, "error: {}", diagnostic.headline)?;
            f.write_str(&diagnostic.snippet)?;
        }
        if self.diagnostics.len() > 1 {
            write!(
                f,
                "\nerror: {} has {} errors\n",
                self.file.display(),
                self.diagnostics.len()
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Byte offsets of line starts, to turn spans into line/column pairs.
pub(crate) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub(crate) fn new(source: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(source.match_indices('\n').map(|(offset, _)| offset + 1));
        LineIndex { starts }
    }

    /// 0-based line holding byte `offset`.
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        match self.starts.binary_search(&offset) {
            Ok(line) => line,
            Err(next) => next - 1,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn diagnostic(
        &self,
        file: &Path,
        source: &str,
        span: Span,
        headline: String,
        key_path: String,
        message: String,
        help: Option<String>,
    ) -> Diagnostic {
        let start = floor_char_boundary(source, span.start.min(source.len()));
        let end = floor_char_boundary(source, span.end.clamp(start, source.len()));
        let line = self.line_of(start);
        let line_start = self.starts[line];
        let line_end = source[line_start..]
            .find('\n')
            .map_or(source.len(), |n| line_start + n);
        let text = source[line_start..line_end].trim_end_matches('\r');

        let before = &source[line_start..start];
        let column = before.chars().count() + 1;
        // Carets cover the span's part of its first line, at least one.
        let marked_end = end.min(line_start + text.len()).max(start);
        let marked = source[start..marked_end].chars().count().max(1);

        let line_number = (line + 1).to_string();
        // The gutter is one column wider than the line number, as in the
        // documented format (` 3 | text`).
        let pad = " ".repeat(line_number.len() + 1);
        let indent: String = before
            .chars()
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let mut snippet = format!(
            "{pad}--> {}:{}:{column}\n{pad} |\n {line_number} | {text}\n{pad} | {indent}{}",
            file.display(),
            line + 1,
            "^".repeat(marked),
        );
        if let Some(help) = &help {
            snippet.push(' ');
            snippet.push_str(help);
        }
        snippet.push('\n');
        Diagnostic {
            line: line + 1,
            column,
            key_path,
            headline,
            message,
            help,
            snippet,
        }
    }
}

fn floor_char_boundary(source: &str, mut offset: usize) -> usize {
    while offset > 0 && !source.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_quote_keys_that_are_not_bare() {
        let path = KeyPath::root()
            .key("services")
            .key("web")
            .key("env")
            .key("MY VAR");
        assert_eq!(path.to_string(), r#"services.web.env."MY VAR""#);
        let indexed = KeyPath::root()
            .key("services")
            .key("web")
            .key("depends_on")
            .index(1);
        assert_eq!(indexed.to_string(), "services.web.depends_on[1]");
        assert_eq!(
            Problem::invalid(indexed, "expected a string, found an integer").headline(),
            "invalid `depends_on[1]` in [services.web]: expected a string, found an integer"
        );
    }

    #[test]
    fn renders_like_rustc() {
        let source = "[services.web]\n\ncomand = \"npm run dev\"\n";
        let path = KeyPath::root().key("services").key("web").key("comand");
        let problem = Problem::unknown_key(path, Some("did you mean `command`?".into()))
            .with_span(Some(16..22));
        let error = ConfigError::from_problems(Path::new("/p/locald.toml"), source, vec![problem]);
        assert_eq!(
            error.to_string(),
            "error: unknown key `comand` in [services.web]\n  \
             --> /p/locald.toml:3:1\n   |\n 3 | comand = \"npm run dev\"\n   | ^^^^^^ did you mean `command`?\n"
        );
        assert_eq!((error.line(), error.column()), (3, 1));
        assert_eq!(error.key_path(), "services.web.comand");
    }

    #[test]
    fn columns_count_characters_and_gutter_grows_with_line_numbers() {
        let mut source = "\n".repeat(11);
        source.push_str("name = \"é\" # x\n");
        let start = source.len() - "# x\n".len();
        let problem =
            Problem::standalone(KeyPath::root(), "boom").with_span(Some(start..start + 3));
        let error = ConfigError::from_problems(Path::new("f.toml"), &source, vec![problem]);
        assert_eq!(
            error.to_string(),
            "error: boom\n   --> f.toml:12:12\n    |\n 12 | name = \"é\" # x\n    |            ^^^\n"
        );
    }

    #[test]
    fn field_errors_read_as_one_line() {
        let error = FieldError {
            path: "services.web.health.status".into(),
            message: "`status` is only allowed with `http`".into(),
            help: Some("add `http = \"/\"`".into()),
        };
        assert_eq!(
            error.to_string(),
            "services.web.health.status: `status` is only allowed with `http` (add `http = \"/\"`)"
        );
    }
}
