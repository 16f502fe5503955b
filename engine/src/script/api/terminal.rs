//! Talking to the person at the terminal, and small text helpers for verbs.

use std::io::{BufRead, IsTerminal, Write};

use rhai::plugin::*;
use serde::Deserialize;

use super::options::{self, OptionsError};

/// A person is there: stdin and stderr are terminals and this is not CI.
pub fn interactive() -> bool {
    std::io::stdin().is_terminal()
        && std::io::stderr().is_terminal()
        && std::env::var_os("CI").is_none_or(|v| v.is_empty() || v == "false")
}

/// Starts a browser on `url`, detached from this process (its own session,
/// no terminal, output discarded); whether one could be started.
pub fn open_in_browser(url: &str) -> bool {
    use std::os::unix::process::CommandExt;
    let set = |name: &str| std::env::var_os(name).is_some_and(|value| !value.is_empty());
    let opener: Option<std::ffi::OsString> = if set("BROWSER") {
        std::env::var_os("BROWSER")
    } else if cfg!(target_os = "macos") {
        Some("open".into())
    } else if set("DISPLAY") || set("WAYLAND_DISPLAY") {
        Some("xdg-open".into())
    } else {
        None
    };
    let Some(opener) = opener else {
        return false;
    };
    let mut command = std::process::Command::new(opener);
    command
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0);
    match command.spawn() {
        // Reaped by a thread, so it never lingers as a zombie.
        Ok(mut child) => {
            std::thread::spawn(move || child.wait());
            true
        }
        Err(_) => false,
    }
}

/// Opens the local file at `path` (absolute) in a browser, as
/// [`open_in_browser`] does an address.
pub fn open_file_in_browser(path: &std::path::Path) -> bool {
    open_in_browser(&file_url(path))
}

/// `file://` and `path`, every byte but unreserved ones and `/`
/// percent-encoded (a space, `#` or `?` in a path would end or change the
/// address).
fn file_url(path: &std::path::Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut url = String::from("file://");
    for &byte in path.as_os_str().as_bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~".contains(&byte) {
            url.push(byte as char);
        } else {
            url.push_str(&format!("%{byte:02X}"));
        }
    }
    url
}

/// Reads one line from stdin after printing `prompt` on stderr; `None` at EOF.
pub fn read_answer(prompt: &str) -> std::io::Result<Option<String>> {
    let mut err = std::io::stderr().lock();
    write!(err, "{prompt}")?;
    err.flush()?;
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line)? == 0 {
        return Ok(None);
    }
    Ok(Some(line.trim().to_string()))
}

/// Why a question could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum TerminalError {
    #[error(transparent)]
    Options(#[from] OptionsError),
    #[error("cannot ask on the terminal: {0}")]
    Io(#[from] std::io::Error),
}

/// The options of `confirm`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConfirmOptions {
    /// The answer when there is none (`default` is a keyword in Rhai).
    pub default_answer: bool,
}

/// `confirm(question, options)`.
fn confirm(question: &str, options: rhai::Map) -> Result<bool, TerminalError> {
    let ConfirmOptions {
        default_answer: default,
    } = options::read("confirm", options)?;
    if !interactive() {
        return Ok(default);
    }
    let hint = if default { "Y/n" } else { "y/N" };
    loop {
        let answer = read_answer(&format!("{question} [{hint}] "))?;
        match answer.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("") => return Ok(default),
            Some("y" | "yes") => return Ok(true),
            Some("n" | "no") => return Ok(false),
            Some(_) => continue,
        }
    }
}

#[export_module]
pub mod terminal_api {
    use std::io::IsTerminal;

    use rhai::Array;

    /// True when a person can answer questions (stdin and stderr are
    /// terminals, and `CI` is not set).
    pub fn is_interactive() -> bool {
        super::interactive()
    }

    /// True when stdin and stdout are both terminals: what a command given
    /// a pseudo-terminal (`container_run` with `tty`) needs.
    pub fn has_terminal() -> bool {
        std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
    }

    /// Opens `url` in the person's browser, in the background: `$BROWSER`
    /// when set, else `xdg-open` where a display is (`DISPLAY` or
    /// `WAYLAND_DISPLAY`), else `open` on macOS. False when none could be
    /// started (on a server, say): print the address instead.
    pub fn open_url(url: &str) -> bool {
        super::open_in_browser(url)
    }

    /// Asks a question on the terminal; an empty answer (or no terminal)
    /// gives `default`.
    #[rhai_fn(return_raw)]
    pub fn ask(
        ctx: NativeCallContext,
        question: &str,
        default: &str,
    ) -> Result<String, Box<EvalAltResult>> {
        if !super::interactive() {
            return Ok(default.to_string());
        }
        let prompt = if default.is_empty() {
            format!("{question}: ")
        } else {
            format!("{question} [{default}]: ")
        };
        let answer = super::read_answer(&prompt).map_err(|e| crate::script::api::fail(&ctx, e))?;
        Ok(match answer {
            Some(a) if !a.is_empty() => a,
            _ => default.to_string(),
        })
    }

    /// Asks a yes/no question; an empty answer (or no terminal) is no.
    #[rhai_fn(return_raw, name = "confirm")]
    pub fn confirm(ctx: NativeCallContext, question: &str) -> Result<bool, Box<EvalAltResult>> {
        confirm_with(ctx, question, rhai::Map::new())
    }

    /// Asks a yes/no question; options `#{ default_answer }`: what an empty
    /// reply (or no terminal) gives, false when not given.
    #[rhai_fn(return_raw, name = "confirm")]
    pub fn confirm_with(
        ctx: NativeCallContext,
        question: &str,
        options: rhai::Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        super::confirm(question, options).map_err(|e| crate::script::api::fail(&ctx, e))
    }

    /// Prints a line on stderr (for messages that are not the command's output).
    pub fn eprint(text: &str) {
        // Verbs pass on what registries, images and configs said: never raw.
        eprintln!("{}", crate::sandbox::terminal_text::for_terminal(text));
    }

    /// `text` with the characters a terminal would act on (control
    /// characters but newline and tab, bidi controls) shown as `\u{..}`
    /// escapes, as locald's own messages are: for `print`ing text a project
    /// or an image wrote (a task's description) on stdout.
    pub fn terminal_text(text: &str) -> String {
        crate::sandbox::terminal_text::for_terminal(text).into_owned()
    }

    /// The environment that `-e` flags give, as Docker reads them:
    /// `KEY=VALUE` sets KEY (split at the first `=`), a bare `KEY` passes
    /// the caller's value and is left out when the caller has none.
    pub fn env_assignments(words: Array) -> rhai::Map {
        let mut env = rhai::Map::new();
        for word in words {
            let word = word.to_string();
            match word.split_once('=') {
                Some((key, value)) => {
                    env.insert(key.into(), value.into());
                }
                None => {
                    if let Some(value) = std::env::var_os(&word) {
                        env.insert(
                            word.as_str().into(),
                            value.to_string_lossy().into_owned().into(),
                        );
                    }
                }
            }
        }
        env
    }

    /// Joins words into one shell command line, quoting where needed.
    pub fn shell_join(words: Array) -> String {
        let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        crate::program::shell_join(&words)
    }

    /// JSON text of an array (maps have `to_json` built in).
    #[rhai_fn(name = "to_json", return_raw)]
    pub fn array_to_json(
        ctx: NativeCallContext,
        array: Array,
    ) -> Result<String, Box<EvalAltResult>> {
        serde_json::to_string_pretty(&array).map_err(|e| crate::script::api::fail(&ctx, e))
    }

    /// The value of an environment variable, or `()` when unset.
    pub fn env_var(name: &str) -> Dynamic {
        std::env::var(name).map_or(Dynamic::UNIT, Dynamic::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_url_encodes_what_would_change_the_address() {
        assert_eq!(
            file_url(std::path::Path::new(
                "/home/a b/p#1?x/.locald/dashboard.html"
            )),
            "file:///home/a%20b/p%231%3Fx/.locald/dashboard.html"
        );
        assert_eq!(
            file_url(std::path::Path::new("/tmp/é")),
            "file:///tmp/%C3%A9"
        );
    }
}
