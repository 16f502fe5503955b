//! The `locald.toml` that `locald init` writes when there is nothing to
//! import: one example service and every common key, commented, so that a
//! person learns the format by editing it.

/// A starter `locald.toml` for the project `name`.
pub fn starter(name: &str) -> String {
    let name = toml_edit::Value::from(name).to_string();
    let name = name.trim();
    format!(
        r#"# locald.toml: the services of this project (`locald up` runs them).
# The manual: https://github.com/locald/locald/blob/main/docs/manual.md

[project]
name = {name}

# A service runs a shell command with its own $PORT (a free port, kept).
[services.web]
command = "python3 -m http.server $PORT"
# health = {{ http = "/" }}            # ready when GET / answers (default: the port, if others depend on it)
# port = 8000                        # a fixed port instead of a free one
# env = {{ DEBUG = "1" }}              # extra environment (also read: .env)
# workdir = "web"                    # relative to this file
# restart = "on-failure"             # or "always", "never"

# A container service runs an OCI image (no Docker needed):
# [services.db]
# image = "postgres:16"
# env = {{ POSTGRES_PASSWORD = "dev" }}
# port = 5432                        # containers share the host network
# volumes = ["./.data/db:/var/lib/postgresql/data"]

# A service that needs another one healthy first:
# [services.api]
# command = "cargo run"
# depends_on = ["db"]
# env = {{ DATABASE_URL = "postgres://postgres:dev@127.0.0.1:${{services.db.port}}/postgres" }}
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_starter_loads_and_so_does_each_commented_service() {
        let path = std::path::Path::new("/work/shop/locald.toml");
        let text = starter("my \"shop\"");
        let project = crate::config::load_toml(path, &text).unwrap();
        assert_eq!(project.name, "my \"shop\"");
        assert_eq!(project.service_names(), ["web"]);
        // Uncommenting every example gives a valid project too.
        let uncommented: String = text
            .lines()
            .map(|line| match line.strip_prefix("# ") {
                Some(rest)
                    if !rest.starts_with("locald.toml")
                        && !rest.starts_with("The manual")
                        && !rest.starts_with("A ") =>
                {
                    rest
                }
                _ => line,
            })
            .map(|line| format!("{line}\n"))
            .collect();
        let project = crate::config::load_toml(path, &uncommented)
            .unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
        assert_eq!(project.service_names(), ["web", "db", "api"]);
    }
}
