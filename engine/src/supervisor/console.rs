//! Human output of service lines and events: `name | text` for output and
//! `name * event` for locald's own events, names padded to one width and
//! coloured per service when stdout is a terminal (never with `NO_COLOR`).
//! Used by foreground `up` and by `locald logs`.

use std::io::IsTerminal;

const PALETTE: [&str; 6] = [
    "\x1b[36m", "\x1b[33m", "\x1b[32m", "\x1b[35m", "\x1b[34m", "\x1b[31m",
];
const RESET: &str = "\x1b[0m";
const DIM: &str = "\x1b[2m";

/// Formats prefixed lines for a fixed set of service names.
#[derive(Debug, Clone)]
pub struct Console {
    names: Vec<String>,
    width: usize,
    color: bool,
}

impl Console {
    /// A console for these services, coloured when stdout is a terminal
    /// and `NO_COLOR` is unset.
    pub fn for_stdout<S: AsRef<str>>(names: &[S]) -> Console {
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        Console::new(names, color)
    }

    pub fn new<S: AsRef<str>>(names: &[S], color: bool) -> Console {
        let names: Vec<String> = names.iter().map(|name| name.as_ref().to_string()).collect();
        let width = names
            .iter()
            .map(|name| name.chars().count())
            .max()
            .unwrap_or(0);
        Console {
            names,
            width,
            color,
        }
    }

    /// The same console for another set of names (after a reload), keeping
    /// the colour choice.
    pub fn with_names<S: AsRef<str>>(&self, names: &[S]) -> Console {
        Console::new(names, self.color)
    }

    fn prefix(&self, out: &mut Vec<u8>, service: &str, separator: &str) {
        let padding = self.width.saturating_sub(service.chars().count());
        if self.color {
            let index = self
                .names
                .iter()
                .position(|name| name == service)
                .unwrap_or(0);
            out.extend_from_slice(PALETTE[index % PALETTE.len()].as_bytes());
        }
        out.extend_from_slice(service.as_bytes());
        out.extend(std::iter::repeat_n(b' ', padding));
        out.push(b' ');
        out.extend_from_slice(separator.as_bytes());
        if self.color {
            out.extend_from_slice(RESET.as_bytes());
        }
        out.push(b' ');
    }

    /// Append a line of a service's output.
    pub fn format_line(&self, out: &mut Vec<u8>, service: &str, text: &[u8]) {
        self.prefix(out, service, "|");
        out.extend_from_slice(text);
        out.push(b'\n');
    }

    /// Append one of locald's event lines about a service.
    pub fn format_event(&self, out: &mut Vec<u8>, service: &str, text: &str) {
        self.prefix(out, service, "*");
        if self.color {
            out.extend_from_slice(DIM.as_bytes());
        }
        out.extend_from_slice(text.as_bytes());
        if self.color {
            out.extend_from_slice(RESET.as_bytes());
        }
        out.push(b'\n');
    }

    /// Write formatted bytes to stdout. A reader that went away stops a
    /// follow (`logs -f | head`) as Ctrl-C would (see
    /// [`crate::sandbox::stdout`]); a foreground supervisor goes on.
    pub fn write(&self, bytes: &[u8]) {
        if !bytes.is_empty() {
            crate::sandbox::stdout::write_all(bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_names_and_marks_events() {
        let console = Console::new(&["db", "worker"], false);
        let mut out = Vec::new();
        console.format_line(&mut out, "db", b"ready");
        console.format_event(&mut out, "worker", "healthy");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "db     | ready\nworker * healthy\n"
        );
    }

    #[test]
    fn colours_each_service_differently() {
        let console = Console::new(&["a", "b"], true);
        let (mut first, mut second) = (Vec::new(), Vec::new());
        console.format_line(&mut first, "a", b"x");
        console.format_line(&mut second, "b", b"x");
        assert!(first.starts_with(PALETTE[0].as_bytes()));
        assert!(second.starts_with(PALETTE[1].as_bytes()));
    }
}
