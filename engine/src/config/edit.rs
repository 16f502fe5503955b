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
    #[error("invalid service name `{0}`: {rule}", rule = super::convert::SERVICE_NAME_RULE)]
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
    let (path, updated) = with_service(config_path, name, fields)?;
    write_atomic(&path, updated.as_bytes()).map_err(|source| EditError::Write { path, source })
}

/// Checks that [`add_service`] would add the service, refusing as it does
/// (a bad name, one that exists, a field or a project it makes invalid),
/// and writes nothing: so a command can refuse before it does its work.
pub fn check_new_service(
    config_path: &Path,
    name: &str,
    fields: &[(&str, Value)],
) -> Result<(), EditError> {
    with_service(config_path, name, fields).map(|_| ())
}

/// The file to write and its new text, with the service added and checked.
fn with_service(
    config_path: &Path,
    name: &str,
    fields: &[(&str, Value)],
) -> Result<(PathBuf, String), EditError> {
    if !is_service_name(name) {
        return Err(EditError::InvalidName(name.to_owned()));
    }
    // Write through a symlink to the file it points at, not over the link.
    let path = std::fs::canonicalize(config_path).unwrap_or_else(|_| config_path.to_owned());
    let original = match read_bounded(&path) {
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
    Ok((path, updated))
}

/// The file's text: a regular file (a FIFO would block the open), at most
/// [`super::MAX_SOURCE_BYTES`].
fn read_bounded(path: &Path) -> io::Result<String> {
    use std::io::Read;
    let file = locald_shim_protocol::regular_file::open_regular(path)?;
    let mut text = String::new();
    file.take(super::MAX_SOURCE_BYTES as u64 + 1)
        .read_to_string(&mut text)?;
    if text.len() > super::MAX_SOURCE_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("larger than {} MiB", super::MAX_SOURCE_BYTES >> 20),
        ));
    }
    Ok(text)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    const COMMENTED: &str = r#"# The shop, run locally.
[project]
name   =   "shop"   # spaced as the user likes

[services.web]   # the front end
command = 'npm run dev'
depends_on = [ "db" ]

[services.db]
image = "postgres:16"

# notes kept at the end
#   with odd indentation
"#;

    fn api_fields() -> Vec<(&'static str, Value)> {
        vec![
            ("command", Value::from("python3 -m http.server $PORT")),
            ("port", Value::from(8080)),
            ("depends_on", Value::Array(["db"].into_iter().collect())),
        ]
    }

    fn project_file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("locald.toml");
        fs::write(&path, text).unwrap();
        (temp, path)
    }

    #[test]
    fn appends_the_service_and_keeps_every_other_byte() {
        let (_temp, path) = project_file(COMMENTED);
        add_service(&path, "api", &api_fields()).unwrap();
        let updated = fs::read_to_string(&path).unwrap();
        assert_eq!(
            updated,
            format!(
                "{COMMENTED}\n[services.api]\ncommand = \"python3 -m http.server $PORT\"\nport = 8080\ndepends_on = [\"db\"]\n"
            )
        );
        let project = load_toml(&path, &updated).unwrap();
        assert_eq!(project.service_names(), ["web", "db", "api"]);
    }

    #[test]
    fn a_fifo_or_an_oversized_file_is_refused_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(crate::config::TOML_FILE);
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let error = add_service(&path, "web", &[("command", Value::from("x"))]).unwrap_err();
        assert!(error.to_string().contains("FIFO"), "{error}");

        fs::remove_file(&path).unwrap();
        let mut big = String::from("[project]\nname = \"p\"\n");
        big.push_str(&"# padding\n".repeat(crate::config::MAX_SOURCE_BYTES / 10 + 1));
        fs::write(&path, &big).unwrap();
        let error = add_service(&path, "web", &[("command", Value::from("x"))]).unwrap_err();
        assert!(error.to_string().contains("larger than 8 MiB"), "{error}");
        assert_eq!(fs::read_to_string(&path).unwrap(), big);
    }

    #[test]
    fn creates_a_missing_file_named_after_its_directory() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("my-app");
        fs::create_dir(&dir).unwrap();
        let path = dir.join("locald.toml");
        add_service(&path, "web", &[("command", Value::from("npm start"))]).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "[project]\nname = \"my-app\"\n\n[services.web]\ncommand = \"npm start\"\n"
        );
    }

    #[test]
    fn a_file_without_a_final_newline_gets_one_before_the_table() {
        let (_temp, path) = project_file("[project]\nname = \"x\"");
        add_service(&path, "web", &[("command", Value::from("y"))]).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "[project]\nname = \"x\"\n\n[services.web]\ncommand = \"y\"\n"
        );
    }

    #[test]
    fn an_inline_services_table_takes_the_service_inline() {
        let (_temp, path) = project_file("services = { web = { command = \"x\" } }\n");
        add_service(&path, "db", &[("image", Value::from("redis"))]).unwrap();
        let updated = fs::read_to_string(&path).unwrap();
        assert_eq!(
            load_toml(&path, &updated).unwrap().service_names(),
            ["web", "db"]
        );
        assert!(
            updated.starts_with("services = { web = { command = \"x\" }"),
            "{updated}"
        );
    }

    #[test]
    fn refuses_existing_services_invalid_files_and_invalid_fields_leaving_the_file_alone() {
        let (_temp, path) = project_file(COMMENTED);
        let unchanged = || assert_eq!(fs::read_to_string(&path).unwrap(), COMMENTED);

        let exists = add_service(&path, "web", &[("command", Value::from("x"))]).unwrap_err();
        assert!(matches!(exists, EditError::ServiceExists { ref name, .. } if name == "web"));
        assert_eq!(
            exists.to_string(),
            format!("service `web` already exists in {}", path.display())
        );
        unchanged();

        let field = add_service(
            &path,
            "api",
            &[("command", Value::from("x")), ("port", Value::from("80"))],
        )
        .unwrap_err();
        assert_eq!(
            field.to_string(),
            "services.api.port: expected an integer, found a string (write 80 without quotes)"
        );
        unchanged();

        let dependency = add_service(
            &path,
            "api",
            &[
                ("command", Value::from("x")),
                ("depends_on", Value::Array(["cache"].into_iter().collect())),
            ],
        )
        .unwrap_err();
        assert!(
            matches!(dependency, EditError::WouldBeInvalid(_)),
            "{dependency}"
        );
        assert!(
            dependency
                .to_string()
                .contains("service `api` depends on unknown service `cache`"),
            "{dependency}"
        );
        unchanged();

        let name = add_service(&path, "my api", &[("command", Value::from("x"))]).unwrap_err();
        assert!(matches!(name, EditError::InvalidName(_)));
        unchanged();
    }

    #[test]
    fn refuses_a_file_that_does_not_validate() {
        let broken = "[services.web]\ncommand = \"unterminated\n";
        let (_temp, path) = project_file(broken);
        let error = add_service(&path, "api", &[("command", Value::from("x"))]).unwrap_err();
        assert!(matches!(error, EditError::InvalidConfig(_)), "{error}");
        assert!(
            error.to_string().starts_with("error: invalid TOML"),
            "{error}"
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), broken);
    }

    #[test]
    fn keeps_permissions_and_writes_through_symlinks() {
        let (temp, real) = project_file("[project]\nname = \"x\"\n");
        fs::set_permissions(&real, fs::Permissions::from_mode(0o600)).unwrap();
        let link_dir = temp.path().join("elsewhere");
        fs::create_dir(&link_dir).unwrap();
        let link = link_dir.join("locald.toml");
        std::os::unix::fs::symlink(&real, &link).unwrap();

        add_service(&link, "web", &[("command", Value::from("y"))]).unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(fs::read_to_string(&real)
            .unwrap()
            .contains("[services.web]"));
        assert_eq!(
            fs::metadata(&real).unwrap().permissions().mode() & 0o7777,
            0o600
        );
    }
}
