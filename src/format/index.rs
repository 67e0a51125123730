//! Index files: which blobs live in which pack, at which offset, with which lengths.
//!
//! A writer adds one index file per batch of packs it wrote; the in-memory index is the union of
//! all index files. Index files only ever list packs that were durable before the index file
//! was written.

use serde::{Deserialize, Serialize};

use super::codec::{self, FileKind};
use super::id::{IndexId, PackId};
use super::pack::PackedBlob;
use super::{FormatError, pack};

/// Largest index file accepted: writers put at most [`MAX_BLOBS_PER_INDEX`] blobs (about
/// 25 MB) in one.
pub const MAX_INDEX_LEN: usize = 64 * 1024 * 1024;
/// Writers start a new index file once one names this many blobs.
pub const MAX_BLOBS_PER_INDEX: usize = 500_000;

/// The versioned payload of an index file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum IndexFile {
    /// Format version 1.
    V1(Index),
}

/// The contents of one index file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Index {
    /// Packs described by this file.
    pub packs: Vec<IndexedPack>,
    /// Index files this one replaces (written by prune; empty for backups). Readers ignore a
    /// superseded file's entries once this file is present.
    pub supersedes: Vec<IndexId>,
}

/// One pack and its blobs, copied from the pack's trailer.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct IndexedPack {
    /// The pack's id (blake3 of its bytes).
    pub id: PackId,
    /// The pack's length in bytes.
    pub len: u64,
    /// Its blobs, in file order.
    pub blobs: Vec<PackedBlob>,
}

impl Index {
    /// Encodes into an envelope.
    ///
    /// # Errors
    /// Only on an encoding bug.
    pub fn encode(&self) -> Result<Vec<u8>, FormatError> {
        codec::seal(FileKind::Index, &IndexFile::V1(self.clone()))
    }

    /// Decodes and validates an index file.
    ///
    /// # Errors
    /// [`FormatError`] describing the problem.
    pub fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        let IndexFile::V1(index) = codec::open(FileKind::Index, bytes, MAX_INDEX_LEN)?;
        for p in &index.packs {
            if p.len > pack::MAX_PACK_LEN {
                return Err(FormatError::Invalid(format!(
                    "pack {} is {} bytes",
                    p.id, p.len
                )));
            }
            for b in &p.blobs {
                b.validate()?;
                if b.end() > p.len {
                    return Err(FormatError::Invalid(format!(
                        "blob {} ends at {} beyond its pack's {} bytes",
                        b.id.short(),
                        b.end(),
                        p.len
                    )));
                }
            }
        }
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::id::{BlobId, Id};
    use crate::format::pack::{BlobKind, Compression};

    #[test]
    fn round_trip_and_bounds() {
        let blob = PackedBlob {
            id: BlobId(Id::hash(b"a")),
            kind: BlobKind::Tree,
            offset: 16,
            stored_len: 5,
            raw_len: 9,
            compression: Compression::Zstd,
        };
        let mut idx = Index {
            packs: vec![IndexedPack {
                id: PackId(Id::hash(b"p")),
                len: 100,
                blobs: vec![blob],
            }],
            supersedes: vec![],
        };
        assert_eq!(Index::decode(&idx.encode().unwrap()).unwrap(), idx);
        idx.packs[0].len = 20;
        assert!(Index::decode(&idx.encode().unwrap()).is_err());
    }
}
