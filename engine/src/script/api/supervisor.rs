//! Supervisor primitives: bring a project up, ask the running supervisor
//! about its services, and steer them.

use std::fmt;
use std::time::Duration;

use rhai::plugin::*;
use rhai::Map;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::options::{self, OptionsError};
use crate::control::Client;
use crate::script::handles::{ProjectHandle, UnknownService};
use crate::supervisor::{self, SupervisorError, UpOptions};

/// Why a supervisor primitive failed.
#[derive(Debug, thiserror::Error)]
pub enum SteerError {
    #[error(transparent)]
    Options(#[from] OptionsError),
    #[error(transparent)]
    UnknownService(#[from] UnknownService),
    #[error("no supervisor is running for project `{project}` (start one with `locald up -d`)")]
    NotRunning { project: String },
    #[error(transparent)]
    Supervisor(#[from] SupervisorError),
    #[error("since: {0}")]
    Since(#[from] crate::control::SinceError),
    #[error(transparent)]
    Target(#[from] super::processes::TargetError),
}

/// The options of `up`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpArgs {
    /// Leave a background supervisor running and return.
    pub detach: bool,
    /// With `detach`: return once every service is healthy.
    pub wait: bool,
    /// Bound for `wait`: a duration (`"30s"`) or a number of seconds.
    pub timeout: Option<Timeout>,
    /// Services to run (with what they depend on); all when empty.
    pub services: Vec<String>,
    /// Serve the dashboard (unless `[dashboard] enabled = false`).
    pub dashboard: bool,
}

impl Default for UpArgs {
    fn default() -> Self {
        UpArgs {
            detach: false,
            wait: false,
            timeout: None,
            services: Vec::new(),
            dashboard: true,
        }
    }
}

impl From<UpArgs> for UpOptions {
    fn from(args: UpArgs) -> Self {
        UpOptions {
            detach: args.detach,
            wait: args.wait,
            timeout: args.timeout.map(|t| t.0),
            services: args.services,
            no_dashboard: !args.dashboard,
        }
    }
}

/// A duration: a string such as `"1m30s"`, or seconds (a bare number,
/// integer or text, is seconds, as durations in locald.toml are; a float
/// is seconds and their fractions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout(pub Duration);

impl<'de> Deserialize<'de> for Timeout {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Seconds;
        impl Visitor<'_> for Seconds {
            type Value = Timeout;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration (\"30s\") or a number of seconds")
            }
            fn visit_i64<E: de::Error>(self, secs: i64) -> Result<Timeout, E> {
                u64::try_from(secs)
                    .map_err(|_| E::custom("must not be negative"))
                    .and_then(|secs| self.visit_u64(secs))
            }
            fn visit_u64<E: de::Error>(self, secs: u64) -> Result<Timeout, E> {
                Ok(Timeout(Duration::from_secs(secs)))
            }
            fn visit_f64<E: de::Error>(self, secs: f64) -> Result<Timeout, E> {
                if secs < 0.0 {
                    return Err(E::custom("must not be negative"));
                }
                Duration::try_from_secs_f64(secs)
                    .map(Timeout)
                    .map_err(|_| E::custom(format!("{secs} is not a number of seconds")))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Timeout, E> {
                if let Ok(secs) = text.trim().parse::<u64>() {
                    return self.visit_u64(secs);
                }
                humantime::parse_duration(text)
                    .map(Timeout)
                    .map_err(|e| E::custom(format!("invalid duration `{text}`: {e}")))
            }
        }
        deserializer.deserialize_any(Seconds)
    }
}

/// The options of `print_logs`; the defaults are `locald logs`'s.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogsOptions {
    /// Only this service's log (with `services`: one more).
    pub service: Option<String>,
    /// Only these services' logs; all services' interleaved when neither
    /// this nor `service` is given.
    pub services: Vec<String>,
    /// How many lines from the end: 100, or every line with `since` (as
    /// `docker logs --since`).
    pub lines: Option<usize>,
    /// Only lines since then: a duration back from now (`"10m"`) or an
    /// RFC 3339 time.
    pub since: Option<String>,
    /// Each line after the time it was written.
    pub timestamps: bool,
    /// Keep printing new lines until interrupted.
    pub follow: bool,
}

/// The options of `logs`: `print_logs`'s, without `follow` and
/// `timestamps` (each line has its `time`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReadLogsOptions {
    pub service: Option<String>,
    pub services: Vec<String>,
    pub lines: Option<usize>,
    pub since: Option<String>,
}

impl Default for ReadLogsOptions {
    fn default() -> Self {
        let LogsOptions {
            service,
            services,
            lines,
            since,
            ..
        } = LogsOptions::default();
        ReadLogsOptions {
            service,
            services,
            lines,
            since,
        }
    }
}

/// The [`LogQuery`](crate::control::LogQuery) of `logs` or `print_logs`,
/// once each service is known to the project and `since` is a time.
fn log_query(
    project: &ProjectHandle,
    options: ReadLogsOptions,
    timestamps: bool,
) -> Result<crate::control::LogQuery, SteerError> {
    let mut names = options.services;
    names.extend(options.service);
    // A name that is no service is a one-off run's ID (or its start).
    let (mut services, mut runs) = (Vec::new(), Vec::new());
    for name in names {
        if project.service(&name).is_ok() {
            services.push(name);
            continue;
        }
        let logged = super::processes::logged_runs(project);
        match super::processes::match_id(logged.iter().map(String::as_str), &name) {
            Ok(Some(id)) => runs.push(id.to_string()),
            Ok(None) => {
                return Err(super::processes::TargetError::Unknown {
                    target: name,
                    services: project.0.services.iter().map(|s| s.name.clone()).collect(),
                    ids: logged,
                }
                .into())
            }
            Err(ids) => {
                return Err(super::processes::TargetError::Ambiguous { target: name, ids }.into())
            }
        }
    }
    let since = options
        .since
        .map(|text| crate::control::since(&text, std::time::SystemTime::now()))
        .transpose()?;
    // Without a count, the last 100 lines, or every line since `since`.
    let lines = options
        .lines
        .unwrap_or(if since.is_some() { usize::MAX } else { 100 });
    Ok(crate::control::LogQuery {
        services,
        runs,
        lines,
        since,
        timestamps,
    })
}

/// The options of `print_status`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatusOptions {
    /// JSON instead of the table.
    pub json: bool,
}

/// A client of the project's running supervisor, or a clear error.
pub fn connect(project: &ProjectHandle) -> Result<Client, SteerError> {
    Client::connect(&project.0.state_dir())?.ok_or_else(|| SteerError::NotRunning {
        project: project.0.name.clone(),
    })
}

/// The status shown for a service when no supervisor runs.
pub fn not_running(name: &str) -> supervisor::ServiceStatus {
    supervisor::ServiceStatus {
        name: name.to_string(),
        state: "stopped".to_string(),
        ..Default::default()
    }
}

/// Sends one command to the project's running supervisor, after checking that
/// `service` (when given) is one of the project's.
pub fn steer(
    project: &ProjectHandle,
    service: Option<&str>,
    command: impl FnOnce(&mut Client) -> Result<(), SupervisorError>,
) -> Result<(), SteerError> {
    if let Some(name) = service {
        project.service(name)?;
    }
    let mut client = connect(project)?;
    Ok(command(&mut client)?)
}

/// `up(project, options)`.
fn up(project: &ProjectHandle, options: Map) -> Result<i64, SteerError> {
    let options: UpOptions = options::read::<UpArgs>("up", options)?.into();
    for name in &options.services {
        project.service(name)?;
    }
    Ok(crate::control::up(&project.0, &options)?.into())
}

/// `print_status(project, options)`: without a running supervisor, every
/// service shows as stopped.
fn print_status(project: &ProjectHandle, options: Map) -> Result<(), SteerError> {
    let StatusOptions { json } = options::read("print_status", options)?;
    let statuses = match Client::connect(&project.0.state_dir())? {
        Some(mut client) => client.status()?,
        None => project
            .0
            .services
            .iter()
            .map(|s| not_running(&s.name))
            .collect(),
    };
    crate::control::print_status(&statuses, json);
    Ok(())
}

/// `logs(project, options)`: array of `#{ service, stream, line, time }`.
fn logs(project: &ProjectHandle, options: Map) -> Result<rhai::Array, SteerError> {
    let query = log_query(project, options::read("logs", options)?, false)?;
    let lines = crate::control::read_logs(&project.0.state_dir(), &query)?;
    Ok(lines
        .into_iter()
        .map(|line| {
            let mut map = Map::new();
            map.insert("service".into(), line.service.into());
            map.insert("stream".into(), line.stream.as_str().into());
            map.insert("line".into(), line.text.into());
            map.insert("time".into(), line.time.into());
            Dynamic::from_map(map)
        })
        .collect())
}

/// `print_logs(project, options)`.
fn print_logs(project: &ProjectHandle, options: Map) -> Result<(), SteerError> {
    let options: LogsOptions = options::read("print_logs", options)?;
    let read = ReadLogsOptions {
        service: options.service,
        services: options.services,
        lines: options.lines,
        since: options.since,
    };
    let query = log_query(project, read, options.timestamps)?;
    Ok(crate::control::print_logs(
        &project.0.state_dir(),
        &query,
        options.follow,
    )?)
}

#[export_module]
pub mod supervisor_api {
    use rhai::{Array, Map};

    use crate::script::api::fail;
    use crate::script::handles::ProjectHandle;

    /// Runs all the project's services in the foreground; returns the exit
    /// code for the command once they are stopped.
    #[rhai_fn(return_raw, name = "up")]
    pub fn up(ctx: NativeCallContext, project: ProjectHandle) -> Result<i64, Box<EvalAltResult>> {
        up_with(ctx, project, Map::new())
    }

    /// Runs the project's services; options `#{ detach, wait, timeout,
    /// services, dashboard }`. In the foreground, returns when they are
    /// stopped; with `detach`, once the background supervisor is up (and,
    /// with `wait`, once every service is healthy). `dashboard: false`
    /// serves no dashboard. Returns the exit code for the command.
    #[rhai_fn(return_raw, name = "up")]
    pub fn up_with(
        ctx: NativeCallContext,
        project: ProjectHandle,
        options: Map,
    ) -> Result<i64, Box<EvalAltResult>> {
        super::up(&project, options).map_err(|e| crate::script::throw(&ctx, e))
    }

    /// The address of the dashboard the project's supervisor serves, with
    /// its token (open it in a browser); `()` when no supervisor runs or it
    /// serves none (`[dashboard] enabled = false`, `up --no-dashboard`).
    #[rhai_fn(return_raw)]
    pub fn dashboard_url(
        ctx: NativeCallContext,
        project: ProjectHandle,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        let url = match crate::control::Client::connect(&project.0.state_dir())
            .map_err(|e| fail(&ctx, e))?
        {
            Some(mut client) => client.dashboard().map_err(|e| fail(&ctx, e))?,
            None => None,
        };
        Ok(url.map_or(Dynamic::UNIT, Dynamic::from))
    }

    /// Opens the project's dashboard in the browser (as `open_url` opens an
    /// address) through a page in the project's private `.locald/`, never
    /// with the address itself: a browser's command line is readable by
    /// every user of the machine, and the address carries the token. False
    /// when no supervisor serves a dashboard or no browser could be started.
    #[rhai_fn(return_raw)]
    pub fn open_dashboard(
        ctx: NativeCallContext,
        project: ProjectHandle,
    ) -> Result<bool, Box<EvalAltResult>> {
        // The page is current only while a supervisor serves the dashboard:
        // it is rewritten, with the new token, by each one that does.
        if dashboard_url(ctx, project.clone())?.is_unit() {
            return Ok(false);
        }
        let page = project
            .0
            .state_dir()
            .join(supervisor::DASHBOARD_OPENER_PAGE);
        Ok(page.is_file() && super::super::terminal::open_file_in_browser(&page))
    }

    /// True when a supervisor runs for the project.
    #[rhai_fn(return_raw)]
    pub fn is_running(
        ctx: NativeCallContext,
        project: ProjectHandle,
    ) -> Result<bool, Box<EvalAltResult>> {
        crate::control::Client::connect(&project.0.state_dir())
            .map(|c| c.is_some())
            .map_err(|e| fail(&ctx, e))
    }

    /// The services' status as an array of maps (`name`, `state`, `pid`,
    /// `port`, `restarts`, `failures`, `exit_code`, `since_unix_ms`).
    #[rhai_fn(return_raw)]
    pub fn status(
        ctx: NativeCallContext,
        project: ProjectHandle,
    ) -> Result<Array, Box<EvalAltResult>> {
        let mut client = super::connect(&project).map_err(|e| fail(&ctx, e))?;
        let statuses = client.status().map_err(|e| fail(&ctx, e))?;
        statuses
            .iter()
            .map(|s| rhai::serde::to_dynamic(s).map_err(|e| fail(&ctx, e)))
            .collect()
    }

    /// Prints the services' status as the `locald status` table.
    #[rhai_fn(return_raw, name = "print_status")]
    pub fn print_status(
        ctx: NativeCallContext,
        project: ProjectHandle,
    ) -> Result<(), Box<EvalAltResult>> {
        print_status_with(ctx, project, Map::new())
    }

    /// Prints the services' status; options `#{ json }` (JSON instead of the
    /// table). Without a running supervisor, every service shows as stopped.
    #[rhai_fn(return_raw, name = "print_status")]
    pub fn print_status_with(
        ctx: NativeCallContext,
        project: ProjectHandle,
        options: Map,
    ) -> Result<(), Box<EvalAltResult>> {
        super::print_status(&project, options).map_err(|e| fail(&ctx, e))
    }

    /// Starts a stopped service in the running supervisor.
    #[rhai_fn(return_raw)]
    pub fn start(
        ctx: NativeCallContext,
        project: ProjectHandle,
        service: &str,
    ) -> Result<(), Box<EvalAltResult>> {
        super::steer(&project, Some(service), |c| c.start(service)).map_err(|e| fail(&ctx, e))
    }

    /// Stops every service (the supervisor keeps running).
    #[rhai_fn(return_raw, name = "stop")]
    pub fn stop_all(
        ctx: NativeCallContext,
        project: ProjectHandle,
    ) -> Result<(), Box<EvalAltResult>> {
        super::steer(&project, None, |c| c.stop(None)).map_err(|e| fail(&ctx, e))
    }

    /// Stops one service, or one process by ID (a one-off run; the ID of a
    /// service's process stops the service), or the start of an ID.
    #[rhai_fn(return_raw, name = "stop")]
    pub fn stop(
        ctx: NativeCallContext,
        project: ProjectHandle,
        service: &str,
    ) -> Result<(), Box<EvalAltResult>> {
        if project.service(service).is_err() {
            return crate::script::api::processes::stop_process(&project, service)
                .map_err(|e| fail(&ctx, e));
        }
        super::steer(&project, Some(service), |c| c.stop(Some(service))).map_err(|e| fail(&ctx, e))
    }

    /// Restarts one service.
    #[rhai_fn(return_raw)]
    pub fn restart(
        ctx: NativeCallContext,
        project: ProjectHandle,
        service: &str,
    ) -> Result<(), Box<EvalAltResult>> {
        super::steer(&project, Some(service), |c| c.restart(service)).map_err(|e| fail(&ctx, e))
    }

    /// Has the running supervisor read the config again and apply it: new
    /// services start, changed ones restart, removed ones stop; the others
    /// keep running. Returns `#{ added, changed, removed }` (arrays of
    /// names). A config error changes nothing and fails with the diagnostics.
    #[rhai_fn(return_raw)]
    pub fn reload(
        ctx: NativeCallContext,
        project: ProjectHandle,
    ) -> Result<Map, Box<EvalAltResult>> {
        let mut client = super::connect(&project).map_err(|e| fail(&ctx, e))?;
        let report = client.reload().map_err(|e| crate::script::throw(&ctx, e))?;
        let names = |list: Vec<String>| -> Dynamic {
            list.into_iter()
                .map(Dynamic::from)
                .collect::<Array>()
                .into()
        };
        let mut map = Map::new();
        map.insert("added".into(), names(report.added));
        map.insert("changed".into(), names(report.changed));
        map.insert("removed".into(), names(report.removed));
        Ok(map)
    }

    /// Stops every service and the supervisor; returns once all are gone.
    /// Returns false when no supervisor was running.
    #[rhai_fn(return_raw)]
    pub fn down(
        ctx: NativeCallContext,
        project: ProjectHandle,
    ) -> Result<bool, Box<EvalAltResult>> {
        match crate::control::Client::connect(&project.0.state_dir()).map_err(|e| fail(&ctx, e))? {
            Some(mut client) => client.down().map(|_| true).map_err(|e| fail(&ctx, e)),
            None => Ok(false),
        }
    }

    /// The last 100 lines of every service's log, merged by time, oldest
    /// first: array of `#{ service, stream, line, time }` (`stream` is
    /// `"stdout"`, `"stderr"` or `"locald"` for locald's own events about the
    /// service; `time` is when it was written, RFC 3339 in UTC).
    #[rhai_fn(return_raw, name = "logs")]
    pub fn logs(
        ctx: NativeCallContext,
        project: ProjectHandle,
    ) -> Result<Array, Box<EvalAltResult>> {
        logs_with(ctx, project, Map::new())
    }

    /// The last lines of the logs as data; options `#{ service, services,
    /// lines, since }` as `print_logs` takes them.
    #[rhai_fn(return_raw, name = "logs")]
    pub fn logs_with(
        ctx: NativeCallContext,
        project: ProjectHandle,
        options: Map,
    ) -> Result<Array, Box<EvalAltResult>> {
        super::logs(&project, options).map_err(|e| crate::script::throw(&ctx, e))
    }

    /// Prints the last 100 lines of every service's log, interleaved.
    #[rhai_fn(return_raw, name = "print_logs")]
    pub fn print_logs(
        ctx: NativeCallContext,
        project: ProjectHandle,
    ) -> Result<(), Box<EvalAltResult>> {
        print_logs_with(ctx, project, Map::new())
    }

    /// Prints logs like `locald logs`; options `#{ service, services, lines,
    /// since, timestamps, follow }` (those services', all interleaved when
    /// not given; the last `lines` (100); only those since `since`, a
    /// duration back from now or an RFC 3339 time; each after its time with
    /// `timestamps`; then new lines as they come with `follow`).
    #[rhai_fn(return_raw, name = "print_logs")]
    pub fn print_logs_with(
        ctx: NativeCallContext,
        project: ProjectHandle,
        options: Map,
    ) -> Result<(), Box<EvalAltResult>> {
        super::print_logs(&project, options).map_err(|e| crate::script::throw(&ctx, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read<T: serde::de::DeserializeOwned>(
        primitive: &'static str,
        source: &str,
    ) -> Result<T, String> {
        options::read(primitive, rhai::Engine::new().eval(source).unwrap())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn up_options_are_read() {
        let options: UpOptions = read::<UpArgs>(
            "up",
            r#"#{ detach: true, wait: true, timeout: "1m30s", services: ["web"] }"#,
        )
        .unwrap()
        .into();
        assert!(options.detach && options.wait);
        assert_eq!(options.timeout, Some(Duration::from_secs(90)));
        assert_eq!(options.services, ["web"]);
        // `()` is not given: what `locald up` passes for flags it did not get.
        let options: UpOptions = read::<UpArgs>("up", "#{ detach: (), timeout: (), services: () }")
            .unwrap()
            .into();
        assert!(!options.detach && options.timeout.is_none() && options.services.is_empty());
        // A bare number is seconds, as text or as a number.
        for timeout in ["20", "\"20\""] {
            let options = read::<UpArgs>("up", &format!("#{{ timeout: {timeout} }}")).unwrap();
            assert_eq!(options.timeout, Some(Timeout(Duration::from_secs(20))));
        }
    }

    #[test]
    fn bad_up_options_are_named() {
        assert_eq!(
            read::<UpArgs>("up", "#{ detatch: true }").unwrap_err(),
            "up: unknown option `detatch` (known: detach, wait, timeout, services, dashboard)"
        );
        assert_eq!(
            read::<UpArgs>("up", "#{ timeout: -1 }").unwrap_err(),
            "up: option `timeout`: must not be negative"
        );
        let error = read::<UpArgs>("up", r#"#{ timeout: "soon" }"#).unwrap_err();
        assert!(
            error.starts_with("up: option `timeout`: invalid duration `soon`"),
            "{error}"
        );
        assert_eq!(
            read::<UpArgs>("up", r#"#{ services: "web" }"#).unwrap_err(),
            "up: option `services`: expected an array, not a string"
        );
    }

    #[test]
    fn logs_and_status_options_are_read() {
        let options: LogsOptions = read("print_logs", "#{}").unwrap();
        assert_eq!(
            (options.service, options.lines, options.follow),
            (None, None, false)
        );
        let options: LogsOptions = read(
            "print_logs",
            r#"#{ service: "web", lines: 5, follow: true }"#,
        )
        .unwrap();
        assert_eq!(
            (options.service.as_deref(), options.lines, options.follow),
            (Some("web"), Some(5), true)
        );
        let options: LogsOptions = read(
            "print_logs",
            r#"#{ services: ["a", "b"], since: "10m", timestamps: true }"#,
        )
        .unwrap();
        assert_eq!(options.services, ["a", "b"]);
        assert_eq!(options.since.as_deref(), Some("10m"));
        assert!(options.timestamps);
        let error = read::<LogsOptions>("print_logs", "#{ lines: -1 }").unwrap_err();
        assert!(error.starts_with("print_logs: option `lines`: "), "{error}");
        assert_eq!(
            read::<LogsOptions>("print_logs", "#{ folow: true }").unwrap_err(),
            "print_logs: unknown option `folow` (known: service, services, lines, since, timestamps, follow)"
        );
        assert!(
            read::<StatusOptions>("print_status", "#{ json: true }")
                .unwrap()
                .json
        );
        assert_eq!(
            read::<StatusOptions>("print_status", "#{ json: 1 }").unwrap_err(),
            "print_status: option `json`: expected true or false, not an integer"
        );
    }
}
