//! Configuration primitives: where the config is, what it compiles to, and
//! adding a service to it (comments and formatting kept, written atomically).

use std::path::PathBuf;

use rhai::plugin::*;
use rhai::{Array, Map};

/// The `locald.toml` that edits go to: the project's, or a new one in the
/// current directory.
pub fn config_file() -> std::io::Result<PathBuf> {
    let cwd = std::env::current_dir()?;
    Ok(match crate::config::find_config(&cwd) {
        Some(files) => files.toml.unwrap_or_else(|| files.dir.join("locald.toml")),
        None => cwd.join("locald.toml"),
    })
}

/// Converts a script value into a TOML value for the config file.
pub fn toml_value(key: &str, value: &Dynamic) -> Result<toml_edit::Value, String> {
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
    Err(format!(
        "`{key}`: cannot write a {} into locald.toml",
        value.type_name()
    ))
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
            .map_err(|e| crate::script::api::fail(&ctx, e))
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
        let fail = |e: String| crate::script::api::fail(&ctx, e);
        let path = super::config_file().map_err(|e| fail(e.to_string()))?;
        let mut values = Vec::with_capacity(fields.len());
        for (key, value) in &fields {
            values.push((key.as_str(), super::toml_value(key, value).map_err(fail)?));
        }
        // A Rhai map iterates alphabetically; write keys in the order people
        // read a service: what runs first, then how it is wired.
        values.sort_by_key(|(key, _)| super::field_rank(key));
        crate::config::edit::add_service(&path, name, &values)
            .map_err(|e| crate::script::throw(&ctx, e))?;
        Ok(path.display().to_string())
    }

    /// The Rhai script that a `locald.toml` compiles to. With `()`, the
    /// current project's config.
    #[rhai_fn(return_raw)]
    pub fn compile_config(
        ctx: NativeCallContext,
        file: Dynamic,
    ) -> Result<String, Box<EvalAltResult>> {
        let fail = |e: String| crate::script::api::fail(&ctx, e);
        let path = if file.is_unit() {
            let cwd = std::env::current_dir().map_err(|e| fail(e.to_string()))?;
            let files = crate::config::find_config(&cwd).ok_or_else(|| {
                fail(format!(
                    "no locald.toml in {} or any parent directory",
                    cwd.display()
                ))
            })?;
            match (files.toml, files.rhai) {
                (Some(toml), _) => toml,
                // A project written in Rhai is its own compiled form.
                (None, Some(rhai)) => {
                    return crate::project::read_source(&rhai, &crate::sandbox::Limits::PROJECT)
                        .map_err(|e| fail(e.to_string()))
                }
                (None, None) => {
                    return Err(fail(format!("no locald.toml in {}", files.dir.display())))
                }
            }
        } else {
            std::path::PathBuf::from(file.to_string())
        };
        let source = crate::project::read_source(&path, &crate::sandbox::Limits::PROJECT)
            .map_err(|e| fail(e.to_string()))?;
        crate::config::compile_toml(&path, &source).map_err(|e| crate::script::throw(&ctx, e))
    }
}
