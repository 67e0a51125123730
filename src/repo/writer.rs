//! `BlobWriter`: the only way new blobs enter a repository.
//!
//! Blobs are deduplicated against the index and against this session, packed by kind (data and
//! trees go to separate packs so metadata reads stay small) and streamed to storage as they
//! come; each full pack is made durable before any index file names it. Every
//! [`INDEX_EVERY_PACKS`] packs (or [`MAX_BLOBS_PER_INDEX`] blobs) an index file is written, so
//! an interrupted backup's data is reused by the next one. After any failed write
//! the writer refuses further work (like redb's `PreviousIo`): its state on disk is unknown.

use std::collections::HashSet;

use crate::error::{Error, Result};
use crate::format::crypto::SessionKey;
use crate::format::id::BlobId;
use crate::format::index::{IndexedPack, MAX_BLOBS_PER_INDEX};
use crate::format::pack::BlobKind;

use super::Repository;
use super::blob::PreparedBlob;
use super::index::RecordBuilder;
use super::pack::PackWriter;

/// How many packs go into one index file.
pub const INDEX_EVERY_PACKS: usize = 64;

/// What a writer stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Data blobs newly stored.
    pub data_blobs: u64,
    /// Tree blobs newly stored.
    pub tree_blobs: u64,
    /// Raw bytes of newly stored blobs.
    pub raw_bytes: u64,
    /// Stored (compressed) bytes of newly stored blobs.
    pub stored_bytes: u64,
    /// Pack files written.
    pub packs: u64,
}

/// Adds blobs to a repository; call [`BlobWriter::finish`] to make them durable and indexed.
pub struct BlobWriter<'r> {
    repo: &'r Repository,
    data: PackWriter<'r>,
    tree: PackWriter<'r>,
    pending: HashSet<BlobId>,
    /// The session key the packs are sealed with (`None`: plaintext).
    session: Option<SessionKey>,
    unindexed: RecordBuilder,
    written: Vec<IndexedPack>,
    stats: WriteStats,
    poisoned: bool,
    /// Repacking: blobs already indexed are written again, and the caller writes the index.
    repack: bool,
}

impl<'r> BlobWriter<'r> {
    pub(super) fn new(repo: &'r Repository) -> Result<Self> {
        let session = repo
            .scheme()?
            .writer_session()
            .map_err(|e| Error::corrupt("<new pack>", e.to_string()))?;
        Ok(BlobWriter {
            repo,
            data: PackWriter::new(
                BlobKind::Data,
                repo.storage(),
                repo.scheme()?,
                session.clone(),
            ),
            tree: PackWriter::new(
                BlobKind::Tree,
                repo.storage(),
                repo.scheme()?,
                session.clone(),
            ),
            pending: HashSet::new(),
            session,
            unindexed: RecordBuilder::default(),
            written: Vec::new(),
            stats: WriteStats::default(),
            poisoned: false,
            repack: false,
        })
    }

    pub(super) fn for_repack(repo: &'r Repository) -> Result<Self> {
        Ok(BlobWriter {
            repack: true,
            ..Self::new(repo)?
        })
    }

    /// What this writer's blobs must be sealed with.
    #[must_use]
    pub fn scheme(&self) -> &'r crate::crypto::Scheme {
        self.repo
            .scheme
            .as_ref()
            .unwrap_or(&crate::crypto::Scheme::Plain)
    }

    /// The session key this writer's packs are sealed with (`None`: plaintext).
    #[must_use]
    pub fn session(&self) -> Option<&SessionKey> {
        self.session.as_ref()
    }

    /// Whether the repository or this session already has `id`.
    #[must_use]
    pub fn contains(&self, id: &BlobId) -> bool {
        self.pending.contains(id) || !self.repack && self.repo.has_blob(id)
    }

    /// Stores an already prepared blob unless present; returns whether it was new.
    ///
    /// # Errors
    /// Repository write failures.
    pub fn add_prepared(&mut self, kind: BlobKind, blob: PreparedBlob) -> Result<bool> {
        self.check_poisoned()?;
        if self.contains(&blob.id) {
            return Ok(false);
        }
        let target = u64::from(self.repo.config().pack_target_size);
        let pack = match kind {
            BlobKind::Data => &mut self.data,
            BlobKind::Tree => &mut self.tree,
        };
        if !pack.is_empty() && pack.would_overflow(blob.stored.len()) {
            self.flush(kind)?;
        }
        let pack = match kind {
            BlobKind::Data => &mut self.data,
            BlobKind::Tree => &mut self.tree,
        };
        if let Err(e) = pack.add(&blob) {
            self.poisoned = true;
            return Err(e);
        }
        let full = pack.is_full(target);
        if kind == BlobKind::Tree {
            self.repo.remember_tree_blob(&blob.id, &blob.stored);
        }
        match kind {
            BlobKind::Data => self.stats.data_blobs += 1,
            BlobKind::Tree => self.stats.tree_blobs += 1,
        }
        self.stats.raw_bytes += u64::from(blob.raw_len);
        self.stats.stored_bytes += blob.stored.len() as u64;
        self.pending.insert(blob.id);
        if full {
            self.flush(kind)?;
        }
        Ok(true)
    }

    fn check_poisoned(&self) -> Result<()> {
        if self.poisoned {
            return Err(Error::InvalidInput(
                "an earlier repository write failed; this backup cannot continue".into(),
            ));
        }
        Ok(())
    }

    fn flush(&mut self, kind: BlobKind) -> Result<()> {
        let pack = match kind {
            BlobKind::Data => &mut self.data,
            BlobKind::Tree => &mut self.tree,
        };
        if pack.is_empty() {
            return Ok(());
        }
        let finished = match pack.finish() {
            Ok(f) => f,
            Err(e) => {
                self.poisoned = true;
                return Err(e);
            }
        };
        self.stats.packs += 1;
        self.unindexed.push(
            IndexedPack {
                id: finished.id,
                len: finished.len,
                blobs: finished.blobs,
                session: 0,
            },
            self.session.as_ref(),
        );
        if (self.unindexed.packs().len() >= INDEX_EVERY_PACKS
            || self.unindexed.blob_count() >= MAX_BLOBS_PER_INDEX)
            && !self.repack
        {
            self.write_index()?;
        }
        Ok(())
    }

    fn write_index(&mut self) -> Result<()> {
        if self.unindexed.packs().is_empty() {
            return Ok(());
        }
        let record = self.unindexed.take(vec![]);
        if let Err(e) = self.repo.write_index_record(&record) {
            self.poisoned = true;
            return Err(e);
        }
        self.written.extend(record.packs);
        Ok(())
    }

    /// Writes the open packs and the index file naming them; when this returns, every blob
    /// added is durable and indexed (also in the repository's in-memory index).
    ///
    /// # Errors
    /// Repository write failures; nothing is indexed then.
    pub fn finish(self) -> Result<WriteStats> {
        self.finish_listing().map(|(stats, _)| stats)
    }

    /// As [`Self::finish`], also returning the packs written (for read-back verification).
    ///
    /// # Errors
    /// As [`Self::finish`].
    pub fn finish_listing(mut self) -> Result<(WriteStats, Vec<IndexedPack>)> {
        self.flush_all()?;
        self.write_index()?;
        self.repo.add_to_index(&self.written, self.session.as_ref());
        Ok((self.stats, self.written))
    }

    /// Makes the open packs durable and returns every pack written, without writing an index
    /// file (a repacking caller writes its own).
    ///
    /// # Errors
    /// Repository write failures.
    pub fn finish_packs(mut self) -> Result<(Vec<IndexedPack>, WriteStats)> {
        self.flush_all()?;
        Ok((self.unindexed.take(vec![]).packs, self.stats))
    }

    /// Makes both open packs durable.
    fn flush_all(&mut self) -> Result<()> {
        self.check_poisoned()?;
        self.flush(BlobKind::Data)?;
        self.flush(BlobKind::Tree)
    }

    /// Counters so far.
    #[must_use]
    pub fn stats(&self) -> WriteStats {
        self.stats
    }
}
