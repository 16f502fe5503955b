//! `locald-fixtures`: the image test fixtures from the command line, for shell
//! scripts and benchmarks. See image/README.md.

use std::path::PathBuf;
use std::process::ExitCode;

use locald_image::testing::{
    bench_gzip_image, bench_image, busybox_image, cnb_builder_image, cnb_run_image,
    malicious_image, multiarch_index, multilayer_image, push_image, push_index, CnbBuilder,
    ConfigOverride, MaliciousKind, TestRegistry,
};
use locald_image::{ImageStore, PullOptions};

const USAGE: &str = "usage:
  locald-fixtures registry                      start a test registry, print its address, run until killed
  locald-fixtures layout KIND DIR [REF_NAME]    write an OCI layout (REF_NAME defaults to `latest`)
  locald-fixtures push ADDR NAME:TAG KIND       push a fixture image to a registry
  locald-fixtures pull REF                      pull REF into the store ($LOCALD_DATA_DIR) and report
KIND: busybox | multilayer | multiarch | bench | bench-gzip | malicious-dotdot | malicious-absolute | malicious-symlink | malicious-hardlink
      | cnb-run | cnb-builder=RUN_IMAGE (the Httpd CNB builder, its run.toml naming RUN_IMAGE)";

enum Fixture {
    Image(locald_image::testing::BuiltImage),
    Index(locald_image::testing::BuiltIndex),
}

fn build(kind: &str) -> Result<Fixture, String> {
    let defaults = ConfigOverride::default();
    let result = match kind {
        "busybox" => busybox_image(&defaults).map(Fixture::Image),
        "multilayer" => multilayer_image(&defaults).map(Fixture::Image),
        "multiarch" => multiarch_index().map(Fixture::Index),
        "bench" => bench_image(6, 1500).map(Fixture::Image),
        "bench-gzip" => bench_gzip_image(6, 1500).map(Fixture::Image),
        "cnb-run" => cnb_run_image().map(Fixture::Image),
        other if other.starts_with("cnb-builder=") => {
            let run_image = &other["cnb-builder=".len()..];
            cnb_builder_image(CnbBuilder::Httpd, run_image).map(Fixture::Image)
        }
        other => match other
            .strip_prefix("malicious-")
            .and_then(MaliciousKind::from_name)
        {
            Some(kind) => malicious_image(kind).map(Fixture::Image),
            None => return Err(format!("unknown fixture kind `{other}`\n{USAGE}")),
        },
    };
    result.map_err(|e| e.to_string())
}

async fn run(args: &[String]) -> Result<(), String> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["registry"] => {
            let registry = TestRegistry::try_start().map_err(|e| e.to_string())?;
            println!("{}", registry.addr());
            let mut terminate =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .map_err(|e| e.to_string())?;
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            drop(registry);
            Ok(())
        }
        ["layout", kind, dir, rest @ ..] => {
            let ref_name = rest.first().copied().unwrap_or("latest");
            let dir = PathBuf::from(dir);
            match build(kind)? {
                Fixture::Image(image) => image.write_layout(&dir, ref_name),
                Fixture::Index(index) => index.write_layout(&dir, ref_name),
            }
            .map_err(|e| e.to_string())
        }
        ["push", addr, name_tag, kind] => {
            let digest = match build(kind)? {
                Fixture::Image(image) => push_image(addr, name_tag, &image).await,
                Fixture::Index(index) => push_index(addr, name_tag, &index).await,
            }
            .map_err(|e| e.to_string())?;
            println!("{addr}/{name_tag}@{digest}");
            Ok(())
        }
        ["pull", reference] => {
            let store = ImageStore::open_default().map_err(|e| e.to_string())?;
            let options = PullOptions {
                progress: true,
                ..PullOptions::default()
            };
            let (image, report) = store
                .pull(reference, &options)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "{} {} rootfs={} downloaded_blobs={} reused_blobs={}",
                image.reference,
                image.manifest_digest,
                image.rootfs.display(),
                report.downloaded_blobs,
                report.reused_blobs
            );
            Ok(())
        }
        _ => Err(USAGE.to_string()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("locald-fixtures: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("locald-fixtures: {message}");
            ExitCode::FAILURE
        }
    }
}
