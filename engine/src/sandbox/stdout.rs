//! Writing to stdout when its reader may go away (`locald status | head -1`,
//! `locald logs -f | grep -m1 ready`): a closed pipe ends the command as a
//! SIGPIPE ends other Unix tools (exit status 141), through the same path as
//! Ctrl-C, so a script stops at its next operation and a follow loop at its
//! next look at [`super::interrupt`]. Never a panic (Rust's `println!`
//! panics on a closed stdout, since the runtime ignores SIGPIPE).

use std::io::{self, Write};

use super::interrupt;

/// Writes `bytes` to stdout and flushes. `false` once the reader has gone
/// (the command is then being stopped); other errors are dropped, as there
/// is nowhere left to report them.
pub fn write_all(bytes: &[u8]) -> bool {
    let mut stdout = io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => {
            interrupt::raise(libc::SIGPIPE);
            false
        }
        _ => true,
    }
}

/// Writes `text` and a newline to stdout; see [`write_all`].
pub fn print_line(text: &str) -> bool {
    let mut line = String::with_capacity(text.len() + 1);
    line.push_str(text);
    line.push('\n');
    write_all(line.as_bytes())
}
