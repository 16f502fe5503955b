//! Port primitives.

use rhai::plugin::*;

#[export_module]
pub mod ports_api {
    /// A TCP port that is free on 127.0.0.1 right now.
    #[rhai_fn(return_raw)]
    pub fn free_port(ctx: NativeCallContext) -> Result<i64, Box<EvalAltResult>> {
        crate::project::ports::free_port()
            .map(i64::from)
            .map_err(|e| crate::script::api::fail(&ctx, e))
    }
}
