//! Fence files: the writers a prune revoked because they went silent (their lock was not
//! refreshed in time), and which of their snapshots that prune saw and so protected.
//!
//! A prune writes a fence twice: first with `accepted: None` (the *begin*), before it lists
//! the snapshots it protects; then, after that listing, with `accepted` set (the *end*). A
//! snapshot committed by a revoked writer is **void** when an end names its writer and not the
//! snapshot: it was committed after the prune looked, and its data may be gone. Readers leave
//! void snapshots out; the writer that committed one finds out and reports failure. See
//! docs/FORMAT.md, "Prune beside writers".

use serde::{Deserialize, Serialize};

use super::FormatError;
use super::codec::{self, FileKind, PayloadCipher};
use super::id::{SnapshotId, WriterId};

/// Largest fence file accepted.
pub const MAX_FENCE_LEN: usize = 4 * 1024 * 1024;

/// The versioned payload of a fence file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum FenceFile {
    /// Format version 1.
    V1(Fence),
}

/// One fence.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Fence {
    /// When the prune wrote it, by its clock (for messages).
    pub time_ns: i64,
    /// The writers revoked, with a description of each (host, PID, command) for messages.
    pub revoked: Vec<(WriterId, String)>,
    /// `None` in the begin; in the end, the snapshots of revoked writers that the prune saw.
    pub accepted: Option<Vec<SnapshotId>>,
}

impl Fence {
    /// True if this fence revokes `writer`.
    #[must_use]
    pub fn revokes(&self, writer: &WriterId) -> bool {
        self.revoked.iter().any(|(w, _)| w == writer)
    }

    /// True if this fence makes snapshot `id`, committed by `writer`, void.
    #[must_use]
    pub fn voids(&self, id: &SnapshotId, writer: &WriterId) -> bool {
        self.revokes(writer) && self.accepted.as_ref().is_some_and(|a| !a.contains(id))
    }

    /// Encodes into an envelope sealed by `cipher`.
    ///
    /// # Errors
    /// Only on an encoding bug.
    pub fn encode(&self, cipher: &dyn PayloadCipher) -> Result<Vec<u8>, FormatError> {
        codec::seal_with(FileKind::Fence, &FenceFile::V1(self.clone()), cipher)
    }

    /// Decodes a fence file of a repository that uses `cipher`.
    ///
    /// # Errors
    /// [`FormatError`] describing the problem.
    pub fn decode(bytes: &[u8], cipher: &dyn PayloadCipher) -> Result<Self, FormatError> {
        let FenceFile::V1(f) = codec::open_with(FileKind::Fence, bytes, MAX_FENCE_LEN, cipher)?;
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::codec::Plain;
    use crate::format::id::Id;

    #[test]
    fn round_trip_and_the_void_rule() {
        let w = WriterId(Id::hash(b"w"));
        let other = WriterId(Id::hash(b"o"));
        let (seen, late) = (SnapshotId(Id::hash(b"s")), SnapshotId(Id::hash(b"l")));
        let begin = Fence {
            time_ns: 1,
            revoked: vec![(w, "backup on h".into())],
            accepted: None,
        };
        assert_eq!(
            Fence::decode(&begin.encode(&Plain).unwrap(), &Plain).unwrap(),
            begin
        );
        assert!(begin.revokes(&w) && !begin.revokes(&other));
        // A begin voids nothing: the prune has not looked yet.
        assert!(!begin.voids(&late, &w));
        let end = Fence {
            accepted: Some(vec![seen]),
            ..begin
        };
        assert!(!end.voids(&seen, &w));
        assert!(end.voids(&late, &w));
        assert!(!end.voids(&late, &other));
        assert!(Fence::decode(b"junk", &Plain).is_err());
    }
}
