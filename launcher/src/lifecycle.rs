//! `lifecycle`: the detect and build phases, run inside the build container (the builder
//! image, as its non-root `CNB_USER_ID`, with the app at `/workspace`, the layers at
//! `/layers`, `/platform` and the builder's `/cnb` at their real paths), as the reference
//! lifecycle's `detector` then `builder`: `<layers>/group.toml`, `<layers>/plan.toml`, the
//! layers and `<layers>/config/metadata.toml`, which the exporter reads back
//! (`locald_cnb::build::read_built`) on the host. Buildpack output goes to stdout.
//!
//! Static, like the launcher, so that it runs in any builder image. It refuses to run as
//! root, as the reference detector and builder do: buildpacks are untrusted code. Exit
//! codes are the Platform API's: 20 no group passed, 21 a buildpack errored in detect,
//! 51 a buildpack failed to build, 1 anything else.

use std::path::PathBuf;

use locald_cnb::build::build;
use locald_cnb::detect::{detect, order_path};
use locald_cnb::env::Env;
use locald_cnb::exec::HostExecutor;
use locald_cnb::formats::order::read_order;
use locald_cnb::formats::target::RunTarget;
use locald_cnb::{Context, Dirs, Limits};

fn main() {
    std::process::exit(run());
}

fn var_or(name: &str, default: &str) -> PathBuf {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map_or_else(|| default.into(), PathBuf::from)
}

fn fail(message: impl std::fmt::Display, code: i32) -> i32 {
    eprintln!("lifecycle: {message}");
    code
}

fn run() -> i32 {
    // SAFETY: geteuid cannot fail and has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return fail(
            "refusing to run buildpacks as root: run the build as the builder's CNB_USER_ID",
            1,
        );
    }
    let scratch = match tempfile::Builder::new().prefix("cnb-lifecycle-").tempdir() {
        Ok(dir) => dir,
        Err(e) => return fail(format!("cannot create a scratch directory: {e}"), 1),
    };
    let cnb = var_or("CNB_DIR", "/cnb");
    let build_config = cnb.join("build-config");
    let dirs = Dirs {
        app: var_or("CNB_APP_DIR", "/workspace"),
        layers: var_or("CNB_LAYERS_DIR", "/layers"),
        platform: var_or("CNB_PLATFORM_DIR", "/platform"),
        buildpacks: cnb.join("buildpacks"),
        build_config: build_config.is_dir().then_some(build_config),
        scratch: scratch.path().to_path_buf(),
    };
    let limits = Limits::DEFAULT;
    let os_release = std::fs::read_to_string("/etc/os-release").ok();
    let target = RunTarget::default().complete(os_release.as_deref());
    let context = Context::new(
        &dirs,
        &HostExecutor,
        target,
        Env::for_build(std::env::vars()),
    );
    let order = match read_order(&order_path(&dirs.layers, &cnb.join("order.toml")), &limits) {
        Ok(order) => order,
        Err(e) => return fail(e, 1),
    };
    let detected = match detect(&context, &order) {
        Ok(detected) => detected,
        Err(e) => return fail(&e, e.exit_code()),
    };
    let written = detected.write(
        &dirs.layers.join("group.toml"),
        &dirs.layers.join("plan.toml"),
    );
    if let Err(e) = written {
        return fail(e, 1);
    }
    for member in &detected.group.group {
        println!("detected {}", member.key());
    }
    let mut stdout = std::io::stdout();
    match build(&context, &detected.group, &detected.plan, &mut stdout) {
        Ok(metadata) => {
            println!(
                "built: {} process types{}",
                metadata.processes.len(),
                metadata
                    .default_process
                    .map(|p| format!(", default `{p}`"))
                    .unwrap_or_default()
            );
            0
        }
        Err(e) => fail(&e, e.exit_code()),
    }
}
