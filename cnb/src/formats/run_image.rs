//! `run.toml` (`[[images]] image, mirrors`: the run images a builder offers) and its
//! deprecated predecessor `stack.toml` (`[run-image] image, mirrors`, Platform API < 0.12).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{parse, FormatError, Problem};

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
