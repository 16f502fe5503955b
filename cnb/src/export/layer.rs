//! Writing one image layer as a normalised, uncompressed tar straight into a blob
//! directory: entries sorted by path, every parent directory present, one fixed mtime, the
//! owner the exporter says (no user or group names), permission bits kept and nothing
//! else of the host (no atime, no device numbers), so that the same tree always gives the
//! same bytes and so the same digest. The blob's digest is its diffID.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::ExportError;

/// Who owns the entries of a part of a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u64,
    pub gid: u64,
}

impl Owner {
    pub const ROOT: Owner = Owner { uid: 0, gid: 0 };
}

/// Hashes what goes through it into the blob file.
struct HashingFile {
    file: BufWriter<File>,
    hasher: Sha256,
    written: u64,
}

impl Write for HashingFile {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(bytes)?;
        self.hasher.update(&bytes[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// A layer being written: a temporary file in the blob directory until
/// [`LayerWriter::finish`] names it by its digest.
pub struct LayerWriter {
    tar: tar::Builder<HashingFile>,
    tmp: tempfile::TempPath,
    blobs: PathBuf,
    mtime: u64,
    /// Directories already written (image paths without the leading `/`).
    dirs: BTreeSet<String>,
}

/// A finished layer blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerBlob {
    /// `sha256:…` of the tar: the blob digest and the diffID.
    pub digest: String,
    pub size: u64,
}

impl LayerWriter {
    /// A new layer in `blobs` (a directory of `<hex>` blob files) whose entries all have
    /// the modification time `mtime` (seconds since the epoch).
    pub fn new(blobs: &Path, mtime: u64) -> Result<LayerWriter, ExportError> {
        let file = tempfile::Builder::new()
            .prefix(".layer-")
            .tempfile_in(blobs)
            .map_err(|source| ExportError::io("create a layer in", blobs, source))?;
        let (file, tmp) = file.into_parts();
        let mut tar = tar::Builder::new(HashingFile {
            file: BufWriter::with_capacity(256 * 1024, file),
            hasher: Sha256::new(),
            written: 0,
        });
        tar.mode(tar::HeaderMode::Deterministic);
        Ok(LayerWriter {
            tar,
            tmp,
            blobs: blobs.to_path_buf(),
            mtime,
            dirs: BTreeSet::new(),
        })
    }

    fn header(&self, kind: tar::EntryType, mode: u32, owner: Owner, size: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode & 0o7777);
        header.set_uid(owner.uid);
        header.set_gid(owner.gid);
        header.set_mtime(self.mtime);
        header.set_size(size);
        header
    }

    fn io(&self, source: std::io::Error) -> ExportError {
        ExportError::io("write the layer", &self.tmp, source)
    }

    /// The directory `image_path` (absolute in the image) and every parent not written
    /// yet, owned by `owner`, mode 0755.
    pub fn dir_with_parents(&mut self, image_path: &str, owner: Owner) -> Result<(), ExportError> {
        let relative = image_path.trim_matches('/');
        let mut path = String::new();
        for part in relative.split('/').filter(|p| !p.is_empty()) {
            if !path.is_empty() {
                path.push('/');
            }
            path.push_str(part);
            self.dir(&path.clone(), 0o755, owner)?;
        }
        Ok(())
    }

    fn dir(&mut self, relative: &str, mode: u32, owner: Owner) -> Result<(), ExportError> {
        if !self.dirs.insert(relative.to_string()) {
            return Ok(());
        }
        let mut header = self.header(tar::EntryType::Directory, mode, owner, 0);
        self.tar
            .append_data(&mut header, format!("{relative}/"), std::io::empty())
            .map_err(|e| self.io(e))
    }

    /// A regular file with `content`.
    pub fn file(
        &mut self,
        image_path: &str,
        mode: u32,
        owner: Owner,
        content: &[u8],
    ) -> Result<(), ExportError> {
        let relative = image_path.trim_start_matches('/');
        let mut header = self.header(tar::EntryType::Regular, mode, owner, content.len() as u64);
        self.tar
            .append_data(&mut header, relative, content)
            .map_err(|e| self.io(e))
    }

    /// A symbolic link to `target`.
    pub fn symlink(
        &mut self,
        image_path: &str,
        target: &str,
        owner: Owner,
    ) -> Result<(), ExportError> {
        let relative = image_path.trim_start_matches('/');
        let mut header = self.header(tar::EntryType::Symlink, 0o777, owner, 0);
        self.tar
            .append_link(&mut header, relative, target)
            .map_err(|e| self.io(e))
    }

    /// The host tree `host` as `image_path`, in path order, owned by `owner`; `include`
    /// says which paths (relative to `host`) go in: a directory is written when it or
    /// anything under it is included. Links are written as links, never followed.
    pub fn tree(
        &mut self,
        host: &Path,
        image_path: &str,
        owner: Owner,
        include: &dyn Fn(&str) -> bool,
    ) -> Result<(), ExportError> {
        self.dir_with_parents(image_path, owner)?;
        let base = image_path.trim_matches('/').to_string();
        for relative in walk(host)? {
            if !include(&relative) {
                continue;
            }
            let path = host.join(&relative);
            let meta = std::fs::symlink_metadata(&path)
                .map_err(|source| ExportError::io("read", &path, source))?;
            let in_image = format!("{base}/{relative}");
            // Parents of an included entry whose own directory entry was not included.
            if let Some((parent, _)) = in_image.rsplit_once('/') {
                self.dir_with_parents(parent, owner)?;
            }
            let kind = meta.file_type();
            let mode = meta.permissions().mode();
            if kind.is_dir() {
                self.dir(&in_image, mode, owner)?;
            } else if kind.is_symlink() {
                let target = std::fs::read_link(&path)
                    .map_err(|source| ExportError::io("read the link", &path, source))?;
                self.symlink(&in_image, &target.to_string_lossy(), owner)?;
            } else if kind.is_file() {
                let file =
                    File::open(&path).map_err(|source| ExportError::io("open", &path, source))?;
                let mut header = self.header(tar::EntryType::Regular, mode, owner, meta.len());
                self.tar
                    .append_data(&mut header, &in_image, file)
                    .map_err(|e| self.io(e))?;
            } else {
                return Err(ExportError::SpecialFile { path });
            }
        }
        Ok(())
    }

    /// Ends the tar and names the blob by its digest (an existing blob of that digest is
    /// kept: the content is the same).
    pub fn finish(self) -> Result<LayerBlob, ExportError> {
        let tmp_path = self.tmp.to_path_buf();
        let io = |source| ExportError::io("write the layer", &tmp_path, source);
        let mut hashing = self.tar.into_inner().map_err(io)?;
        hashing.flush().map_err(io)?;
        let digest = format!("sha256:{}", hex::encode(hashing.hasher.finalize()));
        let target = self.blobs.join(&digest["sha256:".len()..]);
        self.tmp
            .persist(&target)
            .map_err(|e| ExportError::io("store the layer", &target, e.error))?;
        Ok(LayerBlob {
            digest,
            size: hashing.written,
        })
    }
}

/// Every path under `root` (relative, `/`-separated), sorted so that a directory comes
/// right before its contents. Links are listed, not followed.
pub fn walk(root: &Path) -> Result<Vec<String>, ExportError> {
    let mut found = Vec::new();
    let mut pending = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = pending.pop() {
        let entries =
            std::fs::read_dir(&dir).map_err(|source| ExportError::io("read", &dir, source))?;
        for entry in entries {
            let entry = entry.map_err(|source| ExportError::io("read", &dir, source))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let relative = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let kind = entry
                .file_type()
                .map_err(|source| ExportError::io("read", &entry.path(), source))?;
            if kind.is_dir() {
                pending.push((entry.path(), relative.clone()));
            }
            found.push(relative);
        }
    }
    // Sorting by components keeps `a/b` right after `a` and before `a.txt`.
    found.sort_by(|a, b| a.split('/').cmp(b.split('/')));
    Ok(found)
}
