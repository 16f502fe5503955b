//! `Project` and `Service` as Rhai types: what a script gets from
//! `load_project()` and `project.service("web")`. Getters read what was
//! loaded; the one thing resolved later, the ports services use right now
//! (which may mean asking the running supervisor), is resolved once per
//! loaded project and shared by all its handles.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use rhai::{Array, CustomType, Dynamic, EvalAltResult, Map, TypeBuilder};

use crate::model::{PortSpec, Project, Service};

/// A loaded project, shared cheaply between script values.
#[derive(Clone)]
pub struct ProjectHandle(pub Arc<Project>, Arc<OnceLock<Ports>>);

/// One service of a loaded project.
#[derive(Clone)]
pub struct ServiceHandle {
    pub project: Arc<Project>,
    pub name: String,
    ports: Arc<OnceLock<Ports>>,
}

type Ports = BTreeMap<String, u16>;

impl ProjectHandle {
    pub fn new(project: Project) -> Self {
        ProjectHandle(Arc::new(project), Arc::default())
    }

    fn handle(&self, name: &str) -> ServiceHandle {
        ServiceHandle {
            project: self.0.clone(),
            name: name.to_string(),
            ports: self.1.clone(),
        }
    }
}

/// The ports of `project`'s services, resolved on first use only.
fn ports_of<'a>(project: &Project, resolved: &'a OnceLock<Ports>) -> Fallible<&'a Ports> {
    if let Some(ports) = resolved.get() {
        return Ok(ports);
    }
    let ports = current_ports(project)?;
    Ok(resolved.get_or_init(|| ports))
}

impl ServiceHandle {
    pub fn spec(&self) -> &Service {
        // A handle is only made for a service that exists in its project.
        self.project
            .service(&self.name)
            .expect("service handle always names a service of its project")
    }
}

type Fallible<T> = Result<T, Box<EvalAltResult>>;

fn error(message: String) -> Box<EvalAltResult> {
    message.into()
}

fn strings(items: &[String]) -> Array {
    items.iter().map(|s| Dynamic::from(s.clone())).collect()
}

impl ProjectHandle {
    /// The service called `name`, or an error listing the known ones.
    pub fn service(&self, name: &str) -> Fallible<ServiceHandle> {
        if self.0.service(name).is_some() {
            return Ok(self.handle(name));
        }
        let known = self.0.service_names();
        Err(error(if known.is_empty() {
            format!("unknown service `{name}`: the project declares no services")
        } else {
            format!(
                "unknown service `{name}`; known services: {}",
                known.join(", ")
            )
        }))
    }
}

impl CustomType for ProjectHandle {
    fn build(mut builder: TypeBuilder<Self>) {
        builder
            .with_name("Project")
            .with_get("name", |p: &mut Self| p.0.name.clone())
            .with_get("root", |p: &mut Self| p.0.root.display().to_string())
            .with_get("services", |p: &mut Self| -> Array {
                p.0.services
                    .iter()
                    .map(|s| Dynamic::from(p.handle(&s.name)))
                    .collect()
            })
            .with_fn("service", |p: &mut Self, name: &str| p.service(name))
            .with_fn("to_string", |p: &mut Self| format!("Project({})", p.0.name));
    }
}

impl CustomType for ServiceHandle {
    fn build(mut builder: TypeBuilder<Self>) {
        builder
            .with_name("Service")
            .with_get("name", |s: &mut Self| s.name.clone())
            .with_get("command", |s: &mut Self| -> Dynamic {
                s.spec()
                    .command
                    .clone()
                    .map_or(Dynamic::UNIT, Dynamic::from)
            })
            .with_get("image", |s: &mut Self| -> Dynamic {
                s.spec().image.clone().map_or(Dynamic::UNIT, Dynamic::from)
            })
            .with_get("is_container", |s: &mut Self| s.spec().is_container())
            .with_get("workdir", |s: &mut Self| {
                s.spec().workdir.display().to_string()
            })
            .with_get("depends_on", |s: &mut Self| strings(&s.spec().depends_on))
            .with_get("volumes", |s: &mut Self| -> Array {
                // The `HOST:CONTAINER[:ro]` form `container_run` takes.
                s.spec()
                    .volumes
                    .iter()
                    .map(|v| {
                        let mode = if v.read_only { ":ro" } else { "" };
                        Dynamic::from(format!("{}:{}{mode}", v.host.display(), v.container))
                    })
                    .collect()
            })
            // Capabilities and security options in the form `container_run` takes.
            .with_get("cap_add", |s: &mut Self| {
                strings(&s.spec().security.cap_add)
            })
            .with_get("cap_drop", |s: &mut Self| {
                strings(&s.spec().security.cap_drop)
            })
            .with_get("security_opt", |s: &mut Self| -> Array {
                security_opt_words(&s.spec().security)
                    .into_iter()
                    .map(Dynamic::from)
                    .collect()
            })
            .with_get("port", |s: &mut Self| -> Fallible<i64> {
                let ports = ports_of(&s.project, &s.ports)?;
                Ok(ports.get(&s.name).copied().map_or(0, i64::from))
            })
            .with_get("env", |s: &mut Self| -> Fallible<Map> {
                let ports = ports_of(&s.project, &s.ports)?;
                let env = crate::project::service_env(&s.project, s.spec(), ports)
                    .map_err(|e| error(e.to_string()))?;
                Ok(env
                    .into_iter()
                    .map(|(k, v)| (k.into(), Dynamic::from(v)))
                    .collect())
            })
            .with_fn("to_string", |s: &mut Self| format!("Service({})", s.name));
    }
}

/// The ports services use right now: the running supervisor's when one runs
/// (so `run` talks to the same ports as `up`), otherwise the project's
/// persisted assignment.
fn current_ports(project: &Project) -> Fallible<BTreeMap<String, u16>> {
    let state_dir = project.state_dir();
    let Some(mut client) =
        crate::control::Client::connect(&state_dir).map_err(|e| error(e.to_string()))?
    else {
        return crate::project::ports::assign(project).map_err(|e| error(e.to_string()));
    };
    let statuses = client.status().map_err(|e| error(e.to_string()))?;
    let mut ports: BTreeMap<String, u16> = statuses
        .into_iter()
        .filter_map(|s| s.port.map(|p| (s.name, p)))
        .collect();
    // Services the supervisor does not run keep their recorded port; never
    // re-assign here, as the running services' ports look busy.
    let recorded = crate::project::ports::persisted(project);
    for service in &project.services {
        if ports.contains_key(&service.name) {
            continue;
        }
        let port = match (service.port, recorded.get(&service.name)) {
            (PortSpec::Fixed(port), _) => port,
            (PortSpec::Auto, Some(port)) => *port,
            (PortSpec::Auto, None) => {
                crate::project::ports::free_port().map_err(|e| error(e.to_string()))?
            }
        };
        ports.insert(service.name.clone(), port);
    }
    Ok(ports)
}

/// `security` as `security_opt` words: only what differs from the default.
fn security_opt_words(security: &locald_runtime::Security) -> Vec<String> {
    let mut words = Vec::new();
    match &security.seccomp {
        locald_runtime::SeccompChoice::Default => {}
        locald_runtime::SeccompChoice::Unconfined => words.push("seccomp=unconfined".to_string()),
        locald_runtime::SeccompChoice::Profile(path) => {
            words.push(format!("seccomp={}", path.display()))
        }
    }
    if !security.no_new_privileges {
        words.push("no-new-privileges=false".to_string());
    }
    words
}

#[cfg(test)]
mod tests {
    use rhai::Scope;

    use super::*;

    fn project_with(toml: &str) -> (tempfile::TempDir, ProjectHandle) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(crate::config::TOML_FILE), toml).unwrap();
        let project = crate::project::load_project(dir.path()).unwrap();
        (dir, ProjectHandle::new(project))
    }

    fn eval<T: Clone + Send + Sync + 'static>(scope: &mut Scope, script: &str) -> T {
        crate::script::verb_engine()
            .eval_with_scope::<T>(scope, script)
            .unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    #[test]
    fn ports_are_resolved_once_per_loaded_project() {
        let (dir, project) = project_with("[services.web]\ncommand = \"sleep 1\"\n");
        let mut scope = Scope::new();
        scope.push("p", project);
        let first: i64 = eval(&mut scope, r#"p.service("web").port"#);
        assert!(first > 0);

        // The recorded assignment changes under the loaded project (another
        // command re-assigned it): what this project resolved stays, without
        // the files or the socket being read again.
        let other = crate::project::ports::free_port().unwrap();
        assert_ne!(i64::from(other), first);
        std::fs::write(
            dir.path().join(".locald/ports.json"),
            format!("{{\"web\": {other}}}"),
        )
        .unwrap();
        let again: i64 = eval(&mut scope, "p.services[0].port");
        assert_eq!(again, first);
        let in_env: String = eval(&mut scope, r#"p.service("web").env.PORT"#);
        assert_eq!(in_env, first.to_string());
    }

    #[test]
    fn an_unknown_service_names_the_known_ones() {
        let (_dir, project) =
            project_with("[services.web]\ncommand = \"x\"\n[services.db]\ncommand = \"y\"\n");
        let error = project.service("api").err().unwrap().to_string();
        assert!(
            error.contains("unknown service `api`; known services: web, db"),
            "{error}"
        );
        let (_dir, empty) = project_with("");
        let error = empty.service("api").err().unwrap().to_string();
        assert!(
            error.contains("the project declares no services"),
            "{error}"
        );
    }

    #[test]
    fn getters_show_what_the_service_declares() {
        let (dir, project) = project_with(
            "[services.db]\nimage = \"postgres:16\"\nvolumes = [\"./data:/var/lib/data:ro\"]\n\
             cap_add = [\"NET_RAW\"]\nsecurity_opt = [\"seccomp=unconfined\"]\n\
             [services.web]\ncommand = \"npm start\"\nworkdir = \"web\"\ndepends_on = [\"db\"]\n",
        );
        let root = dir.path().canonicalize().unwrap();
        let mut scope = Scope::new();
        scope.push("p", project);
        let volumes: Array = eval(&mut scope, r#"p.service("db").volumes"#);
        assert_eq!(
            volumes[0].to_string(),
            format!("{}/data:/var/lib/data:ro", root.display())
        );
        let options: Array = eval(&mut scope, r#"p.service("db").security_opt"#);
        assert_eq!(options[0].to_string(), "seccomp=unconfined");
        assert!(eval::<bool>(&mut scope, r#"p.service("db").is_container"#));
        assert!(eval::<bool>(&mut scope, r#"p.service("web").image == ()"#));
        let workdir: String = eval(&mut scope, r#"p.service("web").workdir"#);
        assert_eq!(workdir, root.join("web").display().to_string());
        let deps: Array = eval(&mut scope, r#"p.service("web").depends_on"#);
        assert_eq!(deps[0].to_string(), "db");
    }
}
