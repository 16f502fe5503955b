//! Syntax colours for the line being typed: strings, numbers, comments,
//! keywords and calls. A light tokenizer rather than Rhai's: it must colour
//! unfinished input, which the parser rejects.

use nu_ansi_term::{Color, Style};
use reedline::{Highlighter, StyledText};

const KEYWORDS: &[&str] = &[
    "let", "const", "fn", "if", "else", "while", "loop", "for", "in", "do", "until", "break",
    "continue", "return", "throw", "try", "catch", "switch", "true", "false", "private", "this",
    "global",
];

/// reedline's highlighter for Rhai.
pub struct RhaiHighlighter;

impl Highlighter for RhaiHighlighter {
    fn highlight(&self, line: &str, _cursor: usize) -> StyledText {
        let mut styled = StyledText::new();
        for (style, text) in tokens(line) {
            styled.push((style, text.to_string()));
        }
        styled
    }
}

/// `line` cut into runs of one style each; the runs put together are `line`.
pub fn tokens(line: &str) -> Vec<(Style, &str)> {
    let plain = Style::new();
    let bytes = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < line.len() {
        let c = bytes[i];
        let start = i;
        let style = if c == b'/' && bytes.get(i + 1) == Some(&b'/') {
            i = line.len();
            Color::DarkGray.normal()
        } else if c == b'"' || c == b'`' || c == b'\'' {
            i += 1;
            while i < line.len() && bytes[i] != c {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(line.len());
            Color::Green.normal()
        } else if c.is_ascii_digit() {
            while i < line.len()
                && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.' || bytes[i] == b'_')
            {
                i += 1;
            }
            Color::Purple.normal()
        } else if c.is_ascii_alphabetic() || c == b'_' {
            while i < line.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            let word = &line[start..i];
            if KEYWORDS.contains(&word) {
                Color::Magenta.bold()
            } else if line[i..].trim_start().starts_with('(') {
                Color::Cyan.normal()
            } else {
                plain
            }
        } else {
            // One character (UTF-8 safe): punctuation, spaces, other text.
            i += line[i..].chars().next().map_or(1, char::len_utf8);
            plain
        };
        out.push((style, &line[start..i]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runs_rebuild_the_line() {
        for line in [
            "let x = \"a\\\"b\" + 12; // hi",
            "print(\"unterminated",
            "é → ü",
            "`x`",
        ] {
            let joined: String = tokens(line).into_iter().map(|(_, t)| t).collect();
            assert_eq!(joined, line);
        }
    }

    #[test]
    fn strings_keywords_and_calls_have_their_colours() {
        let runs = tokens("let s = status(\"web\")");
        assert_eq!(runs[0], (Color::Magenta.bold(), "let"));
        assert!(runs.contains(&(Color::Cyan.normal(), "status")));
        assert!(runs.contains(&(Color::Green.normal(), "\"web\"")));
    }
}
