//! The service schema: the one table of keys a service accepts and how each is
//! read into `model::Service`. Both `locald.toml` and `service(name, #{...})`
//! in Rhai go through `build_service`.

use std::path::Path;

use super::convert::{self, bad_value, wrong_type};
use super::diagnostic::{KeyPath, Problem};
use super::health;
use super::value::{Node, NodeKind};
use crate::model::{PortSpec, RestartMode, Service};

pub use crate::model::{DEFAULT_STOP_SIGNAL, DEFAULT_STOP_TIMEOUT};

/// The words `restart` accepts.
pub(crate) const RESTART_WORDS: &[&str] = &["on-failure", "always", "never"];

/// Reads one key's value into the service being built.
type ApplyKey = fn(&Node, &KeyPath, &Path, &mut Service, &mut Vec<Problem>);

/// One key a service accepts.
pub(crate) struct KeyRule {
    pub name: &'static str,
    apply: ApplyKey,
}

/// Every key a service accepts, in documentation order.
pub(crate) const SERVICE_KEYS: &[KeyRule] = &[
    KeyRule {
        name: "command",
        apply: apply_command,
    },
    KeyRule {
        name: "image",
        apply: apply_image,
    },
    KeyRule {
        name: "build",
        apply: super::build::apply_build,
    },
    KeyRule {
        name: "workdir",
        apply: apply_workdir,
    },
    KeyRule {
        name: "env",
        apply: apply_env,
    },
    KeyRule {
        name: "env_file",
        apply: apply_env_file,
    },
    KeyRule {
        name: "port",
        apply: apply_port,
    },
    KeyRule {
        name: "depends_on",
        apply: apply_depends_on,
    },
    KeyRule {
        name: "health",
        apply: apply_health,
    },
    KeyRule {
        name: "restart",
        apply: apply_restart,
    },
    KeyRule {
        name: "max_restarts",
        apply: apply_max_restarts,
    },
    KeyRule {
        name: "stop_signal",
        apply: apply_stop_signal,
    },
    KeyRule {
        name: "stop_timeout",
        apply: apply_stop_timeout,
    },
    KeyRule {
        name: "volumes",
        apply: apply_volumes,
    },
    KeyRule {
        name: "cap_add",
        apply: apply_cap_add,
    },
    KeyRule {
        name: "cap_drop",
        apply: apply_cap_drop,
    },
    KeyRule {
        name: "security_opt",
        apply: apply_security_opt,
    },
    KeyRule {
        name: "init",
        apply: apply_init,
    },
];

/// Keys that only mean something for a container service, with what they do (for the help).
const CONTAINER_ONLY_KEYS: &[(&str, &str)] = &[
    ("volumes", "volumes are mounted into containers"),
    ("cap_add", "capabilities are granted to containers"),
    ("cap_drop", "capabilities are taken from containers"),
    ("security_opt", "security options confine containers"),
    ("init", "an init runs as a container's PID 1"),
];

/// Names of the keys a service accepts.
pub(crate) fn service_key_names() -> impl Iterator<Item = &'static str> + Clone {
    SERVICE_KEYS.iter().map(|rule| rule.name)
}

/// Validates service `name` declared by `node` (a table) at `path`
/// (`services.NAME`) and builds it, with relative paths resolved against
/// `base_dir`. Returns every problem found.
pub(crate) fn build_service(
    name: &str,
    node: &Node,
    path: &KeyPath,
    base_dir: &Path,
) -> Result<Service, Vec<Problem>> {
    let mut problems = Vec::new();
    if !convert::is_service_name(name) {
        problems.push(
            Problem::standalone(path.clone(), format!("invalid service name `{name}`"))
                .with_span(node.key_or_value_span())
                .with_help(convert::SERVICE_NAME_RULE),
        );
    }
    let Some(entries) = node.as_table() else {
        problems.push(wrong_type(node, path, "a table").with_help(format!(
            "declare the service as a table: [services.{name}] with command = \"...\""
        )));
        return Err(problems);
    };

    let mut service = defaults(name, base_dir);
    for (key, value) in entries {
        if value.is_null() {
            continue;
        }
        let key_path = path.key(key);
        match SERVICE_KEYS.iter().find(|rule| rule.name == key) {
            Some(rule) => {
                let before = problems.len();
                (rule.apply)(value, &key_path, base_dir, &mut service, &mut problems);
                for problem in &mut problems[before..] {
                    if problem.span.is_none() {
                        problem.span = value.best_span();
                    }
                }
            }
            None => problems.push(unknown_service_key(key, value, key_path)),
        }
    }

    super::build::check_build(node, path, base_dir, &mut service, &mut problems);
    if service.command.is_none()
        && service.image.is_none()
        && (problems.is_empty() || !command_or_image_written(entries))
    {
        problems.push(
            Problem::standalone(
                path.clone(),
                format!("service `{name}` has neither `command`, `image` nor `build`"),
            )
            .with_span(node.key_or_value_span())
            .with_help(
                "add `command = \"...\"` to run a program, `image = \"...\"` to run a container, \
                 or `build = \".\"` to build one from source",
            ),
        );
    }
    if service.image.is_none() {
        for (key, what) in CONTAINER_ONLY_KEYS {
            // An empty list asks for nothing; a mistyped value is reported by its reader.
            let Some(value) = node.get(key).filter(|value| match &value.kind {
                NodeKind::Array(items) => !items.is_empty(),
                NodeKind::Bool(on) => *on,
                _ => false,
            }) else {
                continue;
            };
            problems.push(
                Problem::invalid(path.key(key), format!("`{key}` needs a container service"))
                    .with_span(value.key_or_value_span())
                    .with_help(format!(
                        "{what}; set `image` (or `build`), or remove `{key}`"
                    )),
            );
        }
    }

    if problems.is_empty() {
        Ok(service)
    } else {
        Err(problems)
    }
}

/// Whether the table tries to set `command` or `image`, perhaps misspelt.
/// When it does and that failed, the problem has been reported already;
/// saying the service lacks both would only repeat it.
fn command_or_image_written(entries: &[(String, Node)]) -> bool {
    entries.iter().any(|(key, _)| {
        let meant = convert::suggest(key, ["command", "image", "build"]).unwrap_or(key);
        meant == "command" || meant == "image" || meant == "build"
    })
}

fn defaults(name: &str, base_dir: &Path) -> Service {
    Service::new(name, base_dir)
}

fn unknown_service_key(key: &str, value: &Node, path: KeyPath) -> Problem {
    let help = match convert::suggest(key, service_key_names()) {
        Some(close) => format!("did you mean `{close}`?"),
        None => format!(
            "a service takes {}",
            convert::backticked(&service_key_names().collect::<Vec<_>>())
        ),
    };
    Problem::unknown_key(path, Some(help)).with_span(value.key_or_value_span())
}

/// Records the outcome of reading one value.
fn record<T>(result: Result<T, Problem>, problems: &mut Vec<Problem>, store: impl FnOnce(T)) {
    match result {
        Ok(value) => store(value),
        Err(problem) => problems.push(problem),
    }
}

fn apply_command(
    node: &Node,
    path: &KeyPath,
    _: &Path,
    service: &mut Service,
    problems: &mut Vec<Problem>,
) {
    record(convert::non_empty_string(node, path), problems, |command| {
        service.command = Some(command.to_owned())
    });
}

fn apply_image(
    node: &Node,
    path: &KeyPath,
    _: &Path,
    service: &mut Service,
    problems: &mut Vec<Problem>,
) {
    let result = convert::non_empty_string(node, path).and_then(|image| {
        if image.chars().any(char::is_whitespace) {
            Err(bad_value(
                node,
                path,
                format!("\"{image}\" is not an image reference: it contains whitespace"),
            ))
        } else {
            Ok(image)
        }
    });
    record(result, problems, |image| {
        service.image = Some(image.to_owned())
    });
}

fn apply_workdir(
    node: &Node,
    path: &KeyPath,
    base_dir: &Path,
    service: &mut Service,
    problems: &mut Vec<Problem>,
) {
    record(
        convert::relative_path(node, path, base_dir),
        problems,
        |dir| service.workdir = dir,
    );
}

fn apply_env(
    node: &Node,
    path: &KeyPath,
    _: &Path,
    service: &mut Service,
    problems: &mut Vec<Problem>,
) {
    env_table(node, path, &mut service.env, problems);
}

/// An environment table (`env`, and `build`'s `env`): names to strings (integers and
/// booleans written as text), added to `env`.
pub(crate) fn env_table(
    node: &Node,
    path: &KeyPath,
    env: &mut std::collections::BTreeMap<String, String>,
    problems: &mut Vec<Problem>,
) {
    let entries = match convert::table(node, path) {
        Ok(entries) => entries,
        Err(problem) => {
            problems.push(problem.with_help("write env = { NAME = \"value\" }"));
            return;
        }
    };
    for (name, value) in entries {
        let var_path = path.key(name);
        if name.is_empty() || name.contains('=') || name.contains('\0') {
            problems.push(
                Problem::invalid(
                    var_path,
                    format!("`{name}` is not a valid environment variable name"),
                )
                .with_span(value.key_or_value_span())
                .with_help("names cannot be empty or contain `=`"),
            );
            continue;
        }
        let text = match &value.kind {
            NodeKind::Str(s) => s.clone(),
            NodeKind::Int(i) => i.to_string(),
            NodeKind::Bool(b) => b.to_string(),
            NodeKind::Null => continue,
            _ => {
                problems.push(
                    wrong_type(value, &var_path, "a string")
                        .with_help("environment values are strings, integers or booleans"),
                );
                continue;
            }
        };
        if text.contains('\0') {
            problems.push(bad_value(
                value,
                &var_path,
                "environment values cannot contain NUL",
            ));
            continue;
        }
        env.insert(name.clone(), text);
    }
}

fn apply_env_file(
    node: &Node,
    path: &KeyPath,
    base_dir: &Path,
    service: &mut Service,
    problems: &mut Vec<Problem>,
) {
    match convert::one_or_many_strings(node, path) {
        Ok(files) => {
            for (_, item, item_path) in files {
                record(
                    convert::relative_path(item, &item_path, base_dir),
                    problems,
                    |file| service.env_files.push(file),
                );
            }
        }
        Err(problem) => problems.push(problem),
    }
}

fn apply_port(
    node: &Node,
    path: &KeyPath,
    _: &Path,
    service: &mut Service,
    problems: &mut Vec<Problem>,
) {
    let result = convert::integer_in(node, path, 1, i64::from(u16::MAX)).map_err(|problem| {
        if matches!(node.kind, NodeKind::Int(_)) {
            problem.with_help("leave `port` out to let locald pick a free port")
        } else {
            problem
        }
    });
    record(result, problems, |port| {
        service.port = PortSpec::Fixed(port as u16)
    });
}

fn apply_depends_on(
    node: &Node,
    path: &KeyPath,
    _: &Path,
    service: &mut Service,
    problems: &mut Vec<Problem>,
) {
    convert::names_list(node, path, &mut service.depends_on, problems);
}

fn apply_health(
    node: &Node,
    path: &KeyPath,
    _: &Path,
    service: &mut Service,
    problems: &mut Vec<Problem>,
) {
    service.health = health::health(node, path, problems);
}

fn apply_restart(
    node: &Node,
    path: &KeyPath,
    _: &Path,
    service: &mut Service,
    problems: &mut Vec<Problem>,
) {
    record(
        convert::one_of(node, path, RESTART_WORDS),
        problems,
        |word| {
            service.restart.mode = match word {
                "always" => RestartMode::Always,
                "never" => RestartMode::Never,
                _ => RestartMode::OnFailure,
            }
        },
    );
}

fn apply_max_restarts(
    node: &Node,
    path: &KeyPath,
    _: &Path,
    service: &mut Service,
    problems: &mut Vec<Problem>,
) {
    record(
        convert::integer_in(node, path, 0, i64::from(u32::MAX)),
        problems,
        |n| service.restart.max_restarts = Some(n as u32),
    );
}

fn apply_stop_signal(
    node: &Node,
    path: &KeyPath,
    _: &Path,
    service: &mut Service,
    problems: &mut Vec<Problem>,
) {
    record(convert::signal(node, path), problems, |signal| {
        service.stop_signal = signal
    });
}

fn apply_stop_timeout(
    node: &Node,
    path: &KeyPath,
    _: &Path,
    service: &mut Service,
    problems: &mut Vec<Problem>,
) {
    record(convert::duration(node, path), problems, |timeout| {
        service.stop_timeout = timeout
    });
}

fn apply_init(
    node: &Node,
    path: &KeyPath,
    _: &Path,
    service: &mut Service,
    problems: &mut Vec<Problem>,
) {
    match node.kind {
        NodeKind::Bool(on) => service.init = on,
        _ => problems.push(wrong_type(node, path, "true or false")),
    }
}

fn apply_volumes(
    node: &Node,
    path: &KeyPath,
    base_dir: &Path,
    service: &mut Service,
    problems: &mut Vec<Problem>,
) {
    each_item(
        node,
        path,
        problems,
        |item, item_path| convert::volume(item, item_path, base_dir),
        |volume| service.volumes.push(volume),
    );
}

fn apply_cap_add(
    node: &Node,
    path: &KeyPath,
    _: &Path,
    service: &mut Service,
    problems: &mut Vec<Problem>,
) {
    apply_caps(node, path, problems, |name| service.security.add_cap(name));
}

fn apply_cap_drop(
    node: &Node,
    path: &KeyPath,
    _: &Path,
    service: &mut Service,
    problems: &mut Vec<Problem>,
) {
    apply_caps(node, path, problems, |name| service.security.drop_cap(name));
}

/// An array of capability names, each given to `take` (which checks it).
fn apply_caps(
    node: &Node,
    path: &KeyPath,
    problems: &mut Vec<Problem>,
    mut take: impl FnMut(&str) -> Result<(), locald_runtime::CapabilityError>,
) {
    each_item(
        node,
        path,
        problems,
        |item, item_path| {
            convert::string(item, item_path).and_then(|name| {
                take(name).map_err(|error| {
                    bad_value(item, item_path, error.to_string()).with_help(
                        "capability names are those of capabilities(7), e.g. \"NET_RAW\"",
                    )
                })
            })
        },
        |()| {},
    );
}

/// An array whose items are each converted by `convert_item` (with the item's own
/// key path) and kept by `keep`; every bad item is a problem of its own.
fn each_item<T>(
    node: &Node,
    path: &KeyPath,
    problems: &mut Vec<Problem>,
    mut convert_item: impl FnMut(&Node, &KeyPath) -> Result<T, Problem>,
    mut keep: impl FnMut(T),
) {
    let items = match convert::array(node, path) {
        Ok(items) => items,
        Err(problem) => {
            problems.push(problem);
            return;
        }
    };
    for (index, item) in items.iter().enumerate() {
        record(convert_item(item, &path.index(index)), problems, &mut keep);
    }
}

fn apply_security_opt(
    node: &Node,
    path: &KeyPath,
    base_dir: &Path,
    service: &mut Service,
    problems: &mut Vec<Problem>,
) {
    each_item(
        node,
        path,
        problems,
        |item, item_path| convert::security_opt(item, item_path, base_dir),
        |option| service.security.apply(option),
    );
}
