//! The contract between the CLI and the built-in scripts.

use std::collections::BTreeSet;

use clap::Parser;
use rhai::{Dynamic, Map};

use super::{Action, Cli};
use crate::program::Program;
use crate::script::stdlib;

/// One command line per form of every verb that runs a built-in script.
const VERBS: &[&[&str]] = &[
    &["init"],
    &["up"],
    &["down"],
    &["status"],
    &["ps"],
    &["logs"],
    &["start", "web"],
    &["stop"],
    &["restart"],
    &["reload"],
    &["dashboard"],
    &["try", "--", "python3 -m http.server $PORT"],
    &["run", "web", "--", "true"],
    &["run", "--detach", "web", "--", "true"],
    &[
        "exec", "-it", "-e", "A=1", "-w", "dir", "-u", "nobody", "web", "--", "ps",
    ],
    &["task"],
    &["task", "test", "--release"],
    &["compile"],
    &["build"],
    &[
        "build",
        "app",
        "--builder",
        "b",
        "-b",
        "bp",
        "-e",
        "A=1",
        "--tag",
        "t",
        "--verbose",
    ],
    &["container", "run", "alpine"],
    &["image", "pull", "alpine"],
    &["image", "ls"],
    &["image", "rm", "alpine"],
    &["image", "prune"],
    &["image", "import", "dir"],
    &["service", "add", "container", "redis", "--name", "cache"],
    &["service", "add", "command", "--name", "web", "--", "serve"],
];

fn call(words: &[&str]) -> (&'static str, Map) {
    let cli = Cli::try_parse_from(std::iter::once(&"locald").chain(words))
        .unwrap_or_else(|e| panic!("{words:?}: {e}"));
    match cli.command.action() {
        Ok(Action::Verb(name, args)) => (name, args),
        Ok(_) => panic!("{words:?} runs no built-in script"),
        Err(e) => panic!("{words:?}: {e}"),
    }
}

/// The keys a script reads: every `args.KEY` in its source, comments
/// included (a script may state a key it has no use for, as `container-run`
/// does `args.rm`).
fn keys_read(source: &str) -> BTreeSet<String> {
    let access = regex::Regex::new(r"\bargs\.([A-Za-z_][A-Za-z0-9_]*)").expect("regex");
    access
        .captures_iter(source)
        .map(|c| c[1].to_string())
        .collect()
}

#[test]
fn every_verb_gives_exactly_the_keys_its_script_reads() {
    let mut scripts_run = BTreeSet::new();
    for words in VERBS {
        let (name, args) = call(words);
        let source = stdlib::get(name).unwrap_or_else(|| panic!("no script {name}"));
        let given: BTreeSet<String> = args.keys().map(|k| k.to_string()).collect();
        assert_eq!(
            given,
            keys_read(source),
            "`locald {}` gives the left keys, stdlib/{name}.rhai reads the right",
            words.join(" ")
        );
        scripts_run.insert(name);
    }
    // A script no verb runs would have its contract unchecked.
    let every_script: BTreeSet<&str> = stdlib::SCRIPTS.iter().map(|(name, _)| *name).collect();
    assert_eq!(scripts_run, every_script);
}

#[test]
fn absent_options_are_unit_and_given_ones_keep_their_type() {
    let (_, args) = call(&["logs"]);
    assert!(args["since"].is_unit());
    assert!(
        args["lines"].is_unit(),
        "100, or all with --since: the primitive decides"
    );
    assert_eq!(args["follow"].as_bool(), Ok(false));
    assert_eq!(args["timestamps"].as_bool(), Ok(false));
    let (_, args) = call(&["logs", "web", "db", "--since", "10m", "-t"]);
    let services: Vec<String> = args["services"].clone().into_typed_array().expect("names");
    assert_eq!(services, ["web", "db"]);
    assert_eq!(args["since"].clone().into_string().as_deref(), Ok("10m"));
    assert_eq!(args["timestamps"].as_bool(), Ok(true));
    for verb in ["start", "stop", "restart"] {
        let (_, args) = call(&[verb, "web", "db"]);
        let services: Vec<String> = args["services"].clone().into_typed_array().expect("names");
        assert_eq!(services, ["web", "db"], "{verb}");
    }
    assert!(
        Cli::try_parse_from(["locald", "start"]).is_err(),
        "start needs a service"
    );
    let (_, args) = call(&["up", "-d", "--wait", "--timeout", "5", "web", "db"]);
    assert_eq!(args["detach"].as_bool(), Ok(true));
    assert_eq!(args["timeout"].clone().into_string().as_deref(), Ok("5"));
    let services: Vec<String> = args["services"]
        .clone()
        .into_typed_array()
        .expect("an array of names");
    assert_eq!(services, ["web", "db"]);
    let (_, args) = call(&[
        "service",
        "add",
        "container",
        "redis",
        "--name",
        "cache",
        "--port",
        "6379",
    ]);
    assert_eq!(args["port"].as_int(), Ok(6379));
    assert!(args["command"].is_unit());
    let (_, args) = call(&["container", "run", "alpine"]);
    assert_eq!(args["pull"].clone().into_string().as_deref(), Ok("missing"));
    let (_, args) = call(&["container", "run", "--pull", "never", "alpine"]);
    assert_eq!(args["pull"].clone().into_string().as_deref(), Ok("never"));
}

fn program(value: &Dynamic) -> Program {
    value.clone().try_cast::<Program>().expect("a Program")
}

#[test]
fn command_words_are_a_program() {
    // One word after `--` is a shell line; several are an argv.
    let (_, args) = call(&["run", "web", "--", "psql -p $PORT"]);
    assert_eq!(
        program(&args["command"]),
        Program::Shell("psql -p $PORT".into())
    );
    let (_, args) = call(&["try", "--", "echo", "a b"]);
    assert_eq!(
        program(&args["command"]),
        Program::Exec(vec!["echo".into(), "a b".into()])
    );
    let (_, args) = call(&["service", "add", "command", "--name", "w", "--", "serve"]);
    assert_eq!(program(&args["command"]), Program::Shell("serve".into()));
    assert!(args["image"].is_unit(), "a host service has no image");
    // `container run` follows Docker: the words are the argv, one word
    // included, and none leaves the image's command.
    let (_, args) = call(&["container", "run", "alpine", "true"]);
    assert_eq!(
        program(&args["command"]),
        Program::Exec(vec!["true".into()])
    );
    let (_, args) = call(&["container", "run", "alpine"]);
    assert!(args["command"].is_unit());
}

#[test]
fn container_run_passes_rm() {
    let (_, args) = call(&["container", "run", "--rm", "alpine"]);
    assert_eq!(args["rm"].as_bool(), Ok(true));
    let (_, args) = call(&["container", "run", "alpine"]);
    assert_eq!(args["rm"].as_bool(), Ok(false));
}

#[test]
fn a_task_script_gets_its_words_as_argv() {
    let cli = Cli::try_parse_from(["locald", "script", "t.rhai", "a", "--b"]).expect("parses");
    let Ok(Action::File(path, args)) = cli.command.action() else {
        panic!("not a task script");
    };
    assert_eq!(path, std::path::Path::new("t.rhai"));
    assert_eq!(
        args.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
        ["argv"]
    );
    let argv: Vec<String> = args["argv"].clone().into_typed_array().expect("words");
    assert_eq!(argv, ["a", "--b"]);
}

#[test]
fn task_words_after_the_name_are_its_arguments_as_given() {
    let words =
        |args: &Map| -> Vec<String> { args["argv"].clone().into_typed_array().expect("words") };
    let (name, args) = call(&["task"]);
    assert_eq!(name, "task");
    assert!(args["name"].is_unit());
    assert!(words(&args).is_empty());
    let (_, args) = call(&["task", "test", "--release", "-p", "a b", "--", "x"]);
    assert_eq!(args["name"].clone().into_string().as_deref(), Ok("test"));
    assert_eq!(words(&args), ["--release", "-p", "a b", "--", "x"]);
    let (_, args) = call(&["task", "lint", "--help", "-C", "dir"]);
    assert_eq!(
        words(&args),
        ["--help", "-C", "dir"],
        "locald's own flags after the name are the task's"
    );
    assert!(
        Cli::try_parse_from(["locald", "task", "--help"]).is_err(),
        "help of `task`"
    );
}
