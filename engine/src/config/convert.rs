//! Typed readers over the value tree: each turns a node into a Rust value
//! (string, port, duration, signal, volume, ...) or a `Problem` that says what
//! was expected, what was found, and how to fix it.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use super::diagnostic::{KeyPath, Problem};
use super::value::{Node, NodeKind};
use crate::model::Volume;

/// "expected X, found Y", pointing at the value.
pub(crate) fn wrong_type(node: &Node, path: &KeyPath, expected: &str) -> Problem {
    Problem::invalid(
        path.clone(),
        format!("expected {expected}, found {}", node.describe()),
    )
    .with_span(node.best_span())
}

/// An invalid value of the right type, pointing at the value.
pub(crate) fn bad_value(node: &Node, path: &KeyPath, message: impl Into<String>) -> Problem {
    Problem::invalid(path.clone(), message).with_span(node.best_span())
}

/// An unknown key of a table that takes `keys` (`what`, such as "[dashboard]", names
/// the table in the help): the nearest key suggested, else the list.
pub(crate) fn unknown_key(
    key: &str,
    value: &Node,
    path: KeyPath,
    keys: &[&str],
    what: &str,
) -> Problem {
    let help = match suggest(key, keys.iter().copied()) {
        Some(close) => format!("did you mean `{close}`?"),
        None => format!("{what} takes {}", backticked(keys)),
    };
    Problem::unknown_key(path, Some(help)).with_span(value.key_or_value_span())
}

pub(crate) fn string<'a>(node: &'a Node, path: &KeyPath) -> Result<&'a str, Problem> {
    match &node.kind {
        NodeKind::Str(s) => Ok(s),
        _ => Err(wrong_type(node, path, "a string")),
    }
}

pub(crate) fn non_empty_string<'a>(node: &'a Node, path: &KeyPath) -> Result<&'a str, Problem> {
    let s = string(node, path)?;
    if s.trim().is_empty() {
        return Err(bad_value(node, path, "must not be empty"));
    }
    Ok(s)
}

pub(crate) fn array<'a>(node: &'a Node, path: &KeyPath) -> Result<&'a [Node], Problem> {
    match &node.kind {
        NodeKind::Array(items) => Ok(items),
        NodeKind::Str(s) => Err(wrong_type(node, path, "an array")
            .with_help(format!("write a list: [{}]", quote_for_help(s)))),
        _ => Err(wrong_type(node, path, "an array")),
    }
}

pub(crate) fn table<'a>(node: &'a Node, path: &KeyPath) -> Result<&'a [(String, Node)], Problem> {
    node.as_table()
        .ok_or_else(|| wrong_type(node, path, "a table"))
}

/// An array of names, none repeated (`depends_on` of a service or a task),
/// appended to `names`.
pub(crate) fn names_list(
    node: &Node,
    path: &KeyPath,
    names: &mut Vec<String>,
    problems: &mut Vec<Problem>,
) {
    let items = match array(node, path) {
        Ok(items) => items,
        Err(problem) => {
            problems.push(problem);
            return;
        }
    };
    for (index, item) in items.iter().enumerate() {
        let item_path = path.index(index);
        match string(item, &item_path) {
            Ok(name) if names.iter().any(|known| known == name) => {
                problems.push(bad_value(
                    item,
                    &item_path,
                    format!("`{name}` is listed twice"),
                ));
            }
            Ok(name) => names.push(name.to_owned()),
            Err(problem) => problems.push(problem),
        }
    }
}

/// A string, or an array of strings (as `env_file` accepts).
pub(crate) fn one_or_many_strings<'a>(
    node: &'a Node,
    path: &KeyPath,
) -> Result<Vec<(&'a str, &'a Node, KeyPath)>, Problem> {
    match &node.kind {
        NodeKind::Str(s) => Ok(vec![(s.as_str(), node, path.clone())]),
        NodeKind::Array(items) => items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                let item_path = path.index(index);
                string(item, &item_path).map(|s| (s, item, item_path))
            })
            .collect(),
        _ => Err(wrong_type(node, path, "a string or an array of strings")),
    }
}

/// An integer in `min..=max`.
pub(crate) fn integer_in(node: &Node, path: &KeyPath, min: i64, max: i64) -> Result<i64, Problem> {
    match &node.kind {
        NodeKind::Int(i) if (min..=max).contains(i) => Ok(*i),
        NodeKind::Int(i) => Err(bad_value(
            node,
            path,
            format!("expected an integer from {min} to {max}, found {i}"),
        )),
        NodeKind::Str(s) if s.trim().parse::<i64>().is_ok() => {
            Err(wrong_type(node, path, "an integer")
                .with_help(format!("write {} without quotes", s.trim())))
        }
        _ => Err(wrong_type(node, path, "an integer")),
    }
}

/// A duration: a string such as "500ms", "2s", "1m", or whole seconds.
pub(crate) fn duration(node: &Node, path: &KeyPath) -> Result<Duration, Problem> {
    match &node.kind {
        NodeKind::Int(seconds) => u64::try_from(*seconds)
            .map(Duration::from_secs)
            .map_err(|_| {
                bad_value(
                    node,
                    path,
                    format!("a duration cannot be negative, found {seconds}"),
                )
            }),
        NodeKind::Str(text) => humantime::parse_duration(text.trim()).map_err(|_| {
            // humantime's own message lists a dozen units; the help is shorter.
            bad_value(node, path, format!("`{text}` is not a duration"))
                .with_help("write a duration such as \"500ms\", \"2s\" or \"1m\"")
        }),
        NodeKind::Float(_) => Err(wrong_type(node, path, "a duration")
            .with_help("write a duration such as \"500ms\", \"2s\" or \"1m\"")),
        _ => Err(wrong_type(
            node,
            path,
            "a duration (\"2s\") or whole seconds",
        )),
    }
}

/// One of a fixed set of words, suggesting the closest on a miss.
pub(crate) fn one_of<'a>(
    node: &'a Node,
    path: &KeyPath,
    choices: &[&str],
) -> Result<&'a str, Problem> {
    let text = string(node, path).map_err(|_| {
        wrong_type(node, path, "a string").with_help(format!("expected one of {}", list(choices)))
    })?;
    if choices.contains(&text) {
        return Ok(text);
    }
    let problem = bad_value(
        node,
        path,
        format!("expected one of {}, found \"{text}\"", list(choices)),
    );
    Err(match suggest(text, choices.iter().copied()) {
        Some(close) => problem.with_help(format!("did you mean \"{close}\"?")),
        None => problem,
    })
}

/// Signals a service may be stopped with, by name without `SIG`.
/// The signals a service may be stopped with: those locald's wrappers
/// (`__service-init`, and `locald-shim` for containers) pass on to the
/// service, and KILL. Any other signal would end the wrapper itself, and the
/// service with it, without the service seeing its stop signal.
const STOP_SIGNALS: &[(&str, i32)] = &[
    ("TERM", libc::SIGTERM),
    ("INT", libc::SIGINT),
    ("HUP", libc::SIGHUP),
    ("QUIT", libc::SIGQUIT),
    ("USR1", libc::SIGUSR1),
    ("USR2", libc::SIGUSR2),
    ("WINCH", libc::SIGWINCH),
    ("ALRM", libc::SIGALRM),
    ("KILL", libc::SIGKILL),
];

fn stop_signal_help() -> String {
    let names: Vec<String> = STOP_SIGNALS
        .iter()
        .map(|(name, number)| format!("{name} ({number})"))
        .collect();
    format!(
        "a service can be stopped with {}: the signals locald passes on to it",
        names.join(", ")
    )
}

/// A stop signal: a name ("INT", "SIGINT", "sigint") or number of one of
/// [`STOP_SIGNALS`].
pub(crate) fn signal(node: &Node, path: &KeyPath) -> Result<i32, Problem> {
    match &node.kind {
        NodeKind::Int(number) => STOP_SIGNALS
            .iter()
            .find(|(_, known)| i64::from(*known) == *number)
            .map(|(_, known)| *known)
            .ok_or_else(|| {
                bad_value(node, path, format!("signal {number} cannot stop a service"))
                    .with_help(stop_signal_help())
            }),
        NodeKind::Str(text) => {
            let upper = text.trim().to_ascii_uppercase();
            let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
            if let Some((_, number)) = STOP_SIGNALS.iter().find(|(name, _)| *name == bare) {
                return Ok(*number);
            }
            if format!("SIG{bare}")
                .parse::<nix::sys::signal::Signal>()
                .is_ok()
            {
                return Err(
                    bad_value(node, path, format!("SIG{bare} cannot stop a service"))
                        .with_help(stop_signal_help()),
                );
            }
            let names = STOP_SIGNALS.iter().map(|(name, _)| *name);
            let problem = bad_value(node, path, format!("unknown signal \"{text}\""));
            Err(match suggest(bare, names) {
                Some(close) => problem.with_help(format!("did you mean \"SIG{close}\"?")),
                None => problem.with_help(stop_signal_help()),
            })
        }
        _ => Err(wrong_type(node, path, "a signal name or number")),
    }
}

#[cfg(test)]
mod stop_signal_tests {
    use super::STOP_SIGNALS;
    use locald_shim_protocol::signals::FORWARDED_SIGNALS;

    #[test]
    fn every_stop_signal_but_kill_is_forwarded_by_the_wrappers() {
        for (name, number) in STOP_SIGNALS {
            let forwarded = FORWARDED_SIGNALS.iter().any(|s| *s as i32 == *number);
            assert!(forwarded || *name == "KILL", "{name} is not forwarded");
        }
    }
}

/// A path relative to the config directory, made absolute.
pub(crate) fn relative_path(
    node: &Node,
    path: &KeyPath,
    base_dir: &Path,
) -> Result<PathBuf, Problem> {
    let text = non_empty_string(node, path)?;
    Ok(resolve(base_dir, text))
}

/// Joins `relative` onto `base`, dropping `.` components so paths read cleanly
/// in logs. `..` is kept: removing it lexically is wrong across symlinks.
pub(crate) fn resolve(base: &Path, relative: &str) -> PathBuf {
    let joined = base.join(relative);
    joined
        .components()
        .filter(|component| !matches!(component, Component::CurDir))
        .collect()
}

/// `HOST:CONTAINER[:ro|rw]`, with HOST relative to the config directory.
pub(crate) fn volume(node: &Node, path: &KeyPath, base_dir: &Path) -> Result<Volume, Problem> {
    use locald_runtime::VolumeSpecError;
    let text = string(node, path)?;
    Volume::parse(text, base_dir).map_err(|error| {
        let help = match &error {
            VolumeSpecError::Shape { .. } => {
                "write HOST:CONTAINER or HOST:CONTAINER:ro, e.g. \"./data:/data\"".to_string()
            }
            VolumeSpecError::Mode { .. } => {
                "the mode is `ro` (read-only) or `rw` (read-write, the default)".to_string()
            }
            VolumeSpecError::RelativeContainer { host, container } => {
                format!("write \"{host}:/{container}\"")
            }
        };
        bad_value(node, path, error.to_string()).with_help(help)
    })
}

/// A `security_opt` item: `seccomp=unconfined`, `seccomp=FILE` (FILE relative to the config
/// directory, read and checked now so a bad profile is reported at its line) or
/// `no-new-privileges[=true|false]`.
pub(crate) fn security_opt(
    node: &Node,
    path: &KeyPath,
    base_dir: &Path,
) -> Result<locald_runtime::SecurityOpt, Problem> {
    use locald_runtime::{SeccompChoice, SecurityOpt};
    let text = string(node, path)?;
    let option = locald_runtime::parse_security_opt(text, Path::new("")).map_err(|error| {
        bad_value(node, path, error.to_string()).with_help(
            "write \"seccomp=unconfined\", \"seccomp=./profile.json\" or \"no-new-privileges=false\"",
        )
    })?;
    match option {
        SecurityOpt::Seccomp(SeccompChoice::Profile(file)) => {
            let file = resolve(base_dir, &file.to_string_lossy());
            locald_runtime::seccomp::load_profile(&file)
                .map_err(|error| bad_value(node, path, error.to_string()))?;
            Ok(SecurityOpt::Seccomp(SeccompChoice::Profile(file)))
        }
        other => Ok(other),
    }
}

/// Whether `name` is a valid service name: `[A-Za-z0-9_][A-Za-z0-9_-]*`, at
/// most [`MAX_SERVICE_NAME`] bytes. A name starting with `-` would read as an
/// option on every command line that names a service (`locald logs -x`), and
/// names become file names and container ids.
pub(crate) fn is_service_name(name: &str) -> bool {
    let valid = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    !name.is_empty()
        && !name.starts_with('-')
        && name.len() <= MAX_SERVICE_NAME
        && name.bytes().all(valid)
}

/// The longest service name: a hostname label's length.
pub(crate) const MAX_SERVICE_NAME: usize = 63;

/// What a valid service name is, for error messages.
pub(crate) const SERVICE_NAME_RULE: &str =
    "service names use letters, digits, `_` and `-`, do not start with `-`, and are at most 63 characters";

/// The candidate closest to `input`, if any is close enough to be a likely typo.
pub(crate) fn suggest<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lowered = input.to_ascii_lowercase();
    let mut best: Option<(f64, &str)> = None;
    for candidate in candidates {
        if candidate.eq_ignore_ascii_case(input) {
            return Some(candidate);
        }
        let score = strsim::jaro_winkler(&lowered, &candidate.to_ascii_lowercase());
        if score >= 0.8 && best.is_none_or(|(top, _)| score > top) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// How many declared services a "declared services: ..." hint names.
const LISTED_SERVICES: usize = 10;

/// `declared services: a, b, c` for a hint, naming at most [`LISTED_SERVICES`]: the hint goes
/// with every unknown service reference, so a full list would make the report grow with the
/// square of the number of services (1.6 MB of errors for 2,000 services, 100+ MB for 16,000).
pub(crate) fn declared_services<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let mut shown = Vec::with_capacity(LISTED_SERVICES);
    let mut count = 0usize;
    for name in names {
        if count < LISTED_SERVICES {
            shown.push(name);
        }
        count += 1;
    }
    let more = count - shown.len();
    if more == 0 {
        format!("declared services: {}", shown.join(", "))
    } else {
        format!("declared services: {}, and {more} more", shown.join(", "))
    }
}

/// `"a", "b" or "c"`
pub(crate) fn list(choices: &[&str]) -> String {
    let quoted: Vec<String> = choices.iter().map(|c| format!("\"{c}\"")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

/// `a`, `b`, `c`
pub(crate) fn backticked(keys: &[&str]) -> String {
    keys.iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn quote_for_help(s: &str) -> String {
    format!("{s:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(kind: NodeKind) -> Node {
        Node::new(kind)
    }

    fn path() -> KeyPath {
        KeyPath::root().key("services").key("web").key("x")
    }

    #[test]
    fn durations_take_strings_and_whole_seconds() {
        let p = path();
        assert_eq!(
            duration(&node(NodeKind::Str("500ms".into())), &p).unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(
            duration(&node(NodeKind::Str("1m".into())), &p).unwrap(),
            Duration::from_secs(60)
        );
        assert_eq!(
            duration(&node(NodeKind::Int(3)), &p).unwrap(),
            Duration::from_secs(3)
        );
        let error = duration(&node(NodeKind::Str("soon".into())), &p).unwrap_err();
        assert!(
            error.message.starts_with("`soon` is not a duration"),
            "{}",
            error.message
        );
        let negative = duration(&node(NodeKind::Int(-1)), &p).unwrap_err();
        assert_eq!(negative.message, "a duration cannot be negative, found -1");
    }

    #[test]
    fn signals_by_name_with_or_without_sig_or_number() {
        let p = path();
        for (text, number) in [
            ("INT", libc::SIGINT),
            ("SIGTERM", libc::SIGTERM),
            ("sighup", libc::SIGHUP),
            ("WINCH", libc::SIGWINCH),
        ] {
            assert_eq!(
                signal(&node(NodeKind::Str(text.into())), &p).unwrap(),
                number,
                "{text}"
            );
        }
        assert_eq!(signal(&node(NodeKind::Int(9)), &p).unwrap(), 9);
        let typo = signal(&node(NodeKind::Str("SIGTREM".into())), &p).unwrap_err();
        assert_eq!(typo.message, "unknown signal \"SIGTREM\"");
        assert_eq!(typo.help.as_deref(), Some("did you mean \"SIGTERM\"?"));
        assert!(signal(&node(NodeKind::Int(0)), &p).is_err());
        // Real signals that the wrappers do not pass on would kill them.
        let pwr = signal(&node(NodeKind::Str("PWR".into())), &p).unwrap_err();
        assert_eq!(pwr.message, "SIGPWR cannot stop a service");
        assert!(pwr.help.unwrap().contains("ALRM (14), KILL (9)"));
        let number = signal(&node(NodeKind::Int(30)), &p).unwrap_err();
        assert_eq!(number.message, "signal 30 cannot stop a service");
    }

    #[test]
    fn volumes_parse_modes_and_resolve_host_paths() {
        let p = path();
        let base = Path::new("/proj");
        let v = volume(&node(NodeKind::Str("./data:/data".into())), &p, base).unwrap();
        assert_eq!(
            v,
            Volume {
                host: "/proj/data".into(),
                container: "/data".into(),
                read_only: false
            }
        );
        let ro = volume(&node(NodeKind::Str("/tmp/x:/x:ro".into())), &p, base).unwrap();
        assert_eq!(
            ro,
            Volume {
                host: "/tmp/x".into(),
                container: "/x".into(),
                read_only: true
            }
        );
        let mode = volume(&node(NodeKind::Str("a:/b:rx".into())), &p, base).unwrap_err();
        assert_eq!(mode.message, "unknown volume mode `rx` in \"a:/b:rx\"");
        let relative = volume(&node(NodeKind::Str("a:b".into())), &p, base).unwrap_err();
        assert_eq!(relative.help.as_deref(), Some("write \"a:/b\""));
        assert!(volume(&node(NodeKind::Str("nocolon".into())), &p, base).is_err());
    }

    #[test]
    fn declared_services_are_listed_up_to_a_bound() {
        assert_eq!(
            declared_services(["a", "b"].into_iter()),
            "declared services: a, b"
        );
        let many: Vec<String> = (0..10_000).map(|i| format!("s{i}")).collect();
        let hint = declared_services(many.iter().map(String::as_str));
        assert_eq!(
            hint,
            "declared services: s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, and 9990 more"
        );
    }

    #[test]
    fn suggestions_find_close_names_only() {
        let keys = ["command", "image", "depends_on"];
        assert_eq!(suggest("comand", keys), Some("command"));
        assert_eq!(suggest("Image", keys), Some("image"));
        assert_eq!(suggest("dependson", keys), Some("depends_on"));
        assert_eq!(suggest("zzz", keys), None);
    }

    #[test]
    fn names_lists_read_naturally() {
        assert_eq!(list(&["a", "b", "c"]), "\"a\", \"b\" or \"c\"");
        assert_eq!(list(&["a"]), "\"a\"");
    }
}
