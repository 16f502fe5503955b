//! The control protocol spoken over `.locald/supervisor.sock`: one JSON
//! request per line, one JSON response per line.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How often the supervisor says it is still working on a request it took
/// up (a `working` line), so that a client can bound its wait by silence
/// instead of guessing how long a stop may take. Well under the client's
/// [`super::client::ANSWER_TIMEOUT`] (keep a custom one above it too).
pub const HEARTBEAT: Duration = Duration::from_millis(500);

/// A service's lifecycle state, as shown by `locald status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceState {
    /// Waiting for its dependencies to be healthy.
    Pending,
    /// Its image is being built from source (`build = {...}`) before it starts.
    Building,
    /// Process started, not ready yet, still inside `start_period`.
    Starting,
    /// Process up, `start_period` over, its probe has not passed yet.
    Running,
    /// Ready: its probe passed (or it has none).
    Healthy,
    /// Was ready, then failed `retries` probes in a row.
    Unhealthy,
    /// Waiting before the next restart.
    Backoff,
    /// Finished and, by its restart policy, stays down.
    Exited,
    /// Gave up: failed under `restart = never`, or out of `max_restarts`.
    Failed,
    /// Stopped on request (or never selected by `up`).
    Stopped,
}

impl ServiceState {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceState::Pending => "pending",
            ServiceState::Building => "building",
            ServiceState::Starting => "starting",
            ServiceState::Running => "running",
            ServiceState::Healthy => "healthy",
            ServiceState::Unhealthy => "unhealthy",
            ServiceState::Backoff => "backoff",
            ServiceState::Exited => "exited",
            ServiceState::Failed => "failed",
            ServiceState::Stopped => "stopped",
        }
    }

    pub fn parse(text: &str) -> Option<ServiceState> {
        [
            ServiceState::Pending,
            ServiceState::Building,
            ServiceState::Starting,
            ServiceState::Running,
            ServiceState::Healthy,
            ServiceState::Unhealthy,
            ServiceState::Backoff,
            ServiceState::Exited,
            ServiceState::Failed,
            ServiceState::Stopped,
        ]
        .into_iter()
        .find(|state| state.as_str() == text)
    }

    /// Whether a process of the service may be alive in this state.
    pub fn has_process(self) -> bool {
        matches!(
            self,
            ServiceState::Starting
                | ServiceState::Running
                | ServiceState::Healthy
                | ServiceState::Unhealthy
        )
    }
}

/// One service's status, as returned by [`super::Client::status`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub name: String,
    /// pending|building|starting|running|healthy|unhealthy|backoff|exited|failed|stopped
    pub state: String,
    pub pid: Option<u32>,
    pub port: Option<u16>,
    pub restarts: u32,
    /// Runs that failed since the supervisor started the service: exited
    /// with a non-zero status or a signal, could not start, or turned
    /// unhealthy. Only grows, so that a client polling now and then (`up
    /// --wait`) sees a failure that a quick restart has hidden.
    #[serde(default)]
    pub failures: u32,
    pub exit_code: Option<i32>,
    pub since_unix_ms: u64,
    /// Set while locald stops the service's process and waits for it to exit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopping: Option<Stopping>,
    /// The process of the current run, while one may be alive (what `ps`
    /// shows of the service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessInfo>,
}

/// One process locald manages, as `locald ps` shows it: a service's current
/// run, or a one-off run (`run --detach`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// Short (6 hex digits), stable for the life of the process, unique in
    /// the project (one-off runs keep theirs while their log is kept).
    pub id: String,
    /// The service it runs for (a one-off: the service whose world it has).
    pub service: String,
    /// A one-off run rather than the service's own process.
    #[serde(default)]
    pub one_off: bool,
    /// `host` or `container`.
    pub kind: String,
    /// On the host (a container's: its shim's init, PID 1 of its namespace).
    pub pid: Option<u32>,
    pub started_unix_ms: u64,
    /// The service's state (`starting`, `healthy`, …) or, for a one-off,
    /// `running`, `stopping` or `exited`.
    pub state: String,
    /// The command as a person would type it (or the image, for a container
    /// service that runs the image's own command).
    pub command: String,
    /// Set once it has exited (128+N for signal N).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

/// The time now, as the `*_unix_ms` fields hold it.
pub fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}

/// A stop under way: the signal sent, when, and when SIGKILL follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stopping {
    /// The stop signal's name, `SIGTERM` say.
    pub signal: String,
    pub since_unix_ms: u64,
    /// `stop_timeout`: SIGKILL follows this long after the signal.
    pub kill_after_ms: u64,
}

/// A request from a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "lowercase")]
pub enum Request {
    Status,
    /// The dashboard's address (with its token), if it serves one.
    Dashboard,
    Start {
        service: String,
    },
    /// Stop one service (or one-off run, by ID), or every service (in
    /// reverse dependency order).
    Stop {
        service: Option<String>,
    },
    Restart {
        service: String,
    },
    /// Kill what is stopping now of one service, or of all: the second
    /// step of a `stop` or `restart` the person will not wait for.
    Kill {
        service: Option<String>,
    },
    /// Start `command` in `service`'s world as a one-off run under the
    /// supervisor, its output to the logs; answered with its process.
    Run {
        service: String,
        /// (`command` is the request's own tag.)
        program: crate::program::Program,
    },
    /// The processes that run; with `all`, also the finished one-off runs
    /// whose log is kept.
    Ps {
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        all: bool,
    },
    /// Read the project's config again and apply it: start new services,
    /// restart changed ones, stop removed ones.
    Reload,
    /// Stop everything and exit the supervisor. `force`: kill what is still
    /// stopping now, and every later service at once (a second Ctrl-C); sent
    /// beside a `down` under way, or alone.
    Down {
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        force: bool,
    },
    /// Answer once `services` are ready, one fails, or `timeout_ms` passes
    /// (see [`super::wait`]). `services`: those not stopped when the wait
    /// begins, when not given. `baseline`: the counters a failure is counted
    /// from (a service missing: from zero); those of when the wait begins,
    /// when not given.
    Wait {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        services: Option<Vec<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        baseline: Option<super::wait::Baseline>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
    },
}

/// What a reload changed, by service name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadReport {
    /// New services, started.
    pub added: Vec<String>,
    /// Services whose definition (or a port they refer to) changed: replaced,
    /// and started again unless they were stopped.
    pub changed: Vec<String>,
    /// Services no longer declared: stopped and forgotten.
    pub removed: Vec<String>,
}

/// The supervisor's answer to one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    /// An interim line: the request is being carried out, the answer follows.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub working: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `error` is a rendered config diagnostic (a reload of a config with
    /// errors), which clients show whole, not after `error: `.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub diagnostic: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<Vec<ServiceStatus>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reload: Option<ReloadReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processes: Option<Vec<ProcessInfo>>,
    /// The answer to [`Request::Dashboard`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboard: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<super::wait::WaitOutcome>,
}

impl Response {
    pub fn done() -> Self {
        Response {
            ok: true,
            working: false,
            error: None,
            diagnostic: false,
            services: None,
            reload: None,
            processes: None,
            wait: None,
            dashboard: None,
        }
    }

    pub fn dashboard(url: Option<String>) -> Self {
        Response {
            dashboard: url,
            ..Response::done()
        }
    }

    pub fn failed(message: impl Into<String>) -> Self {
        Response {
            ok: false,
            error: Some(message.into()),
            ..Response::done()
        }
    }

    /// A refusal, said as the error says it; a config diagnostic is marked
    /// as one.
    pub fn refused(error: &super::actor::ControlError) -> Self {
        Response {
            diagnostic: error.is_diagnostic(),
            ..Response::failed(error.to_string())
        }
    }

    pub fn statuses(services: Vec<ServiceStatus>) -> Self {
        Response {
            services: Some(services),
            ..Response::done()
        }
    }

    /// The interim line sent every [`HEARTBEAT`] while a request runs.
    pub fn working() -> Self {
        Response {
            working: true,
            ..Response::done()
        }
    }

    pub fn processes(processes: Vec<ProcessInfo>) -> Self {
        Response {
            processes: Some(processes),
            ..Response::done()
        }
    }

    pub fn waited(outcome: super::wait::WaitOutcome) -> Self {
        Response {
            wait: Some(outcome),
            ..Response::done()
        }
    }

    pub fn reloaded(report: ReloadReport) -> Self {
        Response {
            reload: Some(report),
            ..Response::done()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_one_line_json() {
        let request = Request::Stop { service: None };
        let line = serde_json::to_string(&request).unwrap();
        assert_eq!(line, r#"{"command":"stop","service":null}"#);
        assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), request);
        let start: Request =
            serde_json::from_str(r#"{"command":"start","service":"web"}"#).unwrap();
        // A `down` from a client without `force` is a plain one.
        let down: Request = serde_json::from_str(r#"{"command":"down"}"#).unwrap();
        assert_eq!(down, Request::Down { force: false });
        assert_eq!(
            serde_json::to_string(&Request::Down { force: true }).unwrap(),
            r#"{"command":"down","force":true}"#
        );
        assert_eq!(
            start,
            Request::Start {
                service: "web".into()
            }
        );
        // A wait with nothing given asks for the defaults.
        let wait: Request = serde_json::from_str(r#"{"command":"wait"}"#).unwrap();
        assert_eq!(
            wait,
            Request::Wait {
                services: None,
                baseline: None,
                timeout_ms: None
            }
        );
    }

    #[test]
    fn responses_omit_empty_fields() {
        assert_eq!(
            serde_json::to_string(&Response::done()).unwrap(),
            r#"{"ok":true}"#
        );
        let failed: Response = serde_json::from_str(r#"{"ok":false,"error":"no"}"#).unwrap();
        assert_eq!(failed, Response::failed("no"));
    }
}
