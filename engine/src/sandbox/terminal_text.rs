//! Messages on stderr may carry text that others wrote: a registry's error
//! body, an index's platform names, a layer's entry names, a project's
//! values. Written raw, such text can drive the user's terminal: escape
//! sequences that retitle the window, clear the screen, rewrite lines already
//! printed to fake a success, or set the clipboard (OSC 52), and Unicode
//! bidirectional overrides that make a name read as another.
//!
//! So every message locald itself writes to stderr (errors, verb messages,
//! script debug lines) goes through [`for_terminal`]: control characters
//! other than newline and tab, and the bidirectional controls, are shown as
//! `\u{..}` escapes. A command's output on stdout and services' logs are left
//! as they are: they are data, not locald's messages.

use std::borrow::Cow;

/// `text` with every character a terminal could act on shown as an escape.
pub fn for_terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut safe = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if needs_escape(c) {
            safe.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            safe.push(c);
        }
    }
    Cow::Owned(safe)
}

fn needs_escape(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        // Bidirectional embeddings, overrides and isolates (the "Trojan Source" characters).
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_unchanged() {
        let text = "error: a\n\tb — ü ✓";
        assert!(matches!(for_terminal(text), Cow::Borrowed(t) if t == text));
    }

    #[test]
    fn escape_sequences_c1_controls_and_bidi_overrides_are_shown_not_sent() {
        let hostile = "x\u{1b}]52;c;cm0gLXJmIH4=\u{7}\u{1b}[2J\r\u{9b}31m\u{202e}fdp.exe\u{7f}";
        let safe = for_terminal(hostile);
        assert_eq!(
            safe,
            "x\\u{1b}]52;c;cm0gLXJmIH4=\\u{7}\\u{1b}[2J\\u{d}\\u{9b}31m\\u{202e}fdp.exe\\u{7f}"
        );
    }
}
