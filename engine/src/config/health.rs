//! Rules for a service's `health`: a word (`"auto"`, `"none"`, `"tcp"`) or a
//! table with exactly one probe (`http`, `tcp`, `exec`, `log`, `none`) and
//! optional timings, defaulting to `HealthCheck::default()`.

use super::convert::{self, bad_value, wrong_type};
use super::diagnostic::{KeyPath, Problem, Span};
use super::value::{Node, NodeKind};
use crate::model::{HealthCheck, Probe};

/// The words `health` accepts.
pub(crate) const HEALTH_WORDS: &[&str] = &["auto", "none", "tcp"];

/// Keys of a health table; the first five are probe kinds.
pub(crate) const HEALTH_KEYS: &[&str] = &[
    "http",
    "tcp",
    "exec",
    "log",
    "none",
    "status",
    "interval",
    "start_interval",
    "timeout",
    "retries",
    "start_period",
    "settle",
];
const PROBE_KEYS: &[&str] = &["http", "tcp", "exec", "log", "none"];

/// Reads `health` from its node, collecting every problem found.
pub(crate) fn health(node: &Node, path: &KeyPath, problems: &mut Vec<Problem>) -> HealthCheck {
    let mut check = HealthCheck::default();
    match &node.kind {
        NodeKind::Str(_) => match convert::one_of(node, path, HEALTH_WORDS) {
            Ok("none") => check.probe = Probe::None,
            Ok("tcp") => check.probe = Probe::Tcp,
            Ok(_) => check.probe = Probe::Auto,
            Err(problem) => problems.push(problem.with_help(
                "a table selects a probe: { http = \"/healthz\" }, { exec = \"CMD\" }, { log = \"REGEX\" }",
            )),
        },
        NodeKind::Table(entries) => read_table(node, entries, path, &mut check, problems),
        _ => problems.push(
            wrong_type(node, path, "a string or a table")
                .with_help("write \"auto\", \"none\", \"tcp\" or a table such as { http = \"/healthz\" }"),
        ),
    }
    check
}

/// A probe key seen in the table, remembered to check there is exactly one.
struct ProbeSeen<'a> {
    key: &'a str,
    key_span: Option<Span>,
}

fn read_table(
    table_node: &Node,
    entries: &[(String, Node)],
    path: &KeyPath,
    check: &mut HealthCheck,
    problems: &mut Vec<Problem>,
) {
    let mut probes: Vec<ProbeSeen> = Vec::new();
    let mut status: Option<(&Node, u16)> = None;
    for (key, value) in entries {
        if value.is_null() {
            continue;
        }
        let key_path = path.key(key);
        let result = match key.as_str() {
            "http" => convert::non_empty_string(value, &key_path).and_then(|route| {
                if route.starts_with('/') {
                    check.probe = Probe::Http {
                        path: route.to_owned(),
                        status: None,
                    };
                    Ok(())
                } else {
                    Err(bad_value(
                        value,
                        &key_path,
                        format!("the HTTP path \"{route}\" must start with `/`"),
                    )
                    .with_help(format!("write \"/{route}\"")))
                }
            }),
            "tcp" => flag_probe(value, &key_path, "tcp").map(|()| check.probe = Probe::Tcp),
            "none" => flag_probe(value, &key_path, "none").map(|()| check.probe = Probe::None),
            "exec" => convert::non_empty_string(value, &key_path).map(|command| {
                check.probe = Probe::Exec {
                    command: command.to_owned(),
                };
            }),
            "log" => convert::non_empty_string(value, &key_path).and_then(|pattern| {
                validate_pattern(pattern)
                    .map(|()| {
                        check.probe = Probe::Log {
                            pattern: pattern.to_owned(),
                        };
                    })
                    .map_err(|error| bad_value(value, &key_path, format!("invalid regex: {error}")))
            }),
            "status" => convert::integer_in(value, &key_path, 100, 599).map(|code| {
                status = Some((value, code as u16));
            }),
            "interval" => positive_duration(value, &key_path).map(|d| check.interval = d),
            "start_interval" => {
                positive_duration(value, &key_path).map(|d| check.start_interval = d)
            }
            "settle" => convert::duration(value, &key_path).map(|d| check.settle = Some(d)),
            "timeout" => positive_duration(value, &key_path).map(|d| check.timeout = d),
            "start_period" => convert::duration(value, &key_path).map(|d| check.start_period = d),
            "retries" => convert::integer_in(value, &key_path, 0, i64::from(u32::MAX))
                .map(|n| check.retries = n as u32),
            _ => Err(unknown_key(value, &key_path, key)),
        };
        if PROBE_KEYS.contains(&key.as_str()) {
            probes.push(ProbeSeen {
                key,
                key_span: value.key_or_value_span(),
            });
        }
        if let Err(problem) = result {
            problems.push(problem.or_span(value.best_span()));
        }
    }

    match probes.as_slice() {
        [] => problems.push(
            Problem::invalid(path.clone(), "a health table needs a probe")
                .with_span(table_node.best_span())
                .with_help("add one of `http = \"/healthz\"`, `tcp = true`, `exec = \"CMD\"`, `log = \"REGEX\"`, `none = true`"),
        ),
        [_] => {}
        [first, second, ..] => problems.push(
            Problem::invalid(
                path.key(second.key),
                format!("`{}` and `{}` cannot both be set", first.key, second.key),
            )
            .with_span(second.key_span.clone())
            .with_help("a health check has exactly one probe"),
        ),
    }

    if let Some((status_node, code)) = status {
        match &mut check.probe {
            Probe::Http { status, .. } => *status = Some(code),
            _ => problems.push(
                Problem::invalid(path.key("status"), "`status` is only allowed with `http`")
                    .with_span(status_node.key_or_value_span())
                    .with_help("add `http = \"/\"` or remove `status`"),
            ),
        }
    }
}

/// A probe selected by `KEY = true` (`tcp`, `none`); `false` selects nothing.
fn flag_probe(value: &Node, path: &KeyPath, key: &str) -> Result<(), Problem> {
    match value.kind {
        NodeKind::Bool(true) => Ok(()),
        NodeKind::Bool(false) => Err(bad_value(
            value,
            path,
            format!("`{key} = false` selects no probe"),
        )
        .with_help(if key == "none" {
            "to check health, choose a probe: `tcp = true`, `http = \"/healthz\"`, ..."
        } else {
            "to turn health checks off, write health = \"none\""
        })),
        _ => Err(wrong_type(value, path, "`true`")),
    }
}

/// Checks that `pattern` compiles as a regex (the supervisor compiles it
/// again for use), returning the regex crate's reason when it does not.
fn validate_pattern(pattern: &str) -> Result<(), String> {
    regex::Regex::new(pattern)
        .map(drop)
        .map_err(|error| first_line(&error.to_string()))
}

fn positive_duration(node: &Node, path: &KeyPath) -> Result<std::time::Duration, Problem> {
    let duration = convert::duration(node, path)?;
    if duration.is_zero() {
        return Err(bad_value(node, path, "must be longer than zero"));
    }
    Ok(duration)
}

fn unknown_key(value: &Node, path: &KeyPath, key: &str) -> Problem {
    let help = match convert::suggest(key, HEALTH_KEYS.iter().copied()) {
        Some(close) => format!("did you mean `{close}`?"),
        None => format!("a health table takes {}", convert::backticked(HEALTH_KEYS)),
    };
    Problem::unknown_key(path.clone(), Some(help)).with_span(value.key_or_value_span())
}

/// Regex errors span several lines with an ASCII pointer; the message after
/// the pointer is what matters on a one-line diagnostic.
fn first_line(message: &str) -> String {
    message
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or(message)
        .trim()
        .trim_start_matches("error: ")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::rhai_source::lower_map;
    use std::time::Duration;

    fn health_of(rhai_value: &str) -> (HealthCheck, Vec<Problem>) {
        let map: rhai::Map = rhai::Engine::new()
            .eval(&format!("#{{ health: {rhai_value} }}"))
            .unwrap();
        let node = lower_map(&map);
        let mut problems = Vec::new();
        let path = KeyPath::root().key("services").key("web").key("health");
        let check = health(node.get("health").unwrap(), &path, &mut problems);
        (check, problems)
    }

    fn messages(problems: &[Problem]) -> Vec<String> {
        problems
            .iter()
            .map(|p| p.clone().into_field_error().to_string())
            .collect()
    }

    #[test]
    fn words_select_probes() {
        assert_eq!(health_of(r#""tcp""#).0.probe, Probe::Tcp);
        assert_eq!(health_of(r#""none""#).0.probe, Probe::None);
        assert_eq!(health_of(r#""auto""#).0, HealthCheck::default());
        let (_, problems) = health_of(r#""htp""#);
        assert_eq!(
            problems[0].message,
            "expected one of \"auto\", \"none\" or \"tcp\", found \"htp\""
        );
    }

    #[test]
    fn tables_take_one_probe_and_timings() {
        let (check, problems) = health_of(
            r#"#{ http: "/healthz", status: 204, interval: "1s", timeout: 3, retries: 5, start_period: "5s" }"#,
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            check,
            HealthCheck {
                probe: Probe::Http {
                    path: "/healthz".into(),
                    status: Some(204)
                },
                interval: Duration::from_secs(1),
                timeout: Duration::from_secs(3),
                retries: 5,
                start_period: Duration::from_secs(5),
                ..HealthCheck::default()
            }
        );
        let (tcp, _) = health_of(r#"#{ tcp: true, interval: "250ms" }"#);
        assert_eq!(tcp.probe, Probe::Tcp);
        assert_eq!(tcp.interval, Duration::from_millis(250));
        assert_eq!(tcp.timeout, HealthCheck::default().timeout);
        let (log, _) = health_of(r#"#{ log: "ready to accept" }"#);
        assert_eq!(
            log.probe,
            Probe::Log {
                pattern: "ready to accept".into()
            }
        );
        let (exec, _) = health_of(r#"#{ exec: "pg_isready" }"#);
        assert_eq!(
            exec.probe,
            Probe::Exec {
                command: "pg_isready".into()
            }
        );
    }

    #[test]
    fn settle_and_start_interval_fit_every_form() {
        let (none, problems) = health_of(r#"#{ none: true, settle: "3s" }"#);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(none.probe, Probe::None);
        assert_eq!(none.settle, Some(Duration::from_secs(3)));
        let (http, problems) =
            health_of(r#"#{ http: "/", settle: 0, start_interval: "50ms", interval: "30s" }"#);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(http.settle, Some(Duration::ZERO));
        assert_eq!(http.start_interval, Duration::from_millis(50));
        assert_eq!(http.interval, Duration::from_secs(30));
        // Unset, the probe's default applies (decided by the supervisor).
        assert_eq!(health_of(r#""none""#).0.settle, None);
        assert_eq!(
            messages(&health_of(r#"#{ none: false }"#).1),
            ["services.web.health.none: `none = false` selects no probe (to check health, choose a probe: `tcp = true`, `http = \"/healthz\"`, ...)"]
        );
        assert_eq!(
            messages(&health_of(r#"#{ none: true, tcp: true }"#).1),
            ["services.web.health.tcp: `none` and `tcp` cannot both be set (a health check has exactly one probe)"]
        );
        assert_eq!(
            messages(&health_of(r#"#{ tcp: true, start_interval: "0s" }"#).1),
            ["services.web.health.start_interval: must be longer than zero"]
        );
        assert_eq!(
            messages(&health_of(r#"#{ none: true, setle: "1s" }"#).1),
            ["services.web.health.setle: unknown key `setle` (did you mean `settle`?)"]
        );
    }

    #[test]
    fn table_mistakes_are_reported() {
        assert_eq!(
            messages(&health_of(r#"#{ exec: "x", http: "/" }"#).1),
            ["services.web.health.http: `exec` and `http` cannot both be set (a health check has exactly one probe)"]
        );
        assert_eq!(
            messages(&health_of(r#"#{ exec: "x", status: 200 }"#).1),
            ["services.web.health.status: `status` is only allowed with `http` (add `http = \"/\"` or remove `status`)"]
        );
        assert_eq!(
            messages(&health_of(r#"#{ interval: "1s" }"#).1)[0],
            "services.web.health: a health table needs a probe (add one of `http = \"/healthz\"`, `tcp = true`, `exec = \"CMD\"`, `log = \"REGEX\"`, `none = true`)"
        );
        assert_eq!(
            messages(&health_of(r#"#{ log: "(" }"#).1),
            ["services.web.health.log: invalid regex: unclosed group"]
        );
        assert_eq!(
            messages(&health_of(r#"#{ tcp: true, intervall: "1s" }"#).1),
            ["services.web.health.intervall: unknown key `intervall` (did you mean `interval`?)"]
        );
        assert_eq!(
            messages(&health_of(r#"#{ http: "healthz" }"#).1),
            ["services.web.health.http: the HTTP path \"healthz\" must start with `/` (write \"/healthz\")"]
        );
        assert_eq!(
            messages(&health_of(r#"#{ tcp: true, interval: "0s" }"#).1),
            ["services.web.health.interval: must be longer than zero"]
        );
    }
}
