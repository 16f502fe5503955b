//! A `Procfile` (foreman, honcho, Heroku): one `name: command` a line,
//! `#` comments and blank lines ignored. Commands already read `$PORT`, as
//! locald's do, so each line becomes a service as it is.

use std::path::Path;

use super::{render, service_name, ImportError, Imported, ServiceOut};

/// The `locald.toml` for the Procfile at `path` (its text `text`).
pub fn from_procfile(path: &Path, text: &str) -> Result<Imported, ImportError> {
    let mut services: Vec<ServiceOut> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let error = |message: String| ImportError::Procfile {
            path: path.to_path_buf(),
            line: line_no,
            message,
        };
        let Some((name, command)) = trimmed.split_once(':') else {
            return Err(error("expected `name: command`".to_string()));
        };
        let (name, command) = (name.trim(), command.trim());
        if name.is_empty() || command.is_empty() {
            return Err(error("expected `name: command`".to_string()));
        }
        let mut service = ServiceOut::new(&service_name(name));
        if service.name.is_empty() {
            return Err(error(format!("`{name}` gives no usable service name")));
        }
        if service.name != name {
            service.note(format!("named `{name}` in the Procfile"));
        }
        if services.iter().any(|other| other.name == service.name) {
            return Err(error(format!("a second process named `{}`", service.name)));
        }
        service.set("command", command);
        services.push(service);
    }
    if services.is_empty() {
        return Err(ImportError::Empty {
            path: path.to_path_buf(),
        });
    }
    let header = vec![format!(
        "Made by `locald init` from {}.",
        path.file_name().map_or_else(
            || path.display().to_string(),
            |name| name.to_string_lossy().into_owned()
        )
    )];
    let config_path = path.with_file_name(crate::config::TOML_FILE);
    render(&config_path, &header, None, services, Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn import(text: &str) -> Result<Imported, ImportError> {
        from_procfile(Path::new("/work/shop/Procfile"), text)
    }

    #[test]
    fn each_line_is_a_service() {
        let imported = import(
            "# the app\nweb: bundle exec rails s -p $PORT\n\nworker:   bundle exec sidekiq -c 2 # busy\nrelease: ./migrate\n",
        )
        .unwrap();
        assert_eq!(imported.services, ["web", "worker", "release"]);
        assert_eq!(
            imported.toml,
            "# Made by `locald init` from Procfile.\n\n[services.web]\ncommand = \"bundle exec rails s -p $PORT\"\n\n[services.worker]\ncommand = \"bundle exec sidekiq -c 2 # busy\"\n\n[services.release]\ncommand = \"./migrate\"\n"
        );
        assert!(imported.notes.is_empty());
    }

    #[test]
    fn odd_names_are_cleaned_and_noted() {
        let imported = import("web.1: python3 -m http.server $PORT\n").unwrap();
        assert_eq!(imported.services, ["web-1"]);
        assert_eq!(imported.notes, ["web-1: named `web.1` in the Procfile"]);
        assert!(imported
            .toml
            .contains("# named `web.1` in the Procfile\n[services.web-1]"));
    }

    #[test]
    fn bad_lines_name_the_file_and_line() {
        let error = import("web: ok\njust words\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "/work/shop/Procfile:2: expected `name: command`"
        );
        let error = import("web: a\nweb: b\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "/work/shop/Procfile:2: a second process named `web`"
        );
        let error = import("# nothing\n\n").unwrap_err();
        assert_eq!(error.to_string(), "/work/shop/Procfile declares no service");
    }
}
