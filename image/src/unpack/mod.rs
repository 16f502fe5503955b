//! Applying image layers, in order, into one flattened rootfs directory.
//!
//! Layers are streamed from the store (gzip, zstd or plain tar, detected from
//! the content), whiteouts and opaque directories are applied, links, modes
//! and (as root) ownership are preserved, and every entry is placed through
//! [`resolve`] so that no entry can write outside the rootfs. Errors name the
//! layer digest and the offending entry.

mod apply;
mod resolve;

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use apply::LayerApplier;

/// Why a layer could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("layer {layer} entry `{entry}` escapes the image root")]
    Escape { layer: String, entry: String },
    #[error("layer {layer} entry `{entry}`: {reason}")]
    Invalid {
        layer: String,
        entry: String,
        reason: String,
    },
    #[error("layer {layer} entry `{entry}`: cannot {action}: {source}")]
    Io {
        layer: String,
        entry: String,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("layer {layer} is not a readable tar archive: {source}")]
    Archive {
        layer: String,
        #[source]
        source: std::io::Error,
    },
    #[error("layer {layer} has media type `{media_type}`, which locald cannot unpack")]
    UnsupportedMediaType { layer: String, media_type: String },
}

/// A layer blob to apply.
#[derive(Debug, Clone)]
pub(crate) struct LayerSource {
    pub digest: String,
    pub media_type: String,
    pub path: PathBuf,
}

/// Applies `layers` in order into `dest` (created if missing). On error `dest`
/// is left as is: the caller owns it and removes it.
pub(crate) fn unpack_layers(layers: &[LayerSource], dest: &Path) -> Result<(), UnpackError> {
    std::fs::create_dir_all(dest).map_err(|source| UnpackError::Io {
        layer: layers.first().map(|l| l.digest.clone()).unwrap_or_default(),
        entry: "/".to_string(),
        action: "create the rootfs directory",
        source,
    })?;
    for layer in layers {
        let reader = open_layer(layer)?;
        apply_layer(&layer.digest, reader, dest)?;
    }
    Ok(())
}

/// Applies one tar stream (already decompressed) into `dest`.
pub(crate) fn apply_layer(digest: &str, reader: impl Read, dest: &Path) -> Result<(), UnpackError> {
    let mut archive = tar::Archive::new(reader);
    let archive_error = |source| UnpackError::Archive {
        layer: digest.to_string(),
        source,
    };
    let mut applier = LayerApplier::new(digest, dest);
    for entry in archive.entries().map_err(archive_error)? {
        let entry = entry.map_err(archive_error)?;
        applier.apply(entry)?;
    }
    applier.finish()
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// Opens a layer blob with the right decompressor, chosen by magic bytes
/// (registries are not always truthful about media types).
pub(crate) fn open_layer(layer: &LayerSource) -> Result<Box<dyn Read>, UnpackError> {
    if layer.media_type.contains("encrypted") {
        return Err(UnpackError::UnsupportedMediaType {
            layer: layer.digest.clone(),
            media_type: layer.media_type.clone(),
        });
    }
    let archive_error = |source| UnpackError::Archive {
        layer: layer.digest.clone(),
        source,
    };
    let file = File::open(&layer.path).map_err(archive_error)?;
    decompressing_reader(file).map_err(archive_error)
}

/// Wraps `reader` in a gzip or zstd decoder when its first bytes say so.
pub fn decompressing_reader<R: Read + 'static>(reader: R) -> std::io::Result<Box<dyn Read>> {
    let mut buffered = BufReader::with_capacity(256 * 1024, reader);
    let head = std::io::BufRead::fill_buf(&mut buffered)?;
    if head.starts_with(GZIP_MAGIC) {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(buffered)))
    } else if head.starts_with(ZSTD_MAGIC) {
        Ok(Box::new(zstd::stream::read::Decoder::with_buffer(
            buffered,
        )?))
    } else {
        Ok(Box::new(buffered))
    }
}
