//! Builds with the fixture builders (`locald_image::testing::CnbBuilder`) on the host:
//! the builder image is imported into a store and its unpacked `/cnb/buildpacks` used,
//! with app, layers and platform directories in a temporary directory.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use locald_cnb::build::BuildMetadata;
use locald_cnb::detect::{detect, DetectError, Detected};
use locald_cnb::env::Env;
use locald_cnb::exec::HostExecutor;
use locald_cnb::formats::order::read_order;
use locald_cnb::formats::target::RunTarget;
use locald_cnb::{Context, Dirs, Limits};
use locald_image::testing::{cnb_builder_image, cnb_run_image, CnbBuilder};
use locald_image::{ImageStore, StoredImage};

pub const RUN_IMAGE: &str = "localhost/cnb/run:1";

/// A store holding the run image and one builder, and build directories.
pub struct HostBuild {
    pub root: tempfile::TempDir,
    pub store: ImageStore,
    pub builder: StoredImage,
    pub run_image: StoredImage,
    pub dirs: Dirs,
}

impl HostBuild {
    pub fn new(builder: CnbBuilder) -> HostBuild {
        let root = tempfile::tempdir().unwrap();
        let store = ImageStore::open(root.path().join("images")).unwrap();
        let import = |name: &str, image: locald_image::testing::BuiltImage| {
            let layout = root
                .path()
                .join(format!("layout-{}", name.replace(['/', ':'], "-")));
            image.write_layout(&layout, "latest").unwrap();
            store.import_oci_layout(&layout, Some(name)).unwrap()
        };
        let run_image = import(RUN_IMAGE, cnb_run_image().unwrap());
        let builder = import(
            "localhost/cnb/builder:1",
            cnb_builder_image(builder, RUN_IMAGE).unwrap(),
        );
        for dir in ["workspace", "layers", "platform", "tmp"] {
            std::fs::create_dir_all(root.path().join(dir)).unwrap();
        }
        let dirs = Dirs {
            app: root.path().join("workspace"),
            layers: root.path().join("layers"),
            platform: root.path().join("platform"),
            buildpacks: builder.rootfs.join("cnb/buildpacks"),
            build_config: None,
            scratch: root.path().join("tmp"),
        };
        HostBuild {
            root,
            store,
            builder,
            run_image,
            dirs,
        }
    }

    pub fn app_file(&self, path: &str, contents: &str) {
        write_file(&self.dirs.app.join(path), contents);
    }

    /// `<platform>/env/NAME`, as a user's build setting.
    pub fn platform_env(&self, name: &str, value: &str) {
        write_file(&self.dirs.platform.join("env").join(name), value);
    }

    /// Writes the Procfile app with a static site.
    pub fn site_app(&self) {
        self.app_file("Procfile", "web: serve\n");
        self.app_file("static/index.html", "<h1>hello from the site</h1>\n");
    }

    pub fn detect(&self) -> Result<Detected, DetectError> {
        let context = self.context();
        let order = read_order(
            &self.builder.rootfs.join("cnb/order.toml"),
            &Limits::DEFAULT,
        )
        .unwrap();
        detect(&context, &order)
    }

    /// Detect then build; returns the metadata and the build log.
    pub fn build(&self) -> (BuildMetadata, String) {
        let detected = self.detect().unwrap_or_else(|e| panic!("{e}"));
        detected
            .write(
                &self.dirs.layers.join("group.toml"),
                &self.dirs.layers.join("plan.toml"),
            )
            .unwrap();
        let mut log = Vec::new();
        let metadata =
            locald_cnb::build::build(&self.context(), &detected.group, &detected.plan, &mut log)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&log)));
        (metadata, String::from_utf8(log).unwrap())
    }

    fn context(&self) -> Context<'_> {
        static EXECUTOR: HostExecutor = HostExecutor;
        let target = RunTarget {
            os: "linux".into(),
            ..RunTarget::default()
        }
        .complete(None);
        let env = Env::for_build(vec![
            (
                "PATH".to_string(),
                "/usr/local/bin:/usr/bin:/bin".to_string(),
            ),
            ("HOME".to_string(), "/home/cnb".to_string()),
        ]);
        Context::new(&self.dirs, &EXECUTOR, target, env)
    }

    pub fn path(&self) -> &Path {
        self.root.path()
    }

    pub fn layer(&self, buildpack: &str, layer: &str) -> PathBuf {
        self.dirs.layers.join(buildpack).join(layer)
    }

    /// `test/httpd`'s `<layer>.toml`.
    pub fn layers_toml(&self, layer: &str) -> PathBuf {
        self.dirs
            .layers
            .join("test_httpd")
            .join(format!("{layer}.toml"))
    }
}

fn write_file(path: &Path, contents: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

/// What [`export`] may change from a plain export.
#[derive(Default)]
pub struct ExportOptions<'a> {
    pub previous: Option<&'a locald_cnb::export::SourceImage>,
    pub epoch: Option<u64>,
    pub process_type: Option<&'a str>,
    pub project: Option<serde_json::Value>,
}

/// Exports what [`HostBuild::build`] built into the OCI layout `out`, with the run image
/// from the store and `launcher` as the launcher.
pub fn export(
    build: &HostBuild,
    metadata: &BuildMetadata,
    out: &Path,
    launcher: &Path,
    options: ExportOptions<'_>,
) -> Result<locald_cnb::export::Exported, locald_cnb::export::ExportError> {
    let run_image = locald_cnb::export::SourceImage {
        blobs: build.store.blobs_dir(),
        manifest_digest: build.run_image.manifest_digest.clone(),
        reference: RUN_IMAGE.to_string(),
    };
    let input = locald_cnb::export::ExportInput {
        layers: &build.dirs.layers,
        app: &build.dirs.app,
        metadata,
        run_image: &run_image,
        previous: options.previous,
        launcher,
        owner: locald_cnb::export::layer::Owner {
            uid: 1000,
            gid: 1000,
        },
        source_date_epoch: options.epoch,
        process_type: options.process_type,
        project: options.project,
    };
    locald_cnb::export::export(&input, out, "latest")
}

/// The exported layout at `out` as a source image (a previous image).
pub fn layout_image(
    out: &Path,
    exported: &locald_cnb::export::Exported,
) -> locald_cnb::export::SourceImage {
    locald_cnb::export::SourceImage {
        blobs: out.join("blobs/sha256"),
        manifest_digest: exported.manifest_digest.clone(),
        reference: "localhost/app:1".to_string(),
    }
}
