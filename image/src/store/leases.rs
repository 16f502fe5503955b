//! Leases: which stored images running containers use, so that `remove` and
//! `prune` never pull a root filesystem from under a live container.
//!
//! A container's user (the process that holds its bundle: the supervisor,
//! or `locald container run`) takes an [`ImageLease`] before it mounts the
//! image's rootfs and keeps it for the container's life: a file
//! `<store>/leases/<manifest hex>/<pid>-<n>-<nanos>.lease` on which it holds
//! an exclusive flock(2), naming the image and the user. A lease is live
//! exactly while its lock is held; the kernel drops the lock however the
//! holder ends (`kill -9` included), so a stale file never keeps an image
//! forever: the next check finds it unlocked and removes it.
//!
//! Leases are taken under the store lock held shared, and checked under it
//! held exclusively (by `remove` and `prune`), so no lease appears while a
//! check runs, and checks never race each other.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use locald_shim_protocol::regular_file::{open_regular_with, Links, NotRegular};

use super::{lock, paths, read_dir_names, remove_path, ImageStore, StoreError, StoredImage};
use crate::Error;

/// What a lease file says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseInfo {
    /// The image's reference when the lease was taken.
    pub reference: String,
    /// Who uses it, e.g. `container shop-web-1a2b (pid 1234)`.
    pub user: String,
}

/// A held lease on a stored image; released (and its file removed) on drop.
#[derive(Debug)]
pub struct ImageLease {
    path: PathBuf,
    _lock: Flock<File>,
}

impl std::os::fd::AsFd for ImageLease {
    /// The locked lease file. A process that inherits it (the container's
    /// shim) keeps the lease alive as long as it lives, even when the
    /// process that took it is killed first.
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self._lock.as_fd()
    }
}

impl Drop for ImageLease {
    fn drop(&mut self) {
        // Removed while still locked: a checker that opened it before finds
        // it unlocked once we close it, which is the truth by then.
        let _ = std::fs::remove_file(&self.path);
    }
}

impl ImageStore {
    fn leases_dir(&self) -> PathBuf {
        self.paths.root.join("leases")
    }

    /// Take a lease on `image` for `user` (a description shown to whoever
    /// would remove the image). Fails when the image's rootfs is gone by now
    /// (removed and pruned since it was resolved).
    pub fn lease(&self, image: &StoredImage, user: &str) -> Result<ImageLease, Error> {
        let _store = lock(&self.paths.store_lock(), false)?;
        let rootfs = self.paths.rootfs(&image.manifest_digest)?;
        if !rootfs.is_dir() {
            return Err(StoreError::NotStored(image.reference.clone()).into());
        }
        let dir = self
            .leases_dir()
            .join(paths::digest_hex(&image.manifest_digest)?);
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(io_error("create", &dir))?;
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.subsec_nanos());
        let path = dir.join(format!(
            "{}-{}-{nanos}.lease",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(io_error("create", &path))?;
        let info = LeaseInfo {
            reference: image.reference.clone(),
            user: user.to_string(),
        };
        let text =
            serde_json::to_vec(&info).map_err(|error| io_error("write", &path)(error.into()))?;
        file.write_all(&text).map_err(io_error("write", &path))?;
        let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
            let _ = std::fs::remove_file(&path);
            io_error("lock", &path)(errno.into())
        })?;
        Ok(ImageLease { path, _lock: lock })
    }

    /// The live leases on the image with manifest `digest_hex`; stale lease
    /// files (their holder is gone) are removed on the way. The caller holds
    /// the store lock exclusively.
    pub(crate) fn live_leases(&self, digest_hex: &str) -> Result<Vec<LeaseInfo>, StoreError> {
        let dir = self.leases_dir().join(digest_hex);
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        let mut live = Vec::new();
        for (_, path) in read_dir_names(&dir)? {
            if let Some(info) = check_lease(&path)? {
                live.push(info);
            }
        }
        Ok(live)
    }

    /// Remove the (stale) lease directory of a pruned image.
    pub(crate) fn forget_leases(&self, digest_hex: &str) -> Result<(), StoreError> {
        remove_path(&self.leases_dir().join(digest_hex))
    }
}

/// `Some` with what it says when the lease at `path` is held; a stale one is
/// removed.
fn check_lease(path: &Path) -> Result<Option<LeaseInfo>, StoreError> {
    let file = match open_regular_with(OpenOptions::new().read(true), path, Links::Refuse) {
        Ok(file) => file,
        // Released (and removed) meanwhile.
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        // Not a lease we made (a symlink, a FIFO or anything but a regular
        // file planted there): not a user either.
        Err(error)
            if matches!(error.raw_os_error(), Some(libc::ELOOP | libc::ENXIO))
                || NotRegular::of(&error).is_some() =>
        {
            remove_path(path)?;
            return Ok(None);
        }
        // Anything else (out of descriptors, say) says nothing about the
        // lease: it may be live, so nothing is removed on its account.
        Err(source) => {
            return Err(StoreError::Io {
                action: "checking the image lease",
                path: path.to_path_buf(),
                source,
            })
        }
    };
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(_stale) => {
            remove_path(path)?;
            Ok(None)
        }
        Err((mut file, Errno::EWOULDBLOCK)) => {
            let mut text = String::new();
            let _ = (&mut file).take(64 * 1024).read_to_string(&mut text);
            Ok(Some(serde_json::from_str(&text).unwrap_or(LeaseInfo {
                reference: "?".into(),
                user: format!("the holder of {}", path.display()),
            })))
        }
        Err((_, errno)) => Err(io_error("lock", path)(errno.into())),
    }
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io {
        action,
        path,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{busybox_image, ConfigOverride};

    #[test]
    fn leased_images_are_neither_removed_nor_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::open(dir.path().join("images")).unwrap();
        let layout = dir.path().join("layout");
        busybox_image(&ConfigOverride::default())
            .unwrap()
            .write_layout(&layout, "latest")
            .unwrap();
        let image = store.import_oci_layout(&layout, Some("bb")).unwrap();
        let lease = store.lease(&image, "container web-1 (pid 42)").unwrap();

        let error = store.remove("bb").unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, Error::Store(StoreError::InUse { .. })),
            "{message}"
        );
        assert!(
            message.contains("in use by container web-1 (pid 42)"),
            "{message}"
        );
        assert!(store.resolve("bb").unwrap().is_some(), "the name stays");

        // Another name of the same image may go: the image keeps one.
        store.import_oci_layout(&layout, Some("bb2")).unwrap();
        store.remove("bb2").unwrap();

        // A nameless image (re-tagged elsewhere, say) in use is kept by prune.
        let second = store.lease(&image, "container web-2 (pid 43)").unwrap();
        drop(lease);
        let hex = paths::digest_hex(&image.manifest_digest)
            .unwrap()
            .to_string();
        super::super::refs::RefsIndex::update(&store.paths, |index| {
            index.images.clear();
            Ok(())
        })
        .unwrap();
        let report = store.prune().unwrap();
        assert_eq!(report.removed_rootfs, 0);
        assert_eq!(report.kept.len(), 1, "{report:?}");
        assert_eq!(report.kept[0].in_use_by, "container web-2 (pid 43)");
        assert!(image.rootfs.join("bin").is_dir());

        // Released (as by the holder's death): the next prune frees it.
        drop(second);
        let report = store.prune().unwrap();
        assert_eq!(report.removed_rootfs, 1, "{report:?}");
        assert!(report.kept.is_empty());
        assert!(!image.rootfs.exists());
        assert!(!store.leases_dir().join(hex).exists());
    }

    #[test]
    fn a_lease_whose_holder_died_does_not_count() {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::open(dir.path().join("images")).unwrap();
        let hex = "a".repeat(64);
        let leases = store.leases_dir().join(&hex);
        std::fs::create_dir_all(&leases).unwrap();
        // What a holder killed with -9 leaves: the file, no lock.
        std::fs::write(
            leases.join("1-0-0.lease"),
            r#"{"reference":"x","user":"gone"}"#,
        )
        .unwrap();
        assert!(store.live_leases(&hex).unwrap().is_empty());
        assert_eq!(
            std::fs::read_dir(&leases).unwrap().count(),
            0,
            "stale file removed"
        );
    }
}
