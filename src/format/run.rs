//! Run records: that a prune or a check ran, where, when, and how it ended, kept in the
//! repository (`maintenance/`) so that `status` on any host can tell when maintenance stopped
//! running or started failing.

use serde::{Deserialize, Serialize};

use super::FormatError;
use super::codec::{self, FileKind, PayloadCipher};

/// Largest run record accepted.
pub const MAX_RUN_LEN: usize = 64 * 1024;

/// The versioned payload of a run record.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum RunFile {
    /// Format version 1.
    V1(Run),
}

/// What ran.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub enum Job {
    /// `prune` (also through `forget --prune`).
    Prune,
    /// `check` of the structure only.
    Check,
    /// `check --read-data`: every pack read.
    CheckReadData,
    /// `check --read-data-subset`: a part of the packs read.
    CheckReadDataSubset,
}

impl Job {
    /// The command, as a user types it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Job::Prune => "prune",
            Job::Check => "check",
            Job::CheckReadData => "check --read-data",
            Job::CheckReadDataSubset => "check --read-data-subset",
        }
    }
}

/// One run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Run {
    /// What ran.
    pub job: Job,
    /// Host it ran on.
    pub hostname: String,
    /// When it started, ns since the Unix epoch.
    pub started_ns: i64,
    /// When it ended.
    pub finished_ns: i64,
    /// Whether it succeeded (a check: found no damage).
    pub ok: bool,
    /// One line: what it did, or why it failed.
    pub outcome: String,
}

impl Run {
    /// Encodes into an envelope sealed by `cipher`.
    ///
    /// # Errors
    /// Only on an encoding bug.
    pub fn encode(&self, cipher: &dyn PayloadCipher) -> Result<Vec<u8>, FormatError> {
        codec::seal_with(FileKind::Run, &RunFile::V1(self.clone()), cipher)
    }

    /// Decodes a run record of a repository that uses `cipher`.
    ///
    /// # Errors
    /// [`FormatError`] describing the problem.
    pub fn decode(bytes: &[u8], cipher: &dyn PayloadCipher) -> Result<Self, FormatError> {
        let RunFile::V1(r) = codec::open_with(FileKind::Run, bytes, MAX_RUN_LEN, cipher)?;
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::codec::Plain;

    #[test]
    fn round_trip() {
        let r = Run {
            job: Job::CheckReadDataSubset,
            hostname: "h".into(),
            started_ns: 1,
            finished_ns: 2,
            ok: false,
            outcome: "3 errors".into(),
        };
        assert_eq!(Run::decode(&r.encode(&Plain).unwrap(), &Plain).unwrap(), r);
        assert!(Run::decode(b"junk", &Plain).is_err());
    }
}
