//! The cache of compiled seccomp programs that `locald-shim` keeps (it compiles a spec's filter
//! once instead of at every container start) and the runtime points it to and clears.
//!
//! Layout: `<runtime root>/seccomp/` ([`cache_dir`], a private directory: see
//! [`crate::private_dir`]), one file per program named `<key>.bpf`, where the key is a SHA-256
//! (hex) over [`FORMAT`], the libseccomp version, the native architecture and the profile (the
//! shim computes it: only it links libseccomp). A file holds the raw program: `struct
//! sock_filter` instructions in native byte order, at most [`MAX_INSTRUCTIONS`]. Files are
//! written to `<key>.tmp<pid>` and renamed into place, so a reader sees a whole program or none.
//! It is only a cache: anything unreadable or malformed is compiled again.

use std::path::{Path, PathBuf};

/// Name of the cache directory in the runtime root.
pub const DIR_NAME: &str = "seccomp";

/// Part of every key: bumped whenever the shim's compiler changes what it produces for the same
/// inputs, so that older entries are never used.
pub const FORMAT: &str = "locald-seccomp-bpf-3";

/// Size of one BPF instruction (`struct sock_filter`).
pub const INSTRUCTION_SIZE: usize = std::mem::size_of::<libc::sock_filter>();

/// The kernel's limit on a filter's length (`BPF_MAXINSNS`).
pub const MAX_INSTRUCTIONS: usize = 4096;

/// A cache file that is not a program.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{len} bytes are not a BPF program (a whole number of {INSTRUCTION_SIZE}-byte instructions, \
     1 to {MAX_INSTRUCTIONS} of them)"
)]
pub struct NotAProgram {
    pub len: usize,
}

/// The cache directory of the runtime root `runtime_root`.
pub fn cache_dir(runtime_root: &Path) -> PathBuf {
    runtime_root.join(DIR_NAME)
}

/// The file of the program with `key` in the cache directory `dir`.
pub fn entry_path(dir: &Path, key: &str) -> PathBuf {
    dir.join(format!("{key}.bpf"))
}

/// Where this process writes `entry` before renaming it into place.
pub fn temporary_path(entry: &Path) -> PathBuf {
    entry.with_extension(format!("tmp{}", std::process::id()))
}

/// The instructions in a cache file's bytes.
pub fn decode(bytes: &[u8]) -> Result<Vec<libc::sock_filter>, NotAProgram> {
    if bytes.is_empty()
        || !bytes.len().is_multiple_of(INSTRUCTION_SIZE)
        || bytes.len() / INSTRUCTION_SIZE > MAX_INSTRUCTIONS
    {
        return Err(NotAProgram { len: bytes.len() });
    }
    Ok(bytes
        .chunks_exact(INSTRUCTION_SIZE)
        .map(|raw| libc::sock_filter {
            code: u16::from_ne_bytes([raw[0], raw[1]]),
            jt: raw[2],
            jf: raw[3],
            k: u32::from_ne_bytes([raw[4], raw[5], raw[6], raw[7]]),
        })
        .collect())
}

/// The bytes of a cache file holding `program` (what libseccomp's `seccomp_export_bpf` writes).
pub fn encode(program: &[libc::sock_filter]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(program.len() * INSTRUCTION_SIZE);
    for instruction in program {
        bytes.extend_from_slice(&instruction.code.to_ne_bytes());
        bytes.push(instruction.jt);
        bytes.push(instruction.jf);
        bytes.extend_from_slice(&instruction.k.to_ne_bytes());
    }
    bytes
}

/// `dir` when it can serve as the cache: created (mode 0700) if missing, and private to the
/// caller as [`crate::private_dir::ensure_private_dir`] requires (its parents' owners `trusted`).
/// `None` otherwise: programs are then compiled at every start, which is slower but as safe.
pub fn usable_dir(dir: &Path, trusted: crate::private_dir::TrustedOwners) -> Option<PathBuf> {
    crate::private_dir::ensure_private_dir_trusting(dir, trusted)
        .ok()
        .map(|_| dir.to_path_buf())
}

/// Removes the cache under `runtime_root` (it is only a cache). Best effort.
pub fn clear(runtime_root: &Path) {
    let _ = std::fs::remove_dir_all(cache_dir(runtime_root));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn programs_survive_the_file_format() {
        let program = vec![
            libc::sock_filter {
                code: 0x20,
                jt: 0,
                jf: 0,
                k: 4,
            },
            libc::sock_filter {
                code: 0x06,
                jt: 1,
                jf: 2,
                k: 0x7fff_0000,
            },
        ];
        let bytes = encode(&program);
        assert_eq!(bytes.len(), 2 * INSTRUCTION_SIZE);
        let decoded = decode(&bytes).unwrap();
        assert_eq!(encode(&decoded), bytes);
        assert_eq!(decoded[1].k, 0x7fff_0000);
        for bad in [0, 7, 9, (MAX_INSTRUCTIONS + 1) * INSTRUCTION_SIZE] {
            assert_eq!(decode(&vec![0u8; bad]), Err(NotAProgram { len: bad }));
        }
    }

    #[test]
    fn the_layout_is_one_file_per_key_in_the_root() {
        let root = Path::new("/run/locald");
        let dir = cache_dir(root);
        assert_eq!(dir, PathBuf::from("/run/locald/seccomp"));
        let entry = entry_path(&dir, "ab12");
        assert_eq!(entry, PathBuf::from("/run/locald/seccomp/ab12.bpf"));
        let temporary = temporary_path(&entry);
        assert_eq!(temporary.parent(), Some(dir.as_path()));
        assert_ne!(temporary, entry);
    }

    #[test]
    fn only_a_private_directory_is_used() {
        let base = tempfile::tempdir().unwrap();
        let dir = cache_dir(base.path());
        assert_eq!(
            usable_dir(&dir, crate::private_dir::TrustedOwners::RootOrCaller),
            Some(dir.clone())
        );
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o7777, 0o700);
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        assert_eq!(
            usable_dir(&dir, crate::private_dir::TrustedOwners::RootOrCaller),
            None
        );
        fs::write(entry_path(&dir, "k"), [0u8; 8]).unwrap();
        clear(base.path());
        assert!(!dir.exists());
    }
}
