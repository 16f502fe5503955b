//! The Rhai side: the sandboxed engine, the primitives (locald's public
//! scripting API), the declaration primitives a project is made of, and the
//! embedded stdlib whose scripts are the CLI's verbs.

pub mod api;
pub mod budget;
mod error;
mod handles;
pub(crate) mod interrupt;
mod load;
mod sandbox;
pub mod stdlib;
mod verb;

pub use error::{LoadError, ScriptError};
pub use handles::{ProjectHandle, ServiceHandle};
pub use load::load_project;
pub use verb::{repl, run_file, run_verb, verb_engine};
