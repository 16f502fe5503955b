//! `Project` and `Service` as Rhai types: what a script gets from
//! `load_project()` and `project.service("web")`. Getters read what was
//! loaded; the one thing resolved later, the ports services use right now
//! (which may mean asking the running supervisor), is resolved once per
//! loaded project and shared by all its handles.
//!
//! What a service declares reaches the primitives typed, as it was loaded:
//! `svc.volumes` are `Volume` values and `svc.security_opt` `SecurityOpt`
//! values, which `run_container` takes as they are (it also takes Docker's
//! words, which it parses).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use locald_runtime::{SeccompChoice, Security, SecurityOpt, VolumeMount};
use rhai::{Array, CustomType, Dynamic, Engine, EvalAltResult, Map, TypeBuilder};

use crate::model::{PortSpec, Project, Service};
use crate::project::{EnvError, PortError};
use crate::supervisor::SupervisorError;

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
fn ports_of<'a>(
    project: &Project,
    resolved: &'a OnceLock<Ports>,
) -> Result<&'a Ports, ResolveError> {
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

    /// The environment the service (and `locald run` in it) gets, with
    /// the ports in use now.
    pub fn env(&self) -> Result<BTreeMap<String, String>, ResolveError> {
        let ports = ports_of(&self.project, &self.ports)?;
        Ok(crate::project::service_env(
            &self.project,
            self.spec(),
            ports,
        )?)
    }

    /// The service's security options that differ from the default, as
    /// `run_container` takes them.
    pub fn security_opts(&self) -> Vec<SecurityOpt> {
        security_opts(&self.spec().security)
    }
}

type Fallible<T> = Result<T, Box<EvalAltResult>>;

/// A service name that is not one of the project's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown service `{name}`{}", known_services(known))]
pub struct UnknownService {
    pub name: String,
    pub known: Vec<String>,
}

fn known_services(known: &[String]) -> String {
    if known.is_empty() {
        ": the project declares no services".to_string()
    } else {
        format!("; known services: {}", known.join(", "))
    }
}

/// Why a service's port or environment could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Supervisor(#[from] SupervisorError),
    #[error(transparent)]
    Port(#[from] PortError),
    #[error(transparent)]
    Env(#[from] EnvError),
}

fn error(error: impl std::fmt::Display) -> Box<EvalAltResult> {
    error.to_string().into()
}

fn strings(items: &[String]) -> Array {
    items.iter().map(|s| Dynamic::from(s.clone())).collect()
}

impl ProjectHandle {
    /// The service called `name`, or an error listing the known ones.
    pub fn service(&self, name: &str) -> Result<ServiceHandle, UnknownService> {
        if self.0.service(name).is_some() {
            return Ok(self.handle(name));
        }
        Err(UnknownService {
            name: name.to_string(),
            known: self
                .0
                .service_names()
                .into_iter()
                .map(str::to_string)
                .collect(),
        })
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
            .with_fn("service", |p: &mut Self, name: &str| {
                p.service(name).map_err(error)
            })
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
                s.spec()
                    .volumes
                    .iter()
                    .cloned()
                    .map(Dynamic::from)
                    .collect()
            })
            // Canonical capability names, which `run_container` takes.
            .with_get("cap_add", |s: &mut Self| {
                strings(&s.spec().security.cap_add)
            })
            .with_get("cap_drop", |s: &mut Self| {
                strings(&s.spec().security.cap_drop)
            })
            .with_get("init", |s: &mut Self| s.spec().init)
            // `#{ path, builder, buildpacks, env }` of a built service, else `()`.
            .with_get("build", |s: &mut Self| -> Dynamic {
                let Some(build) = &s.spec().build else {
                    return Dynamic::UNIT;
                };
                let mut map = rhai::Map::new();
                map.insert("path".into(), build.path.display().to_string().into());
                map.insert(
                    "builder".into(),
                    build.builder.clone().map_or(Dynamic::UNIT, Dynamic::from),
                );
                map.insert("buildpacks".into(), strings(&build.buildpacks).into());
                let env: rhai::Map = build
                    .env
                    .iter()
                    .map(|(k, v)| (k.into(), v.clone().into()))
                    .collect();
                map.insert("env".into(), env.into());
                map.into()
            })
            .with_get("security_opt", |s: &mut Self| -> Array {
                s.security_opts().into_iter().map(Dynamic::from).collect()
            })
            .with_get("port", |s: &mut Self| -> Fallible<i64> {
                let ports = ports_of(&s.project, &s.ports).map_err(error)?;
                Ok(ports.get(&s.name).copied().map_or(0, i64::from))
            })
            .with_get("env", |s: &mut Self| -> Fallible<Map> {
                let env = s.env().map_err(error)?;
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
fn current_ports(project: &Project) -> Result<BTreeMap<String, u16>, ResolveError> {
    let state_dir = project.state_dir();
    let Some(mut client) = crate::control::Client::connect(&state_dir)? else {
        return Ok(crate::project::ports::assign(project)?);
    };
    let statuses = client.status()?;
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
            (PortSpec::Auto, None) => crate::project::ports::free_port()?,
        };
        ports.insert(service.name.clone(), port);
    }
    Ok(ports)
}

/// `security` as the security options that differ from the default.
fn security_opts(security: &Security) -> Vec<SecurityOpt> {
    let mut options = Vec::new();
    if security.seccomp != SeccompChoice::Default {
        options.push(SecurityOpt::Seccomp(security.seccomp.clone()));
    }
    if !security.no_new_privileges {
        options.push(SecurityOpt::NoNewPrivileges(false));
    }
    options
}

/// Docker's word for a security option (`seccomp=unconfined`).
fn security_opt_word(option: &SecurityOpt) -> String {
    match option {
        SecurityOpt::Seccomp(SeccompChoice::Default) => "seccomp=default".to_string(),
        SecurityOpt::Seccomp(SeccompChoice::Unconfined) => "seccomp=unconfined".to_string(),
        SecurityOpt::Seccomp(SeccompChoice::Profile(path)) => {
            format!("seccomp={}", path.display())
        }
        SecurityOpt::NoNewPrivileges(on) => format!("no-new-privileges={on}"),
    }
}

/// `HOST:CONTAINER[:ro]`, the form `locald.toml` and `-v` take.
fn volume_text(volume: &VolumeMount) -> String {
    let mode = if volume.read_only { ":ro" } else { "" };
    format!("{}:{}{mode}", volume.host.display(), volume.container)
}

/// Registers `Volume` and `SecurityOpt`, the runtime's types that service
/// handles give and `run_container` takes.
pub fn register_runtime_types(engine: &mut Engine) {
    engine
        .register_type_with_name::<VolumeMount>("Volume")
        .register_get("host", |v: &mut VolumeMount| v.host.display().to_string())
        .register_get("container", |v: &mut VolumeMount| v.container.clone())
        .register_get("read_only", |v: &mut VolumeMount| v.read_only)
        .register_fn("to_string", |v: &mut VolumeMount| volume_text(v))
        .register_fn("to_debug", |v: &mut VolumeMount| {
            format!("Volume({})", volume_text(v))
        });
    engine
        .register_type_with_name::<SecurityOpt>("SecurityOpt")
        .register_fn("to_string", |o: &mut SecurityOpt| security_opt_word(o))
        .register_fn("to_debug", |o: &mut SecurityOpt| {
            format!("SecurityOpt({})", security_opt_word(o))
        });
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
        // Any other number (the kernel may hand out `first` again as a
        // free port: it is not listened on).
        let other = if first < 65535 { first + 1 } else { first - 1 };
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
    fn run_container_takes_the_service_typed() {
        let (dir, project) = project_with(
            "[services.db]\nimage = \"postgres:16\"\nvolumes = [\"./data:/data:ro\"]\n\
             security_opt = [\"seccomp=unconfined\", \"no-new-privileges=false\"]\n",
        );
        let root = dir.path().canonicalize().unwrap();
        let mut scope = Scope::new();
        scope.push("p", project);
        let options: Map = eval(
            &mut scope,
            r#"let db = p.service("db");
               #{ volumes: db.volumes, security_opt: db.security_opt, cap_add: db.cap_add }"#,
        );
        let options: crate::script::api::container::RunContainerOptions =
            crate::script::api::options::read("run_container", options).unwrap();
        assert_eq!(
            options.volumes,
            [VolumeMount {
                host: root.join("data"),
                container: "/data".into(),
                read_only: true,
            }]
        );
        assert_eq!(
            options.security_opt,
            [
                SecurityOpt::Seccomp(SeccompChoice::Unconfined),
                SecurityOpt::NoNewPrivileges(false)
            ]
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
        let volume: String = eval(&mut scope, r#"p.service("db").volumes[0].to_string()"#);
        assert_eq!(volume, format!("{}/data:/var/lib/data:ro", root.display()));
        let volume: Array = eval(
            &mut scope,
            r#"let v = p.service("db").volumes[0]; [v.host, v.container, v.read_only]"#,
        );
        assert_eq!(
            volume[0].to_string(),
            root.join("data").display().to_string()
        );
        assert_eq!(volume[1].to_string(), "/var/lib/data");
        assert!(volume[2].as_bool().unwrap());
        let option: String = eval(&mut scope, r#"`${p.service("db").security_opt[0]}`"#);
        assert_eq!(option, "seccomp=unconfined");
        let caps: Array = eval(&mut scope, r#"p.service("db").cap_add"#);
        assert_eq!(caps[0].to_string(), "CAP_NET_RAW");
        assert!(eval::<bool>(&mut scope, r#"p.service("db").is_container"#));
        assert!(eval::<bool>(&mut scope, r#"p.service("web").image == ()"#));
        let workdir: String = eval(&mut scope, r#"p.service("web").workdir"#);
        assert_eq!(workdir, root.join("web").display().to_string());
        let deps: Array = eval(&mut scope, r#"p.service("web").depends_on"#);
        assert_eq!(deps[0].to_string(), "db");
    }
}
