//! Tab completion: primitive and function names with their signatures,
//! variables in scope, `.field` names after a variable of a known type, and
//! service names inside a string argument. Everything comes from the engine's
//! catalog and the session's scope, never from a list kept by hand.

use std::sync::{Arc, Mutex, OnceLock};

use reedline::{Completer, Span, Suggestion};
use rhai::Engine;

use super::catalog::Catalog;

/// What completion knows about the session, updated after each entry.
#[derive(Debug, Default, Clone)]
pub struct Known {
    /// `(name, type)` of each variable in scope, the type as scripts name it.
    pub variables: Vec<(String, String)>,
    /// The functions the session's entries defined.
    pub functions: Vec<String>,
    /// The project's service names.
    pub services: Vec<String>,
}

/// The completer, over the session's catalog (built once, off the start-up
/// path).
pub struct ReplCompleter {
    engine: Arc<Engine>,
    catalog: Arc<OnceLock<Catalog>>,
    known: Arc<Mutex<Known>>,
}

impl ReplCompleter {
    pub fn new(
        engine: Arc<Engine>,
        catalog: Arc<OnceLock<Catalog>>,
        known: Arc<Mutex<Known>>,
    ) -> Self {
        ReplCompleter {
            engine,
            catalog,
            known,
        }
    }
}

impl Completer for ReplCompleter {
    fn complete(&mut self, line: &str, pos: usize) -> Vec<Suggestion> {
        let catalog = self.catalog.get_or_init(|| Catalog::of(&self.engine));
        let known = self.known.lock().map(|k| k.clone()).unwrap_or_default();
        complete(catalog, &known, line, pos)
    }
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The suggestions for the word ending at `pos` in `line`.
pub fn complete(catalog: &Catalog, known: &Known, line: &str, pos: usize) -> Vec<Suggestion> {
    let pos = pos.min(line.len());
    let before = &line[..pos];
    if let Some(start) = open_string_start(before) {
        let typed = &before[start..];
        return known
            .services
            .iter()
            .filter(|name| name.starts_with(typed))
            .map(|name| suggestion(name, None, Span::new(start, pos), false))
            .collect();
    }
    let start = before
        .char_indices()
        .rev()
        .take_while(|&(_, c)| is_ident(c))
        .last()
        .map_or(pos, |(i, _)| i);
    let word = &before[start..];
    let span = Span::new(start, pos);
    if let Some(function) = option_map_of(&before[..start]) {
        return catalog
            .option_keys(function)
            .into_iter()
            .filter(|key| key.starts_with(word))
            .map(|key| suggestion(&key, Some(format!("option of {function}")), span, false))
            .collect();
    }
    if let Some(receiver) = before[..start].strip_suffix('.') {
        let owner_start = receiver
            .char_indices()
            .rev()
            .take_while(|&(_, c)| is_ident(c))
            .last()
            .map_or(receiver.len(), |(i, _)| i);
        let owner = &receiver[owner_start..];
        let Some((_, ty)) = known.variables.iter().find(|(name, _)| name == owner) else {
            return Vec::new();
        };
        return catalog
            .fields(ty)
            .into_iter()
            .filter(|field| field.starts_with(word))
            .map(|field| suggestion(field, Some(ty.clone()), span, false))
            .collect();
    }
    if word.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<Suggestion> = Vec::new();
    for (name, ty) in &known.variables {
        if name.starts_with(word) {
            out.push(suggestion(name, Some(ty.clone()), span, false));
        }
    }
    for name in &known.functions {
        if name.starts_with(word) {
            out.push(suggestion(name, Some("your function".into()), span, false));
        }
    }
    for name in catalog.names() {
        if name.starts_with(word) {
            let signatures: Vec<String> = catalog.overloads(name).map(|f| f.signature()).collect();
            out.push(suggestion(
                name,
                Some(signatures.join("  |  ")),
                span,
                false,
            ));
        }
    }
    out
}

fn suggestion(value: &str, description: Option<String>, span: Span, space: bool) -> Suggestion {
    Suggestion {
        value: value.to_string(),
        description,
        span,
        append_whitespace: space,
        ..Suggestion::default()
    }
}

/// The function whose option map `#{ … }` is open at the end of `before`,
/// when the end is where a key goes (just after `#{` or a `,`).
fn option_map_of(before: &str) -> Option<&str> {
    if !before.trim_end().ends_with(['{', ',']) {
        return None;
    }
    // Open brackets, outside strings: (byte position, bracket, is a map).
    let mut open: Vec<(usize, char, bool)> = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut previous = ' ';
    for (i, c) in before.char_indices() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '"' | '`' | '\'' => quote = Some(c),
                '(' | '[' | '{' => open.push((i, c, c == '{' && previous == '#')),
                ')' | ']' | '}' => {
                    open.pop();
                }
                _ => {}
            },
        }
        previous = c;
    }
    let [.., (call, '(', false), (_, '{', true)] = open.as_slice() else {
        return None;
    };
    let name_end = before[..*call].trim_end();
    let name_start = name_end
        .char_indices()
        .rev()
        .take_while(|&(_, c)| is_ident(c))
        .last()
        .map(|(i, _)| i)?;
    Some(&name_end[name_start..])
}

/// Where the text of a string literal still open at the end of `before`
/// starts (just after its quote).
fn open_string_start(before: &str) -> Option<usize> {
    let mut open: Option<(char, usize)> = None;
    let mut escaped = false;
    for (i, c) in before.char_indices() {
        match open {
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some((quote, _)) if c == quote => open = None,
            Some(_) => {}
            None if c == '"' || c == '`' => open = Some((c, i + 1)),
            None => {}
        }
    }
    open.map(|(_, start)| start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::of(&crate::script::verb_engine())
    }

    fn values(suggestions: Vec<Suggestion>) -> Vec<String> {
        suggestions.into_iter().map(|s| s.value).collect()
    }

    #[test]
    fn a_prefix_completes_to_primitives_with_their_signature() {
        let suggestions = complete(&catalog(), &Known::default(), "loa", 3);
        let load = suggestions
            .iter()
            .find(|s| s.value == "load_project")
            .expect("load_project offered");
        assert_eq!(load.span, Span::new(0, 3));
        assert_eq!(
            load.description.as_deref(),
            Some("load_project() -> Project")
        );
    }

    #[test]
    fn a_field_after_a_variable_of_a_known_type() {
        let known = Known {
            variables: vec![("p".into(), "Project".into())],
            ..Known::default()
        };
        let fields = values(complete(&catalog(), &known, "p.na", 4));
        assert_eq!(fields, ["name"]);
        let all = values(complete(&catalog(), &known, "p.", 2));
        assert!(all.contains(&"services".to_string()), "{all:?}");
    }

    #[test]
    fn variables_and_own_functions_are_offered() {
        let known = Known {
            variables: vec![("shop_port".into(), "int".into())],
            functions: vec!["shout".into()],
            ..Known::default()
        };
        let got = values(complete(&catalog(), &known, "x = sh", 6));
        assert!(got.contains(&"shop_port".to_string()));
        assert!(got.contains(&"shout".to_string()));
        assert!(got.contains(&"shell_join".to_string()));
    }

    #[test]
    fn option_keys_inside_an_option_map() {
        let known = Known::default();
        let line = "print_logs(project, #{ fo";
        let got = complete(&catalog(), &known, line, line.len());
        assert_eq!(values(got.clone()), ["follow"]);
        assert_eq!(got[0].span, Span::new(line.len() - 2, line.len()));
        let line = "up(project, #{ detach: true, ";
        let all = values(complete(&catalog(), &known, line, line.len()));
        assert!(all.contains(&"wait".to_string()), "{all:?}");
        // A value position, or a map that is no call's option map, is not.
        let line = "up(project, #{ detach: tr";
        assert!(
            !values(complete(&catalog(), &known, line, line.len())).contains(&"wait".to_string())
        );
        let line = "let m = #{ fo";
        assert!(complete(&catalog(), &known, line, line.len()).is_empty());
    }

    #[test]
    fn service_names_inside_a_string() {
        let known = Known {
            services: vec!["web".into(), "worker".into(), "db".into()],
            ..Known::default()
        };
        let got = complete(&catalog(), &known, "restart(\"w", 10);
        assert_eq!(values(got.clone()), ["web", "worker"]);
        assert_eq!(got[0].span, Span::new(9, 10));
        assert!(complete(&catalog(), &known, "restart(\"web\")", 14).is_empty());
    }
}
