//! The Rhai bindings: the primitives (locald's public scripting API) and the
//! types scripts see, over the [project](crate::project) and
//! [supervisor](crate::supervisor) layers; the embedded stdlib whose scripts
//! are the CLI's verbs; running verbs, script files and the REPL in the
//! [sandbox](crate::sandbox).

pub mod api;
mod failure;
mod handles;
mod repl;
pub mod stdlib;
mod verb;

pub(crate) use failure::throw;
pub use handles::{ProjectHandle, ServiceHandle};
pub use repl::repl;
pub use verb::{run_file, run_verb, verb_engine};
