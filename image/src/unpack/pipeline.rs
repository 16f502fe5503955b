//! Applying layers while the rest of the image is still downloading.
//!
//! A pull downloads several blobs at once; waiting for all of them before
//! unpacking leaves the disk idle during the network phase and the network
//! idle during the disk phase. Here one blocking task applies the layers
//! strictly in manifest order, each as soon as its blob is committed to the
//! store (which happens only after its digest was verified), while the
//! downloads go on. The downloader reports every committed blob with
//! [`PipelinedUnpack::layer_ready`] and ends with [`PipelinedUnpack::finish`];
//! dropping the handle or calling [`PipelinedUnpack::abort`] stops the task
//! after the layer it is applying. The task owns the destination (a guard
//! that removes the directory when dropped) and drops it itself on failure,
//! so the partial tree is removed only once nothing writes into it any more,
//! even when the pull was cancelled. Cancelling also raises a flag the task
//! checks before every entry, so it stops within one entry, not one layer
//! (a runtime being shut down waits for its blocking tasks).

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

use super::{apply_layer, open_layer, Budget, LayerSource, UnpackError, UnpackLimits};

enum Event {
    /// A blob is committed to the store, verified.
    Ready(String),
    /// Every download succeeded: each blob the image needs is in the store.
    AllDownloaded,
}

/// A running pipelined unpack of one image's layers into a `D`.
pub(crate) struct PipelinedUnpack<D> {
    events: Option<Sender<Event>>,
    task: tokio::task::JoinHandle<Result<D, UnpackError>>,
    /// Set when the handle goes away: the task stops at its next entry.
    cancel: Arc<AtomicBool>,
}

impl<D: AsRef<Path> + Send + 'static> PipelinedUnpack<D> {
    /// Starts applying `layers` into `dest` (created if missing), handed back
    /// by `finish` on success and dropped by the task on failure. Layers whose
    /// blob is already stored need no notification.
    pub fn start(layers: Vec<LayerSource>, dest: D, limits: UnpackLimits) -> Self {
        let (events, receiver) = channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let budget = Budget::new(limits).cancelled_by(Arc::clone(&cancel));
        let task = tokio::task::spawn_blocking(move || {
            run(&layers, dest.as_ref(), &receiver, budget)?;
            Ok(dest)
        });
        Self {
            events: Some(events),
            task,
            cancel,
        }
    }

    /// Tells the task that the blob `digest` is now in the store.
    pub fn layer_ready(&self, digest: &str) {
        if let Some(events) = &self.events {
            // A closed channel means the task already failed; `finish` reports why.
            let _ = events.send(Event::Ready(digest.to_string()));
        }
    }

    /// Waits for every layer to be applied, all downloads having succeeded.
    pub async fn finish(mut self) -> Result<D, UnpackError> {
        if let Some(events) = self.events.take() {
            let _ = events.send(Event::AllDownloaded);
        }
        self.join().await
    }

    /// Stops the task (the pull failed elsewhere) and waits for it, so that
    /// nothing writes into the destination once this returns.
    pub async fn abort(mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        self.events.take();
        let _ = self.join().await;
    }

    async fn join(&mut self) -> Result<D, UnpackError> {
        match (&mut self.task).await {
            Ok(result) => result,
            Err(join) => Err(UnpackError::Task(join.to_string())),
        }
    }
}

impl<D> Drop for PipelinedUnpack<D> {
    fn drop(&mut self) {
        // After `finish` the task is over and this changes nothing.
        self.cancel.store(true, Ordering::Relaxed);
    }
}

fn run(
    layers: &[LayerSource],
    dest: &Path,
    events: &Receiver<Event>,
    mut budget: Budget,
) -> Result<(), UnpackError> {
    std::fs::create_dir_all(dest).map_err(|source| UnpackError::Io {
        layer: layers.first().map(|l| l.digest.clone()).unwrap_or_default(),
        entry: "/".to_string(),
        action: "create the rootfs directory",
        source,
    })?;
    let mut ready: HashSet<String> = HashSet::new();
    let mut all_downloaded = false;
    for layer in layers {
        // Stored before the pull started, or by a concurrent pull: usable now.
        while !ready.contains(&layer.digest) && !all_downloaded && !layer.path.exists() {
            match events.recv() {
                Ok(Event::Ready(digest)) => {
                    ready.insert(digest);
                }
                Ok(Event::AllDownloaded) => all_downloaded = true,
                // The sender is gone without `AllDownloaded`: the pull failed
                // or was cancelled.
                Err(_) => return Err(UnpackError::Aborted),
            }
        }
        let reader = open_layer(layer)?;
        apply_layer(&layer.digest, reader, dest, &mut budget)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{LayerBuilder, LayerCompression};

    fn layer(dir: &std::path::Path, index: usize, name: &str) -> (LayerSource, Vec<u8>) {
        let mut builder = LayerBuilder::new();
        builder.file(name, 0o644, name.as_bytes());
        let blob = builder.build(LayerCompression::Gzip);
        let source = LayerSource {
            digest: blob.digest.clone(),
            media_type: blob.media_type.clone(),
            path: dir.join(format!("layer{index}")),
        };
        (source, blob.bytes)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn layers_are_applied_in_order_as_they_arrive() {
        let blobs = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("rootfs");
        let (first, first_bytes) = layer(blobs.path(), 0, "first");
        let (second, second_bytes) = layer(blobs.path(), 1, "second");
        // The second layer "downloads" first: it must wait for the first.
        let unpack = PipelinedUnpack::start(
            vec![first.clone(), second.clone()],
            dest.clone(),
            UnpackLimits::default(),
        );
        std::fs::write(&second.path, second_bytes).unwrap();
        unpack.layer_ready(&second.digest);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(
            !dest.join("second").exists(),
            "applied before the layer below"
        );
        std::fs::write(&first.path, first_bytes).unwrap();
        unpack.layer_ready(&first.digest);
        unpack.finish().await.unwrap();
        assert_eq!(std::fs::read(dest.join("first")).unwrap(), b"first");
        assert_eq!(std::fs::read(dest.join("second")).unwrap(), b"second");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn abort_stops_before_missing_layers() {
        let blobs = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("rootfs");
        let (first, first_bytes) = layer(blobs.path(), 0, "first");
        let (second, _) = layer(blobs.path(), 1, "second");
        std::fs::write(&first.path, first_bytes).unwrap();
        let unpack =
            PipelinedUnpack::start(vec![first, second], dest.clone(), UnpackLimits::default());
        unpack.abort().await;
        assert!(!dest.join("second").exists());

        // Dropping the handle (a cancelled pull) also ends the task.
        let (lone, _) = layer(blobs.path(), 2, "lone");
        drop(PipelinedUnpack::start(
            vec![lone],
            dest,
            UnpackLimits::default(),
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn finish_without_the_blob_is_an_error() {
        let blobs = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let (missing, _) = layer(blobs.path(), 0, "missing");
        let unpack = PipelinedUnpack::start(
            vec![missing],
            root.path().join("rootfs"),
            UnpackLimits::default(),
        );
        let error = unpack.finish().await.unwrap_err();
        assert!(matches!(error, UnpackError::Archive { .. }), "{error}");
    }
}
