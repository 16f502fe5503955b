//! Configuration primitives: where the config is, what it compiles to, and
//! adding a service to it (comments and formatting kept, written atomically).

use std::path::{Path, PathBuf};

use rhai::plugin::*;
use rhai::{Array, Map};

use crate::config::{ConfigError, EditError};
use crate::project::LoadError;

/// Why a configuration primitive failed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigApiError {
    #[error("cannot read the current directory: {0}")]
    CurrentDir(std::io::Error),
    #[error("`{key}`: cannot write a {type_name} into locald.toml")]
    NotTomlValue { key: String, type_name: String },
    #[error(transparent)]
    Edit(#[from] EditError),
    #[error("no locald.toml in {} or any parent directory", .0.display())]
    NoConfig(PathBuf),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// The `locald.toml` that edits go to: the project's, or a new one in the
/// current directory.
pub fn config_file() -> Result<PathBuf, ConfigApiError> {
    let cwd = std::env::current_dir().map_err(ConfigApiError::CurrentDir)?;
    Ok(match crate::config::find_config(&cwd) {
        Some(files) => files.toml.unwrap_or_else(|| files.dir.join("locald.toml")),
        None => cwd.join("locald.toml"),
    })
}

/// Converts a script value into a TOML value for the config file.
pub fn toml_value(key: &str, value: &Dynamic) -> Result<toml_edit::Value, ConfigApiError> {
    if let Some(s) = value.clone().try_cast::<ImmutableString>() {
        return Ok(toml_edit::Value::from(s.as_str()));
    }
    if let Some(i) = value.clone().try_cast::<i64>() {
        return Ok(toml_edit::Value::from(i));
    }
    if let Some(b) = value.clone().try_cast::<bool>() {
        return Ok(toml_edit::Value::from(b));
    }
    if let Some(items) = value.clone().try_cast::<Array>() {
        let mut array = toml_edit::Array::new();
        for item in &items {
            array.push(toml_value(key, item)?);
        }
        return Ok(toml_edit::Value::Array(array));
    }
    if let Some(map) = value.clone().try_cast::<Map>() {
        let mut table = toml_edit::InlineTable::new();
        for (k, v) in &map {
            table.insert(k.as_str(), toml_value(key, v)?);
        }
        return Ok(toml_edit::Value::InlineTable(table));
    }
    Err(ConfigApiError::NotTomlValue {
        key: key.to_string(),
        type_name: value.type_name().to_string(),
    })
}

/// `add_service(name, fields)`: the file written.
fn add_service(name: &str, fields: &Map) -> Result<PathBuf, ConfigApiError> {
    let path = config_file()?;
    let mut values = Vec::with_capacity(fields.len());
    for (key, value) in fields {
        values.push((key.as_str(), toml_value(key, value)?));
    }
    // A Rhai map iterates alphabetically; write keys in the order people
    // read a service: what runs first, then how it is wired.
    values.sort_by_key(|(key, _)| field_rank(key));
    crate::config::edit::add_service(&path, name, &values)?;
    Ok(path)
}

/// The Rhai that the project's config compiles to: its `locald.toml`'s, or
/// its `locald.rhai` as it is (a project written in Rhai is its own
/// compiled form).
fn compile_project_config() -> Result<String, ConfigApiError> {
    let cwd = std::env::current_dir().map_err(ConfigApiError::CurrentDir)?;
    let files = crate::config::find_config(&cwd).ok_or(ConfigApiError::NoConfig(cwd))?;
    match (files.toml, files.rhai) {
        (Some(toml), _) => compile_file(&toml),
        (None, Some(rhai)) => Ok(crate::project::read_source(
            &rhai,
            &crate::sandbox::Limits::PROJECT,
        )?),
        (None, None) => Err(ConfigApiError::NoConfig(files.dir)),
    }
}

/// The Rhai that the `locald.toml` at `path` compiles to.
fn compile_file(path: &Path) -> Result<String, ConfigApiError> {
    let source = crate::project::read_source(path, &crate::sandbox::Limits::PROJECT)?;
    Ok(crate::config::compile_toml(path, &source)?)
}

/// Where a service key goes when locald writes a new service table; keys it
/// does not know go last (the sort is stable: alphabetical among them).
fn field_rank(key: &str) -> usize {
    const ORDER: &[&str] = &[
        "image",
        "command",
        "workdir",
        "port",
        "env",
        "env_file",
        "volumes",
        "cap_add",
        "cap_drop",
        "security_opt",
        "depends_on",
        "health",
        "restart",
        "max_restarts",
    ];
    ORDER
        .iter()
        .position(|known| *known == key)
        .unwrap_or(ORDER.len())
}

#[export_module]
pub mod config_api {
    use rhai::Map;

    /// Path of the `locald.toml` that `add_service` edits.
    #[rhai_fn(return_raw)]
    pub fn config_path(ctx: NativeCallContext) -> Result<String, Box<EvalAltResult>> {
        super::config_file()
            .map(|p| p.display().to_string())
            .map_err(|e| crate::script::throw(&ctx, e))
    }

    /// Adds `[services.NAME]` with `fields` to `locald.toml`, keeping the
    /// rest of the file as the user wrote it. The result must still be a
    /// valid project, or nothing is written.
    #[rhai_fn(return_raw)]
    pub fn add_service(
        ctx: NativeCallContext,
        name: &str,
        fields: Map,
    ) -> Result<String, Box<EvalAltResult>> {
        super::add_service(name, &fields)
            .map(|path| path.display().to_string())
            .map_err(|e| crate::script::throw(&ctx, e))
    }

    /// The Rhai script that the current project's config compiles to.
    #[rhai_fn(return_raw, name = "compile_config")]
    pub fn compile_config(ctx: NativeCallContext) -> Result<String, Box<EvalAltResult>> {
        super::compile_project_config().map_err(|e| crate::script::throw(&ctx, e))
    }

    /// The Rhai script that the `locald.toml` at `path` compiles to.
    #[rhai_fn(return_raw, name = "compile_config")]
    pub fn compile_config_file(
        ctx: NativeCallContext,
        path: &str,
    ) -> Result<String, Box<EvalAltResult>> {
        super::compile_file(std::path::Path::new(path)).map_err(|e| crate::script::throw(&ctx, e))
    }
}
