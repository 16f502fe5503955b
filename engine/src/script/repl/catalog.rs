//! What the engine knows about its functions, read from Rhai's own metadata
//! (`Engine::gen_fn_metadata_to_json`): names, parameters, return types and
//! doc comments, with Rust type paths turned into the names scripts see.
//! Completion, `help` and `:functions` all read this one catalog, so they
//! cannot drift from what the engine really registers.

use rhai::Engine;
use serde::Deserialize;

/// One registered function (one overload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub name: String,
    /// `(name, type)` of each parameter, `NativeCallContext` left out.
    pub params: Vec<(String, String)>,
    /// The return type; empty for `()`.
    pub returns: String,
    /// The doc comment, `///` and leading spaces removed, one line each.
    pub doc: Vec<String>,
}

impl Function {
    /// `name(param: Type, ...) -> Type`, as `help` shows it.
    pub fn signature(&self) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|(name, ty)| match (name.as_str(), ty.as_str()) {
                (name, "") => name.to_string(),
                ("", ty) => ty.to_string(),
                (name, ty) => format!("{name}: {ty}"),
            })
            .collect();
        let mut text = format!("{}({})", self.name, params.join(", "));
        if !self.returns.is_empty() {
            text.push_str(" -> ");
            text.push_str(&self.returns);
        }
        text
    }

    /// A property getter (`project.name`): the field's name and the type it
    /// belongs to.
    pub fn getter(&self) -> Option<(&str, &str)> {
        let field = self.name.strip_prefix("get$")?;
        let (_, owner) = self.params.first()?;
        Some((field, owner.as_str()))
    }

    /// Whether scripts call this by name (not an operator, getter, setter or
    /// indexer).
    pub fn is_callable(&self) -> bool {
        self.name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && !self.name.contains('$')
    }
}

/// The signatures of `overloads`, one a line, and their doc comments, each
/// distinct one once (overloads often share one).
pub fn signatures_and_docs<'a>(overloads: &[&'a Function]) -> (String, Vec<&'a [String]>) {
    let signatures: String = overloads.iter().map(|f| f.signature() + "\n").collect();
    let mut docs: Vec<&[String]> = Vec::new();
    for f in overloads {
        if !f.doc.is_empty() && !docs.contains(&f.doc.as_slice()) {
            docs.push(&f.doc);
        }
    }
    (signatures, docs)
}

/// Every function of an engine, sorted by name then arity.
#[derive(Debug, Default, Clone)]
pub struct Catalog {
    pub functions: Vec<Function>,
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    functions: Vec<RawFunction>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawFunction {
    name: String,
    #[serde(default)]
    params: Vec<RawParam>,
    #[serde(default)]
    return_type: String,
    #[serde(default)]
    doc_comments: Vec<String>,
}

#[derive(Deserialize)]
struct RawParam {
    #[serde(default)]
    name: Option<String>,
    #[serde(rename = "type", default)]
    ty: Option<String>,
}

impl Catalog {
    /// The functions `engine` registers beside Rhai's standard packages
    /// (locald's primitives and types), plus `extra` ones (the REPL's own).
    pub fn of(engine: &Engine) -> Catalog {
        let json = match engine.gen_fn_metadata_to_json(false) {
            Ok(json) => json,
            // Metadata is built from the engine's own tables; failing to
            // serialize them would be a bug in Rhai: complete nothing then.
            Err(_) => return Catalog::default(),
        };
        let metadata: Metadata = match serde_json::from_str(&json) {
            Ok(metadata) => metadata,
            Err(_) => return Catalog::default(),
        };
        let mut functions: Vec<Function> = metadata
            .functions
            .into_iter()
            .map(|raw| Function {
                name: raw.name,
                params: raw
                    .params
                    .into_iter()
                    .filter(|p| {
                        !p.ty
                            .as_deref()
                            .is_some_and(|t| t.contains("NativeCallContext"))
                    })
                    .map(|p| {
                        (
                            p.name
                                .as_deref()
                                .map(|n| n.trim_start_matches("mut ").to_string())
                                .unwrap_or_default(),
                            p.ty.as_deref().map(clean_type).unwrap_or_default(),
                        )
                    })
                    .collect(),
                returns: clean_type(&raw.return_type),
                doc: clean_doc(&raw.doc_comments),
            })
            .collect();
        // Overloads of one arity (`sleep`'s) by their parameters: the
        // engine lists functions in hash order, and the reference must not
        // change from one build to the next.
        functions.sort_by(|a, b| {
            (a.name.as_str(), a.params.len(), &a.params).cmp(&(
                b.name.as_str(),
                b.params.len(),
                &b.params,
            ))
        });
        functions.dedup();
        Catalog { functions }
    }

    /// The callable functions' names, each once, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .functions
            .iter()
            .filter(|f| f.is_callable())
            .map(|f| f.name.as_str())
            .collect();
        names.dedup();
        names
    }

    /// Every overload of `name`.
    pub fn overloads<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Function> + 'a {
        self.functions.iter().filter(move |f| f.name == name)
    }

    /// The fields of values of type `type_name` (as scripts name the type).
    pub fn fields(&self, type_name: &str) -> Vec<&str> {
        let mut fields: Vec<&str> = self
            .functions
            .iter()
            .filter_map(Function::getter)
            .filter(|(_, owner)| *owner == type_name)
            .map(|(field, _)| field)
            .collect();
        fields.sort_unstable();
        fields.dedup();
        fields
    }

    /// The keys of `name`'s option map, as its documentation lists them
    /// (`options `#{ service, lines }``, or `Options:` then each key in
    /// backticks), over every overload that takes an `options` map.
    pub fn option_keys(&self, name: &str) -> Vec<String> {
        let mut keys: Vec<String> = self
            .overloads(name)
            .filter(|f| f.params.iter().any(|(p, ty)| p == "options" && ty == "Map"))
            .flat_map(|f| documented_options(&f.doc.join(" ")))
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// The callable name nearest to `name`, when one is close enough to be
    /// what was meant (a typo, not another word).
    pub fn nearest(&self, name: &str) -> Option<&str> {
        nearest(name, self.names())
    }
}

/// The candidate nearest to `name`, when one is close enough to be what was
/// meant (a typo, not another word): at most a third of its letters differ.
pub fn nearest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .filter(|candidate| *candidate != name)
        .map(|candidate| (strsim::damerau_levenshtein(name, candidate), candidate))
        .filter(|(distance, candidate)| *distance <= (candidate.len().max(name.len()) / 3).max(1))
        .min()
        .map(|(_, candidate)| candidate)
}

/// The option keys a doc comment names after the word "options".
fn documented_options(doc: &str) -> Vec<String> {
    let Some(at) = doc.find("options").or_else(|| doc.find("Options")) else {
        return Vec::new();
    };
    let rest = &doc[at + "options".len()..];
    let rest = rest.trim_start_matches([':', ' ']);
    let is_key = |word: &str| {
        !word.is_empty()
            && word
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    if let Some(map) = rest.strip_prefix("`#{") {
        // `#{ a, b: #{…}, c: "…" }`: the keys at the top level.
        let mut keys = Vec::new();
        let mut depth = 0;
        let mut item = String::new();
        for c in map.chars() {
            match c {
                '{' | '[' | '(' => depth += 1,
                '}' | ']' | ')' if depth > 0 => depth -= 1,
                '}' | '`' => break,
                ',' if depth == 0 => {
                    keys.push(std::mem::take(&mut item));
                    continue;
                }
                _ => {}
            }
            if depth == 0 {
                item.push(c);
            }
        }
        keys.push(item);
        return keys
            .iter()
            .map(|k| k.split(':').next().unwrap_or("").trim().to_string())
            .filter(|k| is_key(k))
            .collect();
    }
    // A list in prose: every `key` in backticks.
    rest.split('`')
        .skip(1)
        .step_by(2)
        .filter(|word| is_key(word))
        .map(str::to_string)
        .collect()
}

/// A Rust type path as scripts know it: `rhai::Map` is `Map`,
/// `ImmutableString` is `String`, `i64` is `int`, a module path is dropped
/// (`locald::program::Program` is `Program`), `Result<T, Box<..>>` is `T`.
pub fn clean_type(ty: &str) -> String {
    let ty = ty
        .trim()
        .trim_start_matches('&')
        .trim_start_matches("mut ")
        .trim();
    if let Some((head, rest)) = ty.split_once('<') {
        let head = head.rsplit("::").next().unwrap_or(head);
        let args = rest.strip_suffix('>').unwrap_or(rest);
        return match head {
            // What a fallible function returns when it does not fail.
            "Result" | "RhaiResultOf" | "Option" => clean_type(first_argument(args)),
            "Vec" => "Array".to_string(),
            other => other.to_string(),
        };
    }
    let base = ty.rsplit("::").next().unwrap_or(ty);
    match base {
        "()" => String::new(),
        "i64" | "i32" | "INT" => "int".to_string(),
        "f64" | "FLOAT" => "float".to_string(),
        "ImmutableString" | "str" | "String" | "string" => "String".to_string(),
        "Dynamic" => "any".to_string(),
        "RhaiResult" => "any".to_string(),
        "ProjectHandle" => "Project".to_string(),
        "ServiceHandle" => "Service".to_string(),
        other => other.to_string(),
    }
}

/// The first top-level argument of a generic list (`A, B<C, D>` gives `A`).
fn first_argument(args: &str) -> &str {
    let mut depth = 0;
    for (i, c) in args.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => depth -= 1,
            ',' if depth == 0 => return &args[..i],
            _ => {}
        }
    }
    args
}

fn clean_doc(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .flat_map(|block| block.lines())
        .map(|line| {
            let line = line.trim_start();
            let line = line
                .strip_prefix("///")
                .or_else(|| line.strip_prefix("//!"))
                .unwrap_or(line);
            line.strip_prefix(' ').unwrap_or(line).to_string()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_keys_come_from_the_documentation() {
        use crate::script::api::{
            capture, container, options::option_names, process, supervisor, waiting,
        };
        let catalog = Catalog::of(&crate::script::verb_engine());
        // The documented keys are exactly the fields the primitive reads: a
        // doc comment that forgets an option fails here.
        let sorted = |names: &[&str]| {
            let mut names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            names.sort();
            names
        };
        for (primitive, fields) in [
            ("print_logs", option_names::<supervisor::LogsOptions>()),
            ("logs", option_names::<supervisor::ReadLogsOptions>()),
            ("print_status", option_names::<supervisor::StatusOptions>()),
            ("up", option_names::<supervisor::UpArgs>()),
            ("run_command", option_names::<process::RunCommandOptions>()),
            ("capture_command", option_names::<capture::CaptureOptions>()),
            (
                "wait_healthy",
                option_names::<waiting::WaitHealthyOptions>(),
            ),
            (
                "run_container",
                option_names::<container::RunContainerOptions>(),
            ),
            ("import_image", option_names::<container::ImportOptions>()),
        ] {
            assert_eq!(
                catalog.option_keys(primitive),
                sorted(fields),
                "{primitive}"
            );
        }
        let run = catalog.option_keys("run_container");
        assert!(
            !run.iter().any(|k| k == "always" || k == "Program"),
            "{run:?}"
        );
        assert!(catalog.option_keys("free_port").is_empty());
    }

    #[test]
    fn rust_types_become_script_types() {
        assert_eq!(clean_type("rhai::Map"), "Map");
        assert_eq!(clean_type("&str"), "String");
        assert_eq!(clean_type("i64"), "int");
        assert_eq!(clean_type("()"), "");
        assert_eq!(
            clean_type("Result<locald::script::handles::ProjectHandle, Box<EvalAltResult>>"),
            "Project"
        );
        assert_eq!(clean_type("RhaiResultOf<i64>"), "int");
        assert_eq!(
            clean_type("core::result::Result<locald::script::handles::ServiceHandle, alloc::boxed::Box<rhai::EvalAltResult>>"),
            "Service"
        );
        assert_eq!(clean_type("Result<(), Box<EvalAltResult>>"), "");
        assert_eq!(clean_type("mut rhai::Map"), "Map");
    }
}
