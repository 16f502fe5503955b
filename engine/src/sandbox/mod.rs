//! The sandboxed Rhai engine every script runs in, the project's own
//! declarations included: `Engine::new_raw()` with
//! the standard package only (no file system, no `import` resolver, no
//! `eval`), bounded by operation, depth and size limits, by memory and time
//! (see [`budget`]), and cancelled by Ctrl-C through the
//! progress hook.

use std::sync::OnceLock;

use rhai::packages::{Package, StandardPackage};
use rhai::{Dynamic, Engine, Module, Shared};

pub mod budget;
mod error;
pub mod interrupt;
pub mod stdout;
pub mod terminal_text;

pub use budget::Limits;
pub use error::{show_error, ErrorKind, ScriptError, Thrown};

use budget::Meter;

/// Enough for any sane task script; a runaway loop ends with a clear error.
const MAX_OPERATIONS: u64 = 500_000_000;

/// Rhai's standard library, built once per process: a command that loads a
/// project makes two engines, and building the package is most of an engine's
/// cost.
fn standard_package() -> Shared<Module> {
    static PACKAGE: OnceLock<Shared<Module>> = OnceLock::new();
    PACKAGE
        .get_or_init(|| StandardPackage::new().as_shared_module())
        .clone()
}

/// What a Ctrl-C does to an engine's evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnInterrupt {
    /// Ends it and consumes the Ctrl-C: the outermost engine (a verb, a task
    /// script, a REPL entry).
    Consume,
    /// Ends it and leaves the Ctrl-C for the engine that called in (a project
    /// loaded by a primitive), so that the whole script stops, not only the
    /// load.
    Propagate,
}

/// The token a Ctrl-C ends an evaluation with; any other token is the reason
/// a limit stopped it.
pub const INTERRUPTED: &str = "interrupted";

/// A sandboxed engine with no locald primitives.
pub fn base_engine(limits: Limits, on_interrupt: OnInterrupt) -> Engine {
    let mut engine = Engine::new_raw();
    engine.register_global_module(standard_package());
    engine.disable_symbol("eval");
    engine
        .set_max_operations(MAX_OPERATIONS)
        .set_max_call_levels(64)
        .set_max_expr_depths(128, 64)
        .set_max_string_size(limits.string)
        .set_max_array_size(limits.collection)
        .set_max_map_size(limits.collection)
        .set_fail_on_invalid_map_property(true);
    let meter = Meter::new(limits);
    engine.on_progress(move |operations| {
        let interrupted = match on_interrupt {
            OnInterrupt::Consume => interrupt::take(),
            OnInterrupt::Propagate => interrupt::pending(),
        };
        if interrupted {
            return Some(Dynamic::from(INTERRUPTED));
        }
        meter.check(operations).map(Dynamic::from)
    });
    engine.on_print(|text| {
        stdout::print_line(text);
    });
    engine.on_debug(|text, source, pos| {
        let text = crate::sandbox::terminal_text::for_terminal(text);
        match (source, pos.line()) {
            (Some(source), Some(line)) => eprintln!("{source}:{line}: {text}"),
            _ => eprintln!("{text}"),
        }
    });
    engine
}
