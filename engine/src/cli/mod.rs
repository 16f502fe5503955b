//! The command line: argument parsing and dispatch to stdlib scripts.
