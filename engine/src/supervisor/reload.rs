//! What a reload does to each service: compare the running project with the
//! one just read from disk. A service is *changed* when its definition
//! differs, or when a port it refers to (`${services.X.port}`/`url`) moved;
//! the actor replaces changed services, starts added ones and stops removed
//! ones, and leaves the others running untouched ([`Supervisor::reload`]).

use std::collections::{BTreeMap, BTreeSet};

use std::sync::Arc;

use indexmap::IndexMap;
use tokio::sync::{mpsc, oneshot, watch};

use super::actor::Supervisor;
use super::protocol::{ReloadReport, ServiceState, ServiceStatus};
use super::service::{initial_status, ServiceRequest, Shared};
use crate::model::{Project, Service};
use crate::project::ports;

/// Why a reload changed nothing (the running services are left as they were).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("cannot read the config: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error(transparent)]
    Load(#[from] crate::project::LoadError),
    #[error(transparent)]
    Ports(#[from] crate::project::ports::PortError),
}

/// Sort the services of `new` against `old`. Ports are the assignments
/// before and after the reload.
pub fn plan(
    old: &Project,
    old_ports: &BTreeMap<String, u16>,
    new: &Project,
    new_ports: &BTreeMap<String, u16>,
) -> ReloadReport {
    let moved: BTreeSet<&str> = new
        .services
        .iter()
        .filter(|service| old.service(&service.name).is_some())
        .filter(|service| old_ports.get(&service.name) != new_ports.get(&service.name))
        .map(|service| service.name.as_str())
        .collect();
    let mut report = ReloadReport::default();
    for service in &new.services {
        match old.service(&service.name) {
            None => report.added.push(service.name.clone()),
            Some(before) => {
                if before != service
                    || moved.contains(service.name.as_str())
                    || moved.iter().any(|name| refers_to(service, name))
                {
                    report.changed.push(service.name.clone());
                }
            }
        }
    }
    report.removed = old
        .services
        .iter()
        .filter(|service| new.service(&service.name).is_none())
        .map(|service| service.name.clone())
        .collect();
    report
}

/// Whether `service` uses another service's port or URL anywhere a template
/// may appear (command, env, health). Templates are resolved only when the
/// service starts, so a moved port needs a restart to be seen.
fn refers_to(service: &Service, other: &str) -> bool {
    let needle = format!("${{services.{other}.");
    // The debug form holds every string field verbatim: one search covers
    // all places a template may be written, including ones added later.
    format!("{service:?}").contains(&needle)
}

impl Supervisor {
    /// Read the project's config from disk and apply the difference: stop
    /// removed and changed services, then start the changed ones again (unless
    /// they were stopped) and the added ones. Untouched services keep running.
    /// A config that does not load changes nothing. Control requests wait
    /// while the stops run (bounded by the services' stop timeouts).
    pub(super) async fn reload(&mut self) -> Result<ReloadReport, ReloadError> {
        let root = self.shared.project.root.clone();
        let loaded =
            tokio::task::spawn_blocking(move || crate::project::load_project(&root)).await?;
        let project = Arc::new(loaded?);
        let ports = ports::reassign(&project, &self.shared.ports)?;
        let report = plan(&self.shared.project, &self.shared.ports, &project, &ports);

        // Whether each changed service should run again once replaced: yes
        // unless it was stopped (a failed one may well have been fixed).
        let was_wanted: BTreeSet<String> = report
            .changed
            .iter()
            .filter(|name| {
                self.services.get(name.as_str()).is_some_and(|handle| {
                    handle.status.borrow().state != ServiceState::Stopped.as_str()
                })
            })
            .cloned()
            .collect();
        let leaving: Vec<String> = report
            .removed
            .iter()
            .chain(&report.changed)
            .cloned()
            .collect();
        let mut stops = Vec::new();
        for name in &leaving {
            if let Some(handle) = self.services.get(name) {
                let (done, done_receiver) = oneshot::channel();
                if handle.commands.send(ServiceRequest::Stop(done)).is_ok() {
                    stops.push(done_receiver);
                }
            }
        }
        for stop in stops {
            let _ = stop.await;
        }
        let mut old = std::mem::take(&mut self.services);
        for name in &leaving {
            if let Some(handle) = old.get_mut(name) {
                // Closing the command channel ends the task.
                let (closed, _) = mpsc::unbounded_channel();
                handle.commands = closed;
            }
        }
        for name in &report.removed {
            if let Some(handle) = old.shift_remove(name) {
                let _ = handle.task.await;
            }
        }

        self.shared = Arc::new(Shared {
            project: project.clone(),
            ports: Arc::new(ports),
            generation: self.shared.generation.clone(),
            force: self.shared.force.clone(),
            ids: self.shared.ids.clone(),
            live: self.shared.live.clone(),
        });
        if let Some(console) = &self.console {
            self.console = Some(console.with_names(&project.service_names()));
        }
        let statuses: IndexMap<String, watch::Sender<ServiceStatus>> = project
            .services
            .iter()
            .map(|service| {
                let sender = match old.get(&service.name) {
                    Some(handle) => handle.status_sender.clone(),
                    None => {
                        let port = self.shared.ports.get(&service.name).copied();
                        watch::Sender::new(initial_status(&service.name, port, true))
                    }
                };
                (service.name.clone(), sender)
            })
            .collect();
        for service in &project.services {
            let name = &service.name;
            let handle = match old.shift_remove(name) {
                Some(handle) if report.changed.contains(name) => {
                    let _ = handle.task.await;
                    self.spawn_service(
                        service,
                        statuses[name].clone(),
                        &statuses,
                        was_wanted.contains(name),
                    )
                }
                Some(handle) => handle,
                None => self.spawn_service(service, statuses[name].clone(), &statuses, true),
            };
            self.services.insert(name.clone(), handle);
        }
        for name in &report.added {
            // What a new service depends on may have been stopped.
            let _ = self.start_with_dependencies(name);
        }
        tracing::info!(
            added = ?report.added,
            changed = ?report.changed,
            removed = ?report.removed,
            "config reloaded"
        );
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::env::tests::{project, service};
    use std::path::Path;

    fn ports(pairs: &[(&str, u16)]) -> BTreeMap<String, u16> {
        pairs.iter().map(|(n, p)| (n.to_string(), *p)).collect()
    }

    #[test]
    fn sorts_added_changed_removed_and_keeps_the_rest() {
        let root = Path::new("/tmp");
        let old = project(
            root,
            vec![
                service("db", "postgres", root),
                service("web", "serve", root),
                service("gone", "true", root),
            ],
        );
        let new = project(
            root,
            vec![
                service("db", "postgres", root),
                service("web", "serve --fast", root),
                service("cache", "redis", root),
            ],
        );
        let before = ports(&[("db", 5000), ("web", 5001), ("gone", 5002)]);
        let after = ports(&[("db", 5000), ("web", 5001), ("cache", 5003)]);
        let report = plan(&old, &before, &new, &after);
        assert_eq!(report.added, ["cache"]);
        assert_eq!(report.changed, ["web"]);
        assert_eq!(report.removed, ["gone"]);
    }

    #[test]
    fn a_moved_port_changes_the_services_that_refer_to_it() {
        let root = Path::new("/tmp");
        let mut api = service("api", "serve", root);
        api.env
            .insert("DB_URL".into(), "${services.db.url}/app".into());
        let services = vec![
            service("db", "postgres", root),
            api,
            service("other", "true", root),
        ];
        let old = project(root, services.clone());
        let new = project(root, services);
        let before = ports(&[("db", 5000), ("api", 5001), ("other", 5002)]);
        let after = ports(&[("db", 6000), ("api", 5001), ("other", 5002)]);
        let report = plan(&old, &before, &new, &after);
        assert_eq!(report.changed, ["db", "api"]);
        assert!(report.added.is_empty() && report.removed.is_empty());
    }

    #[test]
    fn nothing_changes_when_nothing_did() {
        let root = Path::new("/tmp");
        let old = project(root, vec![service("web", "serve", root)]);
        let report = plan(&old, &ports(&[("web", 1)]), &old, &ports(&[("web", 1)]));
        assert_eq!(report, ReloadReport::default());
    }
}
