//! `locald-shim run`: create and start one container with libcontainer, supervise it (signals,
//! terminal, exit status) and clean up everything it created, whatever way it ends.

use std::fs;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::oci_spec::runtime::{LinuxNamespaceType, Spec};
use libcontainer::syscall::syscall::SyscallType;
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{Gid, Pid, Uid};

use locald_shim_protocol::args::RunArgs;
use locald_shim_protocol::cgroup::{self as cgroup_fs, open_dir, remove_empty_parents};
use locald_shim_protocol::exit::signal_exit_code;
use locald_shim_protocol::private_dir::{check_owned_dir, ensure_private_dir};
use locald_shim_protocol::{lock, mountinfo, PARENT_ENV};

use crate::cgroups::{self, V1Cgroups};
use crate::mounts::{self, OverlayRootfs};
use crate::seccomp::{self, SeccompExecutor};
use crate::signals::{self, SignalPipe};
use crate::terminal::{self, RawMode};

/// Name of the spec copy the shim hands to libcontainer when it must differ from the bundle's
/// (inside the bundle).
const LIBCONTAINER_CONFIG_DIR: &str = ".shim-config";
const CONSOLE_SOCKET: &str = "console.sock";

/// Runs the bundle to completion and returns the container's exit status (128+n if killed by
/// signal n).
pub fn run(args: &RunArgs) -> Result<i32> {
    // Installed first so that a SIGTERM during set-up is remembered and acted on, not fatal.
    let signals = SignalPipe::install()?;
    let bundle = fs::canonicalize(&args.bundle)
        .with_context(|| format!("bundle {}", args.bundle.display()))?;
    // Before anything is read from them, and before entering a user namespace (where host
    // owners read differently): the bundle and the state root must be ones no other user can
    // change (see `locald_shim_protocol::private_dir`).
    check_owned_dir(&bundle)?;
    ensure_private_dir(&args.state_root)?;
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
        mounts::enter_rootless_namespaces(Uid::effective(), Gid::effective())?;
        // libcontainer's own default when the spec names no cgroup.
        let effective_path = cgroups_path
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!(":youki:{}", args.id)));
        mounts::shadow_cgroupfs(&mounts::v1_cgroup_mount_points()?, &effective_path, false)?;
    } else {
        mounts::enter_private_mount_namespace()?;
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
    let result = create_and_supervise(args, &bundle, &spec, rootless, &signals, &mut cleanup);
    drop(cleanup);
    result
}

fn create_and_supervise(
    args: &RunArgs,
    bundle: &Path,
    spec: &Spec,
    rootless: bool,
    signals: &SignalPipe,
    cleanup: &mut Cleanup,
) -> Result<i32> {
    // Compiled (or read from the cache) before the container is created: the init only loads it.
    let seccomp = seccomp::prepare(spec, args.seccomp_cache.as_deref())?;
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

    let mut supervisor = Supervisor {
        init,
        signals,
        stop_timeout: args.stop_timeout,
        kill_deadline: None,
        stop_requested: false,
    };
    let status = match pty_master {
        Some(master) => supervisor.run_with_terminal(master),
        None => supervisor.run_plain(discard),
    }?;
    // The supervisor returns once it has reaped the init: its pid may be reused from now on.
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

/// Watches the running container: forwards signals, escalates a stop request to SIGKILL after the
/// stop timeout, pumps the terminal, and returns the exit status once the init is gone.
struct Supervisor<'a> {
    init: Pid,
    signals: &'a SignalPipe,
    stop_timeout: std::time::Duration,
    kill_deadline: Option<Instant>,
    stop_requested: bool,
}

impl Supervisor<'_> {
    fn poll_timeout(&self) -> PollTimeout {
        match self.kill_deadline {
            None => PollTimeout::NONE,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                // Round up so that we never spin on a zero timeout before the deadline.
                let millis = left.as_millis().saturating_add(1).min(i32::MAX as u128) as i32;
                PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX)
            }
        }
    }

    /// Handles pending signals; `window_changed` is set on SIGWINCH for the terminal pump.
    fn handle_signals(&mut self, window_changed: &mut bool) {
        for signal in self.signals.drain() {
            match signal {
                Signal::SIGCHLD => {}
                Signal::SIGWINCH => *window_changed = true,
                signal if signals::is_stop_request(signal) && self.stop_requested => {
                    // A second stop request: the user means it.
                    let _ = kill(self.init, Signal::SIGKILL);
                }
                signal => {
                    let _ = kill(self.init, signal);
                    if signals::is_stop_request(signal) {
                        self.stop_requested = true;
                        // A timeout too long to be a time (years) is no deadline at all.
                        self.kill_deadline = Instant::now().checked_add(self.stop_timeout);
                    }
                }
            }
        }
        if let Some(deadline) = self.kill_deadline {
            if Instant::now() >= deadline {
                let _ = kill(self.init, Signal::SIGKILL);
                self.kill_deadline = None;
            }
        }
    }

    /// The init's exit status if it has exited (reaping it).
    fn try_reap(&self) -> Result<Option<i32>> {
        match waitpid(self.init, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => Ok(Some(code)),
            Ok(WaitStatus::Signaled(_, signal, _)) => Ok(Some(signal_exit_code(signal as i32))),
            Ok(_) => Ok(None),
            Err(Errno::EINTR) => Ok(None),
            Err(err) => Err(err).context("waiting for the container's init"),
        }
    }

    /// Non-terminal mode: the container has the shim's own stdio; only signals and the optional
    /// /dev/null substitute pipes need attention.
    fn run_plain(&mut self, mut discard: Vec<OwnedFd>) -> Result<i32> {
        let mut scratch = [0u8; 8192];
        loop {
            if let Some(status) = self.try_reap()? {
                return Ok(status);
            }
            let mut fds = vec![PollFd::new(self.signals.fd(), PollFlags::POLLIN)];
            fds.extend(
                discard
                    .iter()
                    .map(|fd| PollFd::new(fd.as_fd(), PollFlags::POLLIN)),
            );
            match poll(&mut fds, self.poll_timeout()) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(err) => return Err(err).context("poll"),
            }
            let finished: Vec<bool> = fds[1..]
                .iter()
                .map(|fd| fd.revents().is_some_and(|r| !r.is_empty()))
                .collect();
            drop(fds);
            let mut index = 0;
            discard.retain(|fd| {
                let ready = finished[index];
                index += 1;
                !ready || matches!(nix::unistd::read(fd.as_fd(), &mut scratch), Ok(n) if n > 0)
            });
            self.handle_signals(&mut false);
        }
    }

    /// Terminal mode: relay the user's stdin to the pty master and the master to stdout, in raw
    /// mode, and keep the pty's window size equal to the user's.
    fn run_with_terminal(&mut self, master: OwnedFd) -> Result<i32> {
        let stdin = std::io::stdin();
        let stdout = std::io::stdout();
        let user_terminal = terminal::user_terminal(stdin.as_fd(), stdout.as_fd());
        let _raw = RawMode::enter(stdin.as_fd())?;
        set_nonblocking(master.as_fd())?;

        let mut stdin_open = true;
        let mut master_open = true;
        let mut exit_status = None;
        let mut buffer = [0u8; 16384];
        loop {
            if exit_status.is_none() {
                exit_status = self.try_reap()?;
            }
            // Once the init is gone, the rest of its pid namespace is killed and the pty's slave
            // side closes: drain what is left, then finish.
            if let Some(status) = exit_status {
                if !master_open || !drain_master(&master, &mut buffer) {
                    return Ok(status);
                }
            }
            let mut fds = vec![
                PollFd::new(self.signals.fd(), PollFlags::POLLIN),
                PollFd::new(
                    master.as_fd(),
                    if master_open {
                        PollFlags::POLLIN
                    } else {
                        PollFlags::empty()
                    },
                ),
            ];
            if stdin_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
            let timeout = if exit_status.is_some() {
                PollTimeout::from(50u8)
            } else {
                self.poll_timeout()
            };
            match poll(&mut fds, timeout) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(err) => return Err(err).context("poll"),
            }
            let master_ready = fds[1].revents().is_some_and(|r| !r.is_empty());
            let stdin_ready = stdin_open && fds[2].revents().is_some_and(|r| !r.is_empty());
            drop(fds);

            if master_ready {
                match nix::unistd::read(master.as_fd(), &mut buffer) {
                    Ok(0) | Err(Errno::EIO) => master_open = false,
                    Ok(n) => write_all_stdout(&buffer[..n]),
                    Err(Errno::EAGAIN | Errno::EINTR) => {}
                    Err(err) => return Err(err).context("reading the pty"),
                }
            }
            if stdin_ready {
                match nix::unistd::read(stdin.as_fd(), &mut buffer) {
                    Ok(0) => stdin_open = false,
                    Ok(n) => {
                        if write_all_fd(master.as_fd(), &buffer[..n]).is_err() {
                            stdin_open = false;
                        }
                    }
                    Err(Errno::EAGAIN | Errno::EINTR) => {}
                    Err(_) => stdin_open = false,
                }
            }
            let mut window_changed = false;
            self.handle_signals(&mut window_changed);
            if window_changed {
                if let Some(user) = user_terminal {
                    terminal::copy_window_size(user, master.as_fd());
                }
            }
        }
    }
}

/// Reads what the pty still holds; returns false once it is closed or empty.
fn drain_master(master: &OwnedFd, buffer: &mut [u8]) -> bool {
    loop {
        match nix::unistd::read(master.as_fd(), buffer) {
            Ok(0) | Err(Errno::EIO) => return false,
            Ok(n) => write_all_stdout(&buffer[..n]),
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => return true,
            Err(_) => return false,
        }
    }
}

fn write_all_stdout(bytes: &[u8]) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(bytes).and_then(|()| stdout.flush());
}

fn write_all_fd(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> nix::Result<()> {
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
                let _ = poll(&mut fds, PollTimeout::from(100u8));
            }
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

fn set_nonblocking(fd: BorrowedFd<'_>) -> Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL).context("F_GETFL")?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).context("F_SETFL")?;
    Ok(())
}

/// When started by `locald container run` (which sets [`PARENT_ENV`] to its pid), treat the
/// death of that parent as a stop request: SIGTERM, forwarded to the container and escalated
/// after the stop timeout, so that a killed caller leaves no container running.
fn stop_with_parent() {
    let Some(parent) = std::env::var(PARENT_ENV)
        .ok()
        .and_then(|pid| pid.parse::<libc::pid_t>().ok())
    else {
        return;
    };
    // SAFETY: prctl(2) with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM, 0, 0, 0) };
    if nix::unistd::getppid().as_raw() != parent {
        // It died before the signal was armed.
        let _ = nix::sys::signal::raise(Signal::SIGTERM);
    }
}

/// Everything the shim created, undone in reverse order however the run ended (on drop).
struct Cleanup {
    bundle: PathBuf,
    /// libcontainer's state directory for the container (`<state root>/<id>`).
    state_dir: PathBuf,
    cgroups_path: Option<PathBuf>,
    overlay: Option<OverlayRootfs>,
    rootless: bool,
    /// The cgroups the shim set up itself (root on a cgroup v1 host).
    managed_cgroups: Option<V1Cgroups>,
    container: Option<Container>,
    /// The container's init while it may still run (not reaped yet).
    init: Option<Pid>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(mut container) = self.container.take() {
            if self.rootless || self.managed_cgroups.is_some() {
                // libcontainer's delete would kill the pids its init wrote to the scratch
                // cgroupfs, which may have been reused by now. Killing the init takes the rest of
                // its pid namespace down with it.
                if let Some(init) = self.init.take() {
                    let _ = kill(init, Signal::SIGKILL);
                    let _ = waitpid(init, None);
                }
            } else if let Err(err) = container.delete(true) {
                eprintln!("locald-shim: deleting the container: {err}");
            }
        }
        // libcontainer removes it when it deletes the container; not on the other paths (and not
        // when its delete failed half-way).
        let _ = fs::remove_dir_all(&self.state_dir);
        if let Some(cgroups) = &mut self.managed_cgroups {
            for error in cgroups.remove() {
                eprintln!("locald-shim: {error}");
            }
        } else if !self.rootless {
            remove_cgroup_parents(self.cgroups_path.as_deref());
        }
        if let Some(overlay) = &self.overlay {
            overlay.unmount();
        }
        let _ = fs::remove_file(self.bundle.join(CONSOLE_SOCKET));
        let _ = fs::remove_dir_all(self.bundle.join(LIBCONTAINER_CONFIG_DIR));
    }
}

/// libcontainer removes the container's own cgroup but not the parents it created (for
/// `/locald/<id>`, the `locald` directory). Remove them when empty; a busy one belongs to another
/// running container and rmdir leaves it alone.
fn remove_cgroup_parents(cgroups_path: Option<&Path>) {
    let Some(path) = cgroups_path else { return };
    let Ok(relative) = path.strip_prefix("/") else {
        return;
    };
    if relative
        .parent()
        .is_none_or(|parent| parent.as_os_str().is_empty())
    {
        return;
    }
    let Ok(text) = mountinfo::read() else {
        return;
    };
    for mount in cgroup_fs::cgroup_mounts(&text) {
        if let Ok(root) = open_dir(None, &mount.mount_point) {
            remove_empty_parents(root.as_fd(), relative);
        }
    }
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
