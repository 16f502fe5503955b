//! `locald init`: a first `locald.toml` from a Procfile, a compose file, or
//! a commented starter; never over an existing one unless `--force`.

use crate::harness::Project;

#[test]
fn up_without_a_config_points_to_init_when_a_procfile_is_there() {
    let project = Project::new().file("Procfile", "web: sleep 963301\n");
    project
        .locald(["up", "-d"])
        .code(1)
        .stderr_is("error: no locald.toml here; found Procfile: run `locald init`\n");
}

#[test]
fn init_imports_a_procfile() {
    let project = Project::new().file(
        "Procfile",
        "# processes\nweb: python3 -m http.server $PORT\nworker.1: sleep 963302\n",
    );
    project
        .locald(["init"])
        .success()
        .stderr_has("from Procfile, with services: web, worker-1\n")
        .stderr_has("note: worker-1: named `worker.1` in the Procfile");
    let toml = project.read("locald.toml");
    assert!(
        toml.contains("[services.web]\ncommand = \"python3 -m http.server $PORT\"\n"),
        "{toml}"
    );
    assert!(toml.contains("command = \"sleep 963302\""), "{toml}");
    // What it wrote is a project the other verbs load.
    project
        .locald(["run", "worker-1", "--", "echo ok"])
        .success()
        .stdout_is("ok\n");
}

#[test]
fn init_imports_a_compose_file_with_its_variables() {
    let project = Project::new()
        .file(
            "compose.yaml",
            "services:\n  db:\n    image: postgres:${PG_TAG}\n    environment:\n      POSTGRES_PASSWORD: ${PGPASS}\n    ports: [\"15432:5432\"]\n  app:\n    build: .\n",
        )
        .file(".env", "PG_TAG=16\nPGPASS=from-dotenv\n");
    project
        .locald(["init"])
        .env("PGPASS", "from-environment")
        .success()
        .stderr_has("from compose.yaml, with services: db\n")
        .stderr_has("service `app` not imported: it is built from source");
    let toml = project.read("locald.toml");
    assert!(toml.contains("image = \"postgres:16\""), "{toml}");
    // The environment wins over .env, as in docker compose.
    assert!(toml.contains("from-environment"), "{toml}");
    assert!(!toml.contains("from-dotenv"), "{toml}");
    assert!(toml.contains("port = 5432"), "{toml}");
    project.locald(["compile"]).success();
}

#[test]
fn init_from_names_the_file_to_import() {
    let project = Project::new()
        .file("Procfile", "web: sleep 963303\n")
        .file("other.yml", "services:\n  cache:\n    image: redis:7\n");
    project
        .locald(["init", "--from", "other.yml"])
        .success()
        .stderr_has("with services: cache\n");
    assert!(project.read("locald.toml").contains("[services.cache]"));
    project
        .locald(["init", "--force", "--from", "notes.txt"])
        .code(1)
        .stderr_has("notes.txt");
}

#[test]
fn init_without_anything_to_import_writes_a_starter() {
    let project = Project::new();
    project
        .locald(["init"])
        .success()
        .stderr_has("wrote a starter");
    let toml = project.read("locald.toml");
    let name = project.path().file_name().unwrap().to_string_lossy();
    assert!(toml.contains(&format!("name = \"{name}\"")), "{toml}");
    assert!(toml.contains("# [services.db]"), "{toml}");
    project.locald(["compile"]).success();
}

#[test]
fn init_never_replaces_a_locald_toml_unless_forced() {
    let original = "# mine\n[services.web]\ncommand = \"sleep 963304\"\n";
    let project = Project::with_toml(original).file("Procfile", "api: sleep 963305\n");
    project
        .locald(["init"])
        .code(1)
        .stderr_has("locald.toml exists already: not replaced (`locald init --force`");
    assert_eq!(project.read("locald.toml"), original);
    project.locald(["init", "--force"]).success();
    let toml = project.read("locald.toml");
    assert!(toml.contains("[services.api]"), "{toml}");
    assert!(!toml.contains("# mine"), "{toml}");
}

#[test]
fn init_from_a_file_in_another_directory_is_refused() {
    let project = Project::new().file("elsewhere/Procfile", "web: sleep 963306\n");
    project
        .locald(["init", "--from", "elsewhere/Procfile"])
        .code(1)
        .stderr_has("is in another directory");
    assert!(!project.path().join("locald.toml").exists());
    // From there, it works.
    project
        .locald(["-C", "elsewhere", "init", "--from", "Procfile"])
        .success();
    assert!(project.path().join("elsewhere/locald.toml").exists());
}
