//! The refs index (`refs.json`): which reference names which manifest, plus
//! everything `resolve`/`list` need so they never have to open blobs.
//!
//! Written by rename from a temp file, so readers (which take no lock) always
//! see a complete index.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::paths::StorePaths;
use super::{lock, StoreError};
use crate::image_config::ImageConfig;

/// One stored reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RefRecord {
    pub manifest_digest: String,
    pub config_digest: String,
    pub layers: Vec<String>,
    /// Compressed size of config + layers, as the manifest states it.
    pub size: u64,
    pub created: Option<String>,
    pub config: ImageConfig,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct RefsIndex {
    pub images: BTreeMap<String, RefRecord>,
}

impl RefsIndex {
    pub fn load(paths: &StorePaths) -> Result<Self, StoreError> {
        let path = paths.refs_file();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| StoreError::CorruptRefs { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(StoreError::Io {
                action: "read",
                path,
                source,
            }),
        }
    }

    fn save(&self, paths: &StorePaths) -> Result<(), StoreError> {
        let target = paths.refs_file();
        let tmp = paths.new_tmp_path("refs.json");
        let io_error = |action, path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io {
                action,
                path,
                source,
            }
        };
        let bytes = serde_json::to_vec_pretty(self).map_err(|source| StoreError::CorruptRefs {
            path: target.clone(),
            source,
        })?;
        let mut file = std::fs::File::create(&tmp).map_err(io_error("create", &tmp))?;
        file.write_all(&bytes).map_err(io_error("write", &tmp))?;
        file.sync_all().map_err(io_error("sync", &tmp))?;
        std::fs::rename(&tmp, &target).map_err(io_error("rename", &target))
    }

    /// Runs `change` on the current index under the refs lock and saves it.
    pub fn update<T>(
        paths: &StorePaths,
        change: impl FnOnce(&mut RefsIndex) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _guard = lock::lock(&paths.refs_lock(), true)?;
        let mut index = Self::load(paths)?;
        let result = change(&mut index)?;
        index.save(paths)?;
        Ok(result)
    }
}
