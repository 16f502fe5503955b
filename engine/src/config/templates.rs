//! Checks `${services.NAME.port}` / `${services.NAME.url}` templates in `env`
//! values against the declared services, so a misspelt name fails when the
//! config loads instead of when the service starts. Other `${...}` are left
//! for the shell, as the supervisor does when it resolves them.

use super::convert::{declared_services, suggest};

/// Fields a service template may ask for.
const FIELDS: &[&str] = &["port", "url"];

/// A template in `value` that does not resolve: what is wrong and a hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadTemplate {
    pub message: String,
    pub help: String,
}

/// Unknown service references that get a "did you mean" suggestion: each compares the name with
/// every service, so suggesting for all of 16,000 bad templates took minutes (past Ctrl-C).
const MAX_SUGGESTIONS: usize = 16;

/// The declared services, for checking every template of a project against them: a name is
/// looked up in a hash set, and suggestions are bounded in number, so the check is linear in
/// the size of the project.
pub(crate) struct KnownServices<'a> {
    names: Vec<&'a str>,
    set: std::collections::HashSet<&'a str>,
    suggestions_left: std::cell::Cell<usize>,
}

impl<'a> KnownServices<'a> {
    pub(crate) fn new(names: impl Iterator<Item = &'a str>) -> Self {
        let names: Vec<&'a str> = names.collect();
        KnownServices {
            set: names.iter().copied().collect(),
            names,
            suggestions_left: std::cell::Cell::new(MAX_SUGGESTIONS),
        }
    }

    fn iter(&self) -> impl Iterator<Item = &'a str> + Clone + '_ {
        self.names.iter().copied()
    }
}

/// The first `${services...}` template in `value` that does not name a
/// service in `known` and a field in `port`/`url`.
pub(crate) fn check(value: &str, known: &KnownServices<'_>) -> Option<BadTemplate> {
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let end = after.find('}')?;
        let inner = after[..end].trim();
        rest = &after[end + 1..];
        if let Some(bad) = check_one(inner, known) {
            return Some(bad);
        }
    }
    None
}

fn check_one(inner: &str, known: &KnownServices<'_>) -> Option<BadTemplate> {
    let reference = inner.strip_prefix("services.")?;
    let template = format!("${{{inner}}}");
    let (service, field) = match reference.split('.').collect::<Vec<_>>().as_slice() {
        [service, field] => (*service, *field),
        _ => {
            return Some(BadTemplate {
                message: format!("`{template}` is not a service reference"),
                help: "write `${services.NAME.port}` or `${services.NAME.url}`".to_owned(),
            })
        }
    };
    if !known.set.contains(service) {
        let left = known.suggestions_left.get();
        known.suggestions_left.set(left.saturating_sub(1));
        let suggestion = if left > 0 {
            suggest(service, known.iter())
        } else {
            None
        };
        let help = match suggestion {
            Some(close) => format!("did you mean `{close}`?"),
            None => declared_services(known.iter()),
        };
        return Some(BadTemplate {
            message: format!("`{template}` refers to unknown service `{service}`"),
            help,
        });
    }
    if !FIELDS.contains(&field) {
        return Some(BadTemplate {
            message: format!("`{template}` asks for unknown field `{field}`"),
            help: "a service template gives its `port` or its `url`".to_owned(),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_against(value: &str) -> Option<BadTemplate> {
        check(value, &KnownServices::new(["db", "web"].into_iter()))
    }

    #[test]
    fn valid_templates_and_shell_variables_pass() {
        assert_eq!(check_against("postgres://${services.db.url}/x"), None);
        assert_eq!(
            check_against("${ services.web.port } $HOME ${HOME} ${OTHER:-x}"),
            None
        );
        assert_eq!(check_against("no templates, or an unclosed ${"), None);
    }

    #[test]
    fn bad_templates_are_explained() {
        assert_eq!(
            check_against("${services.dbb.url}"),
            Some(BadTemplate {
                message: "`${services.dbb.url}` refers to unknown service `dbb`".into(),
                help: "did you mean `db`?".into()
            })
        );
        assert_eq!(
            check_against("x ${services.db.host}").unwrap().message,
            "`${services.db.host}` asks for unknown field `host`"
        );
        assert_eq!(
            check_against("${services.db}").unwrap().message,
            "`${services.db}` is not a service reference"
        );
        assert_eq!(
            check_against("${services.zzz.port}").unwrap().help,
            "declared services: db, web"
        );
    }

    #[test]
    fn suggestions_are_bounded_in_number() {
        let names: Vec<String> = (0..100).map(|i| format!("service{i}")).collect();
        let known = KnownServices::new(names.iter().map(String::as_str));
        let helps: Vec<String> = (0..100)
            .map(|i| {
                check(&format!("${{services.service{i}x.port}}"), &known)
                    .unwrap()
                    .help
            })
            .collect();
        assert!(helps[..MAX_SUGGESTIONS]
            .iter()
            .all(|help| help.starts_with("did you mean")));
        assert!(helps[MAX_SUGGESTIONS..]
            .iter()
            .all(|help| help.starts_with("declared services: service0,")
                && help.ends_with("and 90 more")));
    }
}
