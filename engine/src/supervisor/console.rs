//! Human output of service lines and events: `name | text` for output and
//! `name * event` for locald's own events, names padded to one width and
//! coloured per service when stdout is a terminal (never with `NO_COLOR`).
//! Used by foreground `up` and by `locald logs`. Also what stopping says
//! while it waits for slow services ([`StopWaits`]), for foreground `up` and
//! `down` alike.

use std::io::IsTerminal;
use std::time::Duration;

use super::protocol::ServiceStatus;

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

/// Says which services a stop waits for, once a wait is noticeable, and
/// again only when that set changes: one line, not one per tick.
#[derive(Debug, Default)]
pub struct StopWaits {
    announced: Vec<String>,
}

impl StopWaits {
    /// A stop that takes longer than this is said.
    pub const NOTICEABLE: Duration = Duration::from_secs(1);
    /// How often the waiting side looks at the statuses.
    pub const LOOK: Duration = Duration::from_millis(250);

    /// The line to show now, if any: `waiting for web to stop (SIGTERM 3s
    /// ago, killed at 10s); Ctrl-C again to kill it now`, with `force` the
    /// key to press ("Ctrl-C again" where a Ctrl-C started the stop).
    pub fn notice(
        &mut self,
        statuses: &[ServiceStatus],
        now_unix_ms: u64,
        force: &str,
    ) -> Option<String> {
        let noticeable = Self::NOTICEABLE.as_millis() as u64;
        let slow: Vec<(&str, String)> = statuses
            .iter()
            .filter_map(|status| {
                let stopping = status.stopping.as_ref()?;
                let waited = now_unix_ms.saturating_sub(stopping.since_unix_ms);
                (waited >= noticeable).then(|| {
                    let detail = format!(
                        "{} {} ago, killed at {}",
                        stopping.signal,
                        seconds(waited),
                        seconds(stopping.kill_after_ms)
                    );
                    (status.name.as_str(), detail)
                })
            })
            .collect();
        let names: Vec<String> = slow.iter().map(|(name, _)| name.to_string()).collect();
        if slow.is_empty() || names == self.announced {
            return None;
        }
        self.announced = names;
        Some(match slow.as_slice() {
            [(name, detail)] => {
                format!("waiting for {name} to stop ({detail}); {force} to kill it now")
            }
            _ => {
                let waits: Vec<String> = slow
                    .iter()
                    .map(|(name, detail)| format!("{name} ({detail})"))
                    .collect();
                format!(
                    "waiting for {} to stop; {force} to kill them now",
                    waits.join(", ")
                )
            }
        })
    }
}

/// Whole seconds, as a person reads a wait: `3s`.
fn seconds(ms: u64) -> String {
    format!("{}s", ms / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::protocol::Stopping;

    fn status(name: &str, stopping_since: Option<u64>) -> ServiceStatus {
        ServiceStatus {
            name: name.to_string(),
            state: "healthy".to_string(),
            pid: Some(1),
            port: None,
            stopping: stopping_since.map(|since_unix_ms| Stopping {
                signal: "SIGTERM".to_string(),
                since_unix_ms,
                kill_after_ms: 10_000,
            }),
            ..ServiceStatus::default()
        }
    }

    #[test]
    fn a_slow_stop_is_said_once_with_its_signal_and_deadline() {
        let mut waits = StopWaits::default();
        let statuses = [status("web", Some(10_000)), status("db", None)];
        assert_eq!(
            waits.notice(&statuses, 10_500, "Ctrl-C again"),
            None,
            "not yet noticeable"
        );
        assert_eq!(
            waits.notice(&statuses, 13_200, "Ctrl-C again").as_deref(),
            Some("waiting for web to stop (SIGTERM 3s ago, killed at 10s); Ctrl-C again to kill it now")
        );
        assert_eq!(
            waits.notice(&statuses, 14_000, "Ctrl-C again"),
            None,
            "said already"
        );
        let both = [status("web", Some(10_000)), status("db", Some(12_000))];
        assert_eq!(
            waits.notice(&both, 14_000, "Ctrl-C").as_deref(),
            Some("waiting for web (SIGTERM 4s ago, killed at 10s), db (SIGTERM 2s ago, killed at 10s) to stop; Ctrl-C to kill them now")
        );
    }

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
