//! Bounded reads of the files buildpacks and builders write, and the bounds themselves.
//!
//! A buildpack is untrusted code: what it writes (`launch.toml`, `<layer>.toml`, env files,
//! its detect output) is read with a size limit, never through a link at the last component
//! (a link there would make the lifecycle read a file it was not meant to), and never from a
//! FIFO or a device (which would block or never end).

use std::io::Read;
use std::path::Path;

use locald_shim_protocol::regular_file::{open_regular_with, Links};

use crate::formats::FormatError;

/// What the lifecycle accepts from buildpacks, at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of one TOML file (`buildpack.toml`, `launch.toml`, `<layer>.toml`, a plan …).
    pub file_bytes: u64,
    /// Bytes of one env file's value.
    pub env_value_bytes: u64,
    /// Env files in one directory.
    pub env_files: usize,
    /// Bytes of one buildpack's detect output kept (the rest is counted, not kept).
    pub detect_output_bytes: usize,
    /// Layers (`<layer>.toml` files) of one buildpack.
    pub layers: usize,
    /// Processes, labels and slices of one `launch.toml` (each).
    pub launch_entries: usize,
    /// Entries of one build plan (provides, requires and alternatives together).
    pub plan_entries: usize,
    /// Groups one order may expand to, composites and their nesting included.
    pub groups: usize,
    /// Depth of composite buildpacks inside one another.
    pub composite_depth: usize,
}

impl Limits {
    pub const DEFAULT: Limits = Limits {
        file_bytes: 1 << 20,
        env_value_bytes: 1 << 20,
        env_files: 1024,
        detect_output_bytes: 64 << 10,
        layers: 256,
        launch_entries: 256,
        plan_entries: 1024,
        groups: 4096,
        composite_depth: 16,
    };
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::DEFAULT
    }
}

/// Reads `path` whole if it exists (`Ok(None)` if it does not), refusing a link at the last
/// component, anything but a regular file, more than `limit` bytes and non-UTF-8 text.
pub(crate) fn read_text(path: &Path, limit: u64) -> Result<Option<String>, FormatError> {
    read_bytes(path, limit)?
        .map(|bytes| {
            String::from_utf8(bytes).map_err(|_| FormatError::NotUtf8 {
                path: path.to_path_buf(),
            })
        })
        .transpose()
}

/// [`read_text`] without the UTF-8 check.
pub(crate) fn read_bytes(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, FormatError> {
    let file = match open_regular_with(std::fs::OpenOptions::new().read(true), path, Links::Refuse)
    {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(FormatError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let mut bytes = Vec::new();
    // One byte more than allowed tells "exactly at the limit" from "over it".
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| FormatError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > limit {
        return Err(FormatError::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_none_and_a_large_one_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_text(&dir.path().join("absent"), 10).unwrap().is_none());
        let path = dir.path().join("f");
        std::fs::write(&path, "0123456789").unwrap();
        assert_eq!(read_text(&path, 10).unwrap().as_deref(), Some("0123456789"));
        let error = read_text(&path, 9).unwrap_err();
        assert!(
            matches!(error, FormatError::TooLarge { limit: 9, .. }),
            "{error}"
        );
    }

    #[test]
    fn links_and_fifos_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "secret").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(matches!(
            read_text(&link, 100),
            Err(FormatError::Read { .. })
        ));
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        assert!(matches!(
            read_text(&fifo, 100),
            Err(FormatError::Read { .. })
        ));
    }

    #[test]
    fn non_utf8_text_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        assert!(matches!(
            read_text(&path, 100),
            Err(FormatError::NotUtf8 { .. })
        ));
    }
}
