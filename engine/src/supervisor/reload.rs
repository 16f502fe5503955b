//! What a reload does to each service: compare the running project with the
//! one just read from disk. A service is *changed* when its definition
//! differs, or when a port it refers to (`${services.X.port}`/`url`) moved;
//! the actor replaces changed services, starts added ones and stops removed
//! ones, and leaves the others running untouched.

use std::collections::{BTreeMap, BTreeSet};

use super::protocol::ReloadReport;
use crate::model::{Project, Service};

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
