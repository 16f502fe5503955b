//! OCI runtime specs and bundles for locald containers, and the client side of `locald-shim`.
