//! Pushing fixture images and indexes to a registry with `oci-client` (plain
//! HTTP: fixtures only ever push to a local test registry).

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::RegistryOperation;

use super::builder::{BuiltBlob, BuiltImage, BuiltIndex};
use super::FixtureError;
use crate::reference::Reference;

struct Pusher {
    client: oci_client::Client,
    target: String,
    reference: oci_client::Reference,
}

impl Pusher {
    async fn connect(addr: &str, name_tag: &str) -> Result<Self, FixtureError> {
        let target = format!("{addr}/{name_tag}");
        let parsed = Reference::parse(&target).map_err(|e| FixtureError::Invalid(e.to_string()))?;
        let tag = parsed
            .tag()
            .unwrap_or(crate::reference::DEFAULT_TAG)
            .to_string();
        let reference = oci_client::Reference::with_tag(
            parsed.registry().to_string(),
            parsed.repository().to_string(),
            tag,
        );
        crate::tls::install_crypto_provider();
        let client = oci_client::Client::new(ClientConfig {
            protocol: ClientProtocol::Http,
            use_monolithic_push: true,
            ..Default::default()
        });
        let pusher = Self {
            client,
            target,
            reference,
        };
        pusher
            .client
            .auth(
                &pusher.reference,
                &RegistryAuth::Anonymous,
                RegistryOperation::Push,
            )
            .await
            .map_err(|e| pusher.error(e))?;
        Ok(pusher)
    }

    fn error(&self, error: impl std::fmt::Display) -> FixtureError {
        FixtureError::Push {
            target: self.target.clone(),
            message: error.to_string(),
        }
    }

    async fn blob(&self, blob: &BuiltBlob) -> Result<(), FixtureError> {
        self.client
            .push_blob(&self.reference, blob.bytes.clone(), &blob.digest)
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    async fn manifest(
        &self,
        reference: &oci_client::Reference,
        manifest: &BuiltBlob,
    ) -> Result<(), FixtureError> {
        let content_type =
            http::HeaderValue::from_str(&manifest.media_type).map_err(|e| self.error(e))?;
        self.client
            .push_manifest_raw(reference, manifest.bytes.clone(), content_type)
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    async fn image_blobs(&self, image: &BuiltImage) -> Result<(), FixtureError> {
        self.blob(&image.config).await?;
        for layer in &image.layers {
            self.blob(layer).await?;
        }
        Ok(())
    }
}

/// Pushes `image` to `addr` (`127.0.0.1:PORT`) as `name_tag` (`busybox:latest`).
/// Returns the manifest digest.
pub async fn push_image(
    addr: &str,
    name_tag: &str,
    image: &BuiltImage,
) -> Result<String, FixtureError> {
    let pusher = Pusher::connect(addr, name_tag).await?;
    pusher.image_blobs(image).await?;
    pusher.manifest(&pusher.reference, &image.manifest).await?;
    Ok(image.manifest.digest.clone())
}

/// Pushes every image of `index` by digest, then the index as `name_tag`.
/// Returns the index digest.
pub async fn push_index(
    addr: &str,
    name_tag: &str,
    index: &BuiltIndex,
) -> Result<String, FixtureError> {
    let pusher = Pusher::connect(addr, name_tag).await?;
    for image in &index.images {
        pusher.image_blobs(image).await?;
        let by_digest = pusher
            .reference
            .clone_with_digest(image.manifest.digest.clone());
        pusher.manifest(&by_digest, &image.manifest).await?;
    }
    pusher.manifest(&pusher.reference, &index.index).await?;
    Ok(index.index.digest.clone())
}
