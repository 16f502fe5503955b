//! Getting images into the store without a registry: from an OCI image layout
//! directory (what `skopeo copy ... oci:DIR` or `umoci` produce) or from a
//! rootfs tarball (plain or gzip), which becomes a one-layer image.
//!
//! A layout is read within the same bounds as a pull: index, manifests and
//! config have size caps, blobs are not read past their declared size, and
//! layer and index entry counts are bounded.

use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::oci::{
    ConfigFile, Descriptor, Index, Manifest, ManifestOrIndex, RootFs, ANNOTATION_REF_NAME,
    MEDIA_TYPE_OCI_CONFIG, MEDIA_TYPE_OCI_LAYER, MEDIA_TYPE_OCI_LAYER_GZIP,
    MEDIA_TYPE_OCI_LAYER_ZSTD, MEDIA_TYPE_OCI_MANIFEST,
};
use crate::platform::{describe_platforms, host_architecture, select_host_manifest};
use crate::pull::{
    check_limit, check_manifest_limits, Exceeded, MAX_CONFIG_BYTES, MAX_INDEX_MANIFESTS,
    MAX_MANIFEST_BYTES,
};
use crate::reference::{is_sha256_digest, Reference};
use crate::store::{
    lock, store_bytes, BlobWriter, ImageStore, PreparedImage, StoreError, StoredImage,
};
use crate::unpack::decompressing_reader;
use crate::Error;

/// The `org.opencontainers.image.ref.name` of `entry` when it is a bare tag
/// (`1.0`, `latest`), not a full reference.
fn bare_tag(entry: &Descriptor) -> Option<String> {
    entry
        .annotations
        .get(ANNOTATION_REF_NAME)
        .filter(|name| !name.is_empty() && !name.contains(['/', ':', '@']))
        .cloned()
}

/// True when the reference `name` says its tag or digest (`app:1`,
/// `app@sha256:…`, `host:5000/app:1`), not only its repository.
fn has_tag_or_digest(name: &str) -> bool {
    name.contains('@')
        || name
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'))
}

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("`{path}` is not an OCI image layout: {reason}")]
    NotALayout { path: PathBuf, reason: String },
    #[error("OCI layout `{path}` does not name its image{}; give a name to import it under", tag.as_ref().map(|tag| format!(" (only its tag, `{tag}`)")).unwrap_or_default())]
    NoName {
        path: PathBuf,
        /// The layout's `org.opencontainers.image.ref.name` when it is a bare tag.
        tag: Option<String>,
    },
    #[error("OCI layout `{path}` holds several images ({names}); give the reference of the one to import")]
    Ambiguous { path: PathBuf, names: String },
    #[error("OCI layout `{path}` has no linux/{architecture} image (it has: {available})")]
    NoMatchingPlatform {
        path: PathBuf,
        architecture: String,
        available: String,
    },
    #[error("`{path}` is longer than the {size} bytes its descriptor declares")]
    BlobTooLong { path: PathBuf, size: u64 },
    #[error("`{path}` is larger than the {limit} bytes locald accepts for it")]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("OCI layout `{path}` has {actual} {what}, more than the {limit} locald accepts")]
    LimitExceeded {
        path: PathBuf,
        what: &'static str,
        actual: u64,
        limit: u64,
    },
    #[error("`{path}` is not an OCI archive (a tar of an OCI image layout): {reason}")]
    NotAnArchive { path: PathBuf, reason: String },
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ImportError {
    /// Names `to` instead of the directory `from` (and a path under it) in the error: a
    /// layout extracted from an archive is the archive to whoever imported it.
    pub(crate) fn relocate(&mut self, from: &Path, to: &Path) {
        let path = match self {
            ImportError::NotALayout { path, .. }
            | ImportError::NotAnArchive { path, .. }
            | ImportError::NoName { path, .. }
            | ImportError::Ambiguous { path, .. }
            | ImportError::NoMatchingPlatform { path, .. }
            | ImportError::BlobTooLong { path, .. }
            | ImportError::TooLarge { path, .. }
            | ImportError::LimitExceeded { path, .. }
            | ImportError::Read { path, .. } => path,
        };
        if let Ok(rest) = path.strip_prefix(from) {
            *path = if rest.as_os_str().is_empty() {
                to.to_path_buf()
            } else {
                to.join(rest)
            };
        }
    }
}

impl ImageStore {
    /// Imports the image of an OCI layout directory. With `reference`, it is
    /// stored under that name (and picks the manifest whose ref-name
    /// annotation matches its tag when the layout holds several); without, the
    /// layout's `org.opencontainers.image.ref.name` must be a full reference.
    /// A `reference` without a tag takes the annotation's when it is a bare
    /// tag (as `skopeo copy … oci:DIR:1.0` writes it): `app` imports as
    /// `app:1.0`.
    pub fn import_oci_layout(
        &self,
        dir: &Path,
        reference: Option<&str>,
    ) -> Result<StoredImage, Error> {
        let given = reference;
        let reference = reference.map(Reference::parse).transpose()?;
        let _shared = lock(&self.paths.store_lock(), false)?;
        self.clean_stale_tmp()?;
        let layout = Layout { dir };
        let index: Index = layout.read_json(&dir.join("index.json"))?;
        if !dir.join("oci-layout").is_file() {
            return Err(layout.not_a_layout("it has no `oci-layout` file").into());
        }
        layout.check(
            "index entries",
            index.manifests.len() as u64,
            MAX_INDEX_MANIFESTS as u64,
        )?;
        let (entry, name) = layout.choose_entry(&index, reference.as_ref())?;
        let tag = bare_tag(entry);
        let reference = match (reference, given) {
            (Some(_), Some(given)) if !has_tag_or_digest(given) && tag.is_some() => {
                Reference::parse(&format!("{given}:{}", tag.unwrap_or_default()))?
            }
            (Some(reference), _) => reference,
            (None, _) => name.ok_or_else(|| ImportError::NoName {
                path: dir.to_path_buf(),
                tag,
            })?,
        };

        let mut manifest_descriptor = entry.clone();
        let mut manifest_bytes = layout.read_blob(&manifest_descriptor, MAX_MANIFEST_BYTES)?;
        if let ManifestOrIndex::Index(nested) = layout.parse_document(&manifest_bytes)? {
            layout.check(
                "index entries",
                nested.manifests.len() as u64,
                MAX_INDEX_MANIFESTS as u64,
            )?;
            manifest_descriptor = select_host_manifest(&nested)
                .ok_or_else(|| ImportError::NoMatchingPlatform {
                    path: dir.to_path_buf(),
                    architecture: host_architecture().to_string(),
                    available: describe_platforms(&nested),
                })?
                .clone();
            manifest_bytes = layout.read_blob(&manifest_descriptor, MAX_MANIFEST_BYTES)?;
        }
        let ManifestOrIndex::Manifest(manifest) = layout.parse_document(&manifest_bytes)? else {
            return Err(layout
                .not_a_layout("an index entry is itself an index")
                .into());
        };
        check_manifest_limits(&manifest).map_err(|e| layout.limit_error(e))?;
        let manifest_digest = store_bytes(
            &self.paths,
            &manifest_bytes,
            Some(&manifest_descriptor.digest),
        )?;
        for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
            layout.copy_blob_into(self, blob)?;
        }
        let config_bytes = layout.read_blob(&manifest.config, MAX_CONFIG_BYTES)?;
        let config_file: ConfigFile = serde_json::from_slice(&config_bytes).map_err(|e| {
            layout.not_a_layout(&format!(
                "its config {} is invalid: {e}",
                manifest.config.digest
            ))
        })?;
        let stored = self.install(
            &reference,
            &PreparedImage {
                manifest_digest,
                manifest,
                config_file,
            },
        )?;
        tracing::info!(reference = %stored.reference, dir = %dir.display(), "imported OCI layout");
        Ok(stored)
    }

    /// Imports a rootfs tarball (plain, gzip or zstd) as a one-layer image
    /// with an empty config, stored under `reference`.
    pub fn import_rootfs_tar(&self, tar: &Path, reference: &str) -> Result<StoredImage, Error> {
        let reference = Reference::parse(reference)?;
        let _shared = lock(&self.paths.store_lock(), false)?;
        self.clean_stale_tmp()?;
        let read_error = |source| ImportError::Read {
            path: tar.to_path_buf(),
            source,
        };
        let mut file = File::open(tar).map_err(read_error)?;
        let mut writer = BlobWriter::create(&self.paths)?;
        writer.copy_from(&mut file).map_err(|e| match e {
            StoreError::Io { source, .. } => Error::from(read_error(source)),
            other => other.into(),
        })?;
        let size = file.metadata().map_err(read_error)?.len();
        let layer_digest = writer.commit(&self.paths, None, None)?;

        // The config's diff_id is the digest of the uncompressed tar.
        let layer_path = self.paths.blob(&layer_digest)?;
        let layer_file = File::open(&layer_path).map_err(read_error)?;
        let mut head = [0u8; 4];
        let head_len =
            std::io::Read::read(&mut File::open(&layer_path).map_err(read_error)?, &mut head)
                .map_err(read_error)?;
        let media_type = match &head[..head_len] {
            [0x1f, 0x8b, ..] => MEDIA_TYPE_OCI_LAYER_GZIP,
            [0x28, 0xb5, 0x2f, 0xfd] => MEDIA_TYPE_OCI_LAYER_ZSTD,
            _ => MEDIA_TYPE_OCI_LAYER,
        };
        let mut hasher = HashWriter(Sha256::new());
        std::io::copy(
            &mut decompressing_reader(layer_file).map_err(read_error)?,
            &mut hasher,
        )
        .map_err(read_error)?;
        let diff_id = format!("sha256:{}", hex::encode(hasher.0.finalize()));

        let config_file = ConfigFile {
            created: None,
            architecture: host_architecture().to_string(),
            os: "linux".to_string(),
            config: Default::default(),
            rootfs: RootFs {
                kind: "layers".to_string(),
                diff_ids: vec![diff_id],
            },
        };
        let config_bytes =
            serde_json::to_vec(&config_file).map_err(|e| StoreError::CorruptBlob {
                digest: "config".into(),
                reason: e.to_string(),
            })?;
        let config_digest = store_bytes(&self.paths, &config_bytes, None)?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(MEDIA_TYPE_OCI_MANIFEST.to_string()),
            config: Descriptor::new(
                MEDIA_TYPE_OCI_CONFIG,
                config_digest,
                config_bytes.len() as u64,
            ),
            layers: vec![Descriptor::new(media_type, layer_digest, size)],
        };
        let manifest_bytes =
            serde_json::to_vec(&manifest).map_err(|e| StoreError::CorruptBlob {
                digest: "manifest".into(),
                reason: e.to_string(),
            })?;
        let manifest_digest = store_bytes(&self.paths, &manifest_bytes, None)?;
        let stored = self.install(
            &reference,
            &PreparedImage {
                manifest_digest,
                manifest,
                config_file,
            },
        )?;
        tracing::info!(reference = %stored.reference, tar = %tar.display(), "imported rootfs tarball");
        Ok(stored)
    }
}

/// Reads `path` whole if it has at most `limit` bytes (read through a
/// bound, so that a file that grows cannot make it endless). Only a regular
/// file is read: opening a FIFO nobody writes to would block for good.
pub(crate) fn read_at_most(path: &Path, limit: u64) -> Result<Vec<u8>, ImportError> {
    let read_error = |source| ImportError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = locald_shim_protocol::regular_file::open_regular(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > limit {
        return Err(ImportError::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(bytes)
}

struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Layout<'a> {
    dir: &'a Path,
}

impl Layout<'_> {
    fn not_a_layout(&self, reason: &str) -> ImportError {
        ImportError::NotALayout {
            path: self.dir.to_path_buf(),
            reason: reason.to_string(),
        }
    }

    fn check(&self, what: &'static str, actual: u64, limit: u64) -> Result<(), ImportError> {
        check_limit(what, actual, limit).map_err(|e| self.limit_error(e))
    }

    fn limit_error(&self, exceeded: Exceeded) -> ImportError {
        ImportError::LimitExceeded {
            path: self.dir.to_path_buf(),
            what: exceeded.what,
            actual: exceeded.actual,
            limit: exceeded.limit,
        }
    }

    fn read_json<T: serde::de::DeserializeOwned>(&self, path: &Path) -> Result<T, ImportError> {
        let bytes = read_at_most(path, MAX_MANIFEST_BYTES)?;
        serde_json::from_slice(&bytes)
            .map_err(|e| self.not_a_layout(&format!("`{}` is invalid: {e}", path.display())))
    }

    fn parse_document(&self, bytes: &[u8]) -> Result<ManifestOrIndex, ImportError> {
        ManifestOrIndex::from_slice(bytes)
            .map_err(|e| self.not_a_layout(&format!("a manifest is invalid: {e}")))
    }

    fn blob_path(&self, digest: &str) -> Result<PathBuf, ImportError> {
        if !is_sha256_digest(digest) {
            return Err(self.not_a_layout(&format!("unsupported digest `{digest}`")));
        }
        Ok(self
            .dir
            .join("blobs/sha256")
            .join(&digest["sha256:".len()..]))
    }

    /// Reads a manifest or config blob, at most `limit` bytes of it.
    fn read_blob(&self, descriptor: &Descriptor, limit: u64) -> Result<Vec<u8>, Error> {
        let path = self.blob_path(&descriptor.digest)?;
        let bytes = read_at_most(&path, limit)?;
        let actual = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        if actual != descriptor.digest {
            return Err(StoreError::DigestMismatch {
                expected: descriptor.digest.clone(),
                actual,
            }
            .into());
        }
        Ok(bytes)
    }

    /// Copies one blob into the store, verifying digest and size on the way.
    fn copy_blob_into(&self, store: &ImageStore, blob: &Descriptor) -> Result<(), Error> {
        if store.paths.blob(&blob.digest)?.exists() {
            return Ok(());
        }
        let path = self.blob_path(&blob.digest)?;
        // A layout is files: a FIFO (whose open would block until someone writes) or a device
        // is refused.
        let file = locald_shim_protocol::regular_file::open_regular(&path).map_err(|source| {
            ImportError::Read {
                path: path.clone(),
                source,
            }
        })?;
        let mut writer = BlobWriter::create(&store.paths)?;
        // One byte past the declared size is enough to know it is wrong: a
        // blob file that goes on (a FIFO, `/dev/zero`) is not read further.
        writer.copy_from(&mut file.take(blob.size.saturating_add(1)))?;
        if writer.written() > blob.size {
            return Err(ImportError::BlobTooLong {
                path,
                size: blob.size,
            }
            .into());
        }
        writer.commit(&store.paths, Some(&blob.digest), Some(blob.size))?;
        Ok(())
    }

    /// The index entry to import and the reference its annotation names, if
    /// that annotation is a full reference (a bare tag is not).
    fn choose_entry<'i>(
        &self,
        index: &'i Index,
        wanted: Option<&Reference>,
    ) -> Result<(&'i Descriptor, Option<Reference>), Error> {
        let name_of = |entry: &Descriptor| entry.annotations.get(ANNOTATION_REF_NAME).cloned();
        let as_reference = |name: &str| {
            (name.contains('/') || name.contains(':') || name.contains('@'))
                .then(|| Reference::parse(name).ok())
                .flatten()
        };
        let entry = match (index.manifests.as_slice(), wanted) {
            ([], _) => return Err(self.not_a_layout("its index lists no image").into()),
            ([only], _) => only,
            (entries, Some(wanted)) => entries
                .iter()
                .find(|entry| {
                    name_of(entry).is_some_and(|name| {
                        Some(name.as_str()) == wanted.tag()
                            || as_reference(&name).as_ref() == Some(wanted)
                    })
                })
                .ok_or_else(|| self.ambiguous(index))?,
            (_, None) => return Err(self.ambiguous(index).into()),
        };
        let name = name_of(entry).and_then(|name| as_reference(&name));
        Ok((entry, name))
    }

    fn ambiguous(&self, index: &Index) -> ImportError {
        let names: Vec<String> = index
            .manifests
            .iter()
            .map(|e| {
                e.annotations
                    .get(ANNOTATION_REF_NAME)
                    .cloned()
                    .unwrap_or_else(|| e.digest.clone())
            })
            .collect();
        ImportError::Ambiguous {
            path: self.dir.to_path_buf(),
            names: names.join(", "),
        }
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::testing::{
        busybox_image, malicious_image, ConfigOverride, LayerBuilder, LayerCompression,
        MaliciousKind,
    };

    fn store() -> (tempfile::TempDir, ImageStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::open(dir.path().join("images")).unwrap();
        (dir, store)
    }

    fn entries(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn imports_an_oci_layout_with_config_and_lists_it() {
        let (tmp, store) = store();
        let overrides = ConfigOverride {
            entrypoint: Some(vec!["/bin/echo".into()]),
            cmd: Some(vec!["hi".into()]),
            working_dir: Some("/tmp".into()),
            ..Default::default()
        };
        let image = busybox_image(&overrides).unwrap();
        let layout = tmp.path().join("layout");
        image.write_layout(&layout, "latest").unwrap();

        // A bare tag names no repository; the error says the tag.
        let error = store.import_oci_layout(&layout, None).unwrap_err();
        assert!(
            matches!(&error, Error::Import(ImportError::NoName { tag: Some(tag), .. }) if tag == "latest"),
            "{error}"
        );
        assert!(
            error.to_string().contains("(only its tag, `latest`)"),
            "{error}"
        );
        let stored = store
            .import_oci_layout(&layout, Some("local/busybox"))
            .unwrap();
        assert_eq!(stored.reference, "docker.io/local/busybox:latest");
        assert_eq!(stored.manifest_digest, image.manifest.digest);
        assert_eq!(stored.config.entrypoint, vec!["/bin/echo"]);
        assert_eq!(stored.config.cmd, vec!["hi"]);
        assert_eq!(stored.config.working_dir.as_deref(), Some("/tmp"));
        assert!(stored.rootfs.join("bin/busybox").is_file());
        assert_eq!(
            std::fs::read_link(stored.rootfs.join("bin/sh")).unwrap(),
            Path::new("busybox")
        );

        let resolved = store.resolve("local/busybox:latest").unwrap().unwrap();
        assert_eq!(resolved.rootfs, stored.rootfs);
        let by_digest = store
            .resolve(&format!("local/busybox@{}", image.manifest.digest))
            .unwrap()
            .unwrap();
        assert_eq!(by_digest.reference, stored.reference);
        let list = store.list().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].created.as_deref(), Some("2024-01-01T00:00:00Z"));
        assert!(list[0].size > 900_000, "{}", list[0].size);

        // Full-reference annotations are used as the name.
        let named = tmp.path().join("named");
        image
            .write_layout(&named, "localhost:5000/tools/bb:1")
            .unwrap();
        assert_eq!(
            store.import_oci_layout(&named, None).unwrap().reference,
            "localhost:5000/tools/bb:1"
        );
        // A name without a tag takes the layout's.
        let tagged = tmp.path().join("tagged");
        image.write_layout(&tagged, "1.5").unwrap();
        assert_eq!(
            store
                .import_oci_layout(&tagged, Some("local/app"))
                .unwrap()
                .reference,
            "docker.io/local/app:1.5"
        );
        assert_eq!(
            store
                .import_oci_layout(&tagged, Some("local/app:dev"))
                .unwrap()
                .reference,
            "docker.io/local/app:dev"
        );
    }

    #[test]
    fn a_layout_blob_is_not_read_past_its_declared_size() {
        let (tmp, store) = store();
        let mut layer = LayerBuilder::new();
        layer.file("hello", 0o644, b"world");
        let image = crate::testing::ImageBuilder::new()
            .layer(layer.build(LayerCompression::Gzip))
            .build();
        let layout = tmp.path().join("layout");
        image.write_layout(&layout, "latest").unwrap();
        // The layer file goes on for 64 GiB past its declared size (sparse: it costs nothing).
        let hex = &image.layers[0].digest["sha256:".len()..];
        let blob = layout.join("blobs/sha256").join(hex);
        std::fs::OpenOptions::new()
            .write(true)
            .open(&blob)
            .unwrap()
            .set_len(64 << 30)
            .unwrap();
        let error = store.import_oci_layout(&layout, Some("long")).unwrap_err();
        assert!(
            matches!(&error, Error::Import(ImportError::BlobTooLong { path, .. }) if *path == blob),
            "{error}"
        );
        assert!(entries(&store.root().join("tmp")).is_empty());
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn fifos_in_a_layout_are_refused_without_blocking() {
        // Nobody writes to these FIFOs: opening one to read would block the import for good
        // (and `image import` does not stop on Ctrl-C).
        let (tmp, store) = store();
        let image = busybox_image(&ConfigOverride::default()).unwrap();
        for (name, fifo_of) in [("index", "index.json"), ("blob", "blob")] {
            let layout = tmp.path().join(name);
            image.write_layout(&layout, "latest").unwrap();
            let fifo = if fifo_of == "blob" {
                let hex = &image.layers[0].digest["sha256:".len()..];
                layout.join("blobs/sha256").join(hex)
            } else {
                layout.join(fifo_of)
            };
            std::fs::remove_file(&fifo).unwrap();
            nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
            let error = store.import_oci_layout(&layout, Some(name)).unwrap_err();
            assert!(
                matches!(&error, Error::Import(ImportError::Read { path, source })
                    if *path == fifo && source.to_string().contains("a FIFO")),
                "{error}"
            );
        }
        assert!(entries(&store.root().join("tmp")).is_empty());
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn oversized_layout_documents_and_too_many_entries_are_refused() {
        let (tmp, store) = store();
        let layout = tmp.path().join("layout");
        let image = busybox_image(&ConfigOverride::default()).unwrap();
        image.write_layout(&layout, "latest").unwrap();
        let index = layout.join("index.json");
        let good_index = std::fs::read(&index).unwrap();
        // Sparse: a 4 MiB + 1 index costs nothing to make.
        std::fs::File::create(&index)
            .unwrap()
            .set_len(MAX_MANIFEST_BYTES + 1)
            .unwrap();
        let error = store.import_oci_layout(&layout, Some("big")).unwrap_err();
        assert!(
            matches!(&error, Error::Import(ImportError::TooLarge { path, limit })
                if *path == index && *limit == MAX_MANIFEST_BYTES),
            "{error}"
        );

        let mut many: serde_json::Value = serde_json::from_slice(&good_index).unwrap();
        let entry = many["manifests"][0].clone();
        many["manifests"] = vec![entry; MAX_INDEX_MANIFESTS + 1].into();
        std::fs::write(&index, serde_json::to_vec(&many).unwrap()).unwrap();
        let error = store.import_oci_layout(&layout, Some("many")).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("257 index entries, more than the 256"),
            "{error}"
        );
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn a_failing_layer_leaves_no_image_and_a_later_import_succeeds() {
        let (tmp, store) = store();
        let evil = tmp.path().join("evil");
        malicious_image(MaliciousKind::SymlinkEscape)
            .unwrap()
            .write_layout(&evil, "latest")
            .unwrap();
        let error = store.import_oci_layout(&evil, Some("evil")).unwrap_err();
        assert!(
            error.to_string().contains("escapes the image root"),
            "{error}"
        );
        assert!(store.resolve("evil").unwrap().is_none());
        assert!(store.list().unwrap().is_empty());
        assert!(entries(&store.root().join("rootfs")).is_empty());
        assert!(
            entries(&store.root().join("tmp")).is_empty(),
            "no half-written rootfs left"
        );

        let good = tmp.path().join("good");
        busybox_image(&ConfigOverride::default())
            .unwrap()
            .write_layout(&good, "latest")
            .unwrap();
        assert!(store.import_oci_layout(&good, Some("good")).is_ok());
        assert_eq!(entries(&store.root().join("rootfs")).len(), 1);
    }

    #[test]
    fn leftovers_of_dead_processes_are_cleaned_and_never_used() {
        let (tmp, store) = store();
        let leftover = store.root().join("tmp/999999999-1-1-rootfs");
        std::fs::create_dir_all(leftover.join("bin")).unwrap();
        let layout = tmp.path().join("layout");
        busybox_image(&ConfigOverride::default())
            .unwrap()
            .write_layout(&layout, "latest")
            .unwrap();
        store.import_oci_layout(&layout, Some("bb")).unwrap();
        assert!(!leftover.exists());
    }

    #[test]
    fn imports_rootfs_tarballs_plain_and_gzip() {
        let (tmp, store) = store();
        for (name, compression) in [
            ("plain", LayerCompression::None),
            ("gz", LayerCompression::Gzip),
        ] {
            let mut layer = LayerBuilder::new();
            layer
                .dir("etc", 0o755)
                .file("etc/os-release", 0o644, name.as_bytes());
            let tar = tmp.path().join(format!("{name}.tar"));
            std::fs::write(&tar, layer.build(compression).bytes).unwrap();
            let stored = store
                .import_rootfs_tar(&tar, &format!("imported/{name}"))
                .unwrap();
            assert_eq!(
                std::fs::read(stored.rootfs.join("etc/os-release")).unwrap(),
                name.as_bytes()
            );
            assert_eq!(stored.config, crate::ImageConfig::default());
        }
        assert_eq!(store.list().unwrap().len(), 2);
        let missing = store
            .import_rootfs_tar(&tmp.path().join("nope.tar"), "x")
            .unwrap_err();
        assert!(missing.to_string().contains("nope.tar"), "{missing}");
    }

    /// The disk space under `path`, as `du -s --bytes` of allocated blocks.
    fn du(path: &std::path::Path) -> u64 {
        use std::os::unix::fs::MetadataExt;
        let mut total = 0;
        let mut seen = std::collections::HashSet::new();
        let mut stack = vec![path.to_path_buf()];
        while let Some(path) = stack.pop() {
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if seen.insert((meta.dev(), meta.ino())) {
                total += meta.blocks() * 512;
            }
            if meta.is_dir() {
                for entry in std::fs::read_dir(&path).unwrap() {
                    stack.push(entry.unwrap().path());
                }
            }
        }
        total
    }

    #[test]
    fn remove_then_prune_frees_everything() {
        let (tmp, store) = store();
        let layout = tmp.path().join("layout");
        busybox_image(&ConfigOverride::default())
            .unwrap()
            .write_layout(&layout, "latest")
            .unwrap();
        store.import_oci_layout(&layout, Some("a")).unwrap();
        store.import_oci_layout(&layout, Some("b")).unwrap();
        store.remove("a").unwrap();
        assert!(matches!(
            store.remove("a"),
            Err(Error::Store(StoreError::NotStored(_)))
        ));
        let kept = store.prune().unwrap();
        assert_eq!(
            (kept.removed_blobs, kept.removed_rootfs),
            (0, 0),
            "b still uses everything"
        );
        assert!(store.resolve("b").unwrap().is_some());
        store.remove("b").unwrap();
        let stored = du(store.root());
        let report = store.prune().unwrap();
        // The unpacked tree counts, not only the blobs: all that `du` saw
        // go (a little slack for the index and lock files it rewrote).
        let left = du(store.root());
        assert!(
            report.freed_bytes + left + 64 * 1024 >= stored && report.freed_bytes <= stored,
            "freed {} of {stored}",
            report.freed_bytes
        );
        assert_eq!(report.removed_blobs, 3, "manifest, config, layer");
        assert_eq!(report.removed_rootfs, 1);
        assert!(entries(&store.root().join("blobs/sha256")).is_empty());
    }
}
