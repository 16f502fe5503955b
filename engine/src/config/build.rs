//! Rules for a service's `build`: the image is built from source by Cloud Native
//! Buildpacks. A string is the source path (`build = "."`, the builder from the user
//! config); a table is `{ builder, buildpacks, env, path }`. A built service is a
//! container service whose `image` is the tag it is built under
//! ([`crate::model::built_image_tag`]), so `image` and `build` together are an error.

use std::path::Path;

use super::convert::{self, bad_value, wrong_type};
use super::diagnostic::{KeyPath, Problem};
use super::value::{Node, NodeKind};
use crate::model::{built_image_tag, Build, Service};

/// Keys of a `build` table.
pub(crate) const BUILD_KEYS: &[&str] = &["builder", "buildpacks", "env", "path"];

/// Reads `build` into `service.build`.
pub(crate) fn apply_build(
    node: &Node,
    path: &KeyPath,
    base_dir: &Path,
    service: &mut Service,
    problems: &mut Vec<Problem>,
) {
    let mut build = Build {
        path: base_dir.to_path_buf(),
        builder: None,
        buildpacks: Vec::new(),
        env: Default::default(),
    };
    let entries = match &node.kind {
        NodeKind::Str(_) => match convert::relative_path(node, path, base_dir) {
            Ok(source) => {
                build.path = source;
                service.build = Some(build);
                return;
            }
            Err(problem) => return problems.push(problem),
        },
        NodeKind::Table(entries) => entries,
        _ => {
            return problems.push(wrong_type(node, path, "a string or a table").with_help(
                "write build = \".\" (the source directory), or \
                 build = { builder = \"REF\", path = \".\" }",
            ))
        }
    };
    let before = problems.len();
    for (key, value) in entries {
        let key_path = path.key(key);
        match key.as_str() {
            "builder" => match image_reference(value, &key_path) {
                Ok(builder) => build.builder = Some(builder.to_owned()),
                Err(problem) => problems.push(problem),
            },
            "buildpacks" => match convert::array(value, &key_path) {
                Ok(items) => {
                    for (index, item) in items.iter().enumerate() {
                        match image_reference(item, &key_path.index(index)) {
                            Ok(reference) => build.buildpacks.push(reference.to_owned()),
                            Err(problem) => problems.push(problem),
                        }
                    }
                }
                Err(problem) => problems.push(problem),
            },
            "env" => super::schema::env_table(value, &key_path, &mut build.env, problems),
            "path" => match convert::relative_path(value, &key_path, base_dir) {
                Ok(source) => build.path = source,
                Err(problem) => problems.push(problem),
            },
            _ => problems.push(convert::unknown_key(
                key, value, key_path, BUILD_KEYS, "`build`",
            )),
        }
    }
    if problems.len() == before {
        service.build = Some(build);
    }
}

/// An image reference (a builder or buildpack): a non-empty string without whitespace.
fn image_reference<'a>(node: &'a Node, path: &KeyPath) -> Result<&'a str, Problem> {
    let reference = convert::non_empty_string(node, path)?;
    if reference.chars().any(char::is_whitespace) {
        return Err(bad_value(
            node,
            path,
            format!("\"{reference}\" is not an image reference: it contains whitespace"),
        ));
    }
    Ok(reference)
}

/// Once every key is read: `build` and `image` exclude each other; a built service runs
/// the image built under its tag.
pub(crate) fn check_build(
    node: &Node,
    path: &KeyPath,
    base_dir: &Path,
    service: &mut Service,
    problems: &mut Vec<Problem>,
) {
    let written = |key| node.get(key).filter(|value: &&Node| !value.is_null());
    let Some(image_node) = written("image").filter(|_| written("build").is_some()) else {
        if service.build.is_some() {
            service.image = Some(built_image_tag(base_dir, &service.name));
        }
        return;
    };
    problems.push(
        Problem::invalid(
            path.key("image"),
            "a service takes `image` or `build`, not both",
        )
        .with_span(image_node.key_or_value_span())
        .with_help(
            "`build` makes the image from source (it is stored under its own tag); \
             remove one of them",
        ),
    );
}
