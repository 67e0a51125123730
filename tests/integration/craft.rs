//! A small crafting helper for hostile repositories: it writes packs, index files and snapshot
//! files byte for byte as docs/FORMAT.md describes them, from values a test chooses freely,
//! lies included (a piece length that is not its chunk's, an index entry that claims another
//! size, trees that point twice at one subtree, chains thousands of levels deep). Only the
//! encoders of `chronofs::format` are used, and they validate nothing: the readers must.

use std::fs;
use std::path::{Path, PathBuf};

use chronofs::crypto::Scheme;
use chronofs::format::bytes::ByteString;
use chronofs::format::codec::{Cipher, Plain};
use chronofs::format::id::{BlobId, ChunkId, Id, IndexId, PackId, SnapshotId, TreeId};
use chronofs::format::index::{Index, IndexedPack};
use chronofs::format::pack::{self, BlobKind, Compression, PackedBlob};
use chronofs::format::snapshot::{Snapshot, Summary};
use chronofs::format::tree::{Node, NodeKind, Piece, Timestamp, Tree};
use chronofs::repo::blob::prepare;
use chronofs::repo::layout;

/// A blob as it goes into a pack: whatever the test says it is.
#[derive(Clone, Debug)]
pub struct Stored {
    pub id: BlobId,
    pub kind: BlobKind,
    pub stored: Vec<u8>,
    pub raw_len: u32,
    pub compression: Compression,
}

/// What [`Craft::finish`] wrote.
#[derive(Debug)]
#[allow(dead_code)] // every field serves some case, not every case all of them
pub struct Written {
    /// The data pack and the tree pack (absent if they hold nothing).
    pub data_pack: Option<PathBuf>,
    pub tree_pack: Option<PathBuf>,
    pub index: PathBuf,
    pub snapshots: Vec<PathBuf>,
}

/// A repository being crafted.
pub struct Craft {
    pub repo: PathBuf,
    blobs: Vec<Stored>,
    snapshots: Vec<Snapshot>,
}

pub fn ts(secs: i64) -> Timestamp {
    Timestamp { secs, nanos: 0 }
}

/// A node with plausible metadata.
pub fn node(name: &[u8], kind: NodeKind, size: u64) -> Node {
    Node {
        name: ByteString(name.to_vec()),
        kind,
        mode: 0o644,
        uid: 0,
        gid: 0,
        user: None,
        group: None,
        size,
        mtime: ts(1_700_000_000),
        atime: ts(1_700_000_000),
        ctime: ts(1_700_000_000),
        dev: 1,
        ino: 1,
        nlink: 1,
        xattrs: vec![],
    }
}

/// A regular file of the given pieces; its size is what the pieces say.
pub fn file(name: &[u8], pieces: Vec<Piece>) -> Node {
    let size = pieces.iter().map(Piece::len).sum();
    node(name, NodeKind::File { content: pieces }, size)
}

/// A directory entry.
pub fn dir(name: &[u8], subtree: TreeId) -> Node {
    let mut n = node(name, NodeKind::Dir { subtree }, 0);
    n.mode = 0o755;
    n
}

impl Craft {
    /// A new, valid, empty repository at `repo` (made by chronofs itself).
    pub fn new(repo: &Path) -> Craft {
        chronofs::repo::Repository::init(repo, &chronofs::repo::InitOptions::default()).unwrap();
        Craft {
            repo: repo.to_path_buf(),
            blobs: Vec::new(),
            snapshots: Vec::new(),
        }
    }

    /// Adds a data chunk holding `raw`; returns its id and the piece that names it honestly.
    pub fn chunk(&mut self, raw: &[u8]) -> (ChunkId, Piece) {
        let p = prepare(&Scheme::Plain, BlobKind::Data, raw, 3).unwrap();
        let id = ChunkId(p.id.0);
        self.stored(Stored {
            id: p.id,
            kind: BlobKind::Data,
            stored: p.stored,
            raw_len: p.raw_len,
            compression: p.compression,
        });
        (
            id,
            Piece::Data {
                id,
                len: u32::try_from(raw.len()).unwrap(),
            },
        )
    }

    /// Adds any blob, claims and all.
    pub fn stored(&mut self, s: Stored) {
        self.blobs.push(s);
    }

    /// Adds a tree of `entries` as given (unsorted, duplicated, lying: as the test wants).
    pub fn tree(&mut self, entries: Vec<Node>) -> TreeId {
        let bytes = Tree { entries }.encode().unwrap();
        let p = prepare(&Scheme::Plain, BlobKind::Tree, &bytes, 3).unwrap();
        self.stored(Stored {
            id: p.id,
            kind: BlobKind::Tree,
            stored: p.stored,
            raw_len: p.raw_len,
            compression: p.compression,
        });
        TreeId(p.id.0)
    }

    /// A snapshot of `root` (its source path is `/`), one second after the previous one.
    pub fn snapshot(&mut self, root: TreeId) -> &mut Snapshot {
        let n = i64::try_from(self.snapshots.len()).unwrap();
        self.snapshots.push(Snapshot {
            time_ns: (1_790_000_000 + n) * 1_000_000_000,
            hostname: "crafted".into(),
            username: "root".into(),
            paths: vec![ByteString::from("/")],
            tags: vec![],
            root,
            parent: None,
            program_version: "craft".into(),
            stdin: false,
            summary: Summary::default(),
            contents: None,
            commit: None,
            consistency: None,
        });
        self.snapshots.last_mut().unwrap()
    }

    /// Writes a data pack, a tree pack, one index file naming them (after `edit` had its say
    /// about the index) and the snapshot files.
    pub fn finish_with(&mut self, edit: impl FnOnce(&mut Index)) -> Written {
        let mut index = Index::default();
        let data_pack = self.write_pack(BlobKind::Data, &mut index);
        let tree_pack = self.write_pack(BlobKind::Tree, &mut index);
        edit(&mut index);
        let bytes = index.encode(&Plain).unwrap();
        let index_path = self
            .repo
            .join(layout::index_path(&IndexId(Id::hash(&bytes))));
        fs::write(&index_path, &bytes).unwrap();
        let snapshots = self
            .snapshots
            .iter()
            .map(|s| {
                let bytes = s.encode(&Plain).unwrap();
                let p = self
                    .repo
                    .join(layout::snapshot_path(&SnapshotId(Id::hash(&bytes))));
                fs::write(&p, &bytes).unwrap();
                p
            })
            .collect();
        Written {
            data_pack,
            tree_pack,
            index: index_path,
            snapshots,
        }
    }

    /// As [`Craft::finish_with`], with the index as the packs say.
    pub fn finish(&mut self) -> Written {
        self.finish_with(|_| {})
    }

    fn write_pack(&self, kind: BlobKind, index: &mut Index) -> Option<PathBuf> {
        let blobs: Vec<&Stored> = self.blobs.iter().filter(|b| b.kind == kind).collect();
        if blobs.is_empty() {
            return None;
        }
        let mut bytes = pack::header(Cipher::None, [0; 6]).to_vec();
        let mut listed = Vec::new();
        for b in blobs {
            listed.push(PackedBlob {
                id: b.id,
                kind,
                offset: u32::try_from(bytes.len()).unwrap(),
                stored_len: u32::try_from(b.stored.len()).unwrap(),
                raw_len: b.raw_len,
                compression: b.compression,
            });
            bytes.extend_from_slice(&b.stored);
        }
        bytes.extend_from_slice(&pack::encode_trailer(&listed, None, &Plain).unwrap());
        let id = PackId(Id::hash(&bytes));
        let path = self.repo.join(layout::pack_path(&id));
        fs::write(&path, &bytes).unwrap();
        index.packs.push(IndexedPack {
            id,
            len: bytes.len() as u64,
            blobs: listed,
            session: 0,
        });
        Some(path)
    }
}
