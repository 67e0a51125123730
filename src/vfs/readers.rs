//! What the mount reads, for every connection: decoded trees and decompressed chunks in
//! byte-bounded single-flight caches, the maps of the files being read, directory facts, and
//! the threads that decompress ahead of sequential readers and of a directory's next files,
//! and read the tree packs ahead.

use std::sync::atomic::AtomicU64;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use lru::LruCache;

use crate::error::{Error, Result};
use crate::format::id::{BlobId, ChunkId, TreeId};
use crate::format::tree::{NodeKind, Tree};
use crate::repo::Repository;

use super::attr::DirFacts;
use super::cache::{Cache, Shared};
use super::filemap::FileMap;
use super::log::log;

/// At most this many chunks ahead of a sequential reader are prefetched, and at most half the
/// chunk cache's bytes (what is read ahead must still be cached when the reader gets there).
/// Four chunks of read-ahead kept one `cat` waiting on each pack read in turn; sixteen let
/// the read-ahead threads read and decode while the reader consumes (bench/RESULTS.md, "The
/// read path").
const PREFETCH_AHEAD: usize = 16;
/// When a file is first read, the first chunks of this many files its reader comes to next in
/// its directory are prefetched (in the reader's order: see [`super::read_order`]).
pub const PREFETCH_SIBLINGS: usize = 8;
/// A file being read through the mount (the kernel opens files without telling us, see
/// the FUSE adapter; this is kept per inode).
#[derive(Debug)]
pub struct OpenFile {
    /// Where its bytes are.
    pub map: FileMap,
    /// Where the previous read ended (to spot sequential reading).
    pub next: AtomicU64,
}

/// Files whose maps are kept between reads.
const OPEN_FILES: usize = 4096;
/// Directories whose link count and size are kept.
const DIR_FACTS: usize = 65_536;
/// Tree packs up to this many bytes are read ahead when the mount starts.
const TREE_PACK_READAHEAD: u64 = 512 << 20;

/// The caches and read state shared by the request threads.
pub struct Readers {
    repo: Arc<Repository>,
    chunks: Cache<ChunkId, Arc<Vec<u8>>>,
    trees: Cache<TreeId, Arc<Tree>>,
    dir_facts: Mutex<LruCache<TreeId, DirFacts>>,
    files: Mutex<LruCache<u64, Arc<OpenFile>>>,
    /// The first chunks of the files a directory's reader comes to next.
    prefetch: OnceLock<SyncSender<(ChunkId, u32)>>,
    /// The chunks a sequential reader comes to next: threads of their own, so that a file
    /// read from start to end and a directory of small files read in turn do not wait for
    /// each other's reads (sharing one pool, more threads for the one slowed the other).
    ahead: OnceLock<SyncSender<(ChunkId, u32)>>,
    /// Bytes of chunks read ahead of a sequential reader at most.
    ahead_bytes: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Readers {
    /// Empty caches: `cache_bytes` of decompressed chunks, `tree_cache_bytes` of trees.
    #[must_use]
    pub fn new(repo: Arc<Repository>, cache_bytes: usize, tree_cache_bytes: usize) -> Arc<Readers> {
        Arc::new(Readers {
            repo,
            chunks: Cache::new(cache_bytes),
            trees: Cache::new(tree_cache_bytes),
            dir_facts: Mutex::new(LruCache::unbounded()),
            files: Mutex::new(LruCache::unbounded()),
            prefetch: OnceLock::new(),
            ahead: OnceLock::new(),
            ahead_bytes: (cache_bytes / 2) as u64,
        })
    }

    /// Starts the read-ahead of the tree packs, and `threads` prefetchers for the next files
    /// of a directory and twice as many for sequential readers (a file's chunks come one
    /// pack read after another: more reads in flight keep the window full); they end when
    /// the readers are dropped.
    ///
    /// # Errors
    /// A thread that cannot be started.
    pub fn start(self: &Arc<Self>, threads: usize) -> Result<()> {
        let weak = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("chronofs-readahead".into())
            .spawn(move || {
                if let Some(s) = weak.upgrade() {
                    s.read_ahead_trees();
                }
            })
            .map_err(|e| Error::repo_io("starting the read-ahead of", "index", e))?;
        let _ = self
            .prefetch
            .set(self.start_prefetchers("prefetch", threads)?);
        let _ = self
            .ahead
            .set(self.start_prefetchers("ahead", 2 * threads)?);
        Ok(())
    }

    /// `threads` threads loading the chunks sent to the returned queue into the cache.
    fn start_prefetchers(
        self: &Arc<Self>,
        name: &str,
        threads: usize,
    ) -> Result<SyncSender<(ChunkId, u32)>> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<(ChunkId, u32)>(64);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let weak = Arc::downgrade(self);
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("chronofs-{name}-{i}"))
                .spawn(move || {
                    loop {
                        let next = lock(&rx).recv();
                        let (Ok((id, len)), Some(s)) = (next, weak.upgrade()) else {
                            break;
                        };
                        // Errors surface when the reader gets there.
                        let _ = s.chunk(&id, len);
                    }
                })
                .map_err(|e| Error::repo_io("starting a prefetch thread for", "packs", e))?;
        }
        Ok(tx)
    }

    /// A decoded tree, from the cache or the repository.
    ///
    /// # Errors
    /// Missing or damaged tree.
    pub fn tree(&self, id: &TreeId) -> Shared<Arc<Tree>> {
        self.trees.get_or_load(*id, || {
            let bytes = self.repo.read_blob(&BlobId::from(*id))?;
            let tree = Tree::decode(&bytes)
                .map_err(|e| Error::corrupt(format!("tree {}", id.short()), e.to_string()))?;
            let weight =
                bytes.len() + tree.entries.len() * std::mem::size_of::<crate::format::tree::Node>();
            Ok((Arc::new(tree), weight))
        })
    }

    /// A decompressed, verified chunk of `len` bytes, from the cache or the repository. The
    /// repository reloads its index by itself when a prune or backup changed it.
    ///
    /// # Errors
    /// Missing or damaged chunk, or one whose length is not `len`.
    pub fn chunk(&self, id: &ChunkId, len: u32) -> Shared<Arc<Vec<u8>>> {
        let chunk = self.chunks.get_or_load(*id, || {
            let bytes = self.repo.read_chunk(id, len)?;
            let n = bytes.len();
            Ok((Arc::new(bytes), n))
        })?;
        // Cached for another file that listed it with its true length: this one lies.
        if chunk.len() != len as usize {
            return Err(Arc::new(Error::corrupt(
                format!("chunk {}", id.short()),
                format!(
                    "holds {} bytes, but a file lists it as {len} bytes",
                    chunk.len()
                ),
            )));
        }
        Ok(chunk)
    }

    /// Queues the chunks a sequential reader will want next, if not cached already.
    pub fn prefetch_after(&self, file: &OpenFile, piece: usize) {
        let Some(tx) = self.ahead.get() else {
            return;
        };
        let mut bytes = 0u64;
        for (id, len) in file.map.chunks_after(piece, PREFETCH_AHEAD) {
            bytes += u64::from(len);
            if bytes > self.ahead_bytes {
                break;
            }
            if self.chunks.has(&id) {
                continue;
            }
            match tx.try_send((id, len)) {
                Ok(()) => {}
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => break,
            }
        }
    }

    /// Queues the first chunk of the files at `positions` of `tree`, in that order.
    pub fn prefetch_files(&self, tree: &Tree, positions: &[usize]) {
        let Some(tx) = self.prefetch.get() else {
            return;
        };
        let firsts = positions
            .iter()
            .filter_map(|&p| match &tree.entries.get(p)?.kind {
                NodeKind::File { content } => content.iter().find_map(|p| match p {
                    crate::format::tree::Piece::Data { id, len } => Some((*id, *len)),
                    crate::format::tree::Piece::Hole { .. } => None,
                }),
                _ => None,
            });
        for (id, len) in firsts {
            if !self.chunks.has(&id) && tx.try_send((id, len)).is_err() {
                break;
            }
        }
    }

    /// `nlink` and entry count of directory `subtree` (a damaged subtree reports an empty
    /// directory here; reading it then fails with EIO).
    pub fn dir_facts(&self, subtree: &TreeId) -> DirFacts {
        if let Some(f) = lock(&self.dir_facts).get(subtree) {
            return *f;
        }
        match self.tree(subtree) {
            Ok(t) => {
                let facts = facts_of(&t);
                put_bounded(&mut lock(&self.dir_facts), DIR_FACTS, *subtree, facts);
                facts
            }
            Err(e) => {
                log(&format!("directory tree {}: {e}", subtree.short()));
                DirFacts {
                    nlink: 2,
                    entries: 0,
                }
            }
        }
    }

    /// The read state of file inode `ino`, if it is kept.
    pub fn kept_file(&self, ino: u64) -> Option<Arc<OpenFile>> {
        lock(&self.files).get(&ino).map(Arc::clone)
    }

    /// The read state of file inode `ino`, made from `pieces` if not kept.
    pub fn file(&self, ino: u64, pieces: &[crate::format::tree::Piece]) -> Arc<OpenFile> {
        if let Some(f) = self.kept_file(ino) {
            return f;
        }
        let f = Arc::new(OpenFile {
            map: FileMap::new(pieces),
            next: AtomicU64::new(0),
        });
        put_bounded(&mut lock(&self.files), OPEN_FILES, ino, Arc::clone(&f));
        f
    }

    /// Asks the storage to read the tree packs ahead: listing directories on a cold cache
    /// then costs one sequential read instead of a seek per directory.
    pub fn read_ahead_trees(&self) {
        let packs = self.repo.index().tree_packs();
        let mut budget = TREE_PACK_READAHEAD;
        for (id, len) in packs {
            if len > budget {
                break;
            }
            budget -= len;
            self.repo
                .storage()
                .will_need(&crate::repo::layout::pack_path(&id));
        }
    }
}

fn facts_of(t: &Tree) -> DirFacts {
    let subdirs = t
        .entries
        .iter()
        .filter(|n| matches!(n.kind, NodeKind::Dir { .. }))
        .count();
    DirFacts {
        nlink: u32::try_from(subdirs.saturating_add(2)).unwrap_or(u32::MAX),
        entries: t.entries.len() as u64,
    }
}

/// Puts `key` into an LRU map of at most `cap` entries, dropping the least recently used. The
/// map grows as it fills rather than being allocated for `cap` entries up front (`LruCache::new`
/// does): a mount that has read little holds little.
fn put_bounded<K: std::hash::Hash + Eq, V>(map: &mut LruCache<K, V>, cap: usize, key: K, value: V) {
    if map.len() >= cap && !map.contains(&key) {
        map.pop_lru();
    }
    map.put(key, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bounded_map_keeps_the_most_recent_entries() {
        let mut m = LruCache::unbounded();
        for k in 0..10 {
            put_bounded(&mut m, 4, k, k);
        }
        assert_eq!(m.len(), 4);
        assert!(m.get(&6).is_some(), "6 to 9 are kept");
        put_bounded(&mut m, 4, 9, 90);
        assert_eq!(m.len(), 4, "replacing an entry drops none");
        assert!(m.contains(&6));
        put_bounded(&mut m, 4, 10, 10);
        assert!(!m.contains(&7), "the least recently used goes");
        assert!(m.contains(&6));
    }
}
