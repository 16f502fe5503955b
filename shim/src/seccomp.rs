//! The container's seccomp filter, compiled once and then loaded from a cache.
//!
//! libcontainer compiles `linux.seccomp` with libseccomp at every start, in the container's init:
//! for Docker's default profile (about 370 syscalls on x86_64, x86 and x32) that is 15 ms of CPU,
//! more than the rest of a container start. The compiled program depends only on the profile,
//! the architecture and libseccomp, so the shim compiles it itself, the same way libcontainer
//! would (same translation, see [`compile`]), keeps the BPF program in a cache directory keyed by
//! a SHA-256 of those inputs, and the container's init loads it right before `execve` (see
//! [`SeccompExecutor`]), where libcontainer would have loaded its own. libcontainer is handed the
//! spec without `linux.seccomp`.
//!
//! This path is taken only with `noNewPrivileges`: without it the filter must be loaded before the
//! init drops its capabilities, which only libcontainer can do; such specs are left to it.

use std::collections::HashSet;
use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use libcontainer::oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator, Spec,
};
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use sha2::{Digest, Sha256};

// The cache's layout and file format (shared with the runtime, which clears it); bump
// `seccomp_cache::FORMAT` whenever [`compile`] changes what it produces for the same inputs.
use locald_shim_protocol::exit::ExecFailure;
use locald_shim_protocol::private_dir::TrustedOwners;
use locald_shim_protocol::seccomp_cache;

/// A compiled filter, ready for `seccomp(SECCOMP_SET_MODE_FILTER)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BpfProgram(Vec<libc::sock_filter>);

impl BpfProgram {
    fn from_bytes(bytes: &[u8]) -> Result<BpfProgram> {
        Ok(BpfProgram(seccomp_cache::decode(bytes)?))
    }

    /// Installs the filter on the calling thread. The caller must have set no_new_privs (or hold
    /// CAP_SYS_ADMIN).
    pub fn install(&self) -> std::io::Result<()> {
        let len = u16::try_from(self.0.len())
            .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
        let fprog = libc::sock_fprog {
            len,
            filter: self.0.as_ptr().cast_mut(),
        };
        // SAFETY: fprog points at `len` valid instructions that outlive the call; the kernel
        // copies them.
        let result = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &fprog as *const libc::sock_fprog,
            )
        };
        if result == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// The filter the shim loads itself for `spec`, or `None` when the spec has none or lacks
/// `noNewPrivileges` (then libcontainer loads it). `cache`: where compiled programs are kept
/// (created 0700; ignored unless it is a directory of ours that nobody else may write, its
/// parents' owners `trusted`).
pub fn prepare(
    spec: &Spec,
    cache: Option<&Path>,
    trusted: TrustedOwners,
) -> Result<Option<BpfProgram>> {
    let Some(seccomp) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else {
        return Ok(None);
    };
    let no_new_privileges = spec
        .process()
        .as_ref()
        .and_then(|p| p.no_new_privileges())
        .unwrap_or(false);
    if !no_new_privileges {
        return Ok(None);
    }
    let Some(dir) = cache.and_then(|dir| seccomp_cache::usable_dir(dir, trusted)) else {
        return compile_to_program(seccomp, None).map(Some);
    };
    let path = seccomp_cache::entry_path(&dir, &cache_key(seccomp)?);
    if let Ok(bytes) = fs::read(&path) {
        if let Ok(program) = BpfProgram::from_bytes(&bytes) {
            return Ok(Some(program));
        }
    }
    compile_to_program(seccomp, Some(&path)).map(Some)
}

/// The filter of `spec` for a process that joins its running container (`locald-shim exec`):
/// the cached program when the spec sets `noNewPrivileges` (as [`prepare`]), else compiled now.
pub fn for_exec(spec: &Spec, cache: Option<&Path>) -> Result<Option<BpfProgram>> {
    let Some(seccomp) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else {
        return Ok(None);
    };
    match prepare(spec, cache, TrustedOwners::RootOrCaller)? {
        Some(program) => Ok(Some(program)),
        None => compile_to_program(seccomp, None).map(Some),
    }
}

/// SHA-256 of everything the compiled program depends on.
fn cache_key(seccomp: &LinuxSeccomp) -> Result<String> {
    let version = libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_default();
    let mut hasher = Sha256::new();
    hasher.update(seccomp_cache::FORMAT);
    hasher.update([0]);
    hasher.update(version);
    hasher.update([0]);
    hasher.update(format!("{:?}", ScmpArch::native()));
    hasher.update([0]);
    hasher.update(serde_json::to_vec(seccomp).context("serializing the seccomp profile")?);
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Compiles `seccomp` with [`crate::unknown_syscalls::prologue`] before libseccomp's program, and
/// keeps the result in `cache` (written atomically) when given.
fn compile_to_program(seccomp: &LinuxSeccomp, cache: Option<&Path>) -> Result<BpfProgram> {
    let context = compile(seccomp)?;
    // libseccomp exports only to a file descriptor.
    let fd =
        nix::sys::memfd::memfd_create(c"locald-seccomp", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .context("creating a file for the seccomp program")?;
    let mut file = fs::File::from(fd);
    context
        .export_bpf(&file)
        .context("exporting the seccomp program")?;
    let bytes = {
        use std::io::{Read, Seek};
        let mut bytes = Vec::new();
        file.rewind().context("reading the seccomp program")?;
        file.read_to_end(&mut bytes)
            .context("reading the seccomp program")?;
        bytes
    };
    let profile = seccomp_cache::decode(&bytes)?;
    let mut instructions = crate::unknown_syscalls::prologue(seccomp);
    if instructions.len() + profile.len() > seccomp_cache::MAX_INSTRUCTIONS {
        // Too long for the kernel with the stub: the profile alone still filters as written.
        instructions.clear();
    }
    instructions.extend(profile);
    let program = BpfProgram(instructions);
    if let Some(path) = cache {
        write_cached(path, &seccomp_cache::encode(&program.0))?;
    }
    Ok(program)
}

/// Writes a cache entry through a temporary file renamed into place.
fn write_cached(path: &Path, bytes: &[u8]) -> Result<()> {
    let temporary = seccomp_cache::temporary_path(path);
    let written = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .and_then(|mut file| file.write_all(bytes));
    // Another shim may be writing the same program: the last rename wins, both are equal.
    if let Err(error) = written.and_then(|()| fs::rename(&temporary, path)) {
        let _ = fs::remove_file(&temporary);
        return Err(error).with_context(|| format!("writing {}", path.display()));
    }
    Ok(())
}

/// Builds the libseccomp filter for `seccomp` exactly as libcontainer 0.7's
/// `initialize_seccomp` does: same action and operator translation (for `SCMP_CMP_MASKED_EQ`,
/// `valueTwo` is the mask and `value` the datum), rules equal to the default action skipped,
/// names this libseccomp cannot resolve skipped, comparisons on one argument index added as
/// separate rules.
pub fn compile(seccomp: &LinuxSeccomp) -> Result<ScmpFilterContext> {
    if seccomp.default_action() == LinuxSeccompAction::ScmpActNotify
        || seccomp
            .syscalls()
            .iter()
            .flatten()
            .any(|rule| rule.action() == LinuxSeccompAction::ScmpActNotify)
    {
        bail!("SCMP_ACT_NOTIFY needs a seccomp agent, which locald does not run");
    }
    if seccomp.flags().as_ref().is_some_and(|f| !f.is_empty()) {
        bail!("seccomp filter flags are not supported");
    }
    let default_action = action(seccomp.default_action(), seccomp.default_errno_ret())?;
    let mut context =
        ScmpFilterContext::new(default_action).context("creating the seccomp filter")?;
    for &arch in seccomp.architectures().iter().flatten() {
        context
            .add_arch(scmp_arch(arch))
            .with_context(|| format!("adding architecture {arch:?}"))?;
    }
    context
        .set_ctl_nnp(false)
        .context("configuring the seccomp filter")?;
    // A binary tree of syscall numbers rather than libseccomp's default linear list: the same
    // decisions, in a few dozen instructions per syscall instead of hundreds. It matters once at
    // attach time too: the kernel runs the filter for every syscall number and architecture to
    // fill its action cache, which took 0.7 ms for Docker's profile compiled linearly.
    context
        .set_ctl_optimize(2)
        .context("configuring the seccomp filter")?;
    for rule in seccomp.syscalls().iter().flatten() {
        let rule_action = action(rule.action(), rule.errno_ret())?;
        if rule_action == default_action {
            continue;
        }
        let comparators: Vec<ScmpArgCompare> = rule
            .args()
            .iter()
            .flatten()
            .map(|arg| {
                let op = match arg.op() {
                    LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
                    LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
                    LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
                    LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
                    LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
                    LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
                    LinuxSeccompOperator::ScmpCmpMaskedEq => {
                        ScmpCompareOp::MaskedEqual(arg.value_two().unwrap_or(0))
                    }
                };
                ScmpArgCompare::new(arg.index() as u32, op, arg.value())
            })
            .collect();
        let mut indexes = HashSet::new();
        let separate = !rule
            .args()
            .iter()
            .flatten()
            .all(|arg| indexes.insert(arg.index()));
        for name in rule.names() {
            let Ok(syscall) = ScmpSyscall::from_name(name) else {
                // Newer than this libseccomp, or of another architecture: as libcontainer does.
                continue;
            };
            let added = if comparators.is_empty() {
                context.add_rule(rule_action, syscall).map(|_| ())
            } else if separate {
                comparators.iter().try_for_each(|comparator| {
                    context
                        .add_rule_conditional(
                            rule_action,
                            syscall,
                            std::slice::from_ref(comparator),
                        )
                        .map(|_| ())
                })
            } else {
                context
                    .add_rule_conditional(rule_action, syscall, &comparators)
                    .map(|_| ())
            };
            added.with_context(|| format!("adding the seccomp rule for {name}"))?;
        }
    }
    Ok(context)
}

fn action(action: LinuxSeccompAction, errno: Option<u32>) -> Result<ScmpAction> {
    let errno = errno.map_or(libc::EPERM, |e| e as i32);
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(
            u16::try_from(errno).with_context(|| format!("trace value {errno} is out of range"))?,
        ),
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActNotify => bail!("SCMP_ACT_NOTIFY is not supported"),
    })
}

fn scmp_arch(arch: Arch) -> ScmpArch {
    match arch {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

/// libcontainer's default executor, with the container's filter installed first: after the init
/// has dropped its capabilities and set no_new_privs, right before `execve`, where libcontainer
/// loads its own filter.
#[derive(Clone)]
pub struct SeccompExecutor {
    pub program: Option<BpfProgram>,
}

impl Executor for SeccompExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        if let Some(program) = &self.program {
            program.install().map_err(|error| {
                ExecutorError::Other(format!("loading the seccomp filter: {error}"))
            })?;
        }
        // As `docker run`: a program that cannot be started is said in one short line on the
        // container's stderr, and the container exits 127 (not found) or 126 (not executable),
        // rather than libcontainer's internal error text and a shim failure. So the exec is made
        // here, as libcontainer's default executor makes it, keeping its errno.
        let args = spec
            .process()
            .as_ref()
            .and_then(|process| process.args().as_ref())
            .filter(|args| !args.is_empty())
            .ok_or(ExecutorError::InvalidArg)?;
        let argv = args
            .iter()
            .map(|arg| CString::new(arg.as_bytes()))
            .collect::<Result<Vec<CString>, _>>()
            .map_err(|_| ExecutorError::InvalidArg)?;
        let Err(errno) = nix::unistd::execvp(&argv[0], &argv);
        match ExecFailure::from_errno(&args[0], errno as i32) {
            Some(failure) => {
                eprintln!(
                    "locald: exec: {}: {}",
                    args[0].escape_debug(),
                    failure.reason
                );
                std::process::exit(failure.code);
            }
            None => Err(ExecutorError::Execution(
                format!("cannot execute {:?}: {errno}", args[0]).into(),
            )),
        }
    }

    /// libcontainer's own check (the program found in `PATH` and executable) is left to `exec`,
    /// whose failure says it as a shell does (see `exec`).
    fn validate(&self, _spec: &Spec) -> Result<(), ExecutorValidationError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libcontainer::oci_spec::runtime::{
        LinuxBuilder, LinuxSeccompBuilder, LinuxSyscallBuilder, ProcessBuilder, SpecBuilder,
    };
    use std::os::unix::fs::MetadataExt;

    fn spec(no_new_privileges: Option<bool>) -> Spec {
        let rule = LinuxSyscallBuilder::default()
            .names(vec!["getcwd".to_string(), "no_such_syscall".to_string()])
            .action(LinuxSeccompAction::ScmpActErrno)
            .errno_ret(libc::EAGAIN as u32)
            .build()
            .unwrap();
        let seccomp = LinuxSeccompBuilder::default()
            .default_action(LinuxSeccompAction::ScmpActAllow)
            .architectures(vec![Arch::ScmpArchNative])
            .syscalls(vec![rule])
            .build()
            .unwrap();
        let mut process = ProcessBuilder::default().build().unwrap();
        process.set_no_new_privileges(no_new_privileges);
        SpecBuilder::default()
            .process(process)
            .linux(LinuxBuilder::default().seccomp(seccomp).build().unwrap())
            .build()
            .unwrap()
    }

    /// The full check of the cache's parents, as outside a user namespace.
    fn prepare(spec: &Spec, cache: Option<&Path>) -> Result<Option<BpfProgram>> {
        super::prepare(spec, cache, TrustedOwners::RootOrCaller)
    }

    #[test]
    fn only_specs_with_no_new_privileges_are_taken_over() {
        assert!(prepare(&spec(None), None).unwrap().is_none());
        assert!(prepare(&spec(Some(false)), None).unwrap().is_none());
        assert!(prepare(&spec(Some(true)), None).unwrap().is_some());
        let mut bare = spec(Some(true));
        bare.set_linux(None);
        assert!(prepare(&bare, None).unwrap().is_none());
    }

    #[test]
    fn programs_are_cached_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let first = prepare(&spec(Some(true)), Some(&cache)).unwrap().unwrap();
        let files: Vec<_> = fs::read_dir(&cache).unwrap().flatten().collect();
        assert_eq!(files.len(), 1, "one program, no temporary left");
        assert_eq!(
            fs::metadata(&cache).unwrap().mode() & 0o777,
            0o700,
            "the cache is private"
        );
        let cached = files[0].path();
        assert_eq!(
            fs::read(&cached).unwrap().len(),
            first.len() * seccomp_cache::INSTRUCTION_SIZE
        );
        // Read back, not recompiled: a (valid) program put in its place is what comes out.
        let marker = [0x06u8, 0, 0, 0, 0, 0, 0xff, 0x7f]; // BPF_RET|BPF_K ALLOW
        fs::write(&cached, marker).unwrap();
        let again = prepare(&spec(Some(true)), Some(&cache)).unwrap().unwrap();
        assert_eq!(again, BpfProgram::from_bytes(&marker).unwrap());
        // A damaged entry is recompiled.
        fs::write(&cached, [1, 2, 3]).unwrap();
        assert_eq!(
            prepare(&spec(Some(true)), Some(&cache)).unwrap().unwrap(),
            first
        );
        // Another profile, another entry.
        let mut other = spec(Some(true));
        let mut seccomp = other.linux().clone().unwrap().seccomp().clone().unwrap();
        seccomp.set_default_errno_ret(Some(1));
        other
            .linux_mut()
            .as_mut()
            .unwrap()
            .set_seccomp(Some(seccomp));
        prepare(&other, Some(&cache)).unwrap().unwrap();
        assert_eq!(fs::read_dir(&cache).unwrap().count(), 2);
    }

    #[test]
    fn a_cache_others_may_write_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        fs::create_dir(&cache).unwrap();
        fs::set_permissions(&cache, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        prepare(&spec(Some(true)), Some(&cache)).unwrap().unwrap();
        assert_eq!(fs::read_dir(&cache).unwrap().count(), 0);
    }

    #[test]
    fn the_program_filters_as_the_profile_says() {
        let program = prepare(&spec(Some(true)), None).unwrap().unwrap();
        // no_new_privs and a filter (without TSYNC) are the calling thread's: a thread of its own
        // leaves the test process unfiltered.
        let outcome = std::thread::spawn(move || {
            nix::sys::prctl::set_no_new_privs().unwrap();
            program.install().unwrap();
            std::env::current_dir().map_err(|e| e.raw_os_error())
        })
        .join()
        .unwrap();
        assert_eq!(outcome, Err(Some(libc::EAGAIN)));
        assert!(std::env::current_dir().is_ok());
    }

    /// Runs `probe` in a forked child under `program` and returns its exit code.
    fn in_filtered_child(program: &BpfProgram, probe: fn() -> i32) -> i32 {
        // SAFETY: the child only makes raw syscalls (no allocation, no locks) before `_exit`.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let code =
                    if nix::sys::prctl::set_no_new_privs().is_err() || program.install().is_err() {
                        99
                    } else {
                        probe()
                    };
                // SAFETY: ends the child without running the test harness's exit handlers.
                unsafe { libc::_exit(code) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                match nix::sys::wait::waitpid(child, None).unwrap() {
                    nix::sys::wait::WaitStatus::Exited(_, code) => code,
                    other => panic!("the filtered child ended with {other:?}"),
                }
            }
        }
    }

    /// The errno of a raw syscall `number` with no arguments (0 if it succeeded).
    fn errno_of(number: libc::c_long) -> i32 {
        // SAFETY: the numbers probed take no pointer arguments.
        if unsafe { libc::syscall(number, 0, 0, 0) } == -1 {
            std::io::Error::last_os_error().raw_os_error().unwrap_or(-1)
        } else {
            0
        }
    }

    #[test]
    fn syscalls_newer_than_the_filter_are_not_implemented_rather_than_denied() {
        // Docker's shape: deny by default (EPERM), allow a list.
        let allowed = LinuxSyscallBuilder::default()
            .names(vec!["exit_group".to_string(), "exit".to_string()])
            .action(LinuxSeccompAction::ScmpActAllow)
            .build()
            .unwrap();
        let seccomp = LinuxSeccompBuilder::default()
            .default_action(LinuxSeccompAction::ScmpActErrno)
            .default_errno_ret(libc::EPERM as u32)
            .architectures(vec![Arch::ScmpArchNative])
            .syscalls(vec![allowed])
            .build()
            .unwrap();
        let program = compile_to_program(&seccomp, None).unwrap();
        // A number no libseccomp names yet: "not implemented", so a libc falls back.
        assert_eq!(in_filtered_child(&program, || errno_of(1000)), libc::ENOSYS);
        // A syscall the filter knows and the profile does not allow: still denied.
        assert_eq!(
            in_filtered_child(&program, || errno_of(libc::SYS_getppid)),
            libc::EPERM
        );
    }

    #[test]
    fn notify_is_refused() {
        let mut bad = spec(Some(true));
        let mut seccomp = bad.linux().clone().unwrap().seccomp().clone().unwrap();
        seccomp.set_default_action(LinuxSeccompAction::ScmpActNotify);
        bad.linux_mut().as_mut().unwrap().set_seccomp(Some(seccomp));
        assert!(prepare(&bad, None).is_err());
    }
}
