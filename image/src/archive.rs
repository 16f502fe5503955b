//! OCI archives: an uncompressed tar of an OCI image layout, as a Cloud Native
//! Buildpacks `.cnb` buildpackage is (or `skopeo copy … oci-archive:FILE`), imported by
//! extracting the layout's own files into the store's temporary directory and importing
//! that layout; and the labels of a stored image, which buildpackages describe themselves
//! in.
//!
//! The archive is untrusted: only `oci-layout`, `index.json` and `blobs/sha256/<hex>`
//! are written (as new regular files, under names fixed here, never a name taken from
//! the archive), anything else is skipped, a link or device in their place is refused,
//! and the whole read is bounded. The layout import then checks every blob's digest and
//! size as for any layout.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;

use crate::import::{read_at_most, ImportError};
use crate::oci::{ConfigFile, Manifest};
use crate::pull::{MAX_CONFIG_BYTES, MAX_IMAGE_BYTES, MAX_INDEX_MANIFESTS, MAX_LAYERS};
use crate::store::{ImageStore, StoreError, StoredImage};
use crate::{Error, MAX_MANIFEST_BYTES};

/// Most entries an archive may have: a layout holds its index, marker, and per image a
/// manifest, a config and its layers (with room for the directories).
const MAX_ARCHIVE_ENTRIES: u64 = (MAX_INDEX_MANIFESTS * (MAX_LAYERS + 2) + 16) as u64;

impl ImageStore {
    /// Imports the image of the OCI archive `tar` (a tar of an OCI image layout, such as
    /// a `.cnb` buildpackage), as [`ImageStore::import_oci_layout`] does for a layout
    /// directory (`reference` the same way); errors name the archive, not the directory
    /// it was extracted to.
    pub fn import_oci_archive(
        &self,
        tar: &Path,
        reference: Option<&str>,
    ) -> Result<StoredImage, Error> {
        let tmp = self.paths.tmp_dir();
        std::fs::create_dir_all(&tmp).map_err(|source| ImportError::Read {
            path: tmp.clone(),
            source,
        })?;
        let dir = self.paths.new_tmp_path("archive");
        let imported = extract_layout(tar, &dir)
            .map_err(Error::from)
            .and_then(|()| self.import_oci_layout(&dir, reference))
            .map_err(|error| match error {
                Error::Import(mut error) => {
                    error.relocate(&dir, tar);
                    Error::Import(error)
                }
                other => other,
            });
        if let Err(error) = crate::remove_tree::remove_tree(&dir) {
            if error.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %dir.display(), %error, "cannot remove an extracted archive");
            }
        }
        imported
    }

    /// The labels of a stored image's config (empty when it has none).
    pub fn labels(&self, image: &StoredImage) -> Result<BTreeMap<String, String>, Error> {
        let manifest: Manifest = self.read_document(&image.manifest_digest, MAX_MANIFEST_BYTES)?;
        let config: ConfigFile = self.read_document(&manifest.config.digest, MAX_CONFIG_BYTES)?;
        Ok(config.config.labels.unwrap_or_default())
    }

    /// A stored JSON blob (the store checked its digest when it wrote it), bounded.
    fn read_document<T: serde::de::DeserializeOwned>(
        &self,
        digest: &str,
        limit: u64,
    ) -> Result<T, Error> {
        let path = self.paths.blob(digest)?;
        let bytes = read_at_most(&path, limit)?;
        serde_json::from_slice(&bytes).map_err(|e| {
            StoreError::CorruptBlob {
                digest: digest.to_string(),
                reason: e.to_string(),
            }
            .into()
        })
    }
}

/// Whether `path` is an OCI archive: a tar with an `oci-layout` file at its top (read
/// headers only, bounded; anything unreadable is not one).
pub fn is_oci_archive(path: &Path) -> bool {
    let Ok(file) = locald_shim_protocol::regular_file::open_regular(path) else {
        return false;
    };
    let mut archive = tar::Archive::new(file);
    let Ok(entries) = archive.entries_with_seek() else {
        return false;
    };
    entries
        .take(MAX_ARCHIVE_ENTRIES as usize)
        .map_while(Result::ok)
        .any(|entry| matches!(entry.path_bytes().as_ref(), b"oci-layout" | b"./oci-layout"))
}

/// Where an archive entry goes in the layout, if it is one of the layout's files: its
/// path relative to the layout (`./` prefixes dropped).
fn layout_file(name: &str) -> Option<String> {
    let name = name.trim_start_matches("./");
    match name {
        "oci-layout" | "index.json" => Some(name.to_string()),
        _ => {
            let hex = name.strip_prefix("blobs/sha256/")?;
            (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
                .then(|| format!("blobs/sha256/{hex}"))
        }
    }
}

/// Extracts the layout files of the archive `tar` into the new directory `dir`.
fn extract_layout(tar: &Path, dir: &Path) -> Result<(), ImportError> {
    let not_archive = |reason: String| ImportError::NotAnArchive {
        path: tar.to_path_buf(),
        reason,
    };
    let read_error = |source| ImportError::Read {
        path: tar.to_path_buf(),
        source,
    };
    let write_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ImportError::Read { path, source }
    };
    let file = locald_shim_protocol::regular_file::open_regular(tar).map_err(read_error)?;
    std::fs::create_dir(dir).map_err(write_error(dir))?;
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).map_err(write_error(&blobs))?;
    // Past the largest image (and its documents), whatever the entries say.
    let bound = MAX_IMAGE_BYTES + (MAX_INDEX_MANIFESTS as u64 + 1) * MAX_MANIFEST_BYTES;
    let mut archive = tar::Archive::new(file.take(bound));
    let mut count = 0u64;
    for entry in archive.entries().map_err(read_error)? {
        let mut entry = entry.map_err(|e| not_archive(e.to_string()))?;
        count += 1;
        if count > MAX_ARCHIVE_ENTRIES {
            return Err(ImportError::LimitExceeded {
                path: tar.to_path_buf(),
                what: "archive entries",
                actual: count,
                limit: MAX_ARCHIVE_ENTRIES,
            });
        }
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(relative) = layout_file(&name) else {
            continue;
        };
        if !matches!(
            entry.header().entry_type(),
            tar::EntryType::Regular | tar::EntryType::Continuous
        ) {
            return Err(not_archive(format!("`{name}` is not a regular file")));
        }
        let target = dir.join(&relative);
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&target)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => not_archive(format!("`{name}` appears twice")),
                _ => write_error(&target)(e),
            })?;
        std::io::copy(&mut entry, &mut out).map_err(read_error)?;
    }
    if !dir.join("index.json").is_file() {
        return Err(not_archive("it has no `index.json`".to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// The files under `dir`, relative to it, sorted.
    fn extracted(dir: &Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(next) = stack.pop() {
            for entry in std::fs::read_dir(&next).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    files.push(path.strip_prefix(dir).unwrap().to_path_buf());
                }
            }
        }
        files.sort();
        files
    }

    /// An archive entry: its name, type and content.
    type Entry<'a> = (&'a str, tar::EntryType, &'a [u8]);

    fn archive(entries: &[Entry]) -> tempfile::NamedTempFile {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, kind, content) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_mode(0o644);
            header.set_size(content.len() as u64);
            header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            if *kind == tar::EntryType::Symlink {
                header.set_link_name("/etc/passwd").unwrap();
            }
            header.set_cksum();
            builder.append(&header, *content).unwrap();
        }
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), builder.into_inner().unwrap()).unwrap();
        file
    }

    const BLOB: &str =
        "blobs/sha256/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn only_the_layout_files_are_extracted() {
        let file = archive(&[
            ("./", tar::EntryType::Directory, b""),
            ("./oci-layout", tar::EntryType::Regular, b"{}"),
            ("index.json", tar::EntryType::Regular, b"{}"),
            (BLOB, tar::EntryType::Regular, b"blob"),
            ("../escape", tar::EntryType::Regular, b"x"),
            ("blobs/sha256/../../up", tar::EntryType::Regular, b"x"),
            ("manifest.json", tar::EntryType::Regular, b"[]"),
        ]);
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("layout");
        extract_layout(file.path(), &dir).unwrap();
        assert_eq!(
            extracted(&dir),
            [
                Path::new(BLOB),
                Path::new("index.json"),
                Path::new("oci-layout")
            ]
        );
        assert_eq!(std::fs::read(dir.join(BLOB)).unwrap(), b"blob");
        assert!(!root.path().join("escape").exists() && !root.path().join("up").exists());
    }

    #[test]
    fn only_a_tar_with_an_oci_layout_file_is_an_archive() {
        let rootfs = archive(&[
            ("./", tar::EntryType::Directory, b""),
            ("./etc/", tar::EntryType::Directory, b""),
            ("./etc/oci-layout", tar::EntryType::Regular, b"{}"),
        ]);
        assert!(!is_oci_archive(rootfs.path()));
        let layout = archive(&[
            (BLOB, tar::EntryType::Regular, b"blob"),
            ("./oci-layout", tar::EntryType::Regular, b"{}"),
        ]);
        assert!(is_oci_archive(layout.path()));
        let not_tar = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(not_tar.path(), [0x1f, 0x8b, 0, 0]).unwrap();
        assert!(!is_oci_archive(not_tar.path()));
        assert!(!is_oci_archive(Path::new("/nonexistent/x.cnb")));
    }

    #[test]
    fn links_duplicates_and_archives_without_an_index_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let cases: [(&[Entry], &str); 3] = [
            (
                &[("index.json", tar::EntryType::Symlink, b"")],
                "`index.json` is not a regular file",
            ),
            (
                &[
                    ("index.json", tar::EntryType::Regular, b"{}"),
                    ("./index.json", tar::EntryType::Regular, b"{}"),
                ],
                "`./index.json` appears twice",
            ),
            (
                &[("oci-layout", tar::EntryType::Regular, b"{}")],
                "it has no `index.json`",
            ),
        ];
        for (i, (entries, expected)) in cases.into_iter().enumerate() {
            let file = archive(entries);
            let error = extract_layout(file.path(), &root.path().join(i.to_string()))
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("is not an OCI archive") && error.contains(expected),
                "{error}"
            );
        }
    }

    #[test]
    fn an_archive_imports_as_its_layout_would_with_its_labels() {
        use crate::testing::{ImageBuilder, LayerBuilder, LayerCompression};
        let mut layer = LayerBuilder::new();
        layer.dir("cnb", 0o755).file("cnb/x", 0o644, b"x");
        let labels = BTreeMap::from([("io.test".to_string(), "yes".to_string())]);
        let image = ImageBuilder::new()
            .layer(layer.build(LayerCompression::None))
            .config(crate::oci::RuntimeConfig {
                labels: Some(labels.clone()),
                ..Default::default()
            })
            .build();
        let work = tempfile::tempdir().unwrap();
        let layout = work.path().join("layout");
        image.write_layout(&layout, "latest").unwrap();
        let mut builder = tar::Builder::new(Vec::new());
        builder.append_dir_all(".", &layout).unwrap();
        let tar = work.path().join("bp.cnb");
        std::fs::write(&tar, builder.into_inner().unwrap()).unwrap();

        let store = ImageStore::open(work.path().join("store")).unwrap();
        assert!(is_oci_archive(&tar));
        let stored = store
            .import_oci_archive(&tar, Some("example.test/bp:1"))
            .unwrap();
        assert_eq!(stored.manifest_digest, image.manifest.digest);
        assert!(stored.rootfs.join("cnb/x").is_file());
        assert_eq!(store.labels(&stored).unwrap(), labels);
        // The layout names only a tag: the error says so of the archive.
        let error = store
            .import_oci_archive(&tar, None)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(&format!(
                "OCI layout `{}` does not name its image",
                tar.display()
            )),
            "{error}"
        );
        // Nothing of the extraction is left behind.
        assert_eq!(
            std::fs::read_dir(work.path().join("store/tmp"))
                .unwrap()
                .count(),
            0
        );
    }
}
