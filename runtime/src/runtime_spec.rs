//! Turns a [`ContainerSpec`] into an OCI runtime spec with Docker's semantics: Entrypoint + Cmd,
//! merged Env, WorkingDir, User, host networking, Docker's default capabilities and the
//! runtime-spec's recommended masked and read-only paths. Pure: it reads only the image's own
//! account files.

use oci_spec::runtime::Spec;
use serde_json::{json, Value};

use crate::container_spec::{ContainerSpec, Mode};
use crate::image_user::{self, UserError};

/// Annotations asking `locald-shim` to mount an overlay of the image on the bundle's rootfs (the
/// shim reads the same names).
pub const LOWER_ANNOTATION: &str = "org.locald.rootfs.lower";
pub const UPPER_ANNOTATION: &str = "org.locald.rootfs.upper";
pub const WORK_ANNOTATION: &str = "org.locald.rootfs.work";

/// Bundle-relative names of the files and directories the spec refers to.
pub const ROOTFS_DIR: &str = "rootfs";
pub const UPPER_DIR: &str = "upper";
pub const WORK_DIR: &str = "work";
pub const HOSTS_FILE: &str = "hosts";
pub const RESOLV_CONF_FILE: &str = "resolv.conf";

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's default capability set (moby `oci/caps/defaults.go`).
pub const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

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
    #[error(
        "rootless containers run as root inside the container (only the caller's id is mapped); \
         the image or request asks for uid {uid}, gid {gid}"
    )]
    RootlessUser { uid: u32, gid: u32 },
    #[error("volume target {0:?} must be an absolute path")]
    RelativeVolumeTarget(String),
    #[error("invalid container id {0:?}: use letters, digits, '_', '+', '-' and '.'")]
    InvalidId(String),
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
    if rootless && (user.uid != 0 || user.gid != 0) {
        return Err(SpecError::RootlessUser {
            uid: user.uid,
            gid: user.gid,
        });
    }

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

    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    let mut linux = json!({
        "cgroupsPath": format!("/locald/{}", spec.id),
        "maskedPaths": MASKED_PATHS,
        "readonlyPaths": READONLY_PATHS,
    });
    match mode {
        Mode::Root => {
            linux["resources"] = json!({ "devices": default_device_rules() });
        }
        Mode::Rootless { uid, gid } => {
            namespaces.push(json!({"type": "user"}));
            linux["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
            linux["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
        }
    }
    linux["namespaces"] = Value::Array(namespaces);

    let mut process_user = json!({"uid": user.uid, "gid": user.gid});
    if !rootless && !user.additional_gids.is_empty() {
        process_user["additionalGids"] = json!(user.additional_gids);
    }
    let mut document = json!({
        "ociVersion": "1.0.2",
        "root": {"path": ROOTFS_DIR, "readonly": false},
        "process": {
            "terminal": spec.tty,
            "user": process_user,
            "args": process_args(spec)?,
            "env": process_env(spec, user.home.as_deref()),
            "cwd": process_cwd(spec),
            "capabilities": {
                "bounding": DEFAULT_CAPABILITIES,
                "effective": DEFAULT_CAPABILITIES,
                "permitted": DEFAULT_CAPABILITIES,
            },
            "noNewPrivileges": true,
        },
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
