//! Index files: which blobs live in which pack, at which offset, with which lengths.
//!
//! A writer adds one index file per batch of packs it wrote; the in-memory index is the union of
//! all index files. Index files only ever list packs that were durable before the index file
//! was written.

use serde::{Deserialize, Serialize};

use super::codec::{self, Cipher, FileKind, PayloadCipher};
use super::crypto::SessionKey;
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
    /// Format version 1 (plaintext repositories).
    V1(IndexV1),
    /// Format version 2 (encrypted repositories): with the session keys of the packs.
    V2(Index),
}

/// The contents of one version-1 index file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct IndexV1 {
    /// Packs described by this file.
    pub packs: Vec<IndexedPackV1>,
    /// Index files this one replaces.
    pub supersedes: Vec<IndexId>,
}

/// One pack of a version-1 index file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct IndexedPackV1 {
    /// The pack's id.
    pub id: PackId,
    /// The pack's length in bytes.
    pub len: u64,
    /// Its blobs, in file order.
    pub blobs: Vec<PackedBlob>,
}

/// The contents of one index file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Index {
    /// Packs described by this file.
    pub packs: Vec<IndexedPack>,
    /// Index files this one replaces (written by prune; empty for backups). Readers ignore a
    /// superseded file's entries once this file is present.
    pub supersedes: Vec<IndexId>,
    /// The session keys the packs' blobs are sealed with (empty in a plaintext repository).
    pub sessions: Vec<SessionKey>,
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
    /// In an encrypted repository, which of the file's `sessions` seals its blobs.
    pub session: u32,
}

impl Index {
    /// Encodes into an envelope sealed by `cipher`: version 1 for a plaintext repository,
    /// version 2 (with session keys) for an encrypted one.
    ///
    /// # Errors
    /// Only on an encoding bug.
    pub fn encode(&self, cipher: &dyn PayloadCipher) -> Result<Vec<u8>, FormatError> {
        let record = match cipher.cipher() {
            Cipher::None => IndexFile::V1(IndexV1 {
                packs: self
                    .packs
                    .iter()
                    .map(|p| IndexedPackV1 {
                        id: p.id,
                        len: p.len,
                        blobs: p.blobs.clone(),
                    })
                    .collect(),
                supersedes: self.supersedes.clone(),
            }),
            Cipher::Aes256GcmSiv => IndexFile::V2(self.clone()),
        };
        codec::seal_with(FileKind::Index, &record, cipher)
    }

    /// Decodes and validates an index file of a repository that uses `cipher`.
    ///
    /// # Errors
    /// [`FormatError`] describing the problem.
    pub fn decode(bytes: &[u8], cipher: &dyn PayloadCipher) -> Result<Self, FormatError> {
        let index = match codec::open_with(FileKind::Index, bytes, MAX_INDEX_LEN, cipher)? {
            IndexFile::V1(v1) if cipher.cipher() == Cipher::None => Index {
                packs: v1
                    .packs
                    .into_iter()
                    .map(|p| IndexedPack {
                        id: p.id,
                        len: p.len,
                        blobs: p.blobs,
                        session: 0,
                    })
                    .collect(),
                supersedes: v1.supersedes,
                sessions: Vec::new(),
            },
            IndexFile::V2(index) if cipher.cipher() != Cipher::None => {
                for s in &index.sessions {
                    s.validate()?;
                }
                if let Some(p) = index
                    .packs
                    .iter()
                    .find(|p| p.session as usize >= index.sessions.len())
                {
                    return Err(FormatError::Invalid(format!(
                        "pack {} names session {} of {}",
                        p.id,
                        p.session,
                        index.sessions.len()
                    )));
                }
                index
            }
            _ => {
                return Err(FormatError::Invalid(
                    "index version does not match the repository's cipher".into(),
                ));
            }
        };
        for p in &index.packs {
            if p.len > pack::MAX_PACK_LEN {
                return Err(FormatError::Invalid(format!(
                    "pack {} is {} bytes",
                    p.id, p.len
                )));
            }
            for b in &p.blobs {
                b.validate(cipher.blob_overhead())?;
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
    use crate::format::codec::Plain;
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
                session: 0,
            }],
            supersedes: vec![],
            sessions: vec![],
        };
        assert_eq!(
            Index::decode(&idx.encode(&Plain).unwrap(), &Plain).unwrap(),
            idx
        );
        idx.packs[0].len = 20;
        assert!(Index::decode(&idx.encode(&Plain).unwrap(), &Plain).is_err());
    }
}
