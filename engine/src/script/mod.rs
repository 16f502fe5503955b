//! The Rhai side: the sandboxed engine, the primitives, and the embedded stdlib.
