//! A bound on the tar metadata read before each entry.
//!
//! The tar crate reads a GNU long name or long link (`L`, `K`), a PAX
//! extended header (`x`) and a GNU sparse map into memory, whole, before it
//! yields the entry they describe, with no limit: a 1 MB gzip layer holding
//! a "long name" of 8 GiB of zeros would make locald allocate 8 GiB. Real
//! metadata is small (a path is at most 4 KiB, an xattr value 64 KiB), so
//! [`MetadataGuard`] counts what the archive reads while it looks for the
//! next entry and fails the read past [`MAX_ENTRY_METADATA_BYTES`]. The
//! entry's own data is not counted: the applier reads (or drains) it with
//! the guard paused.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

/// Most bytes of headers and metadata read for one entry (16 MiB).
pub const MAX_ENTRY_METADATA_BYTES: u64 = 16 << 20;

/// The shared switch between the guard (inside the archive) and the loop
/// that applies entries.
#[derive(Debug, Clone)]
pub(super) struct MetadataCounter {
    state: Rc<Cell<(bool, u64)>>,
    limit: u64,
}

impl MetadataCounter {
    pub fn new(limit: u64) -> Self {
        Self {
            state: Rc::new(Cell::new((true, 0))),
            limit,
        }
    }

    /// An entry was yielded: what is read now is its data.
    pub fn pause(&self) {
        self.state.set((false, 0));
    }

    /// The entry is done: what is read next is headers and metadata.
    pub fn resume(&self) {
        self.state.set((true, 0));
    }
}

/// Wraps the layer's (decompressed) tar stream; see the module doc.
pub(super) struct MetadataGuard<R> {
    inner: R,
    counter: MetadataCounter,
}

impl<R> MetadataGuard<R> {
    pub fn new(inner: R, counter: MetadataCounter) -> Self {
        Self { inner, counter }
    }
}

impl<R: Read> Read for MetadataGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (counting, read_so_far) = self.counter.state.get();
        if !counting {
            return self.inner.read(buf);
        }
        // Never hand out more than the limit allows, so the tar crate's
        // buffer cannot grow past it.
        let room = self.counter.limit.saturating_sub(read_so_far);
        if room == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the headers and metadata (GNU long names, PAX records, sparse maps) \
                     of one entry exceed {} bytes",
                    self.counter.limit
                ),
            ));
        }
        let len = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..len])?;
        self.counter.state.set((true, read_so_far + n as u64));
        Ok(n)
    }
}
