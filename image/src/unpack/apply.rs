//! Applying the entries of one layer: whiteouts, opaque directories, files
//! (GNU sparse ones created sparse), directories, links and FIFOs, with modes
//! and ownership. Block and character devices are skipped (see the module
//! doc of `unpack`), and every entry is charged to the image's [`Budget`].

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use nix::sys::stat::{Mode, SFlag};
use tar::EntryType;

use super::resolve::{clean_entry_path, join, resolve_dir, ResolveError, RootPath};
use super::{Budget, Refusal, UnpackError};

const WHITEOUT_PREFIX: &str = ".wh.";
/// File contents are copied through a buffer this large so that the typical
/// small file is one `write`, not one per 8 KiB (`io::copy`'s buffer).
const COPY_BUFFER: usize = 256 * 1024;
const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

pub(super) struct LayerApplier<'a> {
    digest: &'a str,
    root: &'a Path,
    budget: &'a mut Budget,
    /// Block and character devices left out, for the log.
    skipped_devices: u64,
    running_as_root: bool,
    /// The group a new file gets outside setgid directories.
    egid: u32,
    /// Whether `open(O_CREAT, mode)` yields exactly `mode & 0o777` here: the
    /// umask clears none of the bits this entry needs and no default ACL
    /// rewrites them. When it does, the separate `fchmod` can be skipped.
    create_mode_is_exact: CreateMode,
    buffer: Vec<u8>,
    /// Paths this layer created, which an opaque whiteout must keep.
    written: HashSet<RootPath>,
    /// Directory modes applied at the end, so that a read-only directory does
    /// not stop later entries being written into it.
    dir_modes: Vec<(PathBuf, u32)>,
    /// Lexical directory -> resolved directory. Only valid while nothing is
    /// removed and no symlink is created, which is when it is cleared.
    /// (Directory modes cannot change meanwhile: they are applied in `finish`.)
    resolved_dirs: HashMap<RootPath, ParentDir>,
}

/// A resolved parent directory and what the kernel does to files made in it.
#[derive(Debug, Clone)]
struct ParentDir {
    path: RootPath,
    /// The group a new file gets here (the directory's own when it is setgid);
    /// `None` when unknown, which forces an explicit `fchown`.
    new_file_gid: Option<u32>,
}

/// See [`LayerApplier::create_mode_is_exact`].
#[derive(Debug, Clone, Copy)]
struct CreateMode {
    /// The process umask, when it could be read.
    umask: Option<u32>,
    /// The rootfs root carries a default ACL (inherited by every directory
    /// made under it), which overrides the umask for new files.
    default_acl: bool,
}

impl CreateMode {
    fn probe(root: &Path) -> Self {
        Self {
            umask: process_umask(),
            default_acl: has_default_acl(root),
        }
    }

    /// Whether creating with `mode` gives exactly `mode`: no special bits
    /// (those need an explicit chmod, after any chown) and nothing masked.
    fn is_exact(self, mode: u32) -> bool {
        match self.umask {
            Some(umask) => !self.default_acl && mode & 0o7000 == 0 && mode & umask == 0,
            None => false,
        }
    }
}

impl<'a> LayerApplier<'a> {
    pub fn new(digest: &'a str, root: &'a Path, budget: &'a mut Budget) -> Self {
        Self {
            digest,
            root,
            budget,
            skipped_devices: 0,
            running_as_root: nix::unistd::geteuid().is_root(),
            egid: nix::unistd::getegid().as_raw(),
            create_mode_is_exact: CreateMode::probe(root),
            buffer: Vec::new(),
            written: HashSet::new(),
            dir_modes: Vec::new(),
            resolved_dirs: HashMap::new(),
        }
    }

    pub fn apply<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), UnpackError> {
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

        if has_pax_sparse_records(entry).map_err(|e| self.invalid(&entry_name, e.to_string()))? {
            // GNU tar's PAX sparse formats (0.0, 0.1, 1.0) keep the sparse map
            // in PAX records or in the data, which the tar crate does not
            // decode: unpacked as is, the file would be wrong.
            return Err(self.invalid(
                &entry_name,
                "PAX sparse files (GNU.sparse.* records) are not supported: \
                 rebuild the layer without `tar --sparse`"
                    .into(),
            ));
        }
        // What this entry writes: its stored data (for a GNU sparse file the
        // data blocks only, its holes take no space).
        let content = match entry_type {
            EntryType::Regular | EntryType::Continuous => entry.size(),
            EntryType::GNUSparse => entry
                .header()
                .entry_size()
                .map_err(|e| self.invalid(&entry_name, e.to_string()))?,
            _ => 0,
        };
        self.budget
            .charge(self.root, content)
            .map_err(|refusal| self.refused(&entry_name, refusal))?;

        let parent = self.resolve_parent(&entry_name, &parent)?;
        let new_file_gid = parent.new_file_gid;
        let mut target_parts = parent.path;
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
                let placement = FilePlacement {
                    mode,
                    owner,
                    mtime,
                    new_file_gid,
                };
                if entry_type == EntryType::GNUSparse {
                    self.write_sparse_file(&entry_name, &target, entry, placement)?;
                } else {
                    self.write_file(&entry_name, &target, entry, placement)?;
                }
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
                let source = self.resolve_hardlink_source(&entry_name, entry)?;
                self.clear_for(&entry_name, &target, false)?;
                std::fs::hard_link(&source, &target)
                    .map_err(|e| self.io(&entry_name, "create hard link", e))?;
            }
            EntryType::Char | EntryType::Block => {
                // Never created, as root or not: the runtime gives containers
                // their /dev. What a lower layer had here is still replaced.
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                self.clear_for(&entry_name, &target, false)?;
                self.skipped_devices += 1;
                tracing::debug!(
                    layer = self.digest,
                    entry = entry_name,
                    major,
                    minor,
                    "skipping device node"
                );
                return Ok(());
            }
            EntryType::Fifo => {
                self.clear_for(&entry_name, &target, false)?;
                nix::sys::stat::mknod(&target, SFlag::S_IFIFO, Mode::from_bits_truncate(mode), 0)
                    .map_err(|e| self.io(&entry_name, "create FIFO", e.into()))?;
                self.set_owner(&entry_name, &target, owner)?;
            }
            // Metadata-only entries (pax globals, GNU volume labels): nothing to place.
            _ => return Ok(()),
        }
        self.written.insert(target_parts);
        Ok(())
    }

    /// Applies the deferred directory modes.
    pub fn finish(self) -> Result<(), UnpackError> {
        if self.skipped_devices > 0 {
            tracing::debug!(
                layer = self.digest,
                count = self.skipped_devices,
                "device nodes in the layer were not created"
            );
        }
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

    fn resolve_parent(&mut self, entry: &str, parent: &RootPath) -> Result<ParentDir, UnpackError> {
        if let Some(resolved) = self.resolved_dirs.get(parent) {
            return Ok(resolved.clone());
        }
        let path =
            resolve_dir(self.root, parent, true).map_err(|e| self.resolve_error(entry, e))?;
        // One lstat per distinct directory buys skipping an fchown per file.
        let new_file_gid = std::fs::symlink_metadata(join(self.root, &path))
            .ok()
            .map(|meta| {
                if meta.mode() & libc::S_ISGID != 0 {
                    meta.gid()
                } else {
                    self.egid
                }
            });
        let resolved = ParentDir { path, new_file_gid };
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
        let dir = self.resolve_parent(entry, dir)?.path;
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
        &mut self,
        entry_name: &str,
        target: &Path,
        entry: &mut tar::Entry<'_, R>,
        placement: FilePlacement,
    ) -> Result<(), UnpackError> {
        let FilePlacement {
            mode,
            owner,
            mtime,
            new_file_gid,
        } = placement;
        // As root, a new file belongs to root and to its directory's group
        // (setgid) or ours; chown only when the entry wants something else.
        let chown = self.running_as_root
            && (owner_id(owner.0) != 0 || Some(owner_id(owner.1)) != new_file_gid);
        let exact = !chown && self.create_mode_is_exact.is_exact(mode);
        let create_mode = if exact { mode } else { 0o600 };
        let mut file = match create_new(target, create_mode) {
            Ok(file) => file,
            // Something from a lower layer (or earlier in this one) is in the
            // way: remove it, never write through it, and create afresh.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                self.clear_for(entry_name, target, false)?;
                create_new(target, create_mode)
                    .map_err(|e| self.io(entry_name, "create file", e))?
            }
            Err(e) => return Err(self.io(entry_name, "create file", e)),
        };
        copy_with(&mut self.buffer, entry, &mut file)
            .map_err(|e| self.io(entry_name, "write file", e))?;
        if chown {
            std::os::unix::fs::fchown(&file, Some(owner_id(owner.0)), Some(owner_id(owner.1)))
                .map_err(|e| self.io(entry_name, "set owner", e))?;
        }
        if !exact {
            // After chown, which would clear setuid/setgid bits.
            file.set_permissions(std::fs::Permissions::from_mode(mode))
                .map_err(|e| self.io(entry_name, "set mode", e))?;
        }
        let _ = set_mtime(&file, mtime);
        Ok(())
    }

    /// A GNU sparse file: its data blocks are written and its holes skipped
    /// (`lseek` + `ftruncate`), so a file of 100 GiB with 4 KiB of data takes
    /// 4 KiB. Only the tar crate knows the sparse map, so its `unpack` writes
    /// the file, at a `target` this layer has cleared: it creates with
    /// `O_EXCL`, which never follows a symlink planted there.
    fn write_sparse_file<R: Read>(
        &mut self,
        entry_name: &str,
        target: &Path,
        entry: &mut tar::Entry<'_, R>,
        placement: FilePlacement,
    ) -> Result<(), UnpackError> {
        self.clear_for(entry_name, target, false)?;
        entry.set_preserve_permissions(false);
        entry.set_preserve_mtime(false);
        entry.set_unpack_xattrs(false);
        let file = match entry.unpack(target) {
            Ok(tar::Unpacked::File(file)) => file,
            Ok(_) => {
                return Err(self.invalid(entry_name, "a sparse entry that is not a file".into()))
            }
            Err(e) => return Err(self.io(entry_name, "write sparse file", e)),
        };
        let FilePlacement {
            mode,
            owner,
            mtime,
            new_file_gid: _,
        } = placement;
        if self.running_as_root {
            std::os::unix::fs::fchown(&file, Some(owner_id(owner.0)), Some(owner_id(owner.1)))
                .map_err(|e| self.io(entry_name, "set owner", e))?;
        }
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

    fn refused(&self, entry: &str, refusal: Refusal) -> UnpackError {
        let layer = self.digest.to_string();
        let entry = entry.to_string();
        match refusal {
            Refusal::Cancelled => UnpackError::Aborted,
            Refusal::TooManyBytes { limit } => UnpackError::TooLarge {
                layer,
                entry,
                limit,
            },
            Refusal::TooManyEntries { limit } => UnpackError::TooManyEntries {
                layer,
                entry,
                limit,
            },
            Refusal::LowSpace { available, needed } => UnpackError::NoSpace {
                layer,
                entry,
                path: self.root.to_path_buf(),
                available,
                needed,
            },
            Refusal::LowInodes { available, margin } => UnpackError::NoInodes {
                layer,
                entry,
                path: self.root.to_path_buf(),
                available,
                margin,
            },
            Refusal::Statvfs(source) => UnpackError::Io {
                layer,
                entry,
                action: "measure free space (statvfs)",
                source,
            },
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

/// How a regular file is to be placed (from its tar header and its directory).
#[derive(Debug, Clone, Copy)]
struct FilePlacement {
    mode: u32,
    owner: (u64, u64),
    mtime: u64,
    new_file_gid: Option<u32>,
}

/// `O_EXCL` (never writes through a symlink planted at `target`, and says
/// `AlreadyExists` when something is there) plus `O_NOFOLLOW` for good measure.
fn create_new(target: &Path, mode: u32) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(target)
}

/// Copies `reader` to `writer` through `buffer` (grown on first use), filling
/// the buffer before each write so a small file takes a single `write`.
fn copy_with(buffer: &mut Vec<u8>, reader: &mut impl Read, writer: &mut File) -> io::Result<()> {
    if buffer.len() < COPY_BUFFER {
        buffer.resize(COPY_BUFFER, 0);
    }
    loop {
        let mut filled = 0;
        while filled < buffer.len() {
            match reader.read(&mut buffer[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if filled == 0 {
            return Ok(());
        }
        writer.write_all(&buffer[..filled])?;
        if filled < buffer.len() {
            return Ok(());
        }
    }
}

/// The umask, read from `/proc/self/status` once: `umask(2)` can only read it
/// by changing it, which would race with other threads creating files.
fn process_umask() -> Option<u32> {
    static UMASK: std::sync::OnceLock<Option<u32>> = std::sync::OnceLock::new();
    *UMASK.get_or_init(|| {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let value = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
        u32::from_str_radix(value.trim(), 8).ok()
    })
}

/// Whether `dir` has a default POSIX ACL (then new files' modes follow the
/// ACL, not the umask). Unknown counts as yes: the cost is only an fchmod.
fn has_default_acl(dir: &Path) -> bool {
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return true;
    };
    let name = c"system.posix_acl_default";
    // SAFETY: both strings are NUL-terminated and live across the call; a null
    // buffer of size 0 asks only for the value's size and writes nothing.
    let size = unsafe { libc::lgetxattr(path.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0) };
    if size >= 0 {
        return true;
    }
    let error = io::Error::last_os_error().raw_os_error();
    // No such attribute, or a filesystem without xattrs/ACLs at all.
    !matches!(error, Some(libc::ENODATA) | Some(libc::EOPNOTSUPP))
}

/// Whether the entry carries GNU tar's PAX sparse records (`GNU.sparse.*`).
fn has_pax_sparse_records<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<bool> {
    let Some(extensions) = entry.pax_extensions()? else {
        return Ok(false);
    };
    for extension in extensions {
        if extension?.key_bytes().starts_with(b"GNU.sparse.") {
            return Ok(true);
        }
    }
    Ok(false)
}

fn owner_id(id: u64) -> u32 {
    u32::try_from(id).unwrap_or(u32::MAX - 1)
}

fn set_mtime(file: &File, mtime: u64) -> io::Result<()> {
    file.set_modified(UNIX_EPOCH + Duration::from_secs(mtime))
}

fn remove_any(path: &Path) -> io::Result<()> {
    let result = match std::fs::symlink_metadata(path) {
        // Not remove_dir_all: an earlier layer's tree may be arbitrarily deep (see remove_tree).
        Ok(meta) if meta.is_dir() => crate::remove_tree::remove_tree(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}
