//! Lock files: who holds a lock on the repository, since when, and whether it is exclusive.
//! A lock file is an envelope (kind 5) named, like every other file, by the blake3 of its
//! bytes; a holder refreshes its lock by writing a new file and deleting the old one.

use serde::{Deserialize, Serialize};

use super::FormatError;
use super::codec::{self, FileKind, PayloadCipher};

/// Largest lock file accepted.
pub const MAX_LOCK_LEN: usize = 64 * 1024;

/// The versioned payload of a lock file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum LockFile {
    /// Format version 1.
    V1(Lock),
}

/// One lock.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Lock {
    /// Exclusive (forget, prune) or shared (backup, copy, check).
    pub exclusive: bool,
    /// Host name of the holder.
    pub hostname: String,
    /// User name of the holder.
    pub username: String,
    /// Process id of the holder.
    pub pid: u32,
    /// The holder's start time in clock ticks since boot (`/proc/PID/stat` field 22; 0 if
    /// unknown), so that a reused PID is not mistaken for the holder.
    pub process_start: u64,
    /// When the lock was taken or last refreshed, ns since the Unix epoch.
    pub time_ns: i64,
    /// What the holder is doing (`backup`, `prune`, …).
    pub purpose: String,
}

impl Lock {
    /// Encodes into an envelope sealed by `cipher`.
    ///
    /// # Errors
    /// Only on an encoding bug.
    pub fn encode(&self, cipher: &dyn PayloadCipher) -> Result<Vec<u8>, FormatError> {
        codec::seal_with(FileKind::Lock, &LockFile::V1(self.clone()), cipher)
    }

    /// Decodes a lock file of a repository that uses `cipher`.
    ///
    /// # Errors
    /// [`FormatError`] describing the problem.
    pub fn decode(bytes: &[u8], cipher: &dyn PayloadCipher) -> Result<Self, FormatError> {
        let LockFile::V1(l) = codec::open_with(FileKind::Lock, bytes, MAX_LOCK_LEN, cipher)?;
        Ok(l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::codec::Plain;

    #[test]
    fn round_trip() {
        let l = Lock {
            exclusive: true,
            hostname: "h".into(),
            username: "u".into(),
            pid: 42,
            process_start: 7,
            time_ns: 1,
            purpose: "prune".into(),
        };
        assert_eq!(Lock::decode(&l.encode(&Plain).unwrap(), &Plain).unwrap(), l);
        assert!(Lock::decode(b"junk", &Plain).is_err());
    }
}
