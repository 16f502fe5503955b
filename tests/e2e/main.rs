//! End-to-end tests: each drives the real `locald` binary in a temporary
//! project, with real processes.

mod harness;

mod compile;
mod config_errors;
mod containers;
mod pull_interrupt;
mod reload;
mod run;
mod supervise;
mod try_verb;
