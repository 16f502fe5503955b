//! The dashboard: a web page the supervisor serves on a loopback port of its
//! own, showing every service (state, kind, port, health, restarts, uptime,
//! last exit) with buttons to start, stop and restart, and the logs, live.
//!
//! - `http`: the small HTTP/1.1 it speaks (one request per connection).
//! - `auth`: the token, and the `Host`/`Origin` checks.
//! - `api`: the JSON API the page uses, the event stream, the controls.
//! - `assets/`: the page (plain HTML, CSS and JavaScript, embedded at
//!   compile time: no CDN, no Node toolchain).
//!
//! Controls go through the actor's [`Control`](super::actor::Control)
//! messages, exactly as `locald restart` does over the control socket.
//! Everything runs on the supervisor's runtime; a client costs one task, a
//! bounded share of the live output, and nothing while none is connected.

mod api;
mod auth;
mod http;

use std::net::{Ipv4Addr, TcpListener as StdListener};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};

use super::actor::Envelope;
use super::live::LiveLogs;
use crate::project::state_dir::{self, StateDir};

pub use auth::Guard;

/// Connections served at once (event streams included); more wait.
const MAX_CONNECTIONS: usize = 32;

/// The page in `.locald/` that `locald dashboard` opens in the browser; it
/// sends the browser on to the address with the token (see
/// [`Guard::opener_page`]).
pub const OPENER_PAGE: &str = "dashboard.html";

/// The dashboard's port, kept in `.locald/dashboard.json` so that a bookmark
/// keeps working across `up`s while the port stays free.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Remembered {
    port: Option<u16>,
}

#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error("the dashboard's port {port} is in use; free it, or set another `port` under `[dashboard]` in locald.toml")]
    PortInUse { port: u16 },
    #[error("cannot listen for the dashboard: {0}")]
    Bind(#[source] std::io::Error),
    #[error("cannot make the dashboard's token: {0}")]
    Token(#[source] std::io::Error),
}

/// A bound dashboard, ready to [`Dashboard::serve`].
pub struct Dashboard {
    listener: StdListener,
    guard: Arc<Guard>,
    port: u16,
}

impl Dashboard {
    /// Binds 127.0.0.1 at `fixed`, or else at the port remembered for this
    /// project when it is free, or else at a fresh one; never one of the
    /// services' `ports`. The port is remembered.
    pub fn bind(
        state: &StateDir,
        fixed: Option<u16>,
        ports: &[u16],
    ) -> Result<Dashboard, DashboardError> {
        let path = state.path().join("dashboard.json");
        let listener = match fixed {
            Some(port) => StdListener::bind((Ipv4Addr::LOCALHOST, port)).map_err(|error| {
                if error.kind() == std::io::ErrorKind::AddrInUse {
                    DashboardError::PortInUse { port }
                } else {
                    DashboardError::Bind(error)
                }
            })?,
            None => {
                let remembered = remembered_port(&path).filter(|port| !ports.contains(port));
                match remembered
                    .and_then(|port| StdListener::bind((Ipv4Addr::LOCALHOST, port)).ok())
                {
                    Some(listener) => listener,
                    None => fresh_listener(ports)?,
                }
            }
        };
        let port = listener.local_addr().map_err(DashboardError::Bind)?.port();
        if fixed.is_none() {
            let json = serde_json::to_vec(&Remembered { port: Some(port) })
                .expect("a port always serializes");
            if let Err(error) = state_dir::write_file(&path, &json) {
                tracing::warn!(path = %path.display(), %error, "cannot remember the dashboard's port");
            }
        }
        listener
            .set_nonblocking(true)
            .map_err(DashboardError::Bind)?;
        let guard = Arc::new(Guard::new(port).map_err(DashboardError::Token)?);
        // Written before the address is served, so `locald dashboard` never
        // opens an earlier supervisor's page (0600, in the private state
        // directory: the token stays the user's).
        if let Err(error) = state_dir::write_file(
            &state.path().join(OPENER_PAGE),
            guard.opener_page().as_bytes(),
        ) {
            tracing::warn!(%error, "cannot write the dashboard's opener page");
        }
        Ok(Dashboard {
            listener,
            guard,
            port,
        })
    }

    /// The address to open, token included.
    pub fn url(&self) -> String {
        self.guard.url()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the task is dropped (aborted with the supervisor).
    pub async fn serve(
        self,
        controls: mpsc::Sender<Envelope>,
        state: StateDir,
        generation: watch::Receiver<u64>,
        live: LiveLogs,
    ) {
        let listener = match TcpListener::from_std(self.listener) {
            Ok(listener) => listener,
            Err(error) => {
                tracing::error!(%error, "cannot serve the dashboard");
                return;
            }
        };
        let site = Arc::new(api::Site {
            guard: self.guard,
            controls,
            state,
            generation,
            live,
        });
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "dashboard accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let site = site.clone();
            tokio::spawn(async move {
                api::handle(stream, &site).await;
                drop(slot);
            });
        }
    }
}

fn remembered_port(path: &std::path::Path) -> Option<u16> {
    use std::io::Read;
    let mut text = String::new();
    state_dir::open_file(std::fs::OpenOptions::new().read(true), path)
        .and_then(|file| file.take(4096).read_to_string(&mut text))
        .ok()?;
    serde_json::from_str::<Remembered>(&text).ok()?.port
}

/// A listener on a port the kernel picks, other than the services' ports.
fn fresh_listener(ports: &[u16]) -> Result<StdListener, DashboardError> {
    for _ in 0..16 {
        let listener = StdListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(DashboardError::Bind)?;
        let port = listener.local_addr().map_err(DashboardError::Bind)?.port();
        if !ports.contains(&port) {
            return Ok(listener);
        }
    }
    Err(DashboardError::Bind(std::io::Error::other(
        "no free port other than the services' ones",
    )))
}
