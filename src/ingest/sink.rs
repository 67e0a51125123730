//! The entrance of new blobs into a backup's pipeline: a blob the repository or this run
//! already has is dropped here, and each new one goes to the compressors exactly once,
//! whichever thread (a reader with file content, the walker with a tree) offers it first.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::mpsc::SyncSender;

use crate::crypto::Scheme;
use crate::error::{Error, Result};
use crate::format::id::BlobId;
use crate::format::pack::{BlobKind, MAX_BLOB_LEN};
use crate::repo::Repository;

/// Buffers of raw chunks on their way to the compressors, kept for reuse: a chunk copied into
/// a fresh allocation of a megabyte costs a page fault and a zeroed page every 4 KiB (the
/// allocator maps buffers that large and unmaps them when freed): about half a second of a
/// first backup's system time on the bench data (bench/RESULTS.md).
pub(super) struct RawBuffers {
    free: Mutex<Vec<Vec<u8>>>,
}

/// Buffers [`RawBuffers`] keeps at most (those in use are bounded by the queues).
const RAW_BUFFERS: usize = 8;
/// Buffers of more than this capacity are not kept (a file's last, largest chunks would
/// otherwise keep 4 MiB each).
const RAW_BUFFER_CAPACITY: usize = 2 << 20;

impl RawBuffers {
    pub fn new() -> Self {
        RawBuffers {
            free: Mutex::new(Vec::new()),
        }
    }

    /// A buffer holding a copy of `raw`.
    fn copy_of(&self, raw: &[u8]) -> Vec<u8> {
        let kept = self
            .free
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        match kept {
            Some(mut buf) => {
                buf.clear();
                buf.extend_from_slice(raw);
                buf
            }
            None => raw.to_vec(),
        }
    }

    /// Takes back a buffer whose chunk was compressed.
    pub fn give_back(&self, buf: Vec<u8>) {
        if buf.capacity() > RAW_BUFFER_CAPACITY {
            return;
        }
        let mut free = self
            .free
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if free.len() < RAW_BUFFERS {
            free.push(buf);
        }
    }
}

/// Hands new blobs to the compressors, once per id per run.
#[derive(Clone)]
pub(super) struct BlobSink<'a> {
    repo: &'a Repository,
    scheme: &'a Scheme,
    claimed: &'a Mutex<HashSet<BlobId>>,
    buffers: &'a RawBuffers,
    tx: SyncSender<(BlobKind, BlobId, Vec<u8>)>,
}

impl<'a> BlobSink<'a> {
    /// A sink into the compressors' queue `tx`; `claimed` holds the ids this run has already
    /// handed on, `buffers` the buffers the compressors gave back.
    pub fn new(
        repo: &'a Repository,
        scheme: &'a Scheme,
        claimed: &'a Mutex<HashSet<BlobId>>,
        buffers: &'a RawBuffers,
        tx: SyncSender<(BlobKind, BlobId, Vec<u8>)>,
    ) -> Self {
        BlobSink {
            repo,
            scheme,
            claimed,
            buffers,
            tx,
        }
    }

    /// The id of a blob of bytes `raw` (keyed in an encrypted repository).
    #[must_use]
    pub fn id(&self, raw: &[u8]) -> BlobId {
        self.scheme.blob_id(raw)
    }

    /// Stores `raw` (whose id is `id`) unless the repository or this run already has it;
    /// returns whether it was new.
    ///
    /// # Errors
    /// [`Error::PipelineStopped`] if the packer has stopped (it reports why).
    pub fn offer(&self, kind: BlobKind, id: BlobId, raw: &[u8]) -> Result<bool> {
        if self.repo.has_blob(&id) {
            return Ok(false);
        }
        let fresh = self
            .claimed
            .lock()
            .map_err(|_| Error::PipelineStopped)?
            .insert(id);
        if !fresh {
            return Ok(false);
        }
        self.tx
            .send((kind, id, self.buffers.copy_of(raw)))
            .map_err(|_| Error::PipelineStopped)?;
        Ok(true)
    }

    /// Hashes and stores a whole blob (a tree: a directory's listing with its files' chunk
    /// lists); returns its id.
    ///
    /// # Errors
    /// As [`Self::offer`], and [`Error::InvalidInput`] for a blob over [`MAX_BLOB_LEN`].
    pub fn store(&self, kind: BlobKind, raw: &[u8]) -> Result<BlobId> {
        if raw.len() > MAX_BLOB_LEN as usize {
            return Err(Error::InvalidInput(format!(
                "a {kind:?} blob of {} bytes exceeds the {MAX_BLOB_LEN}-byte limit of one blob",
                raw.len()
            )));
        }
        let id = self.id(raw);
        self.offer(kind, id, raw)?;
        if kind == BlobKind::Tree {
            self.repo.cache_tree(&crate::format::id::TreeId(id.0), raw);
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_buffer_holds_exactly_the_next_chunk() {
        let b = RawBuffers::new();
        b.give_back(vec![7u8; 1000]);
        let copy = b.copy_of(b"short");
        assert_eq!(copy, b"short");
        b.give_back(copy);
        assert_eq!(b.copy_of(&[1u8; 3000]), vec![1u8; 3000]);
    }

    #[test]
    fn only_a_few_buffers_of_moderate_size_are_kept() {
        let b = RawBuffers::new();
        b.give_back(Vec::with_capacity(RAW_BUFFER_CAPACITY + 1));
        assert!(b.free.lock().unwrap().is_empty(), "a 4 MiB buffer was kept");
        for _ in 0..RAW_BUFFERS + 3 {
            b.give_back(Vec::with_capacity(16));
        }
        assert_eq!(b.free.lock().unwrap().len(), RAW_BUFFERS);
    }
}
