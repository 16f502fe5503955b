//! Syscalls newer than the filter get `ENOSYS`, not the profile's default action.
//!
//! A profile is compiled by this host's libseccomp, which names the syscalls it knows; anything
//! added to the kernel later (on x86_64 with Debian 12's libseccomp 2.5.4: `statmount`,
//! `listmount`, the `lsm_*` calls, `mseal`, the `*xattrat` calls...) matches no rule and so gets
//! the default action: `EPERM` for Docker's profile. A libc that tries a new syscall first falls
//! back to the old one only on `ENOSYS` ("not implemented"), never on `EPERM` ("you may not")
//! (glibc 2.39's `fchmodat(AT_SYMLINK_NOFOLLOW)` tries `fchmodat2` that way): under the bare
//! filter, a container whose libc uses a newer call fails where it would work on an older kernel.
//! runc prepends the same kind of stub.
//!
//! [`prologue`] is a short BPF program put before libseccomp's: for each architecture it can
//! handle, a syscall number above the highest one this libseccomp can name for that architecture
//! returns `ENOSYS`; everything else falls through to the profile's program unchanged. A number
//! libseccomp cannot name cannot be in any rule the profile compiled to, so no decision of the
//! profile is overridden. Profiles whose default action allows (or only logs) are left alone:
//! there an unknown syscall already runs.

use libc::sock_filter;
use libcontainer::oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction};
use libseccomp::{ScmpArch, ScmpSyscall};

// `AUDIT_ARCH_*` from <linux/audit.h>: what `seccomp_data.arch` holds (libc does not export them).
const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_AARCH64: u32 = 0xC000_00B7;

/// x32 syscalls arrive as x86_64 ones with this bit set in the number; they are left to the
/// profile's program (their numbers would otherwise all count as "newer").
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

// Offsets in `struct seccomp_data`.
const NR_OFFSET: u32 = 0;
const ARCH_OFFSET: u32 = 4;

/// Syscall numbers searched for the highest one libseccomp knows (x86_64 is near 460 in 2026).
const SEARCHED_NUMBERS: i32 = 1024;

const LOAD_WORD: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JUMP_EQUAL: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JUMP_GREATER: u16 = (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16;
const JUMP_SET: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const JUMP: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
const RETURN: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

/// The instructions to run before the profile's program (empty when none are needed).
pub fn prologue(seccomp: &LinuxSeccomp) -> Vec<sock_filter> {
    if matches!(
        seccomp.default_action(),
        LinuxSeccompAction::ScmpActAllow | LinuxSeccompAction::ScmpActLog
    ) {
        return Vec::new();
    }
    let architectures: Vec<Arch> = match seccomp.architectures() {
        Some(list) if !list.is_empty() => list.clone(),
        _ => vec![Arch::ScmpArchNative],
    };
    let mut known: Vec<(u32, u32)> = Vec::new();
    for arch in architectures {
        let Some((token, arch)) = audit_arch(arch) else {
            continue;
        };
        if known.iter().any(|&(seen, _)| seen == token) {
            continue;
        }
        if let Some(highest) = highest_known_syscall(arch) {
            known.push((token, highest));
        }
    }
    program(&known)
}

/// The stub for `(arch token, highest known number)` pairs. Layout, with the accumulator holding
/// the architecture until a block matches:
///
/// ```text
///     ld  [arch]
/// A:  jeq TOKEN_A, 0, B      ; not this architecture: try the next block
///     ld  [nr]
///     jset X32_BIT, PROFILE  ; (x86_64 only)
///     jgt HIGHEST_A, NOSYS, PROFILE
/// B:  ...
///     ja  PROFILE
/// NOSYS: ret ERRNO(ENOSYS)
/// PROFILE: (libseccomp's program, which loads what it needs itself)
/// ```
fn program(known: &[(u32, u32)]) -> Vec<sock_filter> {
    if known.is_empty() {
        return Vec::new();
    }
    let block_len = |token: u32| if token == AUDIT_ARCH_X86_64 { 4 } else { 3 };
    let total: usize = 1 + known.iter().map(|&(t, _)| block_len(t)).sum::<usize>() + 2;
    let nosys = total - 1;
    let profile = total;
    let mut out = vec![instruction(LOAD_WORD, 0, 0, ARCH_OFFSET)];
    for &(token, highest) in known {
        let next = out.len() + block_len(token);
        out.push(jump(JUMP_EQUAL, token, out.len(), out.len() + 1, next));
        out.push(instruction(LOAD_WORD, 0, 0, NR_OFFSET));
        if token == AUDIT_ARCH_X86_64 {
            out.push(jump(
                JUMP_SET,
                X32_SYSCALL_BIT,
                out.len(),
                profile,
                out.len() + 1,
            ));
        }
        out.push(jump(JUMP_GREATER, highest, out.len(), nosys, profile));
    }
    out.push(instruction(JUMP, 0, 0, (profile - out.len() - 1) as u32));
    out.push(instruction(
        RETURN,
        0,
        0,
        libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
    ));
    debug_assert_eq!(out.len(), total);
    out
}

fn instruction(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// A conditional jump at index `at` to `when_true` / `when_false` (absolute indexes, forward).
fn jump(code: u16, k: u32, at: usize, when_true: usize, when_false: usize) -> sock_filter {
    // The stub is a few instructions per architecture: offsets always fit in a byte.
    let offset = |to: usize| (to - at - 1) as u8;
    instruction(code, offset(when_true), offset(when_false), k)
}

/// The kernel's token for `arch`, and libseccomp's name for it, for the architectures whose
/// syscall numbers are one dense range (others, like 32-bit ARM with its private calls at
/// 0xf0000, are left to the profile's program).
fn audit_arch(arch: Arch) -> Option<(u32, ScmpArch)> {
    let arch = match arch {
        Arch::ScmpArchNative => ScmpArch::native(),
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        _ => return None,
    };
    match arch {
        ScmpArch::X8664 => Some((AUDIT_ARCH_X86_64, arch)),
        ScmpArch::X86 => Some((AUDIT_ARCH_I386, arch)),
        ScmpArch::Aarch64 => Some((AUDIT_ARCH_AARCH64, arch)),
        _ => None,
    }
}

/// The highest syscall number this libseccomp can name on `arch`.
fn highest_known_syscall(arch: ScmpArch) -> Option<u32> {
    (0..SEARCHED_NUMBERS)
        .rev()
        .find(|&number| ScmpSyscall::from(number).get_name_by_arch(arch).is_ok())
        .map(|number| number as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_libseccomp_knows_the_classic_syscalls_and_not_the_searched_ceiling() {
        let highest = highest_known_syscall(ScmpArch::X8664).unwrap();
        assert!(
            (435..SEARCHED_NUMBERS as u32).contains(&highest),
            "clone3 (435) is known: {highest}"
        );
    }

    #[test]
    fn allowing_profiles_get_no_stub() {
        let seccomp = libcontainer::oci_spec::runtime::LinuxSeccompBuilder::default()
            .default_action(LinuxSeccompAction::ScmpActAllow)
            .build()
            .unwrap();
        assert!(prologue(&seccomp).is_empty());
    }

    #[test]
    fn jumps_land_on_the_return_or_the_profile() {
        let stub = program(&[(AUDIT_ARCH_X86_64, 450), (AUDIT_ARCH_I386, 440)]);
        assert_eq!(stub.len(), 1 + 4 + 3 + 2);
        let target = |at: usize, offset: u8| at + 1 + offset as usize;
        // x86_64 block: not x86_64 → the i386 block; above 450 → ENOSYS; else the profile.
        assert_eq!(target(1, stub[1].jf), 5);
        assert_eq!(target(3, stub[3].jt), stub.len());
        assert_eq!(target(4, stub[4].jt), stub.len() - 1);
        assert_eq!(target(4, stub[4].jf), stub.len());
        assert_eq!(target(5, stub[5].jf), stub.len() - 2);
        assert_eq!(stub[stub.len() - 2].k, 1, "ja over the return");
        assert_eq!(
            stub[stub.len() - 1].k,
            libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32
        );
    }
}
