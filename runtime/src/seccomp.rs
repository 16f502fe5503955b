//! Seccomp profiles in Docker's format and their rendering into the OCI runtime spec's
//! `linux.seccomp`.
//!
//! [`default_profile`] is the equivalent of moby's `profiles/seccomp/default.json`: every syscall
//! not listed fails with `EPERM`; a few are allowed only with given arguments (`personality`,
//! `clone` without namespace flags, `socket` of any family but `AF_VSOCK`), per architecture, or
//! only when the container holds a capability (`CAP_SYS_ADMIN` unlocks `mount`, `unshare`,
//! `setns`...). A user's profile (`--security-opt seccomp=FILE`) is read by [`load_profile`] into
//! the same type, and both are filtered for the container's capabilities, the host's architecture
//! and kernel by [`render`], as the Docker daemon does before handing the profile to runc.
//!
//! Syscall names this host's libseccomp cannot resolve (newer than it, or of another
//! architecture) are skipped by libcontainer with a warning, so one profile serves every host.

use std::io::Read;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Arch, LinuxSeccompAction, LinuxSeccompOperator};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use LinuxSeccompOperator::{ScmpCmpEq as EQ, ScmpCmpMaskedEq as MASKED_EQ, ScmpCmpNe as NE};

/// Largest profile file read: moby's default profile is about 20 KB.
pub const MAX_PROFILE_BYTES: u64 = 1024 * 1024;

/// `EPERM`, what a syscall outside the profile returns.
const EPERM: u32 = 1;
/// `ENOSYS`: `clone3` "does not exist" so that libcs fall back to `clone`, whose flags the
/// profile can inspect (`clone3` passes them in memory, out of seccomp's reach).
const ENOSYS: u32 = 38;
/// `CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
/// CLONE_NEWNET`: the namespace flags `clone` may not carry without `CAP_SYS_ADMIN`.
const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;
/// `AF_VSOCK`: host/VM sockets, refused as moby does.
const AF_VSOCK: u64 = 40;

/// A seccomp profile in Docker's format (the OCI `linux.seccomp` plus per-rule conditions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub default_action: LinuxSeccompAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    /// Docker's form: the architectures to add for each native architecture.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arch_map: Vec<ArchMap>,
    /// The OCI form: architectures added whatever the host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub architectures: Vec<Arch>,
    #[serde(default)]
    pub syscalls: Vec<Rule>,
}

/// The architectures a filter covers on a host of `architecture`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMap {
    pub architecture: Arch,
    #[serde(default)]
    pub sub_architectures: Vec<Arch>,
}

/// One rule: what `names` do (with `args`), when `includes` holds and `excludes` does not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub names: Vec<String>,
    pub action: LinuxSeccompAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<Arg>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    #[serde(default)]
    pub includes: Filter,
    #[serde(default)]
    pub excludes: Filter,
}

/// A syscall argument comparison, with the OCI (runc) meaning: for `SCMP_CMP_MASKED_EQ`,
/// `(arg & value) == value_two`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Arg {
    pub index: u32,
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    pub op: LinuxSeccompOperator,
}

/// Conditions on the container (all must hold for `includes`, any for `excludes`): capabilities
/// it holds, the host's architecture (Go names as Docker writes them: `amd64`, `arm64`...), a
/// minimum kernel version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caps: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arches: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_kernel: Option<String>,
}

/// Why a profile file cannot be used; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("cannot read the seccomp profile {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the seccomp profile {} is larger than the limit of {limit} bytes",
        path.display()
    )]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("the seccomp profile {} is not a valid profile: {source}", path.display())]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("the seccomp profile {}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

/// Reads and checks the Docker- or OCI-format profile at `path` (at most
/// [`MAX_PROFILE_BYTES`]).
pub fn load_profile(path: &Path) -> Result<Profile, SeccompError> {
    let read_error = |source| SeccompError::Read {
        path: path.to_path_buf(),
        source,
    };
    // Not File::open: a FIFO named as a profile would block the open for good (and profiles are
    // read when a project is loaded, by `locald status` too).
    let file = locald_shim_protocol::regular_file::open_regular(path).map_err(read_error)?;
    let mut text = Vec::new();
    file.take(MAX_PROFILE_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(read_error)?;
    if text.len() as u64 > MAX_PROFILE_BYTES {
        return Err(SeccompError::TooLarge {
            path: path.to_path_buf(),
            limit: MAX_PROFILE_BYTES,
        });
    }
    let profile: Profile = serde_json::from_slice(&text).map_err(|source| SeccompError::Parse {
        path: path.to_path_buf(),
        source,
    })?;
    let invalid = |message: String| SeccompError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    // No agent listens for notifications: such a rule would hang the syscall forever.
    if profile.default_action == LinuxSeccompAction::ScmpActNotify
        || profile
            .syscalls
            .iter()
            .any(|rule| rule.action == LinuxSeccompAction::ScmpActNotify)
    {
        return Err(invalid(
            "SCMP_ACT_NOTIFY needs a seccomp agent, which locald does not run".into(),
        ));
    }
    for rule in &profile.syscalls {
        if rule.names.is_empty() || rule.names.iter().any(|name| name.trim().is_empty()) {
            return Err(invalid("a rule has no syscall name".into()));
        }
        if let Some(arg) = rule.args.iter().find(|arg| arg.index > 5) {
            return Err(invalid(format!(
                "rule for {}: argument index {} is out of range (0 to 5)",
                rule.names.join(", "),
                arg.index
            )));
        }
        for caps in [&rule.includes.caps, &rule.excludes.caps] {
            for cap in caps {
                crate::capabilities::canonical_name(cap).map_err(|e| invalid(e.to_string()))?;
            }
        }
        for version in [&rule.includes.min_kernel, &rule.excludes.min_kernel]
            .into_iter()
            .flatten()
        {
            if parse_kernel(version).is_none() {
                return Err(invalid(format!(
                    "minKernel `{version}` is not a kernel version such as \"4.8\""
                )));
            }
        }
    }
    Ok(profile)
}

/// What a profile is rendered for: the container's capabilities (canonical names, see
/// [`crate::capabilities`]), the host's architecture and kernel.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub capabilities: &'a [String],
    /// Go's name of the architecture, as in Docker profiles: `amd64`, `arm64`...
    pub arch: &'a str,
    /// `(major, minor)` of the running kernel, when known.
    pub kernel: Option<(u32, u32)>,
}

impl Target<'_> {
    /// The running host: its architecture and kernel, for `capabilities`.
    pub fn host(capabilities: &[String]) -> Target<'_> {
        Target {
            capabilities,
            arch: host_arch(),
            kernel: host_kernel(),
        }
    }
}

/// Go's name (as Docker profiles use it) of the architecture this binary is built for.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// The running kernel's `(major, minor)`.
pub fn host_kernel() -> Option<(u32, u32)> {
    let uname = nix::sys::utsname::uname().ok()?;
    parse_kernel(&uname.release().to_string_lossy())
}

/// `"6.1.0-18-amd64"` → `(6, 1)`.
fn parse_kernel(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map_or(Some(0), |minor| minor.parse().ok())?;
    Some((major, minor))
}

/// The seccomp architecture of a Go architecture name.
fn native_arch(arch: &str) -> Option<Arch> {
    Some(match arch {
        "amd64" => Arch::ScmpArchX86_64,
        "386" => Arch::ScmpArchX86,
        "arm64" => Arch::ScmpArchAarch64,
        "arm" => Arch::ScmpArchArm,
        "ppc64le" => Arch::ScmpArchPpc64le,
        "s390x" => Arch::ScmpArchS390x,
        "riscv64" => Arch::ScmpArchRiscv64,
        "loong64" => Arch::ScmpArchLoongarch64,
        _ => return None,
    })
}

/// `profile` as the OCI spec's `linux.seccomp` for `target`: the rules whose conditions hold,
/// the architectures of the host's entry in `archMap`.
pub fn render(profile: &Profile, target: Target<'_>) -> Value {
    let mut architectures = profile.architectures.clone();
    if let Some(native) = native_arch(target.arch) {
        for entry in profile
            .arch_map
            .iter()
            .filter(|entry| entry.architecture == native)
        {
            architectures.push(entry.architecture);
            architectures.extend(entry.sub_architectures.iter().copied());
        }
    }
    let syscalls: Vec<Value> = profile
        .syscalls
        .iter()
        .filter(|rule| applies(rule, target))
        .map(|rule| {
            let mut out = json!({"names": rule.names, "action": rule.action});
            if let Some(errno) = rule.errno_ret {
                out["errnoRet"] = json!(errno);
            }
            if !rule.args.is_empty() {
                out["args"] = Value::Array(rule.args.iter().map(render_arg).collect());
            }
            out
        })
        .collect();
    let mut seccomp = json!({
        "defaultAction": profile.default_action,
        "syscalls": syscalls,
    });
    if let Some(errno) = profile.default_errno_ret {
        seccomp["defaultErrnoRet"] = json!(errno);
    }
    if !architectures.is_empty() {
        seccomp["architectures"] = json!(architectures);
    }
    seccomp
}

/// One argument comparison. libcontainer 0.7 reads `SCMP_CMP_MASKED_EQ` the other way round from
/// runc (it takes `valueTwo` as the mask and `value` as the datum), so the two are swapped here.
/// Rendered as runc reads it, Docker's `clone` rule becomes "mask 0, datum 0" after libseccomp
/// masks the datum: it matches every `clone`, namespace flags included. `locald-shim` is the only
/// consumer of these specs.
fn render_arg(arg: &Arg) -> Value {
    let (value, value_two) = if arg.op == LinuxSeccompOperator::ScmpCmpMaskedEq {
        (arg.value_two, arg.value)
    } else {
        (arg.value, arg.value_two)
    };
    json!({"index": arg.index, "value": value, "valueTwo": value_two, "op": arg.op})
}

fn applies(rule: &Rule, target: Target<'_>) -> bool {
    let holds = |cap: &String| {
        crate::capabilities::canonical_name(cap)
            .map(|cap| target.capabilities.contains(&cap))
            .unwrap_or(false)
    };
    let kernel_at_least = |version: &String| match (target.kernel, parse_kernel(version)) {
        (Some(kernel), Some(min)) => kernel >= min,
        // Unknown kernel: assume a current one, as the rules only gate old kernels.
        (None, _) => true,
        (_, None) => false,
    };
    let includes = &rule.includes;
    let excludes = &rule.excludes;
    includes.caps.iter().all(holds)
        && (includes.arches.is_empty() || includes.arches.iter().any(|a| a == target.arch))
        && includes.min_kernel.as_ref().is_none_or(kernel_at_least)
        && !excludes.caps.iter().any(holds)
        && !excludes.arches.iter().any(|a| a == target.arch)
        && !excludes.min_kernel.as_ref().is_some_and(kernel_at_least)
}

/// One rule of the built-in profile (see [`DEFAULT_RULES`]).
struct DefaultRule {
    names: &'static [&'static str],
    action: LinuxSeccompAction,
    errno: Option<u32>,
    /// `(index, value, value_two, op)`.
    args: &'static [(u32, u64, u64, LinuxSeccompOperator)],
    caps: &'static [&'static str],
    not_caps: &'static [&'static str],
    arches: &'static [&'static str],
    not_arches: &'static [&'static str],
    min_kernel: Option<&'static str>,
}

const ALLOW: DefaultRule = DefaultRule {
    names: &[],
    action: LinuxSeccompAction::ScmpActAllow,
    errno: None,
    args: &[],
    caps: &[],
    not_caps: &[],
    arches: &[],
    not_arches: &[],
    min_kernel: None,
};

/// Syscalls every container may make (moby's main allow-list).
const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
];

/// moby's default profile, rule by rule (`profiles/seccomp/default.go`). `io_uring_*` are left
/// out, as moby does since 25.0 (a large, often-exploited kernel surface).
const DEFAULT_RULES: &[DefaultRule] = &[
    DefaultRule {
        names: ALLOWED,
        ..ALLOW
    },
    // Every family but AF_VSOCK.
    DefaultRule {
        names: &["socket"],
        args: &[(0, AF_VSOCK, 0, NE)],
        ..ALLOW
    },
    DefaultRule {
        names: &["process_vm_readv", "process_vm_writev", "ptrace"],
        min_kernel: Some("4.8"),
        ..ALLOW
    },
    // personality: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and the query.
    DefaultRule {
        names: &["personality"],
        args: &[(0, 0x0, 0, EQ)],
        ..ALLOW
    },
    DefaultRule {
        names: &["personality"],
        args: &[(0, 0x8, 0, EQ)],
        ..ALLOW
    },
    DefaultRule {
        names: &["personality"],
        args: &[(0, 0x20000, 0, EQ)],
        ..ALLOW
    },
    DefaultRule {
        names: &["personality"],
        args: &[(0, 0x20008, 0, EQ)],
        ..ALLOW
    },
    DefaultRule {
        names: &["personality"],
        args: &[(0, 0xffff_ffff, 0, EQ)],
        ..ALLOW
    },
    DefaultRule {
        names: &["sync_file_range2", "swapcontext"],
        arches: &["ppc64le"],
        ..ALLOW
    },
    DefaultRule {
        names: &[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ],
        arches: &["arm", "arm64"],
        ..ALLOW
    },
    DefaultRule {
        names: &["arch_prctl"],
        arches: &["amd64", "x32"],
        ..ALLOW
    },
    DefaultRule {
        names: &["uretprobe"],
        arches: &["amd64"],
        ..ALLOW
    },
    DefaultRule {
        names: &["modify_ldt"],
        arches: &["amd64", "x32", "x86"],
        ..ALLOW
    },
    DefaultRule {
        names: &[
            "s390_pci_mmio_read",
            "s390_pci_mmio_write",
            "s390_runtime_instr",
        ],
        arches: &["s390", "s390x"],
        ..ALLOW
    },
    DefaultRule {
        names: &["riscv_flush_icache"],
        arches: &["riscv64"],
        ..ALLOW
    },
    DefaultRule {
        names: &["open_by_handle_at"],
        caps: &["CAP_DAC_READ_SEARCH"],
        ..ALLOW
    },
    DefaultRule {
        names: &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "name_to_handle_at",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
        caps: &["CAP_SYS_ADMIN"],
        ..ALLOW
    },
    // clone without namespace flags (s390 swaps the first two arguments).
    DefaultRule {
        names: &["clone"],
        args: &[(0, CLONE_NAMESPACE_FLAGS, 0, MASKED_EQ)],
        not_caps: &["CAP_SYS_ADMIN"],
        not_arches: &["s390", "s390x"],
        ..ALLOW
    },
    DefaultRule {
        names: &["clone"],
        args: &[(1, CLONE_NAMESPACE_FLAGS, 0, MASKED_EQ)],
        arches: &["s390", "s390x"],
        not_caps: &["CAP_SYS_ADMIN"],
        ..ALLOW
    },
    DefaultRule {
        names: &["clone3"],
        action: LinuxSeccompAction::ScmpActErrno,
        errno: Some(ENOSYS),
        not_caps: &["CAP_SYS_ADMIN"],
        ..ALLOW
    },
    DefaultRule {
        names: &["reboot"],
        caps: &["CAP_SYS_BOOT"],
        ..ALLOW
    },
    DefaultRule {
        names: &["chroot"],
        caps: &["CAP_SYS_CHROOT"],
        ..ALLOW
    },
    DefaultRule {
        names: &["delete_module", "init_module", "finit_module"],
        caps: &["CAP_SYS_MODULE"],
        ..ALLOW
    },
    DefaultRule {
        names: &["acct"],
        caps: &["CAP_SYS_PACCT"],
        ..ALLOW
    },
    DefaultRule {
        names: &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
        caps: &["CAP_SYS_PTRACE"],
        ..ALLOW
    },
    DefaultRule {
        names: &["iopl", "ioperm"],
        caps: &["CAP_SYS_RAWIO"],
        ..ALLOW
    },
    DefaultRule {
        names: &["settimeofday", "stime", "clock_settime", "clock_settime64"],
        caps: &["CAP_SYS_TIME"],
        ..ALLOW
    },
    DefaultRule {
        names: &["vhangup"],
        caps: &["CAP_SYS_TTY_CONFIG"],
        ..ALLOW
    },
    DefaultRule {
        names: &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
        caps: &["CAP_SYS_NICE"],
        ..ALLOW
    },
    DefaultRule {
        names: &["syslog"],
        caps: &["CAP_SYSLOG"],
        ..ALLOW
    },
    DefaultRule {
        names: &["bpf"],
        caps: &["CAP_BPF"],
        ..ALLOW
    },
    DefaultRule {
        names: &["perf_event_open"],
        caps: &["CAP_PERFMON"],
        ..ALLOW
    },
];

/// The built-in profile, equivalent to Docker's default: deny with `EPERM` what is not listed.
pub fn default_profile() -> Profile {
    let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    Profile {
        default_action: LinuxSeccompAction::ScmpActErrno,
        default_errno_ret: Some(EPERM),
        arch_map: vec![
            ArchMap {
                architecture: Arch::ScmpArchX86_64,
                sub_architectures: vec![Arch::ScmpArchX86, Arch::ScmpArchX32],
            },
            ArchMap {
                architecture: Arch::ScmpArchAarch64,
                sub_architectures: vec![Arch::ScmpArchArm],
            },
            ArchMap {
                architecture: Arch::ScmpArchS390x,
                sub_architectures: vec![Arch::ScmpArchS390],
            },
        ],
        architectures: Vec::new(),
        syscalls: DEFAULT_RULES
            .iter()
            .map(|rule| Rule {
                names: strings(rule.names),
                action: rule.action,
                errno_ret: rule.errno,
                args: rule
                    .args
                    .iter()
                    .map(|&(index, value, value_two, op)| Arg {
                        index,
                        value,
                        value_two,
                        op,
                    })
                    .collect(),
                comment: String::new(),
                includes: Filter {
                    caps: strings(rule.caps),
                    arches: strings(rule.arches),
                    min_kernel: rule.min_kernel.map(str::to_string),
                },
                excludes: Filter {
                    caps: strings(rule.not_caps),
                    arches: strings(rule.not_arches),
                    min_kernel: None,
                },
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amd64(capabilities: &[String]) -> Target<'_> {
        Target {
            capabilities,
            arch: "amd64",
            kernel: Some((6, 1)),
        }
    }

    /// The rendered rules allowing `name`, as `(args, action)`.
    fn rules_for(seccomp: &Value, name: &str) -> Vec<Value> {
        seccomp["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|rule| rule["names"].as_array().unwrap().iter().any(|n| n == name))
            .cloned()
            .collect()
    }

    #[test]
    fn the_default_profile_denies_with_eperm_and_covers_the_host_arches() {
        let caps = crate::capabilities::resolve(&[], &[], 40);
        let seccomp = render(&default_profile(), amd64(&caps));
        assert_eq!(seccomp["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(seccomp["defaultErrnoRet"], 1);
        assert_eq!(
            seccomp["architectures"],
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
        let arm = render(
            &default_profile(),
            Target {
                arch: "arm64",
                ..amd64(&caps)
            },
        );
        assert_eq!(
            arm["architectures"],
            json!(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"])
        );
        // Arch-conditional rules follow the host.
        assert_eq!(rules_for(&seccomp, "arch_prctl").len(), 1);
        assert!(rules_for(&arm, "arch_prctl").is_empty());
        assert_eq!(rules_for(&arm, "set_tls").len(), 1);
        // Common syscalls are allowed unconditionally; io_uring is not, as in moby 25+.
        for name in ["read", "execve", "futex", "rseq", "close_range", "statx"] {
            assert_eq!(rules_for(&seccomp, name).len(), 1, "{name}");
        }
        for name in [
            "io_uring_setup",
            "keyctl",
            "add_key",
            "kexec_load",
            "open_by_handle_at",
            "name_to_handle_at",
            "userfaultfd",
        ] {
            assert!(rules_for(&seccomp, name).is_empty(), "{name} is allowed");
        }
    }

    #[test]
    fn argument_filters_follow_docker() {
        let caps = crate::capabilities::resolve(&[], &[], 40);
        let seccomp = render(&default_profile(), amd64(&caps));
        let personality: Vec<u64> = rules_for(&seccomp, "personality")
            .iter()
            .map(|rule| rule["args"][0]["value"].as_u64().unwrap())
            .collect();
        assert_eq!(personality, [0, 8, 0x20000, 0x20008, 0xffff_ffff]);
        let socket = rules_for(&seccomp, "socket");
        assert_eq!(
            socket,
            [json!({"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                    "args": [{"index": 0, "value": 40, "valueTwo": 0, "op": "SCMP_CMP_NE"}]})]
        );
        // clone: namespace flags masked (in libcontainer's order: mask in valueTwo).
        let clone = rules_for(&seccomp, "clone");
        assert_eq!(clone.len(), 1);
        assert_eq!(
            clone[0]["args"],
            json!([{"index": 0, "value": 0, "valueTwo": 0x7E02_0000u64, "op": "SCMP_CMP_MASKED_EQ"}])
        );
        let clone3 = rules_for(&seccomp, "clone3");
        assert_eq!(clone3[0]["action"], "SCMP_ACT_ERRNO");
        assert_eq!(clone3[0]["errnoRet"], 38);
    }

    #[test]
    fn capabilities_unlock_their_syscalls() {
        let default = crate::capabilities::resolve(&[], &[], 40);
        let seccomp = render(&default_profile(), amd64(&default));
        for name in ["mount", "unshare", "setns", "reboot", "bpf", "kcmp"] {
            assert!(
                rules_for(&seccomp, name).is_empty(),
                "{name} allowed by default"
            );
        }
        // ptrace itself is allowed on kernels from 4.8 (its seccomp bypass was fixed there).
        assert_eq!(rules_for(&seccomp, "ptrace").len(), 1);
        let old_kernel = render(
            &default_profile(),
            Target {
                kernel: Some((4, 4)),
                ..amd64(&default)
            },
        );
        assert!(rules_for(&old_kernel, "ptrace").is_empty());

        let admin = crate::capabilities::resolve(&["CAP_SYS_ADMIN".into()], &[], 40);
        let seccomp = render(&default_profile(), amd64(&admin));
        for name in ["mount", "unshare", "setns", "clone3", "name_to_handle_at"] {
            let rules = rules_for(&seccomp, name);
            assert_eq!(rules.len(), 1, "{name}");
            assert_eq!(rules[0]["action"], "SCMP_ACT_ALLOW", "{name}");
            assert!(rules[0]["args"].is_null(), "{name}");
        }
        let rules = rules_for(&seccomp, "clone");
        assert!(rules.len() == 1 && rules[0]["args"].is_null());

        let time = crate::capabilities::resolve(&["CAP_SYS_TIME".into()], &[], 40);
        let seccomp = render(&default_profile(), amd64(&time));
        assert_eq!(rules_for(&seccomp, "settimeofday").len(), 1);
    }

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("profile.json");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn profile_files_load_in_docker_and_oci_form() {
        let dir = tempfile::tempdir().unwrap();
        let docker = write(
            dir.path(),
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
                "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
                "syscalls": [
                  {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "comment": "io"},
                  {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["SYS_ADMIN"]}},
                  {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                   "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}
                ]}"#,
        );
        let profile = load_profile(&docker).unwrap();
        let caps = crate::capabilities::resolve(&[], &[], 40);
        let seccomp = render(&profile, amd64(&caps));
        assert_eq!(
            seccomp["architectures"],
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"])
        );
        assert!(rules_for(&seccomp, "mount").is_empty());
        assert_eq!(
            rules_for(&seccomp, "clone")[0]["args"][0]["valueTwo"],
            2114060288u64
        );

        let oci = write(
            dir.path(),
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#,
        );
        let seccomp = render(&load_profile(&oci).unwrap(), amd64(&caps));
        assert_eq!(seccomp["architectures"], json!(["SCMP_ARCH_X86_64"]));
        assert_eq!(rules_for(&seccomp, "mkdir")[0]["errnoRet"], 13);
    }

    #[test]
    fn bad_profile_files_are_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.json");
        let error = load_profile(&missing).unwrap_err();
        // Nobody opens the FIFO's other end: a blocking open would hang here for good.
        let fifo = dir.path().join("profile.fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let fifo_error = load_profile(&fifo).unwrap_err().to_string();
        assert!(
            fifo_error.contains("profile.fifo") && fifo_error.contains("a FIFO"),
            "{fifo_error}"
        );
        assert!(matches!(error, SeccompError::Read { .. }));
        assert!(error.to_string().contains("nope.json"), "{error}");

        let cases = [
            ("{", "not a valid profile"),
            (
                r#"{"defaultAction": "SCMP_ACT_MAYBE"}"#,
                "not a valid profile",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]}"#,
                "SCMP_ACT_NOTIFY",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]}"#,
                "no syscall name",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
                "argument index 6",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "includes": {"caps": ["CAP_FLY"]}}]}"#,
                "unknown capability `CAP_FLY`",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "includes": {"minKernel": "new"}}]}"#,
                "minKernel `new`",
            ),
        ];
        for (text, expected) in cases {
            let path = write(dir.path(), text);
            let error = load_profile(&path).unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
            assert!(error.contains("profile.json"), "{error}");
        }

        let big = dir.path().join("big.json");
        std::fs::write(&big, vec![b' '; MAX_PROFILE_BYTES as usize + 1]).unwrap();
        assert!(matches!(
            load_profile(&big),
            Err(SeccompError::TooLarge { .. })
        ));
    }

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(parse_kernel("6.18.44-fc-v669"), Some((6, 18)));
        assert_eq!(parse_kernel("4.8"), Some((4, 8)));
        assert_eq!(parse_kernel("5"), Some((5, 0)));
        assert_eq!(parse_kernel("x"), None);
    }
}
