//! A compose file (`compose.yaml`, `docker-compose.yml`): each service with
//! an `image` becomes a container service; what maps is carried over
//! (`command`, `environment`, `env_file`, the port it listens on,
//! `depends_on`, `healthcheck` where a host-side probe can stand for it,
//! bind mounts, `restart`, stop settings, capabilities), and what does not is
//! said in a comment above the service rather than dropped in silence.
//!
//! locald's containers share the host's network: a service answers on the
//! port it listens on inside, so a published port (`"15432:5432"`) becomes
//! `port = 5432`. Compose's variable substitution is applied first, as
//! `docker compose` does (see [`super::interpolate`]).

use std::collections::BTreeSet;
use std::path::Path;

use serde_norway::{Mapping, Value};

use super::interpolate::{interpolate, Problem};
use super::{inline_table, render, service_name, string_array, ImportError, Imported, ServiceOut};
use crate::program::shell_join;

/// Service keys that change nothing for locald, left out without a note.
const IGNORED: &[&str] = &[
    "container_name",
    "labels",
    "logging",
    "expose",
    "platform",
    "pull_policy",
    "tty",
    "stdin_open",
    "networks",
    "network_mode",
];

/// Signals a service may be stopped with (as `stop_signal` in locald.toml).
const STOP_SIGNALS: &[&str] = &[
    "TERM", "INT", "HUP", "QUIT", "USR1", "USR2", "WINCH", "ALRM", "KILL",
];

/// The `locald.toml` for the compose file at `path` (its text `text`), with
/// `vars` for its `${VARIABLES}`.
pub fn from_compose(
    path: &Path,
    text: &str,
    vars: &dyn Fn(&str) -> Option<String>,
) -> Result<Imported, ImportError> {
    let error = |message: String| ImportError::Compose {
        path: path.to_path_buf(),
        message,
    };
    let mut document: Value = serde_norway::from_str(text).map_err(|e| error(e.to_string()))?;
    document.apply_merge().map_err(|e| error(e.to_string()))?;
    let mut unset = Vec::new();
    substitute(&mut document, vars, &mut unset).map_err(|problem| match problem {
        Problem::Required { name, message } => error(format!("${{{name}}} is required: {message}")),
        Problem::Syntax(message) => error(message),
    })?;
    let Some(services) = document.get("services").and_then(Value::as_mapping) else {
        return Err(ImportError::Empty {
            path: path.to_path_buf(),
        });
    };
    let base_dir = path.parent().unwrap_or(Path::new("."));

    // The names first: `depends_on` may only name services that make it.
    let mut names = Vec::new();
    let mut skipped = Vec::new();
    for (name, spec) in services {
        let name = name.as_str().unwrap_or_default();
        let runs_an_image = spec.get("image").and_then(Value::as_str).is_some();
        if runs_an_image {
            names.push((name.to_string(), service_name(name)));
        } else {
            skipped.push(name.to_string());
        }
    }
    let mut notes = Vec::new();
    for name in &skipped {
        let builds = services
            .get(name.as_str())
            .and_then(|spec| spec.get("build"))
            .is_some();
        notes.push(if builds {
            format!(
                "service `{name}` not imported: it is built from source (`build`); build the image, then add it with `image`"
            )
        } else {
            format!("service `{name}` not imported: it has no `image`")
        });
    }
    let mut out = Vec::new();
    let mut fixed_ports: Vec<(u16, String)> = Vec::new();
    for (original, name) in &names {
        let spec = services
            .get(original.as_str())
            .and_then(Value::as_mapping)
            .cloned()
            .unwrap_or_default();
        let service = convert_service(
            original,
            name,
            &spec,
            base_dir,
            &names,
            &mut fixed_ports,
            vars,
        );
        out.push(service);
    }
    if out.is_empty() {
        return Err(ImportError::Empty {
            path: path.to_path_buf(),
        });
    }

    let file_name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut header = vec![
        format!("Made by `locald init` from {file_name}."),
        "locald's containers share the host network: `port` is the port a service listens on,"
            .to_string(),
        "and compose's networks and published ports are not used.".to_string(),
    ];
    if !unset.is_empty() {
        header.push(format!(
            "Not set when imported (compose would use blank strings): {}.",
            unset.join(", ")
        ));
    }
    for note in &notes {
        header.push(note.clone());
    }
    let project_name = document.get("name").and_then(Value::as_str);
    let config_path = path.with_file_name(crate::config::TOML_FILE);
    render(&config_path, &header, project_name, out, notes)
}

/// Applies variable substitution to every string value, as compose does
/// (keys are left alone).
fn substitute(
    value: &mut Value,
    vars: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
) -> Result<(), Problem> {
    match value {
        Value::String(text) if text.contains('$') => {
            *text = interpolate(text, vars, unset)?;
        }
        Value::Sequence(items) => {
            for item in items {
                substitute(item, vars, unset)?;
            }
        }
        Value::Mapping(map) => {
            for (_, item) in map.iter_mut() {
                substitute(item, vars, unset)?;
            }
        }
        Value::Tagged(tagged) => substitute(&mut tagged.value, vars, unset)?,
        _ => {}
    }
    Ok(())
}

/// A scalar as text (compose writes numbers and booleans where strings go).
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// A string, or a list of strings, as a list.
fn one_or_many(value: &Value) -> Vec<String> {
    match value {
        Value::Sequence(items) => items.iter().filter_map(scalar).collect(),
        other => scalar(other).into_iter().collect(),
    }
}

/// A compose command (a string, or a list of words) as one shell line.
fn command_line(value: &Value) -> Option<String> {
    match value {
        Value::Sequence(items) => {
            let words: Vec<String> = items.iter().filter_map(scalar).collect();
            (!words.is_empty()).then(|| shell_join(&words))
        }
        other => scalar(other).filter(|line| !line.trim().is_empty()),
    }
}

/// A compose duration (`1m30s`, `500ms`) as locald writes one.
fn duration(value: &Value) -> Option<String> {
    let text = scalar(value)?;
    let parsed = humantime::parse_duration(text.trim()).ok()?;
    Some(humantime::format_duration(parsed).to_string())
}

#[allow(clippy::too_many_arguments)]
fn convert_service(
    original: &str,
    name: &str,
    spec: &Mapping,
    base_dir: &Path,
    names: &[(String, String)],
    fixed_ports: &mut Vec<(u16, String)>,
    vars: &dyn Fn(&str) -> Option<String>,
) -> ServiceOut {
    let mut service = ServiceOut::new(name);
    if original != name {
        service.note(format!("named `{original}` in the compose file"));
    }
    let get = |key: &str| spec.get(key);
    if let Some(image) = get("image").and_then(Value::as_str) {
        service.set("image", image);
    }
    if get("build").is_some() {
        service.note("`build` not used: locald runs the image");
    }
    if let Some(command) = get("command").and_then(command_line) {
        service.set("command", command);
    }
    if get("entrypoint").is_some() {
        service.note("`entrypoint` not imported: the image's own entrypoint runs");
    }

    let env = environment(get("environment"), vars, &mut service);
    if !env.is_empty() {
        service.set(
            "env",
            inline_table(
                env.iter()
                    .map(|(k, v)| (k.as_str(), v.as_str().into()))
                    .collect(),
            ),
        );
    }
    let env_files = env_files(get("env_file"), base_dir, &mut service);
    if !env_files.is_empty() {
        service.set(
            "env_file",
            if env_files.len() == 1 {
                env_files[0].as_str().into()
            } else {
                string_array(&env_files)
            },
        );
    }

    let port = get("ports").and_then(|ports| listening_port(ports, &mut service));
    let port = port.filter(|port| {
        if let Some((_, other)) = fixed_ports.iter().find(|(taken, _)| taken == port) {
            service.note(format!(
                "listens on port {port}, as `{other}` does: on one host network only one can; `port` left out"
            ));
            return false;
        }
        true
    });
    if let Some(port) = port {
        fixed_ports.push((port, name.to_string()));
        service.set("port", i64::from(port));
    }

    if let Some(depends) = get("depends_on") {
        let wanted: Vec<String> = match depends {
            Value::Mapping(map) => map.keys().filter_map(scalar).collect(),
            other => one_or_many(other),
        };
        let mut kept = Vec::new();
        for dependency in wanted {
            match names.iter().find(|(original, _)| *original == dependency) {
                Some((_, renamed)) => kept.push(renamed.clone()),
                None => service.note(format!(
                    "depended on `{dependency}`, which was not imported"
                )),
            }
        }
        if !kept.is_empty() {
            service.set("depends_on", string_array(&kept));
        }
    }
    if let Some(health) = get("healthcheck").and_then(Value::as_mapping) {
        if let Some(value) = health_check(health, port, &mut service) {
            service.set("health", value);
        }
    }
    if let Some(restart) = get("restart").and_then(scalar) {
        restart_policy(&restart, &mut service);
    }
    if let Some(signal) = get("stop_signal").and_then(scalar) {
        let bare = signal.trim().trim_start_matches("SIG").to_ascii_uppercase();
        if STOP_SIGNALS.contains(&bare.as_str()) {
            service.set("stop_signal", format!("SIG{bare}"));
        } else {
            service.note(format!("`stop_signal: {signal}` not imported (locald stops with TERM, INT, HUP, QUIT, USR1, USR2, WINCH, ALRM or KILL)"));
        }
    }
    if let Some(grace) = get("stop_grace_period").and_then(duration) {
        service.set("stop_timeout", grace);
    }
    let volumes = volumes(get("volumes"), base_dir, &mut service);
    if !volumes.is_empty() {
        service.set("volumes", string_array(&volumes));
    }
    for key in ["cap_add", "cap_drop"] {
        if let Some(caps) = get(key) {
            let caps = one_or_many(caps);
            if !caps.is_empty() {
                service.set(
                    if key == "cap_add" {
                        "cap_add"
                    } else {
                        "cap_drop"
                    },
                    string_array(&caps),
                );
            }
        }
    }
    if let Some(options) = get("security_opt") {
        let mut kept = Vec::new();
        for option in one_or_many(options) {
            // Docker takes `seccomp:…` too.
            let option = option.replacen("seccomp:", "seccomp=", 1);
            if option.starts_with("seccomp=") || option.starts_with("no-new-privileges") {
                kept.push(option);
            } else {
                service.note(format!("`security_opt: {option}` not imported"));
            }
        }
        if !kept.is_empty() {
            service.set("security_opt", string_array(&kept));
        }
    }
    for key in spec.keys() {
        let Some(key) = key.as_str() else { continue };
        if is_handled(key) || IGNORED.contains(&key) || key.starts_with("x-") {
            continue;
        }
        service.note(match key {
            "working_dir" => {
                "`working_dir` not imported: the image's working directory is used".to_string()
            }
            "user" => "`user` not imported: the image's user runs it".to_string(),
            "init" => "`init` not imported: the command runs as the container's PID 1".to_string(),
            "profiles" => "`profiles` not imported: it runs with the other services".to_string(),
            other => format!("`{other}` not imported"),
        });
    }
    service
}

/// Keys [`convert_service`] reads.
fn is_handled(key: &str) -> bool {
    matches!(
        key,
        "image"
            | "build"
            | "command"
            | "entrypoint"
            | "environment"
            | "env_file"
            | "ports"
            | "depends_on"
            | "healthcheck"
            | "restart"
            | "stop_signal"
            | "stop_grace_period"
            | "volumes"
            | "cap_add"
            | "cap_drop"
            | "security_opt"
    )
}

/// `environment` as a map or a `KEY=VALUE` list; a key without a value
/// takes the caller's, as compose does (left out when unset).
fn environment(
    value: Option<&Value>,
    vars: &dyn Fn(&str) -> Option<String>,
    service: &mut ServiceOut,
) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, Option<String>)> = Vec::new();
    match value {
        Some(Value::Mapping(map)) => {
            for (key, value) in map {
                if let Some(key) = scalar(key) {
                    pairs.push((key, scalar(value)));
                }
            }
        }
        Some(Value::Sequence(items)) => {
            for item in items.iter().filter_map(scalar) {
                match item.split_once('=') {
                    Some((key, value)) => pairs.push((key.to_string(), Some(value.to_string()))),
                    None => pairs.push((item, None)),
                }
            }
        }
        _ => {}
    }
    let mut env = Vec::new();
    for (key, value) in pairs {
        match value.or_else(|| vars(&key)) {
            Some(value) => env.push((key, value)),
            None => service.note(format!(
                "`{key}` takes its value from the environment, where it was not set: left out"
            )),
        }
    }
    env
}

/// `env_file` entries that exist (a missing optional one is noted).
fn env_files(value: Option<&Value>, base_dir: &Path, service: &mut ServiceOut) -> Vec<String> {
    let entries: Vec<(String, bool)> = match value {
        Some(Value::Sequence(items)) => items
            .iter()
            .filter_map(|item| match item {
                Value::Mapping(map) => Some((
                    map.get("path").and_then(scalar)?,
                    map.get("required").and_then(Value::as_bool).unwrap_or(true),
                )),
                other => scalar(other).map(|path| (path, true)),
            })
            .collect(),
        Some(other) => scalar(other).map(|path| (path, true)).into_iter().collect(),
        None => Vec::new(),
    };
    let mut kept = Vec::new();
    for (file, required) in entries {
        if base_dir.join(&file).is_file() {
            kept.push(file);
        } else {
            let what = if required {
                "missing"
            } else {
                "missing (optional)"
            };
            service.note(format!("env_file `{file}` is {what}: left out"));
        }
    }
    kept
}

/// The port the container listens on: the target of its first published
/// port. Others are noted.
fn listening_port(ports: &Value, service: &mut ServiceOut) -> Option<u16> {
    let Value::Sequence(items) = ports else {
        return None;
    };
    let mut targets = Vec::new();
    for item in items {
        let (target, published) = match item {
            Value::Mapping(map) => (
                map.get("target").and_then(scalar),
                map.get("published").and_then(scalar),
            ),
            other => match scalar(other) {
                Some(text) => {
                    // [IP:][PUBLISHED:]TARGET[/PROTOCOL]
                    let text = text.split('/').next().unwrap_or_default().to_string();
                    let mut parts: Vec<&str> = text.rsplitn(2, ':').collect();
                    let target = parts.remove(0).to_string();
                    let published = parts
                        .first()
                        .map(|rest| rest.rsplit(':').next().unwrap_or_default().to_string());
                    (Some(target), published)
                }
                None => (None, None),
            },
        };
        match target.as_deref().map(str::parse::<u16>) {
            Some(Ok(port)) if port > 0 => {
                if let Some(published) =
                    published.filter(|p| !p.is_empty() && *p != port.to_string())
                {
                    service.note(format!(
                        "published on {published} by compose; on the host network it answers on {port}"
                    ));
                }
                targets.push(port);
            }
            _ => service.note(format!(
                "port `{}` not imported (one port number is kept)",
                target.unwrap_or_default()
            )),
        }
    }
    let first = targets.first().copied();
    let others: BTreeSet<u16> = targets.into_iter().skip(1).collect();
    if let (Some(first), false) = (first, others.is_empty()) {
        let others: Vec<String> = others.iter().map(u16::to_string).collect();
        service.note(format!(
            "also listens on {}; `port` is {first}",
            others.join(", ")
        ));
    }
    first
}

/// A probe from a compose `healthcheck`. Compose runs it inside the
/// container, locald's `exec` probes run on the host: an HTTP check of
/// localhost becomes an `http` probe, anything else a `tcp` probe of the
/// service's port (or nothing, said in a note).
fn health_check(
    health: &Mapping,
    port: Option<u16>,
    service: &mut ServiceOut,
) -> Option<toml_edit::Value> {
    if health.get("disable").and_then(Value::as_bool) == Some(true) {
        return Some("none".into());
    }
    let test: Vec<String> = health.get("test").map(one_or_many).unwrap_or_default();
    let command = match test.first().map(String::as_str) {
        Some("NONE") => return Some("none".into()),
        Some("CMD-SHELL") => test.get(1).cloned().unwrap_or_default(),
        Some("CMD") => shell_join(&test[1..]),
        Some(_) if test.len() == 1 => test[0].clone(),
        _ => String::new(),
    };
    let mut entries: Vec<(&str, toml_edit::Value)> = Vec::new();
    match (http_path(&command, port), port) {
        (Some(path), _) => entries.push(("http", path.into())),
        (None, Some(_)) => {
            if !command.is_empty() {
                service.note(format!(
                    "healthcheck `{command}` runs inside the container in compose; locald checks the port instead"
                ));
            }
            entries.push(("tcp", true.into()));
        }
        (None, None) => {
            service.note(format!(
                "healthcheck `{command}` not imported: it runs inside the container in compose, and the service has no port to check"
            ));
            return None;
        }
    }
    for key in ["interval", "start_interval", "timeout", "start_period"] {
        if let Some(value) = health.get(key).and_then(duration) {
            entries.push((key, value.into()));
        }
    }
    if let Some(retries) = health.get("retries").and_then(Value::as_u64) {
        entries.push(("retries", (retries.min(1_000) as i64).into()));
    }
    Some(inline_table(entries))
}

/// The path of a `curl`/`wget` of the service's own port on localhost.
fn http_path(command: &str, port: Option<u16>) -> Option<String> {
    let port = port?;
    if !(command.contains("curl") || command.contains("wget")) {
        return None;
    }
    command.split_whitespace().find_map(|word| {
        let word = word.trim_matches(|c| c == '\'' || c == '"');
        let rest = word
            .strip_prefix("http://")?
            .strip_prefix("localhost")
            .or_else(|| word.strip_prefix("http://127.0.0.1"))?;
        let rest = rest.strip_prefix(&format!(":{port}")).or_else(|| {
            // No port in the URL: 80, which must then be the service's.
            (port == 80 && !rest.starts_with(':')).then_some(rest)
        })?;
        Some(if rest.is_empty() {
            "/".to_string()
        } else {
            rest.to_string()
        })
    })
}

fn restart_policy(restart: &str, service: &mut ServiceOut) {
    let (mode, count) = match restart.split_once(':') {
        Some((mode, count)) => (mode, count.parse::<i64>().ok()),
        None => (restart, None),
    };
    match mode {
        "no" => service.set("restart", "never"),
        "always" | "unless-stopped" => service.set("restart", "always"),
        "on-failure" => {
            service.set("restart", "on-failure");
            if let Some(count) = count {
                service.set("max_restarts", count);
            }
        }
        other => service.note(format!("`restart: {other}` not imported")),
    }
}

/// Bind mounts (`./data:/var/lib/x[:ro]` or the long form); named and
/// anonymous volumes are noted, as locald has none of its own.
fn volumes(value: Option<&Value>, base_dir: &Path, service: &mut ServiceOut) -> Vec<String> {
    let Some(Value::Sequence(items)) = value else {
        return Vec::new();
    };
    let mut kept = Vec::new();
    for item in items {
        let (source, target, read_only) = match item {
            Value::Mapping(map) => {
                let kind = map.get("type").and_then(Value::as_str).unwrap_or("volume");
                let target = map.get("target").and_then(scalar).unwrap_or_default();
                if kind != "bind" {
                    service.note(format!("{kind} mount at `{target}` not imported (locald mounts host directories only)"));
                    continue;
                }
                (
                    map.get("source").and_then(scalar).unwrap_or_default(),
                    target,
                    map.get("read_only")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                )
            }
            other => {
                let Some(text) = scalar(other) else { continue };
                let parts: Vec<&str> = text.split(':').collect();
                match parts.as_slice() {
                    [target] => {
                        service.note(format!("anonymous volume at `{target}` not imported"));
                        continue;
                    }
                    [source, target] => (source.to_string(), target.to_string(), false),
                    [source, target, mode, ..] => (
                        source.to_string(),
                        target.to_string(),
                        mode.split(',').any(|m| m == "ro"),
                    ),
                    [] => continue,
                }
            }
        };
        let is_path = source.starts_with('.') || source.starts_with('/') || source.starts_with('~');
        if !is_path {
            service.note(format!(
                "named volume `{source}` at `{target}` not imported: bind a directory instead, e.g. `./.data/{source}:{target}`"
            ));
            continue;
        }
        let source = match source.strip_prefix('~') {
            Some(rest) => match std::env::var("HOME") {
                Ok(home) => format!("{home}{rest}"),
                Err(_) => {
                    service.note(format!("volume `{source}` not imported: HOME is not set"));
                    continue;
                }
            },
            None => source,
        };
        if !base_dir.join(&source).exists() {
            service.note(format!(
                "volume source `{source}` does not exist yet: create it before `up`"
            ));
        }
        let mode = if read_only { ":ro" } else { "" };
        kept.push(format!("{source}:{target}{mode}"));
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<String> {
        match name {
            "PGPASS" => Some("s3cret".into()),
            "FROM_SHELL" => Some("shell value".into()),
            _ => None,
        }
    }

    fn import(text: &str) -> Imported {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".env.web"), "A=1\n").unwrap();
        std::fs::create_dir(dir.path().join("static")).unwrap();
        from_compose(&dir.path().join("compose.yaml"), text, &vars).unwrap()
    }

    const SHOP: &str = r#"
name: shop
x-common: &common
  restart: unless-stopped
services:
  db:
    <<: *common
    image: postgres:16
    environment:
      POSTGRES_PASSWORD: ${PGPASS}
      POSTGRES_DB: shop
    ports: ["15432:5432"]
    volumes:
      - dbdata:/var/lib/postgresql/data
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U postgres"]
      interval: 5s
      start_interval: 1s
      retries: 5
  web:
    image: nginx:1.27
    command: ["nginx", "-g", "daemon off;"]
    env_file: .env.web
    environment:
      - MODE=${MODE:-dev}
      - FROM_SHELL
      - NOT_SET
    ports:
      - "127.0.0.1:8080:80/tcp"
    depends_on:
      db:
        condition: service_healthy
      app:
        condition: service_started
    healthcheck:
      test: curl -fsS http://localhost/healthz || exit 1
      start_period: 1m30s
    volumes:
      - ./static:/usr/share/nginx/html:ro
    stop_signal: SIGQUIT
    stop_grace_period: 20s
    cap_add: [NET_BIND_SERVICE]
    security_opt: ["seccomp:unconfined", "label:disable"]
    user: "101"
    networks: [front]
  app:
    build: .
"#;

    #[test]
    fn a_typical_compose_file_becomes_container_services() {
        let imported = import(SHOP);
        assert_eq!(imported.services, ["db", "web"]);
        let toml = &imported.toml;
        for line in [
            "[project]\nname = \"shop\"\n",
            "[services.db]\nimage = \"postgres:16\"\nenv = { POSTGRES_PASSWORD = \"s3cret\", POSTGRES_DB = \"shop\" }\nport = 5432\nhealth = { tcp = true, interval = \"5s\", start_interval = \"1s\", retries = 5 }\nrestart = \"always\"\n",
            "command = \"nginx -g 'daemon off;'\"",
            "env = { MODE = \"dev\", FROM_SHELL = \"shell value\" }",
            "env_file = \".env.web\"",
            "port = 80\n",
            "depends_on = [\"db\"]",
            "health = { http = \"/healthz\", start_period = \"1m 30s\" }",
            "stop_signal = \"SIGQUIT\"",
            "stop_timeout = \"20s\"",
            "volumes = [\"./static:/usr/share/nginx/html:ro\"]",
            "cap_add = [\"NET_BIND_SERVICE\"]",
            "security_opt = [\"seccomp=unconfined\"]",
        ] {
            assert!(toml.contains(line), "missing {line:?} in:\n{toml}");
        }
        for note in [
            "# service `app` not imported: it is built from source (`build`)",
            "# published on 15432 by compose; on the host network it answers on 5432",
            "# named volume `dbdata` at `/var/lib/postgresql/data` not imported",
            "# healthcheck `pg_isready -U postgres` runs inside the container in compose",
            "# `NOT_SET` takes its value from the environment, where it was not set: left out",
            "# depended on `app`, which was not imported",
            "# `security_opt: label:disable` not imported",
            "# `user` not imported",
        ] {
            assert!(toml.contains(note), "missing {note:?} in:\n{toml}");
        }
        assert!(!toml.contains("front"), "{toml}");
    }

    #[test]
    fn two_services_on_one_port_keep_it_once() {
        let imported = import(
            "services:\n  a:\n    image: nginx\n    ports: [\"8081:80\"]\n  b:\n    image: nginx\n    ports: [\"8082:80\"]\n",
        );
        assert!(
            imported
                .toml
                .contains("[services.a]\nimage = \"nginx\"\nport = 80\n"),
            "{}",
            imported.toml
        );
        assert!(
            imported.toml.contains("listens on port 80, as `a` does"),
            "{}",
            imported.toml
        );
    }

    #[test]
    fn errors_name_the_file_and_say_what() {
        let path = Path::new("/p/compose.yaml");
        let error = from_compose(path, "services: [", &vars).unwrap_err();
        assert!(
            error.to_string().starts_with("/p/compose.yaml: "),
            "{error}"
        );
        let error =
            from_compose(path, "services:\n  a:\n    image: ${TAG:?set TAG}\n", &vars).unwrap_err();
        assert_eq!(
            error.to_string(),
            "/p/compose.yaml: ${TAG} is required: set TAG"
        );
        let error = from_compose(path, "services:\n  a:\n    build: .\n", &vars).unwrap_err();
        assert_eq!(error.to_string(), "/p/compose.yaml declares no service");
    }

    #[test]
    fn an_alias_bomb_is_refused_quickly() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..12 {
            let previous = (b'a' + level - 1) as char;
            let name = (b'a' + level) as char;
            text.push_str(&format!("{name}: &{name} [*{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}]\n"));
        }
        text.push_str("services: {}\n");
        // 10^12 nodes if expanded: the parser's repetition limit refuses it.
        let error = from_compose(Path::new("/p/compose.yaml"), &text, &vars).unwrap_err();
        assert!(error.to_string().contains("repetition limit"), "{error}");
    }
}
