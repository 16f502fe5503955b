//! The last step shared by pull and both imports: given a manifest whose blobs
//! are all in the store, make sure its flattened rootfs exists (unpacked into
//! a temp dir, renamed into place only on success) and record the reference.

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

impl ImageStore {
    pub(crate) fn install(
        &self,
        reference: &Reference,
        image: &PreparedImage,
    ) -> Result<StoredImage, Error> {
        let rootfs = self.paths.rootfs(&image.manifest_digest)?;
        if rootfs.is_dir() {
            tracing::debug!(digest = %image.manifest_digest, "rootfs already unpacked");
        } else {
            self.unpack_rootfs(image, &rootfs)?;
        }
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

    fn unpack_rootfs(&self, image: &PreparedImage, rootfs: &std::path::Path) -> Result<(), Error> {
        let mut layers = Vec::with_capacity(image.manifest.layers.len());
        for layer in &image.manifest.layers {
            layers.push(LayerSource {
                digest: layer.digest.clone(),
                media_type: layer.media_type.clone(),
                path: self.paths.blob(&layer.digest)?,
            });
        }
        let staging = self.paths.new_tmp_path("rootfs");
        let started = std::time::Instant::now();
        if let Err(error) = unpack_layers(&layers, &staging) {
            // Nothing half-written may survive a failed unpack.
            let _ = remove_path(&staging);
            return Err(error.into());
        }
        match std::fs::rename(&staging, rootfs) {
            Ok(()) => {}
            // A concurrent pull of the same image won the race: use its copy.
            Err(_) if rootfs.is_dir() => remove_path(&staging)?,
            Err(source) => {
                let _ = remove_path(&staging);
                return Err(StoreError::Io {
                    action: "install rootfs",
                    path: rootfs.to_path_buf(),
                    source,
                }
                .into());
            }
        }
        tracing::info!(
            digest = %image.manifest_digest,
            layers = layers.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "unpacked image rootfs"
        );
        Ok(())
    }
}
