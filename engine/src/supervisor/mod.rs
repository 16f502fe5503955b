//! The supervisor: runs services, probes health, restarts, captures logs, stops cleanly.
