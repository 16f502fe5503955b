//! Checks across services: duplicate names, dependencies on services that do
//! not exist, and dependency cycles. Works on names only so both the TOML path
//! (which adds spans) and `check_project` (the Rhai path) share it.

use super::convert::{declared_services, suggest};

/// Unknown dependencies that get a "did you mean" suggestion: each costs a comparison with
/// every service, so suggesting for all of them took minutes for 16,000 services.
const MAX_SUGGESTIONS: usize = 16;
use super::diagnostic::{KeyPath, Problem};

/// A problem in the dependency graph, by position so callers can locate it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GraphProblem {
    /// `services[service]` reuses the name of an earlier service.
    Duplicate { service: usize },
    /// `services[service].depends_on[dependency]` names no service.
    UnknownDependency {
        service: usize,
        dependency: usize,
        suggestion: Option<String>,
    },
    /// Following `depends_on` leads back to where it started; `cycle` lists
    /// the names from the start back to it (`["web", "api", "web"]`), and
    /// `services[service].depends_on[dependency]` is the edge closing it.
    Cycle {
        cycle: Vec<String>,
        service: usize,
        dependency: usize,
    },
}

impl GraphProblem {
    /// The problem as a diagnostic without a span (callers with a source add one).
    pub(crate) fn to_problem(&self, services: &[GraphNode]) -> Problem {
        let edge_path = |service: usize, dependency: usize| {
            KeyPath::root()
                .key("services")
                .key(services[service].name)
                .key("depends_on")
                .index(dependency)
        };
        match self {
            GraphProblem::Duplicate { service } => {
                let name = services[*service].name;
                Problem::standalone(
                    KeyPath::root().key("services").key(name),
                    format!("duplicate service `{name}`"),
                )
                .with_help("each service is declared once")
            }
            GraphProblem::UnknownDependency {
                service,
                dependency,
                suggestion,
            } => {
                let owner = &services[*service];
                let missing = &owner.depends_on[*dependency];
                let help = match suggestion {
                    Some(close) => format!("did you mean `{close}`?"),
                    None => declared_services(services.iter().map(|s| s.name)),
                };
                Problem::standalone(
                    edge_path(*service, *dependency),
                    format!(
                        "service `{}` depends on unknown service `{missing}`",
                        owner.name
                    ),
                )
                .with_help(help)
            }
            GraphProblem::Cycle {
                cycle,
                service,
                dependency,
            } => Problem::standalone(
                edge_path(*service, *dependency),
                format!("dependency cycle: {}", cycle.join(" -> ")),
            )
            .with_help("services cannot wait for each other; remove one of these dependencies"),
        }
    }
}

/// One service as the graph sees it.
pub(crate) struct GraphNode<'a> {
    pub name: &'a str,
    pub depends_on: &'a [String],
}

/// Every duplicate and unknown dependency, then the first cycle (cycles are
/// only looked for among known services).
pub(crate) fn check(services: &[GraphNode]) -> Vec<GraphProblem> {
    let mut problems = Vec::new();
    let mut index_of = std::collections::HashMap::with_capacity(services.len());
    for (position, service) in services.iter().enumerate() {
        if index_of.insert(service.name, position).is_some() {
            problems.push(GraphProblem::Duplicate { service: position });
        }
    }
    let names: Vec<&str> = services.iter().map(|s| s.name).collect();
    let mut unknown = 0usize;
    for (position, service) in services.iter().enumerate() {
        for (dependency_position, dependency) in service.depends_on.iter().enumerate() {
            if !index_of.contains_key(dependency.as_str()) {
                unknown += 1;
                let suggestion = if unknown <= MAX_SUGGESTIONS {
                    suggest(dependency, names.iter().copied()).map(str::to_owned)
                } else {
                    None
                };
                problems.push(GraphProblem::UnknownDependency {
                    service: position,
                    dependency: dependency_position,
                    suggestion,
                });
            }
        }
    }
    if let Some(cycle) = find_cycle(services, &index_of) {
        problems.push(cycle);
    }
    problems
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Visit {
    New,
    OnStack,
    Done,
}

/// Depth-first search in declaration order, so the reported cycle is stable.
///
/// Iterative, with the path on the heap: a project may chain as many services as it likes, and
/// a recursive search overflowed the stack (aborting `locald status`) for 20,000 of them.
fn find_cycle(
    services: &[GraphNode],
    index_of: &std::collections::HashMap<&str, usize>,
) -> Option<GraphProblem> {
    let mut state = vec![Visit::New; services.len()];
    // The search's path: each service on it, with the position of its next dependency to follow.
    let mut path: Vec<(usize, usize)> = Vec::new();
    for start in 0..services.len() {
        if state[start] != Visit::New {
            continue;
        }
        state[start] = Visit::OnStack;
        path.push((start, 0));
        while let Some(top) = path.last_mut() {
            let (current, dependency_position) = *top;
            let Some(dependency) = services[current].depends_on.get(dependency_position) else {
                path.pop();
                state[current] = Visit::Done;
                continue;
            };
            top.1 += 1;
            let Some(&next) = index_of.get(dependency.as_str()) else {
                continue;
            };
            match state[next] {
                Visit::OnStack => {
                    let from = path.iter().position(|&(s, _)| s == next).unwrap_or(0);
                    let mut cycle: Vec<String> = path[from..]
                        .iter()
                        .map(|&(s, _)| services[s].name.to_owned())
                        .collect();
                    cycle.push(services[next].name.to_owned());
                    return Some(GraphProblem::Cycle {
                        cycle,
                        service: current,
                        dependency: dependency_position,
                    });
                }
                Visit::New => {
                    state[next] = Visit::OnStack;
                    path.push((next, 0));
                }
                Visit::Done => {}
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(spec: &[(&str, &[&str])]) -> Vec<GraphProblem> {
        let owned: Vec<(String, Vec<String>)> = spec
            .iter()
            .map(|(n, d)| (n.to_string(), d.iter().map(|s| s.to_string()).collect()))
            .collect();
        let nodes: Vec<GraphNode> = owned
            .iter()
            .map(|(name, deps)| GraphNode {
                name,
                depends_on: deps,
            })
            .collect();
        check(&nodes)
    }

    #[test]
    fn acyclic_graphs_pass() {
        assert!(graph(&[("db", &[]), ("api", &["db"]), ("web", &["api", "db"])]).is_empty());
    }

    #[test]
    fn cycles_are_named_from_where_the_search_entered_them() {
        assert_eq!(
            graph(&[("web", &["api"]), ("api", &["web"])]),
            [GraphProblem::Cycle {
                cycle: vec!["web".into(), "api".into(), "web".into()],
                service: 1,
                dependency: 0
            }]
        );
        assert_eq!(
            graph(&[("a", &["b"]), ("b", &["c"]), ("c", &["b"])]),
            [GraphProblem::Cycle {
                cycle: vec!["b".into(), "c".into(), "b".into()],
                service: 2,
                dependency: 0
            }]
        );
        assert_eq!(
            graph(&[("solo", &["solo"])]),
            [GraphProblem::Cycle {
                cycle: vec!["solo".into(), "solo".into()],
                service: 0,
                dependency: 0
            }]
        );
    }

    #[test]
    fn very_long_chains_and_cycles_do_not_overflow_the_stack() {
        // s0 depends on s1, ... on s99999: a recursive search overflowed the stack and aborted
        // `locald status` for a project of 20,000 chained services.
        const LENGTH: usize = 100_000;
        let names: Vec<String> = (0..LENGTH).map(|i| format!("s{i}")).collect();
        let mut dependencies: Vec<Vec<String>> = (0..LENGTH)
            .map(|i| names.get(i + 1).cloned().into_iter().collect())
            .collect();
        let nodes = |dependencies: &[Vec<String>]| -> Vec<GraphProblem> {
            let nodes: Vec<GraphNode> = names
                .iter()
                .zip(dependencies)
                .map(|(name, depends_on)| GraphNode { name, depends_on })
                .collect();
            check(&nodes)
        };
        assert!(nodes(&dependencies).is_empty());
        dependencies[LENGTH - 1].push("s0".into());
        match nodes(&dependencies).as_slice() {
            [GraphProblem::Cycle {
                cycle,
                service,
                dependency,
            }] => {
                assert_eq!(cycle.len(), LENGTH + 1);
                assert_eq!((cycle[0].as_str(), cycle[LENGTH].as_str()), ("s0", "s0"));
                assert_eq!((*service, *dependency), (LENGTH - 1, 0));
            }
            other => panic!("expected one cycle, got {} problems", other.len()),
        }
    }

    #[test]
    fn many_unknown_dependencies_cost_and_say_a_bounded_amount_each() {
        // 16,000 services with an unknown dependency each took minutes (a suggestion compares
        // with every service) and printed 100+ MB (each hint listed every service).
        const COUNT: usize = 1_000;
        let names: Vec<String> = (0..COUNT).map(|i| format!("service{i}")).collect();
        let dependencies: Vec<Vec<String>> =
            (0..COUNT).map(|i| vec![format!("service{i}x")]).collect();
        let nodes: Vec<GraphNode> = names
            .iter()
            .zip(&dependencies)
            .map(|(name, depends_on)| GraphNode { name, depends_on })
            .collect();
        let problems = check(&nodes);
        assert_eq!(problems.len(), COUNT);
        let suggested = problems
            .iter()
            .filter(|p| {
                matches!(
                    p,
                    GraphProblem::UnknownDependency {
                        suggestion: Some(_),
                        ..
                    }
                )
            })
            .count();
        assert_eq!(suggested, MAX_SUGGESTIONS);
        let longest_help = problems
            .iter()
            .filter_map(|p| p.to_problem(&nodes).help)
            .map(|help| help.len())
            .max()
            .unwrap();
        assert!(longest_help < 200, "a hint of {longest_help} bytes");
    }

    #[test]
    fn unknown_dependencies_and_duplicates() {
        assert_eq!(
            graph(&[("db", &[]), ("web", &["dbb", "cache"]), ("db", &[])]),
            [
                GraphProblem::Duplicate { service: 2 },
                GraphProblem::UnknownDependency {
                    service: 1,
                    dependency: 0,
                    suggestion: Some("db".into())
                },
                GraphProblem::UnknownDependency {
                    service: 1,
                    dependency: 1,
                    suggestion: None
                },
            ]
        );
    }
}
