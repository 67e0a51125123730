//! Snapshot files: one backup run — when, from where, what it holds (the root tree), and a
//! summary of the run. A snapshot becomes visible by the atomic write of this file, which a
//! writer does last, after every pack and index file it references is durable.

use serde::{Deserialize, Serialize};

use super::FormatError;
use super::bytes::ByteString;
use super::codec::{self, FileKind, PayloadCipher};
use super::id::{SnapshotId, TreeId, WriterId};

/// Largest snapshot file accepted.
pub const MAX_SNAPSHOT_LEN: usize = 16 * 1024 * 1024;

/// The versioned payload of a snapshot file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum SnapshotFile {
    /// The first version: a snapshot, without [`Contents`].
    V1(Snapshot),
    /// A snapshot and what its tree holds.
    V2(Snapshot, Contents),
    /// A snapshot, what its tree holds (if known), and which writer committed it on which
    /// basis; every backup and copy writes this version.
    V3(Snapshot, Option<Contents>, Commit),
    /// Version 3 plus how the backup made its sources hold still (`backup --consistent`);
    /// written only by such backups, so that older readers keep reading every other snapshot.
    V4(Snapshot, Option<Contents>, Option<Commit>, Consistency),
}

/// How a backup made its sources consistent while it read them (`backup --consistent`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Consistency {
    /// The method: `btrfs-snapshot` or `freeze`.
    pub method: String,
    /// What it was applied to, as the user would name it: a subvolume and the snapshot read
    /// in its place, a mount point frozen, a device not mounted (read as it was).
    pub subjects: Vec<String>,
    /// Nanoseconds during which writes to the sources waited (a freeze); 0 for a snapshot,
    /// which holds no writer.
    pub held_ns: u64,
}

/// Who committed a snapshot, and against which state of the repository: what lets a prune
/// that revoked a silent writer tell the snapshots that writer committed in time from one it
/// committed too late (docs/FORMAT.md, "Prune beside writers").
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Commit {
    /// The writer, as named in its lock.
    pub writer: WriterId,
    /// The prune epoch of the index the writer deduplicated against.
    pub basis: u64,
}

/// Facts about a snapshot's whole tree, gathered while the backup wrote it, so that readers
/// need not walk the tree to learn them.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Contents {
    /// Entries that carry extended attributes (POSIX ACLs are stored as extended attributes,
    /// so they count too).
    pub xattr_entries: u64,
    /// Entries that carry a POSIX ACL (`system.posix_acl_access` or `system.posix_acl_default`).
    pub acl_entries: u64,
}

impl Contents {
    /// Counts the entries of one directory (not what its subdirectories hold).
    pub fn add(&mut self, entries: &[crate::format::tree::Node]) {
        for n in entries.iter().filter(|n| !n.xattrs.is_empty()) {
            let acl = n.xattrs.iter().any(|x| is_acl(x.name.as_bytes()));
            self.merge(&Contents {
                xattr_entries: 1,
                acl_entries: u64::from(acl),
            });
        }
    }

    /// Adds what `other` counted (saturating: a crafted tree can repeat a subtree).
    pub fn merge(&mut self, other: &Contents) {
        self.xattr_entries = self.xattr_entries.saturating_add(other.xattr_entries);
        self.acl_entries = self.acl_entries.saturating_add(other.acl_entries);
    }
}

/// True for the names under which POSIX ACLs are stored.
#[must_use]
pub fn is_acl(xattr_name: &[u8]) -> bool {
    xattr_name == b"system.posix_acl_access" || xattr_name == b"system.posix_acl_default"
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
    /// What the tree holds; `None` for a snapshot written before this was recorded. It
    /// travels as the second field of [`SnapshotFile::V2`], not inside this struct.
    #[serde(skip)]
    pub contents: Option<Contents>,
    /// Who committed it (absent in snapshots written before version 3).
    #[serde(skip)]
    pub commit: Option<Commit>,
    /// How its sources were made consistent (only with `backup --consistent`: version 4).
    #[serde(skip)]
    pub consistency: Option<Consistency>,
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
    /// Encodes into an envelope sealed by `cipher`: as version 2 when its contents are known,
    /// else as version 1 (so that copying an old snapshot claims nothing it does not know).
    ///
    /// # Errors
    /// Only on an encoding bug.
    pub fn encode(&self, cipher: &dyn PayloadCipher) -> Result<Vec<u8>, FormatError> {
        let file = match (self.contents, self.commit) {
            (contents, commit) if self.consistency.is_some() => SnapshotFile::V4(
                self.clone(),
                contents,
                commit,
                self.consistency.clone().unwrap_or_default(),
            ),
            (contents, Some(commit)) => SnapshotFile::V3(self.clone(), contents, commit),
            (Some(c), None) => SnapshotFile::V2(self.clone(), c),
            (None, None) => SnapshotFile::V1(self.clone()),
        };
        codec::seal_with(FileKind::Snapshot, &file, cipher)
    }

    /// Decodes a snapshot file.
    ///
    /// # Errors
    /// [`FormatError`] describing the problem.
    pub fn decode(bytes: &[u8], cipher: &dyn PayloadCipher) -> Result<Self, FormatError> {
        Ok(
            match codec::open_with(FileKind::Snapshot, bytes, MAX_SNAPSHOT_LEN, cipher)? {
                SnapshotFile::V1(s) => Snapshot {
                    contents: None,
                    commit: None,
                    consistency: None,
                    ..s
                },
                SnapshotFile::V2(s, c) => Snapshot {
                    contents: Some(c),
                    commit: None,
                    consistency: None,
                    ..s
                },
                SnapshotFile::V3(s, contents, commit) => Snapshot {
                    contents,
                    commit: Some(commit),
                    consistency: None,
                    ..s
                },
                SnapshotFile::V4(s, contents, commit, consistency) => Snapshot {
                    contents,
                    commit,
                    consistency: Some(consistency),
                    ..s
                },
            },
        )
    }

    /// True if the snapshot is known to hold no extended attributes (nor ACLs) anywhere.
    #[must_use]
    pub fn known_without_xattrs(&self) -> bool {
        self.contents.is_some_and(|c| c.xattr_entries == 0)
    }

    /// True if the snapshot is known to hold no POSIX ACL anywhere.
    #[must_use]
    pub fn known_without_acls(&self) -> bool {
        self.contents.is_some_and(|c| c.acl_entries == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::codec::Plain;
    use crate::format::id::Id;

    fn sample() -> Snapshot {
        Snapshot {
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
            contents: Some(Contents::default()),
            commit: Some(Commit {
                writer: WriterId(Id::hash(b"w")),
                basis: 2,
            }),
            consistency: None,
        }
    }

    #[test]
    fn a_consistent_snapshot_is_version_4_and_keeps_how_it_was_taken() {
        let s = Snapshot {
            consistency: Some(Consistency {
                method: "btrfs-snapshot".into(),
                subjects: vec!["/srv (read from /srv/.chronofs-consistent-1/srv)".into()],
                held_ns: 0,
            }),
            ..sample()
        };
        let bytes = s.encode(&Plain).unwrap();
        let SnapshotFile::V4(..) =
            codec::open_with::<SnapshotFile>(FileKind::Snapshot, &bytes, MAX_SNAPSHOT_LEN, &Plain)
                .unwrap()
        else {
            panic!("version 4 expected");
        };
        assert_eq!(Snapshot::decode(&bytes, &Plain).unwrap(), s);
        // Without a commit too (a library caller without a lock).
        let s = Snapshot { commit: None, ..s };
        assert_eq!(
            Snapshot::decode(&s.encode(&Plain).unwrap(), &Plain).unwrap(),
            s
        );
    }

    #[test]
    fn round_trip() {
        let s = sample();
        assert_eq!(
            Snapshot::decode(&s.encode(&Plain).unwrap(), &Plain).unwrap(),
            s
        );
        assert!(s.known_without_xattrs() && s.known_without_acls());
    }

    #[test]
    fn a_snapshot_of_unknown_contents_stays_version_1() {
        let s = Snapshot {
            contents: None,
            commit: None,
            ..sample()
        };
        let bytes = s.encode(&Plain).unwrap();
        let SnapshotFile::V1(_) =
            codec::open_with::<SnapshotFile>(FileKind::Snapshot, &bytes, MAX_SNAPSHOT_LEN, &Plain)
                .unwrap()
        else {
            panic!("version 1 expected");
        };
        let back = Snapshot::decode(&bytes, &Plain).unwrap();
        assert_eq!(back, s);
        assert!(!back.known_without_xattrs() && !back.known_without_acls());
    }

    #[test]
    fn contents_count_entries_with_xattrs_and_acls() {
        use crate::format::tree::{NodeKind, Xattr, tests::node};
        let with = |names: &[&str]| {
            let mut n = node(b"n", NodeKind::Fifo, 0);
            n.xattrs = names
                .iter()
                .map(|n| Xattr {
                    name: ByteString::from(*n),
                    value: ByteString::from("v"),
                })
                .collect();
            n
        };
        let mut c = Contents::default();
        c.add(&[
            with(&[]),
            with(&["security.capability"]),
            with(&["system.posix_acl_access", "user.x"]),
            with(&["system.posix_acl_default"]),
        ]);
        assert_eq!(
            c,
            Contents {
                xattr_entries: 3,
                acl_entries: 2
            }
        );
    }
}
