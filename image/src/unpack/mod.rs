//! Applying image layers, in order, into one flattened rootfs directory.
//!
//! Layers are streamed from the store (gzip, zstd or plain tar, detected from
//! the content), whiteouts and opaque directories are applied, links, modes
//! and (as root) ownership are preserved, and every entry is placed through
//! [`resolve`] so that no entry can write outside the rootfs. Errors name the
//! layer digest and the offending entry. [`PipelinedUnpack`] applies layers
//! while a pull is still downloading the ones above them.
//!
//! What an image may write is bounded ([`UnpackLimits`]): bytes of content,
//! entries, free space left. GNU sparse files are created sparse (their holes
//! take no space); PAX sparse files are refused. Block and character device
//! nodes are never created from a layer: a container gets its `/dev` from
//! the runtime, and a device node in an image is at best useless and at
//! worst a door to the host's hardware (`/dev/mem`, disks) for whoever can
//! reach the rootfs.

mod apply;
mod budget;
mod metadata;
mod pipeline;
mod resolve;

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use apply::LayerApplier;
pub(crate) use budget::Budget;
use budget::Refusal;
pub use budget::{
    UnpackLimits, MAX_UNPACKED_BYTES, MAX_UNPACKED_ENTRIES, MIN_FREE_BYTES, MIN_FREE_INODES,
};
pub use metadata::MAX_ENTRY_METADATA_BYTES;
use metadata::{MetadataCounter, MetadataGuard};
pub(crate) use pipeline::PipelinedUnpack;

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
    #[error("unpacking stopped: the pull ended before every layer was unpacked")]
    Aborted,
    #[error(
        "layer {layer} entry `{entry}`: the image unpacks to more than {limit} bytes \
         (locald's limit)"
    )]
    TooLarge {
        layer: String,
        entry: String,
        limit: u64,
    },
    #[error(
        "layer {layer} entry `{entry}`: the image has more than {limit} entries (locald's limit)"
    )]
    TooManyEntries {
        layer: String,
        entry: String,
        limit: u64,
    },
    #[error(
        "layer {layer} entry `{entry}`: not enough free space in `{path}`: {available} bytes \
         available, {needed} needed to unpack and leave locald's margin"
    )]
    NoSpace {
        layer: String,
        entry: String,
        path: PathBuf,
        available: u64,
        needed: u64,
    },
    #[error(
        "layer {layer} entry `{entry}`: not enough free inodes in `{path}`: {available} \
         available, locald leaves at least {margin}"
    )]
    NoInodes {
        layer: String,
        entry: String,
        path: PathBuf,
        available: u64,
        margin: u64,
    },
    #[error("the unpack task failed: {0}")]
    Task(String),
}

/// A layer blob to apply.
#[derive(Debug, Clone)]
pub(crate) struct LayerSource {
    pub digest: String,
    pub media_type: String,
    pub path: PathBuf,
}

/// Applies `layers` in order into `dest` (created if missing), within
/// `limits`. On error `dest` is left as is: the caller owns it and removes it.
pub(crate) fn unpack_layers(
    layers: &[LayerSource],
    dest: &Path,
    limits: UnpackLimits,
) -> Result<(), UnpackError> {
    std::fs::create_dir_all(dest).map_err(|source| UnpackError::Io {
        layer: layers.first().map(|l| l.digest.clone()).unwrap_or_default(),
        entry: "/".to_string(),
        action: "create the rootfs directory",
        source,
    })?;
    let mut budget = Budget::new(limits);
    for layer in layers {
        let reader = open_layer(layer)?;
        apply_layer(&layer.digest, reader, dest, &mut budget)?;
    }
    Ok(())
}

/// Applies one tar stream (already decompressed) into `dest`, charging what
/// it writes to `budget`.
pub(crate) fn apply_layer(
    digest: &str,
    reader: impl Read,
    dest: &Path,
    budget: &mut Budget,
) -> Result<(), UnpackError> {
    let counter = MetadataCounter::new(MAX_ENTRY_METADATA_BYTES);
    let mut archive = tar::Archive::new(MetadataGuard::new(reader, counter.clone()));
    let archive_error = |source| UnpackError::Archive {
        layer: digest.to_string(),
        source,
    };
    let mut applier = LayerApplier::new(digest, dest, budget);
    for entry in archive.entries().map_err(archive_error)? {
        let mut entry = entry.map_err(archive_error)?;
        counter.pause();
        applier.apply(&mut entry)?;
        // Whatever the applier left unread is data, not metadata: skip it
        // here, uncounted, rather than in the archive's next read.
        std::io::copy(&mut entry, &mut std::io::sink()).map_err(archive_error)?;
        counter.resume();
    }
    applier.finish()
}

/// Applies one tar archive (plain, gzip or zstd) named `name` in errors into the existing
/// directory `dest`, as an image layer is applied: no entry can write outside `dest`
/// (`..`, absolute paths and links are resolved inside it), no device node is made, and
/// what it writes is bounded by `limits`. For archives that are not image layers but must
/// be unpacked as safely (a build cache's layers, restored into the next build).
pub fn unpack_archive(
    name: &str,
    reader: impl Read + 'static,
    dest: &Path,
    limits: UnpackLimits,
) -> Result<(), UnpackError> {
    let archive_error = |source| UnpackError::Archive {
        layer: name.to_string(),
        source,
    };
    let reader = decompressing_reader(reader).map_err(archive_error)?;
    apply_layer(name, reader, dest, &mut Budget::new(limits))
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::testing::{LayerBuilder, LayerCompression, MaliciousKind};

    fn apply(root: &Path, layer: LayerBuilder) -> Result<(), UnpackError> {
        let blob = layer.build(LayerCompression::None);
        let mut budget = Budget::new(UnpackLimits::default());
        apply_layer(&blob.digest, blob.bytes.as_slice(), root, &mut budget)
    }

    #[test]
    fn an_archive_unpacks_inside_its_directory_only() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("dest");
        std::fs::create_dir(&dest).unwrap();
        let mut layer = LayerBuilder::new();
        layer.dir("layers", 0o755).file("layers/f", 0o644, b"x");
        let blob = layer.build(LayerCompression::Gzip);
        unpack_archive(
            "cache",
            std::io::Cursor::new(blob.bytes),
            &dest,
            UnpackLimits::default(),
        )
        .unwrap();
        assert_eq!(std::fs::read(dest.join("layers/f")).unwrap(), b"x");

        let mut hostile = LayerBuilder::new();
        hostile.symlink("escape", "../../../../../../tmp").file(
            MaliciousKind::SymlinkEscape.entry(),
            0o644,
            b"escaped\n",
        );
        let blob = hostile.build(LayerCompression::None);
        let error = unpack_archive(
            "cache",
            std::io::Cursor::new(blob.bytes),
            &dest,
            UnpackLimits::default(),
        )
        .unwrap_err();
        assert!(matches!(error, UnpackError::Escape { .. }), "{error}");
        assert!(!Path::new("/tmp/escaped-symlink").exists());
    }

    #[test]
    fn whiteouts_and_opaque_directories() {
        let root = tempfile::tempdir().unwrap();
        let mut lower = LayerBuilder::new();
        lower
            .dir("a", 0o755)
            .file("a/gone", 0o644, b"x")
            .file("a/kept", 0o644, b"x")
            .dir("o", 0o755)
            .dir("o/sub", 0o755)
            .file("o/sub/old", 0o644, b"x")
            .file("o/old", 0o644, b"x");
        apply(root.path(), lower).unwrap();
        let mut upper = LayerBuilder::new();
        upper
            .whiteout("a", "gone")
            .whiteout("missing-dir", "whatever")
            .dir("o", 0o755)
            .file("o/new", 0o644, b"y")
            .opaque("o");
        apply(root.path(), upper).unwrap();
        assert!(!root.path().join("a/gone").exists());
        assert!(root.path().join("a/kept").exists());
        assert!(
            root.path().join("o/new").exists(),
            "entries of the opaque layer itself stay"
        );
        assert!(!root.path().join("o/old").exists());
        assert!(!root.path().join("o/sub").exists());
        assert!(!root.path().join("a/.wh.gone").exists());
    }

    #[test]
    fn links_modes_and_replacement() {
        let root = tempfile::tempdir().unwrap();
        let mut layer = LayerBuilder::new();
        layer
            .dir("bin", 0o755)
            .file("bin/tool", 0o4755, b"#!")
            .symlink("bin/alias", "tool")
            .hardlink("bin/hard", "bin/tool")
            .dir("ro", 0o555)
            .file("ro/inside", 0o600, b"z")
            .symlink("etc", "/")
            .file("etc/through-link", 0o644, b"in root");
        apply(root.path(), layer).unwrap();
        let tool = std::fs::metadata(root.path().join("bin/tool")).unwrap();
        assert_eq!(tool.mode() & 0o7777, 0o4755);
        assert_eq!(
            std::fs::read_link(root.path().join("bin/alias")).unwrap(),
            Path::new("tool")
        );
        assert_eq!(
            std::fs::metadata(root.path().join("bin/hard"))
                .unwrap()
                .ino(),
            tool.ino()
        );
        assert_eq!(
            std::fs::metadata(root.path().join("ro")).unwrap().mode() & 0o777,
            0o555
        );
        assert_eq!(std::fs::read(root.path().join("ro/inside")).unwrap(), b"z");
        // `/etc -> /` resolves to the rootfs root, not the host's.
        assert_eq!(
            std::fs::read(root.path().join("through-link")).unwrap(),
            b"in root"
        );

        // A later layer replaces a symlink with a file without writing through it.
        let mut upper = LayerBuilder::new();
        upper
            .file("bin/alias", 0o644, b"now a file")
            .dir("bin/tool", 0o755);
        apply(root.path(), upper).unwrap();
        assert_eq!(
            std::fs::read(root.path().join("bin/alias")).unwrap(),
            b"now a file"
        );
        assert!(root.path().join("bin/tool").is_dir());
        assert_eq!(std::fs::read(root.path().join("bin/hard")).unwrap(), b"#!");
    }

    #[test]
    fn modes_and_owners_are_exact_whether_or_not_chmod_and_chown_are_skipped() {
        let root = tempfile::tempdir().unwrap();
        let as_root = nix::unistd::geteuid().is_root();
        let mut lower = LayerBuilder::new();
        lower
            .dir_owned("sg", 0o2775, (0, 4242))
            .dir("plain", 0o755)
            .file("plain/replaced", 0o644, b"old")
            .dir("plain/dir-then-file", 0o755)
            .file("plain/dir-then-file/child", 0o644, b"x");
        apply(root.path(), lower).unwrap();
        let mut upper = LayerBuilder::new();
        upper
            // In a setgid directory a new file takes the directory's group:
            // an entry asking for group 0 must still get group 0.
            .file("sg/root-group", 0o644, b"a")
            .file_owned("sg/dir-group", 0o644, (0, 4242), b"b")
            .file("plain/umasked-bits", 0o666, b"c")
            .file("plain/setuid", 0o4755, b"d")
            .file_owned("plain/user", 0o600, (1000, 1001), b"e")
            .file("plain/read-only", 0o444, b"f")
            .file("plain/replaced", 0o640, b"new")
            .file("plain/dir-then-file", 0o644, b"file now");
        apply(root.path(), upper).unwrap();
        let meta = |name: &str| std::fs::symlink_metadata(root.path().join(name)).unwrap();
        for (name, mode) in [
            ("sg/root-group", 0o644),
            ("sg/dir-group", 0o644),
            ("plain/umasked-bits", 0o666),
            ("plain/setuid", 0o4755),
            ("plain/user", 0o600),
            ("plain/read-only", 0o444),
            ("plain/replaced", 0o640),
            ("plain/dir-then-file", 0o644),
        ] {
            assert_eq!(meta(name).mode() & 0o7777, mode, "{name}");
        }
        assert_eq!(
            std::fs::read(root.path().join("plain/read-only")).unwrap(),
            b"f"
        );
        assert_eq!(
            std::fs::read(root.path().join("plain/replaced")).unwrap(),
            b"new"
        );
        assert_eq!(
            std::fs::read(root.path().join("plain/dir-then-file")).unwrap(),
            b"file now"
        );
        assert_eq!(meta("plain/setuid").mtime(), 1_700_000_000);
        if as_root {
            assert_eq!(meta("sg").gid(), 4242);
            assert_eq!(meta("sg/root-group").gid(), 0);
            assert_eq!(meta("sg/dir-group").gid(), 4242);
            assert_eq!(
                (meta("plain/user").uid(), meta("plain/user").gid()),
                (1000, 1001)
            );
            assert_eq!(meta("plain/setuid").uid(), 0);
        }
    }

    #[test]
    fn every_escape_is_refused_and_names_layer_and_entry() {
        let outside = tempfile::tempdir().unwrap();
        for kind in MaliciousKind::ALL {
            let parent = tempfile::tempdir_in(outside.path()).unwrap();
            let root = parent.path().join("deep/er/root");
            std::fs::create_dir_all(&root).unwrap();
            let image = crate::testing::malicious_image(kind).unwrap();
            let layers: Vec<LayerSource> = image
                .layers
                .iter()
                .enumerate()
                .map(|(i, layer)| {
                    let path = parent.path().join(format!("layer{i}"));
                    std::fs::write(&path, &layer.bytes).unwrap();
                    LayerSource {
                        digest: layer.digest.clone(),
                        media_type: layer.media_type.clone(),
                        path,
                    }
                })
                .collect();
            let error = unpack_layers(&layers, &root, UnpackLimits::default()).unwrap_err();
            let message = error.to_string();
            assert!(
                message.contains(&image.layers[1].digest) && message.contains(kind.entry()),
                "{kind:?}: {message}"
            );
            if kind != MaliciousKind::HardlinkEscape {
                assert!(
                    matches!(error, UnpackError::Escape { .. }),
                    "{kind:?}: {message}"
                );
                assert!(message.contains("escapes the image root"), "{message}");
            }
            for name in [
                "escaped-dotdot",
                "escaped-absolute",
                "escaped-symlink",
                "escaped-hardlink",
            ] {
                for dir in [
                    parent.path().to_path_buf(),
                    parent.path().join("deep"),
                    std::path::PathBuf::from("/tmp"),
                    std::path::PathBuf::from("/"),
                ] {
                    assert!(
                        !dir.join(name).exists(),
                        "{kind:?} wrote {}",
                        dir.join(name).display()
                    );
                }
            }
        }
    }

    /// A raw tar, for entries `LayerBuilder` does not make.
    fn raw_tar(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        build(&mut builder);
        builder.into_inner().unwrap()
    }

    fn header(path: &str, kind: tar::EntryType, size: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_path(path).unwrap();
        header.set_entry_type(kind);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_size(size);
        header.set_mtime(1_700_000_000);
        header
    }

    fn apply_raw(root: &Path, tar: &[u8], limits: UnpackLimits) -> Result<(), UnpackError> {
        let mut budget = Budget::new(limits);
        apply_layer("sha256:raw", tar, root, &mut budget)
    }

    #[test]
    fn a_gnu_sparse_file_of_100_gib_is_created_sparse() {
        const LOGICAL: u64 = 100 << 30;
        let data = vec![0x5a_u8; 4096];
        let tar = raw_tar(|builder| {
            let mut header = header("big", tar::EntryType::GNUSparse, data.len() as u64);
            let gnu = header.as_gnu_mut().unwrap();
            gnu.set_real_size(LOGICAL);
            gnu.sparse[0].set_offset(LOGICAL - data.len() as u64);
            gnu.sparse[0].set_length(data.len() as u64);
            header.set_cksum();
            builder.append(&header, data.as_slice()).unwrap();
        });
        assert!(tar.len() < 16 << 10, "the layer itself is tiny");
        let root = tempfile::tempdir().unwrap();
        apply_raw(root.path(), &tar, UnpackLimits::default()).unwrap();
        let big = root.path().join("big");
        let meta = std::fs::metadata(&big).unwrap();
        assert_eq!(meta.len(), LOGICAL);
        assert!(
            meta.blocks() * 512 < 1 << 20,
            "{} bytes allocated",
            meta.blocks() * 512
        );
        assert_eq!(meta.mode() & 0o7777, 0o644);
        let mut file = File::open(&big).unwrap();
        let mut tail = vec![0u8; data.len()];
        std::io::Seek::seek(&mut file, std::io::SeekFrom::End(-(data.len() as i64))).unwrap();
        file.read_exact(&mut tail).unwrap();
        assert_eq!(tail, data);
    }

    #[test]
    fn pax_sparse_files_are_refused() {
        let tar = raw_tar(|builder| {
            builder
                .append_pax_extensions([
                    ("GNU.sparse.major", b"1".as_slice()),
                    ("GNU.sparse.minor", b"0".as_slice()),
                    ("GNU.sparse.name", b"big".as_slice()),
                    ("GNU.sparse.realsize", b"107374182400".as_slice()),
                ])
                .unwrap();
            let mut header = header("GNUSparseFile.0/big", tar::EntryType::Regular, 512);
            header.set_cksum();
            builder.append(&header, [0u8; 512].as_slice()).unwrap();
        });
        let root = tempfile::tempdir().unwrap();
        let message = apply_raw(root.path(), &tar, UnpackLimits::default())
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("GNUSparseFile.0/big") && message.contains("PAX sparse"),
            "{message}"
        );
    }

    #[test]
    fn device_nodes_are_never_created_fifos_are() {
        let root = tempfile::tempdir().unwrap();
        let mut lower = LayerBuilder::new();
        lower.dir("dev", 0o755).file("dev/was-a-file", 0o644, b"x");
        apply(root.path(), lower).unwrap();
        let tar = raw_tar(|builder| {
            for (path, kind, major, minor) in [
                ("dev/null", tar::EntryType::Char, 1, 3),
                ("dev/mem", tar::EntryType::Char, 1, 1),
                ("dev/sda", tar::EntryType::Block, 8, 0),
                ("dev/whiteout-like", tar::EntryType::Char, 0, 0),
                ("dev/was-a-file", tar::EntryType::Char, 1, 1),
                ("dev/fifo", tar::EntryType::Fifo, 0, 0),
            ] {
                let mut header = header(path, kind, 0);
                header.set_device_major(major).unwrap();
                header.set_device_minor(minor).unwrap();
                header.set_cksum();
                builder.append(&header, std::io::empty()).unwrap();
            }
        });
        apply_raw(root.path(), &tar, UnpackLimits::default()).unwrap();
        let dev = root.path().join("dev");
        let left: Vec<_> = std::fs::read_dir(&dev)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, vec!["fifo".to_string()], "as root too");
        let fifo = std::fs::symlink_metadata(dev.join("fifo")).unwrap();
        assert!(std::os::unix::fs::FileTypeExt::is_fifo(&fifo.file_type()));
    }

    fn limits(max_bytes: u64, max_entries: u64, min_free_bytes: u64) -> UnpackLimits {
        UnpackLimits {
            max_bytes,
            max_entries,
            min_free_bytes,
            min_free_inodes: 0,
        }
    }

    #[test]
    fn content_entries_and_free_space_are_bounded() {
        let mut layer = LayerBuilder::new();
        layer
            .dir("d", 0o755)
            .file("d/a", 0o644, &[1u8; 600])
            .file("d/b", 0o644, &[2u8; 600]);
        let tar = layer.build(LayerCompression::None).bytes;

        let root = tempfile::tempdir().unwrap();
        let error = apply_raw(root.path(), &tar, limits(1000, 100, 0)).unwrap_err();
        assert!(
            matches!(&error, UnpackError::TooLarge { entry, limit: 1000, .. } if entry == "d/b"),
            "{error}"
        );
        assert!(
            error.to_string().contains("more than 1000 bytes"),
            "{error}"
        );
        assert!(!root.path().join("d/b").exists(), "refused before writing");

        let root = tempfile::tempdir().unwrap();
        let error = apply_raw(root.path(), &tar, limits(1 << 20, 2, 0)).unwrap_err();
        assert!(
            matches!(&error, UnpackError::TooManyEntries { limit: 2, .. }),
            "{error}"
        );

        let root = tempfile::tempdir().unwrap();
        let error = apply_raw(root.path(), &tar, limits(1 << 20, 100, u64::MAX / 4)).unwrap_err();
        assert!(
            matches!(&error, UnpackError::NoSpace { path, .. } if path == root.path()),
            "{error}"
        );
        assert!(
            error.to_string().contains("not enough free space"),
            "{error}"
        );

        // The budget spans the layers of one image.
        let parent = tempfile::tempdir().unwrap();
        let layers: Vec<LayerSource> = (0..2)
            .map(|i| {
                let mut layer = LayerBuilder::new();
                layer.file(&format!("f{i}"), 0o644, &[0u8; 600]);
                let blob = layer.build(LayerCompression::Gzip);
                let path = parent.path().join(format!("layer{i}"));
                std::fs::write(&path, &blob.bytes).unwrap();
                LayerSource {
                    digest: blob.digest,
                    media_type: blob.media_type,
                    path,
                }
            })
            .collect();
        let root = parent.path().join("rootfs");
        let error = unpack_layers(&layers, &root, limits(1000, 100, 0)).unwrap_err();
        assert!(
            matches!(&error, UnpackError::TooLarge { layer, .. } if *layer == layers[1].digest),
            "{error}"
        );
        unpack_layers(&layers, &parent.path().join("other"), limits(1200, 100, 0)).unwrap();
    }

    #[test]
    fn a_cancelled_budget_stops_at_the_next_entry() {
        let mut layer = LayerBuilder::new();
        layer.file("a", 0o644, b"a");
        let tar = layer.build(LayerCompression::None).bytes;
        let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let mut budget = Budget::new(UnpackLimits::default()).cancelled_by(cancel);
        let root = tempfile::tempdir().unwrap();
        let error = apply_layer("sha256:x", tar.as_slice(), root.path(), &mut budget).unwrap_err();
        assert!(matches!(error, UnpackError::Aborted), "{error}");
        assert!(!root.path().join("a").exists());
    }

    /// Counts the bytes a reader handed out.
    struct Served<R> {
        inner: R,
        bytes: std::rc::Rc<std::cell::Cell<u64>>,
    }

    impl<R: Read> Read for Served<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.bytes.set(self.bytes.get() + n as u64);
            Ok(n)
        }
    }

    #[test]
    fn huge_long_names_and_pax_headers_are_refused_without_buffering_them() {
        const HUGE: u64 = 256 << 20;
        for kind in [tar::EntryType::GNULongName, tar::EntryType::XHeader] {
            let mut header = header("././@LongLink", kind, HUGE);
            header.set_cksum();
            let served = std::rc::Rc::new(std::cell::Cell::new(0));
            // Generated as it is read: nothing of this size exists anywhere.
            let stream = Served {
                inner: header
                    .as_bytes()
                    .as_slice()
                    .chain(std::io::repeat(b'a').take(HUGE)),
                bytes: std::rc::Rc::clone(&served),
            };
            let root = tempfile::tempdir().unwrap();
            let mut budget = Budget::new(UnpackLimits::default());
            let error = apply_layer("sha256:meta", stream, root.path(), &mut budget).unwrap_err();
            assert!(
                matches!(error, UnpackError::Archive { .. })
                    && error.to_string().contains("exceed 16777216 bytes"),
                "{kind:?}: {error}"
            );
            assert!(
                served.get() <= MAX_ENTRY_METADATA_BYTES + 512,
                "{kind:?}: read {} bytes",
                served.get()
            );
        }
        // Ordinary long names and PAX records still work.
        let long = format!("{}/file", "d".repeat(200));
        let tar = raw_tar(|builder| {
            let mut dir = header("placeholder", tar::EntryType::Directory, 0);
            builder
                .append_data(&mut dir, "d".repeat(200), std::io::empty())
                .unwrap();
            builder
                .append_pax_extensions([("comment", b"a PAX record".as_slice())])
                .unwrap();
            let mut file = header("placeholder", tar::EntryType::Regular, 1);
            builder
                .append_data(&mut file, &long, b"x".as_slice())
                .unwrap();
        });
        let root = tempfile::tempdir().unwrap();
        apply_raw(root.path(), &tar, UnpackLimits::default()).unwrap();
        assert_eq!(std::fs::read(root.path().join(&long)).unwrap(), b"x");
    }

    #[test]
    fn gzip_zstd_and_plain_layers_are_detected() {
        for compression in [
            LayerCompression::None,
            LayerCompression::Gzip,
            LayerCompression::Zstd,
        ] {
            let root = tempfile::tempdir().unwrap();
            let mut layer = LayerBuilder::new();
            layer.file("hello", 0o644, b"world");
            let blob = layer.build(compression);
            let reader = decompressing_reader(std::io::Cursor::new(blob.bytes)).unwrap();
            let mut budget = Budget::new(UnpackLimits::default());
            apply_layer(&blob.digest, reader, root.path(), &mut budget).unwrap();
            assert_eq!(std::fs::read(root.path().join("hello")).unwrap(), b"world");
        }
    }
}
