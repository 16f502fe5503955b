//! Supervisor primitives: bring a project up, ask the running supervisor
//! about its services, and steer them.

use std::time::Duration;

use rhai::plugin::*;
use rhai::{Array, Map};

use crate::control::Client;
use crate::script::handles::ProjectHandle;
use crate::supervisor::{self, UpOptions};

/// `up` options from a script map: `detach`, `wait`, `timeout` (a duration
/// string or seconds), `services` (array of names).
pub fn up_options(map: &Map) -> Result<UpOptions, String> {
    let mut opts = UpOptions {
        detach: false,
        wait: false,
        timeout: None,
        services: Vec::new(),
    };
    for (key, value) in map {
        match key.as_str() {
            "detach" => opts.detach = flag(key, value)?,
            "wait" => opts.wait = flag(key, value)?,
            "timeout" => opts.timeout = duration(value)?,
            "services" => {
                if !value.is_unit() {
                    let names = value
                        .clone()
                        .try_cast::<Array>()
                        .ok_or("`services` must be an array of names")?;
                    opts.services = names.iter().map(|n| n.to_string()).collect();
                }
            }
            other => {
                return Err(format!(
                    "unknown option `{other}` (known: detach, wait, timeout, services)"
                ))
            }
        }
    }
    Ok(opts)
}

fn flag(key: &str, value: &Dynamic) -> Result<bool, String> {
    if value.is_unit() {
        return Ok(false);
    }
    value
        .as_bool()
        .map_err(|_| format!("`{key}` must be true or false"))
}

fn duration(value: &Dynamic) -> Result<Option<Duration>, String> {
    if value.is_unit() {
        return Ok(None);
    }
    if let Ok(secs) = value.as_int() {
        return u64::try_from(secs)
            .map(|s| Some(Duration::from_secs(s)))
            .map_err(|_| "`timeout` must not be negative".to_string());
    }
    let text = value.to_string();
    // A bare number is seconds, as durations in locald.toml are.
    if let Ok(secs) = text.trim().parse::<u64>() {
        return Ok(Some(Duration::from_secs(secs)));
    }
    humantime::parse_duration(&text)
        .map(Some)
        .map_err(|e| format!("`timeout`: invalid duration `{text}`: {e}"))
}

/// A client of the project's running supervisor, or a clear error.
pub fn connect(project: &ProjectHandle) -> Result<Client, String> {
    match Client::connect(&project.0.state_dir()) {
        Ok(Some(client)) => Ok(client),
        Ok(None) => Err(format!(
            "no supervisor is running for project `{}` (start one with `locald up -d`)",
            project.0.name
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// The status shown for a service when no supervisor runs.
pub fn not_running(name: &str) -> supervisor::ServiceStatus {
    supervisor::ServiceStatus {
        name: name.to_string(),
        state: "stopped".to_string(),
        pid: None,
        port: None,
        restarts: 0,
        exit_code: None,
        since_unix_ms: 0,
    }
}

pub fn check_service(project: &ProjectHandle, name: &str) -> Result<(), String> {
    project.service(name).map(|_| ()).map_err(|e| e.to_string())
}

/// Sends one command to the project's running supervisor, after checking that
/// `service` (when given) is one of the project's.
pub fn steer(
    project: &ProjectHandle,
    service: Option<&str>,
    command: impl FnOnce(&mut Client) -> Result<(), supervisor::SupervisorError>,
) -> Result<(), String> {
    if let Some(name) = service {
        check_service(project, name)?;
    }
    let mut client = connect(project)?;
    command(&mut client).map_err(|e| e.to_string())
}

#[export_module]
pub mod supervisor_api {
    use rhai::{Array, Map};

    use crate::script::api::fail;
    use crate::script::handles::ProjectHandle;

    /// Runs the project's services; options `#{ detach, wait, timeout,
    /// services }`. In the foreground, returns when they are stopped; with
    /// `detach`, once the background supervisor is up (and, with `wait`, once
    /// every service is healthy). Returns the exit code for the command.
    #[rhai_fn(return_raw)]
    pub fn up(
        ctx: NativeCallContext,
        project: ProjectHandle,
        options: Map,
    ) -> Result<i64, Box<EvalAltResult>> {
        let opts = super::up_options(&options).map_err(|e| fail(&ctx, e))?;
        for name in &opts.services {
            super::check_service(&project, name).map_err(|e| fail(&ctx, e))?;
        }
        crate::control::up(&project.0, &opts)
            .map(i64::from)
            .map_err(|e| crate::script::throw(&ctx, e))
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
    /// `port`, `restarts`, `exit_code`, `since_unix_ms`).
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

    /// Prints the services' status as a table, or as JSON with `json`. Without
    /// a running supervisor, every service shows as stopped.
    #[rhai_fn(return_raw)]
    pub fn print_status(
        ctx: NativeCallContext,
        project: ProjectHandle,
        json: bool,
    ) -> Result<(), Box<EvalAltResult>> {
        let statuses = match crate::control::Client::connect(&project.0.state_dir())
            .map_err(|e| fail(&ctx, e))?
        {
            Some(mut client) => client.status().map_err(|e| fail(&ctx, e))?,
            None => project
                .0
                .services
                .iter()
                .map(|s| super::not_running(&s.name))
                .collect(),
        };
        crate::control::print_status(&statuses, json);
        Ok(())
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

    /// Stops one service.
    #[rhai_fn(return_raw, name = "stop")]
    pub fn stop(
        ctx: NativeCallContext,
        project: ProjectHandle,
        service: &str,
    ) -> Result<(), Box<EvalAltResult>> {
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

    /// Prints the last `lines` lines of a service's log (`()` for all
    /// services), following new lines with `follow`.
    #[rhai_fn(return_raw)]
    pub fn logs(
        ctx: NativeCallContext,
        project: ProjectHandle,
        service: Dynamic,
        lines: i64,
        follow: bool,
    ) -> Result<(), Box<EvalAltResult>> {
        let service = if service.is_unit() {
            None
        } else {
            let name = service.to_string();
            super::check_service(&project, &name).map_err(|e| fail(&ctx, e))?;
            Some(name)
        };
        let lines =
            usize::try_from(lines).map_err(|_| fail(&ctx, "`lines` must not be negative"))?;
        crate::control::print_logs(&project.0.state_dir(), service.as_deref(), lines, follow)
            .map_err(|e| crate::script::throw(&ctx, e))
    }
}
