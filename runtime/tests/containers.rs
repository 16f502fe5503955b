//! Integration tests that really run containers with `locald-shim` from a busybox rootfs built
//! here (from the host's static `/bin/busybox`). They need root, and the shim binary: build it
//! first with `cargo build -p locald-shim` (the repo's test script builds the whole workspace),
//! or point `LOCALD_SHIM` at one. A missing shim fails the tests with a message saying so.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use locald_runtime::{
    runtime_spec, shim_path, state_root, Bundle, ContainerSpec, Mode, SeccompChoice, VolumeMount,
};

const APPLETS: &[&str] = &[
    "sh", "echo", "cat", "ls", "sleep", "true", "false", "env", "pwd", "id", "test", "stty", "tty",
    "touch", "mount", "hostname", "arping", "unshare", "grep", "linux32",
];

/// A busybox rootfs shared by the tests of this binary (read-only by convention, like the store's).
fn busybox_rootfs() -> &'static Path {
    static ROOTFS: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ROOTFS.get_or_init(|| {
        // Earlier runs' copies (a static is never dropped): those of processes gone go now.
        let prefix = "locald-runtime-test-rootfs-";
        for entry in fs::read_dir(std::env::temp_dir())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix(prefix) {
                if !Path::new("/proc").join(pid).exists() {
                    let _ = fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = std::env::temp_dir().join(format!("{prefix}{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("bin")).unwrap();
        fs::create_dir_all(dir.join("etc")).unwrap();
        fs::copy("/bin/busybox", dir.join("bin/busybox")).expect("these tests need /bin/busybox");
        for applet in APPLETS {
            std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet)).unwrap();
        }
        fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        fs::write(dir.join("etc/group"), "root:x:0:\n").unwrap();
        // Readable by the rootless test's unprivileged user.
        for path in [dir.as_path(), &dir.join("bin"), &dir.join("etc")] {
            fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
        }
        dir
    })
}

fn require_shim() -> PathBuf {
    shim_path().unwrap_or_else(|err| {
        panic!("{err}\nThese tests run containers with locald-shim: run `cargo build -p locald-shim` first.")
    })
}

fn unique_id(name: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "rt-{name}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn container(name: &str, command: &[&str]) -> ContainerSpec {
    common::busybox_container(
        unique_id(name),
        busybox_rootfs(),
        command.iter().map(|s| s.to_string()).collect(),
    )
}

/// Runs a container to completion with piped stdio and checks nothing is left behind.
fn run(spec: &ContainerSpec, stdin: &[u8]) -> Output {
    require_shim();
    let bundle = Bundle::create(spec).expect("bundle");
    let mut child = bundle
        .command()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning the shim");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).unwrap();
    drop(input);
    let output = child.wait_with_output().unwrap();
    let bundle_dir = bundle.dir().to_path_buf();
    bundle.remove().unwrap();
    assert!(!bundle_dir.exists());
    assert_nothing_left(&spec.id);
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn assert_nothing_left(id: &str) {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mountinfo.contains(id),
        "a mount mentions {id}:\n{mountinfo}"
    );
    assert!(
        !state_root().join(id).exists(),
        "libcontainer state left for {id}"
    );
    for hierarchy in fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let leftover = hierarchy.path().join("locald").join(id);
        assert!(!leftover.exists(), "cgroup left: {}", leftover.display());
    }
}

#[test]
fn echo_prints_and_exits_zero() {
    let output = run(&container("echo", &["echo", "hello from a container"]), b"");
    assert_eq!(
        stdout(&output),
        "hello from a container\n",
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn exit_code_is_returned() {
    let output = run(&container("exit", &["sh", "-c", "exit 3"]), b"");
    assert_eq!(output.status.code(), Some(3));
}

#[test]
fn env_and_workdir_apply() {
    let mut spec = container("env", &["sh", "-c", "echo $GREETING $PATH; pwd; id -u"]);
    spec.env = vec![("GREETING".into(), "hi".into())];
    spec.workdir = Some("/work/dir".into());
    let output = run(&spec, b"");
    assert_eq!(
        stdout(&output),
        "hi /bin\n/work/dir\n0\n",
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !busybox_rootfs().join("work").exists(),
        "the image rootfs was written to"
    );
}

#[test]
fn container_writes_stay_out_of_the_image() {
    let output = run(
        &container(
            "overlay",
            &["sh", "-c", "echo x > /bin/new && cat /bin/new"],
        ),
        b"",
    );
    assert_eq!(stdout(&output), "x\n");
    assert!(!busybox_rootfs().join("bin/new").exists());
}

#[test]
fn volumes_mount_read_write_and_read_only() {
    let rw = tempfile::tempdir().unwrap();
    let ro = tempfile::tempdir().unwrap();
    fs::write(ro.path().join("config"), "from host\n").unwrap();
    let mut spec = container(
        "volumes",
        &["sh", "-c", "echo written > /data/out && cat /conf/config && if touch /conf/x 2>/dev/null; then echo ro-writable; fi"],
    );
    spec.volumes = vec![
        VolumeMount {
            host: rw.path().to_path_buf(),
            container: "/data".into(),
            read_only: false,
        },
        VolumeMount {
            host: ro.path().to_path_buf(),
            container: "/conf".into(),
            read_only: true,
        },
    ];
    let output = run(&spec, b"");
    assert_eq!(
        stdout(&output),
        "from host\n",
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        fs::read_to_string(rw.path().join("out")).unwrap(),
        "written\n"
    );
    assert!(!ro.path().join("x").exists());
}

#[test]
fn stdin_is_forwarded() {
    let mut spec = container("stdin", &["cat"]);
    spec.interactive = true;
    let output = run(&spec, b"line one\nline two\n");
    assert_eq!(stdout(&output), "line one\nline two\n");
}

#[test]
fn output_to_dev_null_does_not_break_the_container() {
    require_shim();
    let spec = container(
        "devnull",
        &["sh", "-c", "echo quiet; echo loud >&2; exit 4"],
    );
    let bundle = Bundle::create(&spec).unwrap();
    let status = bundle
        .command()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(4));
    bundle.remove().unwrap();
    assert_nothing_left(&spec.id);
}

/// Starts a container, waits until it prints `ready`, sends `signal` to the shim, returns the
/// shim's exit code and how long the container took to go.
fn signal_running_container(name: &str, script: &str, signal: i32) -> (Option<i32>, Duration) {
    signal_running_container_with(name, script, signal, "1")
}

/// [`signal_running_container`] with the shim's `--stop-timeout` (seconds).
fn signal_running_container_with(
    name: &str,
    script: &str,
    signal: i32,
    stop_timeout: &str,
) -> (Option<i32>, Duration) {
    require_shim();
    let spec = container(name, &["sh", "-c", script]);
    let bundle = Bundle::create(&spec).unwrap();
    let mut child = bundle
        .command()
        .args(["--stop-timeout", stop_timeout])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut ready = [0u8; 6];
    out.read_exact(&mut ready).unwrap();
    assert_eq!(&ready, b"ready\n");
    let sent = Instant::now();
    unsafe { libc::kill(child.id() as i32, signal) };
    let status = child.wait().unwrap();
    let elapsed = sent.elapsed();
    bundle.remove().unwrap();
    assert_nothing_left(&spec.id);
    (status.code(), elapsed)
}

#[test]
fn forwarded_signal_reaches_the_container() {
    let (code, _) = signal_running_container(
        "trap",
        "trap 'exit 7' TERM; echo ready; while true; do sleep 0.05; done",
        libc::SIGTERM,
    );
    assert_eq!(code, Some(7));
}

/// Every signal `__service-init` forwards to a container service's shim reaches the container
/// (SIGWINCH resizes the terminal instead). The shim used to lack SIGALRM, a valid
/// `stop_signal`: it died of it, leaving the container to the pid namespace's teardown.
#[test]
fn every_forwarded_signal_reaches_the_container() {
    for signal in locald_shim_protocol::signals::FORWARDED_SIGNALS {
        if signal == nix::sys::signal::Signal::SIGWINCH {
            continue;
        }
        let name = signal.as_str().trim_start_matches("SIG");
        let script = format!("trap 'exit 7' {name}; echo ready; while true; do sleep 0.05; done");
        let (code, _) = signal_running_container("forward", &script, signal as i32);
        assert_eq!(code, Some(7), "{signal}");
    }
}

/// A stop timeout longer than `Instant` can represent means no deadline: the shim used to
/// panic adding it to the current time when the stop request came.
#[test]
fn a_stop_timeout_of_centuries_is_no_deadline() {
    let (code, _) = signal_running_container_with(
        "forever",
        "trap 'exit 7' TERM; echo ready; while true; do sleep 0.05; done",
        libc::SIGTERM,
        "10000000000000000000",
    );
    assert_eq!(code, Some(7));
}

#[test]
fn killed_container_reports_128_plus_signal() {
    // `sleep` as the pid namespace's init ignores SIGTERM: the shim escalates to SIGKILL after
    // the stop timeout (1 s here).
    let (code, elapsed) =
        signal_running_container("kill", "echo ready; exec sleep 30", libc::SIGTERM);
    assert_eq!(code, Some(128 + 9));
    assert!(
        elapsed >= Duration::from_millis(900),
        "killed after {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(10),
        "killed after {elapsed:?}"
    );
}

#[test]
fn tty_run_through_a_pseudo_terminal() {
    require_shim();
    let mut spec = container(
        "tty",
        &[
            "sh",
            "-c",
            "test -t 0 && test -t 1 && echo is-a-tty; stty size; echo $TERM",
        ],
    );
    spec.tty = true;
    let bundle = Bundle::create(&spec).unwrap();
    let pty = nix::pty::openpty(
        Some(&nix::pty::Winsize {
            ws_row: 37,
            ws_col: 111,
            ws_xpixel: 0,
            ws_ypixel: 0,
        }),
        None,
    )
    .unwrap();
    let slave = || Stdio::from(pty.slave.try_clone().unwrap());
    let mut child = bundle
        .command()
        .stdin(slave())
        .stdout(slave())
        .stderr(slave())
        .spawn()
        .unwrap();
    drop(pty.slave);
    let mut master = fs::File::from(pty.master);
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    // Read until the shim exits and the slave side closes (EIO).
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    let status = child.wait().unwrap();
    let text = String::from_utf8_lossy(&seen);
    assert_eq!(status.code(), Some(0), "output: {text}");
    assert!(text.contains("is-a-tty"), "output: {text}");
    assert!(
        text.contains("37 111"),
        "window size not propagated: {text}"
    );
    assert!(text.contains("xterm"), "output: {text}");
    let _ = master.as_raw_fd();
    bundle.remove().unwrap();
    assert_nothing_left(&spec.id);
}

/// Rootless: an unprivileged user runs the shim; inside, the container sees itself as root.
#[test]
fn rootless_container_runs_as_an_unprivileged_user() {
    let shim = require_shim();
    let user = "locald-test";
    if Command::new("id")
        .arg(user)
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
    {
        let created = Command::new("useradd")
            .args(["-m", user])
            .status()
            .expect("useradd");
        assert!(created.success(), "useradd {user} failed");
    }
    let id_of = |flag: &str| -> u32 {
        let out = Command::new("id").args([flag, user]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    let (uid, gid) = (id_of("-u"), id_of("-g"));

    // A bundle the user owns, written as `Bundle` would in that user's own session, over an
    // image rootfs the user owns (a rootless user's image store is their own: overlayfs in a
    // user namespace cannot copy up files whose owner is not mapped into it).
    let mut spec = container(
        "rootless",
        &[
            "sh",
            "-c",
            "id -u; echo hello > /tmp/x && cat /tmp/x; echo x > /bin/y && echo wrote",
        ],
    );
    let work = tempfile::tempdir().unwrap();
    fs::set_permissions(work.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let image_rootfs = work.path().join("image-rootfs");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(busybox_rootfs())
        .arg(&image_rootfs)
        .status()
        .unwrap();
    assert!(copied.success());
    spec.image.rootfs = image_rootfs.clone();
    let bundle = work.path().join("bundle");
    let state = work.path().join("state");
    for dir in [
        &bundle,
        &bundle.join("rootfs"),
        &bundle.join("upper"),
        &bundle.join("work"),
        &state,
    ] {
        fs::create_dir_all(dir).unwrap();
    }
    fs::write(bundle.join("hosts"), "127.0.0.1 localhost\n").unwrap();
    fs::write(bundle.join("resolv.conf"), "").unwrap();
    let mut oci = runtime_spec(&spec, Mode::Rootless { uid, gid }).unwrap();
    for mount in oci.mounts_mut().as_mut().unwrap() {
        if let Some(source) = mount.source().clone().filter(|s| s.is_relative()) {
            mount.set_source(Some(bundle.join(source)));
        }
    }
    oci.save(bundle.join("config.json")).unwrap();
    let chown = Command::new("chown")
        .arg("-R")
        .arg(format!("{uid}:{gid}"))
        .arg(work.path())
        .status()
        .unwrap();
    assert!(chown.success());
    // The shim must be reachable by the user: copy it next to the bundle.
    let user_shim = work.path().join("locald-shim");
    fs::copy(&shim, &user_shim).unwrap();

    let output = Command::new("setpriv")
        .args([
            "--reuid",
            &uid.to_string(),
            "--regid",
            &gid.to_string(),
            "--clear-groups",
            "--",
        ])
        .arg(&user_shim)
        .args(["run", "--bundle"])
        .arg(&bundle)
        .args(["--id", &spec.id, "--root"])
        .arg(&state)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stdout(&output), "0\nhello\nwrote\n", "stderr: {err}");
    assert_eq!(output.status.code(), Some(0), "stderr: {err}");
    assert!(
        !image_rootfs.join("bin/y").exists(),
        "the image rootfs was written to"
    );
    assert!(!state.join(&spec.id).exists(), "rootless state left behind");
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains(&spec.id));
}

/// The shim runs nothing from a bundle that another user could have changed (writable by
/// others), nor with a state root that is a symlink; it says which directory and why.
#[test]
fn the_shim_refuses_directories_others_could_change() {
    require_shim();
    let spec = container("refused", &["echo", "container ran"]);
    let bundle = Bundle::create(&spec).expect("bundle");
    fs::set_permissions(bundle.dir(), fs::Permissions::from_mode(0o777)).unwrap();
    let output = bundle.command().stdin(Stdio::null()).output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(125), "{err}");
    assert!(err.contains("lets other users write"), "{err}");
    assert!(err.contains(&bundle.dir().display().to_string()), "{err}");
    assert!(!stdout(&output).contains("container ran"));
    fs::set_permissions(bundle.dir(), fs::Permissions::from_mode(0o700)).unwrap();

    let scratch = tempfile::tempdir().unwrap();
    let elsewhere = scratch.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    let link = scratch.path().join("state");
    std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
    let mut command = Command::new(require_shim());
    command
        .args(["run", "--bundle"])
        .arg(bundle.dir())
        .args(["--id", bundle.id(), "--root"])
        .arg(&link);
    let output = command.stdin(Stdio::null()).output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(125), "{err}");
    assert!(err.contains("symbolic link"), "{err}");
    assert!(!stdout(&output).contains("container ran"));
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
    bundle.remove().unwrap();
    assert_nothing_left(&spec.id);
}

#[test]
fn run_foreground_returns_the_exit_code_and_cleans_up() {
    require_shim();
    let spec = container("foreground", &["sh", "-c", "exit 5"]);
    assert_eq!(locald_runtime::run_foreground(&spec).unwrap(), 5);
    assert!(!locald_runtime::runtime_root()
        .join("bundles")
        .join(&spec.id)
        .exists());
    assert_nothing_left(&spec.id);
}

#[test]
fn the_container_gets_its_cgroups_and_device_rules() {
    // A node for the host's root block device: the device cgroup must refuse it (without it,
    // root in the container could read the disk); /dev/null must stay usable.
    let root_dev = fs::metadata("/")
        .map(|m| std::os::unix::fs::MetadataExt::dev(&m))
        .unwrap();
    let (major, minor) = (libc::major(root_dev), libc::minor(root_dev));
    let script = format!(
        "cat /proc/self/cgroup; busybox mknod /blk b {major} {minor} && \
         if busybox head -c1 /blk >/dev/null 2>&1; then echo blk-readable; fi; \
         echo x > /dev/null && echo null-writable"
    );
    let spec = container("cgroups", &["sh", "-c", &script]);
    let output = run(&spec, b"");
    let out = stdout(&output);
    assert!(out.contains("null-writable"), "{out}");
    assert!(!out.contains("blk-readable"), "{out}");
    let cgroup = format!("/locald/{}", spec.id);
    for controller in ["devices", "memory", "pids"] {
        let line = out.lines().find(|line| {
            line.split(':')
                .nth(1)
                .is_some_and(|c| c.split(',').any(|c| c == controller))
        });
        if let Some(line) = line {
            assert!(line.ends_with(&cgroup), "{controller}: {line}");
        }
    }
}

#[test]
fn a_failed_start_leaves_nothing_behind() {
    // `run` checks that no bundle, state, mount or cgroup is left.
    let output = run(&container("nocommand", &["/no/such/program"]), b"");
    assert_ne!(output.status.code(), Some(0));
}

/// The container's `/proc/self/status`, as `field -> value`.
fn status_of(spec: &ContainerSpec) -> std::collections::BTreeMap<String, String> {
    let output = run(spec, b"");
    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout(&output)
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(field, value)| (field.to_string(), value.trim().to_string()))
        .collect()
}

fn status(name: &str) -> ContainerSpec {
    container(name, &["cat", "/proc/self/status"])
}

/// Bit 13 of a `CapEff`/`CapBnd` hex mask.
fn has_net_raw(mask: &str) -> bool {
    u64::from_str_radix(mask, 16).unwrap() & (1 << 13) != 0
}

#[test]
fn containers_are_confined_by_default() {
    let status = status_of(&status("confined"));
    assert_eq!(status["NoNewPrivs"], "1");
    assert_eq!(status["Seccomp"], "2", "a seccomp filter is on");
    for set in ["CapEff", "CapPrm", "CapBnd"] {
        let mask = &status[set];
        assert!(!has_net_raw(mask), "{set} {mask} holds CAP_NET_RAW");
    }
    assert_eq!(status["CapInh"], "0000000000000000");
    assert_eq!(status["CapAmb"], "0000000000000000");
}

#[test]
fn a_container_cannot_open_a_packet_socket() {
    // arping opens an AF_PACKET socket: with CAP_NET_RAW on the host's network it could read
    // the host's loopback traffic.
    let output = run(
        &container(
            "arping",
            &["arping", "-c", "1", "-w", "1", "-I", "lo", "127.0.0.1"],
        ),
        b"",
    );
    let err = String::from_utf8_lossy(&output.stderr);
    assert_ne!(output.status.code(), Some(0), "arping ran: {err}");
    assert!(err.contains("Operation not permitted"), "stderr: {err}");
}

#[test]
fn cap_add_net_raw_gives_it_back() {
    let mut spec = status("netraw");
    spec.security.add_cap("net_raw").unwrap();
    assert!(has_net_raw(&status_of(&spec)["CapEff"]));
    let mut spec = status("dropall");
    spec.security.drop_cap("ALL").unwrap();
    assert_eq!(status_of(&spec)["CapEff"], "0000000000000000");
}

#[test]
fn the_default_seccomp_profile_refuses_what_docker_refuses_and_runs_the_rest() {
    // unshare needs CAP_SYS_ADMIN under Docker's profile (creating a user namespace needs no
    // capability on the host, so only the filter stops it).
    let output = run(&container("unshare", &["unshare", "-U", "true"]), b"");
    let err = String::from_utf8_lossy(&output.stderr);
    assert_ne!(output.status.code(), Some(0), "unshare ran: {err}");
    assert!(err.contains("Operation not permitted"), "stderr: {err}");

    // Ordinary work: fork (clone without namespace flags), pipes, subshells, an allowed
    // personality.
    let output = run(
        &container(
            "workload",
            &[
                "sh",
                "-c",
                "(echo a; echo b) | grep b; sleep 0 & wait; linux32 echo c",
            ],
        ),
        b"",
    );
    assert_eq!(
        stdout(&output),
        "b\nc\n",
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn seccomp_can_be_turned_off_or_replaced() {
    let mut spec = status("unconfined");
    spec.security.seccomp = SeccompChoice::Unconfined;
    assert_eq!(status_of(&spec)["Seccomp"], "0");

    // A profile file: everything allowed but mkdir.
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("profile.json");
    fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#,
    )
    .unwrap();
    let mut spec = container("profile", &["sh", "-c", "mkdir /tmp/d; echo $?"]);
    spec.security.seccomp = SeccompChoice::Profile(profile);
    let output = run(&spec, b"");
    assert_eq!(stdout(&output), "1\n");
    assert!(String::from_utf8_lossy(&output.stderr).contains("Permission denied"));

    let mut spec = status("nnp-off");
    spec.security.no_new_privileges = false;
    let status = status_of(&spec);
    assert_eq!(status["NoNewPrivs"], "0");
    assert_eq!(status["Seccomp"], "2");
}

/// A busybox rootfs copy holding `probes/NAME.c` compiled statically as `/NAME`.
fn rootfs_with_probe(dir: &Path, name: &str) -> PathBuf {
    let rootfs = dir.join("rootfs");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(busybox_rootfs())
        .arg(&rootfs)
        .status()
        .unwrap();
    assert!(copied.success());
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/probes")
        .join(format!("{name}.c"));
    let compiled = Command::new("cc")
        .args(["-static", "-O1", "-o"])
        .arg(rootfs.join(name))
        .arg(&source)
        .status()
        .expect("this test compiles a probe with `cc` (apt-get install gcc)");
    assert!(compiled.success(), "cannot compile {}", source.display());
    rootfs
}

/// Issue 7: containers share the host's network, so with CAP_NET_RAW one could read the host's
/// loopback traffic through a packet socket. It cannot by default; `--cap-add NET_RAW` (shown
/// here to prove the probe does capture) brings the capability back, knowingly.
#[test]
fn a_container_cannot_read_the_hosts_loopback_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = container("sniff", &["/sniff"]);
    spec.image.rootfs = rootfs_with_probe(dir.path(), "sniff");
    let output = run(&spec, b"");
    assert_eq!(
        stdout(&output),
        "packet socket: Operation not permitted\n",
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(1));

    spec.id = unique_id("sniff-net-raw");
    spec.security.add_cap("NET_RAW").unwrap();
    let output = run(&spec, b"");
    assert_eq!(
        stdout(&output),
        "captured\n",
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn syscalls_newer_than_the_filter_are_not_implemented_so_libcs_fall_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = container("newer", &["/newer"]);
    spec.image.rootfs = rootfs_with_probe(dir.path(), "newer");
    let output = run(&spec, b"");
    assert_eq!(
        stdout(&output),
        "statmount: Function not implemented\nsyscall 1000: Function not implemented\n",
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    // Without the filter, this kernel (6.8 or later) runs statmount: only the filter hid it.
    spec.id = unique_id("newer-unconfined");
    spec.security.seccomp = SeccompChoice::Unconfined;
    let output = run(&spec, b"");
    assert_eq!(
        stdout(&output),
        "statmount: Bad address\nsyscall 1000: Function not implemented\n"
    );
}

#[test]
fn clone_may_not_create_namespaces_and_clone3_is_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = container("clone", &["/clone"]);
    spec.image.rootfs = rootfs_with_probe(dir.path(), "clone");
    let output = run(&spec, b"");
    assert_eq!(
        stdout(&output),
        "clone: ok\nclone newuser: Operation not permitted\nclone newns: Operation not permitted\n\
         clone3: Function not implemented\n",
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    // CAP_SYS_ADMIN unlocks them, as in Docker.
    spec.id = unique_id("clone-admin");
    spec.security.add_cap("SYS_ADMIN").unwrap();
    let output = run(&spec, b"");
    let out = stdout(&output);
    assert!(out.contains("clone newns: ok\n"), "{out}");
    assert!(!out.contains("clone3: Function not implemented"), "{out}");
}
