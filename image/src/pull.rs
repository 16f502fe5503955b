//! Pulling images from registries: manifest (and host
//! platform selection from an index), then the config and layer blobs fetched
//! concurrently, each streamed to disk while its digest is verified, skipping
//! every blob the store already has. When the image's rootfs is not unpacked
//! yet, layers are applied in order as soon as each one's blob is committed
//! ([`PipelinedUnpack`]), overlapping download and unpack. Finishes with
//! [`ImageStore::install_staged`] (or [`ImageStore::install`]).
//!
//! Nothing a registry sends is trusted to be small: manifests, indexes and
//! configs have size caps (checked against `Content-Length` and again while
//! the body streams in), a blob is never read past the size its descriptor
//! declares, and the number of layers, of index entries and the declared total
//! size are bounded. A registry that breaks a bound fails the pull at once
//! and leaves nothing in the store. Requests are made with `reqwest`
//! directly, token protocol included ([`crate::token`]): oci-client, used
//! before, read manifests, error bodies and token answers whole. Its
//! `Reference` still maps `docker.io` to the registry's real host.

use std::io::IsTerminal;

use futures_util::{StreamExt, TryStreamExt};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use oci_client::secrets::RegistryAuth;
use sha2::{Digest as _, Sha256};

use crate::oci::{ConfigFile, Descriptor, Manifest, ManifestOrIndex, ACCEPTED_MANIFEST_TYPES};
use crate::platform::{describe_platforms, host_architecture, select_host_manifest};
use crate::reference::Reference;
use crate::store::{
    lock_async, store_bytes, BlobWriter, ImageStore, PreparedImage, StagedRootfs, StoreError,
    StoredImage,
};
use crate::unpack::PipelinedUnpack;
use crate::user_config::{
    configured_insecure_registries, docker_credentials, is_loopback_registry,
};
use crate::Error;

/// How many blobs are downloaded at once.
const CONCURRENT_DOWNLOADS: usize = 4;

/// Largest manifest or index document accepted, in bytes: containerd's limit
/// for manifests (4 MiB). Real ones are a few KiB; an index with hundreds of
/// platforms stays far below.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// Largest image config accepted, in bytes (8 MiB). Configs hold the
/// environment, labels and history: a few KiB usually, rarely 100 KiB.
pub const MAX_CONFIG_BYTES: u64 = 8 << 20;
/// Most layers an image may have: 128, the depth overlayfs stacks and
/// Docker's historical limit (127 layers plus the container's).
pub const MAX_LAYERS: usize = 128;
/// Most entries an index (manifest list) may have. Multi-platform images
/// have a dozen or two (twice that with attestation manifests).
pub const MAX_INDEX_MANIFESTS: usize = 256;
/// Largest declared size of all config and layer blobs together (64 GiB,
/// compressed): anything bigger is a mistake or an attack, not a dev image.
pub const MAX_IMAGE_BYTES: u64 = 64 << 30;
/// How much of an error response's body is kept for the message.
const MAX_ERROR_BODY_BYTES: usize = 4096;
/// How long connecting to a registry (or its token realm) may take.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// How long a registry may stay silent in the middle of a response before
/// the pull fails (each byte that arrives starts it over, so a slow link is
/// fine; a registry that stalls is not left holding the pull forever).
pub const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Options of a pull.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// Draw progress bars on stderr (only when stderr is a terminal).
    pub progress: bool,
    /// Registries (`host:port`) reached over plain HTTP, in addition to
    /// loopback ones and the user config's `insecure_registries`.
    pub insecure_registries: Vec<String>,
    /// How long a registry may stay silent mid-response; `None` is
    /// [`IDLE_TIMEOUT`].
    pub idle_timeout: Option<std::time::Duration>,
}

/// When `ensure` contacts the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    /// Always pull (cheap when nothing changed: only the manifest is fetched).
    Always,
    /// Pull only if the reference is not stored.
    Missing,
    /// Never pull; fail if the reference is not stored.
    Never,
}

/// What a pull transferred.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PullReport {
    /// Config and layer blobs fetched from the registry.
    pub downloaded_blobs: usize,
    /// Config and layer blobs already in the store.
    pub reused_blobs: usize,
    pub downloaded_bytes: u64,
}

/// Why a pull failed.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("image `{reference}` not found in registry {registry}")]
    NotFound { reference: String, registry: String },
    #[error("cannot pull `{reference}` from registry {registry}: {message}")]
    Registry {
        reference: String,
        registry: String,
        message: String,
    },
    #[error("cannot download blob {digest} of `{reference}`: {message}")]
    Blob {
        reference: String,
        digest: String,
        message: String,
    },
    #[error("image `{reference}` has no linux/{architecture} variant (it has: {available})")]
    NoMatchingPlatform {
        reference: String,
        architecture: String,
        available: String,
    },
    #[error("image `{reference}` has an invalid manifest: {reason}")]
    BadManifest { reference: String, reason: String },
    #[error("image `{0}` is not in the local store and the pull policy is `never`")]
    NotPresent(String),
    #[error("pull task failed: {0}")]
    Task(String),
    #[error(
        "registry {registry} sent more than {limit} bytes for the {what} of `{reference}` \
         (locald accepts at most {limit} bytes)"
    )]
    DocumentTooLarge {
        reference: String,
        registry: String,
        what: &'static str,
        limit: u64,
    },
    #[error(
        "registry {registry} sent more than the {size} bytes the manifest of `{reference}` \
         declares for blob {digest}"
    )]
    BlobTooLong {
        reference: String,
        registry: String,
        digest: String,
        size: u64,
    },
    #[error("image `{reference}` has {actual} {what}, more than the {limit} locald accepts")]
    LimitExceeded {
        reference: String,
        what: &'static str,
        actual: u64,
        limit: u64,
    },
}

impl ImageStore {
    /// Pulls `reference` into the store. Blobs already stored are not
    /// downloaded again; the report says how many were.
    pub async fn pull(
        &self,
        reference: &str,
        opts: &PullOptions,
    ) -> Result<(StoredImage, PullReport), Error> {
        let reference = Reference::parse(reference)?;
        let _shared = lock_async(self.paths.store_lock(), false).await?;
        self.clean_stale_tmp()?;
        let registry = Registry::connect(&reference, opts)?;
        let (manifest_digest, manifest_bytes, manifest) = registry.fetch_manifest().await?;

        let mut blobs = Vec::with_capacity(manifest.layers.len() + 1);
        blobs.push(manifest.config.clone());
        blobs.extend(manifest.layers.iter().cloned());

        // Unpack while downloading, unless this image's rootfs already exists.
        let unpacking = if self.paths.rootfs(&manifest_digest)?.is_dir() {
            None
        } else {
            let layers = self.layer_sources(&manifest)?;
            Some(PipelinedUnpack::start(
                layers,
                StagedRootfs::new(self),
                self.unpack_limits,
            ))
        };
        let notify = |digest: &str| {
            if let Some(unpack) = &unpacking {
                unpack.layer_ready(digest);
            }
        };
        let fetched = match registry
            .fetch_blobs(self, blobs, opts.progress, &notify)
            .await
        {
            Ok(report) => read_config(self, &reference, &manifest.config).map(|c| (report, c)),
            Err(error) => Err(error),
        };
        // The manifest is stored last, with everything it names: a failed
        // pull leaves no blob of its own behind.
        let fetched = fetched.and_then(|fetched| {
            store_bytes(&self.paths, &manifest_bytes, Some(&manifest_digest))?;
            Ok(fetched)
        });
        let (report, config_file) = match fetched {
            Ok(fetched) => fetched,
            Err(error) => {
                if let Some(unpack) = unpacking {
                    // Waits until the task stopped and removed the staged tree.
                    unpack.abort().await;
                }
                return Err(error);
            }
        };
        let prepared = PreparedImage {
            manifest_digest,
            manifest,
            config_file,
        };
        let staged = match unpacking {
            Some(unpack) => {
                let started = std::time::Instant::now();
                let staged = unpack.finish().await?;
                tracing::debug!(
                    waited_ms = started.elapsed().as_millis() as u64,
                    "layers unpacked after the last download"
                );
                Some(staged)
            }
            None => None,
        };
        let store = self.clone();
        let install_reference = reference.clone();
        let stored = tokio::task::spawn_blocking(move || match staged {
            Some(staged) => store.install_staged(&install_reference, &prepared, staged),
            None => store.install(&install_reference, &prepared),
        })
        .await
        .map_err(|e| PullError::Task(e.to_string()))??;
        tracing::info!(
            reference = %reference,
            digest = %stored.manifest_digest,
            downloaded_blobs = report.downloaded_blobs,
            reused_blobs = report.reused_blobs,
            downloaded_bytes = report.downloaded_bytes,
            "pulled image: {} blobs downloaded, {} reused",
            report.downloaded_blobs,
            report.reused_blobs,
        );
        Ok((stored, report))
    }

    /// Returns the stored image, pulling it first as `policy` says.
    pub async fn ensure(
        &self,
        reference: &str,
        policy: PullPolicy,
        opts: &PullOptions,
    ) -> Result<StoredImage, Error> {
        match policy {
            PullPolicy::Always => Ok(self.pull(reference, opts).await?.0),
            PullPolicy::Missing => match self.resolve(reference)? {
                Some(image) => Ok(image),
                None => Ok(self.pull(reference, opts).await?.0),
            },
            PullPolicy::Never => self.resolve(reference)?.ok_or_else(|| {
                PullError::NotPresent(
                    Reference::parse(reference)
                        .map_or_else(|_| reference.to_string(), |r| r.to_string()),
                )
                .into()
            }),
        }
    }
}

fn read_config(
    store: &ImageStore,
    reference: &Reference,
    config: &Descriptor,
) -> Result<ConfigFile, Error> {
    let path = store.paths.blob(&config.digest)?;
    let bytes = std::fs::read(&path).map_err(|source| StoreError::Io {
        action: "read",
        path,
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        PullError::BadManifest {
            reference: reference.to_string(),
            reason: format!("its config {} is not an image config: {e}", config.digest),
        }
        .into()
    })
}

/// A client bound to one reference's registry and repository.
struct Registry {
    http: reqwest::Client,
    /// `http`, or `https` unless the registry is a loopback or insecure one.
    scheme: &'static str,
    reference: Reference,
    oci_reference: oci_client::Reference,
    /// The user's credentials for this registry (or anonymous).
    auth: RegistryAuth,
    /// The bearer token the registry handed out, renewed on a 401.
    token: std::sync::Mutex<Option<String>>,
}

impl Registry {
    fn connect(reference: &Reference, opts: &PullOptions) -> Result<Self, Error> {
        crate::tls::install_crypto_provider();
        let registry = reference.registry();
        let insecure = is_loopback_registry(reference.registry_host())
            || opts.insecure_registries.iter().any(|r| r == registry)
            || configured_insecure_registries()?
                .iter()
                .any(|r| r == registry);
        let repository = reference.repository().to_string();
        let oci_reference = match (reference.tag(), reference.digest()) {
            (_, Some(digest)) => oci_client::Reference::with_digest(
                registry.to_string(),
                repository,
                digest.to_string(),
            ),
            (Some(tag), None) => {
                oci_client::Reference::with_tag(registry.to_string(), repository, tag.to_string())
            }
            (None, None) => oci_client::Reference::with_tag(
                registry.to_string(),
                repository,
                crate::reference::DEFAULT_TAG.to_string(),
            ),
        };
        let http = reqwest::Client::builder()
            .user_agent(concat!("locald/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(opts.idle_timeout.unwrap_or(IDLE_TIMEOUT))
            .build()
            .map_err(|e| PullError::Registry {
                reference: reference.to_string(),
                registry: registry.to_string(),
                message: error_chain(&e),
            })?;
        let auth = match docker_credentials(reference.registry())? {
            Some((user, password)) => RegistryAuth::Basic(user, password),
            None => RegistryAuth::Anonymous,
        };
        Ok(Self {
            http,
            scheme: if insecure { "http" } else { "https" },
            reference: reference.clone(),
            oci_reference,
            auth,
            token: std::sync::Mutex::new(None),
        })
    }

    /// Asks the registry (`GET /v2/`) whether it wants a token and gets
    /// one from the realm its `Bearer` challenge names, with the user's
    /// basic credentials when there are some. A registry that answers
    /// without a challenge gets basic credentials (or nothing) on each
    /// request. Every body read here is bounded.
    async fn authenticate(&self) -> Result<(), PullError> {
        let registry_error = |message: String| PullError::Registry {
            reference: self.reference.to_string(),
            registry: self.reference.registry().to_string(),
            message,
        };
        let transport = |e: reqwest::Error| registry_error(error_chain(&e));
        let ping = format!(
            "{}://{}/v2/",
            self.scheme,
            self.oci_reference.resolve_registry()
        );
        let response = self.http.get(&ping).send().await.map_err(transport)?;
        let challenge = (response.status() == http::StatusCode::UNAUTHORIZED)
            .then(|| response.headers().get(http::header::WWW_AUTHENTICATE))
            .flatten()
            .and_then(|value| value.to_str().ok())
            .and_then(crate::token::parse_bearer_challenge);
        // The body of the ping is not read: nothing in it is needed.
        drop(response);
        let Some(challenge) = challenge else {
            *self.token.lock().unwrap_or_else(|e| e.into_inner()) = None;
            return Ok(());
        };
        let scope = format!("repository:{}:pull", self.oci_reference.repository());
        let mut query = vec![("scope", scope.as_str())];
        if let Some(service) = &challenge.service {
            query.push(("service", service.as_str()));
        }
        let mut request = self.http.get(&challenge.realm).query(&query);
        if let RegistryAuth::Basic(user, password) = &self.auth {
            request = request.basic_auth(user, Some(password));
        }
        let mut response = request.send().await.map_err(transport)?;
        if !response.status().is_success() {
            return Err(registry_error(format!(
                "cannot get a token: {}",
                http_error(&challenge.realm, response).await
            )));
        }
        let body = read_at_most(&mut response, crate::token::MAX_TOKEN_RESPONSE_BYTES)
            .await
            .map_err(transport)?
            .ok_or_else(|| {
                registry_error(format!(
                    "the token answer of {} is larger than {} bytes",
                    challenge.realm,
                    crate::token::MAX_TOKEN_RESPONSE_BYTES
                ))
            })?;
        let token = crate::token::parse_token(&body).ok_or_else(|| {
            registry_error(format!(
                "the token answer of {} has no token",
                challenge.realm
            ))
        })?;
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) = Some(token);
        Ok(())
    }

    /// GETs `url` with the current credentials; on a 401 (a token expired
    /// during a long pull) authenticates again and retries once.
    /// `transport` turns a connection failure into the caller's error.
    async fn send(
        &self,
        url: &str,
        accept: Option<&str>,
        transport: &dyn Fn(reqwest::Error) -> PullError,
    ) -> Result<reqwest::Response, PullError> {
        let mut retried = false;
        loop {
            let mut request = self.http.get(url);
            if let Some(accept) = accept {
                request = request.header(http::header::ACCEPT, accept);
            }
            let token = self.token.lock().unwrap_or_else(|e| e.into_inner()).clone();
            request = match (token, &self.auth) {
                (Some(token), _) => request.bearer_auth(token),
                (None, RegistryAuth::Basic(user, password)) => {
                    request.basic_auth(user, Some(password))
                }
                (None, _) => request,
            };
            let response = request.send().await.map_err(transport)?;
            if response.status() != http::StatusCode::UNAUTHORIZED || retried {
                return Ok(response);
            }
            retried = true;
            self.authenticate().await?;
        }
    }

    /// Fetches the image manifest (through the index when there is one),
    /// verifies its digest and checks it against locald's limits. Returns
    /// `(digest, bytes, manifest)`; the caller stores it once the blobs are in.
    async fn fetch_manifest(&self) -> Result<(String, bytes::Bytes, Manifest), Error> {
        self.authenticate().await?;
        let bytes = self.get_manifest(&self.oci_reference, "manifest").await?;
        let digest = sha256_digest(&bytes);
        if let Some(pinned) = self.reference.digest() {
            if pinned != digest {
                return Err(StoreError::DigestMismatch {
                    expected: pinned.to_string(),
                    actual: digest,
                }
                .into());
            }
        }
        let document =
            ManifestOrIndex::from_slice(&bytes).map_err(|e| self.bad_manifest(e.to_string()))?;
        let (digest, bytes, manifest) = match document {
            ManifestOrIndex::Manifest(manifest) => (digest, bytes, manifest),
            ManifestOrIndex::Index(index) => {
                self.check_count("index entries", index.manifests.len(), MAX_INDEX_MANIFESTS)?;
                let entry =
                    select_host_manifest(&index).ok_or_else(|| PullError::NoMatchingPlatform {
                        reference: self.reference.to_string(),
                        architecture: host_architecture().to_string(),
                        available: describe_platforms(&index),
                    })?;
                self.check_size("manifest bytes", entry.size, MAX_MANIFEST_BYTES)?;
                let child = self.oci_reference.clone_with_digest(entry.digest.clone());
                let bytes = self.get_manifest(&child, "manifest").await?;
                let digest = sha256_digest(&bytes);
                if digest != entry.digest {
                    return Err(StoreError::DigestMismatch {
                        expected: entry.digest.clone(),
                        actual: digest,
                    }
                    .into());
                }
                match ManifestOrIndex::from_slice(&bytes)
                    .map_err(|e| self.bad_manifest(e.to_string()))?
                {
                    ManifestOrIndex::Manifest(manifest) => (digest, bytes, manifest),
                    ManifestOrIndex::Index(_) => {
                        return Err(self
                            .bad_manifest("an index entry is itself an index".into())
                            .into())
                    }
                }
            }
        };
        for descriptor in std::iter::once(&manifest.config).chain(&manifest.layers) {
            if !crate::reference::is_sha256_digest(&descriptor.digest) {
                return Err(self
                    .bad_manifest(format!("unsupported blob digest `{}`", descriptor.digest))
                    .into());
            }
        }
        self.check_limits(&manifest)?;
        Ok((digest, bytes, manifest))
    }

    /// The bounds on what a manifest may ask locald to download.
    fn check_limits(&self, manifest: &Manifest) -> Result<(), PullError> {
        check_manifest_limits(manifest).map_err(|e| self.limit_error(e))
    }

    fn check_count(&self, what: &'static str, count: usize, limit: usize) -> Result<(), PullError> {
        self.check_size(what, count as u64, limit as u64)
    }

    fn check_size(&self, what: &'static str, actual: u64, limit: u64) -> Result<(), PullError> {
        check_limit(what, actual, limit).map_err(|e| self.limit_error(e))
    }

    fn limit_error(&self, exceeded: Exceeded) -> PullError {
        PullError::LimitExceeded {
            reference: self.reference.to_string(),
            what: exceeded.what,
            actual: exceeded.actual,
            limit: exceeded.limit,
        }
    }

    /// GETs a manifest or index, reading at most [`MAX_MANIFEST_BYTES`]: a
    /// larger `Content-Length`, or a body that goes on past the limit, fails
    /// at once without buffering the rest.
    async fn get_manifest(
        &self,
        reference: &oci_client::Reference,
        what: &'static str,
    ) -> Result<bytes::Bytes, Error> {
        let url = format!(
            "{}://{}/v2/{}/manifests/{}",
            self.scheme,
            reference.resolve_registry(),
            reference.repository(),
            reference
                .digest()
                .or(reference.tag())
                .unwrap_or(crate::reference::DEFAULT_TAG),
        );
        let transport = |e: reqwest::Error| PullError::Registry {
            reference: self.reference.to_string(),
            registry: self.reference.registry().to_string(),
            message: error_chain(&e),
        };
        let accept = ACCEPTED_MANIFEST_TYPES.join(", ");
        let mut response = self.send(&url, Some(&accept), &transport).await?;
        let status = response.status();
        if status == http::StatusCode::NOT_FOUND {
            return Err(PullError::NotFound {
                reference: self.reference.to_string(),
                registry: self.reference.registry().to_string(),
            }
            .into());
        }
        let too_large = || PullError::DocumentTooLarge {
            reference: self.reference.to_string(),
            registry: self.reference.registry().to_string(),
            what,
            limit: MAX_MANIFEST_BYTES,
        };
        if !status.is_success() {
            return Err(PullError::Registry {
                reference: self.reference.to_string(),
                registry: self.reference.registry().to_string(),
                message: http_error(&url, response).await,
            }
            .into());
        }
        // A larger `Content-Length` fails before any of the body is read.
        let body = read_at_most(&mut response, MAX_MANIFEST_BYTES)
            .await
            .map_err(transport)?
            .ok_or_else(too_large)?;
        Ok(bytes::Bytes::from(body))
    }

    /// Downloads the blobs the store lacks, `CONCURRENT_DOWNLOADS` at a time
    /// and started in manifest order (lower layers first, so the unpack can
    /// begin early), calling `committed` with each digest once it is stored.
    async fn fetch_blobs(
        &self,
        store: &ImageStore,
        blobs: Vec<Descriptor>,
        progress: bool,
        committed: &(dyn Fn(&str) + Sync),
    ) -> Result<PullReport, Error> {
        let mut report = PullReport::default();
        let mut missing = Vec::new();
        for blob in blobs {
            if store.paths.blob(&blob.digest)?.exists()
                || missing.iter().any(|m: &Descriptor| m.digest == blob.digest)
            {
                report.reused_blobs += 1;
            } else {
                missing.push(blob);
            }
        }
        if missing.is_empty() {
            return Ok(report);
        }
        let bars = ProgressBars::new(progress);
        let downloaded: Vec<u64> = futures_util::stream::iter(
            missing
                .iter()
                .map(|blob| self.fetch_blob(store, blob, &bars, committed)),
        )
        .buffer_unordered(CONCURRENT_DOWNLOADS)
        .try_collect()
        .await?;
        report.downloaded_blobs = downloaded.len();
        report.downloaded_bytes = downloaded.iter().sum();
        Ok(report)
    }

    async fn fetch_blob(
        &self,
        store: &ImageStore,
        blob: &Descriptor,
        bars: &ProgressBars,
        committed: &(dyn Fn(&str) + Sync),
    ) -> Result<u64, Error> {
        let blob_error = |message: String| PullError::Blob {
            reference: self.reference.to_string(),
            digest: blob.digest.clone(),
            message,
        };
        let url = format!(
            "{}://{}/v2/{}/blobs/{}",
            self.scheme,
            self.oci_reference.resolve_registry(),
            self.oci_reference.repository(),
            blob.digest,
        );
        let transport = |e: reqwest::Error| blob_error(error_chain(&e));
        // Redirects (to a CDN) are followed; reqwest drops the credentials
        // when one leaves the registry's host.
        let mut response = self.send(&url, None, &transport).await?;
        if !response.status().is_success() {
            return Err(blob_error(http_error(&url, response).await).into());
        }
        let too_long = || PullError::BlobTooLong {
            reference: self.reference.to_string(),
            registry: self.reference.registry().to_string(),
            digest: blob.digest.clone(),
            size: blob.size,
        };
        if response
            .content_length()
            .is_some_and(|length| length > blob.size)
        {
            return Err(too_long().into());
        }
        let bar = bars.add(&blob.digest, blob.size);
        let mut writer = BlobWriter::create(&store.paths)?;
        // Never more than the descriptor's size reaches the disk: a chunk
        // that would go past it ends the download (and `writer`'s drop
        // removes the partial file).
        let mut remaining = blob.size;
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            remaining = remaining
                .checked_sub(chunk.len() as u64)
                .ok_or_else(too_long)?;
            writer.write(&chunk)?;
            bar.inc(chunk.len() as u64);
        }
        writer.commit(&store.paths, Some(&blob.digest), Some(blob.size))?;
        committed(&blob.digest);
        bar.finish();
        Ok(blob.size)
    }

    fn bad_manifest(&self, reason: String) -> PullError {
        PullError::BadManifest {
            reference: self.reference.to_string(),
            reason,
        }
    }
}

/// A bound an image document broke: `actual` `what`, more than `limit`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Exceeded {
    pub what: &'static str,
    pub actual: u64,
    pub limit: u64,
}

pub(crate) fn check_limit(what: &'static str, actual: u64, limit: u64) -> Result<(), Exceeded> {
    if actual > limit {
        return Err(Exceeded {
            what,
            actual,
            limit,
        });
    }
    Ok(())
}

/// The bounds on what a manifest may name, shared by pull and import: the
/// number of layers, the config's size and the total declared size.
pub(crate) fn check_manifest_limits(manifest: &Manifest) -> Result<(), Exceeded> {
    check_limit("layers", manifest.layers.len() as u64, MAX_LAYERS as u64)?;
    check_limit("config bytes", manifest.config.size, MAX_CONFIG_BYTES)?;
    let total = manifest
        .layers
        .iter()
        .try_fold(manifest.config.size, |total, layer| {
            total.checked_add(layer.size)
        })
        .unwrap_or(u64::MAX);
    check_limit("bytes of config and layers", total, MAX_IMAGE_BYTES)
}

/// The body of `response` if it has at most `limit` bytes, `None` as soon
/// as it has more (the rest is not read).
async fn read_at_most(
    response: &mut reqwest::Response,
    limit: u64,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    if response
        .content_length()
        .is_some_and(|length| length > limit)
    {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// "GET URL: HTTP STATUS: BODY" with at most [`MAX_ERROR_BODY_BYTES`] of
/// the body (registries explain errors there; a hostile one could send an
/// endless body).
async fn http_error(url: &str, mut response: reqwest::Response) -> String {
    let status = response.status();
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() >= MAX_ERROR_BODY_BYTES {
            body.truncate(MAX_ERROR_BODY_BYTES);
            break;
        }
    }
    format!(
        "GET {url}: HTTP {status}: {}",
        String::from_utf8_lossy(&body).trim()
    )
}

fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// An error and its causes on one line: reqwest's top-level messages alone
/// ("error sending request") do not say what went wrong.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// One bar per downloading blob on stderr, or nothing when not wanted or
/// stderr is not a terminal.
struct ProgressBars {
    multi: Option<MultiProgress>,
}

impl ProgressBars {
    fn new(wanted: bool) -> Self {
        let multi = (wanted && std::io::stderr().is_terminal())
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Self { multi }
    }

    fn add(&self, digest: &str, size: u64) -> ProgressBar {
        let Some(multi) = &self.multi else {
            return ProgressBar::hidden();
        };
        let bar = multi.add(ProgressBar::new(size));
        let style = ProgressStyle::with_template(
            "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(digest.chars().take(19).collect::<String>());
        bar
    }
}
