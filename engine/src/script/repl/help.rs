//! `help`, `help("name")` / `:help name`, and `:functions`: signatures and
//! doc comments from the engine's catalog.

use super::catalog::{signatures_and_docs, Catalog};

/// What bare `help` prints.
pub fn overview() -> String {
    "\
Enter Rhai; each entry's value is printed. Entries share variables and functions.
  help(\"name\"), :help name   a primitive's signatures and documentation
  :functions                 every primitive, with its signatures
  project                    the project this session is attached to
  status(), start(\"web\"), stop(), stop(\"web\"), restart(\"web\"), reload(), down(),
  logs(\"web\"), print_logs(\"web\", #{ follow: true }), wait_healthy(), dashboard_url()
                             the supervisor verbs, for this project
  tasks(), run_task(\"seed\"), run_task(\"test\", [\"--release\"])
                             the project's tasks
  exit(n), Ctrl-D            leave; Ctrl-C clears the line or stops a running entry
Tab completes names, fields (`project.`) and service names in strings;
Ctrl-R searches history; a line starting with a space stays out of it.
"
    .to_string()
}

/// `help("name")`: every overload's signature, then the doc comment (each
/// distinct comment once); or the nearest names when there is none.
pub fn about(catalog: &Catalog, name: &str) -> String {
    let overloads: Vec<_> = catalog.overloads(name).collect();
    if overloads.is_empty() {
        return match catalog.nearest(name) {
            Some(near) => format!("no function named `{name}`; did you mean `{near}`?\n"),
            None => format!("no function named `{name}` (`:functions` lists them)\n"),
        };
    }
    let (mut text, docs) = signatures_and_docs(&overloads);
    for doc in docs {
        text.push('\n');
        for line in doc {
            text.push_str("  ");
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}

/// `:functions`: each callable function's signatures, one a line.
pub fn functions(catalog: &Catalog) -> String {
    let mut text = String::new();
    for f in catalog.functions.iter().filter(|f| f.is_callable()) {
        text.push_str(&f.signature());
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::of(&crate::script::verb_engine())
    }

    #[test]
    fn help_shows_signatures_and_the_doc_comment() {
        let text = about(&catalog(), "load_project");
        assert!(text.starts_with("load_project() -> Project\n"), "{text}");
        assert!(
            text.contains("The project of the current directory"),
            "{text}"
        );
    }

    #[test]
    fn help_for_a_typo_suggests_the_name() {
        assert_eq!(
            about(&catalog(), "lod_project"),
            "no function named `lod_project`; did you mean `load_project`?\n"
        );
    }

    #[test]
    fn functions_lists_primitives_not_operators_or_getters() {
        let text = functions(&catalog());
        assert!(text.lines().any(|l| l.starts_with("free_port(")), "{text}");
        assert!(!text.contains("get$"), "{text}");
    }
}
