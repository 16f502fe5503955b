//! Build caches: what a Cloud Native Buildpacks build keeps for the next build of the same
//! image name (its `cache = true` layers as tars named by diffID, and their metadata), in
//! `<store>/build-cache/<sha256 of the canonical name>/`.
//!
//! The store owns the format of nothing in there (the CNB exporter writes it and the
//! restorer reads it); it owns where it is and how it changes:
//!
//! - every directory is private like the store's own ([`crate::private_dir`]: 0700, the
//!   caller's, no link followed): the cached layers are the build's, and a restore writes
//!   them into the next build;
//! - one build of a name at a time: [`ImageStore::build_cache`] holds the entry's lock until
//!   the [`BuildCache`] is dropped;
//! - a build writes a new cache in a staging directory and [`StagedCache::commit`] swaps it
//!   with `committed/` in one `renameat2(RENAME_EXCHANGE)`, then removes the old one: a build
//!   that fails or is stopped leaves the previous cache whole, and only what the last build
//!   used is kept (the bound: one build's cache per name);
//! - [`ImageStore::prune`] removes every build cache (`locald image prune`).

use std::path::{Path, PathBuf};

use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
use sha2::{Digest as _, Sha256};

use super::lock::{lock, LockGuard};
use super::{read_dir_names, remove_path, remove_path_freeing, ImageStore, StoreError};
use crate::reference::Reference;
use crate::Error;

const BUILD_CACHE_DIR: &str = "build-cache";
const COMMITTED: &str = "committed";
const STAGING_PREFIX: &str = "staging-";
const LOCK_FILE: &str = "lock";

/// The build cache of one image name, locked for one build.
#[derive(Debug)]
pub struct BuildCache {
    dir: PathBuf,
    _lock: LockGuard,
}

/// A new cache being written; dropped without [`commit`](StagedCache::commit), it is removed
/// and the committed one stays.
#[derive(Debug)]
pub struct StagedCache<'a> {
    cache: &'a BuildCache,
    path: PathBuf,
    committed: bool,
}

impl ImageStore {
    /// The build cache of the image name `tag` (any spelling of the same reference shares
    /// it), created if missing, locked until the returned value is dropped (a concurrent
    /// build of the same name waits here). Leftovers of builds that were killed are removed.
    pub fn build_cache(&self, tag: &str) -> Result<BuildCache, Error> {
        let canonical = Reference::parse(tag)?.to_string();
        let key = hex::encode(Sha256::digest(canonical.as_bytes()));
        let root = crate::private_dir::ensure_private_dir(&self.paths.root)?;
        let caches = crate::private_dir::ensure_private_subdir(
            std::os::fd::AsFd::as_fd(&root),
            &self.paths.root,
            BUILD_CACHE_DIR.as_ref(),
        )?;
        let caches_path = self.paths.root.join(BUILD_CACHE_DIR);
        crate::private_dir::ensure_private_subdir(
            std::os::fd::AsFd::as_fd(&caches),
            &caches_path,
            key.as_ref(),
        )?;
        let dir = caches_path.join(&key);
        let guard = lock(&dir.join(LOCK_FILE), true)?;
        // Under the lock, a staging directory is a dead build's (or a crash between the
        // exchange and the removal left the old cache there).
        for (name, path) in read_dir_names(&dir)? {
            if name.starts_with(STAGING_PREFIX) {
                remove_path(&path)?;
            }
        }
        Ok(BuildCache { dir, _lock: guard })
    }

    /// Removes every build cache; returns how many and the bytes freed.
    pub(crate) fn prune_build_caches(&self) -> Result<(usize, u64), StoreError> {
        let caches = self.paths.root.join(BUILD_CACHE_DIR);
        if !caches.is_dir() {
            return Ok((0, 0));
        }
        let (mut removed, mut freed) = (0, 0);
        for (_, path) in read_dir_names(&caches)? {
            // A build of that name holds the lock: leave its cache alone.
            let Some(_busy) = try_lock(&path.join(LOCK_FILE)) else {
                continue;
            };
            freed += remove_path_freeing(&path)?;
            removed += 1;
        }
        Ok((removed, freed))
    }
}

/// Takes the lock at `path` only if nobody holds it.
fn try_lock(path: &Path) -> Option<nix::fcntl::Flock<std::fs::File>> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .ok()?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).ok()
}

impl BuildCache {
    /// The directory of the last committed cache, if there is one.
    pub fn committed(&self) -> Option<PathBuf> {
        let path = self.dir.join(COMMITTED);
        path.is_dir().then_some(path)
    }

    /// A new, empty staging directory for the next cache.
    pub fn stage(&self) -> Result<StagedCache<'_>, Error> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let name = format!("{STAGING_PREFIX}{}-{nanos}", std::process::id());
        let fd = crate::private_dir::ensure_private_dir(&self.dir)?;
        crate::private_dir::ensure_private_subdir(
            std::os::fd::AsFd::as_fd(&fd),
            &self.dir,
            name.as_ref(),
        )?;
        Ok(StagedCache {
            cache: self,
            path: self.dir.join(name),
            committed: false,
        })
    }
}

impl StagedCache<'_> {
    /// Where to write the new cache.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes the staged cache the committed one, atomically, and removes the old one.
    pub fn commit(mut self) -> Result<(), Error> {
        let committed = self.cache.dir.join(COMMITTED);
        let io = |source: nix::errno::Errno| StoreError::Io {
            action: "commit the build cache",
            path: committed.clone(),
            source: source.into(),
        };
        match renameat2(
            AT_FDCWD,
            &self.path,
            AT_FDCWD,
            &committed,
            RenameFlags::RENAME_EXCHANGE,
        ) {
            // The old cache is now at the staging path, removed on drop.
            Ok(()) => {}
            Err(nix::errno::Errno::ENOENT) if !committed.exists() => {
                std::fs::rename(&self.path, &committed).map_err(|source| StoreError::Io {
                    action: "commit the build cache",
                    path: committed.clone(),
                    source,
                })?;
                self.committed = true;
            }
            Err(errno) => return Err(io(errno).into()),
        }
        Ok(())
    }
}

impl Drop for StagedCache<'_> {
    fn drop(&mut self) {
        if !self.committed {
            if let Err(error) = remove_path(&self.path) {
                tracing::warn!(%error, "cannot remove a staged build cache");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, ImageStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::open(dir.path().join("images")).unwrap();
        (dir, store)
    }

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_commit_replaces_the_cache_whole_and_a_dropped_stage_changes_nothing() {
        let (_dir, store) = store();
        let cache = store.build_cache("site:dev").unwrap();
        assert_eq!(cache.committed(), None);
        assert_eq!(mode(&store.root().join("build-cache")), 0o700);
        assert_eq!(mode(&cache.dir), 0o700);

        let first = cache.stage().unwrap();
        assert_eq!(mode(first.path()), 0o700);
        std::fs::write(first.path().join("a"), "1").unwrap();
        first.commit().unwrap();
        let committed = cache.committed().unwrap();
        assert_eq!(std::fs::read_to_string(committed.join("a")).unwrap(), "1");

        // A build that fails: its staging goes, the committed cache stays.
        let failed = cache.stage().unwrap();
        let failed_path = failed.path().to_path_buf();
        std::fs::write(failed.path().join("b"), "2").unwrap();
        drop(failed);
        assert!(!failed_path.exists());
        assert!(committed.join("a").is_file() && !committed.join("b").exists());

        // The next one replaces everything: nothing of the old cache is kept.
        let second = cache.stage().unwrap();
        std::fs::write(second.path().join("b"), "2").unwrap();
        second.commit().unwrap();
        assert!(!committed.join("a").exists() && committed.join("b").is_file());
        let names: Vec<String> = read_dir_names(&cache.dir)
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            names.len(),
            2,
            "committed and the lock, no old cache: {names:?}"
        );
    }

    #[test]
    fn spellings_of_a_name_share_a_cache_and_prune_removes_them() {
        let (_dir, store) = store();
        let cache = store.build_cache("site:dev").unwrap();
        let stage = cache.stage().unwrap();
        std::fs::write(stage.path().join("layer"), "x").unwrap();
        stage.commit().unwrap();
        // A killed build's staging directory.
        let leftover = cache.dir.join("staging-1-2");
        std::fs::create_dir(&leftover).unwrap();
        drop(cache);

        let again = store.build_cache("docker.io/library/site:dev").unwrap();
        assert!(again.committed().unwrap().join("layer").is_file());
        assert!(!leftover.exists(), "leftovers are removed under the lock");
        // In use by a build: prune leaves it.
        assert_eq!(store.prune_build_caches().unwrap().0, 0);
        drop(again);
        let other = store.build_cache("other:1").unwrap();
        drop(other);

        let report = store.prune().unwrap();
        assert_eq!(report.removed_build_caches, 2);
        assert!(report.freed_bytes > 0);
        assert!(store.build_cache("site:dev").unwrap().committed().is_none());
    }
}
