//! `locald-shim`: runs one OCI bundle with libcontainer.
fn main() {}
