//! The exporter: the built app as an OCI image, written as an OCI image layout (which the
//! image store imports), as the reference lifecycle's `exporter` lays it out:
//!
//! 1. the run image's layers, as they are;
//! 2. per buildpack in group order, each `launch = true` layer (name order) as
//!    `/layers/<escaped id>/<layer>/` — a layer whose directory is gone (the buildpack
//!    only rewrote its `<layer>.toml`) is the previous image's, reused by its digest;
//! 3. one layer per slice (earlier buildpacks' first, each without what an earlier one
//!    took), then the rest of the app, under `/workspace`;
//! 4. the launcher, `/cnb/lifecycle/launcher` (root, 0755);
//! 5. the config, `/layers/config/metadata.toml`;
//! 6. the process types, links `/cnb/process/<type>` → the launcher.
//!
//! Every layer is an uncompressed tar written by [`layer::LayerWriter`] (sorted entries,
//! parents, one mtime: `SOURCE_DATE_EPOCH` or 1980-01-01T00:00:01Z, the build user's
//! uid/gid for `/layers` and `/workspace`, root for `/cnb`), so the same inputs give the
//! same layer digests and the same image digest. The image config is the run image's
//! with `Entrypoint` (the default process type's link, or the launcher), no `Cmd`,
//! `WorkingDir` `/workspace`, `User` the build user, `Env` with `CNB_LAYERS_DIR`,
//! `CNB_APP_DIR` and `PATH` starting `/cnb/process:/cnb/lifecycle`, and the labels
//! `io.buildpacks.lifecycle.metadata`, `io.buildpacks.build.metadata`,
//! `io.buildpacks.project.metadata` and the buildpacks' own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::build::BuildMetadata;
use crate::formats::FormatError;
use crate::launch::LaunchError;

pub mod glob;
pub mod layer;

use layer::{LayerBlob, LayerWriter, Owner};

/// The lifecycle's paths inside the exported image.
pub const IMAGE_LAYERS_DIR: &str = "/layers";
pub const IMAGE_APP_DIR: &str = "/workspace";
pub const IMAGE_LAUNCHER: &str = "/cnb/lifecycle/launcher";
pub const IMAGE_PROCESS_DIR: &str = "/cnb/process";
const IMAGE_LIFECYCLE_DIR: &str = "/cnb/lifecycle";

/// 1980-01-01T00:00:01Z: the reference lifecycle's normalised time, used when there is no
/// `SOURCE_DATE_EPOCH`.
pub const NORMALISED_EPOCH: u64 = 315_532_801;

/// The Platform API the exported image's launcher is told (`CNB_PLATFORM_API`).
const PLATFORM_API: &str = "0.12";

pub const LABEL_LIFECYCLE: &str = "io.buildpacks.lifecycle.metadata";
pub const LABEL_BUILD: &str = "io.buildpacks.build.metadata";
pub const LABEL_PROJECT: &str = "io.buildpacks.project.metadata";

const MEDIA_TYPE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MEDIA_TYPE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MEDIA_TYPE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MEDIA_TYPE_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// Manifests and configs larger than this are refused (they are JSON of a few KiB).
const MAX_DOCUMENT_BYTES: u64 = 4 << 20;

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot {action} `{}`: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` is not a regular file, directory or link: it cannot go in an image", path.display())]
    SpecialFile { path: PathBuf },
    #[error("`{}` is not a valid image document: {reason}", path.display())]
    Document { path: PathBuf, reason: String },
    #[error("`{0}` is not a sha256 digest")]
    BadDigest(String),
    #[error(
        "layer `{layer}` of {buildpack} is a launch layer with no directory, and there is no \
         previous image holding it to reuse"
    )]
    NoPreviousLayer { buildpack: String, layer: String },
    #[error(transparent)]
    Launch(#[from] LaunchError),
    #[error(transparent)]
    Format(#[from] FormatError),
}

impl ExportError {
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> ExportError {
        ExportError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// An image whose blobs are files named by their hex digest in one directory (an OCI
/// layout's `blobs/sha256`, or the image store's).
#[derive(Debug, Clone)]
pub struct SourceImage {
    pub blobs: PathBuf,
    pub manifest_digest: String,
    /// Its name, recorded in the lifecycle label (`runImage.image`).
    pub reference: String,
}

/// Everything an export reads.
#[derive(Debug, Clone)]
pub struct ExportInput<'a> {
    /// `<layers>` as the build left it (with `config/metadata.toml`).
    pub layers: &'a Path,
    /// The app directory after the build.
    pub app: &'a Path,
    /// What the build returned (its `layers` say which are launch layers).
    pub metadata: &'a BuildMetadata,
    pub run_image: &'a SourceImage,
    /// The previous build's image, whose layers a buildpack may reuse.
    pub previous: Option<&'a SourceImage>,
    /// The launcher binary to put at `/cnb/lifecycle/launcher`.
    pub launcher: &'a Path,
    /// `CNB_USER_ID`/`CNB_GROUP_ID` of the builder.
    pub owner: Owner,
    /// `SOURCE_DATE_EPOCH`: the time of every entry and of the image.
    pub source_date_epoch: Option<u64>,
    /// `CNB_PROCESS_TYPE`: the entrypoint's process type instead of the default.
    pub process_type: Option<&'a str>,
    /// `io.buildpacks.project.metadata` (`{}` when none).
    pub project: Option<Value>,
}

/// One layer of the exported image beyond the run image's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedLayer {
    /// `<buildpack id>:<layer>`, `slice:<n>`, `app`, `launcher`, `config` or
    /// `process-types`.
    pub name: String,
    pub digest: String,
    /// Taken from the previous image rather than written.
    pub reused: bool,
}

/// The exported image.
#[derive(Debug, Clone)]
pub struct Exported {
    pub manifest_digest: String,
    pub config_digest: String,
    /// In image order, after the run image's layers.
    pub layers: Vec<ExportedLayer>,
    /// The full image config.
    pub config: Value,
}

/// Exports into the OCI image layout `output` (created if needed; blobs already there are
/// kept), its `index.json` naming the image `ref_name`.
pub fn export(
    input: &ExportInput<'_>,
    output: &Path,
    ref_name: &str,
) -> Result<Exported, ExportError> {
    let blobs = output.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).map_err(|s| ExportError::io("create", &blobs, s))?;
    let mtime = input.source_date_epoch.unwrap_or(NORMALISED_EPOCH);
    let run = Image::read(input.run_image)?;
    let previous = input.previous.map(Image::read).transpose()?;

    let mut layers = Vec::new();
    let mut descriptors = Vec::new();
    let mut push = |name: String, blob: LayerBlob, reused: bool| {
        descriptors.push(json!({
            "mediaType": MEDIA_TYPE_LAYER, "digest": blob.digest, "size": blob.size,
        }));
        layers.push(ExportedLayer {
            name,
            digest: blob.digest,
            reused,
        });
    };

    // Launch layers, buildpack by buildpack.
    let mut buildpacks_label = Vec::new();
    for buildpack in &input.metadata.layers {
        let id = &buildpack.buildpack.id;
        let mut layer_label = Map::new();
        for layer in buildpack.layers.iter().filter(|l| l.metadata.types.launch) {
            let image_path = format!("{IMAGE_LAYERS_DIR}/{}/{}", id.escaped(), layer.name);
            let (blob, reused) = if layer.path.is_dir() {
                let mut writer = LayerWriter::new(&blobs, mtime)?;
                writer.tree(&layer.path, &image_path, input.owner, &|_| true)?;
                (writer.finish()?, false)
            } else {
                let previous = previous.as_ref().and_then(|p| {
                    let sha = p.launch_layer_sha(&id.to_string(), &layer.name)?;
                    Some((p, sha))
                });
                let Some((image, sha)) = previous else {
                    return Err(ExportError::NoPreviousLayer {
                        buildpack: buildpack.buildpack.key(),
                        layer: layer.name.clone(),
                    });
                };
                (image.copy_layer(&sha, &blobs)?, true)
            };
            let types = layer.metadata.types;
            layer_label.insert(
                layer.name.clone(),
                json!({
                    "sha": blob.digest, "data": layer.metadata.metadata,
                    "launch": types.launch, "build": types.build, "cache": types.cache,
                }),
            );
            push(format!("{id}:{}", layer.name), blob, reused);
        }
        let mut entry = json!({
            "key": id.to_string(), "version": buildpack.buildpack.version, "layers": layer_label,
        });
        if let Some(store) = &buildpack.store {
            entry["store"] = json!({ "metadata": store.metadata });
        }
        buildpacks_label.push(entry);
    }

    // Slices, then the rest of the app.
    let files = layer::walk(input.app)?;
    let mut taken = std::collections::BTreeSet::new();
    let mut app_label = Vec::new();
    for (n, slice) in input.metadata.slices.iter().enumerate() {
        let patterns: Vec<glob::Pattern> =
            slice.paths.iter().map(|p| glob::Pattern::new(p)).collect();
        let chosen: std::collections::BTreeSet<&String> = files
            .iter()
            .filter(|f| !taken.contains(*f) && patterns.iter().any(|p| p.matches_path_or_parent(f)))
            .collect();
        let mut writer = LayerWriter::new(&blobs, mtime)?;
        writer.tree(input.app, IMAGE_APP_DIR, input.owner, &|f| {
            chosen.contains(&f.to_string())
        })?;
        let blob = writer.finish()?;
        app_label.push(json!({ "sha": blob.digest }));
        push(format!("slice:{n}"), blob, false);
        taken.extend(chosen.into_iter().cloned());
    }
    let mut writer = LayerWriter::new(&blobs, mtime)?;
    writer.tree(input.app, IMAGE_APP_DIR, input.owner, &|f| {
        !taken.contains(f)
    })?;
    let blob = writer.finish()?;
    app_label.push(json!({ "sha": blob.digest }));
    push("app".to_string(), blob, false);

    // The launcher.
    let launcher = std::fs::read(input.launcher)
        .map_err(|s| ExportError::io("read the launcher", input.launcher, s))?;
    let mut writer = LayerWriter::new(&blobs, mtime)?;
    writer.dir_with_parents(IMAGE_LIFECYCLE_DIR, Owner::ROOT)?;
    writer.file(IMAGE_LAUNCHER, 0o755, Owner::ROOT, &launcher)?;
    let launcher_blob = writer.finish()?;
    let launcher_sha = launcher_blob.digest.clone();
    push("launcher".to_string(), launcher_blob, false);

    // The config.
    let metadata_path = input.layers.join("config/metadata.toml");
    let metadata_toml = input.metadata.to_toml(&metadata_path)?;
    let mut writer = LayerWriter::new(&blobs, mtime)?;
    writer.dir_with_parents(&format!("{IMAGE_LAYERS_DIR}/config"), input.owner)?;
    writer.file(
        &format!("{IMAGE_LAYERS_DIR}/config/metadata.toml"),
        0o644,
        input.owner,
        metadata_toml.as_bytes(),
    )?;
    let config_blob = writer.finish()?;
    let config_sha = config_blob.digest.clone();
    push("config".to_string(), config_blob, false);

    // The process types.
    let mut writer = LayerWriter::new(&blobs, mtime)?;
    writer.dir_with_parents(IMAGE_PROCESS_DIR, Owner::ROOT)?;
    for process in &input.metadata.processes {
        writer.symlink(
            &format!("{IMAGE_PROCESS_DIR}/{}", process.r#type),
            IMAGE_LAUNCHER,
            Owner::ROOT,
        )?;
    }
    let types_blob = writer.finish()?;
    let types_sha = types_blob.digest.clone();
    push("process-types".to_string(), types_blob, false);

    let lifecycle_label = json!({
        "app": app_label,
        "config": { "sha": config_sha },
        "launcher": { "sha": launcher_sha },
        "process-types": { "sha": types_sha },
        "buildpacks": buildpacks_label,
        "runImage": {
            "topLayer": run.diff_ids().last().cloned().unwrap_or_default(),
            "reference": input.run_image.manifest_digest,
            "image": input.run_image.reference,
        },
    });
    let entrypoint = match crate::launch::entrypoint_process(input.metadata, input.process_type)? {
        Some(process_type) => format!("{IMAGE_PROCESS_DIR}/{process_type}"),
        None => IMAGE_LAUNCHER.to_string(),
    };
    let mut labels: BTreeMap<String, String> = input.metadata.image_labels();
    labels.insert(LABEL_LIFECYCLE.to_string(), lifecycle_label.to_string());
    labels.insert(
        LABEL_BUILD.to_string(),
        build_label(input.metadata).to_string(),
    );
    labels.insert(
        LABEL_PROJECT.to_string(),
        input
            .project
            .clone()
            .unwrap_or_else(|| json!({}))
            .to_string(),
    );
    let diff_ids: Vec<String> = layers.iter().map(|l| l.digest.clone()).collect();
    let config = image_config(&run.config, input, &entrypoint, labels, &diff_ids, mtime);
    let config_bytes = serde_json::to_vec(&config).map_err(|e| ExportError::Document {
        path: output.to_path_buf(),
        reason: e.to_string(),
    })?;
    let config_digest = write_blob(&blobs, &config_bytes)?;

    let mut all_layers: Vec<Value> = run.layer_descriptors().to_vec();
    all_layers.extend(descriptors);
    for descriptor in run.layer_descriptors() {
        run.copy_blob(descriptor, &blobs)?;
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_MANIFEST,
        "config": { "mediaType": MEDIA_TYPE_CONFIG, "digest": config_digest, "size": config_bytes.len() },
        "layers": all_layers,
    });
    let manifest_bytes = manifest.to_string().into_bytes();
    let manifest_digest = write_blob(&blobs, &manifest_bytes)?;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_INDEX,
        "manifests": [{
            "mediaType": MEDIA_TYPE_MANIFEST, "digest": manifest_digest, "size": manifest_bytes.len(),
            "annotations": { "org.opencontainers.image.ref.name": ref_name },
        }],
    });
    for (name, text) in [
        ("index.json", index.to_string()),
        (
            "oci-layout",
            json!({ "imageLayoutVersion": "1.0.0" }).to_string(),
        ),
    ] {
        let path = output.join(name);
        std::fs::write(&path, text).map_err(|s| ExportError::io("write", &path, s))?;
    }
    Ok(Exported {
        manifest_digest,
        config_digest,
        layers,
        config,
    })
}

/// The `io.buildpacks.lifecycle.metadata` label of `image` (`None` when it has none or it
/// is not JSON: an image this exporter did not make), read from its config blob.
pub fn lifecycle_label(image: &SourceImage) -> Result<Option<Value>, ExportError> {
    let image = Image::read(image)?;
    Ok(image.config["config"]["Labels"][LABEL_LIFECYCLE]
        .as_str()
        .and_then(|label| serde_json::from_str(label).ok()))
}

/// `io.buildpacks.build.metadata`: the processes (with `buildpackID`), the buildpacks,
/// the default process type and the launcher.
fn build_label(metadata: &BuildMetadata) -> Value {
    let processes: Vec<Value> = metadata
        .processes
        .iter()
        .map(|p| {
            let mut process = json!({
                "type": p.r#type, "command": p.command, "args": p.args, "direct": p.direct,
                "buildpackID": p.buildpack_id.to_string(),
            });
            if let Some(dir) = &p.working_dir {
                process["working-dir"] = json!(dir);
            }
            process
        })
        .collect();
    let buildpacks: Vec<Value> = metadata
        .buildpacks
        .iter()
        .map(|b| json!({ "id": b.id.to_string(), "version": b.version, "homepage": b.homepage }))
        .collect();
    let mut label = json!({
        "bom": null,
        "buildpacks": buildpacks,
        "processes": processes,
        "launcher": { "version": env!("CARGO_PKG_VERSION"), "source": { "git": { "repository": "locald" } } },
    });
    if let Some(default) = &metadata.default_process {
        label["buildpack-default-process-type"] = json!(default);
    }
    label
}

/// The run image's config with the exporter's changes (module doc).
fn image_config(
    run: &Value,
    input: &ExportInput<'_>,
    entrypoint: &str,
    labels: BTreeMap<String, String>,
    diff_ids: &[String],
    mtime: u64,
) -> Value {
    let mut config = run.clone();
    let object = config.as_object_mut();
    let Some(object) = object else {
        unreachable!("Image::read checks the config is an object")
    };
    // History describes the run image's layers only; an image with a shorter history
    // than its layers is valid, a wrong one is not.
    object.remove("history");
    object.insert("created".to_string(), json!(rfc3339(mtime)));
    let run_diff_ids = run["rootfs"]["diff_ids"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut all: Vec<Value> = run_diff_ids;
    all.extend(diff_ids.iter().map(|d| json!(d)));
    object.insert(
        "rootfs".to_string(),
        json!({ "type": "layers", "diff_ids": all }),
    );
    let inner = object.entry("config").or_insert_with(|| json!({}));
    if !inner.is_object() {
        *inner = json!({});
    }
    let env: Vec<String> = inner["Env"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let old_path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/bin:/usr/bin:/bin")
        .to_string();
    let ours = [
        ("CNB_LAYERS_DIR", IMAGE_LAYERS_DIR.to_string()),
        ("CNB_APP_DIR", IMAGE_APP_DIR.to_string()),
        ("CNB_PLATFORM_API", PLATFORM_API.to_string()),
        ("CNB_DEPRECATION_MODE", "quiet".to_string()),
        (
            "PATH",
            format!("{IMAGE_PROCESS_DIR}:{IMAGE_LIFECYCLE_DIR}:{old_path}"),
        ),
    ];
    let mut env: Vec<String> = env
        .into_iter()
        .filter(|e| {
            !ours
                .iter()
                .any(|(name, _)| e.split('=').next() == Some(name))
        })
        .collect();
    env.extend(ours.iter().map(|(name, value)| format!("{name}={value}")));
    let mut all_labels: BTreeMap<String, String> = inner["Labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default();
    all_labels.extend(labels);
    let inner = inner
        .as_object_mut()
        .unwrap_or_else(|| unreachable!("made an object above"));
    inner.insert("Entrypoint".to_string(), json!([entrypoint]));
    inner.remove("Cmd");
    inner.insert("Env".to_string(), json!(env));
    inner.insert("WorkingDir".to_string(), json!(IMAGE_APP_DIR));
    inner.insert(
        "User".to_string(),
        json!(format!("{}:{}", input.owner.uid, input.owner.gid)),
    );
    inner.insert("Labels".to_string(), json!(all_labels));
    config
}

/// `secs` since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (the proleptic Gregorian calendar,
/// from Howard Hinnant's `civil_from_days`).
fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rest = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

fn write_blob(blobs: &Path, bytes: &[u8]) -> Result<String, ExportError> {
    use sha2::Digest as _;
    let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)));
    let path = blobs.join(&digest["sha256:".len()..]);
    std::fs::write(&path, bytes).map_err(|s| ExportError::io("write", &path, s))?;
    Ok(digest)
}

/// A source image read: its manifest and config.
struct Image<'a> {
    source: &'a SourceImage,
    manifest: Value,
    config: Value,
}

impl<'a> Image<'a> {
    fn read(source: &'a SourceImage) -> Result<Image<'a>, ExportError> {
        let manifest = read_document(&source.blobs, &source.manifest_digest)?;
        let config_digest = manifest["config"]["digest"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let config = read_document(&source.blobs, &config_digest)?;
        let image = Image {
            source,
            manifest,
            config,
        };
        let layers = image.layer_descriptors().len();
        if !image.config.is_object() || layers != image.diff_ids().len() {
            return Err(ExportError::Document {
                path: source.blobs.join(hex_of(&config_digest)?),
                reason: format!(
                    "its config lists {} diffIDs for {layers} layers",
                    image.diff_ids().len()
                ),
            });
        }
        Ok(image)
    }

    fn layer_descriptors(&self) -> &[Value] {
        self.manifest["layers"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    fn diff_ids(&self) -> Vec<String> {
        self.config["rootfs"]["diff_ids"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The diffID the previous image's lifecycle label records for a launch layer.
    fn launch_layer_sha(&self, buildpack: &str, layer: &str) -> Option<String> {
        let label = self.config["config"]["Labels"][LABEL_LIFECYCLE].as_str()?;
        let label: Value = serde_json::from_str(label).ok()?;
        label["buildpacks"]
            .as_array()?
            .iter()
            .find(|b| b["key"] == buildpack)?["layers"][layer]["sha"]
            .as_str()
            .map(str::to_string)
    }

    /// Copies the layer whose diffID is `diff_id` into `blobs`.
    fn copy_layer(&self, diff_id: &str, blobs: &Path) -> Result<LayerBlob, ExportError> {
        let index = self
            .diff_ids()
            .iter()
            .position(|d| d == diff_id)
            .ok_or_else(|| ExportError::Document {
                path: self.source.blobs.clone(),
                reason: format!("the previous image has no layer {diff_id}"),
            })?;
        let descriptor = &self.layer_descriptors()[index];
        if descriptor["mediaType"] != MEDIA_TYPE_LAYER {
            // Only layers this exporter wrote (uncompressed: digest = diffID) are reused.
            return Err(ExportError::Document {
                path: self.source.blobs.clone(),
                reason: format!("layer {diff_id} of the previous image is compressed"),
            });
        }
        self.copy_blob(descriptor, blobs)?;
        Ok(LayerBlob {
            digest: diff_id.to_string(),
            size: descriptor["size"].as_u64().unwrap_or_default(),
        })
    }

    /// Puts the blob of `descriptor` into `blobs` (a hard link when it can).
    fn copy_blob(&self, descriptor: &Value, blobs: &Path) -> Result<(), ExportError> {
        let digest = descriptor["digest"].as_str().unwrap_or_default();
        let hex = hex_of(digest)?;
        let from = self.source.blobs.join(hex);
        let to = blobs.join(hex);
        if from == to || to.exists() {
            return Ok(());
        }
        if std::fs::hard_link(&from, &to).is_err() {
            std::fs::copy(&from, &to).map_err(|s| ExportError::io("copy", &from, s))?;
        }
        Ok(())
    }
}

fn hex_of(digest: &str) -> Result<&str, ExportError> {
    digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| ExportError::BadDigest(digest.to_string()))
}

/// Reads a JSON blob, bounded, checking its digest.
fn read_document(blobs: &Path, digest: &str) -> Result<Value, ExportError> {
    use sha2::Digest as _;
    use std::io::Read as _;
    let path = blobs.join(hex_of(digest)?);
    let file = std::fs::File::open(&path).map_err(|s| ExportError::io("open", &path, s))?;
    let mut bytes = Vec::new();
    file.take(MAX_DOCUMENT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|s| ExportError::io("read", &path, s))?;
    let invalid = |reason: String| ExportError::Document {
        path: path.clone(),
        reason,
    };
    if bytes.len() as u64 > MAX_DOCUMENT_BYTES {
        return Err(invalid(format!("larger than {MAX_DOCUMENT_BYTES} bytes")));
    }
    let actual = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)));
    if actual != digest {
        return Err(invalid(format!("its digest is {actual}")));
    }
    serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_written_as_rfc3339() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            super::rfc3339(super::NORMALISED_EPOCH),
            "1980-01-01T00:00:01Z"
        );
        assert_eq!(super::rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
