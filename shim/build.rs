//! Links `locald-shim` with packed relative relocations (`DT_RELR`) when the toolchain and C
//! library support them (binutils 2.38+, glibc 2.36+, e.g. Debian 12).
//!
//! The shim is started for every container and, as a position-independent Rust binary, carries
//! some 21,000 relative relocations that the dynamic loader applies one by one at each start
//! (~0.5 ms here); packed, they take a few kilobytes and a fraction of that time. Nothing else
//! changes: the binary stays position-independent (ASLR) and its relocations read-only after
//! start-up.

use std::io::Write;
use std::process::{Command, Stdio};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let linux_gnu = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    let native = std::env::var("TARGET").ok() == std::env::var("HOST").ok();
    if linux_gnu && native && linker_supports_relr() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Links and runs a trivial C program with the flag: refused by old linkers, and the result
/// refused by a C library that cannot load it.
fn linker_supports_relr() -> bool {
    let Some(out_dir) = std::env::var_os("OUT_DIR") else {
        return false;
    };
    let probe = std::path::Path::new(&out_dir).join("relr-probe");
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let Ok(mut child) = Command::new(compiler)
        .args([
            "-x",
            "c",
            "-",
            "-pie",
            "-fPIE",
            "-Wl,-z,pack-relative-relocs",
            "-o",
        ])
        .arg(&probe)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        return false;
    };
    if let Some(mut stdin) = child.stdin.take() {
        let source = "static int x; int *p = &x; int main(void) { return *p; }\n";
        if stdin.write_all(source.as_bytes()).is_err() {
            return false;
        }
    }
    let linked = child.wait().is_ok_and(|status| status.success());
    linked
        && Command::new(&probe)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
}
