//! Analysis, restore and the layer cache of `build_image`, around the build container.
//!
//! Before the container starts, on the host: the previous image is the one the store has
//! under the build's tag; `<layers>/analyzed.toml` records it (and its
//! `io.buildpacks.lifecycle.metadata` label) and the run image; then the restorer
//! (`locald_cnb::cache::restore`) fills the empty layers directory from that label and
//! from the tag's build cache (`ImageStore::build_cache`). After the export, the cache
//! layers are written to a staging directory and committed in one exchange, so a failed or
//! stopped build leaves the previous cache as it was.
//!
//! Why on the host rather than in the `lifecycle` in the container: the previous image's
//! label is in the store, which only the host reaches; the cache stays in the store's
//! private directory and is never mounted where untrusted buildpacks run (they see only
//! what was restored for them); the restored files are then given to the builder's user
//! with the rest of the layers directory (`chown_tree`), as the work directory already is.
//! The cached tars are unpacked with the store's safe unpack (`unpack_archive`: no entry
//! escapes the directory it is given, no device nodes, bounded), into a scratch directory
//! of which only the layer's own subtree is moved into place.

use std::collections::BTreeSet;
use std::path::Path;

use locald_cnb::cache::{self, CacheInput, LayersMetadata, RestoreInput};
use locald_cnb::export::layer::Owner;
use locald_cnb::export::{Exported, SourceImage};
use locald_image::{BuildCache, ImageStore, StagedCache, StoredImage};
use serde_json::Value;

use super::build::BuildError;

/// What analysis found for one build, kept until its cache is saved.
pub(super) struct Analysis {
    cache: BuildCache,
    /// The previous image (the tag's, in the store), whose launch layers the exporter may
    /// reuse.
    pub previous: Option<SourceImage>,
    /// Every layer digest the previous image's label records.
    previous_digests: BTreeSet<String>,
}

/// Analysis then restore into the empty `layers`, printing what was restored.
pub(super) fn analyze_and_restore(
    store: &ImageStore,
    tag: &str,
    layers: &Path,
    run_image: &StoredImage,
) -> Result<Analysis, BuildError> {
    let cache = store.build_cache(tag)?;
    let previous = store.resolve(tag)?.map(|image| SourceImage {
        blobs: store.blobs_dir(),
        manifest_digest: image.manifest_digest,
        reference: image.reference,
    });
    let label = match &previous {
        Some(image) => locald_cnb::export::lifecycle_label(image)?,
        None => None,
    };
    cache::write_analyzed(
        layers,
        previous
            .as_ref()
            .zip(label.as_ref())
            .map(|(image, label)| (image.manifest_digest.as_str(), label)),
        &run_image.reference,
        &run_image.manifest_digest,
    )?;
    // A label this lifecycle cannot read is no previous build to restore from.
    let previous_layers = label
        .as_ref()
        .and_then(|l| serde_json::from_value::<LayersMetadata>(l.clone()).ok());
    let committed = cache.committed();
    let cache_metadata = match &committed {
        Some(dir) => LayersMetadata::read_cache(dir)?,
        None => None,
    };
    println!("===> RESTORING");
    let input = RestoreInput {
        layers,
        previous: previous_layers.as_ref(),
        cache: committed.as_deref().zip(cache_metadata.as_ref()),
    };
    let restored = cache::restore(&input, &extract)?;
    for layer in &restored.from_cache {
        println!("Restoring data for {layer} from cache");
    }
    for layer in &restored.metadata_only {
        println!("Restoring metadata for {layer} from the previous image");
    }
    for (layer, reason) in &restored.dropped {
        println!("Not restoring {layer}: {reason}");
    }
    let mut previous_digests = BTreeSet::new();
    if let Some(label) = &label {
        collect_shas(label, &mut previous_digests);
    }
    Ok(Analysis {
        cache,
        previous,
        previous_digests,
    })
}

/// Every `"sha"` string in a lifecycle label: the digests of the image's own layers.
fn collect_shas(value: &Value, into: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match value {
                    Value::String(sha) if key == "sha" => {
                        into.insert(sha.clone());
                    }
                    other => collect_shas(other, into),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_shas(v, into)),
        _ => {}
    }
}

fn extract(tar: &Path, into: &Path) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let file = std::fs::File::open(tar)?;
    let name = tar
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    locald_image::unpack_archive(&name, file, into, locald_image::UnpackLimits::default())?;
    Ok(())
}

impl Analysis {
    /// Says, layer by layer, which of the exported image's layers the previous image
    /// already had ("Reusing") and which are new ("Adding").
    pub fn report_layers(&self, exported: &Exported) {
        let mut reused = 0;
        for layer in &exported.layers {
            if layer.reused || self.previous_digests.contains(&layer.digest) {
                reused += 1;
                println!("Reusing layer '{}'", layer.name);
            } else {
                println!("Adding layer '{}'", layer.name);
            }
        }
        println!(
            "reused {reused} of {} layers from the previous image",
            exported.layers.len()
        );
    }

    /// Writes this build's cache beside the tag's; [`StagedCache::commit`] (once the image
    /// is stored) makes it the tag's, replacing the last one, and dropping it instead
    /// leaves the last one.
    pub fn stage_cache(
        &self,
        metadata: &locald_cnb::build::BuildMetadata,
        exported: &Exported,
        image_blobs: &Path,
        owner: Owner,
    ) -> Result<StagedCache<'_>, BuildError> {
        let staged = self.cache.stage()?;
        let input = CacheInput {
            metadata,
            exported,
            image_blobs,
            owner,
        };
        cache::write_cache(&input, staged.path())?;
        Ok(staged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_layer_digest_of_a_label_is_collected() {
        let label = serde_json::json!({
            "app": [{ "sha": "sha256:a1" }, { "sha": "sha256:a2" }],
            "config": { "sha": "sha256:c" },
            "buildpacks": [{ "key": "x", "layers": { "l": { "sha": "sha256:l", "data": { "sha": 1 } } } }],
            "runImage": { "topLayer": "sha256:top" },
        });
        let mut shas = BTreeSet::new();
        collect_shas(&label, &mut shas);
        let shas: Vec<&str> = shas.iter().map(String::as_str).collect();
        assert_eq!(shas, ["sha256:a1", "sha256:a2", "sha256:c", "sha256:l"]);
    }
}
