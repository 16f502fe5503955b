//! Editing `locald.toml` in place (`locald add`): a new `[services.NAME]`
//! table is appended while every other byte of the file — comments, spacing,
//! key order — is kept, and the file is replaced atomically.

use std::io;
use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, InlineTable, Item, Table, Value};

use super::atomic::write_atomic;
use super::convert::is_service_name;
use super::diagnostic::{ConfigError, FieldError, KeyPath};
use super::document::{config_dir, default_project_name};
use super::{load_toml, schema, toml_source};

/// Why a service could not be added.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("invalid service name `{0}`: service names use letters, digits, `_` and `-`")]
    InvalidName(String),
    #[error("service `{name}` already exists in {}", path.display())]
    ServiceExists { name: String, path: PathBuf },
    #[error("{field}")]
    InvalidField { field: FieldError },
    /// The file as it is does not validate; it is left alone.
    #[error("{0}")]
    InvalidConfig(ConfigError),
    /// The service is valid alone but not in this project (a dependency on
    /// a service that does not exist, say).
    #[error("adding the service would make the configuration invalid:\n{0}")]
    WouldBeInvalid(ConfigError),
    #[error("`services` in {} is neither a table nor an inline table", path.display())]
    ServicesNotATable { path: PathBuf },
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
}

/// Adds `[services.NAME]` with `fields` (in order) to the `locald.toml` at
/// `config_path`, creating the file with a `[project]` table if it is missing.
pub fn add_service(
    config_path: &Path,
    name: &str,
    fields: &[(&str, Value)],
) -> Result<(), EditError> {
    if !is_service_name(name) {
        return Err(EditError::InvalidName(name.to_owned()));
    }
    // Write through a symlink to the file it points at, not over the link.
    let path = std::fs::canonicalize(config_path).unwrap_or_else(|_| config_path.to_owned());
    let original = match std::fs::read_to_string(&path) {
        Ok(text) => {
            load_toml(&path, &text).map_err(EditError::InvalidConfig)?;
            text
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => new_file(&path),
        Err(source) => return Err(EditError::Read { path, source }),
    };

    let new_service = service_table(fields);
    check_fields(name, &new_service, &path)?;
    let updated = insert_service(&original, name, new_service, &path)?;
    load_toml(&path, &updated).map_err(EditError::WouldBeInvalid)?;
    write_atomic(&path, updated.as_bytes()).map_err(|source| EditError::Write { path, source })
}

/// The text of a new `locald.toml`: the project named after its directory.
fn new_file(path: &Path) -> String {
    let name = default_project_name(&config_dir(path));
    let mut document = DocumentMut::new();
    let mut project = Table::new();
    project.insert("name", Item::Value(Value::from(name)));
    document.insert("project", Item::Table(project));
    document.to_string()
}

/// The new table, with fields in the caller's order and default formatting.
fn service_table(fields: &[(&str, Value)]) -> Table {
    let mut table = Table::new();
    for (key, value) in fields {
        let mut value = value.clone();
        value.decor_mut().clear();
        table.insert(key, Item::Value(value));
    }
    table
}

/// Runs the service rules over the new table so a mistake reads as a field
/// error (`services.web.port: ...`) rather than a position in a file the
/// user has not seen.
fn check_fields(name: &str, table: &Table, path: &Path) -> Result<(), EditError> {
    let node = toml_source::lower_table(table);
    let key_path = KeyPath::root().key("services").key(name);
    schema::build_service(name, &node, &key_path, &config_dir(path))
        .map(|_| ())
        .map_err(|problems| {
            let field = problems
                .into_iter()
                .next()
                .map(|problem| problem.into_field_error())
                .unwrap_or_else(|| FieldError {
                    path: key_path.to_string(),
                    message: "invalid service".to_owned(),
                    help: None,
                });
            EditError::InvalidField { field }
        })
}

/// `original` with the service appended after everything else; the bytes
/// before it are unchanged.
fn insert_service(
    original: &str,
    name: &str,
    mut table: Table,
    path: &Path,
) -> Result<String, EditError> {
    let mut document: DocumentMut = original.parse().map_err(|error| {
        EditError::InvalidConfig(ConfigError::from_syntax(path, original, &error))
    })?;
    let exists = || EditError::ServiceExists {
        name: name.to_owned(),
        path: path.to_owned(),
    };

    // Comments after the last table belong to the document's trailing text,
    // which toml_edit prints after all tables; moving them in front of the
    // new table keeps them where they were in the file.
    let trailing = document.trailing().as_str().unwrap_or("").to_owned();
    let mut prefix = trailing.clone();
    if !original.is_empty() && !original.ends_with("\n\n") && !prefix.ends_with("\n\n") {
        prefix.push('\n');
    }
    table.decor_mut().set_prefix(prefix);
    table.set_position(Some(last_table_position(document.as_table()) + 1));

    let root = document.as_table_mut();
    if !root.contains_key("services") {
        let mut services = Table::new();
        services.set_implicit(true);
        root.insert("services", Item::Table(services));
    }
    match root.get_mut("services") {
        Some(Item::Table(services)) => {
            if services.contains_key(name) {
                return Err(exists());
            }
            services.insert(name, Item::Table(table));
            document.set_trailing("");
        }
        // `services = { ... }`: the service joins the inline table, which
        // stays where it is; the trailing text stays last.
        Some(Item::Value(Value::InlineTable(services))) => {
            if services.contains_key(name) {
                return Err(exists());
            }
            let mut inline: InlineTable = table.into_inline_table();
            inline.set_dotted(false);
            services.insert(name, Value::InlineTable(inline));
        }
        _ => {
            return Err(EditError::ServicesNotATable {
                path: path.to_owned(),
            })
        }
    }
    Ok(document.to_string())
}

/// The highest document position of any table, so a new one sorts last.
fn last_table_position(table: &Table) -> isize {
    let mut last = table.position().unwrap_or(0);
    for (_, item) in table.iter() {
        match item {
            Item::Table(child) => last = last.max(last_table_position(child)),
            Item::ArrayOfTables(array) => {
                for child in array.iter() {
                    last = last.max(last_table_position(child));
                }
            }
            _ => {}
        }
    }
    last
}
