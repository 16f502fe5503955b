//! `locald-shim run`: create and start one container with libcontainer, supervise it (signals,
//! terminal, exit status) and clean up everything it created, whatever way it ends.
//!
//! Set-up and creation are here; watching the running container is in `watch.rs`, the clean-up in
//! `cleanup.rs`, the parent's death as a stop request in `parent.rs`.

use std::fs;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::oci_spec::runtime::{LinuxNamespaceType, Spec};
use libcontainer::syscall::syscall::SyscallType;
use nix::unistd::{Gid, Pid, Uid};

use locald_shim_protocol::args::RunArgs;
use locald_shim_protocol::cgroup as cgroup_fs;
use locald_shim_protocol::private_dir::{
    check_owned_dir_trusting, ensure_private_dir_trusting, TrustedOwners,
};
use locald_shim_protocol::{lock, mountinfo};

use crate::cgroups::{self, V1Cgroups};
use crate::cleanup::Cleanup;
use crate::mounts::{self, OverlayRootfs};
use crate::parent::stop_with_parent;
use crate::seccomp::{self, SeccompExecutor};
use crate::signals::SignalPipe;
use crate::terminal;
use crate::watch::ContainerWatch;

/// Name of the spec copy the shim hands to libcontainer when it must differ from the bundle's
/// (inside the bundle).
pub(crate) const LIBCONTAINER_CONFIG_DIR: &str = ".shim-config";
pub(crate) const CONSOLE_SOCKET: &str = "console.sock";

/// Runs the bundle to completion and returns the container's exit status (128+n if killed by
/// signal n).
pub fn run(args: &RunArgs) -> Result<i32> {
    // Installed first so that a SIGTERM during set-up is remembered and acted on, not fatal.
    let signals = SignalPipe::install()?;
    let bundle = fs::canonicalize(&args.bundle)
        .with_context(|| format!("bundle {}", args.bundle.display()))?;
    // Before anything is read from them, and before entering a user namespace (where host
    // owners read differently): the bundle and the state root must be ones no other user can
    // change (see `locald_shim_protocol::private_dir`). Under a rootless supervisor the shim
    // starts in its per-service init's user namespace already, where root's directories show as
    // the overflow uid: it then relies on locald's check in the host's ids for whose they are
    // (`--parents-checked-on-host`), and still checks everything else.
    let trusted = if args.parents_checked_on_host {
        TrustedOwners::after_host_check()
    } else {
        TrustedOwners::RootOrCaller
    };
    check_owned_dir_trusting(&bundle, trusted)?;
    ensure_private_dir_trusting(&args.state_root, trusted)?;
    // While any user of a bundle holds its lock no sweep takes the bundle for a stale one;
    // a bundle that a sweep is removing is refused.
    let _bundle_lock = lock::hold_shared(&bundle)?;
    stop_with_parent();
    let spec =
        Spec::load(bundle.join("config.json")).context("loading the bundle's config.json")?;

    let cgroups_path = spec
        .linux()
        .as_ref()
        .and_then(|linux| linux.cgroups_path().clone());
    let rootless = !Uid::effective().is_root();
    // From here on everything the shim creates is undone when `cleanup` drops, whatever way the
    // run ends (error, panic, signal-driven stop).
    let mut cleanup = Cleanup {
        bundle: bundle.clone(),
        state_dir: args.state_root.join(&args.id),
        cgroups_path: cgroups_path.clone(),
        overlay: None,
        rootless,
        managed_cgroups: None,
        container: None,
        init: None,
    };
    if rootless {
        let (uid, gid) = (Uid::effective(), Gid::effective());
        mounts::enter_rootless_namespaces(uid, gid, mounts::rootless_ids(&spec, uid, gid)?)?;
        // libcontainer's own default when the spec names no cgroup.
        let effective_path = cgroups_path
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!(":youki:{}", args.id)));
        mounts::shadow_cgroupfs(&mounts::v1_cgroup_mount_points()?, &effective_path, false)?;
    } else {
        mounts::enter_private_mount_namespace()?;
        mounts::own_proc()?;
        if let Some((path, devices)) = cgroups::managed_by_shim(&spec) {
            let text = mountinfo::read().with_context(|| format!("reading {}", mountinfo::PATH))?;
            let hierarchies = cgroup_fs::v1_hierarchies(&text);
            let created = V1Cgroups::create(&hierarchies, &path, &devices)?;
            cleanup.managed_cgroups = Some(created);
            let mount_points: Vec<PathBuf> =
                hierarchies.into_iter().map(|h| h.mount_point).collect();
            mounts::shadow_cgroupfs(&mount_points, &path, true)?;
        }
    }
    let overlay = OverlayRootfs::from_spec(&spec, &bundle)?;
    if let Some(overlay) = &overlay {
        overlay.mount(rootless)?;
    }
    cleanup.overlay = overlay;
    let result = create_and_supervise(
        args,
        &bundle,
        &spec,
        (rootless, trusted),
        &signals,
        &mut cleanup,
    );
    drop(cleanup);
    result
}

fn create_and_supervise(
    args: &RunArgs,
    bundle: &Path,
    spec: &Spec,
    (rootless, trusted): (bool, TrustedOwners),
    signals: &SignalPipe,
    cleanup: &mut Cleanup,
) -> Result<i32> {
    // Compiled (or read from the cache) before the container is created: the init only loads it.
    let seccomp = seccomp::prepare(spec, args.seccomp_cache.as_deref(), trusted)?;
    let config_dir = if rootless || seccomp.is_some() {
        write_libcontainer_config(spec, bundle, rootless, seccomp.is_some())?
    } else {
        bundle.to_path_buf()
    };

    let tty = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    let mut builder = ContainerBuilder::new(args.id.clone(), SyscallType::Linux)
        .validate_id()?
        .with_root_path(&args.state_root)?
        .with_executor(SeccompExecutor { program: seccomp });
    let console = if tty {
        let path = bundle.join(CONSOLE_SOCKET);
        let listener = terminal::bind_console_socket(&path)?;
        builder = builder.with_console_socket(Some(&path));
        Some(listener)
    } else {
        None
    };
    let mut discard = Vec::new();
    if !tty {
        // libcontainer would reopen a host /dev/null read-only inside the container, making the
        // container's writes fail: hand it pipes that the shim drains instead.
        if is_dev_null(std::io::stdout().as_fd()) {
            let (read, write) = nix::unistd::pipe().context("pipe")?;
            builder = builder.with_stdout(write);
            discard.push(read);
        }
        if is_dev_null(std::io::stderr().as_fd()) {
            let (read, write) = nix::unistd::pipe().context("pipe")?;
            builder = builder.with_stderr(write);
            discard.push(read);
        }
    }

    // The container's processes inherit the shim's cgroups when libcontainer forks them.
    if let Some(cgroups) = &mut cleanup.managed_cgroups {
        cgroups.join()?;
    }
    let built = builder
        .as_init(&config_dir)
        .with_systemd(false)
        // libcontainer only accepts a console socket for "detached" containers; detach changes
        // nothing else: the init is still our child and we wait for it below.
        .with_detach(tty)
        .build();
    if let Some(cgroups) = &mut cleanup.managed_cgroups {
        cgroups.leave();
    }
    let container = match built {
        Ok(container) => container,
        Err(err) => {
            let mut message = err.to_string();
            // libcontainer's own clean-up then worked on the scratch cgroupfs (rootless, or
            // cgroups set up by the shim): its complaints about it are noise.
            if rootless || cleanup.managed_cgroups.is_some() {
                if let Some(at) = message.find(". error during cleanup: ") {
                    message.truncate(at);
                }
            }
            anyhow::bail!("creating the container: {message}");
        }
    };
    // libcontainer speaks nix 0.29; convert its pid to ours by value.
    let init = container.pid().map(|pid| Pid::from_raw(pid.as_raw()));
    cleanup.init = init;
    let init = init.context("libcontainer reported no init pid")?;
    let container = cleanup.container.insert(container);

    let pty_master = match &console {
        Some(listener) => {
            let master = terminal::receive_pty_master(listener)?;
            // Before start: the container's first program may well ask for its size.
            let (stdin, stdout) = (std::io::stdin(), std::io::stdout());
            if let Some(user) = terminal::user_terminal(stdin.as_fd(), stdout.as_fd()) {
                terminal::copy_window_size(user, master.as_fd());
            }
            let _ = fs::remove_file(bundle.join(CONSOLE_SOCKET));
            Some(master)
        }
        None => None,
    };
    container.start().context("starting the container")?;

    let mut watch = ContainerWatch {
        init,
        signals,
        stop_timeout: args.stop_timeout,
        kill_deadline: None,
        stop_requested: false,
    };
    let status = match pty_master {
        Some(master) => watch.run_with_terminal(master),
        None => watch.run_plain(discard),
    }?;
    // The watch returns once it has reaped the init: its pid may be reused from now on.
    cleanup.init = None;
    Ok(status)
}

/// True when `fd` is the character device 1:3 (/dev/null) — what libcontainer would reopen.
fn is_dev_null(fd: BorrowedFd<'_>) -> bool {
    match nix::sys::stat::fstat(fd) {
        Ok(stat) => {
            let is_char = (stat.st_mode & libc::S_IFMT) == libc::S_IFCHR;
            is_char && stat.st_rdev == libc::makedev(1, 3)
        }
        Err(_) => false,
    }
}

/// The copy of the spec libcontainer gets when it must differ from the bundle's. A rootless shim
/// is already root in its own user namespace, so libcontainer must not create another one: the
/// copy has no user namespace and no id mappings. When the shim loads the seccomp filter itself
/// (`shim_seccomp`), the copy has no `linux.seccomp`, or libcontainer would compile it again.
fn write_libcontainer_config(
    spec: &Spec,
    bundle: &Path,
    rootless: bool,
    shim_seccomp: bool,
) -> Result<PathBuf> {
    let mut spec = spec.clone();
    if let Some(linux) = spec.linux_mut() {
        if rootless {
            if let Some(namespaces) = linux.namespaces_mut() {
                namespaces.retain(|ns| ns.typ() != LinuxNamespaceType::User);
            }
            linux.set_uid_mappings(None).set_gid_mappings(None);
        }
        if shim_seccomp {
            linux.set_seccomp(None);
        }
    }
    if let Some(root) = spec.root_mut() {
        let absolute = bundle.join(root.path());
        root.set_path(absolute);
    }
    let dir = bundle.join(LIBCONTAINER_CONFIG_DIR);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    spec.save(dir.join("config.json"))
        .context("writing libcontainer's copy of config.json")?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_null_is_recognised() {
        let null = fs::File::open("/dev/null").unwrap();
        assert!(is_dev_null(null.as_fd()));
        let zero = fs::File::open("/dev/zero").unwrap();
        assert!(!is_dev_null(zero.as_fd()));
        let (read, _write) = nix::unistd::pipe().unwrap();
        assert!(!is_dev_null(read.as_fd()));
    }

    #[test]
    fn libcontainers_copy_drops_what_the_shim_does_itself() {
        let bundle = tempfile::tempdir().unwrap();
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"cwd": "/", "args": ["true"], "user": {"uid": 0, "gid": 0},
                        "noNewPrivileges": true},
            "linux": {
                "namespaces": [{"type": "pid"}, {"type": "user"}],
                "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
                "seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": []}
            }
        }))
        .unwrap();
        let load = |dir: PathBuf| Spec::load(dir.join("config.json")).unwrap();

        // The shim loads the filter: libcontainer must not compile it again.
        let copy = load(write_libcontainer_config(&spec, bundle.path(), false, true).unwrap());
        let linux = copy.linux().as_ref().unwrap();
        assert!(linux.seccomp().is_none());
        assert_eq!(linux.namespaces().as_ref().unwrap().len(), 2);
        assert_eq!(
            copy.root().as_ref().unwrap().path(),
            &bundle.path().join("rootfs")
        );

        // Rootless: no user namespace, no mappings; the filter stays when libcontainer loads it.
        let copy = load(write_libcontainer_config(&spec, bundle.path(), true, false).unwrap());
        let linux = copy.linux().as_ref().unwrap();
        assert!(linux.seccomp().is_some());
        assert_eq!(linux.namespaces().as_ref().unwrap().len(), 1);
        assert!(linux.uid_mappings().is_none());
    }
}
