//! Errors of the script layer, rendered so a user can find the place: a
//! script error names the script, line and column and shows the line.

use std::fmt;

use rhai::{EvalAltResult, ParseError, Position};

use super::INTERRUPTED;

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
        let (message, user_error) = match err_ref {
            EvalAltResult::ErrorRuntime(value, _) => (value.to_string(), true),
            EvalAltResult::ErrorTerminated(token, _) => match token.clone().into_string() {
                // A limit that stopped the script says which.
                Ok(reason) if reason != INTERRUPTED => (reason, true),
                _ => (INTERRUPTED.to_string(), true),
            },
            other => (strip_position(&other.to_string()), false),
        };
        let pos = if err_ref.position().is_none() {
            position
        } else {
            err_ref.position()
        };
        Self::build(source_name, source, pos, message, stdlib && user_error)
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
        }
    }

    /// True when the script was stopped by Ctrl-C.
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
        }
    }

    pub fn is_interrupt(&self) -> bool {
        self.message == INTERRUPTED
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
