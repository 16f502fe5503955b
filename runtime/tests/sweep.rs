//! Tests of the stale-bundle sweep: on hand-made runtime roots (lock held or free, old bundles
//! without a lock, mounts left under a bundle), and end to end with real containers whose
//! processes are killed with SIGKILL. The end-to-end ones need root and the shim binary (see
//! containers.rs).

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use locald_runtime::{
    bundles_root, cgroup_relative_path, runtime_root, shim_path, state_root, sweep_stale,
    sweep_stale_in, Bundle, ContainerSpec, SweepReport,
};

/// The tests of this file run one at a time: a child process spawned by one holds copies of
/// every descriptor of this process (the other tests' locks included) until it has exec'd, and
/// each end-to-end test's sweeps would clean up after the other.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A bundle laid out as `Bundle` makes them (directory, lock file beside it), with files inside
/// and a symlink pointing out of it.
fn fake_bundle(root: &Path, id: &str, outside: &Path) -> fs::File {
    let bundles = root.join("bundles");
    fs::create_dir_all(bundles.join(id).join("rootfs")).unwrap();
    fs::create_dir_all(bundles.join(id).join("work/work")).unwrap();
    fs::set_permissions(
        bundles.join(id).join("work/work"),
        fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    fs::write(bundles.join(id).join("config.json"), "{}").unwrap();
    std::os::unix::fs::symlink(outside, bundles.join(id).join("escape")).unwrap();
    fs::File::create(bundles.join(format!("{id}.lock"))).unwrap()
}

fn lock_shared(file: &fs::File) {
    // SAFETY: flock(2) on an open file.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
}

#[test]
fn a_bundle_whose_lock_is_free_is_swept_and_a_held_one_kept() {
    let _serial = one_at_a_time();
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("precious"), "keep").unwrap();

    let _stale_lock = fake_bundle(root.path(), "stale-1", outside.path());
    let live_lock = fake_bundle(root.path(), "live-1", outside.path());
    lock_shared(&live_lock);
    fs::create_dir_all(root.path().join("state/stale-1")).unwrap();
    fs::write(root.path().join("state/stale-1/state.json"), "{}").unwrap();

    let report = sweep_stale_in(root.path()).unwrap();
    assert_eq!(report.removed, ["stale-1"], "{report:?}");
    assert_eq!(report.in_use, ["live-1"], "{report:?}");
    assert!(report.errors.is_empty(), "{report:?}");

    let bundles = root.path().join("bundles");
    assert!(!bundles.join("stale-1").exists());
    assert!(!bundles.join("stale-1.lock").exists());
    assert!(!root.path().join("state/stale-1").exists());
    assert!(bundles.join("live-1/config.json").exists());
    assert!(bundles.join("live-1.lock").exists());
    assert_eq!(
        fs::read_to_string(outside.path().join("precious")).unwrap(),
        "keep",
        "the sweep followed a symlink out of the bundle"
    );

    // Once its owner is gone, the second one goes too; then there is nothing left to do.
    drop(live_lock);
    let report = sweep_stale_in(root.path()).unwrap();
    assert_eq!(report.removed, ["live-1"], "{report:?}");
    assert_eq!(fs::read_dir(&bundles).unwrap().count(), 0);
    assert_eq!(sweep_stale_in(root.path()).unwrap(), SweepReport::default());
}

#[test]
fn an_empty_or_missing_runtime_root_is_fine() {
    let _serial = one_at_a_time();
    let root = tempfile::tempdir().unwrap();
    assert_eq!(
        sweep_stale_in(&root.path().join("missing")).unwrap(),
        SweepReport::default()
    );
    fs::create_dir_all(root.path().join("bundles")).unwrap();
    assert_eq!(sweep_stale_in(root.path()).unwrap(), SweepReport::default());
}

/// `bundles/` or `state/` replaced by a symlink: the sweep refuses it, saying where, and
/// removes nothing at the link's target (which looks like stale bundles of an older locald).
#[test]
fn a_symlink_in_place_of_bundles_or_state_is_not_followed() {
    let _serial = one_at_a_time();
    for swapped in ["bundles", "state"] {
        let root = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        fs::create_dir_all(elsewhere.path().join("old-1")).unwrap();
        fs::write(elsewhere.path().join("old-1/precious"), "keep").unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), root.path().join(swapped)).unwrap();
        let err = sweep_stale_in(root.path()).unwrap_err().to_string();
        assert!(
            err.contains(&root.path().join(swapped).display().to_string()),
            "{err}"
        );
        assert!(err.contains("symbolic link"), "{err}");
        assert_eq!(
            fs::read_to_string(elsewhere.path().join("old-1/precious")).unwrap(),
            "keep",
            "the sweep followed {swapped} out of the runtime root"
        );
    }
}

/// A runtime root that others may write to is refused as a whole.
#[test]
fn a_runtime_root_others_may_write_to_is_refused() {
    let _serial = one_at_a_time();
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("bundles/old-1")).unwrap();
    fs::set_permissions(root.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let err = sweep_stale_in(root.path()).unwrap_err().to_string();
    assert!(err.contains("lets other users write"), "{err}");
    assert!(root.path().join("bundles/old-1").exists());
}

#[test]
fn bundles_of_older_versions_without_a_lock_file_are_swept() {
    let _serial = one_at_a_time();
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("bundles/old-1/upper")).unwrap();
    fs::create_dir_all(root.path().join("state/orphan-1")).unwrap();
    // Not a container id: left alone.
    fs::create_dir_all(root.path().join("bundles/not an id")).unwrap();
    let report = sweep_stale_in(root.path()).unwrap();
    let mut removed = report.removed.clone();
    removed.sort();
    assert_eq!(removed, ["old-1", "orphan-1"], "{report:?}");
    assert!(!root.path().join("bundles/old-1").exists());
    assert!(!root.path().join("state/orphan-1").exists());
    assert!(root.path().join("bundles/not an id").exists());
}

/// Runs the test `name` of this binary again in a private mount namespace, with `role` set in
/// the environment, and checks that it passed.
fn rerun_in_mount_namespace(name: &str) {
    let exe = std::env::current_exe().unwrap();
    let output = Command::new("unshare")
        .args(["--mount", "--propagation", "private"])
        .arg(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("LOCALD_SWEEP_TEST_ROLE", "child")
        .output()
        .expect("running unshare(1)");
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("1 passed"));
}

#[test]
fn mounts_under_a_stale_bundle_are_unmounted_not_emptied() {
    if std::env::var_os("LOCALD_SWEEP_TEST_ROLE").is_none() {
        let _serial = one_at_a_time();
        return rerun_in_mount_namespace("mounts_under_a_stale_bundle_are_unmounted_not_emptied");
    }
    // In a private mount namespace of our own: nothing here touches the host's mounts.
    let root = tempfile::tempdir().unwrap();
    let volume = tempfile::tempdir().unwrap();
    fs::write(volume.path().join("data"), "user data").unwrap();
    let _lock = fake_bundle(root.path(), "mounted-1", volume.path());
    let rootfs = root.path().join("bundles/mounted-1/rootfs");
    fs::create_dir_all(rootfs.join("data")).unwrap();
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "tmpfs"])
        .arg(&rootfs)
        .status()
        .unwrap();
    assert!(status.success());
    fs::create_dir_all(rootfs.join("vol")).unwrap();
    let status = Command::new("mount")
        .arg("--bind")
        .arg(volume.path())
        .arg(rootfs.join("vol"))
        .status()
        .unwrap();
    assert!(status.success());

    let report = sweep_stale_in(root.path()).unwrap();
    assert_eq!(report.removed, ["mounted-1"], "{report:?}");
    assert!(!root.path().join("bundles/mounted-1").exists());
    assert_eq!(
        fs::read_to_string(volume.path().join("data")).unwrap(),
        "user data",
        "the sweep deleted files through a mount"
    );
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains("mounted-1"), "{mountinfo}");
}

// ---- End to end, with real containers (root) ----

/// Fills `dir` with a busybox rootfs (from the host's static `/bin/busybox`).
fn busybox_rootfs(dir: &Path) {
    fs::create_dir_all(dir.join("bin")).unwrap();
    fs::create_dir_all(dir.join("etc")).unwrap();
    fs::copy("/bin/busybox", dir.join("bin/busybox")).expect("these tests need /bin/busybox");
    for applet in ["sh", "sleep", "echo", "true"] {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet)).unwrap();
    }
    fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::write(dir.join("etc/group"), "root:x:0:\n").unwrap();
}

/// The rootfs a role process is given by its test.
fn role_rootfs() -> PathBuf {
    PathBuf::from(std::env::var_os("LOCALD_SWEEP_TEST_ROOTFS").expect("a rootfs from the test"))
}

fn container(id: &str, script: &str, rootfs: &Path) -> ContainerSpec {
    common::busybox_container(
        id.to_string(),
        rootfs,
        vec!["sh".into(), "-c".into(), script.into()],
    )
}

/// Pids of the processes with `marker` among their arguments.
fn processes_with(marker: &str) -> Vec<i32> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<i32>().ok()?;
            let cmdline = fs::read(entry.path().join("cmdline")).ok()?;
            cmdline
                .split(|b| *b == 0)
                .any(|arg| arg == marker.as_bytes())
                .then_some(pid)
        })
        .collect()
}

/// Whether process `pid` has exited (gone, or a zombie: its files, locks included, are closed).
fn gone(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
        Err(_) => true,
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let relative = cgroup_relative_path(id);
    fs::read_dir("/sys/fs/cgroup")
        .map(|entries| {
            entries
                .flatten()
                .map(|h| h.path().join(&relative))
                .filter(|p| p.exists())
                .collect()
        })
        .unwrap_or_default()
}

/// A number for `sleep` that no other process has among its arguments (the test's kind and
/// pid), the same in the role process.
fn marker(kind: u8) -> String {
    std::env::var("LOCALD_SWEEP_TEST_MARKER")
        .unwrap_or_else(|_| format!("9{kind}{:08}", std::process::id()))
}

fn spawn_role(
    name: &str,
    role: &str,
    id: &str,
    marker: &str,
    rootfs: &Path,
) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("LOCALD_SWEEP_TEST_ROLE", role)
        .env("LOCALD_SWEEP_TEST_ID", id)
        .env("LOCALD_SWEEP_TEST_MARKER", marker)
        .env("LOCALD_SWEEP_TEST_ROOTFS", rootfs)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Waits for the child's `ready` line.
fn wait_ready(child: &mut std::process::Child) {
    let out = child.stdout.take().unwrap();
    let mut lines = BufReader::new(out).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) if line.trim_end().ends_with("ready") => return,
            Some(Ok(_)) => continue,
            other => panic!("the child ended before it was ready: {other:?}"),
        }
    }
}

/// A role process ends with the test (thread) that started it, even if that one fails.
fn die_with_parent() {
    // SAFETY: prctl(2) with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
}

/// The caller of a container: makes the bundle, starts the shim on it (which holds the lock
/// too), says `ready` once the container runs, then waits to be killed.
fn caller_role(id: &str, marker: &str) {
    die_with_parent();
    let spec = container(id, &format!("exec sleep {marker}"), &role_rootfs());
    let bundle = Bundle::create(&spec).unwrap();
    let mut shim = bundle
        .command()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the container", || !processes_with(marker).is_empty());
    println!("ready");
    // Until the test kills this process.
    let _ = shim.wait();
    std::thread::sleep(Duration::from_secs(600));
}

#[test]
fn a_killed_caller_and_shim_leave_nothing_after_a_sweep() {
    let marker = &marker(1);
    match std::env::var("LOCALD_SWEEP_TEST_ROLE").as_deref() {
        Ok("caller") => {
            return caller_role(&std::env::var("LOCALD_SWEEP_TEST_ID").unwrap(), marker);
        }
        Ok(_) => return,
        Err(_) => {}
    }
    shim_path().expect("these tests run containers with locald-shim: build it first");
    let _serial = one_at_a_time();
    let id = format!("sweep-e2e-{}", std::process::id());
    let rootfs = tempfile::tempdir().unwrap();
    busybox_rootfs(rootfs.path());
    let mut caller = spawn_role(
        "a_killed_caller_and_shim_leave_nothing_after_a_sweep",
        "caller",
        &id,
        marker,
        rootfs.path(),
    );
    wait_ready(&mut caller);
    let bundle = bundles_root().join(&id);
    assert!(bundle.is_dir());
    assert!(!cgroup_dirs(&id).is_empty(), "the container has no cgroup");

    // While the shim runs, its lock keeps the bundle even with the caller gone.
    let shims = processes_with(&id);
    unsafe { libc::kill(caller.id() as i32, libc::SIGKILL) };
    caller.wait().unwrap();
    let report = sweep_stale().unwrap();
    assert!(report.in_use.contains(&id), "{report:?}");
    assert!(bundle.is_dir());

    // A shim killed as well: its container is orphaned, its bundle stale.
    for pid in &shims {
        unsafe { libc::kill(*pid, libc::SIGKILL) };
    }
    wait_until("the shim to die", || shims.iter().all(|pid| gone(*pid)));
    // (Another test's sweep may get there first: what matters is that it all goes.)
    let report = sweep_stale().unwrap();
    assert!(!report.in_use.contains(&id), "{report:?}");
    assert!(!bundle.exists());
    assert!(!bundles_root().join(format!("{id}.lock")).exists());
    assert!(!state_root().join(&id).exists());
    assert!(cgroup_dirs(&id).is_empty(), "{:?}", cgroup_dirs(&id));
    assert!(
        processes_with(marker).is_empty(),
        "the container survived the sweep"
    );
}

/// `run_foreground`'s caller: runs a container that exits on SIGTERM, after saying `ready`.
fn foreground_role(id: &str, marker: &str) {
    die_with_parent();
    let spec = container(
        id,
        &format!("trap 'exit 0' TERM; sleep {marker} & echo ready; wait"),
        &role_rootfs(),
    );
    let _ = locald_runtime::run_foreground(&spec);
}

#[test]
fn a_killed_run_foreground_stops_its_container() {
    let marker = &marker(2);
    match std::env::var("LOCALD_SWEEP_TEST_ROLE").as_deref() {
        Ok("foreground") => {
            return foreground_role(&std::env::var("LOCALD_SWEEP_TEST_ID").unwrap(), marker);
        }
        Ok(_) => return,
        Err(_) => {}
    }
    shim_path().expect("these tests run containers with locald-shim: build it first");
    let _serial = one_at_a_time();
    let id = format!("sweep-fg-{}", std::process::id());
    let rootfs = tempfile::tempdir().unwrap();
    busybox_rootfs(rootfs.path());
    let mut caller = spawn_role(
        "a_killed_run_foreground_stops_its_container",
        "foreground",
        &id,
        marker,
        rootfs.path(),
    );
    wait_ready(&mut caller);
    wait_until("the sleeper", || processes_with(marker).len() == 1);
    unsafe { libc::kill(caller.id() as i32, libc::SIGKILL) };
    caller.wait().unwrap();
    // The shim learns of it (parent-death signal), stops the container and cleans up.
    wait_until("the container to stop", || {
        processes_with(marker).is_empty()
    });
    wait_until("the shim to finish", || processes_with(&id).is_empty());
    assert!(cgroup_dirs(&id).is_empty(), "{:?}", cgroup_dirs(&id));
    assert!(!state_root().join(&id).exists());
    // Only the bundle is left, for the next sweep (this one, or another test's).
    let report = sweep_stale().unwrap();
    assert!(!report.in_use.contains(&id), "{report:?}");
    assert!(!runtime_root().join("bundles").join(&id).exists());
    assert!(!bundles_root().join(format!("{id}.lock")).exists());
}
