//! Evaluating entries: one scope and one growing set of function
//! definitions for the whole session (as rhai's own `rhai-repl` merges each
//! entry's AST into the last), values shown through the engine's
//! `to_string`, and the REPL's commands (`help`, `:help`, `:functions`).

use std::sync::{Arc, Mutex, OnceLock};

use rhai::{Dynamic, Engine, EvalAltResult, Scope, AST};

use super::catalog::Catalog;
use super::complete::Known;
use super::{entry, help, verbs, SharedKnown};
use crate::sandbox::{self, interrupt, ErrorKind, ScriptError};
use crate::script::handles::ProjectHandle;

/// The name errors give the REPL's input.
const SOURCE_NAME: &str = "<repl>";

/// What became of an entry.
#[derive(Debug)]
pub enum Outcome {
    Done,
    /// `exit(n)`.
    Exit(i32),
    Failed(ScriptError),
    /// Stdout's reader has gone: end as SIGPIPE ends a tool.
    OutputClosed,
}

pub struct Session {
    engine: Arc<Engine>,
    scope: Scope<'static>,
    /// Every function the entries defined so far (statements cleared).
    functions: AST,
    known: SharedKnown,
    /// Built on first use (completion, help), off the start-up path.
    catalog: Arc<OnceLock<Catalog>>,
}

/// The REPL's engine: a verb engine and the REPL's own functions.
pub(super) fn repl_engine() -> Engine {
    let mut engine = crate::script::verb_engine();
    verbs::register(&mut engine);
    engine
}

impl Session {
    /// A session with `project` (if any) bound to `project`.
    pub fn new(project: Option<ProjectHandle>, services: Vec<String>) -> Session {
        let mut scope = Scope::new();
        if let Some(project) = project {
            scope.push("project", project);
        }
        let session = Session {
            engine: Arc::new(repl_engine()),
            scope,
            functions: AST::empty(),
            known: Arc::new(Mutex::new(Known {
                services,
                ..Known::default()
            })),
            catalog: Arc::new(OnceLock::new()),
        };
        session.refresh_known();
        session
    }

    pub fn engine(&self) -> Arc<Engine> {
        self.engine.clone()
    }

    pub fn known(&self) -> SharedKnown {
        self.known.clone()
    }

    fn catalog(&self) -> &Catalog {
        self.catalog.get_or_init(|| Catalog::of(&self.engine))
    }

    /// The catalog, shared with the completer; [`Session::prepare_catalog`]
    /// fills it.
    pub fn shared_catalog(&self) -> Arc<OnceLock<Catalog>> {
        self.catalog.clone()
    }

    /// Builds the catalog on another thread, while a person reads the banner,
    /// so that the first Tab does not wait for it.
    pub fn prepare_catalog(&self) {
        let (engine, catalog) = (self.engine.clone(), self.catalog.clone());
        std::thread::spawn(move || {
            catalog.get_or_init(|| Catalog::of(&engine));
        });
    }

    pub fn is_incomplete(&self, source: &str) -> bool {
        entry::is_incomplete(&self.engine, source)
    }

    /// Evaluates one entry (or runs one of the REPL's commands).
    pub fn eval(&mut self, source: &str) -> Outcome {
        if let Some(text) = self.command(source.trim()) {
            return self.show(&text);
        }
        let outcome = self.eval_rhai(source);
        // A Ctrl-C that came after the engine last looked (or while a child
        // ran) must not stop the next entry.
        interrupt::take();
        outcome
    }

    /// `help`, `:help NAME`, `:functions`: the text to print.
    fn command(&self, entry: &str) -> Option<String> {
        match entry {
            "help" | ":help" | ":h" => Some(help::overview()),
            ":functions" => Some(help::functions(self.catalog())),
            _ => {
                let name = entry
                    .strip_prefix(":help ")
                    .or_else(|| entry.strip_prefix(":h "))?;
                Some(help::about(self.catalog(), name.trim()))
            }
        }
    }

    fn show(&self, text: &str) -> Outcome {
        if sandbox::stdout::print_line(text.trim_end()) {
            Outcome::Done
        } else {
            Outcome::OutputClosed
        }
    }

    fn eval_rhai(&mut self, source: &str) -> Outcome {
        let ast = match self.engine.compile_with_scope(&self.scope, source) {
            Ok(ast) => ast,
            Err(e) => return Outcome::Failed(ScriptError::from_parse(SOURCE_NAME, source, &e)),
        };
        let mut ast = self.functions.merge(&ast);
        ast.set_source(SOURCE_NAME);
        let result = self
            .engine
            .eval_ast_with_scope::<Dynamic>(&mut self.scope, &ast);
        // Definitions stay, whatever the statements did.
        ast.clear_statements();
        self.functions = ast;
        self.refresh_known();
        match result {
            Ok(value) if value.is_unit() => Outcome::Done,
            Ok(value) => {
                let text = self.display(value);
                self.show(&text)
            }
            Err(error) => match exit_request(&error) {
                Some(code) => Outcome::Exit(code),
                None => {
                    let mut failure = ScriptError::from_eval(SOURCE_NAME, source, &error, false);
                    if let Some(near) = self.nearest_function(&error) {
                        failure
                            .message
                            .push_str(&format!(" (did you mean `{near}`?)"));
                    }
                    Outcome::Failed(failure)
                }
            },
        }
    }

    /// A value as `print` shows it: through the engine's `to_string`, so a
    /// `Project` or `Service` reads as itself, not as a Rust type path.
    fn display(&self, value: Dynamic) -> String {
        let fallback = value.to_string();
        // `call_fn` reaches only script-defined functions: evaluate the call.
        let mut scope = Scope::new();
        scope.push("value", value);
        self.engine
            .eval_expression_with_scope::<String>(&mut scope, "value.to_string()")
            .unwrap_or(fallback)
    }

    /// For an unknown function, the nearest known name.
    fn nearest_function(&self, error: &EvalAltResult) -> Option<String> {
        let mut error = error;
        while let EvalAltResult::ErrorInFunctionCall(_, _, inner, _) = error {
            error = inner;
        }
        let EvalAltResult::ErrorFunctionNotFound(signature, _) = error else {
            return None;
        };
        let name = signature.split(['(', ' ']).next()?;
        let own: Vec<String> = self
            .functions
            .iter_functions()
            .map(|f| f.name.to_string())
            .collect();
        let names = self
            .catalog()
            .names()
            .into_iter()
            .chain(own.iter().map(String::as_str));
        super::catalog::nearest(name, names).map(str::to_string)
    }

    /// Tells completion the variables (and their types) and functions the
    /// session has now.
    fn refresh_known(&self) {
        let variables = self
            .scope
            .iter_raw()
            .map(|(name, _, value)| {
                (
                    name.to_string(),
                    self.engine.map_type_name(value.type_name()).to_string(),
                )
            })
            .collect();
        let functions = self
            .functions
            .iter_functions()
            .map(|f| f.name.to_string())
            .collect();
        if let Ok(mut known) = self.known.lock() {
            known.variables = variables;
            known.functions = functions;
        }
    }

    /// An entry's error, as the CLI shows a command's; but the session goes
    /// on after a Ctrl-C, so that one is said (`error: interrupted`).
    pub fn show_error(&self, error: &ScriptError) {
        let kind = match error.kind {
            ErrorKind::Interrupted => ErrorKind::Message,
            kind => kind,
        };
        sandbox::show_error(kind, &error.to_string());
    }
}

/// The code of an `exit(n)` that ended the entry, if that is what did.
fn exit_request(error: &EvalAltResult) -> Option<i32> {
    let mut error = error;
    while let EvalAltResult::ErrorInFunctionCall(_, _, inner, _) = error {
        error = inner;
    }
    match error {
        EvalAltResult::ErrorTerminated(value, _) => value
            .clone()
            .try_cast::<verbs::ExitRequest>()
            .map(|verbs::ExitRequest(code)| i32::try_from(code).unwrap_or(1)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_learns_variables_with_their_script_types_and_functions() {
        let mut session = Session::new(None, Vec::new());
        assert!(matches!(
            session.eval("let prog = program(\"echo hi\"); fn twice(x) { x * 2 }"),
            Outcome::Done
        ));
        let known = session.known().lock().unwrap().clone();
        assert!(
            known
                .variables
                .contains(&("prog".to_string(), "Program".to_string())),
            "{known:?}"
        );
        assert_eq!(known.functions, ["twice"]);
    }

    #[test]
    fn definitions_and_variables_outlive_their_entry_even_a_failed_one() {
        let mut session = Session::new(None, Vec::new());
        assert!(matches!(
            session.eval("fn inc(x) { x + 1 } let n = 1; throw \"later\""),
            Outcome::Failed(_)
        ));
        assert!(matches!(session.eval("n = inc(n);"), Outcome::Done));
        assert_eq!(session.scope.get_value::<i64>("n"), Some(2));
    }

    #[test]
    fn exit_ends_the_session_with_its_code_even_from_a_function_or_try() {
        let mut session = Session::new(None, Vec::new());
        assert!(matches!(session.eval("exit(5)"), Outcome::Exit(5)));
        assert!(matches!(
            session.eval("fn leave() { exit(6) } leave()"),
            Outcome::Exit(6)
        ));
        assert!(matches!(
            session.eval("try { exit(7) } catch { 0 }"),
            Outcome::Exit(7)
        ));
        assert!(matches!(session.eval("exit()"), Outcome::Exit(0)));
    }
}
