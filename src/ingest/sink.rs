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

/// Hands new blobs to the compressors, once per id per run.
#[derive(Clone)]
pub(super) struct BlobSink<'a> {
    repo: &'a Repository,
    scheme: &'a Scheme,
    claimed: &'a Mutex<HashSet<BlobId>>,
    tx: SyncSender<(BlobKind, BlobId, Vec<u8>)>,
}

impl<'a> BlobSink<'a> {
    /// A sink into the compressors' queue `tx`; `claimed` holds the ids this run has already
    /// handed on.
    pub fn new(
        repo: &'a Repository,
        scheme: &'a Scheme,
        claimed: &'a Mutex<HashSet<BlobId>>,
        tx: SyncSender<(BlobKind, BlobId, Vec<u8>)>,
    ) -> Self {
        BlobSink {
            repo,
            scheme,
            claimed,
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
            .send((kind, id, raw.to_vec()))
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
