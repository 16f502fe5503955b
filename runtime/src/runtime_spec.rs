//! Turns a [`ContainerSpec`] into an OCI runtime spec with Docker's semantics: Entrypoint + Cmd,
//! merged Env, WorkingDir, User, host networking, the runtime-spec's recommended masked and
//! read-only paths, and Docker's confinement: its default capabilities without `CAP_NET_RAW`, its
//! default seccomp profile, and no-new-privileges (see [`crate::Security`]). Pure but for reading
//! the image's own account files and a seccomp profile file when one is asked for.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde_json::{json, Value};

use crate::container_spec::{ContainerSpec, Mode};
use crate::image_user::{self, ResolvedUser, UserError};
use crate::seccomp::{self, SeccompError};
use crate::security::SeccompChoice;

// Annotations asking `locald-shim` to mount an overlay of the image on the bundle's rootfs.
use locald_shim_protocol::{LOWER_ANNOTATION, UPPER_ANNOTATION, WORK_ANNOTATION};

/// Bundle-relative names of the files and directories the spec refers to.
pub const ROOTFS_DIR: &str = "rootfs";
pub const UPPER_DIR: &str = "upper";
pub const WORK_DIR: &str = "work";
pub const HOSTS_FILE: &str = "hosts";
pub const RESOLV_CONF_FILE: &str = "resolv.conf";

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// runc's default masked paths (hidden from the container).
pub const MASKED_PATHS: [&str; 11] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// runc's default read-only paths.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Errors in turning a container request into a runtime spec.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("no command: the image has no Entrypoint or Cmd and none was given")]
    NoCommand,
    #[error(transparent)]
    User(#[from] UserError),
    #[error("volume target {0:?} must be an absolute path")]
    RelativeVolumeTarget(String),
    #[error("invalid container id {0:?}: use letters, digits, '_', '+', '-' and '.'")]
    InvalidId(String),
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    #[error("building the OCI spec: {0}")]
    Build(#[from] serde_json::Error),
}

/// The process arguments under Docker's rules: an Entrypoint override also clears the image's
/// Cmd; a command replaces Cmd.
pub fn process_args(spec: &ContainerSpec) -> Result<Vec<String>, SpecError> {
    let config = &spec.image.config;
    let (entrypoint, cmd) = match &spec.entrypoint {
        Some(entrypoint) => (entrypoint.clone(), spec.command.clone().unwrap_or_default()),
        None => (
            config.entrypoint.clone(),
            spec.command.clone().unwrap_or_else(|| config.cmd.clone()),
        ),
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(SpecError::NoCommand);
    }
    Ok(args)
}

/// The image's Env with the request's overrides (same keys replaced in place), a default PATH,
/// HOME from the user's account, and TERM for terminals.
pub fn process_env(spec: &ContainerSpec, home: Option<&str>) -> Vec<String> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |key: &str, value: &str| match env.iter_mut().find(|(k, _)| k == key) {
        Some(entry) => entry.1 = value.to_string(),
        None => env.push((key.to_string(), value.to_string())),
    };
    for item in &spec.image.config.env {
        match item.split_once('=') {
            Some((key, value)) => set(key, value),
            None => set(item, ""),
        }
    }
    for (key, value) in &spec.env {
        set(key, value);
    }
    let mut defaults = vec![("PATH", DEFAULT_PATH.to_string())];
    defaults.push((
        "HOME",
        home.filter(|h| !h.is_empty()).unwrap_or("/").to_string(),
    ));
    if let Some(hostname) = &spec.hostname {
        defaults.push(("HOSTNAME", hostname.clone()));
    }
    if spec.tty {
        defaults.push(("TERM", "xterm".to_string()));
    }
    for (key, value) in defaults {
        if !env.iter().any(|(k, _)| k == key) {
            env.push((key.to_string(), value));
        }
    }
    env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// The container's working directory: the request's, else the image's, else `/`; relative paths
/// are taken from `/` as Docker does.
pub fn process_cwd(spec: &ContainerSpec) -> String {
    let dir = spec
        .workdir
        .as_deref()
        .or(spec.image.config.working_dir.as_deref())
        .filter(|d| !d.is_empty())
        .unwrap_or("/");
    if dir.starts_with('/') {
        dir.to_string()
    } else {
        format!("/{dir}")
    }
}

/// True for ids libcontainer accepts (also safe as file names and cgroup names).
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'))
}

/// The cgroup of container `id`, relative to each hierarchy's root: `locald/<id>`.
pub fn cgroup_relative_path(id: &str) -> PathBuf {
    Path::new(CGROUP_PARENT).join(id)
}

/// The cgroup (in every hierarchy) under which locald's containers get theirs.
pub const CGROUP_PARENT: &str = "locald";

/// Builds the OCI runtime spec for `spec`, for a bundle laid out as [`crate::Bundle`] does
/// (bundle-relative mount sources, overlay annotations for the shim).
pub fn runtime_spec(spec: &ContainerSpec, mode: Mode) -> Result<Spec, SpecError> {
    if !is_valid_id(&spec.id) {
        return Err(SpecError::InvalidId(spec.id.clone()));
    }
    let user_request = spec
        .user
        .as_deref()
        .or(spec.image.config.user.as_deref())
        .unwrap_or("");
    let user = image_user::resolve(user_request, &spec.image.rootfs)?;
    let rootless = matches!(mode, Mode::Rootless { .. });

    // In this order, so that a request with several faults reports the same one as before.
    let mounts = mounts(spec, rootless)?;
    let linux = linux(spec, mode, &user)?;
    let process = process(spec, &user, rootless)?;
    let mut document = json!({
        "ociVersion": "1.0.2",
        "root": {"path": ROOTFS_DIR, "readonly": false},
        "process": process,
        "mounts": mounts,
        "linux": linux,
        "annotations": {
            LOWER_ANNOTATION: spec.image.rootfs,
            UPPER_ANNOTATION: UPPER_DIR,
            WORK_ANNOTATION: WORK_DIR,
        },
    });
    if let Some(hostname) = &spec.hostname {
        document["hostname"] = json!(hostname);
    }
    Ok(serde_json::from_value(document)?)
}

/// The spec's `process`: what runs, as whom, where, with which capabilities.
fn process(spec: &ContainerSpec, user: &ResolvedUser, rootless: bool) -> Result<Value, SpecError> {
    let capabilities = spec.security.capabilities();
    let mut process_user = json!({"uid": user.uid, "gid": user.gid});
    if !rootless && !user.additional_gids.is_empty() {
        process_user["additionalGids"] = json!(user.additional_gids);
    }
    let mut process = json!({
        "terminal": spec.tty,
        "user": process_user,
        "args": match spec.init {
            Some(_) => crate::init::behind_init(process_args(spec)?),
            None => process_args(spec)?,
        },
        "env": process_env(spec, user.home.as_deref()),
        "cwd": process_cwd(spec),
        // Inheritable and ambient stay empty, as Docker leaves them: an exec'd program gets no
        // capability its file does not carry.
        "capabilities": {
            "bounding": capabilities,
            "effective": capabilities,
            "permitted": capabilities,
            "inheritable": [],
            "ambient": [],
        },
    });
    // Absent, not false, when off: libcontainer takes any value as "on" when ordering the seccomp
    // set-up around the capability drop.
    if spec.security.no_new_privileges {
        process["noNewPrivileges"] = json!(true);
    }
    Ok(process)
}

/// The spec's `mounts`: Docker's standard file systems, the bundle's hosts and resolv.conf, then
/// the request's volumes.
fn mounts(spec: &ContainerSpec, rootless: bool) -> Result<Vec<Value>, SpecError> {
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
    ];
    // gid 5 (tty) is not mapped in a rootless user namespace, so devpts cannot be given it.
    let devpts: &[&str] = if rootless {
        &[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
        ]
    } else {
        &[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5",
        ]
    };
    mounts.push(mount("/dev/pts", "devpts", "devpts", devpts));
    mounts.push(mount(
        "/dev/shm",
        "tmpfs",
        "shm",
        &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
    ));
    mounts.push(mount(
        "/dev/mqueue",
        "mqueue",
        "mqueue",
        &["nosuid", "noexec", "nodev"],
    ));
    if rootless {
        // sysfs may only be mounted by the owner of the network namespace; we share the host's.
        mounts.push(mount(
            "/sys",
            "bind",
            "/sys",
            &["rbind", "nosuid", "noexec", "nodev", "ro"],
        ));
    } else {
        mounts.push(mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ));
    }
    mounts.push(mount(
        "/tmp",
        "tmpfs",
        "tmpfs",
        &["nosuid", "nodev", "mode=1777"],
    ));
    mounts.push(mount(
        "/etc/resolv.conf",
        "bind",
        RESOLV_CONF_FILE,
        &["rbind", "ro"],
    ));
    mounts.push(mount("/etc/hosts", "bind", HOSTS_FILE, &["rbind", "ro"]));
    if let Some(init) = &spec.init {
        mounts.push(json!({
            "destination": crate::init::INIT_IN_CONTAINER,
            "type": "bind",
            "source": init,
            "options": ["rbind", "rprivate", "ro", "nosuid", "nodev"],
        }));
    }
    for volume in &spec.volumes {
        if !volume.container.starts_with('/') {
            return Err(SpecError::RelativeVolumeTarget(volume.container.clone()));
        }
        let access = if volume.read_only { "ro" } else { "rw" };
        mounts.push(json!({
            "destination": volume.container,
            "type": "bind",
            "source": volume.host,
            "options": ["rbind", "rprivate", access],
        }));
    }
    Ok(mounts)
}

/// The spec's `linux`: namespaces (the host's network), the cgroup, masked and read-only paths,
/// the device rules (root) or the id mappings (rootless), and the seccomp profile.
///
/// Rootless, the caller's ids are the only ones an unprivileged process may map (no setuid
/// helper), so they are mapped to the ids the container runs as: root for most images, the
/// image's or the request's user otherwise (a CNB build runs as the builder's `CNB_USER_ID`, a
/// built image as its `User`). Everything of the caller's (the store's image files, volumes)
/// then belongs to that user inside, and everything else shows as the overflow ids.
fn linux(spec: &ContainerSpec, mode: Mode, user: &ResolvedUser) -> Result<Value, SpecError> {
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    let mut linux = json!({
        "cgroupsPath": Path::new("/").join(cgroup_relative_path(&spec.id)),
        "maskedPaths": MASKED_PATHS,
        "readonlyPaths": READONLY_PATHS,
    });
    match mode {
        Mode::Root => {
            linux["resources"] = json!({ "devices": default_device_rules() });
        }
        Mode::Rootless { uid, gid } => {
            namespaces.push(json!({"type": "user"}));
            linux["uidMappings"] = json!([{"containerID": user.uid, "hostID": uid, "size": 1}]);
            linux["gidMappings"] = json!([{"containerID": user.gid, "hostID": gid, "size": 1}]);
        }
    }
    linux["namespaces"] = Value::Array(namespaces);
    let profile = match &spec.security.seccomp {
        SeccompChoice::Default => Some(seccomp::default_profile()),
        SeccompChoice::Unconfined => None,
        SeccompChoice::Profile(path) => Some(seccomp::load_profile(path)?),
    };
    if let Some(profile) = profile {
        let capabilities = spec.security.capabilities();
        linux["seccomp"] = seccomp::render(&profile, seccomp::Target::host(&capabilities));
    }
    Ok(linux)
}

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Value {
    json!({"destination": destination, "type": typ, "source": source, "options": options})
}

/// Docker's device cgroup: nothing but the standard character devices may be read or written
/// (mknod stays allowed, the resulting nodes stay unusable).
fn default_device_rules() -> Value {
    let allow = |major: i64, minor: Option<i64>| json!({"allow": true, "type": "c", "major": major, "minor": minor, "access": "rwm"});
    json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "access": "m"},
        {"allow": true, "type": "b", "access": "m"},
        allow(1, Some(3)),   // null
        allow(1, Some(5)),   // zero
        allow(1, Some(7)),   // full
        allow(1, Some(8)),   // random
        allow(1, Some(9)),   // urandom
        allow(5, Some(0)),   // tty
        allow(5, Some(1)),   // console
        allow(5, Some(2)),   // ptmx
        allow(136, None),    // pts/*
        allow(10, Some(200)), // net/tun
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities::DEFAULT_CAPABILITIES;
    use crate::container_spec::VolumeMount;
    use locald_image::{ImageConfig, StoredImage};
    use std::path::PathBuf;

    fn image(entrypoint: &[&str], cmd: &[&str]) -> StoredImage {
        StoredImage {
            reference: "example.test/app:1".into(),
            manifest_digest: "sha256:00".into(),
            config: ImageConfig {
                entrypoint: entrypoint.iter().map(|s| s.to_string()).collect(),
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                env: vec![
                    "PATH=/image/bin".into(),
                    "MODE=image".into(),
                    "KEEP=1".into(),
                ],
                working_dir: None,
                user: None,
                exposed_ports: vec![],
            },
            rootfs: PathBuf::from("/nonexistent/rootfs"),
        }
    }

    fn request(image: StoredImage) -> ContainerSpec {
        ContainerSpec {
            id: "proj-web-1a2b".into(),
            image,
            command: None,
            entrypoint: None,
            env: vec![],
            workdir: None,
            user: None,
            volumes: vec![],
            tty: false,
            interactive: false,
            hostname: None,
            security: Default::default(),
            init: None,
        }
    }

    /// A rootfs whose /etc/passwd has root and `app` (1000), with `group` as its /etc/group.
    fn rootfs_with_accounts(group: &str) -> tempfile::TempDir {
        let rootfs = tempfile::tempdir().unwrap();
        std::fs::create_dir(rootfs.path().join("etc")).unwrap();
        std::fs::write(
            rootfs.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(rootfs.path().join("etc/group"), group).unwrap();
        rootfs
    }

    /// A read-write and a read-only bind.
    fn two_volumes() -> Vec<VolumeMount> {
        vec![
            VolumeMount {
                host: "/data".into(),
                container: "/data".into(),
                read_only: false,
            },
            VolumeMount {
                host: "/conf".into(),
                container: "/etc/app".into(),
                read_only: true,
            },
        ]
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn entrypoint_and_cmd_follow_docker() {
        let mut spec = request(image(&["/entry", "-x"], &["serve", "--port"]));
        assert_eq!(
            process_args(&spec).unwrap(),
            strings(&["/entry", "-x", "serve", "--port"])
        );

        spec.command = Some(strings(&["migrate"]));
        assert_eq!(
            process_args(&spec).unwrap(),
            strings(&["/entry", "-x", "migrate"])
        );

        // An entrypoint override drops the image's Cmd...
        spec.command = None;
        spec.entrypoint = Some(strings(&["/bin/sh"]));
        assert_eq!(process_args(&spec).unwrap(), strings(&["/bin/sh"]));
        // ...but keeps a command given with it.
        spec.command = Some(strings(&["-c", "true"]));
        assert_eq!(
            process_args(&spec).unwrap(),
            strings(&["/bin/sh", "-c", "true"])
        );
        // An empty entrypoint resets it.
        spec.entrypoint = Some(vec![]);
        assert_eq!(process_args(&spec).unwrap(), strings(&["-c", "true"]));
    }

    #[test]
    fn a_container_needs_a_command() {
        let spec = request(image(&[], &[]));
        assert!(matches!(process_args(&spec), Err(SpecError::NoCommand)));
        let mut spec = request(image(&["/entry"], &["x"]));
        spec.entrypoint = Some(vec![]);
        assert!(matches!(
            runtime_spec(&spec, Mode::Root),
            Err(SpecError::NoCommand)
        ));
    }

    #[test]
    fn env_overrides_merge_over_the_image() {
        let mut spec = request(image(&["/entry"], &[]));
        spec.env = vec![
            ("MODE".into(), "dev".into()),
            ("PORT".into(), "8080".into()),
        ];
        let env = process_env(&spec, Some("/home/app"));
        assert_eq!(
            env,
            strings(&[
                "PATH=/image/bin",
                "MODE=dev",
                "KEEP=1",
                "PORT=8080",
                "HOME=/home/app"
            ])
        );
    }

    #[test]
    fn env_gets_defaults_only_when_missing() {
        let mut image = image(&["/entry"], &[]);
        image.config.env.clear();
        let mut spec = request(image);
        spec.tty = true;
        spec.hostname = Some("web".into());
        let env = process_env(&spec, None);
        assert!(env.contains(&format!("PATH={DEFAULT_PATH}")), "{env:?}");
        assert!(env.contains(&"HOME=/".to_string()));
        assert!(env.contains(&"TERM=xterm".to_string()));
        assert!(env.contains(&"HOSTNAME=web".to_string()));
    }

    #[test]
    fn workdir_prefers_the_request_then_the_image() {
        let mut image = image(&["/entry"], &[]);
        assert_eq!(process_cwd(&request(image.clone())), "/");
        image.config.working_dir = Some("/srv".into());
        let mut spec = request(image);
        assert_eq!(process_cwd(&spec), "/srv");
        spec.workdir = Some("app".into());
        assert_eq!(process_cwd(&spec), "/app");
        let oci = runtime_spec(&spec, Mode::Root).unwrap();
        assert_eq!(
            oci.process().as_ref().unwrap().cwd(),
            &PathBuf::from("/app")
        );
    }

    #[test]
    fn an_init_is_mounted_read_only_and_runs_the_command() {
        let mut spec = request(image(&["/entry"], &["serve"]));
        let plain = serde_json::to_value(runtime_spec(&spec, Mode::Root).unwrap()).unwrap();
        assert_eq!(plain["process"]["args"], json!(["/entry", "serve"]));
        let mounts_init = |m: &Value| m["destination"] == crate::init::INIT_IN_CONTAINER;
        assert!(!plain["mounts"].as_array().unwrap().iter().any(mounts_init));

        spec.init = Some(PathBuf::from("/usr/bin/tini-static"));
        let json = serde_json::to_value(runtime_spec(&spec, Mode::Root).unwrap()).unwrap();
        assert_eq!(
            json["process"]["args"],
            json!(["/sbin/locald-init", "--", "/entry", "serve"])
        );
        let mounts = json["mounts"].as_array().unwrap();
        let init = mounts
            .iter()
            .find(|m| m["destination"] == "/sbin/locald-init")
            .expect("the init is mounted");
        assert_eq!(init["source"], "/usr/bin/tini-static");
        assert_eq!(init["type"], "bind");
        let options = init["options"].as_array().unwrap();
        assert!(options.contains(&json!("ro")), "{options:?}");
    }

    #[test]
    fn root_spec_has_the_expected_shape() {
        let mut spec = request(image(&["/entry"], &[]));
        spec.volumes = two_volumes();
        spec.hostname = Some("web".into());
        let oci = runtime_spec(&spec, Mode::Root).unwrap();
        let json = serde_json::to_value(&oci).unwrap();

        assert_eq!(json["root"]["path"], "rootfs");
        assert_eq!(json["process"]["terminal"], false);
        assert_eq!(json["process"]["noNewPrivileges"], true);
        assert_eq!(json["process"]["user"]["uid"], 0);
        let mut bounding: Vec<&str> = json["process"]["capabilities"]["bounding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        bounding.sort_unstable();
        let mut expected = DEFAULT_CAPABILITIES.to_vec();
        expected.sort_unstable();
        assert_eq!(bounding, expected);
        assert_eq!(json["hostname"], "web");
        assert_eq!(json["linux"]["cgroupsPath"], "/locald/proj-web-1a2b");
        assert_eq!(json["linux"]["maskedPaths"], json!(MASKED_PATHS));
        assert_eq!(json["linux"]["readonlyPaths"], json!(READONLY_PATHS));
        assert_eq!(json["annotations"][LOWER_ANNOTATION], "/nonexistent/rootfs");
        let namespaces: Vec<&str> = json["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|ns| ns["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            namespaces,
            ["pid", "ipc", "uts", "mount"],
            "host network: no netns"
        );
        assert!(json["linux"]["uidMappings"].is_null());
        assert!(
            json["linux"]["resources"]["devices"]
                .as_array()
                .unwrap()
                .len()
                > 5
        );

        let mounts = json["mounts"].as_array().unwrap();
        let by_target = |target: &str| mounts.iter().find(|m| m["destination"] == target).cloned();
        assert_eq!(by_target("/sys").unwrap()["type"], "sysfs");
        assert_eq!(by_target("/tmp").unwrap()["type"], "tmpfs");
        assert_eq!(by_target("/etc/hosts").unwrap()["source"], "hosts");
        assert_eq!(
            by_target("/etc/resolv.conf").unwrap()["source"],
            "resolv.conf"
        );
        for target in ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue"] {
            assert!(by_target(target).is_some(), "{target} is mounted");
        }
        let data = by_target("/data").unwrap();
        assert_eq!(data["source"], "/data");
        assert_eq!(data["options"], json!(["rbind", "rprivate", "rw"]));
        assert_eq!(
            by_target("/etc/app").unwrap()["options"],
            json!(["rbind", "rprivate", "ro"])
        );
    }

    #[test]
    fn rootless_spec_maps_the_caller_and_binds_sys() {
        let spec = request(image(&["/entry"], &[]));
        let oci = runtime_spec(
            &spec,
            Mode::Rootless {
                uid: 1000,
                gid: 1001,
            },
        )
        .unwrap();
        let json = serde_json::to_value(&oci).unwrap();
        assert_eq!(
            json["linux"]["uidMappings"],
            json!([{"containerID": 0, "hostID": 1000, "size": 1}])
        );
        assert_eq!(
            json["linux"]["gidMappings"],
            json!([{"containerID": 0, "hostID": 1001, "size": 1}])
        );
        assert!(json["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .contains(&json!({"type": "user"})));
        assert!(
            json["linux"]["resources"].is_null(),
            "no cgroup limits rootless"
        );
        let mounts = json["mounts"].as_array().unwrap();
        let sys = mounts.iter().find(|m| m["destination"] == "/sys").unwrap();
        assert_eq!(sys["type"], "bind");
        let devpts = mounts
            .iter()
            .find(|m| m["destination"] == "/dev/pts")
            .unwrap();
        assert!(!devpts["options"]
            .as_array()
            .unwrap()
            .contains(&json!("gid=5")));
    }

    #[test]
    fn users_resolve_against_the_image() {
        let rootfs = rootfs_with_accounts("root:x:0:\napp:x:1000:\n");
        let mut image = image(&["/entry"], &[]);
        image.rootfs = rootfs.path().to_path_buf();
        image.config.user = Some("app".into());
        let mut spec = request(image);
        let oci = runtime_spec(&spec, Mode::Root).unwrap();
        let user = oci.process().as_ref().unwrap().user();
        assert_eq!((user.uid(), user.gid()), (1000, 1000));
        assert!(oci
            .process()
            .as_ref()
            .unwrap()
            .env()
            .as_ref()
            .unwrap()
            .contains(&"HOME=/home/app".to_string()));

        // Rootless, the caller is mapped to the user the container runs as.
        let rootless = Mode::Rootless {
            uid: 2000,
            gid: 2001,
        };
        let json = serde_json::to_value(runtime_spec(&spec, rootless).unwrap()).unwrap();
        assert_eq!(
            json["linux"]["uidMappings"],
            json!([{"containerID": 1000, "hostID": 2000, "size": 1}])
        );
        assert_eq!(
            json["linux"]["gidMappings"],
            json!([{"containerID": 1000, "hostID": 2001, "size": 1}])
        );
        assert_eq!(json["process"]["user"], json!({"uid": 1000, "gid": 1000}));
        spec.user = Some("0".into());
        let json = serde_json::to_value(runtime_spec(&spec, rootless).unwrap()).unwrap();
        assert_eq!(json["linux"]["uidMappings"][0]["containerID"], 0);
        spec.user = Some("ghost".into());
        assert!(matches!(
            runtime_spec(&spec, Mode::Root),
            Err(SpecError::User(_))
        ));
    }

    #[test]
    fn tty_volumes_and_ids_are_checked() {
        let mut spec = request(image(&["/entry"], &[]));
        spec.tty = true;
        let oci = runtime_spec(&spec, Mode::Root).unwrap();
        assert_eq!(oci.process().as_ref().unwrap().terminal(), Some(true));

        spec.volumes = vec![VolumeMount {
            host: "/d".into(),
            container: "d".into(),
            read_only: false,
        }];
        assert!(matches!(
            runtime_spec(&spec, Mode::Root),
            Err(SpecError::RelativeVolumeTarget(_))
        ));

        spec.volumes.clear();
        spec.id = "bad/id".into();
        assert!(matches!(
            runtime_spec(&spec, Mode::Root),
            Err(SpecError::InvalidId(_))
        ));
        assert!(is_valid_id("a.b-c_d+1"));
        assert!(!is_valid_id(".."));
        assert!(!is_valid_id(""));
    }

    /// The whole spec for representative requests, pinned (keys and capability sets sorted, the
    /// rest byte for byte), so that a change to how it is built shows as a change to what it is.
    /// After a deliberate change, regenerate with
    /// `LOCALD_BLESS=1 cargo test -p locald-runtime whole_spec` and review the diff.
    #[test]
    fn the_whole_spec_is_pinned() {
        let rootfs = rootfs_with_accounts("root:x:0:\napp:x:1000:\nextra:x:2000:app\n");
        let mut root_image = image(&["/entry", "-x"], &["serve"]);
        root_image.rootfs = rootfs.path().to_path_buf();
        root_image.config.working_dir = Some("/srv".into());
        let mut root = request(root_image);
        root.user = Some("app".into());
        root.env = vec![("MODE".into(), "dev".into())];
        root.volumes = two_volumes();
        root.tty = true;
        root.hostname = Some("web".into());
        root.security.add_cap("NET_RAW").unwrap();
        root.security.drop_cap("CHOWN").unwrap();

        let mut rootless = request(image(&["/entry"], &[]));
        rootless.security.no_new_privileges = false;
        rootless.security.seccomp = SeccompChoice::Unconfined;

        let rootfs_text = rootfs.path().to_str().unwrap().to_string();
        for (name, spec, mode) in [
            ("root", &root, Mode::Root),
            (
                "rootless",
                &rootless,
                Mode::Rootless {
                    uid: 1000,
                    gid: 1001,
                },
            ),
        ] {
            // Through a `Value` (keys sorted): the spec's annotations are a hash map, whose
            // order changes from run to run.
            let mut value = serde_json::to_value(runtime_spec(spec, mode).unwrap()).unwrap();
            // Likewise the capability sets.
            for set in value["process"]["capabilities"]
                .as_object_mut()
                .unwrap()
                .values_mut()
            {
                set.as_array_mut()
                    .unwrap()
                    .sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
            let text = serde_json::to_string_pretty(&value).unwrap() + "\n";
            // The temporary rootfs is the one part that differs from run to run.
            let text = text.replace(&rootfs_text, "/ROOTFS");
            let pinned = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("src/testdata")
                .join(format!("runtime_spec_{name}.json"));
            if std::env::var_os("LOCALD_BLESS").is_some() {
                std::fs::write(&pinned, &text).unwrap();
            }
            let expected = std::fs::read_to_string(&pinned).unwrap();
            assert!(text == expected, "{name}: the spec differs from {pinned:?}");
        }
    }

    #[test]
    fn the_parts_stand_alone() {
        let mut spec = request(image(&["/entry"], &[]));
        spec.volumes = two_volumes();
        // Mounts: the standard ones, then the bundle's files, then the volumes in order.
        let destinations = |rootless| -> Vec<String> {
            mounts(&spec, rootless)
                .unwrap()
                .iter()
                .map(|m| m["destination"].as_str().unwrap().to_string())
                .collect()
        };
        let expected = [
            "/proc",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/dev/mqueue",
            "/sys",
            "/tmp",
            "/etc/resolv.conf",
            "/etc/hosts",
            "/data",
            "/etc/app",
        ];
        assert_eq!(destinations(false), expected);
        assert_eq!(destinations(true), expected);

        // Linux: no seccomp when unconfined, device rules only as root.
        spec.security.seccomp = SeccompChoice::Unconfined;
        let user = ResolvedUser {
            uid: 0,
            gid: 0,
            additional_gids: vec![10],
            home: None,
        };
        let linux_root = linux(&spec, Mode::Root, &user).unwrap();
        assert!(linux_root.get("seccomp").is_none());
        assert!(linux_root["resources"]["devices"].is_array());
        let rootless = linux(&spec, Mode::Rootless { uid: 7, gid: 8 }, &user).unwrap();
        assert!(rootless.get("resources").is_none());
        assert_eq!(rootless["gidMappings"][0]["hostID"], 8);

        // Process: additional groups only as root.
        let as_root = process(&spec, &user, false).unwrap();
        assert_eq!(as_root["user"]["additionalGids"], json!([10]));
        assert!(process(&spec, &user, true).unwrap()["user"]
            .get("additionalGids")
            .is_none());
    }

    fn cap_list(json: &Value, set: &str) -> Vec<String> {
        json["process"]["capabilities"][set]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn containers_are_confined_by_default() {
        let spec = request(image(&["/entry"], &[]));
        for mode in [
            Mode::Root,
            Mode::Rootless {
                uid: 1000,
                gid: 1000,
            },
        ] {
            let json = serde_json::to_value(runtime_spec(&spec, mode).unwrap()).unwrap();
            assert_eq!(json["process"]["noNewPrivileges"], true);
            for set in ["bounding", "effective", "permitted"] {
                let caps = cap_list(&json, set);
                assert!(
                    !caps.contains(&"CAP_NET_RAW".to_string()),
                    "{set}: {caps:?}"
                );
                assert_eq!(caps.len(), 13, "{set}: {caps:?}");
            }
            assert!(cap_list(&json, "inheritable").is_empty());
            assert!(cap_list(&json, "ambient").is_empty());
            let seccomp = &json["linux"]["seccomp"];
            assert_eq!(seccomp["defaultAction"], "SCMP_ACT_ERRNO");
            assert!(seccomp["syscalls"].as_array().unwrap().len() > 10);
        }
    }

    #[test]
    fn security_options_shape_the_spec() {
        let mut spec = request(image(&["/entry"], &[]));
        spec.security.add_cap("NET_RAW").unwrap();
        spec.security.add_cap("sys_admin").unwrap();
        spec.security.drop_cap("CHOWN").unwrap();
        spec.security.no_new_privileges = false;
        let json = serde_json::to_value(runtime_spec(&spec, Mode::Root).unwrap()).unwrap();
        let caps = cap_list(&json, "effective");
        assert!(caps.contains(&"CAP_NET_RAW".to_string()));
        assert!(!caps.contains(&"CAP_CHOWN".to_string()));
        // Absent rather than false: libcontainer reads any value as "set".
        assert!(json["process"]["noNewPrivileges"].is_null());
        // The profile follows the capabilities: CAP_SYS_ADMIN unlocks mount.
        let names: Vec<&str> = json["linux"]["seccomp"]["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|rule| rule["names"].as_array().unwrap())
            .map(|name| name.as_str().unwrap())
            .collect();
        assert!(names.contains(&"mount"));

        spec.security.seccomp = SeccompChoice::Unconfined;
        let json = serde_json::to_value(runtime_spec(&spec, Mode::Root).unwrap()).unwrap();
        assert!(json["linux"]["seccomp"].is_null());

        spec.security.seccomp = SeccompChoice::Profile("/nonexistent/profile.json".into());
        let error = runtime_spec(&spec, Mode::Root).unwrap_err();
        assert!(matches!(error, SpecError::Seccomp(_)));
        assert!(error.to_string().contains("/nonexistent/profile.json"));
    }
}
