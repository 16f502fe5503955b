//! The validated project: what `locald.toml` (or `locald.rhai`) declares, after
//! every check has passed. Everything downstream (supervisor, `run`, `try`)
//! works from these types and never from raw configuration.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A project: a name, the directory holding its config, its services in
/// declaration order, and the tasks its config declares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Project {
    pub name: String,
    /// Directory of `locald.toml` / `locald.rhai`; relative paths resolve here.
    pub root: PathBuf,
    pub services: Vec<Service>,
    /// `[tasks]` of `locald.toml` and `task(...)` of `locald.rhai`, in
    /// declaration order (the files `tasks/*.rhai` are found when tasks are
    /// listed or run: `project::tasks`). Not handed to the daemon: it
    /// never runs a task.
    #[serde(skip)]
    pub tasks: Vec<Task>,
    /// The web dashboard its supervisor serves (`[dashboard]`).
    #[serde(default)]
    pub dashboard: DashboardSettings,
}

/// `[dashboard]`: whether the supervisor serves the dashboard, and on which
/// port (a free one, kept across `up`s, when not fixed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DashboardSettings {
    pub enabled: bool,
    pub port: Option<u16>,
}

impl Default for DashboardSettings {
    fn default() -> Self {
        DashboardSettings {
            enabled: true,
            port: None,
        }
    }
}

impl Project {
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    pub fn service_names(&self) -> Vec<&str> {
        self.services.iter().map(|s| s.name.as_str()).collect()
    }

    /// Names of the services that list `name` in their `depends_on`.
    pub fn dependents_of(&self, name: &str) -> Vec<&str> {
        self.services
            .iter()
            .filter(|s| s.depends_on.iter().any(|d| d == name))
            .map(|s| s.name.as_str())
            .collect()
    }

    /// The directory holding the project's runtime state (socket, logs, ports).
    pub fn state_dir(&self) -> PathBuf {
        self.root.join(".locald")
    }
}

/// A task declared in the config: `locald task NAME` runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub name: String,
    /// Shown by `locald task`.
    pub description: Option<String>,
    pub action: TaskAction,
    /// Runs the command in this service's world, as `locald run` does.
    pub service: Option<String>,
    /// Services made healthy first (under a detached supervisor if none runs).
    pub depends_on: Vec<String>,
}

/// What a task runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskAction {
    /// A shell line; the task's arguments are appended, shell-quoted.
    Command(String),
    /// A Rhai script (`tasks/NAME.rhai`, absolute), run as `locald script`
    /// runs one; the task's arguments are its `args.argv`.
    Script(PathBuf),
}

impl Task {
    /// A command task with nothing else set.
    pub fn command(name: &str, line: &str) -> Task {
        Task {
            name: name.to_owned(),
            description: None,
            action: TaskAction::Command(line.to_owned()),
            service: None,
            depends_on: Vec::new(),
        }
    }
}

/// One declared service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    pub name: String,
    /// Shell command (run with `sh -c`). For a container service, replaces the
    /// image's Cmd when set.
    pub command: Option<String>,
    /// OCI image reference for a container service.
    pub image: Option<String>,
    /// Absolute working directory (for a host service).
    pub workdir: PathBuf,
    /// Environment as written; values may hold `${services.NAME.port}` /
    /// `${services.NAME.url}` templates, resolved when the service starts.
    pub env: BTreeMap<String, String>,
    /// Absolute paths of extra dotenv files, loaded in order.
    pub env_files: Vec<PathBuf>,
    pub port: PortSpec,
    pub depends_on: Vec<String>,
    pub health: HealthCheck,
    pub restart: RestartPolicy,
    /// Signal number sent to the service's process group to stop it.
    pub stop_signal: i32,
    pub stop_timeout: Duration,
    /// Container volumes (`HOST:CONTAINER[:ro]`, host path made absolute).
    pub volumes: Vec<Volume>,
    /// Container confinement from `cap_add`, `cap_drop` and `security_opt` (a seccomp profile
    /// path made absolute).
    pub security: locald_runtime::Security,
    /// Run a small init (tini) as the container's PID 1, as `docker run --init`: it forwards
    /// the stop signal to the command and reaps zombies.
    #[serde(default)]
    pub init: bool,
    /// `build`: the image is built from source by Cloud Native Buildpacks (then `image`
    /// is the tag it is built under, see [`built_image_tag`]).
    #[serde(default)]
    pub build: Option<Build>,
}

/// A service's `build`: how its image is built from source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Build {
    /// The absolute source directory (`path`, default the project directory).
    pub path: PathBuf,
    /// The builder image; `None` takes the user config's `[build] builder`.
    pub builder: Option<String>,
    /// Buildpack images or `.cnb` files, in order, replacing the builder's order.
    pub buildpacks: Vec<String>,
    /// The build's environment (`BP_*` and the like), as `/platform/env` files.
    pub env: BTreeMap<String, String>,
}

/// The tag a built service's image is stored under: `locald-build/<project dir
/// name>-<digest>-<service>:latest` ([`built_dir_name`]). Stable per service (the build
/// cache is kept by tag), and different across projects that share service names or
/// directory names.
pub fn built_image_tag(project_dir: &std::path::Path, service: &str) -> String {
    format!(
        "locald-build/{}-{}:latest",
        built_dir_name(project_dir),
        reference_component(service)
    )
}

/// `<dir name>-<digest>`, what is built from the directory `dir` is named after in image
/// references: its name as a reference component (`app` when it has none), then the
/// first 12 hex digits of the SHA-256 of its path. The digest keeps two directories of the
/// same name apart (`~/src/shop` and a clone of someone else's `shop` in `/tmp`): a build
/// starts from the build cache and the previous image of its tag, so a shared tag would
/// let one checkout's buildpacks put their layers into the other's image.
pub fn built_dir_name(dir: &std::path::Path) -> String {
    use sha2::Digest as _;
    use std::os::unix::ffi::OsStrExt as _;
    let name = dir
        .file_name()
        .map(|name| reference_component(&name.to_string_lossy()))
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "app".to_string());
    let digest = sha2::Sha256::digest(dir.as_os_str().as_bytes());
    format!("{name}-{}", &hex::encode(digest)[..12])
}

/// `name` as a path component of an image reference: lowercased, anything else than
/// letters, digits, `.`, `_` and `-` replaced by `-`, and trimmed to start and end with
/// a letter or digit (maybe empty).
pub fn reference_component(name: &str) -> String {
    let name: String = name
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// Signal sent to stop a service when `stop_signal` is not set.
pub const DEFAULT_STOP_SIGNAL: i32 = libc::SIGTERM;
/// How long a stopping service gets before it is killed, when `stop_timeout` is not set.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);

impl Service {
    /// A service named `name` with every default: no command yet, working in
    /// `workdir`, a free port, probed as `health = "auto"`.
    pub fn new(name: &str, workdir: &std::path::Path) -> Service {
        Service {
            name: name.to_owned(),
            command: None,
            image: None,
            workdir: workdir.to_owned(),
            env: BTreeMap::new(),
            env_files: Vec::new(),
            port: PortSpec::Auto,
            depends_on: Vec::new(),
            health: HealthCheck::default(),
            restart: RestartPolicy::default(),
            stop_signal: DEFAULT_STOP_SIGNAL,
            stop_timeout: DEFAULT_STOP_TIMEOUT,
            volumes: Vec::new(),
            security: locald_runtime::Security::default(),
            init: false,
            build: None,
        }
    }

    pub fn is_container(&self) -> bool {
        self.image.is_some()
    }
}

/// Where a service's `$PORT` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PortSpec {
    /// A free port chosen by locald, kept across restarts and `up`s while free.
    Auto,
    /// The port the user fixed in the config.
    Fixed(u16),
}

/// How readiness and liveness of a service are decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub probe: Probe,
    /// Between probes once the service is ready (liveness): slow, so that
    /// probes do not flood the service's own access log.
    pub interval: Duration,
    /// Between probes until the service is first ready: fast, so that
    /// readiness is noticed quickly.
    pub start_interval: Duration,
    pub timeout: Duration,
    /// Consecutive failures after ready before the service counts as unhealthy.
    pub retries: u32,
    /// Failures during this period after start do not count against `retries`.
    pub start_period: Duration,
    /// How long the process must have stayed up before it counts as ready;
    /// `None` is the default of its probe ([`HealthCheck::DEFAULT_SETTLE`]
    /// without a probe, none with one).
    pub settle: Option<Duration>,
}

impl HealthCheck {
    /// Docker probes every 30 s; 10 s notices a hung service sooner while
    /// costing a web service one access-log line per 10 s, not two a second.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
    pub const DEFAULT_START_INTERVAL: Duration = Duration::from_millis(200);
    /// A service without a probe is ready once it has stayed up this long:
    /// long enough for the usual immediate failures (command not found, a
    /// syntax error, a missing module, a bad flag, a config file that does
    /// not parse) to show, short enough not to slow `up --wait` noticeably
    /// (services settle in parallel).
    pub const DEFAULT_SETTLE: Duration = Duration::from_secs(1);
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            probe: Probe::Auto,
            interval: Self::DEFAULT_INTERVAL,
            start_interval: Self::DEFAULT_START_INTERVAL,
            timeout: Duration::from_secs(2),
            retries: 3,
            start_period: Duration::from_secs(0),
            settle: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Probe {
    /// `tcp` when another service depends on this one or its `port` is fixed,
    /// otherwise `none`: gates dependents on a listening port without ever
    /// hanging a worker that does not listen.
    Auto,
    /// Ready once the process has stayed up for the settle time.
    None,
    /// `$PORT` accepts a TCP connection on 127.0.0.1.
    Tcp,
    /// `GET http://127.0.0.1:$PORT{path}` answers with `status` (any 2xx/3xx when unset).
    Http { path: String, status: Option<u16> },
    /// A shell command run with the service's environment exits 0.
    Exec { command: String },
    /// A line of the service's output matches the regex (readiness only).
    Log { pattern: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestartMode {
    OnFailure,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartPolicy {
    pub mode: RestartMode,
    /// Restarts allowed before the service is left failed; `None` is unlimited.
    pub max_restarts: Option<u32>,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            mode: RestartMode::OnFailure,
            max_restarts: None,
        }
    }
}

/// A bind mount for a container service: the runtime's own type, so a
/// volume read from `locald.toml` reaches the container as it was checked.
pub use locald_runtime::VolumeMount as Volume;
