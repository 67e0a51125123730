//! Snapshot sets: many snapshot files gathered into one file of `snapshots/`, so that listing
//! a repository of a million snapshots reads a few hundred names instead of a million
//! (docs/FORMAT.md, "Snapshot sets"). A set holds each member's snapshot file byte for byte
//! (its id stays the blake3 of those bytes, and it opens as it did), and names the sets it
//! replaces. It is an envelope of its own kind, so that a chronofs that predates sets reports
//! it as an unreadable snapshot file (and its `prune` refuses to run) instead of overlooking
//! the snapshots it holds.

use serde::{Deserialize, Serialize};

use super::FormatError;
use super::codec::{self, FileKind, PayloadCipher};
use super::id::{Id, SnapshotId, WriterId};
use super::snapshot::MAX_SNAPSHOT_LEN;

/// Largest set file accepted.
pub const MAX_SET_LEN: usize = 64 * 1024 * 1024;
/// The most members a set may hold.
pub const MAX_MEMBERS: usize = 1 << 20;
/// The most sets one set may replace.
pub const MAX_SUPERSEDES: usize = 4096;

/// The versioned payload of a set file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum SnapshotSetFile {
    /// The first version.
    V1(SnapshotSet),
}

/// What a set file holds.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct SnapshotSet {
    /// The maintenance process that wrote it (its lock's writer id): a set written after a
    /// prune revoked that process, and not accepted by the revocation's end, is void.
    pub writer: WriterId,
    /// Sets this one replaces, ascending: a reader that lists both takes this one only.
    pub supersedes: Vec<SnapshotId>,
    /// The members' snapshot files, whole, ascending by their ids (the blake3 of each).
    pub members: Vec<Vec<u8>>,
}

/// A set read back: its members with their ids, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenedSet {
    /// The maintenance process that wrote it.
    pub writer: WriterId,
    /// Sets it replaces, ascending.
    pub supersedes: Vec<SnapshotId>,
    /// `(id, snapshot file)`, ascending by id.
    pub members: Vec<(SnapshotId, Vec<u8>)>,
}

impl OpenedSet {
    /// The members' ids, ascending.
    #[must_use]
    pub fn ids(&self) -> Vec<SnapshotId> {
        self.members.iter().map(|(id, _)| *id).collect()
    }

    /// Encodes a set of `members` (snapshot files, any order, each once) replacing
    /// `supersedes`, written by `writer`.
    ///
    /// # Errors
    /// Nothing to hold, too many members or replaced sets, a member too large, or a file over
    /// [`MAX_SET_LEN`].
    pub fn encode(
        mut members: Vec<(SnapshotId, Vec<u8>)>,
        mut supersedes: Vec<SnapshotId>,
        writer: WriterId,
        cipher: &dyn PayloadCipher,
    ) -> Result<Vec<u8>, FormatError> {
        members.sort_unstable_by_key(|a| a.0);
        members.dedup_by(|a, b| a.0 == b.0);
        supersedes.sort_unstable();
        supersedes.dedup();
        if members.is_empty()
            || members.len() > MAX_MEMBERS
            || supersedes.len() > MAX_SUPERSEDES
            || members.iter().any(|(_, b)| b.len() > MAX_SNAPSHOT_LEN)
        {
            return Err(FormatError::Encode(format!(
                "a snapshot set of {} members replacing {} sets is out of bounds",
                members.len(),
                supersedes.len()
            )));
        }
        let file = SnapshotSetFile::V1(SnapshotSet {
            writer,
            supersedes,
            members: members.into_iter().map(|(_, b)| b).collect(),
        });
        let bytes = codec::seal_with(FileKind::SnapshotSet, &file, cipher)?;
        if bytes.len() > MAX_SET_LEN {
            return Err(FormatError::Encode(format!(
                "a snapshot set of {} bytes is over the limit of {MAX_SET_LEN}",
                bytes.len()
            )));
        }
        Ok(bytes)
    }

    /// Decodes and checks a set file: the envelope, then that it holds at least one member and
    /// no more than [`MAX_MEMBERS`], each at most a snapshot file's limit, ascending by id
    /// without repeats, and replaces ascending, distinct sets other than itself.
    ///
    /// # Errors
    /// [`FormatError`] naming what is wrong.
    pub fn decode(
        own_id: &SnapshotId,
        bytes: &[u8],
        cipher: &dyn PayloadCipher,
    ) -> Result<OpenedSet, FormatError> {
        let SnapshotSetFile::V1(set) =
            codec::open_with(FileKind::SnapshotSet, bytes, MAX_SET_LEN, cipher)?;
        if set.members.is_empty() || set.members.len() > MAX_MEMBERS {
            return Err(FormatError::Invalid(format!(
                "a snapshot set of {} members",
                set.members.len()
            )));
        }
        if set.supersedes.len() > MAX_SUPERSEDES
            || set.supersedes.windows(2).any(|w| w[0] >= w[1])
            || set.supersedes.contains(own_id)
        {
            return Err(FormatError::Invalid(
                "a snapshot set's replaced sets are out of order, repeated or itself".into(),
            ));
        }
        let mut members: Vec<(SnapshotId, Vec<u8>)> = Vec::with_capacity(set.members.len());
        for body in set.members {
            if body.len() > MAX_SNAPSHOT_LEN {
                return Err(FormatError::Invalid(format!(
                    "a snapshot set's member of {} bytes",
                    body.len()
                )));
            }
            let id = SnapshotId(Id::hash(&body));
            if members.last().is_some_and(|(last, _)| *last >= id) || id == *own_id {
                return Err(FormatError::Invalid(
                    "a snapshot set's members are out of order, repeated or itself".into(),
                ));
            }
            members.push((id, body));
        }
        Ok(OpenedSet {
            writer: set.writer,
            supersedes: set.supersedes,
            members,
        })
    }
}

/// Whether `bytes` (a verified file of `snapshots/`) is a set rather than a snapshot file: the
/// envelope's kind byte.
#[must_use]
pub fn is_set(bytes: &[u8]) -> bool {
    bytes.get(8) == Some(&(FileKind::SnapshotSet as u8))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::codec::Plain;

    fn member(n: u8) -> (SnapshotId, Vec<u8>) {
        let body = codec::seal(FileKind::Snapshot, &vec![n; 3]).unwrap();
        (SnapshotId(Id::hash(&body)), body)
    }

    #[test]
    fn round_trips_sorted_and_refuses_damage_disorder_and_itself() {
        let members: Vec<_> = (0..5).map(member).collect();
        let replaced = vec![member(9).0, member(8).0];
        let writer = WriterId(Id([7; 32]));
        let bytes = OpenedSet::encode(members.clone(), replaced.clone(), writer, &Plain).unwrap();
        assert!(is_set(&bytes));
        assert!(!is_set(&members[0].1));
        let id = SnapshotId(Id::hash(&bytes));
        let set = OpenedSet::decode(&id, &bytes, &Plain).unwrap();
        let mut want = members.clone();
        want.sort_by_key(|a| a.0);
        assert_eq!(set.members, want);
        assert_eq!(set.writer, writer);
        let mut sorted = replaced.clone();
        sorted.sort();
        assert_eq!(set.supersedes, sorted);
        // Every flipped byte and every cut is refused (the envelope's header, its checksum,
        // then postcard).
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            assert!(OpenedSet::decode(&id, &b, &Plain).is_err(), "flip at {i}");
        }
        for n in 0..bytes.len() {
            assert!(
                OpenedSet::decode(&id, &bytes[..n], &Plain).is_err(),
                "cut at {n}"
            );
        }
        // Members out of order under a good envelope.
        let raw = |members: Vec<Vec<u8>>, supersedes: Vec<SnapshotId>| {
            codec::seal(
                FileKind::SnapshotSet,
                &SnapshotSetFile::V1(SnapshotSet {
                    writer,
                    supersedes,
                    members,
                }),
            )
            .unwrap()
        };
        let backwards: Vec<Vec<u8>> = want.iter().rev().map(|(_, b)| b.clone()).collect();
        assert!(OpenedSet::decode(&id, &raw(backwards, Vec::new()), &Plain).is_err());
        let twice = vec![want[0].1.clone(), want[0].1.clone()];
        assert!(OpenedSet::decode(&id, &raw(twice, Vec::new()), &Plain).is_err());
        assert!(OpenedSet::decode(&id, &raw(Vec::new(), Vec::new()), &Plain).is_err());
        // A set that replaces itself, or lists a replaced set twice.
        let one = vec![want[0].1.clone()];
        assert!(OpenedSet::decode(&id, &raw(one.clone(), vec![id]), &Plain).is_err());
        assert!(OpenedSet::decode(&id, &raw(one.clone(), vec![sorted[0]; 2]), &Plain).is_err());
        assert!(OpenedSet::decode(&id, &raw(one, sorted), &Plain).is_ok());
        // A snapshot file is not a set, nor a set a snapshot file: a chronofs that predates
        // sets reads one as a damaged snapshot file (and its prune refuses to run).
        assert!(OpenedSet::decode(&want[0].0, &want[0].1, &Plain).is_err());
        assert!(matches!(
            codec::open::<crate::format::snapshot::SnapshotFile>(
                FileKind::Snapshot,
                &bytes,
                MAX_SNAPSHOT_LEN
            ),
            Err(FormatError::WrongKind { .. })
        ));
        assert!(OpenedSet::encode(Vec::new(), Vec::new(), writer, &Plain).is_err());
    }
}
