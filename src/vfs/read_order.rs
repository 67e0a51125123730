//! In which order a reader goes through a directory's files, so that the first chunks of the
//! files it comes to next can be fetched before it asks.
//!
//! `tar` and `rsync` read a directory's files in listing order (the tree's, sorted by name).
//! GNU `cp` sorts them by inode number first (gnulib's `savedir`, which speeds up copying on
//! local disks), and the mount's inode numbers are hashes ([`super::inodes`]), so in `cp`'s
//! order the next file can be anywhere in the listing: prefetching the next names in the
//! listing fetched files `cp` would not read for a while, and left the ones it did read to be
//! fetched while it waited.
//!
//! The order is told from the files read first, per directory: a file whose predecessor in
//! the listing was the last one begun is read in listing order; one whose predecessor by
//! inode number was, in inode order. The first file of a directory tells it too (the first
//! in the listing, or the lowest inode number). Anything else (random access, a reader
//! skipping files) is taken for listing order, as before this existed.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};

use lru::LruCache;

use crate::format::tree::{Node, NodeKind, Tree};

/// Directories whose reading order is remembered.
const DIRS: usize = 256;

/// What is remembered of one directory being read.
struct Reading {
    /// Position of the file begun last.
    last: Option<usize>,
    /// The directory's files by inode number, once needed.
    by_ino: Option<Arc<InodeOrder>>,
}

/// A directory's readable files sorted by inode number.
struct InodeOrder {
    /// Positions in the tree, by inode number.
    order: Vec<u32>,
    /// For each position of the tree, its index in `order` (`u32::MAX`: not a readable file).
    rank: Vec<u32>,
}

impl InodeOrder {
    fn of(tree: &Tree, ino_of: &dyn Fn(&Node) -> u64) -> InodeOrder {
        let mut keyed: Vec<(u64, u32)> = tree
            .entries
            .iter()
            .enumerate()
            .filter(|(_, n)| readable(n))
            .filter_map(|(pos, n)| Some((ino_of(n), u32::try_from(pos).ok()?)))
            .collect();
        keyed.sort_unstable();
        let mut rank = vec![u32::MAX; tree.entries.len()];
        for (i, &(_, pos)) in keyed.iter().enumerate() {
            rank[pos as usize] = u32::try_from(i).unwrap_or(u32::MAX);
        }
        InodeOrder {
            order: keyed.into_iter().map(|(_, pos)| pos).collect(),
            rank,
        }
    }

    /// Where `pos` stands in inode order.
    fn index(&self, pos: usize) -> Option<usize> {
        match self.rank.get(pos) {
            Some(&r) if r != u32::MAX => Some(r as usize),
            _ => None,
        }
    }
}

/// A file a reader asks for data (a regular file with at least one byte; the kernel reads
/// nothing of an empty file).
fn readable(n: &Node) -> bool {
    matches!(&n.kind, NodeKind::File { content } if !content.is_empty())
}

/// The reading orders of the directories being read.
pub struct ReadOrders {
    dirs: Mutex<LruCache<u64, Reading>>,
}

impl Default for ReadOrders {
    fn default() -> Self {
        ReadOrders {
            dirs: Mutex::new(LruCache::new(
                NonZeroUsize::new(DIRS).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }
}

impl ReadOrders {
    fn lock(&self) -> MutexGuard<'_, LruCache<u64, Reading>> {
        self.dirs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A reader begins file `pos` of `tree`, directory inode `dir`: the positions of up to `n`
    /// files it will read next, in the order it reads them. `ino_of` gives an entry's inode
    /// number (computed only when the order is not the listing's).
    pub fn begun(
        &self,
        dir: u64,
        tree: &Tree,
        pos: usize,
        n: usize,
        ino_of: &dyn Fn(&Node) -> u64,
    ) -> Vec<usize> {
        let listing_prev = tree
            .entries
            .get(..pos)
            .and_then(|before| before.iter().rposition(readable));
        let (prev, known) = {
            let mut dirs = self.lock();
            let r = dirs.get_or_insert_mut(dir, || Reading {
                last: None,
                by_ino: None,
            });
            (r.last.replace(pos), r.by_ino.clone())
        };
        if prev != listing_prev {
            // Hashing a directory's names takes a while: not under the lock that every request
            // thread beginning a file takes.
            let by_ino = known.unwrap_or_else(|| {
                let made = Arc::new(InodeOrder::of(tree, ino_of));
                if let Some(r) = self.lock().get_mut(&dir) {
                    r.by_ino = Some(Arc::clone(&made));
                }
                made
            });
            if let Some(i) = by_ino.index(pos) {
                let ino_prev = i.checked_sub(1).map(|p| by_ino.order[p] as usize);
                if prev == ino_prev {
                    return by_ino.order[i + 1..]
                        .iter()
                        .take(n)
                        .map(|&p| p as usize)
                        .collect();
                }
            }
        }
        tree.entries
            .iter()
            .enumerate()
            .skip(pos + 1)
            .filter(|(_, e)| readable(e))
            .take(n)
            .map(|(p, _)| p)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::tree::Piece;
    use crate::format::tree::tests::node;

    fn file(name: &str) -> Node {
        let content = vec![Piece::Hole { len: 1 }];
        node(name.as_bytes(), NodeKind::File { content }, 1)
    }

    fn tree(names: &[&str]) -> Tree {
        Tree {
            entries: names.iter().map(|n| file(n)).collect(),
        }
    }

    /// A stand-in for inode numbers that orders the files differently from the listing.
    fn reversed_ino(n: &Node) -> u64 {
        u64::MAX - u64::from(n.name.as_bytes()[0])
    }

    #[test]
    fn listing_order_is_followed() {
        let t = tree(&["a", "b", "c", "d", "e"]);
        let o = ReadOrders::default();
        assert_eq!(o.begun(9, &t, 0, 2, &reversed_ino), vec![1, 2]);
        assert_eq!(o.begun(9, &t, 1, 2, &reversed_ino), vec![2, 3]);
        assert_eq!(o.begun(9, &t, 2, 8, &reversed_ino), vec![3, 4]);
    }

    #[test]
    fn inode_order_is_told_from_the_first_file_and_followed() {
        let t = tree(&["a", "b", "c", "d", "e"]);
        let o = ReadOrders::default();
        // "e" has the lowest number: a reader starting there reads by inode number.
        assert_eq!(o.begun(9, &t, 4, 2, &reversed_ino), vec![3, 2]);
        assert_eq!(o.begun(9, &t, 3, 2, &reversed_ino), vec![2, 1]);
        assert_eq!(o.begun(9, &t, 2, 8, &reversed_ino), vec![1, 0]);
    }

    #[test]
    fn entries_that_are_not_read_do_not_break_either_order() {
        let mut t = tree(&["a", "b", "c", "d", "e"]);
        t.entries[1] = node(b"b", NodeKind::Fifo, 0); // never read
        t.entries[3].kind = NodeKind::File { content: vec![] }; // empty: never read
        let o = ReadOrders::default();
        assert_eq!(o.begun(9, &t, 0, 8, &reversed_ino), vec![2, 4]);
        assert_eq!(o.begun(9, &t, 2, 8, &reversed_ino), vec![4]);
        let o = ReadOrders::default();
        assert_eq!(o.begun(9, &t, 4, 8, &reversed_ino), vec![2, 0]);
        assert_eq!(o.begun(9, &t, 2, 8, &reversed_ino), vec![0]);
    }

    #[test]
    fn directories_are_told_apart_and_a_jump_falls_back_to_the_listing() {
        let t = tree(&["a", "b", "c", "d", "e"]);
        let o = ReadOrders::default();
        assert_eq!(o.begun(1, &t, 4, 1, &reversed_ino), vec![3]);
        // Another directory with the same tree starts in listing order.
        assert_eq!(o.begun(2, &t, 0, 1, &reversed_ino), vec![1]);
        // Neither order's predecessor: listing order from there.
        assert_eq!(o.begun(1, &t, 1, 1, &reversed_ino), vec![2]);
    }
}
