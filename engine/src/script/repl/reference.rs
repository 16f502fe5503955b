//! The primitive reference in `docs/scripting.md`, generated from the
//! engines' own metadata (signatures and doc comments), so the documentation
//! says what the engine registers. Test-only code: its test compares the
//! checked-in text with what the engine gives now and fails when it is
//! stale; `LOCALD_BLESS=1` makes it rewrite the text instead.

use super::catalog::{signatures_and_docs, Catalog, Function};

/// Where the generated text starts and ends in `docs/scripting.md`.
pub const BEGIN: &str = "<!-- BEGIN GENERATED REFERENCE (LOCALD_BLESS=1 cargo test -p locald --lib reference rewrites it) -->";
pub const END: &str = "<!-- END GENERATED REFERENCE -->";

/// The reference: every primitive of scripts (verbs, task scripts, the
/// REPL), then those only the REPL has, then the fields of each type.
pub fn markdown(scripts: &Catalog, repl: &Catalog) -> String {
    let mut text = String::new();
    text.push_str("### Primitives of scripts and the REPL\n\n");
    section(&mut text, scripts, |_| true);
    text.push_str("### Only in the REPL\n\n");
    section(&mut text, repl, |f| !scripts.functions.contains(f));
    text.push_str("### Fields of values\n\n| type | fields |\n| --- | --- |\n");
    let mut types: Vec<&str> = scripts
        .functions
        .iter()
        .filter_map(Function::getter)
        .map(|(_, owner)| owner)
        .collect();
    types.sort_unstable();
    types.dedup();
    for ty in types {
        let fields: Vec<String> = scripts
            .fields(ty)
            .into_iter()
            .map(|f| format!("`.{f}`"))
            .collect();
        text.push_str(&format!("| `{ty}` | {} |\n", fields.join(", ")));
    }
    text
}

fn section(text: &mut String, catalog: &Catalog, keep: impl Fn(&Function) -> bool) {
    for name in catalog.names() {
        if name == "to_string" || name == "to_debug" {
            continue;
        }
        let overloads: Vec<&Function> = catalog.overloads(name).filter(|f| keep(f)).collect();
        if overloads.is_empty() {
            continue;
        }
        let (signatures, docs) = signatures_and_docs(&overloads);
        text.push_str(&format!("#### `{name}`\n\n```rhai\n{signatures}```\n\n"));
        for doc in docs {
            text.push_str(doc.join("\n").trim());
            text.push_str("\n\n");
        }
    }
}

/// `document` with the text between the markers replaced by `generated`;
/// `None` when the markers are missing.
pub fn splice(document: &str, generated: &str) -> Option<String> {
    let start = document.find(BEGIN)? + BEGIN.len();
    let end = start + document[start..].find(END)?;
    Some(format!(
        "{}\n\n{}\n\n{}",
        &document[..start],
        generated.trim_end(),
        &document[end..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_in_scripting_md_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/scripting.md");
        let document = std::fs::read_to_string(&path).expect("docs/scripting.md");
        let scripts = Catalog::of(&crate::script::verb_engine());
        let repl = Catalog::of(&super::super::session::repl_engine());
        let generated = markdown(&scripts, &repl);
        let current =
            splice(&document, &generated).expect("the reference markers in docs/scripting.md");
        if current != document {
            if std::env::var_os("LOCALD_BLESS").is_some() {
                std::fs::write(&path, current).expect("write docs/scripting.md");
            } else {
                panic!(
                    "docs/scripting.md's primitive reference is stale: rerun with LOCALD_BLESS=1 to regenerate it"
                );
            }
        }
    }

    #[test]
    fn splicing_replaces_only_between_the_markers() {
        let document = format!("before\n{BEGIN}\nold\n{END}\nafter\n");
        assert_eq!(
            splice(&document, "new\n").unwrap(),
            format!("before\n{BEGIN}\n\nnew\n\n{END}\nafter\n")
        );
        assert_eq!(splice("no markers", "x"), None);
    }

    #[test]
    fn the_reference_has_signatures_docs_and_repl_only_forms() {
        let scripts = Catalog::of(&crate::script::verb_engine());
        let repl = Catalog::of(&super::super::session::repl_engine());
        let text = markdown(&scripts, &repl);
        assert!(text.contains("#### `load_project`\n\n```rhai\nload_project() -> Project\n```\n\nThe project of the current directory"), "{text}");
        let repl_only = &text[text.find("### Only in the REPL").unwrap()..];
        assert!(repl_only.contains("restart(name: String)"), "{repl_only}");
        assert!(
            !repl_only.contains("restart(project: Project"),
            "{repl_only}"
        );
        assert!(
            text.contains("| `Project` | `.name`, `.root`, `.services` |"),
            "{text}"
        );
    }
}
