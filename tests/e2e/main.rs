//! End-to-end tests: each drives the real `locald` binary in a temporary
//! project, with real processes.

mod harness;
mod webdriver;

mod bounded_scripts;
mod build_attacks;
mod build_cache;
mod build_phases;
mod buildpacks;
mod builds;
mod built_services;
mod cli;
mod closed_stdout;
mod cnb_images;
mod compile;
mod completions;
mod config_errors;
mod containers;
mod dashboard;
mod dashboard_page;
mod detached_runs;
mod exec;
mod exit_codes;
mod health;
mod hostile_text;
mod init;
mod primitives;
mod private_dirs;
mod pull_interrupt;
mod reload;
mod repl;
mod rootless_builds;
mod rootless_services;
mod rootless_store;
mod run;
mod service_processes;
mod several_services;
mod stopping;
mod supervise;
mod supervisor_safety;
mod tasks;
mod try_verb;
