//! locald's engine: configuration, the compiler from `locald.toml` to Rhai,
//! the Rhai primitives, the supervisor, and the CLI that dispatches to the
//! built-in scripts.

pub mod cli;
pub mod config;
pub mod control;
pub mod model;
pub mod program;
pub mod project;
pub mod sandbox;
pub mod script;
pub mod supervisor;
