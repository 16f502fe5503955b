//! Configuration primitives: where the config is, what it compiles to,
//! adding a service to it (comments and formatting kept, written atomically),
//! and a first `locald.toml` (`locald init`): imported from a Procfile or a
//! compose file, or a commented starter.

use std::path::{Path, PathBuf};

use rhai::plugin::*;
use rhai::{Array, Map};

use serde::Deserialize;

use super::options::{self, OptionsError};
use crate::config::import::{self, ImportError, Imported};
use crate::config::{ConfigError, EditError};
use crate::project::{DotenvError, LoadError};

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
    #[error(transparent)]
    Import(#[from] ImportError),
    #[error(transparent)]
    Dotenv(#[from] DotenvError),
    #[error(transparent)]
    Options(#[from] OptionsError),
    #[error(
        "{} exists already: not replaced (`locald init --force`, or `replace: true`, replaces it)",
        .0.display()
    )]
    Exists(PathBuf),
    #[error(
        "{} is in another directory: its relative paths (volumes, env files) \
         would not hold from here; run this in {}",
        file.display(),
        dir.display()
    )]
    SourceElsewhere { file: PathBuf, dir: PathBuf },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The options of `create_config`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct CreateConfigOptions {
    /// Replace an existing `locald.toml` (its mode and owner kept).
    replace: bool,
    /// The file the text was imported from: it must be in the current
    /// directory, whose relative paths the text uses.
    source: Option<PathBuf>,
}

/// `import_config(path)`: the `locald.toml` made from the Procfile or
/// compose file at `path`. A compose file's `${VARIABLES}` come from the
/// environment, then from the `.env` beside it, as `docker compose` reads
/// them.
fn import_config(path: &Path) -> Result<Imported, ConfigApiError> {
    // Absolute, so the import checks its result from the right place.
    let path = &std::path::absolute(path).map_err(ConfigApiError::CurrentDir)?;
    let text = crate::project::read_source(path, &crate::sandbox::Limits::PROJECT)?;
    let dotenv_path = path.with_file_name(".env");
    let dotenv = if dotenv_path.exists() {
        crate::project::dotenv::load(&dotenv_path)?
    } else {
        Vec::new()
    };
    let vars = |name: &str| {
        std::env::var(name).ok().or_else(|| {
            dotenv
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        })
    };
    Ok(import::import(path, &text, &vars)?)
}

/// `create_config(text, options)`: writes `text` as the `locald.toml` of the
/// current directory, once it loads as a project; never over an existing
/// file unless `replace` is given. Returns the path written.
fn create_config(text: &str, options: Map) -> Result<PathBuf, ConfigApiError> {
    let options: CreateConfigOptions = options::read("create_config", options)?;
    let cwd = std::env::current_dir().map_err(ConfigApiError::CurrentDir)?;
    if let Some(source) = options.source {
        let source = std::path::absolute(&source).map_err(ConfigApiError::CurrentDir)?;
        let dir = source.parent().map(Path::to_path_buf).unwrap_or_default();
        let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => a == b,
        };
        if !same(&dir, &cwd) {
            return Err(ConfigApiError::SourceElsewhere { file: source, dir });
        }
    }
    let path = cwd.join(crate::config::TOML_FILE);
    crate::config::load_toml(&path, text)?;
    let written = if options.replace {
        crate::config::write_atomic(&path, text.as_bytes())
    } else {
        crate::config::create_new(&path, text.as_bytes())
    };
    match written {
        Ok(()) => Ok(path),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(ConfigApiError::Exists(path))
        }
        Err(source) => Err(ConfigApiError::Write { path, source }),
    }
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

/// The options of `add_service`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct AddServiceOptions {
    /// Check everything, write nothing.
    dry_run: bool,
}

/// `add_service(name, fields, options)`: the file written (or that would be).
fn add_service(name: &str, fields: &Map, options: Map) -> Result<PathBuf, ConfigApiError> {
    let AddServiceOptions { dry_run } = options::read("add_service", options)?;
    let path = config_file()?;
    let mut values = Vec::with_capacity(fields.len());
    for (key, value) in fields {
        values.push((key.as_str(), toml_value(key, value)?));
    }
    // A Rhai map iterates alphabetically; write keys in the order people
    // read a service: what runs first, then how it is wired.
    values.sort_by_key(|(key, _)| field_rank(key));
    if dry_run {
        crate::config::edit::check_new_service(&path, name, &values)?;
    } else {
        crate::config::edit::add_service(&path, name, &values)?;
    }
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
    #[rhai_fn(return_raw, name = "add_service")]
    pub fn add_service(
        ctx: NativeCallContext,
        name: &str,
        fields: Map,
    ) -> Result<String, Box<EvalAltResult>> {
        add_service_with(ctx, name, fields, Map::new())
    }

    /// `add_service(name, fields, #{ dry_run: true })` checks all that
    /// `add_service` checks and writes nothing, so that a verb can refuse
    /// before it runs anything.
    #[rhai_fn(return_raw, name = "add_service")]
    pub fn add_service_with(
        ctx: NativeCallContext,
        name: &str,
        fields: Map,
        options: Map,
    ) -> Result<String, Box<EvalAltResult>> {
        super::add_service(name, &fields, options)
            .map(|path| path.display().to_string())
            .map_err(|e| crate::script::throw(&ctx, e))
    }

    /// The name of the file `locald init` imports in the current directory
    /// (a Procfile or a compose file, see `config::import::SOURCES`), or `()`.
    #[rhai_fn(return_raw)]
    pub fn import_source(ctx: NativeCallContext) -> Result<Dynamic, Box<EvalAltResult>> {
        let cwd = std::env::current_dir()
            .map_err(|e| crate::script::throw(&ctx, super::ConfigApiError::CurrentDir(e)))?;
        Ok(crate::config::import::detect(&cwd)
            .and_then(|path| path.file_name().map(|n| n.to_string_lossy().into_owned()))
            .map_or(Dynamic::UNIT, Dynamic::from))
    }

    /// The `locald.toml` made from the Procfile or compose file at `path`:
    /// `#{ toml, services, notes }` (the text, the service names, and what
    /// was not carried over, one line each). Nothing is written.
    #[rhai_fn(return_raw)]
    pub fn import_config(ctx: NativeCallContext, path: &str) -> Result<Map, Box<EvalAltResult>> {
        let imported = super::import_config(std::path::Path::new(path))
            .map_err(|e| crate::script::throw(&ctx, e))?;
        let mut map = Map::new();
        map.insert("toml".into(), imported.toml.into());
        let names = |items: Vec<String>| -> Dynamic {
            items
                .into_iter()
                .map(Dynamic::from)
                .collect::<rhai::Array>()
                .into()
        };
        map.insert("services".into(), names(imported.services));
        map.insert("notes".into(), names(imported.notes));
        Ok(map)
    }

    /// A commented starter `locald.toml` for a project named after the
    /// current directory. Nothing is written.
    #[rhai_fn(return_raw)]
    pub fn starter_config(ctx: NativeCallContext) -> Result<String, Box<EvalAltResult>> {
        let cwd = std::env::current_dir()
            .map_err(|e| crate::script::throw(&ctx, super::ConfigApiError::CurrentDir(e)))?;
        Ok(crate::config::import::starter(
            &crate::project::load::dir_name(&cwd),
        ))
    }

    /// Writes `text` as the `locald.toml` of the current directory and
    /// returns its path. It must load as a project, or nothing is written;
    /// an existing file is never replaced.
    #[rhai_fn(return_raw, name = "create_config")]
    pub fn create_config(ctx: NativeCallContext, text: &str) -> Result<String, Box<EvalAltResult>> {
        create_config_with(ctx, text, Map::new())
    }

    /// `create_config(text, #{ replace: true })` replaces an existing
    /// `locald.toml` (keeping its mode and owner).
    #[rhai_fn(return_raw, name = "create_config")]
    pub fn create_config_with(
        ctx: NativeCallContext,
        text: &str,
        options: Map,
    ) -> Result<String, Box<EvalAltResult>> {
        super::create_config(text, options)
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
