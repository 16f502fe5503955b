//! `locald repl`: an interactive Rhai session on the engine's primitives,
//! attached to the project of the current directory and its supervisor.
//!
//! One file per idea: [`session`] evaluates entries (one scope, one growing
//! set of functions), [`entry`] decides when an entry is complete (the Rhai
//! parser does), [`complete`], [`highlight`] and [`help`] serve the editor
//! from the engine's own [`catalog`], [`attach`] finds the project and
//! draws the prompt, and [`verbs`] holds the REPL-only functions. With a
//! terminal the editor is reedline; piped input is read line by line and
//! evaluated without prompts or colours, stopping at the first error.

mod attach;
mod catalog;
mod complete;
mod entry;
mod help;
mod highlight;
#[cfg(test)]
mod reference;
mod session;
mod verbs;

use std::io::{self, BufRead, IsTerminal};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use nu_ansi_term::Style;
use reedline::{
    default_emacs_keybindings, ColumnarMenu, DefaultHinter, Emacs, FileBackedHistory, KeyCode,
    KeyModifiers, MenuBuilder, Reedline, ReedlineEvent, ReedlineMenu, Signal,
};

use self::attach::{Attachment, ReplPrompt};
use self::complete::{Known, ReplCompleter};
use self::session::{Outcome, Session};
use crate::sandbox::{self, interrupt};

/// How many entries the history file keeps.
const HISTORY_SIZE: usize = 10_000;

/// Runs the REPL on the terminal, or over piped input (or output); returns the exit
/// code (`exit(n)`'s, 1 after a failed piped entry, 0 otherwise).
pub fn repl() -> io::Result<i32> {
    let cwd = std::env::current_dir()?;
    let attachment = Attachment::find(&cwd);
    let mut session = Session::new(attachment.project.clone(), attachment.service_names());
    // The line editor asks the terminal where the cursor is through stdout:
    // with stdout redirected there is no one to answer, so the session reads
    // lines as from a pipe.
    if io::stdin().is_terminal() && io::stdout().is_terminal() {
        interactive(&mut session, &attachment)
    } else {
        piped(&mut session, io::stdin().lock())
    }
}

/// Evaluates piped input entry by entry (an entry ends where the Rhai parser
/// finds it complete), printing values; the first error ends the session
/// with 1 (130/143 when stopped by a signal).
fn piped(session: &mut Session, input: impl BufRead) -> io::Result<i32> {
    let mut buffer = String::new();
    let mut lines = input.lines();
    loop {
        let line = lines.next().transpose()?;
        let at_end = line.is_none();
        if let Some(line) = line {
            buffer.push_str(&line);
            buffer.push('\n');
            if session.is_incomplete(&buffer) {
                continue;
            }
        }
        let source = std::mem::take(&mut buffer);
        if !source.trim().is_empty() {
            match session.eval(&source) {
                Outcome::Done => {}
                Outcome::Exit(code) => return Ok(code),
                Outcome::Failed(error) => {
                    session.show_error(&error);
                    return Ok(if error.is_interrupt() {
                        interrupt::exit_code()
                    } else {
                        1
                    });
                }
                Outcome::OutputClosed => return Ok(interrupt::exit_code()),
            }
        }
        if at_end {
            return Ok(0);
        }
    }
}

fn interactive(session: &mut Session, attachment: &Attachment) -> io::Result<i32> {
    let supervisor = attachment.supervisor();
    eprint!("{}", attachment.banner(&supervisor));
    let mut editor = editor(session, attachment);
    session.prepare_catalog();
    let mut supervisor = Some(supervisor);
    loop {
        // The banner's answer serves the first prompt; later prompts ask
        // again, as an entry (or another terminal) may have changed it.
        let state = supervisor.take().unwrap_or_else(|| attachment.supervisor());
        let prompt = ReplPrompt(attachment.prompt_text(&state));
        match editor.read_line(&prompt)? {
            Signal::Success(source) => {
                if source.trim().is_empty() {
                    continue;
                }
                match session.eval(&source) {
                    Outcome::Done => {}
                    Outcome::Exit(code) => return Ok(code),
                    Outcome::Failed(error) => session.show_error(&error),
                    Outcome::OutputClosed => return Ok(interrupt::exit_code()),
                }
            }
            // reedline has already cleared the line.
            Signal::CtrlC => {}
            // A signal came while the editor waited: SIGTERM or SIGHUP end
            // the session as they end any command; a SIGINT sent with
            // `kill` is a Ctrl-C.
            Signal::ExternalBreak(_) => {
                if interrupt::take() && interrupt::exit_code() != 130 {
                    eprintln!();
                    return Ok(interrupt::exit_code());
                }
            }
            // Signal is non-exhaustive: a new way to leave the line editor
            // without an entry leaves the session as Ctrl-D does.
            Signal::CtrlD | _ => return Ok(0),
        }
    }
}

fn editor(session: &Session, attachment: &Attachment) -> Reedline {
    let mut keybindings = default_emacs_keybindings();
    keybindings.add_binding(
        KeyModifiers::NONE,
        KeyCode::Tab,
        ReedlineEvent::UntilFound(vec![
            ReedlineEvent::Menu("completion_menu".to_string()),
            ReedlineEvent::MenuNext,
        ]),
    );
    let completer = ReplCompleter::new(session.engine(), session.shared_catalog(), session.known());
    let stop = Arc::new(AtomicBool::new(false));
    let raise = stop.clone();
    let mut editor = Reedline::create()
        .with_validator(Box::new(entry::RhaiValidator(session.engine())))
        .with_completer(Box::new(completer))
        .with_menu(ReedlineMenu::EngineCompleter(Box::new(
            ColumnarMenu::default().with_name("completion_menu"),
        )))
        .with_quick_completions(true)
        .with_partial_completions(true)
        .with_hinter(Box::new(
            DefaultHinter::default().with_style(Style::new().dimmed()),
        ))
        .with_highlighter(Box::new(highlight::RhaiHighlighter))
        .with_edit_mode(Box::new(Emacs::new(keybindings)))
        // The signal handlers only raise a flag, and the editor does not
        // return on a signal by itself: look at the flag while it waits.
        .with_break_signal(stop)
        .with_idle_callback(Box::new(move || {
            if interrupt::pending() {
                raise.store(true, Ordering::SeqCst);
            }
        }))
        .with_history_exclusion_prefix(Some(" ".to_string()))
        // NO_COLOR (no-color.org): plain text, as the rest of locald prints.
        .with_ansi_colors(std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()));
    match attachment
        .history_file()
        .and_then(|path| FileBackedHistory::with_file(HISTORY_SIZE, path).map_err(io::Error::other))
    {
        Ok(history) => editor = editor.with_history(Box::new(history)),
        Err(error) => sandbox::show_error(
            sandbox::ErrorKind::Message,
            &format!("history is not kept this session: {error}"),
        ),
    }
    editor
}

/// For [`Known`] users outside this module (the session fills it).
pub(crate) type SharedKnown = Arc<Mutex<Known>>;
