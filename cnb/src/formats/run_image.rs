//! `run.toml` (`[[images]] image, mirrors`: the run images a builder offers) and its
//! deprecated predecessor `stack.toml` (`[run-image] image, mirrors`, Platform API < 0.12).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{parse, FormatError, Problem};
use crate::read::read_text;

/// A run image and its mirrors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct RunImage {
    #[serde(default)]
    pub image: String,
    #[serde(default)]
    pub mirrors: Vec<String>,
}

#[derive(Deserialize)]
struct RawRun {
    #[serde(default)]
    images: Vec<RunImage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawStack {
    run_image: Option<RunImage>,
}

/// Parses `run.toml`: the run images, first the preferred one.
pub fn parse_run(text: &str, path: &Path) -> Result<Vec<RunImage>, FormatError> {
    let raw: RawRun = parse(text, path)?;
    check(&raw.images, path, "images")?;
    Ok(raw.images)
}

/// Parses a legacy `stack.toml` into the same shape.
pub fn parse_stack(text: &str, path: &Path) -> Result<Vec<RunImage>, FormatError> {
    let raw: RawStack = parse(text, path)?;
    let images: Vec<RunImage> = raw.run_image.into_iter().collect();
    check(&images, path, "run-image")?;
    Ok(images)
}

/// The run images the builder whose unpacked image is `rootfs` offers, first the
/// preferred one: its `/cnb/run.toml`, else the legacy `/cnb/stack.toml`; `None` when it has
/// neither. Each file is at most `limit` bytes.
///
/// The builder is untrusted and this reads its tree on the host (as root, for a root
/// build), where a link in the image would lead to the host's own files (`/cnb/run.toml ->
/// /etc/shadow` would put the file's first line in the parse error; `-> /dev/zero` would be
/// read forever): neither `/cnb` nor the file may be a link, and the file must be a regular
/// one (a FIFO would block).
pub fn builder_run_images(rootfs: &Path, limit: u64) -> Result<Option<Vec<RunImage>>, FormatError> {
    let cnb = rootfs.join("cnb");
    match std::fs::symlink_metadata(&cnb) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(FormatError::Read {
                path: cnb,
                source: std::io::Error::other("the builder's /cnb is not a directory (a link?)"),
            })
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(FormatError::Read { path: cnb, source }),
    }
    type Parse = fn(&str, &Path) -> Result<Vec<RunImage>, FormatError>;
    let parsers: [(&str, Parse); 2] = [("run.toml", parse_run), ("stack.toml", parse_stack)];
    for (file, parse) in parsers {
        let path = cnb.join(file);
        if let Some(text) = read_text(&path, limit)? {
            return parse(&text, &path).map(Some);
        }
    }
    Ok(None)
}

fn check(images: &[RunImage], path: &Path, key: &str) -> Result<(), FormatError> {
    if images.is_empty() {
        return Err(FormatError::invalid(path, key, Problem::Missing));
    }
    for (i, image) in images.iter().enumerate() {
        if image.image.is_empty() {
            return Err(FormatError::invalid(
                path,
                format!("{key}[{i}].image"),
                Problem::Empty,
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A builder rootfs with `/cnb/<file>` holding `text`.
    fn builder(file: &str, text: &str) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("cnb")).unwrap();
        std::fs::write(root.path().join("cnb").join(file), text).unwrap();
        root
    }

    #[test]
    fn a_builder_offers_its_run_toml_else_its_stack_toml() {
        let root = builder("stack.toml", "[run-image]\nimage = \"stack-run\"\n");
        let images = builder_run_images(root.path(), 1024).unwrap().unwrap();
        assert_eq!(images[0].image, "stack-run");
        std::fs::write(
            root.path().join("cnb/run.toml"),
            "[[images]]\nimage = \"run\"\n",
        )
        .unwrap();
        let images = builder_run_images(root.path(), 1024).unwrap().unwrap();
        assert_eq!(images[0].image, "run");
        let empty = tempfile::tempdir().unwrap();
        assert!(builder_run_images(empty.path(), 1024).unwrap().is_none());
        let error = builder_run_images(root.path(), 4).unwrap_err();
        assert!(matches!(error, FormatError::TooLarge { .. }), "{error}");
    }

    #[test]
    fn a_builder_cannot_make_the_host_read_its_own_files() {
        // A host file that would parse: a followed link would offer "host-secret".
        let host = builder("run.toml", "[[images]]\nimage = \"host-secret\"\n");
        let host_file = host.path().join("cnb/run.toml");
        let linked = tempfile::tempdir().unwrap();
        std::fs::create_dir(linked.path().join("cnb")).unwrap();
        std::os::unix::fs::symlink(&host_file, linked.path().join("cnb/run.toml")).unwrap();
        let error = builder_run_images(linked.path(), 1024).unwrap_err();
        assert!(!error.to_string().contains("host-secret"), "{error}");

        let linked_dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(host.path().join("cnb"), linked_dir.path().join("cnb")).unwrap();
        assert!(builder_run_images(linked_dir.path(), 1024).is_err());

        // Read forever if followed; refused at once.
        let zero = tempfile::tempdir().unwrap();
        std::fs::create_dir(zero.path().join("cnb")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", zero.path().join("cnb/run.toml")).unwrap();
        assert!(builder_run_images(zero.path(), 1 << 30).is_err());

        // A FIFO would block the open.
        let fifo = tempfile::tempdir().unwrap();
        std::fs::create_dir(fifo.path().join("cnb")).unwrap();
        let status = std::process::Command::new("mkfifo")
            .arg(fifo.path().join("cnb/run.toml"))
            .status()
            .unwrap();
        assert!(status.success());
        assert!(builder_run_images(fifo.path(), 1024).is_err());
    }

    #[test]
    fn run_toml_and_legacy_stack_toml() {
        let run = parse_run(
            "[[images]]\nimage = \"localhost:5000/run:latest\"\nmirrors = [\"mirror/run\"]\n",
            Path::new("/cnb/run.toml"),
        )
        .unwrap();
        assert_eq!(run[0].image, "localhost:5000/run:latest");
        assert_eq!(run[0].mirrors, vec!["mirror/run"]);
        let stack = parse_stack(
            "[run-image]\nimage = \"run\"\n",
            Path::new("/cnb/stack.toml"),
        )
        .unwrap();
        assert_eq!(
            stack,
            vec![RunImage {
                image: "run".into(),
                mirrors: vec![]
            }]
        );
        let error = parse_run("", Path::new("/cnb/run.toml")).unwrap_err();
        assert_eq!(error.to_string(), "/cnb/run.toml: `images` is missing");
        let error =
            parse_stack("[run-image]\nmirrors = []\n", Path::new("/cnb/stack.toml")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "/cnb/stack.toml: `run-image[0].image` is empty"
        );
    }
}
