//! Health probes: one attempt of a service's configured check (TCP connect,
//! HTTP/1.0 GET, or a shell command), bounded by the probe timeout. The
//! `log` probe is not polled: [`super::output`] raises readiness when a line
//! matches.
//!
//! A TCP or HTTP probe passes only when the port is answered by the service
//! itself: a listener that belongs to another process (a server left over
//! from yesterday, another project's) would otherwise make a service that
//! never listens look healthy ([`Ownership`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::launch;
use crate::model::{HealthCheck, PortSpec, Probe, Project, Service};
use crate::program::Program;
use crate::project::listeners::{self, Holder};

/// Why one probe attempt failed (the text a service's `unhealthy: …` event shows).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("tcp 127.0.0.1:{port}: {source}")]
    Tcp { port: u16, source: std::io::Error },
    #[error("GET {url}: {source}")]
    HttpIo { url: String, source: std::io::Error },
    #[error("GET {url}: not an HTTP response")]
    NotHttp { url: String },
    #[error("GET {url}: status {status}")]
    HttpStatus { url: String, status: u16 },
    #[error("exec `{command}`: {source}")]
    ExecIo {
        command: String,
        source: std::io::Error,
    },
    /// `detail` is the last line the command wrote to stderr, if any.
    #[error("exec `{command}` exited with {code}{}{detail}", if detail.is_empty() { "" } else { ": " })]
    ExecFailed {
        command: String,
        code: i32,
        detail: String,
    },
    #[error("timed out after {}", humantime::format_duration(*.timeout))]
    TimedOut { timeout: Duration },
    /// The port answered, but not from the service's processes.
    #[error(
        "port {port} is answered by {}, not by this service",
        holder.as_ref().map_or_else(|| "another process".to_string(), Holder::to_string)
    )]
    NotOurs { port: u16, holder: Option<Holder> },
}

/// A probe with everything it needs to run resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum ResolvedProbe {
    /// Ready once started; never polled.
    None,
    Tcp {
        port: u16,
    },
    Http {
        port: u16,
        path: String,
        status: Option<u16>,
    },
    Exec {
        command: String,
        env: BTreeMap<String, String>,
        workdir: PathBuf,
    },
    /// Ready when an output line matches; never polled.
    Log {
        pattern: String,
    },
}

impl ResolvedProbe {
    /// Whether the probe is polled on an interval.
    pub fn is_polled(&self) -> bool {
        !matches!(self, ResolvedProbe::None | ResolvedProbe::Log { .. })
    }
}

/// How long `check`'s process must have stayed up before it counts as ready:
/// what the config says, else [`HealthCheck::DEFAULT_SETTLE`] without a
/// probe (nothing else tells a process that crashes at once from one that
/// runs) and nothing with one (the probe passing is the evidence).
pub fn settle(check: &HealthCheck, probe: &ResolvedProbe) -> Duration {
    check.settle.unwrap_or(match probe {
        ResolvedProbe::None => HealthCheck::DEFAULT_SETTLE,
        _ => Duration::ZERO,
    })
}

/// Resolve `Auto`: TCP when something depends on the service or its port is
/// fixed (someone expects it to listen), otherwise no probe.
pub fn resolve(
    project: &Project,
    service: &Service,
    port: u16,
    env: &BTreeMap<String, String>,
) -> ResolvedProbe {
    match &service.health.probe {
        Probe::Auto => {
            let expected_to_listen = !project.dependents_of(&service.name).is_empty()
                || matches!(service.port, PortSpec::Fixed(_));
            if expected_to_listen {
                ResolvedProbe::Tcp { port }
            } else {
                ResolvedProbe::None
            }
        }
        Probe::None => ResolvedProbe::None,
        Probe::Tcp => ResolvedProbe::Tcp { port },
        Probe::Http { path, status } => ResolvedProbe::Http {
            port,
            path: path.clone(),
            status: *status,
        },
        Probe::Exec { command } => ResolvedProbe::Exec {
            command: command.clone(),
            env: env.clone(),
            workdir: service.workdir.clone(),
        },
        Probe::Log { pattern } => ResolvedProbe::Log {
            pattern: pattern.clone(),
        },
    }
}

/// Whose answer a TCP or HTTP probe accepts: a listener held by the
/// service's process (`root`) or one of its descendants (for a container,
/// everything in it runs below the service's process on the host). Remembers
/// the last foreign holder found, so that a squatted port costs one scan of
/// every process per change of its listeners, not one per probe.
pub struct Ownership {
    root: u32,
    foreign: Option<(BTreeSet<u64>, Option<Holder>)>,
}

impl Ownership {
    pub fn new(root: u32) -> Self {
        Ownership {
            root,
            foreign: None,
        }
    }

    /// `Ok` when a listener on `port` belongs to the service.
    fn verify(&mut self, port: u16) -> Result<(), ProbeError> {
        // Unreadable tables: nothing to go on, and nothing to blame.
        let Ok(sockets) = listeners::listening_sockets(port) else {
            return Ok(());
        };
        if listeners::held_within(self.root, &sockets) {
            return Ok(());
        }
        let holder = match &self.foreign {
            Some((known, holder)) if *known == sockets => holder.clone(),
            _ => {
                let holder = listeners::holder_of(&sockets);
                self.foreign = Some((sockets, holder.clone()));
                holder
            }
        };
        Err(ProbeError::NotOurs { port, holder })
    }
}

/// Run one probe attempt; `Err` says why it failed. With `ownership`, a TCP
/// or HTTP probe fails when the port is answered by another process.
pub async fn check(
    probe: &ResolvedProbe,
    ownership: Option<&mut Ownership>,
    timeout: Duration,
) -> Result<(), ProbeError> {
    let attempt = async {
        match probe {
            ResolvedProbe::None | ResolvedProbe::Log { .. } => Ok(()),
            ResolvedProbe::Tcp { port } => TcpStream::connect((Ipv4Addr::LOCALHOST, *port))
                .await
                .map(drop)
                .map_err(|source| ProbeError::Tcp {
                    port: *port,
                    source,
                }),
            ResolvedProbe::Http { port, path, status } => http_check(*port, path, *status).await,
            ResolvedProbe::Exec {
                command,
                env,
                workdir,
            } => exec_check(command, env, workdir).await,
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(())) => match (probe, ownership) {
            // Checked after the answer: the listener was there just now.
            (ResolvedProbe::Tcp { port } | ResolvedProbe::Http { port, .. }, Some(ownership)) => {
                ownership.verify(*port)
            }
            _ => Ok(()),
        },
        Ok(Err(error)) => Err(error),
        Err(_) => Err(ProbeError::TimedOut { timeout }),
    }
}

async fn http_check(port: u16, path: &str, expected: Option<u16>) -> Result<(), ProbeError> {
    let url = format!("http://127.0.0.1:{port}{path}");
    let io_error = |source| ProbeError::HttpIo {
        url: url.clone(),
        source,
    };
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
        .await
        .map_err(io_error)?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: locald\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(io_error)?;
    // Only the status line matters; read until its end (bounded).
    let mut head = Vec::with_capacity(256);
    let mut buffer = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < 4096 {
        let read = stream.read(&mut buffer).await.map_err(io_error)?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(&buffer[..read]);
    }
    let Some(status) = parse_status_line(&head) else {
        return Err(ProbeError::NotHttp { url });
    };
    let accepted = match expected {
        Some(expected) => status == expected,
        None => (200..400).contains(&status),
    };
    if accepted {
        Ok(())
    } else {
        Err(ProbeError::HttpStatus { url, status })
    }
}

/// The status code of `HTTP/1.x NNN reason`.
fn parse_status_line(head: &[u8]) -> Option<u16> {
    let line = head.split(|byte| *byte == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/") {
        return None;
    }
    parts.next()?.parse().ok()
}

async fn exec_check(
    command: &str,
    env: &BTreeMap<String, String>,
    workdir: &PathBuf,
) -> Result<(), ProbeError> {
    let io_error = |source| ProbeError::ExecIo {
        command: command.to_string(),
        source,
    };
    let mut process = Program::Shell(command.to_string()).command();
    process
        .env_clear()
        .envs(env)
        .current_dir(workdir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    launch::die_with_supervisor(&mut process);
    let mut child = tokio::process::Command::from(process)
        .kill_on_drop(true)
        .spawn()
        .map_err(io_error)?;
    // The probe's own group: a timeout (which drops this future) must not
    // leave its children behind.
    let group = child.id();
    let _reaper = GroupKiller(group);
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr).await;
    }
    let status = child.wait().await.map_err(io_error)?;
    if status.success() {
        Ok(())
    } else {
        Err(ProbeError::ExecFailed {
            command: command.to_string(),
            code: launch::exit_code(status),
            detail: stderr.lines().last().unwrap_or("").trim().to_string(),
        })
    }
}

/// Kills a probe's process group when the probe ends, however it ends.
struct GroupKiller(Option<u32>);

impl Drop for GroupKiller {
    fn drop(&mut self) {
        if let Some(group) = self.0 {
            let _ = launch::signal_group(group, libc::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::env::tests::{project, service};
    use tokio::net::TcpListener;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    const TIMEOUT: Duration = Duration::from_secs(2);

    #[test]
    fn auto_is_tcp_only_when_someone_expects_a_port() {
        let root = std::path::Path::new("/tmp");
        let db = service("db", "true", root);
        let mut web = service("web", "true", root);
        web.depends_on = vec!["db".into()];
        let mut fixed = service("fixed", "true", root);
        fixed.port = PortSpec::Fixed(9000);
        let project = project(root, vec![db.clone(), web.clone(), fixed.clone()]);
        let env = BTreeMap::new();
        assert_eq!(
            resolve(&project, &db, 1, &env),
            ResolvedProbe::Tcp { port: 1 }
        );
        assert_eq!(resolve(&project, &web, 2, &env), ResolvedProbe::None);
        assert_eq!(
            resolve(&project, &fixed, 9000, &env),
            ResolvedProbe::Tcp { port: 9000 }
        );
    }

    #[test]
    fn tcp_probe_sees_a_listener() {
        runtime().block_on(async {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
            let port = listener.local_addr().unwrap().port();
            assert!(check(&ResolvedProbe::Tcp { port }, None, TIMEOUT)
                .await
                .is_ok());
            drop(listener);
            assert!(check(&ResolvedProbe::Tcp { port }, None, TIMEOUT)
                .await
                .is_err());
        });
    }

    #[test]
    fn a_port_answered_by_another_process_fails_the_probe_naming_it() {
        runtime().block_on(async {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let probe = ResolvedProbe::Tcp { port };
            // This process holds the listener: it is its own service.
            let mut ours = Ownership::new(std::process::id());
            assert!(check(&probe, Some(&mut ours), TIMEOUT).await.is_ok());
            // A child of ours (a service that never listens) does not.
            let mut child = std::process::Command::new("sleep")
                .arg("30")
                .spawn()
                .unwrap();
            let mut theirs = Ownership::new(child.id());
            let error = check(&probe, Some(&mut theirs), TIMEOUT)
                .await
                .unwrap_err();
            let me = std::process::id();
            assert!(
                matches!(&error, ProbeError::NotOurs { holder: Some(holder), .. } if holder.pid == me),
                "{error:?}"
            );
            assert!(
                error
                    .to_string()
                    .starts_with(&format!("port {port} is answered by ")),
                "{error}"
            );
            assert!(error.to_string().ends_with(&format!("(pid {me}), not by this service")));
            // The same listeners again: the holder is remembered.
            let again = check(&probe, Some(&mut theirs), TIMEOUT).await.unwrap_err();
            assert_eq!(again.to_string(), error.to_string());
            child.kill().unwrap();
            child.wait().unwrap();
        });
    }

    #[test]
    fn settle_defaults_to_a_second_only_without_a_probe() {
        let check = HealthCheck::default();
        assert_eq!(settle(&check, &ResolvedProbe::None), Duration::from_secs(1));
        assert_eq!(
            settle(&check, &ResolvedProbe::Tcp { port: 1 }),
            Duration::ZERO
        );
        let configured = HealthCheck {
            settle: Some(Duration::from_secs(3)),
            ..HealthCheck::default()
        };
        assert_eq!(
            settle(&configured, &ResolvedProbe::Tcp { port: 1 }),
            Duration::from_secs(3)
        );
        let none = HealthCheck {
            settle: Some(Duration::ZERO),
            ..HealthCheck::default()
        };
        assert_eq!(settle(&none, &ResolvedProbe::None), Duration::ZERO);
    }

    async fn serve_once(listener: &TcpListener, response: &'static str) -> String {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = vec![0u8; 1024];
        let read = socket.read(&mut request).await.unwrap();
        socket.write_all(response.as_bytes()).await.unwrap();
        String::from_utf8_lossy(&request[..read]).to_string()
    }

    #[test]
    fn http_probe_checks_the_status() {
        runtime().block_on(async {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let probe = |status| ResolvedProbe::Http {
                port,
                path: "/health".into(),
                status,
            };
            let (any_status, only_201) = (probe(None), probe(Some(201)));
            let (request, result) = tokio::join!(
                serve_once(&listener, "HTTP/1.1 204 No Content\r\n\r\n"),
                check(&any_status, None, TIMEOUT)
            );
            assert!(request.starts_with("GET /health HTTP/1.0\r\n"), "{request}");
            assert!(result.is_ok());
            let (_, result) = tokio::join!(
                serve_once(&listener, "HTTP/1.0 503 Busy\r\n\r\n"),
                check(&any_status, None, TIMEOUT)
            );
            assert!(result.unwrap_err().to_string().contains("503"));
            let (_, result) = tokio::join!(
                serve_once(&listener, "HTTP/1.0 200 OK\r\n\r\n"),
                check(&only_201, None, TIMEOUT)
            );
            assert!(result.is_err());
        });
    }

    #[test]
    fn exec_probe_uses_exit_status_env_and_timeout() {
        runtime().block_on(async {
            let env = BTreeMap::from([("WANT".to_string(), "yes".to_string())]);
            let probe = |command: &str| ResolvedProbe::Exec {
                command: command.into(),
                env: env.clone(),
                workdir: std::env::temp_dir(),
            };
            assert!(check(&probe("test \"$WANT\" = yes"), None, TIMEOUT)
                .await
                .is_ok());
            let error = check(&probe("echo nope >&2; exit 3"), None, TIMEOUT)
                .await
                .unwrap_err()
                .to_string();
            assert!(error.contains("exited with 3: nope"), "{error}");
            let started = std::time::Instant::now();
            let error = check(&probe("sleep 5"), None, Duration::from_millis(200))
                .await
                .unwrap_err()
                .to_string();
            assert!(error.contains("timed out"), "{error}");
            assert!(started.elapsed() < Duration::from_secs(2));
        });
    }
}
