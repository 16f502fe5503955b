//! Checks `${services.NAME.port}` / `${services.NAME.url}` templates in `env`
//! values against the declared services, so a misspelt name fails when the
//! config loads instead of when the service starts. Other `${...}` are left
//! for the shell, as the supervisor does when it resolves them.

use super::convert::suggest;

/// Fields a service template may ask for.
const FIELDS: &[&str] = &["port", "url"];

/// A template in `value` that does not resolve: what is wrong and a hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadTemplate {
    pub message: String,
    pub help: String,
}

/// The first `${services...}` template in `value` that does not name a
/// service in `known` and a field in `port`/`url`.
pub(crate) fn check<'a>(
    value: &str,
    known: impl Iterator<Item = &'a str> + Clone,
) -> Option<BadTemplate> {
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let end = after.find('}')?;
        let inner = after[..end].trim();
        rest = &after[end + 1..];
        if let Some(bad) = check_one(inner, known.clone()) {
            return Some(bad);
        }
    }
    None
}

fn check_one<'a>(inner: &str, known: impl Iterator<Item = &'a str> + Clone) -> Option<BadTemplate> {
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
    if !known.clone().any(|name| name == service) {
        let help = match suggest(service, known.clone()) {
            Some(close) => format!("did you mean `{close}`?"),
            None => format!(
                "declared services: {}",
                known.collect::<Vec<_>>().join(", ")
            ),
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
        check(value, ["db", "web"].into_iter())
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
}
