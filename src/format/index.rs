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
    /// A plaintext index file written by prune, with the prune state.
    V3(IndexV1, PruneState),
    /// An encrypted index file written by prune, with the prune state.
    V4(Index, PruneState),
}

/// What a prune leaves for the next one and for writers (docs/FORMAT.md, "Prune beside
/// writers"): the repository's prune epoch and the packs condemned so far. Readers still read
/// condemned packs; writers do not deduplicate against them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct PruneState {
    /// The prune epoch: raised by every prune that condemns a pack.
    pub epoch: u64,
    /// Packs (indexed or not) no snapshot used when they were condemned, with the epoch of
    /// their condemnation.
    pub condemned: Vec<Condemned>,
}

/// One condemned pack.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Condemned {
    /// The pack.
    pub pack: PackId,
    /// The epoch at which it was condemned.
    pub epoch: u64,
}

/// Most condemned packs one index file may name.
pub const MAX_CONDEMNED: usize = 1 << 20;

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
    /// The prune state, in the last index file a prune writes (version 3 or 4).
    #[serde(skip)]
    pub prune: Option<PruneState>,
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
    /// version 2 (with session keys) for an encrypted one; versions 3 and 4 with a prune
    /// state.
    ///
    /// # Errors
    /// Only on an encoding bug.
    pub fn encode(&self, cipher: &dyn PayloadCipher) -> Result<Vec<u8>, FormatError> {
        let plain = || IndexV1 {
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
        };
        let record = match (cipher.cipher(), &self.prune) {
            (Cipher::None, Some(state)) => IndexFile::V3(plain(), state.clone()),
            (_, Some(state)) => IndexFile::V4(self.clone(), state.clone()),
            (Cipher::None, None) => IndexFile::V1(plain()),
            (_, None) => IndexFile::V2(self.clone()),
        };
        codec::seal_with(FileKind::Index, &record, cipher)
    }

    /// Decodes and validates an index file of a repository that uses `cipher`.
    ///
    /// # Errors
    /// [`FormatError`] describing the problem.
    pub fn decode(bytes: &[u8], cipher: &dyn PayloadCipher) -> Result<Self, FormatError> {
        let (file, prune) = match codec::open_with(FileKind::Index, bytes, MAX_INDEX_LEN, cipher)? {
            IndexFile::V3(v1, state) => (IndexFile::V1(v1), Some(state)),
            IndexFile::V4(index, state) => (IndexFile::V2(index), Some(state)),
            other => (other, None),
        };
        if let Some(state) = &prune {
            if state.condemned.len() > MAX_CONDEMNED {
                return Err(FormatError::Invalid(format!(
                    "{} condemned packs (at most {MAX_CONDEMNED})",
                    state.condemned.len()
                )));
            }
            if let Some(c) = state.condemned.iter().find(|c| c.epoch > state.epoch) {
                return Err(FormatError::Invalid(format!(
                    "pack {} condemned at epoch {}, after the file's epoch {}",
                    c.pack, c.epoch, state.epoch
                )));
            }
        }
        let mut index = match file {
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
                prune: None,
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
        index.prune = prune;
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
            prune: None,
        };
        assert_eq!(
            Index::decode(&idx.encode(&Plain).unwrap(), &Plain).unwrap(),
            idx
        );
        let mut pruned = idx.clone();
        pruned.prune = Some(PruneState {
            epoch: 4,
            condemned: vec![Condemned {
                pack: PackId(Id::hash(b"q")),
                epoch: 4,
            }],
        });
        assert_eq!(
            Index::decode(&pruned.encode(&Plain).unwrap(), &Plain).unwrap(),
            pruned
        );
        if let Some(state) = pruned.prune.as_mut() {
            state.condemned[0].epoch = 5;
        }
        let err = Index::decode(&pruned.encode(&Plain).unwrap(), &Plain).unwrap_err();
        assert!(err.to_string().contains("after the file's epoch"), "{err}");
        idx.packs[0].len = 20;
        assert!(Index::decode(&idx.encode(&Plain).unwrap(), &Plain).is_err());
    }
}
