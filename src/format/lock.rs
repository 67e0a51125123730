//! Lock files: who holds a lock on the repository, since when, and of which mode.
//! A lock file is an envelope (kind 5) named, like every other file, by the blake3 of its
//! bytes; a holder refreshes its lock by writing a new file and deleting the old one.
//!
//! Version 2 adds the mode *maintenance* (forget, prune: excludes other maintenance but runs
//! beside writers), the holder's [`WriterId`] and its *basis* (the prune epoch of the index it
//! deduplicates against; see docs/FORMAT.md, "Prune beside writers"). A version-1 lock comes
//! from a chronofs that does not know that protocol: it has no writer id.

use serde::{Deserialize, Serialize};

use super::FormatError;
use super::codec::{self, FileKind, PayloadCipher};
use super::id::WriterId;

/// Largest lock file accepted.
pub const MAX_LOCK_LEN: usize = 64 * 1024;

/// The versioned payload of a lock file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum LockFile {
    /// Format version 1: shared or exclusive.
    V1(LockV1),
    /// With the mode, the writer id and the basis.
    V2(LockV2),
}

/// A version-1 lock.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LockV1 {
    /// Exclusive (forget, prune) or shared (backup, copy, check).
    pub exclusive: bool,
    /// Host name of the holder.
    pub hostname: String,
    /// User name of the holder.
    pub username: String,
    /// Process id of the holder.
    pub pid: u32,
    /// The holder's start time in clock ticks since boot.
    pub process_start: u64,
    /// When the lock was taken or last refreshed, ns since the Unix epoch.
    pub time_ns: i64,
    /// What the holder is doing.
    pub purpose: String,
}

/// What a lock allows others to do at the same time.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum LockMode {
    /// Writers (backup, copy, check): any number at once, and beside maintenance.
    Shared,
    /// forget and prune: beside writers, but one at a time.
    Maintenance,
    /// Format changes (append-only, `unlock --remove-all`): alone.
    Exclusive,
}

/// A version-2 lock.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LockV2 {
    /// The mode.
    pub mode: LockMode,
    /// The holder, stable across refreshes.
    pub writer: WriterId,
    /// The prune epoch of the index the holder loaded (`None` until it has loaded one).
    pub basis: Option<u64>,
    /// Host name of the holder.
    pub hostname: String,
    /// User name of the holder.
    pub username: String,
    /// Process id of the holder.
    pub pid: u32,
    /// The holder's start time in clock ticks since boot (`/proc/PID/stat` field 22; 0 if
    /// unknown), so that a reused PID is not mistaken for the holder.
    pub process_start: u64,
    /// When the lock was taken or last refreshed by the holder's clock, ns since the Unix
    /// epoch (for messages; staleness is judged by the storage's clock).
    pub time_ns: i64,
    /// What the holder is doing (`backup`, `prune`, …).
    pub purpose: String,
}

/// One lock, of either version.
pub type Lock = LockV2;

impl LockV2 {
    /// True for a lock written by a chronofs that predates writer ids (version 1).
    #[must_use]
    pub fn is_legacy(&self) -> bool {
        self.writer == WriterId::default()
    }

    /// Encodes into an envelope sealed by `cipher` (always version 2).
    ///
    /// # Errors
    /// Only on an encoding bug.
    pub fn encode(&self, cipher: &dyn PayloadCipher) -> Result<Vec<u8>, FormatError> {
        codec::seal_with(FileKind::Lock, &LockFile::V2(self.clone()), cipher)
    }

    /// Decodes a lock file of a repository that uses `cipher`; a version-1 lock becomes a
    /// version-2 one with the zero writer id and no basis.
    ///
    /// # Errors
    /// [`FormatError`] describing the problem.
    pub fn decode(bytes: &[u8], cipher: &dyn PayloadCipher) -> Result<Self, FormatError> {
        Ok(
            match codec::open_with(FileKind::Lock, bytes, MAX_LOCK_LEN, cipher)? {
                LockFile::V1(l) => LockV2 {
                    mode: if l.exclusive {
                        LockMode::Exclusive
                    } else {
                        LockMode::Shared
                    },
                    writer: WriterId::default(),
                    basis: None,
                    hostname: l.hostname,
                    username: l.username,
                    pid: l.pid,
                    process_start: l.process_start,
                    time_ns: l.time_ns,
                    purpose: l.purpose,
                },
                LockFile::V2(l) => l,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::codec::Plain;
    use crate::format::id::Id;

    #[test]
    fn round_trip() {
        let l = Lock {
            mode: LockMode::Maintenance,
            writer: WriterId(Id::hash(b"w")),
            basis: Some(3),
            hostname: "h".into(),
            username: "u".into(),
            pid: 42,
            process_start: 7,
            time_ns: 1,
            purpose: "prune".into(),
        };
        assert_eq!(Lock::decode(&l.encode(&Plain).unwrap(), &Plain).unwrap(), l);
        assert!(!l.is_legacy());
        assert!(Lock::decode(b"junk", &Plain).is_err());
    }

    #[test]
    fn a_version_1_lock_reads_as_a_legacy_lock() {
        let v1 = LockV1 {
            exclusive: false,
            hostname: "h".into(),
            username: "u".into(),
            pid: 1,
            process_start: 0,
            time_ns: 5,
            purpose: "backup".into(),
        };
        let bytes = codec::seal_with(FileKind::Lock, &LockFile::V1(v1), &Plain).unwrap();
        let l = Lock::decode(&bytes, &Plain).unwrap();
        assert!(l.is_legacy());
        assert_eq!((l.mode, l.basis, l.time_ns), (LockMode::Shared, None, 5));
    }
}
