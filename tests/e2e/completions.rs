//! `locald completions SHELL`: the script a shell sources, which completes
//! verbs and, where a service is expected, the project's service names
//! (read from locald.toml without evaluating it, so a broken config still
//! completes), and where a task is expected, its task names (`[tasks]` and
//! `tasks/*.rhai`).

use crate::harness::{locald_bin, Project};

/// What bash offers after `words` (the last one being completed), with the
/// script of `locald completions bash` sourced, in `project`.
fn bash_completes(project: &Project, words: &[&str]) -> Vec<String> {
    let bin_dir = std::path::Path::new(locald_bin()).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let script = format!(
        r#"source <(locald completions bash) || exit 1
COMP_WORDS=({words}); COMP_CWORD={index}; COMP_TYPE=9
_clap_complete_locald locald "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}""#,
        words = quoted.join(" "),
        index = words.len() - 1,
    );
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(project.path())
        .env("PATH", path)
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|line| !line.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completes_verbs_and_the_projects_service_names() {
    // An unknown key: the config does not load, yet names complete.
    let project = Project::with_toml(
        "[services.web]\ncommand = \"x\"\nbogus = 1\n[services.worker]\ncommand = \"y\"\n",
    );
    let verbs = bash_completes(&project, &["locald", "res"]);
    assert_eq!(verbs, ["restart"]);
    for verb in ["restart", "logs", "start", "stop", "run", "up"] {
        let names = bash_completes(&project, &["locald", verb, ""]);
        assert!(
            names.contains(&"web".to_string()) && names.contains(&"worker".to_string()),
            "{verb}: {names:?}"
        );
    }
    assert_eq!(
        bash_completes(&project, &["locald", "logs", "wo"]),
        ["worker"]
    );
    // Not where no service is expected.
    let images = bash_completes(&project, &["locald", "image", "rm", "w"]);
    assert!(images.is_empty(), "{images:?}");
}

#[test]
fn bash_completes_task_names_from_the_config_and_the_tasks_directory() {
    // A broken task and a broken locald.rhai: names still complete, and
    // nothing is evaluated.
    let project = Project::with_toml("[tasks]\ntest = \"cargo test\"\nlint = { bogus = 1 }\n")
        .file("locald.rhai", "loop {}\n")
        .file("tasks/seed.rhai", "// Seed\n")
        .file("tasks/notes.txt", "");
    let mut names: Vec<String> = bash_completes(&project, &["locald", "task", ""])
        .into_iter()
        .filter(|word| !word.starts_with('-'))
        .collect();
    names.sort();
    assert_eq!(names, ["lint", "seed", "test"]);
    assert_eq!(
        bash_completes(&project, &["locald", "task", "se"]),
        ["seed"]
    );
}

#[test]
fn every_shell_gets_a_script() {
    let project = Project::new();
    for shell in ["bash", "zsh", "fish"] {
        project
            .locald(["completions", shell])
            .success()
            .stdout_has("LOCALD_COMPLETE");
    }
    project.locald(["completions", "tcsh"]).code(2);
}
