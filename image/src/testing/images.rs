//! The fixture images: busybox, multi-layer with whiteouts, malicious, and a
//! multi-arch index where the host platform is not first.

use std::sync::OnceLock;

use super::builder::{BuiltImage, BuiltIndex, ImageBuilder, LayerBuilder, LayerCompression};
use super::FixtureError;
use crate::oci::RuntimeConfig;

/// The host's static busybox (Debian `busybox-static`).
pub const BUSYBOX_PATH: &str = "/bin/busybox";

const DEFAULT_PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Fields replacing the fixture's default config (`Cmd ["sh"]`, `Env [PATH=...]`).
#[derive(Debug, Clone, Default)]
pub struct ConfigOverride {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Option<Vec<String>>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
}

impl ConfigOverride {
    pub(super) fn apply(&self) -> RuntimeConfig {
        RuntimeConfig {
            entrypoint: self.entrypoint.clone(),
            cmd: Some(self.cmd.clone().unwrap_or_else(|| vec!["sh".to_string()])),
            env: Some(
                self.env
                    .clone()
                    .unwrap_or_else(|| vec![DEFAULT_PATH_ENV.to_string()]),
            ),
            working_dir: self.working_dir.clone(),
            user: self.user.clone(),
            exposed_ports: None,
            labels: None,
        }
    }
}

fn busybox_bytes() -> Result<&'static [u8], FixtureError> {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    if let Some(bytes) = BYTES.get() {
        return Ok(bytes);
    }
    let bytes = std::fs::read(BUSYBOX_PATH).map_err(|source| FixtureError::Io {
        action: "read (install Debian's busybox-static)",
        path: BUSYBOX_PATH.into(),
        source,
    })?;
    Ok(BYTES.get_or_init(|| bytes))
}

fn busybox_applets() -> Result<Vec<String>, FixtureError> {
    let output = std::process::Command::new(BUSYBOX_PATH)
        .arg("--list")
        .output()
        .map_err(|source| FixtureError::Io {
            action: "run",
            path: BUSYBOX_PATH.into(),
            source,
        })?;
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::trim)
        .filter(|name| !name.is_empty() && *name != "busybox" && !name.contains('/'))
        .map(str::to_string)
        .collect())
}

/// The busybox base layer: `/bin/busybox`, applets as symlinks, passwd/group, tmp, root.
fn busybox_layer(
    compression: LayerCompression,
) -> Result<crate::testing::builder::BuiltBlob, FixtureError> {
    Ok(busybox_rootfs(
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        b"root:x:0:\nnogroup:x:65534:\n",
    )?
    .build(compression))
}

/// The busybox rootfs with the given `/etc/passwd` and `/etc/group`, to which callers may
/// add entries before building it.
pub(super) fn busybox_rootfs(passwd: &[u8], group: &[u8]) -> Result<LayerBuilder, FixtureError> {
    let mut layer = LayerBuilder::new();
    layer
        .dir("bin", 0o755)
        .file("bin/busybox", 0o755, busybox_bytes()?);
    for applet in busybox_applets()? {
        layer.symlink(&format!("bin/{applet}"), "busybox");
    }
    layer
        .dir("etc", 0o755)
        .file("etc/passwd", 0o644, passwd)
        .file("etc/group", 0o644, group)
        .dir("tmp", 0o1777)
        .dir("root", 0o700);
    Ok(layer)
}

/// A one-layer (gzip) busybox image.
pub fn busybox_image(overrides: &ConfigOverride) -> Result<BuiltImage, FixtureError> {
    Ok(ImageBuilder::new()
        .layer(busybox_layer(LayerCompression::Gzip)?)
        .config(overrides.apply())
        .build())
}

/// Busybox plus two layers exercising whiteouts:
/// - layer 2 (zstd) adds `/opt/gone.txt`, `/opt/kept.txt`, `/data/old/a.txt`, `/data/keep.txt`;
/// - layer 3 (gzip) whites out `/opt/gone.txt`, makes `/data` opaque (keeping
///   only its own `/data/new.txt`), and adds `/link-to-kept` (hard link) and
///   `/etc/motd` through the `/etc-alias -> /etc` absolute symlink.
///
/// Expected rootfs: `/opt/kept.txt`, `/data/new.txt`, no `/opt/gone.txt`,
/// no `/data/old`, no `/data/keep.txt`, `/link-to-kept` same inode as `/opt/kept.txt`.
pub fn multilayer_image(overrides: &ConfigOverride) -> Result<BuiltImage, FixtureError> {
    let mut lower = LayerBuilder::new();
    lower
        .dir("opt", 0o755)
        .file("opt/gone.txt", 0o644, b"gone\n")
        .file("opt/kept.txt", 0o644, b"kept\n")
        .dir("data", 0o755)
        .dir("data/old", 0o755)
        .file("data/old/a.txt", 0o644, b"old\n")
        .file("data/keep.txt", 0o644, b"lower\n")
        .symlink("etc-alias", "/etc");
    let mut upper = LayerBuilder::new();
    upper
        .whiteout("opt", "gone.txt")
        .dir("data", 0o755)
        .opaque("data")
        .file("data/new.txt", 0o644, b"new\n")
        .hardlink("link-to-kept", "opt/kept.txt")
        .file(
            "etc-alias/motd",
            0o644,
            b"written through an in-image symlink\n",
        );
    Ok(ImageBuilder::new()
        .layer(busybox_layer(LayerCompression::Gzip)?)
        .layer(lower.build(LayerCompression::Zstd))
        .layer(upper.build(LayerCompression::Gzip))
        .config(overrides.apply())
        .build())
}

/// One way a layer tries to write outside the rootfs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaliciousKind {
    /// An entry named `../escaped-dotdot`.
    ParentDir,
    /// An entry named `/../../escaped-absolute` (a leading `/` alone is fine, climbing is not).
    AbsolutePath,
    /// `escape -> ../../../../../../tmp`, then a file written as `escape/escaped-symlink`.
    SymlinkEscape,
    /// A hard link whose target is `../../../../etc/passwd`.
    HardlinkEscape,
}

impl MaliciousKind {
    pub const ALL: [MaliciousKind; 4] = [
        Self::ParentDir,
        Self::AbsolutePath,
        Self::SymlinkEscape,
        Self::HardlinkEscape,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::ParentDir => "dotdot",
            Self::AbsolutePath => "absolute",
            Self::SymlinkEscape => "symlink",
            Self::HardlinkEscape => "hardlink",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// The offending entry path, as the unpack error must name it.
    pub fn entry(self) -> &'static str {
        match self {
            Self::ParentDir => "../escaped-dotdot",
            Self::AbsolutePath => "/../../escaped-absolute",
            Self::SymlinkEscape => "escape/escaped-symlink",
            Self::HardlinkEscape => "escaped-hardlink",
        }
    }
}

/// A small benign layer followed by a layer containing the malicious entry.
pub fn malicious_image(kind: MaliciousKind) -> Result<BuiltImage, FixtureError> {
    let mut benign = LayerBuilder::new();
    benign
        .dir("etc", 0o755)
        .file("etc/hostname", 0o644, b"benign\n");
    let mut evil = LayerBuilder::new();
    evil.file("innocent.txt", 0o644, b"first\n");
    match kind {
        MaliciousKind::ParentDir | MaliciousKind::AbsolutePath => {
            evil.file(kind.entry(), 0o644, b"escaped\n");
        }
        MaliciousKind::SymlinkEscape => {
            evil.symlink("escape", "../../../../../../tmp")
                .file(kind.entry(), 0o644, b"escaped\n");
        }
        MaliciousKind::HardlinkEscape => {
            evil.hardlink(kind.entry(), "../../../../etc/passwd");
        }
    }
    Ok(ImageBuilder::new()
        .layer(benign.build(LayerCompression::Gzip))
        .layer(evil.build(LayerCompression::Gzip))
        .config(ConfigOverride::default().apply())
        .build())
}

/// An index of a foreign-architecture image (listed first) and the host's
/// busybox image; each has `/platform` naming its architecture.
pub fn multiarch_index() -> Result<BuiltIndex, FixtureError> {
    let host = crate::platform::host_architecture();
    let foreign = if host == "amd64" { "arm64" } else { "amd64" };
    let marker = |arch: &str| {
        let mut layer = LayerBuilder::new();
        layer.file("platform", 0o644, format!("linux/{arch}\n").as_bytes());
        layer.build(LayerCompression::Gzip)
    };
    let foreign_image = ImageBuilder::new()
        .architecture(foreign)
        .layer(marker(foreign))
        .config(ConfigOverride::default().apply())
        .build();
    let host_image = ImageBuilder::new()
        .layer(busybox_layer(LayerCompression::Gzip)?)
        .layer(marker(host))
        .config(ConfigOverride::default().apply())
        .build();
    Ok(BuiltIndex::new(vec![foreign_image, host_image]))
}

/// A benchmark image: busybox plus `layers` layers of `files_per_layer`
/// small, compressible, distinct files each (deterministic content), the
/// added layers alternately gzip and zstd.
pub fn bench_image(layers: usize, files_per_layer: usize) -> Result<BuiltImage, FixtureError> {
    build_bench_image(layers, files_per_layer, |layer_index| {
        if layer_index % 2 == 0 {
            LayerCompression::Gzip
        } else {
            LayerCompression::Zstd
        }
    })
}

/// [`bench_image`] with every layer gzip: the same files for tools that
/// cannot read zstd layers (umoci 0.4 refuses them).
pub fn bench_gzip_image(layers: usize, files_per_layer: usize) -> Result<BuiltImage, FixtureError> {
    build_bench_image(layers, files_per_layer, |_| LayerCompression::Gzip)
}

fn build_bench_image(
    layers: usize,
    files_per_layer: usize,
    compression: impl Fn(usize) -> LayerCompression,
) -> Result<BuiltImage, FixtureError> {
    let mut builder = ImageBuilder::new().layer(busybox_layer(LayerCompression::Gzip)?);
    for layer_index in 0..layers {
        let mut layer = LayerBuilder::new();
        let dir = format!("srv/layer{layer_index}");
        layer.dir("srv", 0o755).dir(&dir, 0o755);
        for file_index in 0..files_per_layer {
            let line = format!("layer {layer_index} file {file_index} payload line\n");
            let content = line.repeat(64 + (file_index % 64) * 8);
            layer.file(
                &format!("{dir}/f{file_index}.txt"),
                0o644,
                content.as_bytes(),
            );
        }
        builder = builder.layer(layer.build(compression(layer_index)));
    }
    Ok(builder.config(ConfigOverride::default().apply()).build())
}
