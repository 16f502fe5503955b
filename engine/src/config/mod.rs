//! Configuration: parsing and validating `locald.toml`, compiling it to Rhai, and editing it.
