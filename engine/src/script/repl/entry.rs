//! When an entry is complete: the Rhai parser decides. An entry is
//! incomplete only when parsing ran out of input (`UnexpectedEOF`, a missing
//! closing token positioned past the end, a string still open at the end);
//! any other error is the user's to see, so `print("{")` runs and
//! `fn f(x) {` asks for the next line.

use std::sync::Arc;

use reedline::{ValidationResult, Validator};
use rhai::{Engine, LexError, ParseErrorType, Position};

/// Whether `source` needs more lines before it can be evaluated.
pub fn is_incomplete(engine: &Engine, source: &str) -> bool {
    if source.trim().is_empty() {
        return false;
    }
    let Err(error) = engine.compile(source) else {
        return false;
    };
    match &*error.0 {
        ParseErrorType::UnexpectedEOF => true,
        ParseErrorType::BadInput(LexError::UnterminatedString) => {
            past_end(source, error.1) || ends_inside_string(source)
        }
        ParseErrorType::MissingToken(..) => past_end(source, error.1),
        _ => false,
    }
}

/// Whether `position` is at or after the end of `source` (Rhai puts an error
/// about a token it never got where the input stopped).
fn past_end(source: &str, position: Position) -> bool {
    let (Some(line), Some(column)) = (position.line(), position.position()) else {
        return true;
    };
    let lines: Vec<&str> = source.split('\n').collect();
    let last = lines.len();
    let last_width = lines.last().map_or(0, |l| l.chars().count());
    // A trailing newline gives an empty last line; Rhai reports the end on
    // the line before it.
    let (last, last_width) = if last > 1 && last_width == 0 {
        (last - 1, lines[last - 2].chars().count())
    } else {
        (last, last_width)
    };
    line > last || (line == last && column > last_width)
}

/// Whether a `"…"` or `` `…` `` string is still open at the end of `source`:
/// Rhai reports where such a string starts, which is not past the end.
fn ends_inside_string(source: &str) -> bool {
    let chars: Vec<char> = source.chars().collect();
    let mut open: Option<char> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match open {
            Some(_) if c == '\\' => i += 1,
            Some(quote) if c == quote => open = None,
            Some(_) => {}
            None if c == '"' || c == '`' => open = Some(c),
            // A comment to the end of its line.
            None if c == '/' && chars.get(i + 1) == Some(&'/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            None => {}
        }
        i += 1;
    }
    open.is_some()
}

/// reedline's validator over [`is_incomplete`].
pub struct RhaiValidator(pub Arc<Engine>);

impl Validator for RhaiValidator {
    fn validate(&self, line: &str) -> ValidationResult {
        if is_incomplete(&self.0, line) {
            ValidationResult::Incomplete
        } else {
            ValidationResult::Complete
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incomplete(source: &str) -> bool {
        is_incomplete(&Engine::new_raw(), source)
    }

    #[test]
    fn an_open_block_continues() {
        assert!(incomplete("fn f(x) {"));
        assert!(incomplete("if true {\n  print(1);"));
        assert!(incomplete("let a = [1,\n2,"));
        assert!(incomplete("foo(1, "));
    }

    #[test]
    fn an_open_string_continues() {
        assert!(incomplete("let s = `line one\n"));
        assert!(incomplete("print(\"abc"));
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        assert!(!incomplete("print(\"{\")"));
        assert!(!incomplete("print(\"(\")"));
        assert!(!incomplete("let s = \"}}\";"));
    }

    #[test]
    fn other_errors_are_complete_so_they_are_shown() {
        assert!(!incomplete("let = 5"));
        assert!(!incomplete("1 +* 2"));
        assert!(!incomplete("foo(1 2)"));
        assert!(!incomplete(")"));
        assert!(!incomplete(""));
    }

    #[test]
    fn complete_entries_are_complete() {
        assert!(!incomplete("fn f(x) { x + 1 }"));
        assert!(!incomplete("1 + 1"));
        assert!(!incomplete("fn f(x) {\n  x\n}\n"));
    }
}
