//! Building OCI images in memory, entry by entry — including entries no
//! well-behaved tar writer would produce (`../` names, absolute names) — and
//! writing them out as OCI image layouts.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use sha2::{Digest as _, Sha256};

use super::FixtureError;
use crate::oci::{
    ConfigFile, Descriptor, Index, LayoutMarker, Manifest, Platform, RootFs, RuntimeConfig,
    ANNOTATION_REF_NAME, MEDIA_TYPE_OCI_CONFIG, MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_LAYER,
    MEDIA_TYPE_OCI_LAYER_GZIP, MEDIA_TYPE_OCI_LAYER_ZSTD, MEDIA_TYPE_OCI_MANIFEST,
};

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerCompression {
    None,
    Gzip,
    Zstd,
}

/// A tar stream assembled entry by entry. Names are written into the header
/// verbatim (no validation), so malicious layers can be expressed.
pub struct LayerBuilder {
    tar: tar::Builder<Vec<u8>>,
}

impl Default for LayerBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl LayerBuilder {
    pub fn new() -> Self {
        Self {
            tar: tar::Builder::new(Vec::new()),
        }
    }

    pub fn dir(&mut self, path: &str, mode: u32) -> &mut Self {
        self.entry(path, tar::EntryType::Directory, mode, None, &[])
    }

    pub fn file(&mut self, path: &str, mode: u32, content: &[u8]) -> &mut Self {
        self.entry(path, tar::EntryType::Regular, mode, None, content)
    }

    /// A regular file whose path may be longer than a tar header holds (written with a GNU
    /// long-name entry before it), for trees deeper than 100 bytes of path.
    pub fn file_long_path(&mut self, path: &str, mode: u32, content: &[u8]) -> &mut Self {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_700_000_000);
        header.set_size(content.len() as u64);
        self.tar
            .append_data(&mut header, path, content)
            .expect("appending to an in-memory tar cannot fail");
        self
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.entry(path, tar::EntryType::Symlink, 0o777, Some(target), &[])
    }

    /// A file owned by `uid:gid` (everything else is `0:0`).
    pub fn file_owned(
        &mut self,
        path: &str,
        mode: u32,
        (uid, gid): (u64, u64),
        content: &[u8],
    ) -> &mut Self {
        self.entry_owned(path, tar::EntryType::Regular, mode, (uid, gid), content)
    }

    /// A directory owned by `uid:gid`.
    pub fn dir_owned(&mut self, path: &str, mode: u32, (uid, gid): (u64, u64)) -> &mut Self {
        self.entry_owned(path, tar::EntryType::Directory, mode, (uid, gid), &[])
    }

    pub fn hardlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.entry(path, tar::EntryType::Link, 0o644, Some(target), &[])
    }

    /// `.wh.NAME` in `dir`: hides `dir/NAME` of lower layers.
    pub fn whiteout(&mut self, dir: &str, name: &str) -> &mut Self {
        let path = format!("{}/.wh.{name}", dir.trim_end_matches('/'));
        self.file(&path, 0o644, &[])
    }

    /// `dir/.wh..wh..opq`: hides everything lower layers put in `dir`.
    pub fn opaque(&mut self, dir: &str) -> &mut Self {
        let path = format!("{}/.wh..wh..opq", dir.trim_end_matches('/'));
        self.file(&path, 0o644, &[])
    }

    fn entry(
        &mut self,
        path: &str,
        kind: tar::EntryType,
        mode: u32,
        link: Option<&str>,
        content: &[u8],
    ) -> &mut Self {
        self.entry_full(path, kind, mode, (0, 0), link, content)
    }

    fn entry_owned(
        &mut self,
        path: &str,
        kind: tar::EntryType,
        mode: u32,
        owner: (u64, u64),
        content: &[u8],
    ) -> &mut Self {
        self.entry_full(path, kind, mode, owner, None, content)
    }

    fn entry_full(
        &mut self,
        path: &str,
        kind: tar::EntryType,
        mode: u32,
        (uid, gid): (u64, u64),
        link: Option<&str>,
        content: &[u8],
    ) -> &mut Self {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(uid);
        header.set_gid(gid);
        header.set_mtime(1_700_000_000);
        header.set_size(content.len() as u64);
        write_header_field(&mut header.as_old_mut().name, path);
        if let Some(link) = link {
            write_header_field(&mut header.as_old_mut().linkname, link);
        }
        header.set_cksum();
        self.tar
            .append(&header, content)
            .expect("appending to an in-memory tar cannot fail");
        self
    }

    /// Finishes the tar and compresses it.
    pub fn build(self, compression: LayerCompression) -> BuiltBlob {
        let tar = self
            .tar
            .into_inner()
            .expect("finishing an in-memory tar cannot fail");
        let diff_id = sha256(&tar);
        let (media_type, bytes) = match compression {
            LayerCompression::None => (MEDIA_TYPE_OCI_LAYER, tar),
            LayerCompression::Gzip => {
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                encoder.write_all(&tar).expect("in-memory gzip");
                (
                    MEDIA_TYPE_OCI_LAYER_GZIP,
                    encoder.finish().expect("in-memory gzip"),
                )
            }
            LayerCompression::Zstd => (
                MEDIA_TYPE_OCI_LAYER_ZSTD,
                zstd::encode_all(tar.as_slice(), 3).expect("in-memory zstd"),
            ),
        };
        BuiltBlob {
            media_type: media_type.to_string(),
            digest: sha256(&bytes),
            bytes,
            diff_id: Some(diff_id),
        }
    }
}

/// Long names do not fit ustar's 100 bytes; fixtures keep names short.
fn write_header_field(field: &mut [u8], value: &str) {
    assert!(
        value.len() < field.len(),
        "fixture tar name `{value}` is too long"
    );
    field.fill(0);
    field[..value.len()].copy_from_slice(value.as_bytes());
}

pub(super) fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A blob with its digest.
#[derive(Debug, Clone)]
pub struct BuiltBlob {
    pub media_type: String,
    pub digest: String,
    pub bytes: Vec<u8>,
    /// Digest of the uncompressed tar, for layers.
    pub diff_id: Option<String>,
}

impl BuiltBlob {
    fn descriptor(&self) -> Descriptor {
        Descriptor::new(
            &self.media_type,
            self.digest.clone(),
            self.bytes.len() as u64,
        )
    }
}

/// An image: its manifest, config and layers.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    pub manifest: BuiltBlob,
    pub config: BuiltBlob,
    pub layers: Vec<BuiltBlob>,
    pub platform: Platform,
}

/// A multi-platform index over several images.
#[derive(Debug, Clone)]
pub struct BuiltIndex {
    pub index: BuiltBlob,
    pub images: Vec<BuiltImage>,
}

/// Assembles layers and a config into a [`BuiltImage`].
pub struct ImageBuilder {
    layers: Vec<BuiltBlob>,
    config: RuntimeConfig,
    architecture: String,
}

impl Default for ImageBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ImageBuilder {
    pub fn new() -> Self {
        Self {
            layers: Vec::new(),
            config: RuntimeConfig::default(),
            architecture: crate::platform::host_architecture().to_string(),
        }
    }

    pub fn layer(mut self, layer: BuiltBlob) -> Self {
        self.layers.push(layer);
        self
    }

    pub fn config(mut self, config: RuntimeConfig) -> Self {
        self.config = config;
        self
    }

    pub fn architecture(mut self, architecture: &str) -> Self {
        self.architecture = architecture.to_string();
        self
    }

    pub fn build(self) -> BuiltImage {
        let platform = Platform {
            architecture: self.architecture.clone(),
            os: "linux".to_string(),
            variant: None,
        };
        let config_file = ConfigFile {
            created: Some("2024-01-01T00:00:00Z".to_string()),
            architecture: self.architecture,
            os: "linux".to_string(),
            config: self.config,
            rootfs: RootFs {
                kind: "layers".to_string(),
                diff_ids: self
                    .layers
                    .iter()
                    .filter_map(|l| l.diff_id.clone())
                    .collect(),
            },
        };
        let config_bytes = serde_json::to_vec(&config_file).expect("config serialises");
        let config = BuiltBlob {
            media_type: MEDIA_TYPE_OCI_CONFIG.to_string(),
            digest: sha256(&config_bytes),
            bytes: config_bytes,
            diff_id: None,
        };
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(MEDIA_TYPE_OCI_MANIFEST.to_string()),
            config: config.descriptor(),
            layers: self.layers.iter().map(BuiltBlob::descriptor).collect(),
        };
        let manifest_bytes = serde_json::to_vec(&manifest).expect("manifest serialises");
        BuiltImage {
            manifest: BuiltBlob {
                media_type: MEDIA_TYPE_OCI_MANIFEST.to_string(),
                digest: sha256(&manifest_bytes),
                bytes: manifest_bytes,
                diff_id: None,
            },
            config,
            layers: self.layers,
            platform,
        }
    }
}

impl BuiltIndex {
    /// An index listing `images` in the given order.
    pub fn new(images: Vec<BuiltImage>) -> Self {
        let index = Index {
            schema_version: 2,
            media_type: Some(MEDIA_TYPE_OCI_INDEX.to_string()),
            manifests: images
                .iter()
                .map(|image| {
                    let mut descriptor = image.manifest.descriptor();
                    descriptor.platform = Some(image.platform.clone());
                    descriptor
                })
                .collect(),
        };
        let bytes = serde_json::to_vec(&index).expect("index serialises");
        Self {
            index: BuiltBlob {
                media_type: MEDIA_TYPE_OCI_INDEX.to_string(),
                digest: sha256(&bytes),
                bytes,
                diff_id: None,
            },
            images,
        }
    }
}

impl BuiltImage {
    /// Writes an OCI image layout at `dir` whose `index.json` names this
    /// image `ref_name` (a tag such as `latest`, or a full reference).
    pub fn write_layout(&self, dir: &Path, ref_name: &str) -> Result<(), FixtureError> {
        let mut descriptor = self.manifest.descriptor();
        descriptor.platform = Some(self.platform.clone());
        write_layout(dir, descriptor, ref_name, self.blobs())
    }

    /// Writes an OCI archive at `path`: a tar of the layout [`BuiltImage::write_layout`]
    /// writes (as a `.cnb` buildpackage is).
    pub fn write_archive(&self, path: &Path, ref_name: &str) -> Result<(), FixtureError> {
        let io = io_error;
        let layout = tempfile::tempdir().map_err(io("create a directory for", path))?;
        self.write_layout(layout.path(), ref_name)?;
        let mut tar = tar::Builder::new(Vec::new());
        tar.append_dir_all(".", layout.path())
            .map_err(io("archive", layout.path()))?;
        let bytes = tar.into_inner().map_err(io("archive", layout.path()))?;
        std::fs::write(path, bytes).map_err(io("write", path))
    }

    fn blobs(&self) -> Vec<&BuiltBlob> {
        let mut blobs = vec![&self.manifest, &self.config];
        blobs.extend(&self.layers);
        blobs
    }
}

impl BuiltIndex {
    /// Writes an OCI image layout at `dir` holding the whole index.
    pub fn write_layout(&self, dir: &Path, ref_name: &str) -> Result<(), FixtureError> {
        let mut blobs = vec![&self.index];
        for image in &self.images {
            blobs.extend(image.blobs());
        }
        write_layout(dir, self.index.descriptor(), ref_name, blobs)
    }
}

/// The error of `action` on `path`, for `map_err`.
pub(super) fn io_error(
    action: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> FixtureError {
    let path = path.to_path_buf();
    move |source| FixtureError::Io {
        action,
        path,
        source,
    }
}

fn write_layout(
    dir: &Path,
    mut entry: Descriptor,
    ref_name: &str,
    blobs: Vec<&BuiltBlob>,
) -> Result<(), FixtureError> {
    let io = io_error;
    let blob_dir = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blob_dir).map_err(io("create", &blob_dir))?;
    for blob in blobs {
        let path = blob_dir.join(&blob.digest["sha256:".len()..]);
        std::fs::write(&path, &blob.bytes).map_err(io("write", &path))?;
    }
    entry.annotations = BTreeMap::from([(ANNOTATION_REF_NAME.to_string(), ref_name.to_string())]);
    let index = Index {
        schema_version: 2,
        media_type: Some(MEDIA_TYPE_OCI_INDEX.to_string()),
        manifests: vec![entry],
    };
    let marker = LayoutMarker {
        image_layout_version: "1.0.0".to_string(),
    };
    let index_path = dir.join("index.json");
    std::fs::write(
        &index_path,
        serde_json::to_vec(&index).expect("index serialises"),
    )
    .map_err(io("write", &index_path))?;
    let marker_path = dir.join("oci-layout");
    std::fs::write(
        &marker_path,
        serde_json::to_vec(&marker).expect("marker serialises"),
    )
    .map_err(io("write", &marker_path))?;
    Ok(())
}
