//! Snapshot files: one backup run — when, from where, what it holds (the root tree), and a
//! summary of the run. A snapshot becomes visible by the atomic write of this file, which a
//! writer does last, after every pack and index file it references is durable.

use serde::{Deserialize, Serialize};

use super::FormatError;
use super::bytes::ByteString;
use super::codec::{self, FileKind, PayloadCipher};
use super::id::{SnapshotId, TreeId};

/// Largest snapshot file accepted.
pub const MAX_SNAPSHOT_LEN: usize = 16 * 1024 * 1024;

/// The versioned payload of a snapshot file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum SnapshotFile {
    /// Format version 1.
    V1(Snapshot),
}

/// One snapshot.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Snapshot {
    /// Snapshot time, nanoseconds since the Unix epoch (UTC).
    pub time_ns: i64,
    /// Host name of the machine backed up.
    pub hostname: String,
    /// User who ran the backup.
    pub username: String,
    /// Absolute source paths as given (after making them absolute), or the stdin name.
    pub paths: Vec<ByteString>,
    /// User-chosen tags.
    pub tags: Vec<String>,
    /// The root tree: source paths appear under it by their absolute path.
    pub root: TreeId,
    /// The snapshot this one was compared against for change detection.
    pub parent: Option<SnapshotId>,
    /// The chronofs version that wrote it.
    pub program_version: String,
    /// True if the content came from standard input (`paths` holds the file's name).
    pub stdin: bool,
    /// What the run did.
    pub summary: Summary,
}

/// Counters of one backup run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Summary {
    /// Files not present in the parent snapshot.
    pub files_new: u64,
    /// Files present in the parent but changed (re-read).
    pub files_changed: u64,
    /// Files unchanged since the parent (not re-read).
    pub files_unchanged: u64,
    /// Directories.
    pub dirs: u64,
    /// Symlinks, devices, FIFOs and sockets.
    pub others: u64,
    /// Sum of the sizes of all files in the snapshot.
    pub total_bytes: u64,
    /// Bytes read from the source.
    pub bytes_read: u64,
    /// Data chunks newly stored.
    pub chunks_new: u64,
    /// Uncompressed bytes of newly stored blobs.
    pub bytes_new_raw: u64,
    /// Bytes added to the repository (compressed blobs).
    pub bytes_added: u64,
    /// Source entries that could not be read (skipped or incomplete).
    pub errors: u64,
    /// Wall-clock duration in nanoseconds.
    pub duration_ns: u64,
}

/// Formats nanoseconds since the epoch as `YYYY-MM-DDTHHMMSSZ` (UTC): a snapshot's dated
/// name (see docs/FORMAT.md).
#[must_use]
pub fn dated_name(time_ns: i64) -> String {
    match jiff::Timestamp::from_nanosecond(i128::from(time_ns)) {
        Ok(t) => t.strftime("%Y-%m-%dT%H%M%SZ").to_string(),
        Err(_) => format!("t{time_ns}"),
    }
}

/// Formats nanoseconds since the epoch as RFC 3339 with nanoseconds (UTC), for listings.
#[must_use]
pub fn rfc3339(time_ns: i64) -> String {
    jiff::Timestamp::from_nanosecond(i128::from(time_ns))
        .map_or_else(|_| time_ns.to_string(), |t| t.to_string())
}

impl Snapshot {
    /// Encodes into an envelope sealed by `cipher`.
    ///
    /// # Errors
    /// Only on an encoding bug.
    pub fn encode(&self, cipher: &dyn PayloadCipher) -> Result<Vec<u8>, FormatError> {
        codec::seal_with(FileKind::Snapshot, &SnapshotFile::V1(self.clone()), cipher)
    }

    /// Decodes a snapshot file.
    ///
    /// # Errors
    /// [`FormatError`] describing the problem.
    pub fn decode(bytes: &[u8], cipher: &dyn PayloadCipher) -> Result<Self, FormatError> {
        let SnapshotFile::V1(s) =
            codec::open_with(FileKind::Snapshot, bytes, MAX_SNAPSHOT_LEN, cipher)?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::codec::Plain;
    use crate::format::id::Id;

    #[test]
    fn round_trip() {
        let s = Snapshot {
            time_ns: -1,
            hostname: "h".into(),
            username: "u".into(),
            paths: vec![ByteString::from("/home/\u{e9}")],
            tags: vec!["t".into()],
            root: TreeId(Id::hash(b"t")),
            parent: Some(SnapshotId(Id::hash(b"p"))),
            program_version: "0".into(),
            stdin: false,
            summary: Summary {
                errors: 3,
                ..Summary::default()
            },
        };
        assert_eq!(
            Snapshot::decode(&s.encode(&Plain).unwrap(), &Plain).unwrap(),
            s
        );
    }
}
