//! Applying the entries of one layer: whiteouts, opaque directories, files,
//! directories, links and device nodes, with modes and ownership.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use nix::sys::stat::{Mode, SFlag};
use tar::EntryType;

use super::resolve::{clean_entry_path, join, resolve_dir, ResolveError, RootPath};
use super::UnpackError;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

pub(super) struct LayerApplier<'a> {
    digest: &'a str,
    root: &'a Path,
    running_as_root: bool,
    /// Paths this layer created, which an opaque whiteout must keep.
    written: HashSet<RootPath>,
    /// Directory modes applied at the end, so that a read-only directory does
    /// not stop later entries being written into it.
    dir_modes: Vec<(PathBuf, u32)>,
    /// Lexical directory -> resolved directory. Only valid while nothing is
    /// removed and no symlink is created, which is when it is cleared.
    resolved_dirs: HashMap<RootPath, RootPath>,
}

impl<'a> LayerApplier<'a> {
    pub fn new(digest: &'a str, root: &'a Path) -> Self {
        Self {
            digest,
            root,
            running_as_root: nix::unistd::geteuid().is_root(),
            written: HashSet::new(),
            dir_modes: Vec::new(),
            resolved_dirs: HashMap::new(),
        }
    }

    pub fn apply<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<(), UnpackError> {
        let raw_path = entry.path_bytes().into_owned();
        let entry_name = String::from_utf8_lossy(&raw_path).into_owned();
        let cleaned = clean_entry_path(Path::new(OsStr::from_bytes(&raw_path)))
            .map_err(|e| self.resolve_error(&entry_name, e))?;
        let Some((file_name, parent)) = cleaned.split_last() else {
            return Ok(()); // The root itself: its metadata belongs to the runtime.
        };
        let parent = parent.to_vec();
        let file_name = file_name.clone();

        let entry_type = entry.header().entry_type();
        if file_name == OsStr::new(OPAQUE_WHITEOUT) {
            return self.apply_opaque(&entry_name, &parent);
        }
        if let Some(hidden) = file_name
            .as_bytes()
            .strip_prefix(WHITEOUT_PREFIX.as_bytes())
        {
            return self.apply_whiteout(&entry_name, &parent, OsStr::from_bytes(hidden));
        }

        let parent = self.resolve_parent(&entry_name, &parent)?;
        let mut target_parts = parent;
        target_parts.push(file_name);
        let target = join(self.root, &target_parts);
        let header = entry.header();
        let mode = header
            .mode()
            .map_err(|e| self.invalid(&entry_name, e.to_string()))?
            & 0o7777;
        let owner = (
            header
                .uid()
                .map_err(|e| self.invalid(&entry_name, e.to_string()))?,
            header
                .gid()
                .map_err(|e| self.invalid(&entry_name, e.to_string()))?,
        );
        let mtime = header.mtime().unwrap_or(0);

        match entry_type {
            EntryType::Directory => {
                self.make_directory(&entry_name, &target)?;
                self.set_owner(&entry_name, &target, owner)?;
                self.dir_modes.push((target.clone(), mode));
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.clear_for(&entry_name, &target, false)?;
                self.write_file(&entry_name, &target, &mut entry, mode, owner, mtime)?;
            }
            EntryType::Symlink => {
                let link_target = entry
                    .link_name_bytes()
                    .ok_or_else(|| self.invalid(&entry_name, "symlink without a target".into()))?
                    .into_owned();
                self.clear_for(&entry_name, &target, false)?;
                std::os::unix::fs::symlink(OsStr::from_bytes(&link_target), &target)
                    .map_err(|e| self.io(&entry_name, "create symlink", e))?;
                self.resolved_dirs.clear();
                self.set_owner(&entry_name, &target, owner)?;
            }
            EntryType::Link => {
                let source = self.resolve_hardlink_source(&entry_name, &entry)?;
                self.clear_for(&entry_name, &target, false)?;
                std::fs::hard_link(&source, &target)
                    .map_err(|e| self.io(&entry_name, "create hard link", e))?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let kind = match entry_type {
                    EntryType::Char => SFlag::S_IFCHR,
                    EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                self.clear_for(&entry_name, &target, false)?;
                let device = nix::sys::stat::makedev(u64::from(major), u64::from(minor));
                match nix::sys::stat::mknod(&target, kind, Mode::from_bits_truncate(mode), device) {
                    Ok(()) => self.set_owner(&entry_name, &target, owner)?,
                    // Unprivileged: device nodes come from the runtime's /dev anyway.
                    Err(nix::errno::Errno::EPERM) => {
                        tracing::debug!(
                            layer = self.digest,
                            entry = entry_name,
                            "skipping device node (not permitted)"
                        );
                        return Ok(());
                    }
                    Err(e) => return Err(self.io(&entry_name, "create device node", e.into())),
                }
            }
            // Metadata-only entries (pax globals, GNU volume labels): nothing to place.
            _ => return Ok(()),
        }
        self.written.insert(target_parts);
        Ok(())
    }

    /// Applies the deferred directory modes.
    pub fn finish(self) -> Result<(), UnpackError> {
        for (dir, mode) in self.dir_modes.iter().rev() {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(*mode)).map_err(
                |source| UnpackError::Io {
                    layer: self.digest.to_string(),
                    entry: dir
                        .strip_prefix(self.root)
                        .unwrap_or(dir)
                        .display()
                        .to_string(),
                    action: "set directory mode",
                    source,
                },
            )?;
        }
        Ok(())
    }

    fn resolve_parent(&mut self, entry: &str, parent: &RootPath) -> Result<RootPath, UnpackError> {
        if let Some(resolved) = self.resolved_dirs.get(parent) {
            return Ok(resolved.clone());
        }
        let resolved =
            resolve_dir(self.root, parent, true).map_err(|e| self.resolve_error(entry, e))?;
        self.resolved_dirs.insert(parent.clone(), resolved.clone());
        Ok(resolved)
    }

    /// `.wh.NAME`: delete NAME from the layers below.
    fn apply_whiteout(
        &mut self,
        entry: &str,
        parent: &RootPath,
        hidden: &OsStr,
    ) -> Result<(), UnpackError> {
        if hidden.is_empty() || hidden == "." || hidden == ".." || hidden.as_bytes().contains(&b'/')
        {
            return Err(self.invalid(entry, "whiteout names no file".into()));
        }
        let parent = match resolve_dir(self.root, parent, false) {
            Ok(parent) => parent,
            // Nothing below to hide.
            Err(ResolveError::Missing) => return Ok(()),
            Err(e) => return Err(self.resolve_error(entry, e)),
        };
        let victim = join(self.root, &parent).join(hidden);
        remove_any(&victim).map_err(|e| self.io(entry, "apply whiteout", e))?;
        self.resolved_dirs.clear();
        Ok(())
    }

    /// `DIR/.wh..wh..opq`: DIR keeps only what this layer put in it.
    fn apply_opaque(&mut self, entry: &str, dir: &RootPath) -> Result<(), UnpackError> {
        let dir = self.resolve_parent(entry, dir)?;
        self.clear_lower_children(entry, &dir)?;
        self.resolved_dirs.clear();
        Ok(())
    }

    fn clear_lower_children(&self, entry: &str, dir: &RootPath) -> Result<(), UnpackError> {
        let path = join(self.root, dir);
        let children =
            std::fs::read_dir(&path).map_err(|e| self.io(entry, "read opaque directory", e))?;
        for child in children {
            let child = child.map_err(|e| self.io(entry, "read opaque directory", e))?;
            let mut child_parts = dir.clone();
            child_parts.push(child.file_name());
            if !self.written.contains(&child_parts) {
                remove_any(&child.path())
                    .map_err(|e| self.io(entry, "apply opaque whiteout", e))?;
            } else if child.file_type().is_ok_and(|t| t.is_dir()) {
                self.clear_lower_children(entry, &child_parts)?;
            }
        }
        Ok(())
    }

    fn make_directory(&mut self, entry: &str, target: &Path) -> Result<(), UnpackError> {
        match std::fs::symlink_metadata(target) {
            Ok(meta) if meta.is_dir() => return Ok(()),
            Ok(_) => self.clear_for(entry, target, true)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(self.io(entry, "inspect", e)),
        }
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(target)
            .map_err(|e| self.io(entry, "create directory", e))
    }

    /// Removes whatever is at `target` so a new entry can take its place. A
    /// directory is kept only when the new entry is a directory too.
    fn clear_for(
        &mut self,
        entry: &str,
        target: &Path,
        replacing_with_dir: bool,
    ) -> Result<(), UnpackError> {
        match std::fs::symlink_metadata(target) {
            Ok(meta) if meta.is_dir() && replacing_with_dir => Ok(()),
            Ok(_) => {
                remove_any(target).map_err(|e| self.io(entry, "replace", e))?;
                self.resolved_dirs.clear();
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io(entry, "inspect", e)),
        }
    }

    fn write_file<R: Read>(
        &self,
        entry_name: &str,
        target: &Path,
        entry: &mut tar::Entry<'_, R>,
        mode: u32,
        owner: (u64, u64),
        mtime: u64,
    ) -> Result<(), UnpackError> {
        // create_new = O_EXCL: never writes through a symlink planted at `target`.
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(target)
            .map_err(|e| self.io(entry_name, "create file", e))?;
        io::copy(entry, &mut file).map_err(|e| self.io(entry_name, "write file", e))?;
        if self.running_as_root {
            std::os::unix::fs::fchown(&file, Some(owner_id(owner.0)), Some(owner_id(owner.1)))
                .map_err(|e| self.io(entry_name, "set owner", e))?;
        }
        // After chown, which would clear setuid/setgid bits.
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| self.io(entry_name, "set mode", e))?;
        let _ = set_mtime(&file, mtime);
        Ok(())
    }

    /// A hard link's source must already be in the rootfs, reached without
    /// leaving it; the final component is not followed (links link links).
    fn resolve_hardlink_source<R: Read>(
        &mut self,
        entry: &str,
        tar_entry: &tar::Entry<'_, R>,
    ) -> Result<PathBuf, UnpackError> {
        let link = tar_entry
            .link_name_bytes()
            .ok_or_else(|| self.invalid(entry, "hard link without a target".into()))?
            .into_owned();
        let cleaned = clean_entry_path(Path::new(OsStr::from_bytes(&link)))
            .map_err(|e| self.resolve_error(entry, e))?;
        let Some((name, parent)) = cleaned.split_last() else {
            return Err(self.invalid(entry, "hard link to the root directory".into()));
        };
        let parent = match resolve_dir(self.root, parent, false) {
            Ok(parent) => parent,
            Err(ResolveError::Missing) => return Err(self.missing_link_source(entry, &link)),
            Err(e) => return Err(self.resolve_error(entry, e)),
        };
        let source = join(self.root, &parent).join(name);
        match std::fs::symlink_metadata(&source) {
            Ok(meta) if meta.is_dir() => {
                Err(self.invalid(entry, "hard link to a directory".into()))
            }
            Ok(_) => Ok(source),
            Err(_) => Err(self.missing_link_source(entry, &link)),
        }
    }

    fn missing_link_source(&self, entry: &str, link: &[u8]) -> UnpackError {
        self.invalid(
            entry,
            format!(
                "hard link target `{}` is not in the image",
                String::from_utf8_lossy(link)
            ),
        )
    }

    fn set_owner(&self, entry: &str, target: &Path, owner: (u64, u64)) -> Result<(), UnpackError> {
        if !self.running_as_root {
            return Ok(());
        }
        std::os::unix::fs::lchown(target, Some(owner_id(owner.0)), Some(owner_id(owner.1)))
            .map_err(|e| self.io(entry, "set owner", e))
    }

    fn resolve_error(&self, entry: &str, error: ResolveError) -> UnpackError {
        match error {
            ResolveError::Escape => UnpackError::Escape {
                layer: self.digest.to_string(),
                entry: entry.to_string(),
            },
            ResolveError::Missing => self.invalid(entry, "a parent directory is missing".into()),
            ResolveError::NotADirectory(path) => self.invalid(
                entry,
                format!(
                    "`/{}` is not a directory",
                    path.strip_prefix(self.root).unwrap_or(&path).display()
                ),
            ),
            ResolveError::TooManySymlinks => {
                self.invalid(entry, "too many levels of symbolic links".into())
            }
            ResolveError::Io(source) => self.io(entry, "resolve path", source),
        }
    }

    fn invalid(&self, entry: &str, reason: String) -> UnpackError {
        UnpackError::Invalid {
            layer: self.digest.to_string(),
            entry: entry.to_string(),
            reason,
        }
    }

    fn io(&self, entry: &str, action: &'static str, source: io::Error) -> UnpackError {
        UnpackError::Io {
            layer: self.digest.to_string(),
            entry: entry.to_string(),
            action,
            source,
        }
    }
}

fn owner_id(id: u64) -> u32 {
    u32::try_from(id).unwrap_or(u32::MAX - 1)
}

fn set_mtime(file: &File, mtime: u64) -> io::Result<()> {
    file.set_modified(UNIX_EPOCH + Duration::from_secs(mtime))
}

fn remove_any(path: &Path) -> io::Result<()> {
    let result = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}
