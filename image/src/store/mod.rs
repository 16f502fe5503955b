//! The content-addressed image store shared by all projects: blobs, the refs
//! index and one flattened rootfs per manifest digest, plus the local
//! operations on it (resolve, list, remove, prune). Pull and import live in
//! their own modules and finish through [`ImageStore::install`].

mod alloc;
mod blobs;
mod build_cache;
mod install;
mod leases;
mod lock;
mod paths;
mod refs;

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub(crate) use blobs::{store_bytes, BlobWriter};
pub use build_cache::{BuildCache, StagedCache};
pub(crate) use install::{PreparedImage, StagedRootfs};
pub use leases::{ImageLease, LeaseInfo};
pub(crate) use lock::{lock, lock_async};
pub use paths::data_dir;
pub(crate) use paths::StorePaths;
use refs::{RefRecord, RefsIndex};

use crate::image_config::ImageConfig;
use crate::reference::Reference;
use crate::Error;

/// Failures of the store itself (files, locks, index).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot {action} `{path}`: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot find a data directory: set LOCALD_DATA_DIR, XDG_DATA_HOME or HOME")]
    NoDataDir,
    #[error("`{0}` is not a sha256 digest")]
    BadDigest(String),
    #[error("content does not match its digest: expected {expected}, got {actual}")]
    DigestMismatch { expected: String, actual: String },
    #[error("blob {digest} has {actual} bytes but its descriptor says {expected}")]
    SizeMismatch {
        digest: String,
        expected: u64,
        actual: u64,
    },
    #[error("the image index `{path}` is corrupt: {source}")]
    CorruptRefs {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("stored blob {digest} is corrupt: {reason}")]
    CorruptBlob { digest: String, reason: String },
    #[error("image `{0}` is not in the local store")]
    NotStored(String),
    #[error(
        "image `{reference}` is in use by {users}; stop what uses it first \
         (an image a running container uses is never removed)"
    )]
    InUse { reference: String, users: String },
}

/// An image ready to run: its config and its flattened, read-only rootfs.
#[derive(Debug, Clone, Serialize)]
pub struct StoredImage {
    /// Canonical reference, e.g. `docker.io/library/alpine:latest`.
    pub reference: String,
    pub manifest_digest: String,
    pub config: ImageConfig,
    /// Shared by every container of this image: mount it read-only (overlay lower dir).
    pub rootfs: PathBuf,
}

/// One line of `list`.
#[derive(Debug, Clone, Serialize)]
pub struct ImageSummary {
    pub reference: String,
    pub digest: String,
    /// Compressed size of config and layers in bytes.
    pub size: u64,
    /// The image config's `created` timestamp (RFC 3339), when it has one.
    pub created: Option<String>,
}

/// What `prune` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    pub removed_blobs: usize,
    pub removed_rootfs: usize,
    pub removed_temp: usize,
    /// Build caches (every one: `locald image prune` clears them).
    pub removed_build_caches: usize,
    pub freed_bytes: u64,
    /// Unpacked images no name refers to any more, kept because running
    /// containers use them.
    pub kept: Vec<KeptImage>,
}

/// An image `prune` kept, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeptImage {
    /// The reference it was used under.
    pub reference: String,
    pub digest: String,
    /// Who uses it, `; `-separated.
    pub in_use_by: String,
}

/// The image store. Cheap to open; every operation goes to disk, so several
/// locald processes can share one store.
#[derive(Debug, Clone)]
pub struct ImageStore {
    pub(crate) paths: StorePaths,
    /// Bounds on what unpacking one image may write.
    pub(crate) unpack_limits: crate::unpack::UnpackLimits,
}

impl ImageStore {
    /// Opens (creating if needed) the store rooted at `root` (the directory
    /// holding `blobs/`, `rootfs/`, `refs.json`).
    ///
    /// The root is private to the caller ([`crate::private_dir`]): created
    /// with mode 0700, an existing one refused unless the caller owns it and
    /// nobody else may write to it, and one of an older locald that others
    /// could read (0755) tightened to 0700. Unpacked images hold whatever
    /// their layers carry (setuid programs, for root also their owners): no
    /// other user may reach them.
    pub fn open(root: PathBuf) -> Result<Self, Error> {
        let root_fd = crate::private_dir::ensure_private_dir(&root)?;
        let paths = StorePaths { root };
        let blobs = crate::private_dir::ensure_private_subdir(
            root_fd.as_fd(),
            &paths.root,
            "blobs".as_ref(),
        )?;
        let blobs_path = paths.root.join("blobs");
        crate::private_dir::ensure_private_subdir(blobs.as_fd(), &blobs_path, "sha256".as_ref())?;
        for name in ["rootfs", "tmp"] {
            crate::private_dir::ensure_private_subdir(root_fd.as_fd(), &paths.root, name.as_ref())?;
        }
        // Every rootfs is unpacked under tmp/: spread those trees over the disk.
        alloc::mark_top_directory(&paths.tmp_dir());
        Ok(Self {
            paths,
            unpack_limits: Default::default(),
        })
    }

    /// The same store with other bounds on unpacking (the default is
    /// [`UnpackLimits::default`](crate::UnpackLimits)).
    pub fn with_unpack_limits(mut self, limits: crate::unpack::UnpackLimits) -> Self {
        self.unpack_limits = limits;
        self
    }

    /// Opens `<data dir>/images`, the data dir being `$LOCALD_DATA_DIR`, else
    /// `$XDG_DATA_HOME/locald`, else `~/.local/share/locald`.
    pub fn open_default() -> Result<Self, Error> {
        Self::open(data_dir()?.join("images"))
    }

    /// The store directory.
    pub fn root(&self) -> &Path {
        &self.paths.root
    }

    /// The directory of the stored blobs, each a file named by its hex sha256 digest (as
    /// in an OCI layout's `blobs/sha256`), for readers that build on stored images (the
    /// CNB exporter reads the run image there). Only the store writes in it.
    pub fn blobs_dir(&self) -> PathBuf {
        self.paths.blobs_dir()
    }

    /// Looks `reference` up locally (no network). `None` when it is not stored
    /// or its rootfs is gone.
    pub fn resolve(&self, reference: &str) -> Result<Option<StoredImage>, Error> {
        let reference = Reference::parse(reference)?;
        let index = RefsIndex::load(&self.paths)?;
        let Some((name, record)) = find_record(&index, &reference) else {
            return Ok(None);
        };
        let rootfs = self.paths.rootfs(&record.manifest_digest)?;
        if !rootfs.is_dir() {
            return Ok(None);
        }
        Ok(Some(StoredImage {
            reference: name.clone(),
            manifest_digest: record.manifest_digest.clone(),
            config: record.config.clone(),
            rootfs,
        }))
    }

    /// Every stored reference, sorted by reference.
    pub fn list(&self) -> Result<Vec<ImageSummary>, Error> {
        let index = RefsIndex::load(&self.paths)?;
        Ok(index
            .images
            .iter()
            .map(|(reference, record)| ImageSummary {
                reference: reference.clone(),
                digest: record.manifest_digest.clone(),
                size: record.size,
                created: record.created.clone(),
            })
            .collect())
    }

    /// Forgets `reference`. Its blobs and rootfs stay until `prune`. Refused
    /// ([`StoreError::InUse`], naming the users) when it is the image's last
    /// name and a running container uses the image (holds an
    /// [`ImageLease`] on it); another name of the same image can go.
    pub fn remove(&self, reference: &str) -> Result<(), Error> {
        let reference = Reference::parse(reference)?;
        // Exclusive: no lease is taken while we look at them.
        let _guard = lock(&self.paths.store_lock(), true)?;
        RefsIndex::update(&self.paths, |index| {
            let (name, digest) = find_record(index, &reference)
                .map(|(name, record)| (name.clone(), record.manifest_digest.clone()))
                .ok_or_else(|| StoreError::NotStored(reference.to_string()))?;
            let other_names = index
                .images
                .iter()
                .any(|(other, record)| *other != name && record.manifest_digest == digest);
            if !other_names {
                let users = self.live_leases(paths::digest_hex(&digest)?)?;
                if !users.is_empty() {
                    return Err(StoreError::InUse {
                        reference: name,
                        users: describe(&users),
                    });
                }
            }
            index.images.remove(&name);
            Ok(())
        })?;
        Ok(())
    }

    /// Deletes blobs and rootfs directories no reference uses, and every
    /// temporary leftover. Waits for running pulls/imports to finish.
    pub fn prune(&self) -> Result<PruneReport, Error> {
        let _guard = lock(&self.paths.store_lock(), true)?;
        let index = RefsIndex::load(&self.paths)?;
        let mut used_blobs = std::collections::HashSet::new();
        let mut used_rootfs = std::collections::HashSet::new();
        for record in index.images.values() {
            used_blobs.insert(paths::digest_hex(&record.manifest_digest)?.to_string());
            used_blobs.insert(paths::digest_hex(&record.config_digest)?.to_string());
            for layer in &record.layers {
                used_blobs.insert(paths::digest_hex(layer)?.to_string());
            }
            used_rootfs.insert(paths::digest_hex(&record.manifest_digest)?.to_string());
        }
        let mut report = PruneReport::default();
        for (name, path) in read_dir_names(&self.paths.blobs_dir())? {
            if !used_blobs.contains(&name) {
                report.freed_bytes += remove_path_freeing(&path)?;
                report.removed_blobs += 1;
            }
        }
        for (name, path) in read_dir_names(&self.paths.rootfs_dir())? {
            if !used_rootfs.contains(&name) {
                // No name refers to it, but a running container may still.
                let users = self.live_leases(&name)?;
                if let Some(first) = users.first() {
                    report.kept.push(KeptImage {
                        reference: first.reference.clone(),
                        digest: format!("sha256:{name}"),
                        in_use_by: describe(&users),
                    });
                    continue;
                }
                // The unpacked tree is most of what an image takes.
                report.freed_bytes += remove_path_freeing(&path)?;
                self.forget_leases(&name)?;
                report.removed_rootfs += 1;
            }
        }
        for (_, path) in read_dir_names(&self.paths.tmp_dir())? {
            report.freed_bytes += remove_path_freeing(&path)?;
            report.removed_temp += 1;
        }
        let (caches, freed) = self.prune_build_caches()?;
        report.removed_build_caches = caches;
        report.freed_bytes += freed;
        tracing::info!(?report, "pruned image store");
        Ok(report)
    }

    /// Removes temp entries of processes that died mid-pull (live ones are
    /// left alone: they may belong to a concurrent locald).
    pub(crate) fn clean_stale_tmp(&self) -> Result<(), StoreError> {
        for (name, path) in read_dir_names(&self.paths.tmp_dir())? {
            if paths::tmp_owner_is_dead(&name) {
                tracing::debug!(path = %path.display(), "removing leftover of an interrupted pull");
                remove_path(&path)?;
            }
        }
        Ok(())
    }

    pub(crate) fn record_ref(
        &self,
        reference: &Reference,
        record: RefRecord,
    ) -> Result<(), StoreError> {
        RefsIndex::update(&self.paths, |index| {
            index.images.insert(reference.to_string(), record);
            Ok(())
        })
    }
}

/// The users of leases, for messages.
fn describe(users: &[LeaseInfo]) -> String {
    users
        .iter()
        .map(|info| info.user.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Exact match first; a digest reference also matches any stored name of the
/// same repository with that manifest digest.
fn find_record<'a>(
    index: &'a RefsIndex,
    reference: &Reference,
) -> Option<(&'a String, &'a RefRecord)> {
    let key = reference.to_string();
    if let Some(found) = index.images.get_key_value(&key) {
        return Some(found);
    }
    let digest = reference.digest()?;
    let repository = format!("{}/{}", reference.registry(), reference.repository());
    index.images.iter().find(|(name, record)| {
        record.manifest_digest == digest
            && Reference::parse(name)
                .is_ok_and(|r| format!("{}/{}", r.registry(), r.repository()) == repository)
    })
}

fn read_dir_names(dir: &Path) -> Result<Vec<(String, PathBuf)>, StoreError> {
    let entries = std::fs::read_dir(dir).map_err(|source| StoreError::Io {
        action: "list",
        path: dir.to_path_buf(),
        source,
    })?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| StoreError::Io {
            action: "list",
            path: dir.to_path_buf(),
            source,
        })?;
        names.push((
            entry.file_name().to_string_lossy().into_owned(),
            entry.path(),
        ));
    }
    Ok(names)
}

/// Removes a file or a whole directory tree, tolerating it being gone already.
pub(crate) fn remove_path(path: &Path) -> Result<(), StoreError> {
    remove_path_freeing(path).map(|_| ())
}

/// [`remove_path`], returning the disk space it freed in bytes (see
/// [`remove_tree_freeing`](crate::remove_tree::remove_tree_freeing)).
pub(crate) fn remove_path_freeing(path: &Path) -> Result<u64, StoreError> {
    let result = match std::fs::symlink_metadata(path) {
        // Not remove_dir_all: an image's tree may be arbitrarily deep (see remove_tree).
        Ok(meta) if meta.is_dir() => crate::remove_tree::remove_tree_freeing(path),
        Ok(meta) => std::fs::remove_file(path).map(|()| {
            use std::os::unix::fs::MetadataExt;
            if meta.nlink() <= 1 {
                meta.blocks() * 512
            } else {
                0
            }
        }),
        Err(e) => Err(e),
    };
    match result {
        Ok(freed) => Ok(freed),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(source) => Err(StoreError::Io {
            action: "remove",
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::private_dir::PrivateDirError;
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn a_new_store_is_private() {
        let data = tempfile::tempdir().unwrap();
        // A data directory others may enter, as a home directory often is.
        fs::set_permissions(data.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let store = ImageStore::open(data.path().join("images")).unwrap();
        assert_eq!(mode(store.root()), 0o700);
        for sub in ["blobs", "blobs/sha256", "rootfs", "tmp"] {
            assert_eq!(mode(&store.root().join(sub)), 0o700, "{sub}");
        }
    }

    #[test]
    fn a_store_of_an_older_locald_is_tightened() {
        let data = tempfile::tempdir().unwrap();
        let root = data.path().join("images");
        for sub in ["blobs/sha256", "rootfs/abc", "tmp"] {
            fs::create_dir_all(root.join(sub)).unwrap();
        }
        for dir in [&root, &root.join("rootfs"), &root.join("rootfs/abc")] {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let store = ImageStore::open(root.clone()).unwrap();
        assert_eq!(mode(store.root()), 0o700);
        assert_eq!(mode(&root.join("rootfs")), 0o700);
        // An image's own tree keeps its modes: the store above it is what keeps others out.
        assert_eq!(mode(&root.join("rootfs/abc")), 0o755);
    }

    #[test]
    fn a_store_of_another_user_is_refused() {
        if !nix::unistd::geteuid().is_root() {
            return; // needs chown
        }
        let data = tempfile::tempdir().unwrap();
        let root = data.path().join("images");
        fs::create_dir(&root).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).unwrap();
        let other = nix::unistd::geteuid().as_raw() + 4242;
        std::os::unix::fs::chown(&root, Some(other), None).unwrap();
        let err = ImageStore::open(root.clone()).unwrap_err();
        assert!(
            matches!(err, Error::PrivateDir(PrivateDirError::NotOwned { .. })),
            "{err}"
        );
        assert!(
            err.to_string().contains(&root.display().to_string()),
            "{err}"
        );
        assert!(!root.join("blobs").exists());
    }

    #[test]
    fn a_store_others_may_write_to_is_refused() {
        let data = tempfile::tempdir().unwrap();
        let root = data.path().join("images");
        fs::create_dir(&root).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o777)).unwrap();
        let err = ImageStore::open(root.clone()).unwrap_err();
        assert!(
            matches!(
                err,
                Error::PrivateDir(PrivateDirError::WritableByOthers { .. })
            ),
            "{err}"
        );
        assert_eq!(mode(&root), 0o777);
    }
}
