//! Port assignment: a fixed port when the config names one, otherwise a free
//! port that the service keeps across restarts and across `up`s while it stays
//! free (persisted in `.locald/ports.json`); no two services share a port.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;

use super::state_dir::{StateDir, StateDirError};
use crate::model::{PortSpec, Project};

#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("cannot find a free port: {0}")]
    NoFreePort(io::Error),
    #[error("services {first:?} and {second:?} both fix port {port}")]
    Conflict {
        port: u16,
        first: String,
        second: String,
    },
    #[error(
        "port {port} of service `{service}` is in use by {}; stop it, or give `{service}` another `port` in locald.toml",
        holder.as_ref().map_or_else(|| "another process".to_string(), |h| h.to_string())
    )]
    InUse {
        port: u16,
        service: String,
        holder: Option<super::listeners::Holder>,
    },
    #[error("cannot write {path}: {source}")]
    Persist { path: PathBuf, source: io::Error },
    #[error(transparent)]
    StateDir(#[from] StateDirError),
}

/// Ask the kernel for a port nobody listens on right now.
pub fn free_port() -> Result<u16, PortError> {
    kernel_free_port()
}

fn kernel_free_port() -> Result<u16, PortError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(PortError::NoFreePort)?;
    let address = listener.local_addr().map_err(PortError::NoFreePort)?;
    Ok(address.port())
}

/// Whether something could listen on `port` on 127.0.0.1 now.
pub fn is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// Refuses to go on when a port the config fixes for one of `services` is
/// taken already, naming the process that holds it when it can be known:
/// better than a service that fails later with "address in use", or one
/// whose probe is answered by someone else.
pub fn check_fixed_ports_free<'a>(
    project: &Project,
    services: impl IntoIterator<Item = &'a String>,
) -> Result<(), PortError> {
    for name in services {
        let Some(service) = project.service(name) else {
            continue;
        };
        if let PortSpec::Fixed(port) = service.port {
            if !is_free(port) {
                let holder = super::listeners::listening_sockets(port)
                    .ok()
                    .and_then(|sockets| super::listeners::holder_of(&sockets));
                return Err(PortError::InUse {
                    port,
                    service: name.clone(),
                    holder,
                });
            }
        }
    }
    Ok(())
}

/// Assign a port to every service of the project and persist the choice.
pub fn assign(project: &Project) -> Result<BTreeMap<String, u16>, PortError> {
    assign_persisted(project)
}

fn assign_persisted(project: &Project) -> Result<BTreeMap<String, u16>, PortError> {
    let state = StateDir::new(&project.state_dir());
    state.ensure()?;
    let path = state.ports_file();
    let previous = load(&path);
    let assigned = assign_with(project, &previous, is_free, kernel_free_port)?;
    persist(path, &assigned)?;
    Ok(assigned)
}

/// Ports for a reloaded project while its supervisor runs: a service that
/// stays keeps the port it has now (busy, since it listens on it), new
/// services get their remembered port when free, or a fresh one. Persisted.
pub fn reassign(
    project: &Project,
    current: &BTreeMap<String, u16>,
) -> Result<BTreeMap<String, u16>, PortError> {
    let state = StateDir::new(&project.state_dir());
    let path = state.ports_file();
    let mut previous = load(&path);
    let staying: BTreeMap<String, u16> = current
        .iter()
        .filter(|(name, _)| project.service(name).is_some())
        .map(|(name, port)| (name.clone(), *port))
        .collect();
    previous.extend(staying.clone());
    let ours = |port: u16| staying.values().any(|kept| *kept == port);
    let assigned = assign_with(
        project,
        &previous,
        |port| ours(port) || is_free(port),
        kernel_free_port,
    )?;
    persist(path, &assigned)?;
    Ok(assigned)
}

fn persist(path: std::path::PathBuf, assigned: &BTreeMap<String, u16>) -> Result<(), PortError> {
    let json = serde_json::to_string_pretty(assigned).expect("a map of ports always serializes");
    // Replaced whole: a symlink planted at ports.json is replaced, not
    // written through.
    super::state_dir::write_file(&path, json.as_bytes())
        .map_err(|source| PortError::Persist { path, source })
}

/// The ports last assigned to the project's services, without probing or
/// changing anything: what a running supervisor's services were given.
pub fn persisted(project: &Project) -> BTreeMap<String, u16> {
    load(&StateDir::new(&project.state_dir()).ports_file())
}

/// A missing or unreadable ports file only means no preferences are known.
fn load(path: &std::path::Path) -> BTreeMap<String, u16> {
    use std::io::Read;
    let mut text = String::new();
    super::state_dir::open_file(std::fs::OpenOptions::new().read(true), path)
        .and_then(|file| file.take(1024 * 1024).read_to_string(&mut text))
        .ok()
        .and_then(|_| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

/// The assignment rules, with the probes of the outside world passed in.
fn assign_with(
    project: &Project,
    previous: &BTreeMap<String, u16>,
    is_free: impl Fn(u16) -> bool,
    free_port: impl Fn() -> Result<u16, PortError>,
) -> Result<BTreeMap<String, u16>, PortError> {
    let mut assigned = BTreeMap::new();
    let mut taken: BTreeMap<u16, String> = BTreeMap::new();
    // Fixed ports first, so an automatic port never steals one.
    for service in &project.services {
        if let PortSpec::Fixed(port) = service.port {
            if let Some(first) = taken.insert(port, service.name.clone()) {
                return Err(PortError::Conflict {
                    port,
                    first,
                    second: service.name.clone(),
                });
            }
            assigned.insert(service.name.clone(), port);
        }
    }
    for service in &project.services {
        if service.port != PortSpec::Auto {
            continue;
        }
        let kept = previous
            .get(&service.name)
            .copied()
            .filter(|port| *port != 0 && !taken.contains_key(port) && is_free(*port));
        let port = match kept {
            Some(port) => port,
            None => fresh_port(&taken, &free_port)?,
        };
        taken.insert(port, service.name.clone());
        assigned.insert(service.name.clone(), port);
    }
    Ok(assigned)
}

fn fresh_port(
    taken: &BTreeMap<u16, String>,
    free_port: &impl Fn() -> Result<u16, PortError>,
) -> Result<u16, PortError> {
    // The kernel hands out ephemeral ports in sequence, so a clash with a
    // port taken in this round is rare; retry a few times rather than loop.
    let mut seen = BTreeSet::new();
    for _ in 0..64 {
        let port = free_port()?;
        if !taken.contains_key(&port) {
            return Ok(port);
        }
        seen.insert(port);
    }
    Err(PortError::NoFreePort(io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("every port offered was already assigned: {seen:?}"),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::env::tests::{project, service};
    use std::cell::Cell;

    fn three(root: &std::path::Path) -> Project {
        let mut fixed = service("fixed", "true", root);
        fixed.port = PortSpec::Fixed(7000);
        project(
            root,
            vec![
                service("a", "true", root),
                service("b", "true", root),
                fixed,
            ],
        )
    }

    #[test]
    fn keeps_previous_ports_while_free_and_never_duplicates() {
        let root = std::path::Path::new("/tmp");
        let previous = BTreeMap::from([
            ("a".to_string(), 6000),
            // `b` remembered the port that is now fixed for another service.
            ("b".to_string(), 7000),
        ]);
        let next = Cell::new(7000);
        let ports = assign_with(
            &three(root),
            &previous,
            |_| true,
            || {
                next.set(next.get() + 1);
                // Offer the fixed port first, which must be refused.
                Ok(if next.get() == 7001 { 7000 } else { next.get() })
            },
        )
        .unwrap();
        assert_eq!(ports["a"], 6000);
        assert_eq!(ports["fixed"], 7000);
        assert_eq!(ports["b"], 7002);
    }

    #[test]
    fn busy_previous_port_is_replaced() {
        let root = std::path::Path::new("/tmp");
        let previous = BTreeMap::from([("a".to_string(), 6000)]);
        let error =
            assign_with(&three(root), &previous, |port| port != 6000, || Ok(6001)).unwrap_err();
        // Both `a` and `b` need a fresh port but the fake only ever offers one.
        assert!(matches!(error, PortError::NoFreePort(_)));
    }

    #[test]
    fn two_fixed_ports_conflict() {
        let root = std::path::Path::new("/tmp");
        let mut a = service("a", "true", root);
        a.port = PortSpec::Fixed(7000);
        let mut b = service("b", "true", root);
        b.port = PortSpec::Fixed(7000);
        let error = assign_with(
            &project(root, vec![a, b]),
            &BTreeMap::new(),
            |_| true,
            kernel_free_port,
        )
        .unwrap_err();
        assert!(matches!(error, PortError::Conflict { port: 7000, .. }));
    }

    #[test]
    fn assign_persists_and_reuses_across_runs() {
        let dir = tempfile::tempdir().unwrap();
        let project = project(
            dir.path(),
            vec![
                service("a", "true", dir.path()),
                service("b", "true", dir.path()),
            ],
        );
        let first = assign(&project).unwrap();
        assert_ne!(first["a"], first["b"]);
        let second = assign(&project).unwrap();
        assert_eq!(first, second);
        let stored: BTreeMap<String, u16> = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join(".locald/ports.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(stored, first);
        // A port someone else now listens on is given up.
        let _squatter = TcpListener::bind((Ipv4Addr::LOCALHOST, first["a"])).unwrap();
        let third = assign(&project).unwrap();
        assert_ne!(third["a"], first["a"]);
        assert_eq!(third["b"], first["b"]);
    }
}
