//! The last step shared by pull and both imports: given a manifest whose blobs
//! are all in the store, make sure its flattened rootfs exists (unpacked into
//! a temp dir, renamed into place only on success) and record the reference.
//! A pull that unpacked while downloading hands over its [`StagedRootfs`].

use std::path::{Path, PathBuf};

use super::refs::RefRecord;
use super::{remove_path, ImageStore, StoreError, StoredImage};
use crate::image_config::ImageConfig;
use crate::oci::{ConfigFile, Manifest};
use crate::reference::Reference;
use crate::unpack::{unpack_layers, LayerSource};
use crate::Error;

/// A manifest and its parsed config, all blobs already stored and verified.
#[derive(Debug, Clone)]
pub(crate) struct PreparedImage {
    pub manifest_digest: String,
    pub manifest: Manifest,
    pub config_file: ConfigFile,
}

/// A rootfs being unpacked under `tmp/`. Removed when dropped unless it was
/// moved into place: a failed or cancelled pull leaves no half image behind.
#[derive(Debug)]
pub(crate) struct StagedRootfs {
    path: Option<PathBuf>,
}

impl StagedRootfs {
    pub fn new(store: &ImageStore) -> Self {
        Self {
            path: Some(store.paths.new_tmp_path("rootfs")),
        }
    }

    pub fn path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(""))
    }
}

impl AsRef<Path> for StagedRootfs {
    fn as_ref(&self) -> &Path {
        self.path()
    }
}

impl Drop for StagedRootfs {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = remove_path(&path);
        }
    }
}

impl ImageStore {
    /// Makes sure the image's rootfs exists (unpacking it from the stored
    /// blobs if needed) and records `reference`.
    pub(crate) fn install(
        &self,
        reference: &Reference,
        image: &PreparedImage,
    ) -> Result<StoredImage, Error> {
        let rootfs = self.paths.rootfs(&image.manifest_digest)?;
        if rootfs.is_dir() {
            tracing::debug!(digest = %image.manifest_digest, "rootfs already unpacked");
        } else {
            let staged = self.unpack_rootfs(image)?;
            self.place_rootfs(staged, &rootfs)?;
        }
        self.record_install(reference, image, rootfs)
    }

    /// Like [`install`](Self::install) with a rootfs the caller has already
    /// unpacked completely into `staged` (a pipelined pull).
    pub(crate) fn install_staged(
        &self,
        reference: &Reference,
        image: &PreparedImage,
        staged: StagedRootfs,
    ) -> Result<StoredImage, Error> {
        let rootfs = self.paths.rootfs(&image.manifest_digest)?;
        self.place_rootfs(staged, &rootfs)?;
        self.record_install(reference, image, rootfs)
    }

    /// The layer blobs of `image`, in order, as unpack sources.
    pub(crate) fn layer_sources(&self, image: &Manifest) -> Result<Vec<LayerSource>, Error> {
        let mut layers = Vec::with_capacity(image.layers.len());
        for layer in &image.layers {
            layers.push(LayerSource {
                digest: layer.digest.clone(),
                media_type: layer.media_type.clone(),
                path: self.paths.blob(&layer.digest)?,
            });
        }
        Ok(layers)
    }

    fn record_install(
        &self,
        reference: &Reference,
        image: &PreparedImage,
        rootfs: PathBuf,
    ) -> Result<StoredImage, Error> {
        let manifest = &image.manifest;
        let config = ImageConfig::from_config_file(&image.config_file);
        let record = RefRecord {
            manifest_digest: image.manifest_digest.clone(),
            config_digest: manifest.config.digest.clone(),
            layers: manifest.layers.iter().map(|l| l.digest.clone()).collect(),
            size: manifest.config.size + manifest.layers.iter().map(|l| l.size).sum::<u64>(),
            created: image.config_file.created.clone(),
            config: config.clone(),
        };
        self.record_ref(reference, record)?;
        Ok(StoredImage {
            reference: reference.to_string(),
            manifest_digest: image.manifest_digest.clone(),
            config,
            rootfs,
        })
    }

    fn unpack_rootfs(&self, image: &PreparedImage) -> Result<StagedRootfs, Error> {
        let layers = self.layer_sources(&image.manifest)?;
        let staged = StagedRootfs::new(self);
        let started = std::time::Instant::now();
        // On error `staged` is dropped, which removes the partial tree.
        unpack_layers(&layers, staged.path(), self.unpack_limits)?;
        tracing::info!(
            digest = %image.manifest_digest,
            layers = layers.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "unpacked image rootfs"
        );
        Ok(staged)
    }

    /// Renames a complete staged rootfs to its final place.
    fn place_rootfs(&self, mut staged: StagedRootfs, rootfs: &Path) -> Result<(), Error> {
        let Some(staging) = staged.path.take() else {
            return Ok(());
        };
        match std::fs::rename(&staging, rootfs) {
            Ok(()) => Ok(()),
            // A concurrent pull of the same image won the race: use its copy.
            Err(_) if rootfs.is_dir() => Ok(remove_path(&staging)?),
            Err(source) => {
                let _ = remove_path(&staging);
                Err(StoreError::Io {
                    action: "install rootfs",
                    path: rootfs.to_path_buf(),
                    source,
                }
                .into())
            }
        }
    }
}
