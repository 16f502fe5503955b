//! A process's own mount namespace, as `locald-shim` (before it creates a container) and the
//! engine's `locald exec` helper (after it joins a service's PID namespace) make one: every
//! mount made private, so nothing mounted in it reaches the host, and a `/proc` of the PID
//! namespace the process is in, when the one it inherited shows another.

use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};

/// Unshares a mount namespace and makes every mount in it private ([`make_mounts_private`]).
pub fn enter_private() -> nix::Result<()> {
    unshare(CloneFlags::CLONE_NEWNS)?;
    make_mounts_private()
}

/// Makes every mount of this (new) mount namespace private, recursively, so that nothing
/// mounted from now on propagates back to the host's mount table.
pub fn make_mounts_private() -> nix::Result<()> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
}

/// Whether `/proc` shows this process's PID namespace (`/proc/self` is its own pid).
pub fn proc_is_ours() -> bool {
    std::fs::read_link("/proc/self")
        .ok()
        .and_then(|pid| pid.to_str()?.parse::<i32>().ok())
        == Some(nix::unistd::getpid().as_raw())
}

/// Mounts a `/proc` of this process's PID namespace over `/proc` (call it in a private mount
/// namespace: [`enter_private`]). Needs `CAP_SYS_ADMIN` in the user namespace that owns the
/// PID namespace.
pub fn mount_own_proc() -> nix::Result<()> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("proc"), "/proc", Some("proc"), flags, None::<&str>)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_process_sees_its_own_proc() {
        assert!(proc_is_ours());
    }
}
