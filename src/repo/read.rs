//! Reading blobs: finding them in the index, fetching their stored bytes from packs, opening
//! and verifying them, and reloading the index when it is older than the repository.

use std::io;

use crate::crypto::Scheme;
use crate::error::{Error, Result};
use crate::format::id::{BlobId, ChunkId, PackId, TreeId};
use crate::format::pack::BlobKind;
use crate::format::tree::Tree;

use super::blob::{self, PreparedBlob};
use super::index::BlobLocation;
use super::{Repository, layout};

impl Repository {
    /// Where a blob is stored.
    ///
    /// # Errors
    /// [`Error::MissingBlob`] if it is not indexed.
    pub fn locate(&self, id: &BlobId) -> Result<BlobLocation> {
        self.index()
            .lookup(id)
            .ok_or_else(|| Error::MissingBlob { id: id.to_hex() })
    }

    /// Reads, decompresses and verifies a blob (a tree, or any blob whose length the caller
    /// does not know). If the blob is not indexed or its pack is gone, another process (a
    /// backup, a prune) may have changed the repository since the index was loaded: the index
    /// is reloaded and the read tried once more.
    ///
    /// # Errors
    /// [`Error::MissingBlob`], I/O errors, or [`Error::Corrupt`] naming the pack (a pack the
    /// index names that is missing is damage too).
    pub fn read_blob(&self, id: &BlobId) -> Result<Vec<u8>> {
        self.with_fresh_index(|| {
            let loc = self.locate(id)?;
            self.read_blob_at(id, &loc)
        })
    }

    /// Reads the data chunk a file piece of `len` bytes names. The index entry must say the
    /// same length, or the read fails before anything is read: a tree cannot make a chunk
    /// serve more or fewer bytes than it holds.
    ///
    /// # Errors
    /// As [`Self::read_blob`]; [`Error::Corrupt`] if the lengths disagree.
    pub fn read_chunk(&self, id: &ChunkId, len: u32) -> Result<Vec<u8>> {
        let blob = BlobId::from(*id);
        self.with_fresh_index(|| {
            let loc = self.locate(&blob)?;
            if loc.raw_len != len {
                return Err(Error::corrupt(
                    layout::pack_path(&loc.pack),
                    format!(
                        "chunk {} holds {} bytes, but a file lists it as {len} bytes",
                        id.short(),
                        loc.raw_len
                    ),
                ));
            }
            self.read_blob_at(&blob, &loc)
        })
    }

    /// Runs `read`; if it fails as an outdated index would make it fail, reloads the index and
    /// runs it once more. A pack that is still missing then is damage.
    fn with_fresh_index<T>(&self, read: impl Fn() -> Result<T>) -> Result<T> {
        match read() {
            Err(e) if may_be_outdated(&e) => match self.refresh_index() {
                Ok(Some(_)) => read(),
                _ => Err(e),
            },
            r => r,
        }
    }

    /// Reads, decompresses and verifies blob `id` stored at `loc` (no index lookup).
    ///
    /// # Errors
    /// I/O errors, or [`Error::Corrupt`] naming the pack.
    pub fn read_blob_at(&self, id: &BlobId, loc: &BlobLocation) -> Result<Vec<u8>> {
        self.require_full_key("reading backed-up data")?;
        let tree_cache = self
            .tree_cache
            .as_ref()
            .filter(|_| loc.kind == BlobKind::Tree);
        let hex = id.to_hex();
        if let Some(c) = tree_cache
            && let Some(stored) = c.get(&hex, loc.stored_len as usize)
        {
            match self.unpack_blob(id, loc, stored) {
                Ok(raw) => return Ok(raw),
                Err(_) => c.forget(&hex),
            }
        }
        let (_, stored) = self.read_stored_bytes(loc)?;
        let keep = tree_cache.map(|_| stored.clone());
        let raw = self.unpack_blob(id, loc, stored)?;
        if let (Some(c), Some(stored)) = (tree_cache, keep) {
            c.put(&hex, &stored);
        }
        Ok(raw)
    }

    /// Reads `len` bytes of `pack` from `offset` in one request, past the block cache: a
    /// reader that plans its reads per pack (the restore) fetches each span once and needs
    /// no blocks kept around it.
    ///
    /// # Errors
    /// [`Error::MissingPack`], [`Error::Corrupt`] if the pack ends early, other I/O errors.
    pub fn read_pack_span(&self, pack: &PackId, offset: u64, len: usize) -> Result<Vec<u8>> {
        let path = layout::pack_path(pack);
        let mut buf = vec![0u8; len];
        let n = self
            .storage
            .read_up_to(&path, offset, &mut buf)
            .map_err(|e| pack_read_error(&path, e))?;
        if n < len {
            return Err(pack_read_error(
                &path,
                io::Error::from(io::ErrorKind::UnexpectedEof),
            ));
        }
        Ok(buf)
    }

    /// Opens, decodes and verifies blob `id` from `stored`, the bytes found at `loc`.
    ///
    /// # Errors
    /// A backup-only key, or [`Error::Corrupt`] naming the pack when the bytes are not the
    /// blob.
    pub fn unpack_blob(&self, id: &BlobId, loc: &BlobLocation, stored: Vec<u8>) -> Result<Vec<u8>> {
        self.require_full_key("reading backed-up data")?;
        let session = self.index().session_of(loc);
        let at = blob::At {
            kind: loc.kind,
            session: session.as_deref(),
            raw_len: loc.raw_len,
            compression: loc.compression,
        };
        blob::unpack(self.scheme()?, id, stored, &at)
            .map_err(|m| Error::corrupt(layout::pack_path(&loc.pack), m))
    }

    /// The stored bytes at `loc`, with the pack's path for messages.
    fn read_stored_bytes(&self, loc: &BlobLocation) -> Result<(String, Vec<u8>)> {
        let path = layout::pack_path(&loc.pack);
        let mut stored = vec![0u8; loc.stored_len as usize];
        self.storage
            .read_at(&path, u64::from(loc.offset), &mut stored)
            .map_err(|e| pack_read_error(&path, e))?;
        Ok((path, stored))
    }

    /// Reads blob `id` at `loc`, verifies it, and prepares it for a pack sealed by `to` (the
    /// scheme of this or another repository with the same ids): a plaintext blob is kept as
    /// stored, a sealed one is opened and sealed again in `to`'s session, its compression kept.
    ///
    /// # Errors
    /// As [`Self::read_blob_at`].
    pub fn read_stored(
        &self,
        id: &BlobId,
        loc: &BlobLocation,
        to: &Scheme,
    ) -> Result<PreparedBlob> {
        self.require_full_key("copying backed-up data")?;
        let (path, stored) = self.read_stored_bytes(loc)?;
        let session = self.index().session_of(loc);
        let scheme = self.scheme()?;
        let corrupt = |m: String| Error::corrupt(&path, m);
        let at = blob::At {
            kind: loc.kind,
            session: session.as_deref(),
            raw_len: loc.raw_len,
            compression: loc.compression,
        };
        let stored = match (scheme, to) {
            (Scheme::Plain, Scheme::Plain) => {
                blob::unpack(scheme, id, stored.clone(), &at).map_err(corrupt)?;
                stored
            }
            _ => {
                let inner = scheme
                    .open_blob(loc.kind, id, session.as_deref(), stored)
                    .map_err(|e| corrupt(e.to_string()))?;
                blob::decode(scheme, id, inner.clone(), &at).map_err(corrupt)?;
                to.seal_blob(loc.kind, id, inner)
                    .map_err(|e| corrupt(e.to_string()))?
            }
        };
        Ok(PreparedBlob {
            id: *id,
            stored,
            raw_len: loc.raw_len,
            compression: loc.compression,
        })
    }

    /// Reads and decodes a tree.
    ///
    /// # Errors
    /// As [`Repository::read_blob`], plus decoding errors.
    pub fn read_tree(&self, id: &TreeId) -> Result<Tree> {
        let bytes = if self.backup_only() {
            self.cached_tree(id)?
        } else {
            self.read_blob(&BlobId::from(*id))?
        };
        Tree::decode(&bytes)
            .map_err(|e| Error::corrupt(format!("tree {}", id.short()), e.to_string()))
    }

    /// A tree from the backup-only cache, checked against its id.
    fn cached_tree(&self, id: &TreeId) -> Result<Vec<u8>> {
        let bytes = self
            .cache
            .as_ref()
            .and_then(|c| c.tree(id).ok())
            .ok_or_else(|| Error::BackupOnly(format!("reading tree {}", id.short())))?;
        if self.scheme()?.blob_id(&bytes) != BlobId::from(*id) {
            return Err(Error::BackupOnly(format!(
                "reading tree {} (the cached copy is damaged)",
                id.short()
            )));
        }
        Ok(bytes)
    }
}

/// Whether a read error may come from an index that is older than the repository.
fn may_be_outdated(e: &Error) -> bool {
    matches!(e, Error::MissingBlob { .. } | Error::MissingPack { .. })
}

/// What a failed read of pack `path` means: a pack shorter than the index says is damaged, a
/// missing one is a missing pack, anything else an I/O error.
fn pack_read_error(path: &str, e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => Error::corrupt(path, "pack is shorter than its index says"),
        io::ErrorKind::NotFound => Error::MissingPack {
            file: path.to_string(),
        },
        _ => Error::repo_io("reading", path, e),
    }
}
