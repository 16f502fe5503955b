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

/// A command to run (sent to the supervisor as `{"shell": LINE}` or
/// `{"exec": [WORDS]}`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
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

    /// The argv that runs it: `sh -c LINE`, or the words. A line that is
    /// one plain word (`true`, `./server`) runs without a shell, as the shell
    /// would run it (bash does the same): one process less, and no shell
    /// start-up, which grows with the environment (dash takes 0.2 s with
    /// 40,000 variables).
    pub fn argv(&self) -> Vec<String> {
        match self {
            Program::Shell(line) if is_plain_command(line) => vec![line.clone()],
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

    /// A service name for it, as a person would pick one (`locald try`
    /// offers it): what is run rather than what runs it. `python3 -m
    /// http.server` is `http-server`, `python3 app.py` is `app`, `npm run
    /// dev` is `dev`, `cargo run --bin api` is `api`, `./bin/web` is `web`.
    pub fn service_name(&self) -> String {
        let words: Vec<&str> = match self {
            // The first command of the line that runs something, past
            // set-up such as `cd web &&`.
            Program::Shell(line) => {
                let words: Vec<&str> = line.split_whitespace().collect();
                words
                    .split(|word| matches!(*word, "&&" | "||" | "|" | ";" | "&"))
                    .find(|command| {
                        !matches!(
                            command.first(),
                            Some(&"cd" | &"export" | &"source" | &"." | &"set") | None
                        )
                    })
                    .unwrap_or_default()
                    .to_vec()
            }
            Program::Exec(words) => words.iter().map(String::as_str).collect(),
        };
        let name = crate::config::import::service_name(&name_from_words(&words));
        if name.is_empty() {
            "app".to_string()
        } else {
            name
        }
    }
}

/// What `words` run, for [`Program::service_name`]: wrappers and
/// interpreters are looked through to the script, module or target.
fn name_from_words(words: &[&str]) -> String {
    // Leading `VAR=value` assignments and wrappers that run the rest.
    let mut words = words;
    while let Some((first, rest)) = words.split_first() {
        let assignment = first.split_once('=').is_some_and(|(key, _)| {
            !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        });
        if assignment || matches!(*first, "exec" | "env" | "nohup" | "time") {
            words = rest;
        } else {
            break;
        }
    }
    let Some((first, rest)) = words.split_first() else {
        return String::new();
    };
    let program = file_name(first);
    let is_interpreter = [
        "python", "node", "ruby", "perl", "php", "deno", "bun", "bash", "sh",
    ]
    .iter()
    .any(|name| {
        program
            .strip_prefix(name)
            .is_some_and(|version| version.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
    });
    match program {
        // Runners of a project's scripts: the script's name.
        "npm" | "yarn" | "pnpm" | "bun" if !rest.is_empty() => {
            let rest = match rest.first() {
                Some(&"run") | Some(&"run-script") => &rest[1..],
                _ => rest,
            };
            first_operand(rest)
                .map(|script| stem(file_name(script)).to_string())
                .unwrap_or_else(|| program.to_string())
        }
        // Wrappers that run another program.
        "npx" | "uv" | "poetry" | "pipenv" | "bundle" | "dotenv" => {
            let rest = match rest.first() {
                Some(&"run") | Some(&"exec") => &rest[1..],
                _ => rest,
            };
            match rest.iter().position(|word| !word.starts_with('-')) {
                Some(at) => name_from_words(&rest[at..]),
                None => program.to_string(),
            }
        }
        "cargo" => flag_value(rest, &["--bin", "-p", "--package", "--example"])
            .map(str::to_string)
            .unwrap_or_else(|| program.to_string()),
        "go" if rest.first() == Some(&"run") => first_operand(&rest[1..])
            .map(|target| file_name(target.trim_end_matches('/')))
            .filter(|name| !name.is_empty() && *name != ".")
            .map(|name| stem(name).to_string())
            .unwrap_or_else(|| program.to_string()),
        _ if is_interpreter => {
            if let Some(module) = flag_value(rest, &["-m"]) {
                return module.replace('.', "-");
            }
            match first_operand(rest) {
                Some(script) if rest.first() != Some(&"-c") => stem(file_name(script)).to_string(),
                _ => program.to_string(),
            }
        }
        // A script by its path: without its extension (`./bin/web.sh`).
        _ if first.contains('/') => stem(program).to_string(),
        _ => program.to_string(),
    }
}

/// The file name of a path (`web` for `./bin/web`).
fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// A file name without its extension (`app` for `app.py`).
fn stem(name: &str) -> &str {
    match name.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => name,
    }
}

/// The first word that is not an option.
fn first_operand<'a>(words: &[&'a str]) -> Option<&'a str> {
    words.iter().copied().find(|word| !word.starts_with('-'))
}

/// The value of the first of `flags` in `words` (`--bin api` or `--bin=api`).
fn flag_value<'a>(words: &[&'a str], flags: &[&str]) -> Option<&'a str> {
    words.iter().enumerate().find_map(|(at, word)| {
        flags.iter().find_map(|flag| {
            if word == flag {
                words.get(at + 1).copied()
            } else {
                word.strip_prefix(flag)?.strip_prefix('=')
            }
        })
    })
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shell_line())
    }
}

/// Whether `line` is one word a shell would run as a program with no
/// argument: only characters without meaning to a shell (no `=`, which
/// would make it an assignment), and not a builtin without a program of
/// its own (`exit`, `cd`, …), which only a shell can run.
fn is_plain_command(line: &str) -> bool {
    const SHELL_ONLY: &[&str] = &[
        ".", ":", "alias", "bg", "break", "cd", "continue", "eval", "exec", "exit", "export", "fc",
        "fg", "getopts", "hash", "jobs", "read", "readonly", "return", "set", "shift", "times",
        "trap", "type", "ulimit", "umask", "unalias", "unset", "wait",
    ];
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./@%+,".contains(c);
    !line.is_empty() && line.chars().all(plain) && !SHELL_ONLY.contains(&line)
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
    fn a_service_name_is_what_runs_not_what_runs_it() {
        let name = |line: &str| Program::Shell(line.into()).service_name();
        assert_eq!(name("python3 -m http.server $PORT"), "http-server");
        assert_eq!(name("python3 app.py"), "app");
        assert_eq!(name("python3 -u src/worker.py --queue x"), "worker");
        assert_eq!(name("npm run dev"), "dev");
        assert_eq!(name("yarn dev"), "dev");
        assert_eq!(name("pnpm run start -- --port $PORT"), "start");
        assert_eq!(name("cargo run --bin api"), "api");
        assert_eq!(name("cargo run -p=worker --release"), "worker");
        assert_eq!(name("go run ./cmd/api"), "api");
        assert_eq!(name("./bin/web --port $PORT"), "web");
        assert_eq!(name("PORT=1 exec node server.js"), "server");
        assert_eq!(name("uv run flask run"), "flask");
        assert_eq!(name("bundle exec rails server"), "rails");
        assert_eq!(name("redis-server --port $PORT"), "redis-server");
        assert_eq!(name("cd web && npm start"), "start");
        assert_eq!(name("bun app.ts"), "app");
        assert_eq!(name("python3 -c 'print(1)'"), "python3");
        assert_eq!(name("node"), "node");
        assert_eq!(name("  "), "app");
        let words = |w: &[&str]| Program::Exec(words(w)).service_name();
        assert_eq!(
            words(&["python3", "-m", "http.server", "8000"]),
            "http-server"
        );
        assert_eq!(words(&["./my app.sh"]), "my-app");
    }

    #[test]
    fn one_plain_word_runs_without_a_shell_as_the_shell_would() {
        assert_eq!(Program::Shell("true".into()).argv(), words(&["true"]));
        assert_eq!(
            Program::Shell("./bin/server".into()).argv(),
            words(&["./bin/server"])
        );
        for line in ["exit", "cd", "FOO=bar", "$SERVER", "a;b", "~/x", "*"] {
            assert_eq!(
                Program::Shell(line.into()).argv(),
                words(&["sh", "-c", line]),
                "{line}"
            );
        }
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
