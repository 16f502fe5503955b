//! What to run: a shell line or a list of words, decided once.
//!
//! A service's `command` in `locald.toml`, the words after `--` of `run`, `try`
//! and `container run`, and what a script passes to `run_command` or
//! `run_container` all become a [`Program`]. The one rule for words typed on a
//! command line lives in [`Program::from_words`]: a single word is a shell line
//! (`locald run web -- 'psql -p $PORT'`, as honcho and `docker compose run`
//! users write it), several words are run as they are, with no shell between.

use std::fmt;
use std::process::Command;

use thiserror::Error;

/// The shell every shell line runs under, as `sh -c LINE`.
pub const SHELL: &str = "sh";

/// A command to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// A line for `sh -c`: pipes, `$PORT` and quotes work as in a terminal.
    Shell(String),
    /// A program and its arguments, run without a shell (the first word is
    /// looked up in `PATH`).
    Exec(Vec<String>),
}

/// A program that cannot be run because there is nothing to run.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("the command is empty")]
pub struct EmptyProgram;

impl Program {
    /// The words of a command line: one word is a shell line, several an argv.
    pub fn from_words(mut words: Vec<String>) -> Result<Program, EmptyProgram> {
        match words.len() {
            0 => Err(EmptyProgram),
            1 => Ok(Program::Shell(words.remove(0))),
            _ => Ok(Program::Exec(words)),
        }
    }

    /// A program given as an argv, run as it is whatever its length.
    pub fn exec(words: Vec<String>) -> Result<Program, EmptyProgram> {
        if words.is_empty() {
            return Err(EmptyProgram);
        }
        Ok(Program::Exec(words))
    }

    /// The argv that runs it: `sh -c LINE`, or the words.
    pub fn argv(&self) -> Vec<String> {
        match self {
            Program::Shell(line) => vec![SHELL.into(), "-c".into(), line.clone()],
            Program::Exec(words) => words.clone(),
        }
    }

    /// A [`Command`] for it, with nothing else set.
    pub fn command(&self) -> Command {
        let argv = self.argv();
        let mut command = Command::new(&argv[0]);
        command.args(&argv[1..]);
        command
    }

    /// How a person would type it in a shell: the line itself, or the words
    /// quoted where needed (what `try --save` writes into `locald.toml`).
    pub fn shell_line(&self) -> String {
        match self {
            Program::Shell(line) => line.clone(),
            Program::Exec(words) => shell_join(words),
        }
    }

    /// The name to show for it: the program's file name (`server` for
    /// `./bin/server --port 1`), the shell line's first word for a line.
    pub fn program_name(&self) -> &str {
        let first = match self {
            Program::Shell(line) => line.split_whitespace().next().unwrap_or(""),
            Program::Exec(words) => words.first().map(String::as_str).unwrap_or(""),
        };
        first.rsplit('/').next().unwrap_or(first)
    }
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shell_line())
    }
}

/// One shell line from words, each quoted only where a shell would read it
/// otherwise.
pub fn shell_join<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|word| shell_quote(word.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `word` as a shell reads it back: as it is when it is only safe characters,
/// else in single quotes (a `'` inside written `'\''`).
pub fn shell_quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        return word.to_string();
    }
    format!("'{}'", word.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn one_word_is_a_shell_line_several_are_an_argv() {
        assert_eq!(
            Program::from_words(words(&["echo $PORT | cat"])),
            Ok(Program::Shell("echo $PORT | cat".into()))
        );
        assert_eq!(
            Program::from_words(words(&["echo", "$PORT"])),
            Ok(Program::Exec(words(&["echo", "$PORT"])))
        );
        assert_eq!(Program::from_words(vec![]), Err(EmptyProgram));
        assert_eq!(Program::exec(vec![]), Err(EmptyProgram));
        assert_eq!(
            Program::exec(words(&["ls"])),
            Ok(Program::Exec(words(&["ls"])))
        );
    }

    #[test]
    fn argv_and_shell_line() {
        let line = Program::Shell("a && b".into());
        assert_eq!(line.argv(), words(&["sh", "-c", "a && b"]));
        assert_eq!(line.shell_line(), "a && b");
        let argv = Program::Exec(words(&["python3", "-m", "http.server", "it's"]));
        assert_eq!(
            argv.argv(),
            words(&["python3", "-m", "http.server", "it's"])
        );
        assert_eq!(argv.shell_line(), r"python3 -m http.server 'it'\''s'");
        assert_eq!(argv.to_string(), argv.shell_line());
    }

    #[test]
    fn commands_run_what_they_say() {
        let out = Program::Shell("printf %s \"$0\"".into())
            .command()
            .output()
            .unwrap();
        assert_eq!(out.stdout, b"sh");
        let out = Program::Exec(words(&["printf", "%s-", "a b", "$c"]))
            .command()
            .output()
            .unwrap();
        assert_eq!(out.stdout, b"a b-$c-");
    }

    #[test]
    fn program_names() {
        assert_eq!(
            Program::Shell("./bin/server --port 1".into()).program_name(),
            "server"
        );
        assert_eq!(
            Program::Exec(words(&["/usr/bin/python3", "x"])).program_name(),
            "python3"
        );
        assert_eq!(Program::Shell("  ".into()).program_name(), "");
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("plain-word_1.2"), "plain-word_1.2");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("$HOME"), "'$HOME'");
        assert_eq!(shell_join(&["echo", "a b"]), "echo 'a b'");
    }
}
