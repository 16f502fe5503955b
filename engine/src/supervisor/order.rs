//! The order services stop in: dependents before what they depend on, wave by wave, by their
//! depth in the dependency graph.

use std::collections::{BTreeMap, BTreeSet};

use tokio::sync::{mpsc, oneshot};

use super::service::ServiceRequest;

/// Stop the services wave by wave, each wave once the one before has stopped.
pub async fn stop_in_waves(waves: Vec<Vec<mpsc::UnboundedSender<ServiceRequest>>>) {
    for wave in waves {
        let mut replies = Vec::new();
        for commands in wave {
            let (done, done_receiver) = oneshot::channel();
            if commands.send(ServiceRequest::Stop(done)).is_ok() {
                replies.push(done_receiver);
            }
        }
        for reply in replies {
            let _ = reply.await;
        }
    }
}

/// Depth of each service in the dependency graph: 0 without dependencies,
/// else one more than its deepest dependency. Cycles (rejected by config
/// validation) are cut rather than looped on: a dependency met again while
/// its own dependencies are being measured counts as level 0.
///
/// Iterative (a post-order walk with the path on the heap): a project may
/// chain as many services as it likes, and recursion would overflow the stack.
pub fn dependency_levels(depends_on: &BTreeMap<&str, &[String]>) -> BTreeMap<String, usize> {
    let mut levels: BTreeMap<&str, usize> = BTreeMap::new();
    let mut visiting: BTreeSet<&str> = BTreeSet::new();
    for &root in depends_on.keys() {
        if levels.contains_key(root) {
            continue;
        }
        // (service, position of its next dependency, its level from the dependencies seen so far)
        let mut path: Vec<(&str, usize, usize)> = vec![(root, 0, 0)];
        visiting.insert(root);
        while let Some(top) = path.last_mut() {
            let (name, next, level) = *top;
            let dependencies = depends_on.get(name).copied().unwrap_or_default();
            let Some(dependency) = dependencies.get(next) else {
                path.pop();
                visiting.remove(name);
                levels.insert(name, level);
                if let Some(parent) = path.last_mut() {
                    parent.2 = parent.2.max(level + 1);
                }
                continue;
            };
            top.1 += 1;
            let Some((&dependency, _)) = depends_on.get_key_value(dependency.as_str()) else {
                continue;
            };
            if let Some(&known) = levels.get(dependency) {
                top.2 = top.2.max(known + 1);
            } else if visiting.contains(dependency) {
                top.2 = top.2.max(1);
            } else {
                visiting.insert(dependency);
                path.push((dependency, 0, 0));
            }
        }
    }
    levels
        .into_iter()
        .map(|(name, level)| (name.to_string(), level))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_put_dependents_above_dependencies() {
        let db: Vec<String> = vec![];
        let api = vec!["db".to_string()];
        let web = vec!["api".to_string(), "db".to_string()];
        let worker = vec!["db".to_string()];
        let graph = BTreeMap::from([
            ("db", db.as_slice()),
            ("api", api.as_slice()),
            ("web", web.as_slice()),
            ("worker", worker.as_slice()),
        ]);
        let levels = dependency_levels(&graph);
        assert_eq!(levels["db"], 0);
        assert_eq!(levels["api"], 1);
        assert_eq!(levels["worker"], 1);
        assert_eq!(levels["web"], 2);
    }

    #[test]
    fn cycles_do_not_hang() {
        let a = vec!["b".to_string()];
        let b = vec!["a".to_string()];
        let graph = BTreeMap::from([("a", a.as_slice()), ("b", b.as_slice())]);
        assert_eq!(dependency_levels(&graph).len(), 2);
    }

    #[test]
    fn a_very_long_chain_does_not_overflow_the_stack() {
        // s0 depends on s1, ... on s99999: a recursive walk overflowed the test thread's stack.
        const LENGTH: usize = 100_000;
        let names: Vec<String> = (0..LENGTH).map(|i| format!("s{i}")).collect();
        let dependencies: Vec<Vec<String>> = (0..LENGTH)
            .map(|i| names.get(i + 1).cloned().into_iter().collect())
            .collect();
        let graph: BTreeMap<&str, &[String]> = names
            .iter()
            .zip(&dependencies)
            .map(|(name, dependencies)| (name.as_str(), dependencies.as_slice()))
            .collect();
        let levels = dependency_levels(&graph);
        assert_eq!(levels["s0"], LENGTH - 1);
        assert_eq!(levels[&format!("s{}", LENGTH - 1)], 0);
    }
}
