//! Tree blobs: one directory's entries with all their metadata.
//!
//! A tree is content-addressed (its id is the blake3 of its encoding), so an unchanged
//! directory produces the same tree id and costs nothing in a new snapshot. Entries are sorted
//! by name bytes and unique; decoding enforces this and rejects names that could escape a
//! restore target (`/`, NUL, `.`, `..`, empty).

use serde::{Deserialize, Serialize};

use super::FormatError;
use super::bytes::ByteString;
use super::codec;
use super::id::{ChunkId, TreeId};

pub use super::pack::MAX_CHUNK_LEN;

/// Deepest directory nesting readers restore and writers back up (counting from the
/// snapshot's root); deeper entries are refused with an error naming them.
pub const MAX_DEPTH: usize = 1024;

/// The versioned payload of a tree blob.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum TreeBlob {
    /// Format version 1.
    V1(Tree),
}

/// One directory.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Tree {
    /// Entries sorted by `name` bytes, unique.
    pub entries: Vec<Node>,
}

/// A point in time: seconds and nanoseconds since the Unix epoch (UTC); seconds may be negative.
#[derive(
    Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Default, Hash,
)]
pub struct Timestamp {
    /// Whole seconds since 1970-01-01T00:00:00Z.
    pub secs: i64,
    /// Nanoseconds, 0..1_000_000_000.
    pub nanos: u32,
}

/// One extended attribute (POSIX ACLs are the `system.posix_acl_*` attributes).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Xattr {
    /// Attribute name, e.g. `user.comment`.
    pub name: ByteString,
    /// Raw value.
    pub value: ByteString,
}

/// One directory entry.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Node {
    /// The entry's name (one path component).
    pub name: ByteString,
    /// Type and type-specific content.
    pub kind: NodeKind,
    /// The 12 permission bits: rwx for user/group/other plus setuid, setgid, sticky.
    pub mode: u32,
    /// Numeric owner.
    pub uid: u32,
    /// Numeric group.
    pub gid: u32,
    /// Owner name at backup time, if resolvable.
    pub user: Option<String>,
    /// Group name at backup time, if resolvable.
    pub group: Option<String>,
    /// Size in bytes (files: sum of content pieces; symlinks: target length; others: 0).
    pub size: u64,
    /// Modification time.
    pub mtime: Timestamp,
    /// Access time (recorded, restored).
    pub atime: Timestamp,
    /// Status-change time (recorded only; used for change detection).
    pub ctime: Timestamp,
    /// Device of the source file system (change detection, hardlink grouping).
    pub dev: u64,
    /// Inode number on the source (change detection, hardlink grouping).
    pub ino: u64,
    /// Link count on the source; >1 for hardlinked non-directories.
    pub nlink: u64,
    /// Extended attributes, sorted by name.
    pub xattrs: Vec<Xattr>,
}

/// Entry type and type-specific data.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum NodeKind {
    /// A regular file: its content as data chunks and holes, in order.
    File {
        /// Pieces whose lengths sum to the node's `size`.
        content: Vec<Piece>,
    },
    /// A directory and the tree of its entries.
    Dir {
        /// The subtree.
        subtree: TreeId,
    },
    /// A symbolic link.
    Symlink {
        /// The target bytes as stored by the kernel.
        target: ByteString,
    },
    /// A named pipe.
    Fifo,
    /// A character device.
    CharDevice(Device),
    /// A block device.
    BlockDevice(Device),
    /// A unix socket (recreated as a socket node).
    Socket,
}

/// Device numbers, stored split so the format does not depend on the platform's `dev_t`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Device {
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
}

/// A run of file content.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Piece {
    /// Bytes stored as a chunk.
    Data {
        /// The chunk.
        id: ChunkId,
        /// Its length in bytes.
        len: u32,
    },
    /// A hole: this many zero bytes, not stored.
    Hole {
        /// Length of the hole.
        len: u64,
    },
}

impl Piece {
    /// Length in bytes.
    #[must_use]
    pub fn len(&self) -> u64 {
        match *self {
            Piece::Data { len, .. } => u64::from(len),
            Piece::Hole { len } => len,
        }
    }

    /// Whether the piece is empty (never true for valid pieces).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Node {
    /// Whether this node is a directory.
    #[must_use]
    pub fn is_dir(&self) -> bool {
        matches!(self.kind, NodeKind::Dir { .. })
    }

    /// Whether `other` can be another name of the same file (a hardlink): same kind and
    /// content, mode, owner, size, modification and change time, link count and xattrs.
    /// Only the name and the access time may differ. Entries that share a source
    /// `(dev, ino)` but fail this are not one file, whatever their inode numbers say.
    #[must_use]
    pub fn same_inode_as(&self, other: &Node) -> bool {
        self.kind == other.kind
            && self.mode == other.mode
            && (self.uid, self.gid) == (other.uid, other.gid)
            && self.size == other.size
            && (self.mtime, self.ctime) == (other.mtime, other.ctime)
            && (self.dev, self.ino, self.nlink) == (other.dev, other.ino, other.nlink)
            && self.xattrs == other.xattrs
    }

    /// A digest of everything [`Node::same_inode_as`] compares: two entries of a hardlink
    /// group have the same identity exactly when they are one file.
    #[must_use]
    pub fn inode_identity(&self) -> [u8; 32] {
        let mut n = self.clone();
        n.name = ByteString::default();
        n.atime = Timestamp::default();
        n.user = None;
        n.group = None;
        *blake3::hash(&codec::to_bytes(&n).unwrap_or_default()).as_bytes()
    }

    /// Whether this entry is a candidate for a hardlink group (a non-directory with more
    /// than one link).
    #[must_use]
    pub fn may_be_hardlinked(&self) -> bool {
        self.nlink > 1 && !self.is_dir()
    }

    /// One-letter type code as in `ls -l`.
    #[must_use]
    pub fn type_char(&self) -> char {
        match self.kind {
            NodeKind::File { .. } => '-',
            NodeKind::Dir { .. } => 'd',
            NodeKind::Symlink { .. } => 'l',
            NodeKind::Fifo => 'p',
            NodeKind::CharDevice(_) => 'c',
            NodeKind::BlockDevice(_) => 'b',
            NodeKind::Socket => 's',
        }
    }

    fn validate(&self) -> Result<(), FormatError> {
        check_name(self.name.as_bytes())?;
        let bad = |m: String| Err(FormatError::Invalid(format!("entry {:?}: {m}", self.name)));
        if self.mode > 0o7777 {
            return bad(format!("mode {:o} has bits beyond 07777", self.mode));
        }
        for t in [self.mtime, self.atime, self.ctime] {
            if t.nanos >= 1_000_000_000 {
                return bad(format!("timestamp nanoseconds {} out of range", t.nanos));
            }
        }
        if let NodeKind::File { content } = &self.kind {
            let mut total: u64 = 0;
            for p in content {
                let ok = match *p {
                    Piece::Data { len, .. } => len > 0 && len <= MAX_CHUNK_LEN,
                    Piece::Hole { len } => len > 0,
                };
                if !ok {
                    return bad(format!("content piece of length {} is invalid", p.len()));
                }
                total = match total.checked_add(p.len()) {
                    Some(t) => t,
                    None => return bad("content length overflows".into()),
                };
            }
            if total != self.size {
                return bad(format!(
                    "content adds up to {total} bytes, size says {}",
                    self.size
                ));
            }
        }
        if self.xattrs.windows(2).any(|w| w[0].name >= w[1].name) {
            return bad("xattrs not sorted and unique".into());
        }
        Ok(())
    }
}

/// Rejects names that are not a single, safe path component.
///
/// # Errors
/// [`FormatError::Invalid`] if the name is empty, `.`, `..`, or contains `/` or NUL.
pub fn check_name(name: &[u8]) -> Result<(), FormatError> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0)
    {
        return Err(FormatError::Invalid(format!(
            "unsafe entry name {:?}",
            String::from_utf8_lossy(name)
        )));
    }
    Ok(())
}

impl Tree {
    /// Encodes the tree; the blob id is the blake3 of these bytes.
    ///
    /// # Errors
    /// Only on an encoding bug.
    pub fn encode(&self) -> Result<Vec<u8>, FormatError> {
        codec::to_bytes(&TreeBlob::V1(self.clone()))
    }

    /// Decodes and validates a tree blob.
    ///
    /// # Errors
    /// [`FormatError`] describing the problem.
    pub fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        let TreeBlob::V1(tree) = codec::from_bytes(bytes)?;
        tree.validate()?;
        Ok(tree)
    }

    /// Checks sorting, uniqueness and every entry.
    ///
    /// # Errors
    /// [`FormatError::Invalid`] describing the first problem.
    pub fn validate(&self) -> Result<(), FormatError> {
        for w in self.entries.windows(2) {
            if w[0].name >= w[1].name {
                return Err(FormatError::Invalid(format!(
                    "entries {:?} and {:?} are out of order or duplicated",
                    w[0].name, w[1].name
                )));
            }
        }
        self.entries.iter().try_for_each(Node::validate)
    }

    /// Finds an entry by name (binary search).
    #[must_use]
    pub fn get(&self, name: &[u8]) -> Option<&Node> {
        self.entries
            .binary_search_by(|n| n.name.as_bytes().cmp(name))
            .ok()
            .map(|i| &self.entries[i])
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::format::id::Id;

    pub(crate) fn node(name: &[u8], kind: NodeKind, size: u64) -> Node {
        Node {
            name: ByteString(name.to_vec()),
            kind,
            mode: 0o644,
            uid: 1000,
            gid: 1000,
            user: None,
            group: None,
            size,
            mtime: Timestamp {
                secs: -5,
                nanos: 999_999_999,
            },
            atime: Timestamp::default(),
            ctime: Timestamp::default(),
            dev: 1,
            ino: 2,
            nlink: 1,
            xattrs: vec![],
        }
    }

    #[test]
    fn round_trip_every_kind() {
        let chunk = ChunkId(Id::hash(b"c"));
        let tree = Tree {
            entries: vec![
                node(b"a", NodeKind::Fifo, 0),
                node(
                    b"b",
                    NodeKind::BlockDevice(Device { major: 8, minor: 1 }),
                    0,
                ),
                node(
                    b"f",
                    NodeKind::File {
                        content: vec![
                            Piece::Data { id: chunk, len: 10 },
                            Piece::Hole { len: 1 << 40 },
                        ],
                    },
                    10 + (1 << 40),
                ),
                node(
                    b"l",
                    NodeKind::Symlink {
                        target: ByteString(vec![0xff, b'/']),
                    },
                    2,
                ),
                node(b"\xff\xfe", NodeKind::Socket, 0),
            ],
        };
        let enc = tree.encode().unwrap();
        assert_eq!(Tree::decode(&enc).unwrap(), tree);
        assert!(tree.get(b"f").is_some());
        assert!(tree.get(b"zz").is_none());
    }

    #[test]
    fn hardlink_identity_ignores_only_name_and_atime() {
        let a = node(b"a", NodeKind::File { content: vec![] }, 0);
        let mut b = a.clone();
        b.name = ByteString::from("b");
        b.atime.secs += 5;
        assert!(a.same_inode_as(&b));
        assert_eq!(a.inode_identity(), b.inode_identity());
        let mut variants = Vec::new();
        let mut c = a.clone();
        c.kind = NodeKind::File {
            content: vec![Piece::Hole { len: 4 }],
        };
        c.size = 4;
        variants.push(c);
        let mut c = a.clone();
        c.ctime.nanos += 1;
        variants.push(c);
        let mut c = a.clone();
        c.mode = 0o600;
        variants.push(c);
        let mut c = a.clone();
        c.xattrs.push(Xattr {
            name: ByteString::from("user.x"),
            value: ByteString::default(),
        });
        variants.push(c);
        for v in variants {
            assert!(!a.same_inode_as(&v));
            assert_ne!(a.inode_identity(), v.inode_identity());
        }
    }

    #[test]
    fn hostile_trees_are_rejected() {
        for name in [&b""[..], b".", b"..", b"a/b", b"a\0"] {
            let t = Tree {
                entries: vec![node(name, NodeKind::Fifo, 0)],
            };
            assert!(Tree::decode(&t.encode().unwrap()).is_err(), "{name:?}");
        }
        let dup = Tree {
            entries: vec![node(b"a", NodeKind::Fifo, 0), node(b"a", NodeKind::Fifo, 0)],
        };
        assert!(Tree::decode(&dup.encode().unwrap()).is_err());
        let wrong_size = Tree {
            entries: vec![node(
                b"f",
                NodeKind::File {
                    content: vec![Piece::Hole { len: 3 }],
                },
                4,
            )],
        };
        assert!(Tree::decode(&wrong_size.encode().unwrap()).is_err());
        let mut bad_mode = node(b"m", NodeKind::Fifo, 0);
        bad_mode.mode = 0o170_000;
        assert!(
            Tree::decode(
                &Tree {
                    entries: vec![bad_mode]
                }
                .encode()
                .unwrap()
            )
            .is_err()
        );
    }
}
