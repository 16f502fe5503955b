//! TLS for registries: rustls with the `ring` provider, chosen once per
//! process. Pure Rust, so locald links no OpenSSL: nothing to install to
//! build it, and no shared library to load and relocate at every start of
//! the `locald` binary (that cost most of `locald run`'s start-up).

use std::sync::Once;

/// Makes `ring` the process's rustls provider; later calls do nothing.
pub fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Fails only when another provider is already installed, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
