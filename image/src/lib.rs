//! OCI images for locald: references, the content-addressed store, pull, safe unpack and import.
