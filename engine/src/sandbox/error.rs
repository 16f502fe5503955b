//! Errors of the script layer, rendered so a user can find the place: a
//! script error names the script, line and column and shows the line.

use std::fmt;

use rhai::{Dynamic, EvalAltResult, ParseError, Position};

use super::INTERRUPTED;

/// What a script error is, which decides how the CLI shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A message: shown as `error: MESSAGE`.
    Message,
    /// A rendered configuration diagnostic that carries its own `error:`
    /// headers and snippets: shown whole.
    Diagnostic,
    /// Ctrl-C or SIGTERM stopped the script: nothing to show, the command
    /// exits 128+N.
    Interrupted,
}

/// What a primitive throws into the script that called it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Thrown {
    /// An ordinary failure; scripts may catch it.
    Message(String),
    /// A rendered configuration diagnostic; scripts may catch it (they get
    /// the text), and uncaught it is shown whole.
    Diagnostic(String),
    /// Ctrl-C or SIGTERM: ends the script; `try`/`catch` cannot hold it.
    Interrupted,
}

/// The Rhai tag on a thrown string that is a rendered diagnostic. A tag
/// keeps the value a plain string for scripts that catch it, and survives
/// `throw e` (a script that builds a new message makes it a plain one).
const DIAGNOSTIC_TAG: i32 = 0x4c44;

impl Thrown {
    /// The Rhai error for this, at `position` (a primitive's call site).
    pub fn at(self, position: Position) -> Box<EvalAltResult> {
        Box::new(match self {
            Thrown::Message(text) => EvalAltResult::ErrorRuntime(text.into(), position),
            Thrown::Diagnostic(text) => {
                let mut value = Dynamic::from(text);
                value.set_tag(DIAGNOSTIC_TAG);
                EvalAltResult::ErrorRuntime(value, position)
            }
            Thrown::Interrupted => EvalAltResult::ErrorTerminated(INTERRUPTED.into(), position),
        })
    }
}

/// A script that failed to parse or to run.
#[derive(Debug)]
pub struct ScriptError {
    /// Where the script came from: a path, or `stdlib/NAME.rhai`.
    pub source_name: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
    /// The offending source line, when known.
    pub snippet: Option<String>,
    /// A user-facing error raised on purpose (`throw`, or a primitive refusing
    /// bad input) inside a built-in script: its stdlib position is noise.
    pub quiet_position: bool,
    pub kind: ErrorKind,
}

impl ScriptError {
    pub fn from_parse(source_name: &str, source: &str, err: &ParseError) -> Self {
        Self::build(source_name, source, err.1, err.0.to_string(), false)
    }

    pub fn from_eval(source_name: &str, source: &str, err: &EvalAltResult, stdlib: bool) -> Self {
        let mut err_ref = err;
        // A primitive that failed reports as ErrorInFunctionCall wrapping the
        // real cause; show the cause at the call site.
        let position = err.position();
        while let EvalAltResult::ErrorInFunctionCall(_, _, inner, _) = err_ref {
            err_ref = inner;
        }
        let (message, user_error, kind) = match err_ref {
            EvalAltResult::ErrorRuntime(value, _) if value.tag() == DIAGNOSTIC_TAG => {
                (value.to_string(), true, ErrorKind::Diagnostic)
            }
            EvalAltResult::ErrorRuntime(value, _) => (value.to_string(), true, ErrorKind::Message),
            EvalAltResult::ErrorTerminated(token, _) => match token.clone().into_string() {
                // A limit that stopped the script says which.
                Ok(reason) if reason != INTERRUPTED => (reason, true, ErrorKind::Message),
                _ => (INTERRUPTED.to_string(), true, ErrorKind::Interrupted),
            },
            other => (
                strip_position(&other.to_string()),
                false,
                ErrorKind::Message,
            ),
        };
        let pos = if err_ref.position().is_none() {
            position
        } else {
            err_ref.position()
        };
        let mut error = Self::build(source_name, source, pos, message, stdlib && user_error);
        error.kind = kind;
        error
    }

    /// A script that could not even start (not found, unreadable): a message
    /// naming it, with no position.
    pub fn unstarted(source_name: &str, message: String) -> Self {
        ScriptError {
            source_name: source_name.to_string(),
            line: None,
            column: None,
            message,
            snippet: None,
            quiet_position: true,
            kind: ErrorKind::Message,
        }
    }

    fn build(
        source_name: &str,
        source: &str,
        pos: Position,
        message: String,
        quiet_position: bool,
    ) -> Self {
        let line = pos.line();
        let column = pos.position();
        let snippet = line
            .and_then(|l| source.lines().nth(l - 1))
            .map(str::to_string);
        ScriptError {
            source_name: source_name.to_string(),
            line,
            column,
            message,
            snippet,
            quiet_position,
            kind: ErrorKind::Message,
        }
    }

    /// The error of a script stopped by a signal (or a closed stdout) at no
    /// particular position.
    pub fn interrupted(source_name: &str) -> ScriptError {
        ScriptError {
            source_name: source_name.to_string(),
            line: None,
            column: None,
            message: INTERRUPTED.to_string(),
            snippet: None,
            quiet_position: true,
            kind: ErrorKind::Interrupted,
        }
    }

    /// True when the script was stopped by a signal (or a closed stdout).
    pub fn is_interrupt(&self) -> bool {
        self.kind == ErrorKind::Interrupted
    }
}

/// Writes an error to stderr as its kind says: a rendered diagnostic whole,
/// a message after `error: `, an interrupt not at all (the exit code tells).
/// Errors quote what registries, images and configs said: never raw.
pub fn show_error(kind: ErrorKind, text: &str) {
    let text = super::terminal_text::for_terminal(text.trim_end());
    match kind {
        ErrorKind::Interrupted => {}
        ErrorKind::Diagnostic => eprintln!("{text}"),
        ErrorKind::Message => eprintln!("error: {text}"),
    }
}

/// Rhai appends " (line L, position C)" to some messages; we print the
/// position ourselves.
fn strip_position(message: &str) -> String {
    match message.rfind(" (line ") {
        Some(i) if message.ends_with(')') => message[..i].to_string(),
        _ => message.to_string(),
    }
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)?;
        if self.quiet_position {
            return Ok(());
        }
        match (self.line, self.column) {
            (Some(line), column) => {
                write!(f, "\n  --> {}:{}", self.source_name, line)?;
                if let Some(col) = column {
                    write!(f, ":{col}")?;
                }
                if let Some(snippet) = &self.snippet {
                    let gutter = line.to_string().len();
                    write!(f, "\n{:gutter$} |\n{line} | {snippet}", "")?;
                    if let Some(col) = column {
                        write!(f, "\n{:gutter$} | {:>col$}", "", "^")?;
                    }
                }
                Ok(())
            }
            _ => write!(f, "\n  --> {}", self.source_name),
        }
    }
}

impl std::error::Error for ScriptError {}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error of `script`, run where `fail()` throws `thrown`.
    fn error_of(script: &str, thrown: Thrown) -> ScriptError {
        let mut engine = rhai::Engine::new_raw();
        engine.register_fn("fail", move || -> Result<(), Box<EvalAltResult>> {
            Err(thrown.clone().at(Position::NONE))
        });
        let error = engine
            .eval::<Dynamic>(script)
            .expect_err("the script fails");
        ScriptError::from_eval("t.rhai", script, &error, true)
    }

    #[test]
    fn the_kind_comes_from_what_was_thrown_not_from_its_text() {
        let diagnostic = Thrown::Diagnostic("error: bad\n  --> locald.toml:1:1\n".into());
        let error = error_of("fail()", diagnostic.clone());
        assert_eq!(error.kind, ErrorKind::Diagnostic);
        assert_eq!(error.message, "error: bad\n  --> locald.toml:1:1\n");
        // Caught, it is the text; thrown again, still a diagnostic.
        let error = error_of("try { fail() } catch (e) { throw e }", diagnostic);
        assert_eq!(error.kind, ErrorKind::Diagnostic);
        let error = error_of("fail()", Thrown::Message("error: looks like one".into()));
        assert_eq!(error.kind, ErrorKind::Message);
        let error = error_of("throw \"error: mine\"", Thrown::Interrupted);
        assert_eq!(error.kind, ErrorKind::Message);
        assert!(!error_of("throw \"interrupted\"", Thrown::Interrupted).is_interrupt());
    }

    #[test]
    fn an_interrupt_cannot_be_caught() {
        let error = error_of("try { fail() } catch { 0 }", Thrown::Interrupted);
        assert_eq!(error.kind, ErrorKind::Interrupted);
        assert!(error.is_interrupt());
    }
}
