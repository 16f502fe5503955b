//! Bounds on what unpacking one image may write, checked as entries are
//! applied: the bytes of file content (a decompression bomb, or a layer that
//! expands to fill the disk), the number of entries (inodes), and the free
//! space left on the store's filesystem. The free space is asked of the
//! kernel (`statvfs`) only every [`CHECK_EVERY_BYTES`] or
//! [`CHECK_EVERY_ENTRIES`], and before any entry big enough to cross that
//! step on its own, so the check costs nothing per entry. The same budget
//! carries the cancel flag of a pipelined unpack, so a cancelled pull stops
//! between two entries, not at the end of a layer.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Most bytes of file content one image may unpack to (64 GiB). Holes of
/// sparse files are not content: they take no space.
pub const MAX_UNPACKED_BYTES: u64 = 64 << 30;
/// Most entries one image may unpack to (4 million; a full Debian is 7,000,
/// a big `node_modules` image a few hundred thousand).
pub const MAX_UNPACKED_ENTRIES: u64 = 4_000_000;
/// Free space an unpack must leave on the store's filesystem (512 MiB).
pub const MIN_FREE_BYTES: u64 = 512 << 20;
/// Free inodes an unpack must leave on filesystems that count them.
pub const MIN_FREE_INODES: u64 = 4096;
/// Content written between two free-space checks.
const CHECK_EVERY_BYTES: u64 = 64 << 20;
/// Entries created between two free-space checks.
const CHECK_EVERY_ENTRIES: u64 = 4096;

/// The bounds of an unpack. [`Default`] is what locald uses; tests and
/// callers with other needs set their own with
/// [`ImageStore::with_unpack_limits`](crate::ImageStore::with_unpack_limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpackLimits {
    /// Most bytes of file content, all layers together.
    pub max_bytes: u64,
    /// Most entries, all layers together.
    pub max_entries: u64,
    /// Free bytes to leave on the destination's filesystem.
    pub min_free_bytes: u64,
    /// Free inodes to leave, where the filesystem counts them.
    pub min_free_inodes: u64,
}

impl Default for UnpackLimits {
    fn default() -> Self {
        Self {
            max_bytes: MAX_UNPACKED_BYTES,
            max_entries: MAX_UNPACKED_ENTRIES,
            min_free_bytes: MIN_FREE_BYTES,
            min_free_inodes: MIN_FREE_INODES,
        }
    }
}

/// Why an entry may not be written.
#[derive(Debug)]
pub(crate) enum Refusal {
    Cancelled,
    TooManyBytes { limit: u64 },
    TooManyEntries { limit: u64 },
    LowSpace { available: u64, needed: u64 },
    LowInodes { available: u64, margin: u64 },
    Statvfs(std::io::Error),
}

/// What one image's unpack has used so far, against its limits.
#[derive(Debug)]
pub(crate) struct Budget {
    limits: UnpackLimits,
    bytes: u64,
    entries: u64,
    /// Content and entries since the last free-space check.
    unchecked_bytes: u64,
    unchecked_entries: u64,
    checked: bool,
    cancel: Option<Arc<AtomicBool>>,
}

impl Budget {
    pub fn new(limits: UnpackLimits) -> Self {
        Self {
            limits,
            bytes: 0,
            entries: 0,
            unchecked_bytes: 0,
            unchecked_entries: 0,
            checked: false,
            cancel: None,
        }
    }

    /// Makes [`charge`](Self::charge) refuse every entry once `cancel` is set.
    pub fn cancelled_by(mut self, cancel: Arc<AtomicBool>) -> Self {
        self.cancel = Some(cancel);
        self
    }

    /// Accounts for one entry with `bytes` of content about to be written
    /// under `dest`, or says why it may not be.
    pub fn charge(&mut self, dest: &Path, bytes: u64) -> Result<(), Refusal> {
        if self
            .cancel
            .as_ref()
            .is_some_and(|cancel| cancel.load(Ordering::Relaxed))
        {
            return Err(Refusal::Cancelled);
        }
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(Refusal::TooManyEntries {
                limit: self.limits.max_entries,
            });
        }
        self.bytes = self.bytes.saturating_add(bytes);
        if self.bytes > self.limits.max_bytes {
            return Err(Refusal::TooManyBytes {
                limit: self.limits.max_bytes,
            });
        }
        self.unchecked_entries += 1;
        self.unchecked_bytes = self.unchecked_bytes.saturating_add(bytes);
        if !self.checked
            || self.unchecked_bytes >= CHECK_EVERY_BYTES
            || self.unchecked_entries >= CHECK_EVERY_ENTRIES
        {
            // Counts what is about to be written: a single huge entry is
            // refused before its first byte.
            self.check_free_space(dest, self.unchecked_bytes)?;
            self.checked = true;
            self.unchecked_bytes = 0;
            self.unchecked_entries = 0;
        }
        Ok(())
    }

    // `fsblkcnt_t` and `fsfilcnt_t` are u64 here but not on every target.
    #[allow(clippy::useless_conversion)]
    fn check_free_space(&self, dest: &Path, about_to_write: u64) -> Result<(), Refusal> {
        let stat = nix::sys::statvfs::statvfs(dest).map_err(|e| Refusal::Statvfs(e.into()))?;
        let available = u64::from(stat.blocks_available()).saturating_mul(stat.fragment_size());
        let needed = about_to_write.saturating_add(self.limits.min_free_bytes);
        if available < needed {
            return Err(Refusal::LowSpace { available, needed });
        }
        // Filesystems without an inode table (btrfs) report no inodes at all.
        let inodes_available = u64::from(stat.files_available());
        if stat.files() > 0 && inodes_available < self.limits.min_free_inodes {
            return Err(Refusal::LowInodes {
                available: inodes_available,
                margin: self.limits.min_free_inodes,
            });
        }
        Ok(())
    }
}
