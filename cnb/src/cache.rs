//! Analysis, restore and the layer cache between builds (Platform API: analyzer, restorer,
//! exporter's cache; the reference lifecycle's behaviour where the spec only says SHOULD).
//!
//! **Writing the cache** ([`write_cache`], after the export): each `cache = true` layer as a
//! tar named by its diffID (the hex digest) — a launch layer's is the very blob the
//! exporter wrote (same tar, same digest, linked), a cache-only layer's is written like one
//! — plus `metadata.json`, the `io.buildpacks.lifecycle.cache.metadata` shape
//! (`{buildpacks: [{key, version, layers: {name: {sha, data, launch, build, cache}}}]}`).
//! A `cache = true` layer whose directory is gone is an error: there is nothing to cache.
//! Where the cache lives, and its atomic replacement, are the platform's business.
//!
//! **Analysis** ([`write_analyzed`]): `<layers>/analyzed.toml` from the previous image (its
//! reference and its `io.buildpacks.lifecycle.metadata` label) and the run image.
//!
//! **Restore** ([`restore`], before the build), into a layers directory emptied first (RFC
//! 0055: a reused layers directory gives "file exists" errors), as the reference restorer:
//! - each buildpack's `store.toml` from the previous image;
//! - for each launch layer of the previous image, `<layer>.toml` with its metadata only (no
//!   `[types]`: a buildpack opts back in by writing them), except `build = true, cache =
//!   false` layers (their contents would be needed and are nowhere) and `cache = true` ones
//!   the cache does not hold;
//! - the same for the cache's `cache = true` layers that are not launch layers (a launch
//!   layer's metadata comes from the image only);
//! - then each restored layer the cache holds with the same sha is extracted from its tar
//!   (contents come only from the cache, never from the image); one whose sha differs, or
//!   whose tar is missing or does not extract, is deleted, metadata and all.
//!
//! Extraction is the caller's ([`Extract`]: the engine unpacks with the image store's safe
//! unpack, which confines every entry to the directory it is given); the tar goes to a fresh
//! directory inside `<layers>` and only its `layers/<buildpack>/<layer>` subtree is moved into
//! place, so an archive holding anything else cannot touch the rest of the build.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::build::BuildMetadata;
use crate::export::{ExportError, Exported, IMAGE_LAYERS_DIR};
use crate::formats::outputs::{LayerTypes, Store};
use crate::formats::{to_toml, FormatError};
use crate::id::BuildpackId;

/// The cache's metadata file, beside the layer tars.
pub const CACHE_METADATA: &str = "metadata.json";
/// `analyzed.toml` in the layers directory.
pub const ANALYZED: &str = "analyzed.toml";
/// A cache's metadata is a few KiB per buildpack; more is refused.
const MAX_METADATA_BYTES: u64 = 4 << 20;

/// Why the cache could not be written or restored.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(
        "layer `{layer}` of {buildpack} is a cache layer with no contents (its directory is \
         gone): a cache = true layer must have a directory"
    )]
    EmptyLayer { buildpack: String, layer: String },
    #[error("`{}` is not valid cache metadata: {source}", path.display())]
    Metadata {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("`{}` is larger than {MAX_METADATA_BYTES} bytes", path.display())]
    MetadataTooLarge { path: PathBuf },
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error(transparent)]
    Format(#[from] FormatError),
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> CacheError + 'a {
    move |source| ExportError::io(action, path, source).into()
}

/// The layers part of `io.buildpacks.lifecycle.metadata` (an image's launch layers) and of
/// the cache metadata (its cache layers): one entry per buildpack.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LayersMetadata {
    #[serde(default)]
    pub buildpacks: Vec<BuildpackRecord>,
}

/// One buildpack's layers (and, in an image's label, its `store.toml`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildpackRecord {
    pub key: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub layers: BTreeMap<String, LayerRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<Store>,
}

/// One layer: its diffID, its `[metadata]` and its types.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerRecord {
    #[serde(default)]
    pub sha: String,
    #[serde(default)]
    pub data: toml::Table,
    #[serde(flatten)]
    pub types: LayerTypes,
}

impl LayersMetadata {
    /// Parses the JSON of a label or of the cache's metadata file.
    pub fn from_json(text: &str) -> Result<LayersMetadata, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Reads a committed cache's metadata (`None` when it has none).
    pub fn read_cache(dir: &Path) -> Result<Option<LayersMetadata>, CacheError> {
        use std::io::Read as _;
        let path = dir.join(CACHE_METADATA);
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(io("open", &path)(source)),
        };
        let mut text = String::new();
        file.take(MAX_METADATA_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(io("read", &path))?;
        if text.len() as u64 > MAX_METADATA_BYTES {
            return Err(CacheError::MetadataTooLarge { path });
        }
        LayersMetadata::from_json(&text)
            .map(Some)
            .map_err(|source| CacheError::Metadata { path, source })
    }

    fn layer(&self, buildpack: &str, layer: &str) -> Option<&LayerRecord> {
        self.buildpacks
            .iter()
            .find(|b| b.key == buildpack)?
            .layers
            .get(layer)
    }
}

/// What [`write_cache`] reads.
#[derive(Debug, Clone, Copy)]
pub struct CacheInput<'a> {
    /// What the build left (its layers, with their types and paths).
    pub metadata: &'a BuildMetadata,
    /// What the exporter wrote: a launch layer's blob is the cache's tar too.
    pub exported: &'a Exported,
    /// The blob directory the exporter wrote into.
    pub image_blobs: &'a Path,
    /// The build user, owner of the cached entries.
    pub owner: crate::export::layer::Owner,
}

/// Writes the cache of a build into the empty directory `dir`: a tar per `cache = true`
/// layer, named by its hex digest, and [`CACHE_METADATA`]. Returns the metadata.
pub fn write_cache(input: &CacheInput<'_>, dir: &Path) -> Result<LayersMetadata, CacheError> {
    let mut cached = LayersMetadata::default();
    for buildpack in &input.metadata.layers {
        let id = &buildpack.buildpack.id;
        let mut record = BuildpackRecord {
            key: id.to_string(),
            version: buildpack.buildpack.version.clone(),
            ..BuildpackRecord::default()
        };
        for layer in buildpack.layers.iter().filter(|l| l.metadata.types.cache) {
            if !layer.path.is_dir() {
                return Err(CacheError::EmptyLayer {
                    buildpack: buildpack.buildpack.key(),
                    layer: layer.name.clone(),
                });
            }
            let written = input
                .exported
                .layers
                .iter()
                .find(|l| l.name == format!("{id}:{}", layer.name) && !l.reused);
            let sha = match written {
                Some(exported) => {
                    link_blob(input.image_blobs, dir, &exported.digest)?;
                    exported.digest.clone()
                }
                None => {
                    // Not in the image: written as the exporter would, at the fixed time,
                    // so an unchanged layer has the same digest build after build.
                    let mut writer = crate::export::layer::LayerWriter::new(
                        dir,
                        crate::export::NORMALISED_EPOCH,
                    )?;
                    let image_path = format!("{IMAGE_LAYERS_DIR}/{}/{}", id.escaped(), layer.name);
                    writer.tree(&layer.path, &image_path, input.owner, &|_| true)?;
                    writer.finish()?.digest
                }
            };
            record.layers.insert(
                layer.name.clone(),
                LayerRecord {
                    sha,
                    data: layer.metadata.metadata.clone(),
                    types: layer.metadata.types,
                },
            );
        }
        if !record.layers.is_empty() {
            cached.buildpacks.push(record);
        }
    }
    let path = dir.join(CACHE_METADATA);
    let text = serde_json::to_string(&cached).map_err(|source| CacheError::Metadata {
        path: path.clone(),
        source,
    })?;
    std::fs::write(&path, text).map_err(io("write", &path))?;
    Ok(cached)
}

/// Puts the blob `digest` of `from` into `to` (a hard link when both are on one file
/// system, else a copy).
fn link_blob(from: &Path, to: &Path, digest: &str) -> Result<(), CacheError> {
    let hex = hex_of(digest)?;
    let (source, target) = (from.join(hex), to.join(hex));
    if std::fs::hard_link(&source, &target).is_err() {
        std::fs::copy(&source, &target).map_err(io("copy", &source))?;
    }
    Ok(())
}

fn hex_of(digest: &str) -> Result<&str, CacheError> {
    digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| ExportError::BadDigest(digest.to_string()).into())
}

/// Writes `<layers>/analyzed.toml`: `[image] reference` and `[metadata]` (the previous
/// image's lifecycle label) when there is a previous image, and `[run-image]`.
pub fn write_analyzed(
    layers: &Path,
    previous: Option<(&str, &Value)>,
    run_image: &str,
    run_image_reference: &str,
) -> Result<(), CacheError> {
    let mut analyzed = toml::Table::new();
    if let Some((reference, label)) = previous {
        let mut image = toml::Table::new();
        image.insert("reference".into(), reference.into());
        analyzed.insert("image".into(), image.into());
        if let Some(metadata) = json_to_toml(label) {
            analyzed.insert("metadata".into(), metadata);
        }
    }
    let mut run = toml::Table::new();
    run.insert("image".into(), run_image.into());
    run.insert("reference".into(), run_image_reference.into());
    analyzed.insert("run-image".into(), run.into());
    let path = layers.join(ANALYZED);
    let text = to_toml(&path, &analyzed)?;
    std::fs::write(&path, text).map_err(io("write", &path))
}

/// JSON as TOML, leaving out nulls (TOML has none).
fn json_to_toml(value: &Value) -> Option<toml::Value> {
    Some(match value {
        Value::Null => return None,
        Value::Bool(b) => toml::Value::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64()?),
        },
        Value::String(s) => toml::Value::String(s.clone()),
        Value::Array(items) => toml::Value::Array(items.iter().filter_map(json_to_toml).collect()),
        Value::Object(map) => toml::Value::Table(
            map.iter()
                .filter_map(|(k, v)| Some((k.clone(), json_to_toml(v)?)))
                .collect(),
        ),
    })
}

/// Extracts the tar at the first path into the (existing, empty) directory at the second,
/// confining every entry to it.
pub type Extract<'a> =
    &'a dyn Fn(&Path, &Path) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// What [`restore`] reads.
#[derive(Debug, Clone, Copy)]
pub struct RestoreInput<'a> {
    /// The layers directory of the build (emptied first).
    pub layers: &'a Path,
    /// The previous image's `io.buildpacks.lifecycle.metadata` (its launch layers, stores).
    pub previous: Option<&'a LayersMetadata>,
    /// The committed cache: its directory and metadata.
    pub cache: Option<(&'a Path, &'a LayersMetadata)>,
}

/// What [`restore`] did, layer by layer (`<buildpack id>:<layer>`), for the build's log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restored {
    /// Layers whose metadata came from the previous image and nothing else (the exporter
    /// reuses their contents from that image if the buildpack keeps them).
    pub metadata_only: Vec<String>,
    /// Layers whose contents came from the cache.
    pub from_cache: Vec<String>,
    /// Layers left out, and why.
    pub dropped: Vec<(String, String)>,
    /// Buildpacks whose `store.toml` was restored.
    pub stores: Vec<String>,
}

/// A layer name as a buildpack could have made it: one path component, not a name the
/// build keeps for itself.
fn is_layer_name(name: &str) -> bool {
    !matches!(name, "" | "." | "..")
        && !name.contains(['/', '\0'])
        && !matches!(name, "build" | "launch" | "store")
        && !name.ends_with(".ignore")
}

/// A buildpack's layers directory in the build.
#[derive(Clone)]
struct Place {
    key: String,
    dir: PathBuf,
    escaped: String,
}

/// One `<layer>.toml` restore wrote.
struct Written {
    place: Place,
    name: String,
    sha: String,
    /// Whether the cache holds it (`cache = true` there).
    cached: bool,
}

/// Restores the previous build's layer metadata, stores and cached layers into
/// `input.layers` (module doc).
pub fn restore(input: &RestoreInput<'_>, extract: Extract<'_>) -> Result<Restored, CacheError> {
    let layers = input.layers;
    empty_dir(layers)?;
    let empty = LayersMetadata::default();
    let previous = input.previous.unwrap_or(&empty);
    let cache_metadata = input.cache.map_or(&empty, |(_, m)| m);
    let in_cache = |key: &str, name: &str| {
        cache_metadata
            .layer(key, name)
            .is_some_and(|l| l.types.cache)
    };
    let mut restored = Restored::default();
    let mut written = Vec::new();

    let buildpack_dir = |key: &str, restored: &mut Restored| match BuildpackId::parse(key) {
        Ok(id) => Some(Place {
            key: key.to_string(),
            dir: layers.join(id.escaped()),
            escaped: id.escaped(),
        }),
        Err(e) => {
            restored.dropped.push((key.to_string(), e.to_string()));
            None
        }
    };
    // A buildpack's directory is made only when something is restored into it.
    let write = |dir: &Path, path: &Path, text: String| {
        std::fs::create_dir_all(dir).map_err(io("create", dir))?;
        std::fs::write(path, text).map_err(io("write", path))
    };
    let write_toml = |place: &Place, name: &str, record: &LayerRecord, cached: bool| {
        // Metadata only: no [types].
        let path = place.dir.join(format!("{name}.toml"));
        let mut table = toml::Table::new();
        table.insert("metadata".into(), record.data.clone().into());
        write(&place.dir, &path, to_toml(&path, &table)?)?;
        Ok::<_, CacheError>(Written {
            place: place.clone(),
            name: name.to_string(),
            sha: record.sha.clone(),
            cached,
        })
    };

    for buildpack in &previous.buildpacks {
        let Some(place) = buildpack_dir(&buildpack.key, &mut restored) else {
            continue;
        };
        if let Some(store) = &buildpack.store {
            let path = place.dir.join("store.toml");
            write(&place.dir, &path, to_toml(&path, store)?)?;
            restored.stores.push(buildpack.key.clone());
        }
        for (name, layer) in &buildpack.layers {
            let ident = format!("{}:{name}", buildpack.key);
            if !is_layer_name(name) {
                restored.dropped.push((ident, "not a layer name".into()));
                continue;
            }
            let cached = in_cache(&buildpack.key, name);
            let types = layer.types;
            if !types.launch || (types.build && !types.cache) || (types.cache && !cached) {
                continue;
            }
            written.push(write_toml(&place, name, layer, cached)?);
            if !types.cache {
                restored.metadata_only.push(ident);
            }
        }
    }
    for buildpack in &cache_metadata.buildpacks {
        let cache_only = buildpack
            .layers
            .iter()
            .filter(|(_, l)| l.types.cache && !l.types.launch);
        if cache_only.clone().next().is_none() {
            continue;
        }
        let Some(place) = buildpack_dir(&buildpack.key, &mut restored) else {
            continue;
        };
        for (name, layer) in cache_only {
            if !is_layer_name(name) {
                let ident = format!("{}:{name}", buildpack.key);
                restored.dropped.push((ident, "not a layer name".into()));
                continue;
            }
            written.push(write_toml(&place, name, layer, true)?);
        }
    }

    for layer in written.iter().filter(|w| w.cached) {
        let ident = format!("{}:{}", layer.place.key, layer.name);
        let cached_sha = cache_metadata
            .layer(&layer.place.key, &layer.name)
            .map(|l| l.sha.as_str());
        let outcome = match (input.cache, cached_sha) {
            (Some((cache_dir, _)), Some(sha)) if sha == layer.sha => {
                extract_layer(cache_dir, layers, layer, extract)
            }
            _ => Err("wrong sha".to_string()),
        };
        match outcome {
            Ok(()) => restored.from_cache.push(ident),
            Err(reason) => {
                remove_layer(layer)?;
                restored.dropped.push((ident, reason));
            }
        }
    }
    Ok(restored)
}

/// Extracts one cached layer into place; the reason it could not, if so.
fn extract_layer(
    cache_dir: &Path,
    layers: &Path,
    layer: &Written,
    extract: Extract<'_>,
) -> Result<(), String> {
    let hex = hex_of(&layer.sha).map_err(|e| e.to_string())?;
    let tar = cache_dir.join(hex);
    if !tar.is_file() {
        return Err("not in the cache".into());
    }
    let scratch = tempfile::Builder::new()
        .prefix(".restore-")
        .tempdir_in(layers)
        .map_err(|e| e.to_string())?;
    extract(&tar, scratch.path()).map_err(|e| e.to_string())?;
    let from = scratch
        .path()
        .join(IMAGE_LAYERS_DIR.trim_start_matches('/'))
        .join(&layer.place.escaped)
        .join(&layer.name);
    match std::fs::symlink_metadata(&from) {
        Ok(meta) if meta.is_dir() => {}
        _ => return Err("the cached tar does not hold the layer".into()),
    }
    std::fs::rename(&from, layer.place.dir.join(&layer.name)).map_err(|e| e.to_string())
}

fn remove_layer(layer: &Written) -> Result<(), CacheError> {
    let toml = layer.place.dir.join(format!("{}.toml", layer.name));
    std::fs::remove_file(&toml).map_err(io("remove", &toml))?;
    let dir = layer.place.dir.join(&layer.name);
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("remove", &dir)(e)),
        _ => Ok(()),
    }
}

/// Removes everything in `dir` (which stays).
fn empty_dir(dir: &Path) -> Result<(), CacheError> {
    for entry in std::fs::read_dir(dir).map_err(io("read", dir))? {
        let path = entry.map_err(io("read", dir))?.path();
        let removed = match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(&path),
            _ => std::fs::remove_file(&path),
        };
        removed.map_err(io("remove", &path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_names_from_a_label_are_single_components() {
        for good in ["httpd", "a.b", "node_modules"] {
            assert!(is_layer_name(good), "{good}");
        }
        for bad in [
            "", ".", "..", "a/b", "../x", "store", "launch", "build", "x.ignore",
        ] {
            assert!(!is_layer_name(bad), "{bad}");
        }
    }

    #[test]
    fn analyzed_toml_has_the_previous_image_and_the_run_image() {
        let dir = tempfile::tempdir().unwrap();
        let label = serde_json::json!({
            "buildpacks": [{ "key": "test/httpd", "layers": { "httpd": { "sha": "sha256:aa", "data": { "version": "1" } } } }],
            "runImage": { "topLayer": "sha256:bb", "mirrors": null },
        });
        write_analyzed(
            dir.path(),
            Some(("sha256:cc", &label)),
            "localhost/run:1",
            "sha256:dd",
        )
        .unwrap();
        let text = std::fs::read_to_string(dir.path().join(ANALYZED)).unwrap();
        let analyzed: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(analyzed["image"]["reference"].as_str(), Some("sha256:cc"));
        assert_eq!(
            analyzed["metadata"]["buildpacks"][0]["layers"]["httpd"]["data"]["version"].as_str(),
            Some("1")
        );
        assert!(analyzed["metadata"]["runImage"].get("mirrors").is_none());
        assert_eq!(
            analyzed["run-image"]["image"].as_str(),
            Some("localhost/run:1")
        );
        assert_eq!(
            analyzed["run-image"]["reference"].as_str(),
            Some("sha256:dd")
        );

        write_analyzed(dir.path(), None, "localhost/run:1", "sha256:dd").unwrap();
        let text = std::fs::read_to_string(dir.path().join(ANALYZED)).unwrap();
        assert!(!text.contains("[image]"), "{text}");
    }

    #[test]
    fn labels_parse_leniently_into_layer_records() {
        let label = r#"{"app":[],"buildpacks":[{"key":"a/b","version":"1.0.0","layers":{"l":{"sha":"sha256:00","data":{"n":1},"launch":true}},"store":{"metadata":{"builds":2}}}]}"#;
        let parsed = LayersMetadata::from_json(label).unwrap();
        let record = parsed.layer("a/b", "l").unwrap();
        assert!(record.types.launch && !record.types.build && !record.types.cache);
        assert_eq!(record.data["n"].as_integer(), Some(1));
        assert_eq!(
            parsed.buildpacks[0].store.as_ref().unwrap().metadata["builds"].as_integer(),
            Some(2)
        );
    }
}
