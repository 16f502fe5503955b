//! Writing blobs into the content-addressed store: bytes go to a temp file
//! while being hashed, and only a blob whose digest and size match what the
//! manifest promised is renamed into `blobs/sha256/<hex>`.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;

use sha2::{Digest as _, Sha256};

use super::paths::StorePaths;
use super::StoreError;

/// A blob being written; dropped without `commit`, it removes its temp file.
pub(crate) struct BlobWriter {
    tmp: PathBuf,
    file: Option<BufWriter<File>>,
    hasher: Sha256,
    written: u64,
}

impl BlobWriter {
    pub fn create(paths: &StorePaths) -> Result<Self, StoreError> {
        let tmp = paths.new_tmp_path("blob");
        let file = File::create(&tmp).map_err(|source| StoreError::Io {
            action: "create",
            path: tmp.clone(),
            source,
        })?;
        Ok(Self {
            tmp,
            file: Some(BufWriter::with_capacity(256 * 1024, file)),
            hasher: Sha256::new(),
            written: 0,
        })
    }

    pub fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.hasher.update(bytes);
        self.written += bytes.len() as u64;
        let result = match self.file.as_mut() {
            Some(file) => file.write_all(bytes),
            None => Err(std::io::Error::other("blob already committed")),
        };
        result.map_err(|source| self.io_error("write", source))
    }

    /// Copies everything from `reader`, hashing as it goes.
    pub fn copy_from(&mut self, reader: &mut impl Read) -> Result<(), StoreError> {
        let mut buffer = vec![0u8; 256 * 1024];
        loop {
            let n = match reader.read(&mut buffer) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(self.io_error("read into", source)),
            };
            self.write(&buffer[..n])?;
        }
    }

    /// How many bytes were written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The `sha256:` digest of what was written so far.
    pub fn digest(&self) -> String {
        format!("sha256:{}", hex::encode(self.hasher.clone().finalize()))
    }

    /// Verifies digest (and size when known) and moves the blob into place.
    /// Returns the digest.
    pub fn commit(
        mut self,
        paths: &StorePaths,
        expected_digest: Option<&str>,
        expected_size: Option<u64>,
    ) -> Result<String, StoreError> {
        let actual = self.digest();
        if let Some(expected) = expected_digest {
            if expected != actual {
                return Err(StoreError::DigestMismatch {
                    expected: expected.to_string(),
                    actual,
                });
            }
        }
        if let Some(expected) = expected_size {
            if expected != self.written {
                return Err(StoreError::SizeMismatch {
                    digest: actual,
                    expected,
                    actual: self.written,
                });
            }
        }
        if let Some(file) = self.file.take() {
            let file = file
                .into_inner()
                .map_err(|e| self.io_error("flush", e.into_error()))?;
            drop(file);
        }
        let target = paths.blob(&actual)?;
        std::fs::rename(&self.tmp, &target).map_err(|source| StoreError::Io {
            action: "store blob",
            path: target,
            source,
        })?;
        Ok(actual)
    }

    fn io_error(&self, action: &'static str, source: std::io::Error) -> StoreError {
        StoreError::Io {
            action,
            path: self.tmp.clone(),
            source,
        }
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.file.is_some() {
            // Not committed: the partial or rejected content must not linger.
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Stores `bytes` (a manifest or config already in memory) after verifying it.
pub(crate) fn store_bytes(
    paths: &StorePaths,
    bytes: &[u8],
    expected_digest: Option<&str>,
) -> Result<String, StoreError> {
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(bytes)));
    if let Some(expected) = expected_digest {
        if expected != digest {
            return Err(StoreError::DigestMismatch {
                expected: expected.to_string(),
                actual: digest,
            });
        }
    }
    if paths.blob(&digest)?.exists() {
        return Ok(digest);
    }
    let mut writer = BlobWriter::create(paths)?;
    writer.write(bytes)?;
    writer.commit(paths, Some(&digest), None)
}
