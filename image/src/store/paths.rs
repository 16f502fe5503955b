//! Where things live inside the store directory, and the data-directory rules
//! that pick that directory.
//!
//! ```text
//! <root>/blobs/sha256/<hex>   content-addressed blobs (manifests, configs, layers)
//! <root>/rootfs/<hex>         flattened rootfs, one per manifest digest (read-only by convention)
//! <root>/refs.json            reference -> manifest digest index
//! <root>/tmp/<pid>-...        in-progress downloads and unpacks
//! <root>/store.lock, refs.lock
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::StoreError;

#[derive(Debug, Clone)]
pub(crate) struct StorePaths {
    pub root: PathBuf,
}

impl StorePaths {
    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    /// The file of a `sha256:<hex>` digest; callers validate the digest first
    /// so that registry-supplied strings cannot point outside the store.
    pub fn blob(&self, digest: &str) -> Result<PathBuf, StoreError> {
        Ok(self.blobs_dir().join(digest_hex(digest)?))
    }

    pub fn rootfs_dir(&self) -> PathBuf {
        self.root.join("rootfs")
    }

    pub fn rootfs(&self, manifest_digest: &str) -> Result<PathBuf, StoreError> {
        Ok(self.rootfs_dir().join(digest_hex(manifest_digest)?))
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// A fresh, unique path under `tmp/` whose name starts with our pid, so a
    /// later pull can tell leftovers of dead processes from live work.
    pub fn new_tmp_path(&self, label: &str) -> PathBuf {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        self.tmp_dir()
            .join(format!("{}-{nanos}-{n}-{label}", std::process::id()))
    }

    pub fn refs_file(&self) -> PathBuf {
        self.root.join("refs.json")
    }

    pub fn store_lock(&self) -> PathBuf {
        self.root.join("store.lock")
    }

    pub fn refs_lock(&self) -> PathBuf {
        self.root.join("refs.lock")
    }
}

/// The hex part of a `sha256:` digest.
pub(crate) fn digest_hex(digest: &str) -> Result<&str, StoreError> {
    if !crate::reference::is_sha256_digest(digest) {
        return Err(StoreError::BadDigest(digest.to_string()));
    }
    Ok(&digest["sha256:".len()..])
}

/// `$LOCALD_DATA_DIR`, else `$XDG_DATA_HOME/locald`, else `~/.local/share/locald`.
pub fn data_dir() -> Result<PathBuf, StoreError> {
    let non_empty = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = non_empty("LOCALD_DATA_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = non_empty("XDG_DATA_HOME") {
        return Ok(Path::new(&dir).join("locald"));
    }
    let home = non_empty("HOME").ok_or(StoreError::NoDataDir)?;
    Ok(Path::new(&home).join(".local/share/locald"))
}

/// Whether the process that created a tmp entry named `<pid>-...` is gone.
pub(crate) fn tmp_owner_is_dead(name: &str) -> bool {
    let Some(pid) = name.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
        return true;
    };
    pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists()
}
