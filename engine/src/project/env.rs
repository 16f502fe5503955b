//! The environment of a service (also used by `locald run`): process env,
//! then `.env` at the project root, then each `env_file`, then the service's
//! `env` (with `${services.NAME.port}` / `${services.NAME.url}` templates
//! resolved), then `PORT`.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use regex::Regex;

use super::dotenv::{self, DotenvError};
use crate::model::{Project, Service};

#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error(transparent)]
    Dotenv(#[from] DotenvError),
    #[error("`${{{template}}}`: no service named {service:?} (services: {known})")]
    UnknownService {
        template: String,
        service: String,
        known: String,
    },
    #[error("`${{{template}}}`: unknown field {field:?} (expected `port` or `url`)")]
    UnknownField { template: String, field: String },
    #[error("`${{{template}}}`: expected `${{services.NAME.port}}` or `${{services.NAME.url}}`")]
    Malformed { template: String },
    #[error("`${{{template}}}`: service {service:?} has no port assigned")]
    NoPort { template: String, service: String },
}

/// Every `${services…}` template; other `${…}` are left for the shell.
fn template_pattern() -> &'static Regex {
    static PATTERN: OnceLock<Regex> = OnceLock::new();
    PATTERN.get_or_init(|| {
        Regex::new(r"\$\{\s*(services\.[^}]*?)\s*\}").expect("static regex is valid")
    })
}

/// Resolve `${services.NAME.port}` and `${services.NAME.url}` in `template`.
pub fn interpolate(
    project: &Project,
    template: &str,
    ports: &BTreeMap<String, u16>,
) -> Result<String, EnvError> {
    let mut output = String::with_capacity(template.len());
    let mut last_end = 0;
    for captures in template_pattern().captures_iter(template) {
        let whole = captures.get(0).expect("group 0 always matches");
        let inner = &captures[1];
        output.push_str(&template[last_end..whole.start()]);
        output.push_str(&resolve(project, inner, ports)?);
        last_end = whole.end();
    }
    output.push_str(&template[last_end..]);
    Ok(output)
}

fn resolve(
    project: &Project,
    inner: &str,
    ports: &BTreeMap<String, u16>,
) -> Result<String, EnvError> {
    let path = inner.strip_prefix("services.").unwrap_or(inner);
    let Some((service, field)) = path.rsplit_once('.') else {
        return Err(EnvError::Malformed {
            template: inner.to_string(),
        });
    };
    if service.is_empty() {
        return Err(EnvError::Malformed {
            template: inner.to_string(),
        });
    }
    if project.service(service).is_none() {
        return Err(EnvError::UnknownService {
            template: inner.to_string(),
            service: service.to_string(),
            known: project.service_names().join(", "),
        });
    }
    if field != "port" && field != "url" {
        return Err(EnvError::UnknownField {
            template: inner.to_string(),
            field: field.to_string(),
        });
    }
    let port = ports.get(service).ok_or_else(|| EnvError::NoPort {
        template: inner.to_string(),
        service: service.to_string(),
    })?;
    Ok(if field == "port" {
        port.to_string()
    } else {
        format!("http://127.0.0.1:{port}")
    })
}

/// The full environment a host service runs with.
pub fn service_env(
    project: &Project,
    service: &Service,
    ports: &BTreeMap<String, u16>,
) -> Result<BTreeMap<String, String>, EnvError> {
    layered_env(project, service, ports, host_env())
}

/// This process's environment, less the entries that are not UTF-8 (which
/// `std::env::vars` would panic on, and a service's env map cannot hold).
pub fn host_env() -> BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(key, value)| Some((key.into_string().ok()?, value.into_string().ok()?)))
        .collect()
}

/// What a container service adds to its image's environment: every layer
/// but the host process's (whose PATH, HOME… would break the image).
pub fn container_env(
    project: &Project,
    service: &Service,
    ports: &BTreeMap<String, u16>,
) -> Result<BTreeMap<String, String>, EnvError> {
    layered_env(project, service, ports, BTreeMap::new())
}

fn layered_env(
    project: &Project,
    service: &Service,
    ports: &BTreeMap<String, u16>,
    mut env: BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, EnvError> {
    let project_dotenv = project.root.join(".env");
    if project_dotenv.is_file() {
        env.extend(dotenv::load(&project_dotenv)?);
    }
    for file in &service.env_files {
        env.extend(dotenv::load(file)?);
    }
    for (key, value) in &service.env {
        env.insert(key.clone(), interpolate(project, value, ports)?);
    }
    if let Some(port) = ports.get(&service.name) {
        env.insert("PORT".to_string(), port.to_string());
    }
    Ok(env)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    /// A host service running `command`, for tests across the supervisor.
    pub(crate) fn service(name: &str, command: &str, workdir: &Path) -> Service {
        Service {
            command: Some(command.to_string()),
            stop_timeout: Duration::from_secs(2),
            ..Service::new(name, workdir)
        }
    }

    pub(crate) fn project(root: &Path, services: Vec<Service>) -> Project {
        Project {
            name: "test".to_string(),
            root: root.to_path_buf(),
            services,
            dashboard: Default::default(),
            tasks: Vec::new(),
        }
    }

    fn ports() -> BTreeMap<String, u16> {
        BTreeMap::from([("db".to_string(), 5432), ("web".to_string(), 8080)])
    }

    fn two_services() -> Project {
        let root = PathBuf::from("/tmp");
        project(
            &root,
            vec![service("db", "true", &root), service("web", "true", &root)],
        )
    }

    #[test]
    fn interpolates_port_and_url() {
        let text = interpolate(
            &two_services(),
            "db=${services.db.port} web=${ services.web.url }/x $HOME ${OTHER}",
            &ports(),
        )
        .unwrap();
        assert_eq!(text, "db=5432 web=http://127.0.0.1:8080/x $HOME ${OTHER}");
    }

    #[test]
    fn unknown_service_or_field_is_a_clear_error() {
        let project = two_services();
        let error = interpolate(&project, "${services.cache.port}", &ports()).unwrap_err();
        assert!(
            matches!(error, EnvError::UnknownService { ref service, .. } if service == "cache")
        );
        assert!(error.to_string().contains("db, web"), "{error}");
        let error = interpolate(&project, "${services.db.host}", &ports()).unwrap_err();
        assert!(matches!(error, EnvError::UnknownField { ref field, .. } if field == "host"));
        let error = interpolate(&project, "${services.db}", &ports()).unwrap_err();
        assert!(matches!(error, EnvError::Malformed { .. }));
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(".env"),
            "A=dotenv\nB=dotenv\nC=dotenv\nPORT=1\n",
        )
        .unwrap();
        let extra = dir.path().join("extra.env");
        std::fs::write(&extra, "B=extra\nC=extra\n").unwrap();
        let mut web = service("web", "true", dir.path());
        web.env_files = vec![extra];
        web.env = BTreeMap::from([
            ("C".to_string(), "own".to_string()),
            ("DB".to_string(), "${services.db.url}".to_string()),
        ]);
        let project = project(
            dir.path(),
            vec![service("db", "true", dir.path()), web.clone()],
        );
        let env = service_env(&project, &web, &ports()).unwrap();
        assert_eq!(env["A"], "dotenv");
        assert_eq!(env["B"], "extra");
        assert_eq!(env["C"], "own");
        assert_eq!(env["DB"], "http://127.0.0.1:5432");
        assert_eq!(env["PORT"], "8080");
        assert!(env.contains_key("PATH"), "process env is the base layer");
        let container = container_env(&project, &web, &ports()).unwrap();
        assert!(
            !container.contains_key("PATH"),
            "the image keeps its own PATH"
        );
        assert_eq!(container["B"], "extra");
        assert_eq!(container["PORT"], "8080");
    }
}
