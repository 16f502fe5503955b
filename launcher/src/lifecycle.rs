//! `lifecycle`: the detect and build phases, run inside the build container (the builder
//! image, as its non-root `CNB_USER_ID`, with the app at `/workspace`, the layers at
//! `/layers`, `/platform` and the builder's `/cnb` at their real paths), as the reference
//! lifecycle's `detector` and `builder`: `<layers>/group.toml`, `<layers>/plan.toml`, the
//! layers and `<layers>/config/metadata.toml`, which the exporter reads back
//! (`locald_cnb::build::read_built`) on the host. Buildpack output goes to stdout.
//!
//! `lifecycle detect` runs detection only and leaves `group.toml` and `plan.toml` in
//! `/layers`; `lifecycle build` reads them back from there and builds, as the reference
//! `detector` and `builder` do in separate containers (the engine's `Build` primitives run
//! it so, one container per phase); `lifecycle` alone runs both, as the reference
//! `creator` does.
//!
//! It prints a header before each phase (`===> DETECTING`, `===> BUILDING`, as the
//! reference lifecycle does) and, with `CNB_LOG_LEVEL=debug`, every buildpack's detect
//! result and output (otherwise detect output is shown only when detection fails).
//!
//! Static, like the launcher, so that it runs in any builder image. It refuses to run as
//! root, as the reference detector and builder do: buildpacks are untrusted code. Exit
//! codes are the Platform API's: 20 no group passed, 21 a buildpack errored in detect,
//! 51 a buildpack failed to build, 1 anything else.

use std::path::{Path, PathBuf};

use locald_cnb::build::build;
use locald_cnb::detect::{detect, order_path, Detected};
use locald_cnb::env::Env;
use locald_cnb::exec::HostExecutor;
use locald_cnb::formats::order::{read_order, Group};
use locald_cnb::formats::plan::Plan;
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

/// Which phases one invocation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phases {
    Detect,
    Build,
    Both,
}

/// The phases the arguments ask for: `detect`, `build`, or none for both.
fn phases(args: &[String]) -> Result<Phases, String> {
    match args {
        [] => Ok(Phases::Both),
        [phase] if phase == "detect" => Ok(Phases::Detect),
        [phase] if phase == "build" => Ok(Phases::Build),
        other => Err(format!(
            "usage: lifecycle [detect | build] (not `{}`)",
            other.join(" ")
        )),
    }
}

fn run() -> i32 {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let phases = match phases(&args) {
        Ok(phases) => phases,
        Err(usage) => return fail(usage, 1),
    };
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
    let os_release = std::fs::read_to_string("/etc/os-release").ok();
    let target = RunTarget::default().complete(os_release.as_deref());
    let context = Context::new(
        &dirs,
        &HostExecutor,
        target,
        Env::for_build(std::env::vars()),
    );
    let (group_path, plan_path) = (
        dirs.layers.join("group.toml"),
        dirs.layers.join("plan.toml"),
    );
    let (group, plan) = if phases == Phases::Build {
        // What `lifecycle detect` left, as the reference builder reads it.
        let limits = Limits::DEFAULT;
        match Group::read(&group_path, &limits)
            .and_then(|group| Plan::read(&plan_path, &limits).map(|plan| (group, plan)))
        {
            Ok(read) => read,
            Err(e) => return fail(format!("{e} (run `lifecycle detect` first)"), 1),
        }
    } else {
        match detect_phase(&context, &cnb, &group_path, &plan_path) {
            Ok(detected) => (detected.group, detected.plan),
            Err(code) => return code,
        }
    };
    if phases == Phases::Detect {
        return 0;
    }
    println!("===> BUILDING");
    let mut stdout = std::io::stdout();
    match build(&context, &group, &plan, &mut stdout) {
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

/// Detection: the order (`<layers>/order.toml`, else the builder's), then `group.toml`
/// and `plan.toml` written into the layers directory; the exit code on failure.
fn detect_phase(
    context: &Context<'_>,
    cnb: &Path,
    group_path: &Path,
    plan_path: &Path,
) -> Result<Detected, i32> {
    let limits = Limits::DEFAULT;
    let order = read_order(
        &order_path(&context.dirs.layers, &cnb.join("order.toml")),
        &limits,
    )
    .map_err(|e| fail(e, 1))?;
    println!("===> DETECTING");
    let detected = detect(context, &order).map_err(|e| fail(&e, e.exit_code()))?;
    detected
        .write(group_path, plan_path)
        .map_err(|e| fail(e, 1))?;
    if std::env::var("CNB_LOG_LEVEL").is_ok_and(|level| level == "debug") {
        for run in &detected.runs {
            println!("{}", run.summary());
            for line in run.output.lines() {
                println!("  {line}");
            }
        }
    }
    for member in &detected.group.group {
        println!("detected {}", member.key());
    }
    Ok(detected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_phase_or_both() {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(phases(&[]), Ok(Phases::Both));
        assert_eq!(phases(&words(&["detect"])), Ok(Phases::Detect));
        assert_eq!(phases(&words(&["build"])), Ok(Phases::Build));
        for bad in [&["export"][..], &["detect", "build"]] {
            let error = phases(&words(bad)).unwrap_err();
            assert!(
                error.starts_with("usage: lifecycle [detect | build]"),
                "{error}"
            );
        }
    }
}
