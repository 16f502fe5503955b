//! `locald init`: a first `locald.toml` from what a project has already, a
//! `Procfile` (foreman, honcho) or a compose file, or a commented starter.
//!
//! Each importer reads its format into [`ServiceOut`]s, which say what they
//! could not carry over as notes; [`render`] writes them as one `locald.toml`
//! (the notes as comments above each service), which is then loaded with
//! the ordinary rules, so an import never writes a file that `up` refuses.

mod compose;
mod interpolate;
mod procfile;
mod starter;

use std::path::{Path, PathBuf};

use toml_edit::{Array, DocumentMut, InlineTable, Item, Table, Value};

pub use compose::from_compose;
pub use procfile::from_procfile;
pub use starter::starter;

/// Files `locald init` imports from, in the order it looks for them.
pub const SOURCES: &[&str] = &[
    "Procfile",
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// The first file of [`SOURCES`] in `dir`.
pub fn detect(dir: &Path) -> Option<PathBuf> {
    SOURCES
        .iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file())
}

/// The importer for `path`, by its name: a Procfile or a compose file.
pub fn import(
    path: &Path,
    text: &str,
    vars: &dyn Fn(&str) -> Option<String>,
) -> Result<Imported, ImportError> {
    let name = path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or_default();
    if name.starts_with("Procfile") {
        from_procfile(path, text)
    } else if name.ends_with(".yaml") || name.ends_with(".yml") {
        from_compose(path, text, vars)
    } else {
        Err(ImportError::UnknownFormat {
            path: path.to_path_buf(),
        })
    }
}

/// A `locald.toml` made from another file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The file's text.
    pub toml: String,
    /// The services it declares, in order.
    pub services: Vec<String>,
    /// What was not carried over, one line each (also in the file, as
    /// comments).
    pub notes: Vec<String>,
}

/// Why a file could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{}:{line}: {message}", path.display())]
    Procfile {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{}: {message}", path.display())]
    Compose { path: PathBuf, message: String },
    #[error("{} declares no service", path.display())]
    Empty { path: PathBuf },
    #[error(
        "{}: not a file `locald init` imports (a Procfile, or a compose file ending in .yaml or .yml)",
        path.display()
    )]
    UnknownFormat { path: PathBuf },
    /// A bug of the importer: what it wrote does not load. Reported whole, so
    /// that it can be fixed.
    #[error("the imported configuration does not load (a bug in `locald init`):\n{0}")]
    Invalid(super::ConfigError),
}

/// One service as an importer made it: its keys in order, and notes.
#[derive(Debug, Default)]
pub(crate) struct ServiceOut {
    pub name: String,
    pub fields: Vec<(&'static str, Value)>,
    pub notes: Vec<String>,
}

impl ServiceOut {
    pub fn new(name: &str) -> ServiceOut {
        ServiceOut {
            name: name.to_string(),
            ..ServiceOut::default()
        }
    }

    pub fn set(&mut self, key: &'static str, value: impl Into<Value>) {
        self.fields.push((key, value.into()));
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }
}

/// A TOML array of strings.
pub(crate) fn string_array<S: AsRef<str>>(items: &[S]) -> Value {
    let mut array = Array::new();
    for item in items {
        array.push(item.as_ref());
    }
    Value::Array(array)
}

/// A TOML inline table from keys and values, in order.
pub(crate) fn inline_table(entries: Vec<(&str, Value)>) -> Value {
    let mut table = InlineTable::new();
    for (key, value) in entries {
        table.insert(key, value);
    }
    Value::InlineTable(table)
}

/// The `locald.toml` for `services`, with `header` (comment lines) on top;
/// checked by loading it as `up` would, from `config_path`.
pub(crate) fn render(
    config_path: &Path,
    header: &[String],
    project_name: Option<&str>,
    services: Vec<ServiceOut>,
    mut notes: Vec<String>,
) -> Result<Imported, ImportError> {
    let mut document = DocumentMut::new();
    let mut prefix = String::new();
    for line in header {
        prefix.push_str(&comment(line));
    }
    if let Some(name) = project_name {
        let mut project = Table::new();
        project.insert("name", Item::Value(Value::from(name)));
        project.decor_mut().set_prefix(prefix.clone());
        prefix.clear();
        document.insert("project", Item::Table(project));
    }
    let mut tables = Table::new();
    tables.set_implicit(true);
    let mut names = Vec::new();
    for (index, service) in services.into_iter().enumerate() {
        let mut table = Table::new();
        for (key, value) in service.fields {
            table.insert(key, Item::Value(value));
        }
        let mut decor = if index == 0 && !prefix.is_empty() {
            std::mem::take(&mut prefix) + "\n"
        } else {
            "\n".to_string()
        };
        for note in &service.notes {
            decor.push_str(&comment(note));
            notes.push(format!("{}: {note}", service.name));
        }
        table.decor_mut().set_prefix(decor);
        names.push(service.name.clone());
        tables.insert(&service.name, Item::Table(table));
    }
    document.insert("services", Item::Table(tables));
    let toml = document.to_string();
    super::load_toml(config_path, &toml).map_err(ImportError::Invalid)?;
    Ok(Imported {
        toml,
        services: names,
        notes,
    })
}

/// `text` as TOML comment lines.
fn comment(text: &str) -> String {
    text.lines().map(|line| format!("# {line}\n")).collect()
}

/// A service name from another tool's: letters, digits, `_` and `-` kept,
/// anything else as `-`, at most 63 characters, not starting with `-`.
pub(crate) fn service_name(name: &str) -> String {
    let mut cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    while cleaned.starts_with('-') {
        cleaned.remove(0);
    }
    cleaned.truncate(63);
    cleaned
}
