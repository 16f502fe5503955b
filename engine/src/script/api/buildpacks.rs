//! The buildpacks a build is given (`build_image`'s `buildpacks`, `locald build
//! --buildpack REF`): as `pack build --buildpack`, they replace the builder's order with
//! one group of them, in the order given.
//!
//! A REF is, in the order `pack` tries them:
//! - `docker://IMAGE`: a buildpackage image, pulled through the image store;
//! - `urn:cnb:builder:ID[@VERSION]`: a buildpack the builder has;
//! - a path to an existing file (a `.cnb` buildpackage: a tar of an OCI layout, imported
//!   into the store) or directory (a buildpack, `buildpack.toml` at its root);
//! - `ID` or `ID@VERSION` of a buildpack the builder has (nothing is pulled);
//! - otherwise a buildpackage image reference.
//!
//! A buildpackage (Distribution spec) is an image whose layers hold only
//! `/cnb/buildpacks/<escaped id>/<version>/` trees, with the labels
//! `io.buildpacks.buildpackage.metadata` (the buildpack it stands for) and
//! `io.buildpacks.buildpack.layers` (every buildpack it carries: several for a composite
//! one). Its image is untrusted: the labels' ids and versions are checked as paths, its
//! tree may hold nothing but the buildpacks its label lists (real directories, no links),
//! and each one's `buildpack.toml` must name it. The buildpacks the builder lacks are
//! then mounted read-only at `/cnb/buildpacks/<escaped id>/<version>` in the build
//! container (the builder's image is never changed), from the store's unpacked rootfs,
//! leased for the build; the generated order goes to `<layers>/order.toml`, which the
//! lifecycle reads instead of the builder's `/cnb/order.toml`.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use locald_cnb::formats::descriptor::Descriptor;
use locald_cnb::formats::order::OrderEntry;
use locald_cnb::formats::FormatError;
use locald_cnb::id::check_version;
use locald_cnb::{BuildpackId, Limits};
use locald_image::{ImageLease, PullPolicy, StoredImage};
use locald_runtime::VolumeMount;
use serde::Deserialize;

use super::build::BuildError;
use super::container::{self, ContainerError, PullStopped};

/// The label naming the buildpack a buildpackage stands for.
pub const METADATA_LABEL: &str = "io.buildpacks.buildpackage.metadata";
/// The label listing every buildpack a buildpackage carries.
pub const LAYERS_LABEL: &str = "io.buildpacks.buildpack.layers";
/// Where buildpacks are in a builder (and in a buildpackage).
const BUILDPACKS_IN_IMAGE: &str = "/cnb/buildpacks";

/// Most buildpacks one build may be given.
const MAX_REFS: usize = 64;
/// Most buildpacks one buildpackage may carry.
const MAX_PACKAGED: usize = 256;

/// Why the buildpacks given to a build cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BuildpackError {
    #[error("too many buildpacks: {count} given, at most {MAX_REFS}")]
    TooMany { count: usize },
    #[error(
        "buildpack `{reference}` was not found: it is not a buildpack of the builder{has}, \
         nor a file or directory, and not an image that can be pulled: {source}"
    )]
    NotFound {
        reference: String,
        /// What the builder has of that id, if anything (` (it has ID@V, …)`).
        has: String,
        #[source]
        source: Box<ContainerError>,
    },
    #[error("buildpack `{reference}`: cannot pull its image: {source}")]
    Pull {
        reference: String,
        #[source]
        source: Box<ContainerError>,
    },
    #[error("buildpack `{reference}`: the builder has no such buildpack{has}")]
    NotInBuilder { reference: String, has: String },
    #[error(
        "buildpack `{reference}`: the builder has several versions of it ({versions}); \
         name one as {reference}@VERSION"
    )]
    Ambiguous { reference: String, versions: String },
    #[error("buildpack `{reference}` is not a usable buildpackage: {reason}")]
    NotABuildpackage { reference: String, reason: String },
    #[error("buildpack `{reference}`: {source}")]
    Descriptor {
        reference: String,
        #[source]
        source: Box<FormatError>,
    },
    #[error("buildpack `{reference}`: cannot import the buildpackage file: {source}")]
    Import {
        reference: String,
        #[source]
        source: Box<locald_image::Error>,
    },
    #[error("buildpack `{reference}`: cannot read {}: {source}", path.display())]
    Io {
        reference: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl From<BuildpackError> for ContainerError {
    fn from(error: BuildpackError) -> Self {
        ContainerError::Build(Box::new(BuildError::Buildpack(Box::new(error))))
    }
}

/// What the given buildpacks make of a build.
#[derive(Debug, Default)]
pub struct Chosen {
    /// The one group of the generated order, in the order given.
    pub group: Vec<OrderEntry>,
    /// Buildpack directories on the host, each to mount read-only at
    /// `/cnb/buildpacks/<escaped id>/<version>`.
    pub mounts: Vec<VolumeMount>,
    /// The buildpackage images the mounts come from (to lease for the build).
    pub images: Vec<StoredImage>,
}

impl Chosen {
    /// Leases the buildpackage images for `user`: `image rm`/`prune` leave their rootfs,
    /// which the build container mounts, alone while the leases live.
    pub fn lease(&self, user: &str) -> Result<Vec<ImageLease>, ContainerError> {
        let store = container::store()?;
        self.images
            .iter()
            .map(|image| Ok(store.lease(image, user)?))
            .collect()
    }

    /// Adds the buildpack `id@version` at `dir` on the host, unless one is there already.
    fn mount(&mut self, id: &BuildpackId, version: &str, dir: PathBuf) {
        let container = format!("{BUILDPACKS_IN_IMAGE}/{}/{version}", id.escaped());
        if !self.mounts.iter().any(|m| m.container == container) {
            self.mounts.push(VolumeMount {
                host: dir,
                container,
                read_only: true,
            });
        }
    }
}

/// Resolves `references` against `builder` (see the module's doc). No references: the
/// builder's own order, nothing chosen.
pub fn resolve(references: &[String], builder: &StoredImage) -> Result<Chosen, PullStopped> {
    if references.len() > MAX_REFS {
        return Err(BuildpackError::TooMany {
            count: references.len(),
        }
        .into());
    }
    let limits = Limits::DEFAULT;
    let builder_buildpacks = builder.rootfs.join("cnb/buildpacks");
    let mut chosen = Chosen::default();
    for reference in references {
        let entry = if let Some(image) = reference.strip_prefix("docker://") {
            let image = pull(image, |source| BuildpackError::Pull {
                reference: reference.clone(),
                source,
            })?;
            add_buildpackage(&mut chosen, reference, image, &limits)?
        } else if let Some(id) = reference.strip_prefix("urn:cnb:builder:") {
            from_builder(reference, id, &builder_buildpacks)?.ok_or_else(|| {
                BuildpackError::NotInBuilder {
                    reference: reference.clone(),
                    has: builder_has(id, &builder_buildpacks),
                }
            })?
        } else if let Ok(meta) = std::fs::metadata(reference) {
            let path = Path::new(reference);
            if meta.is_dir() {
                add_directory(&mut chosen, reference, path, &limits)?
            } else {
                let image = import_file(reference, path)?;
                add_buildpackage(&mut chosen, reference, image, &limits)?
            }
        } else if let Some(entry) = from_builder(reference, reference, &builder_buildpacks)? {
            entry
        } else {
            let image = pull(reference, |source| BuildpackError::NotFound {
                reference: reference.clone(),
                has: builder_has(reference, &builder_buildpacks),
                source,
            })?;
            add_buildpackage(&mut chosen, reference, image, &limits)?
        };
        chosen.group.push(entry);
    }
    Ok(chosen)
}

/// The image `reference`, pulled when missing; a failed pull is `failed`'s error (an
/// interrupt stays one).
fn pull(
    reference: &str,
    failed: impl FnOnce(Box<ContainerError>) -> BuildpackError,
) -> Result<StoredImage, PullStopped> {
    match container::ensure_image(reference, PullPolicy::Missing) {
        Err(PullStopped::Failed(source)) => Err(failed(Box::new(source)).into()),
        other => other,
    }
}

/// `ID` or `ID@VERSION` as a buildpack of the builder (whose buildpacks are at
/// `buildpacks`), if it has it; `None` when `text` is no id or the builder lacks it.
fn from_builder(
    reference: &str,
    text: &str,
    buildpacks: &Path,
) -> Result<Option<OrderEntry>, BuildpackError> {
    let (id, version) = match text.split_once('@') {
        Some((id, version)) => (id, Some(version)),
        None => (text, None),
    };
    let Ok(id) = BuildpackId::parse(id) else {
        return Ok(None);
    };
    let versions = builder_versions(&id, buildpacks);
    let version = match version {
        Some(version) if versions.iter().any(|v| v == version) => version.to_string(),
        Some(_) => return Ok(None),
        None => match versions.as_slice() {
            [] => return Ok(None),
            [only] => only.clone(),
            several => {
                return Err(BuildpackError::Ambiguous {
                    reference: reference.to_string(),
                    versions: several.join(", "),
                })
            }
        },
    };
    Ok(Some(OrderEntry {
        id,
        version,
        optional: false,
    }))
}

/// The versions of `id` the builder has: the real directories (no links) under
/// `<buildpacks>/<escaped id>/` that hold a `buildpack.toml`, sorted.
fn builder_versions(id: &BuildpackId, buildpacks: &Path) -> Vec<String> {
    let Some(dir) = real_dir(buildpacks, &[&id.escaped()]) else {
        return Vec::new();
    };
    let mut versions: Vec<String> = entries(&dir)
        .unwrap_or_default()
        .into_iter()
        .filter(|(name, is_dir)| {
            *is_dir
                && check_version(name).is_ok()
                && dir.join(name).join("buildpack.toml").is_file()
        })
        .map(|(name, _)| name)
        .collect();
    versions.sort();
    versions
}

/// ` (it has ID@V, …)` when the builder has versions of the id `text` names, for errors.
fn builder_has(text: &str, buildpacks: &Path) -> String {
    let id = text.split_once('@').map_or(text, |(id, _)| id);
    let Ok(id) = BuildpackId::parse(id) else {
        return String::new();
    };
    let versions = builder_versions(&id, buildpacks);
    if versions.is_empty() {
        return String::new();
    }
    let keys: Vec<String> = versions.iter().map(|v| format!("{id}@{v}")).collect();
    format!(" (it has {})", keys.join(", "))
}

/// A buildpack directory on the host: mounted where its `buildpack.toml` says.
fn add_directory(
    chosen: &mut Chosen,
    reference: &str,
    dir: &Path,
    limits: &Limits,
) -> Result<OrderEntry, BuildpackError> {
    let dir = dir.canonicalize().map_err(|source| BuildpackError::Io {
        reference: reference.to_string(),
        path: dir.to_path_buf(),
        source,
    })?;
    let descriptor =
        Descriptor::read(&dir, limits).map_err(|source| BuildpackError::Descriptor {
            reference: reference.to_string(),
            source: Box::new(source),
        })?;
    chosen.mount(&descriptor.id, &descriptor.version, dir);
    Ok(OrderEntry {
        id: descriptor.id,
        version: descriptor.version,
        optional: false,
    })
}

/// A `.cnb` file: imported into the store as `locald-buildpackage/<file name>:latest`.
fn import_file(reference: &str, path: &Path) -> Result<StoredImage, PullStopped> {
    let stem = path.file_stem().unwrap_or_else(|| OsStr::new("buildpack"));
    let name = format!(
        "locald-buildpackage/{}:latest",
        super::build::reference_name(stem)
    );
    let store = container::store()?;
    Ok(store
        .import_oci_archive(path, Some(&name))
        .map_err(|source| BuildpackError::Import {
            reference: reference.to_string(),
            source: Box::new(source),
        })?)
}

/// A buildpackage image: checked, its buildpacks mounted, its image kept for the lease.
fn add_buildpackage(
    chosen: &mut Chosen,
    reference: &str,
    image: StoredImage,
    limits: &Limits,
) -> Result<OrderEntry, PullStopped> {
    let labels = container::store()?.labels(&image)?;
    let package = check_buildpackage(reference, &image.rootfs, &labels, limits)?;
    for (id, version, dir) in package.buildpacks {
        chosen.mount(&id, &version, dir);
    }
    chosen.images.push(image);
    Ok(package.entry)
}

/// A checked buildpackage.
#[derive(Debug)]
struct Package {
    /// The buildpack it stands for (its metadata label).
    entry: OrderEntry,
    /// Every buildpack it carries, with its directory in the image's rootfs.
    buildpacks: Vec<(BuildpackId, String, PathBuf)>,
}

#[derive(Deserialize)]
struct PackageMetadata {
    id: String,
    version: String,
}

/// Checks the buildpackage whose unpacked image is `rootfs`, with `labels` (see the
/// module's doc).
fn check_buildpackage(
    reference: &str,
    rootfs: &Path,
    labels: &BTreeMap<String, String>,
    limits: &Limits,
) -> Result<Package, BuildpackError> {
    let refuse = |reason: String| BuildpackError::NotABuildpackage {
        reference: reference.to_string(),
        reason,
    };
    let label = |name: &str| {
        labels
            .get(name)
            .ok_or_else(|| refuse(format!("its image has no `{name}` label")))
    };
    let metadata: PackageMetadata = serde_json::from_str(label(METADATA_LABEL)?)
        .map_err(|e| refuse(format!("its `{METADATA_LABEL}` label is invalid: {e}")))?;
    let (id, version) = checked_key(&metadata.id, &metadata.version)
        .map_err(|e| refuse(format!("its `{METADATA_LABEL}` label: {e}")))?;
    let layers: BTreeMap<String, BTreeMap<String, serde_json::Value>> =
        serde_json::from_str(label(LAYERS_LABEL)?)
            .map_err(|e| refuse(format!("its `{LAYERS_LABEL}` label is invalid: {e}")))?;
    let mut listed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut buildpacks = Vec::new();
    for (layer_id, versions) in &layers {
        for layer_version in versions.keys() {
            let (layer_id, layer_version) = checked_key(layer_id, layer_version)
                .map_err(|e| refuse(format!("its `{LAYERS_LABEL}` label: {e}")))?;
            if buildpacks.len() == MAX_PACKAGED {
                return Err(refuse(format!(
                    "it carries more than {MAX_PACKAGED} buildpacks"
                )));
            }
            listed
                .entry(layer_id.escaped())
                .or_default()
                .insert(layer_version.clone());
            buildpacks.push((layer_id, layer_version));
        }
    }
    if !buildpacks
        .iter()
        .any(|(i, v)| i.same_as(&id) && *v == version)
    {
        return Err(refuse(format!(
            "it stands for {id}@{version}, which its `{LAYERS_LABEL}` label does not list"
        )));
    }
    check_tree(rootfs, &listed).map_err(refuse)?;

    let dirs = rootfs.join("cnb/buildpacks");
    let mut found = Vec::with_capacity(buildpacks.len());
    for (layer_id, layer_version) in buildpacks {
        let escaped = layer_id.escaped();
        let dir = real_dir(rootfs, &["cnb", "buildpacks", &escaped, &layer_version]).ok_or_else(
            || {
                refuse(format!(
                    "its label lists {layer_id}@{layer_version}, but it has no directory \
                     {BUILDPACKS_IN_IMAGE}/{escaped}/{layer_version}"
                ))
            },
        )?;
        Descriptor::lookup(&dirs, &layer_id, &layer_version, limits).map_err(|source| {
            BuildpackError::Descriptor {
                reference: reference.to_string(),
                source: Box::new(source),
            }
        })?;
        found.push((layer_id, layer_version, dir));
    }
    Ok(Package {
        entry: OrderEntry {
            id,
            version,
            optional: false,
        },
        buildpacks: found,
    })
}

/// An id and a version from a label, checked as the path components they become.
fn checked_key(id: &str, version: &str) -> Result<(BuildpackId, String), String> {
    let id = BuildpackId::parse(id).map_err(|e| format!("the id {e}"))?;
    check_version(version).map_err(|e| format!("the version of {id} {e}"))?;
    Ok((id, version.to_string()))
}

/// Checks that the image's tree holds nothing but `/cnb/buildpacks/<escaped id>/<version>`
/// directories its label lists (`listed`: escaped id → versions): no other file
/// anywhere, no links on the way.
fn check_tree(rootfs: &Path, listed: &BTreeMap<String, BTreeSet<String>>) -> Result<(), String> {
    let only = |dir: &Path, shown: &str, allowed: &dyn Fn(&str) -> bool| {
        for (name, is_dir) in entries(dir).map_err(|e| format!("cannot read {shown}: {e}"))? {
            let path = format!("{}/{name}", shown.trim_end_matches('/'));
            if !allowed(&name) {
                return Err(format!(
                    "{path} is outside the buildpacks its `{LAYERS_LABEL}` label lists"
                ));
            }
            if !is_dir {
                return Err(format!("{path} is not a directory"));
            }
        }
        Ok(())
    };
    only(rootfs, "/", &|name| name == "cnb")?;
    only(&rootfs.join("cnb"), "/cnb", &|name| name == "buildpacks")?;
    let buildpacks = rootfs.join("cnb/buildpacks");
    only(&buildpacks, BUILDPACKS_IN_IMAGE, &|name| {
        listed.contains_key(name)
    })?;
    for (escaped, versions) in listed {
        let dir = buildpacks.join(escaped);
        if dir.is_dir() {
            only(&dir, &format!("{BUILDPACKS_IN_IMAGE}/{escaped}"), &|name| {
                versions.contains(name)
            })?;
        }
    }
    Ok(())
}

/// The entries of `dir`: each name, and whether it is a real directory (not a link).
fn entries(dir: &Path) -> std::io::Result<Vec<(String, bool)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let is_dir = entry.file_type()?.is_dir();
        found.push((entry.file_name().to_string_lossy().into_owned(), is_dir));
    }
    found.sort();
    Ok(found)
}

/// `root/<parts…>` if each part is a real directory, not a link: the directory is
/// mounted from the host, where a link in an image's tree would lead to the host's files.
fn real_dir(root: &Path, parts: &[&str]) -> Option<PathBuf> {
    let mut path = root.to_path_buf();
    for part in parts {
        path.push(part);
        let meta = std::fs::symlink_metadata(&path).ok()?;
        if !meta.is_dir() {
            return None;
        }
    }
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a component buildpack `id@version` under `<root>/cnb/buildpacks`.
    fn buildpack(root: &Path, id: &str, version: &str) {
        let dir = root
            .join("cnb/buildpacks")
            .join(id.replace('/', "_"))
            .join(version);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::write(
            dir.join("buildpack.toml"),
            format!("api = \"0.10\"\n[buildpack]\nid = \"{id}\"\nversion = \"{version}\"\n"),
        )
        .unwrap();
    }

    fn labels(id: &str, version: &str, layers: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (
                METADATA_LABEL.to_string(),
                format!(r#"{{"id":"{id}","version":"{version}","stacks":[{{"id":"*"}}]}}"#),
            ),
            (LAYERS_LABEL.to_string(), layers.to_string()),
        ])
    }

    const TWO: &str = r#"{"test/extra":{"0.0.2":{"api":"0.10","layerDiffID":"sha256:00"}},
        "test/meta":{"1.0.0":{"api":"0.10","order":[]}}}"#;

    fn check(root: &Path, labels: &BTreeMap<String, String>) -> Result<Package, String> {
        check_buildpackage("REF", root, labels, &Limits::DEFAULT).map_err(|e| e.to_string())
    }

    #[test]
    fn a_composite_buildpackage_gives_all_its_buildpacks() {
        let root = tempfile::tempdir().unwrap();
        buildpack(root.path(), "test/extra", "0.0.2");
        buildpack(root.path(), "test/meta", "1.0.0");
        let package = check(root.path(), &labels("test/meta", "1.0.0", TWO)).unwrap();
        assert_eq!(
            (package.entry.id.as_str(), package.entry.version.as_str()),
            ("test/meta", "1.0.0")
        );
        let dirs: Vec<String> = package
            .buildpacks
            .iter()
            .map(|(id, v, dir)| {
                format!(
                    "{id}@{v} {}",
                    dir.strip_prefix(root.path()).unwrap().display()
                )
            })
            .collect();
        assert_eq!(
            dirs,
            [
                "test/extra@0.0.2 cnb/buildpacks/test_extra/0.0.2",
                "test/meta@1.0.0 cnb/buildpacks/test_meta/1.0.0"
            ]
        );
    }

    #[test]
    fn a_buildpackage_with_hostile_labels_or_tree_is_refused() {
        let refused = |root: &Path, labels: &BTreeMap<String, String>, expected: &str| {
            let error = check(root, labels).unwrap_err();
            assert!(
                error.starts_with("buildpack `REF` is not a usable buildpackage: ")
                    && error.contains(expected),
                "{error}\nwanted: {expected}"
            );
        };
        let root = tempfile::tempdir().unwrap();
        buildpack(root.path(), "test/extra", "0.0.2");
        buildpack(root.path(), "test/meta", "1.0.0");
        let good = labels("test/meta", "1.0.0", TWO);

        refused(
            root.path(),
            &BTreeMap::new(),
            "has no `io.buildpacks.buildpackage.metadata` label",
        );
        refused(
            root.path(),
            &labels("../../etc", "1", TWO),
            "the id `../../etc`",
        );
        refused(
            root.path(),
            &labels("test/meta", "..", TWO),
            "the version of test/meta",
        );
        refused(
            root.path(),
            &labels(
                "test/meta",
                "1.0.0",
                r#"{"test/meta":{"1.0.0":{}},"x":{"../..":{}}}"#,
            ),
            "the version of x",
        );
        refused(
            root.path(),
            &labels("test/other", "1.0.0", TWO),
            "it stands for test/other@1.0.0, which its `io.buildpacks.buildpack.layers` label does not list",
        );
        // A buildpack in the tree that the label does not list.
        refused(
            root.path(),
            &labels("test/meta", "1.0.0", r#"{"test/meta":{"1.0.0":{}}}"#),
            "/cnb/buildpacks/test_extra is outside the buildpacks",
        );

        // Anything outside /cnb/buildpacks.
        std::fs::create_dir(root.path().join("etc")).unwrap();
        refused(root.path(), &good, "/etc is outside the buildpacks");
        std::fs::remove_dir(root.path().join("etc")).unwrap();
        std::fs::write(root.path().join("cnb/order.toml"), "").unwrap();
        refused(
            root.path(),
            &good,
            "/cnb/order.toml is outside the buildpacks",
        );
        std::fs::remove_file(root.path().join("cnb/order.toml")).unwrap();
        check(root.path(), &good).unwrap();

        // A link where a buildpack's directory should be (it would be mounted from the host).
        let version_dir = root.path().join("cnb/buildpacks/test_extra/0.0.2");
        std::fs::remove_dir_all(&version_dir).unwrap();
        std::os::unix::fs::symlink("/etc", &version_dir).unwrap();
        refused(
            root.path(),
            &good,
            "/cnb/buildpacks/test_extra/0.0.2 is not a directory",
        );
        std::fs::remove_file(&version_dir).unwrap();
        refused(
            root.path(),
            &good,
            "it has no directory /cnb/buildpacks/test_extra/0.0.2",
        );

        // A buildpack.toml that names another buildpack.
        buildpack(root.path(), "test/extra", "0.0.2");
        std::fs::write(
            version_dir.join("buildpack.toml"),
            "api = \"0.10\"\n[buildpack]\nid = \"test/httpd\"\nversion = \"0.0.2\"\n",
        )
        .unwrap();
        let error = check(root.path(), &good).unwrap_err();
        assert!(
            error.contains("test/httpd@0.0.2") && error.contains("test/extra@0.0.2"),
            "{error}"
        );
    }

    #[test]
    fn ids_and_versions_name_the_builders_buildpacks() {
        let root = tempfile::tempdir().unwrap();
        buildpack(root.path(), "test/httpd", "0.0.1");
        buildpack(root.path(), "test/multi", "1.0.0");
        buildpack(root.path(), "test/multi", "2.0.0");
        let buildpacks = root.path().join("cnb/buildpacks");
        let found = |text: &str| {
            from_builder(text, text, &buildpacks)
                .map(|entry| entry.map(|e| format!("{}@{}", e.id, e.version)))
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            found("test/httpd").unwrap().as_deref(),
            Some("test/httpd@0.0.1")
        );
        assert_eq!(
            found("test/httpd@0.0.1").unwrap().as_deref(),
            Some("test/httpd@0.0.1")
        );
        assert_eq!(found("test/httpd@9.9.9").unwrap(), None);
        assert_eq!(found("test/none").unwrap(), None);
        assert_eq!(found("127.0.0.1:5000/bp:1").unwrap(), None);
        assert_eq!(
            found("test/multi@2.0.0").unwrap().as_deref(),
            Some("test/multi@2.0.0")
        );
        let error = found("test/multi").unwrap_err();
        assert!(
            error.contains("several versions of it (1.0.0, 2.0.0); name one as test/multi@VERSION"),
            "{error}"
        );
        assert_eq!(
            builder_has("test/httpd@9.9.9", &buildpacks),
            " (it has test/httpd@0.0.1)"
        );
        assert_eq!(builder_has("test/none", &buildpacks), "");
    }

    #[test]
    fn a_buildpack_directory_is_mounted_where_its_descriptor_says() {
        let root = tempfile::tempdir().unwrap();
        buildpack(root.path(), "test/local", "0.1.0");
        let dir = root.path().join("cnb/buildpacks/test_local/0.1.0");
        let mut chosen = Chosen::default();
        let entry = add_directory(&mut chosen, "DIR", &dir, &Limits::DEFAULT).unwrap();
        assert_eq!(
            format!("{}@{}", entry.id, entry.version),
            "test/local@0.1.0"
        );
        assert_eq!(chosen.mounts.len(), 1);
        assert_eq!(
            chosen.mounts[0].container,
            "/cnb/buildpacks/test_local/0.1.0"
        );
        assert!(chosen.mounts[0].read_only);
        // The same buildpack again is mounted once.
        add_directory(&mut chosen, "DIR", &dir, &Limits::DEFAULT).unwrap();
        assert_eq!(chosen.mounts.len(), 1);
        let error = add_directory(&mut chosen, "DIR", root.path(), &Limits::DEFAULT)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("buildpack `DIR`: ") && error.contains("buildpack.toml"),
            "{error}"
        );
    }
}
