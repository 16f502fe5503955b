//! The dashboard's routes: the page and its assets, the JSON API the page
//! uses (documented in docs/manual.md), the live event stream, and the
//! controls, which go through the actor as `locald start`/`stop`/`restart`
//! do.
//!
//! | route | what |
//! | --- | --- |
//! | `GET /` | the page |
//! | `GET /api/services` | `{ project, services: [...] }` |
//! | `GET /api/logs?service=NAME&lines=N` | the last lines, oldest first |
//! | `GET /api/events` | server-sent events: `services`, `logs`, `lagged` |
//! | `POST /api/services/NAME/{start,stop,restart}` | one service |
//! | `POST /api/all/{start,stop,restart}` | every service |

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::auth::{Guard, Verdict};
use super::http::{event_stream_head, write_within, Request, Response, WRITE_TIMEOUT};
use crate::model::{Probe, Project};
use crate::project::state_dir::StateDir;
use crate::supervisor::actor::{Control, ControlError, Envelope, Overview};
use crate::supervisor::live::{LiveBatch, LiveLogs};
use crate::supervisor::log_store::{read_logs, LogQuery};
use crate::supervisor::protocol::ServiceStatus;

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");

/// History lines a page may ask for at once.
const MAX_HISTORY: usize = 5000;
/// Live lines are sent in batches this often (fewer, larger writes).
const LOG_FLUSH: Duration = Duration::from_millis(100);
/// Status changes are sent at most this often.
const STATUS_FLUSH: Duration = Duration::from_millis(200);
/// A comment line keeps idle streams (and their proxies) open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Live lines held for one client between flushes; past it they are
/// counted as lost (the page says so, the log files keep them).
const MAX_PENDING_BYTES: usize = 1 << 20;
/// How long a control may take before the page is told to look again.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Site {
    pub guard: Arc<Guard>,
    pub controls: mpsc::Sender<Envelope>,
    pub state: StateDir,
    pub generation: watch::Receiver<u64>,
    pub live: LiveLogs,
}

/// One service as the page shows it.
#[derive(Debug, Serialize)]
struct ServiceView {
    name: String,
    state: String,
    kind: &'static str,
    pid: Option<u32>,
    port: Option<u16>,
    url: Option<String>,
    health: &'static str,
    restarts: u32,
    failures: u32,
    exit_code: Option<i32>,
    since_unix_ms: u64,
    stopping: bool,
}

#[derive(Debug, Serialize)]
struct ServicesView {
    project: String,
    services: Vec<ServiceView>,
}

fn view(overview: &Overview) -> ServicesView {
    let project: &Project = &overview.project;
    ServicesView {
        project: project.name.clone(),
        services: overview
            .statuses
            .iter()
            .map(|status: &ServiceStatus| {
                let service = project.service(&status.name);
                let health = match service.map(|service| &service.health.probe) {
                    Some(Probe::Http { .. }) => "http",
                    Some(Probe::Tcp) => "tcp",
                    Some(Probe::Exec { .. }) => "exec",
                    Some(Probe::Log { .. }) => "log",
                    Some(Probe::Auto) => "auto",
                    Some(Probe::None) | None => "none",
                };
                ServiceView {
                    name: status.name.clone(),
                    state: status.state.clone(),
                    kind: match service.is_some_and(|service| service.is_container()) {
                        true => "container",
                        false => "host",
                    },
                    pid: status.pid,
                    port: status.port,
                    url: status.port.map(|port| format!("http://127.0.0.1:{port}/")),
                    health,
                    restarts: status.restarts,
                    failures: status.failures,
                    exit_code: status.exit_code,
                    since_unix_ms: status.since_unix_ms,
                    stopping: status.stopping.is_some(),
                }
            })
            .collect(),
    }
}

/// Serve one connection: one request.
pub async fn handle(mut stream: TcpStream, site: &Site) {
    let ours = match (stream.local_addr(), stream.peer_addr()) {
        (Ok(local), Ok(peer)) => site.guard.serves(local, peer).await,
        _ => false,
    };
    if !ours {
        let _ = Response::text(403, "this dashboard serves only the user who started it")
            .send(&mut stream)
            .await;
        return;
    }
    let request = match Request::read(&mut stream).await {
        Ok(request) => request,
        Err(error) => {
            tracing::debug!(%error, "dashboard: bad request");
            let _ = Response::text(400, &error.to_string())
                .send(&mut stream)
                .await;
            return;
        }
    };
    let response = match site.guard.check(&request) {
        Verdict::Refused { status, why } => Response::text(status, why),
        Verdict::Allowed => {
            if request.method == "GET" && request.path == "/api/events" {
                events(stream, site).await;
                return;
            }
            route(&request, site).await
        }
    };
    let _ = response.send(&mut stream).await;
}

async fn route(request: &Request, site: &Site) -> Response {
    let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
    match (request.method.as_str(), segments.as_slice()) {
        ("GET", [""]) => Response::new(200, "text/html; charset=utf-8", INDEX),
        ("GET", ["assets", "app.js"]) => {
            Response::new(200, "text/javascript; charset=utf-8", SCRIPT)
        }
        ("GET", ["assets", "app.css"]) => Response::new(200, "text/css; charset=utf-8", STYLE),
        ("GET", ["api", "services"]) => match overview(site).await {
            Some(overview) => Response::json(&view(&overview)),
            None => unavailable(),
        },
        ("GET", ["api", "logs"]) => history(request, site).await,
        ("POST", ["api", "services", name, action]) => control(site, Some(name), action).await,
        ("POST", ["api", "all", action]) => control(site, None, action).await,
        (method, _) if method != "GET" && method != "POST" => {
            Response::text(405, "method not allowed")
        }
        _ => Response::text(404, "not found"),
    }
}

fn unavailable() -> Response {
    Response::text(503, "the supervisor is shutting down")
}

/// Ask the actor, holding the request until it is taken up (see
/// [`Envelope`]).
async fn ask<T>(site: &Site, control: Control, answer: oneshot::Receiver<T>) -> Option<T> {
    let (taken, _taken_receiver) = oneshot::channel();
    site.controls.send(Envelope { control, taken }).await.ok()?;
    tokio::time::timeout(CONTROL_TIMEOUT, answer)
        .await
        .ok()?
        .ok()
}

async fn overview(site: &Site) -> Option<Overview> {
    let (reply, answer) = oneshot::channel();
    ask(site, Control::Overview(reply), answer).await
}

async fn history(request: &Request, site: &Site) -> Response {
    let lines = match request.query("lines").map(str::parse::<usize>) {
        None => 500,
        Some(Ok(lines)) => lines.min(MAX_HISTORY),
        Some(Err(_)) => return Response::text(400, "`lines` must be a number"),
    };
    let services = match request.query("service") {
        Some(name) if !name.is_empty() => {
            let known = overview(site)
                .await
                .is_some_and(|o| o.project.service(name).is_some());
            if !known {
                return Response::text(404, &format!("unknown service {name:?}"));
            }
            vec![name.to_string()]
        }
        _ => Vec::new(),
    };
    let query = LogQuery {
        services,
        runs: Vec::new(),
        lines,
        since: None,
        timestamps: false,
    };
    let state = site.state.path().to_path_buf();
    let read = tokio::task::spawn_blocking(move || read_logs(&state, &query)).await;
    match read {
        Ok(Ok(lines)) => Response::json(
            &lines
                .iter()
                .map(|line| {
                    serde_json::json!({
                        "service": line.service,
                        "stream": line.stream.as_str(),
                        "time": line.time,
                        "line": line.text,
                    })
                })
                .collect::<Vec<_>>(),
        ),
        Ok(Err(error)) => Response::text(500, &error.to_string()),
        Err(error) => Response::text(500, &error.to_string()),
    }
}

async fn control(site: &Site, service: Option<&str>, action: &str) -> Response {
    let result = match (service, action) {
        (Some(name), "start") => unit(site, |reply| Control::Start(name.to_string(), reply)).await,
        (Some(name), "stop") => {
            unit(site, |reply| Control::Stop(Some(name.to_string()), reply)).await
        }
        (Some(name), "restart") => {
            unit(site, |reply| Control::Restart(name.to_string(), reply)).await
        }
        (None, "stop") => unit(site, |reply| Control::Stop(None, reply)).await,
        // Every service, each through the same request as one.
        (None, "start" | "restart") => {
            let Some(overview) = overview(site).await else {
                return unavailable();
            };
            let mut result = Some(Ok(()));
            for status in &overview.statuses {
                let name = status.name.clone();
                let one = if action == "start" {
                    unit(site, |reply| Control::Start(name, reply)).await
                } else {
                    unit(site, |reply| Control::Restart(name, reply)).await
                };
                if !matches!(one, Some(Ok(()))) {
                    result = one;
                    break;
                }
            }
            result
        }
        _ => return Response::text(404, "unknown control: use start, stop or restart"),
    };
    match result {
        Some(Ok(())) => Response::json(&serde_json::json!({ "ok": true })),
        Some(Err(ControlError::UnknownService(name))) => {
            Response::text(404, &format!("unknown service {name:?}"))
        }
        Some(Err(error)) => Response::text(409, &error.to_string()),
        None => unavailable(),
    }
}

async fn unit(
    site: &Site,
    control: impl FnOnce(oneshot::Sender<Result<(), ControlError>>) -> Control,
) -> Option<Result<(), ControlError>> {
    let (reply, answer) = oneshot::channel();
    ask(site, control(reply), answer).await
}

/// The live stream: the services whenever they change, the logs as they
/// are written, until the client goes or the supervisor ends.
async fn events(mut stream: TcpStream, site: &Site) {
    let mut logs = site.live.subscribe();
    let mut generation = site.generation.clone();
    if write_within(&mut stream, &event_stream_head(), WRITE_TIMEOUT)
        .await
        .is_err()
    {
        return;
    }
    let mut pending = Pending::default();
    let mut status_due = true;
    let mut flush = tokio::time::interval(LOG_FLUSH);
    let mut status_tick = tokio::time::interval(STATUS_FLUSH);
    let mut keep_alive =
        tokio::time::interval_at(tokio::time::Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
    loop {
        let mut out = Vec::new();
        tokio::select! {
            changed = generation.changed() => {
                if changed.is_err() {
                    return;
                }
                status_due = true;
                continue;
            }
            received = logs.recv() => {
                match received {
                    Ok(batch) => pending.push(batch),
                    Err(broadcast::error::RecvError::Lagged(count)) => pending.lost += count,
                    Err(broadcast::error::RecvError::Closed) => return,
                }
                continue;
            }
            _ = status_tick.tick(), if status_due => {
                status_due = false;
                let Some(overview) = overview(site).await else { return };
                event(&mut out, "services", &view(&overview));
            }
            _ = flush.tick() => {
                pending.write(&mut out);
                if out.is_empty() {
                    continue;
                }
            }
            _ = keep_alive.tick() => out.extend_from_slice(b": keep-alive\n\n"),
        }
        // A client that stopped reading is let go (it would hold its
        // connection slot for ever); a page that comes back reconnects.
        if let Err(error) = write_within(&mut stream, &out, WRITE_TIMEOUT).await {
            tracing::debug!(%error, "dashboard: event stream ended");
            return;
        }
    }
}

/// Live lines waiting for the next flush, bounded.
#[derive(Default)]
struct Pending {
    batches: Vec<Arc<LiveBatch>>,
    bytes: usize,
    /// Batches lost since the last flush (a slow client, or too many lines).
    lost: u64,
}

impl Pending {
    fn push(&mut self, batch: Arc<LiveBatch>) {
        let size: usize = batch.lines.iter().map(|line| line.len() + 16).sum();
        if self.bytes + size > MAX_PENDING_BYTES {
            self.lost += 1;
            return;
        }
        self.bytes += size;
        self.batches.push(batch);
    }

    fn write(&mut self, out: &mut Vec<u8>) {
        if self.lost > 0 {
            event(out, "lagged", &self.lost);
            self.lost = 0;
        }
        if !self.batches.is_empty() {
            let batches: Vec<&LiveBatch> =
                self.batches.iter().map(|batch| batch.as_ref()).collect();
            event(out, "logs", &batches);
            self.batches.clear();
            self.bytes = 0;
        }
    }
}

/// One server-sent event; JSON has no raw newline, so `data` is one line.
fn event(out: &mut Vec<u8>, name: &str, data: &impl Serialize) {
    let Ok(json) = serde_json::to_string(data) else {
        return;
    };
    out.extend_from_slice(format!("event: {name}\ndata: {json}\n\n").as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(service: &str, lines: &[&str]) -> Arc<LiveBatch> {
        Arc::new(LiveBatch {
            service: service.into(),
            stream: "stdout",
            time: "2024-01-01T00:00:00.000Z".into(),
            lines: lines.iter().map(|line| line.to_string()).collect(),
        })
    }

    #[test]
    fn pending_lines_are_one_event_per_flush_and_bounded() {
        let mut pending = Pending::default();
        pending.push(batch("web", &["a", "b\u{1b}[31m"]));
        pending.push(batch("db", &["c"]));
        let mut out = Vec::new();
        pending.write(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches("event: logs\n").count(), 1, "{text}");
        assert!(text.contains(r#""lines":["a","b\u001b[31m"]"#), "{text}");
        let big = "x".repeat(600 * 1024);
        pending.push(batch("web", &[&big]));
        pending.push(batch("web", &[&big]));
        let mut out = Vec::new();
        pending.write(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("event: lagged\ndata: 1\n\n"),
            "{}",
            &text[..40]
        );
        assert_eq!(text.matches("event: logs").count(), 1);
        let mut out = Vec::new();
        pending.write(&mut out);
        assert!(out.is_empty());
    }
}
