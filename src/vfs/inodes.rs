//! Inode numbers and the table of inodes the kernel currently knows.
//!
//! Numbers are derived, not allocated: an entry's number is a hash of what it is (its snapshot,
//! its parent's number and its name; for hardlinked files the snapshot and the source device
//! and inode), so the same path always gets the same number for the whole life of the mount and
//! every name of a hardlinked file shares one number, while the same file in two snapshots gets
//! two (they are different files to `cp -a`, `tar` and `rsync -H`). Numbers 1 to
//! [`FIRST_DERIVED`]` - 1` are the fixed top-level entries.
//!
//! The table holds only what the kernel has looked up and not yet forgotten (FUSE `FORGET`), so
//! memory follows the kernel's inode cache, not the size of the snapshots. The kernel keeps
//! inodes for as long as it has memory to spare, so past a limit the mount asks it to drop the
//! entries used least recently ([`Table::least_recent`]); it forgets them once unused.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::format::id::TreeId;

use super::view::SnapEntry;

/// The mount's root directory.
pub const ROOT: u64 = 1;
/// `hosts/`
pub const HOSTS: u64 = 2;
/// `tags/`
pub const TAGS: u64 = 3;
/// `ids/`
pub const IDS: u64 = 4;
/// The `latest` symlink.
pub const LATEST: u64 = 5;
/// `at/`.
pub const AT: u64 = 6;
/// `versions/`.
pub const VERSIONS: u64 = 7;
/// Derived numbers are at least this.
pub const FIRST_DERIVED: u64 = 1 << 16;

/// Derives an inode number from the parts that identify an entry; the second value is an
/// independent check word that tells a (astronomically unlikely) collision from a match.
#[must_use]
pub fn derive(parts: &[&[u8]]) -> (u64, u64) {
    let mut h = blake3::Hasher::new();
    for p in parts {
        h.update(&(p.len() as u64).to_le_bytes());
        h.update(p);
    }
    let out = h.finalize();
    let b = out.as_bytes();
    let mut ino = [0u8; 8];
    let mut check = [0u8; 8];
    ino.copy_from_slice(&b[..8]);
    check.copy_from_slice(&b[8..16]);
    let ino = u64::from_le_bytes(ino) >> 1; // keep clear of the top bit for tools using i64
    (ino.max(FIRST_DERIVED), u64::from_le_bytes(check))
}

/// Inode key of `hosts/H` (`parent == HOSTS`) or `tags/T`.
#[must_use]
pub fn group_ino(parent: u64, name: &str) -> (u64, u64) {
    let kind: &[u8] = if parent == HOSTS { b"host" } else { b"tag" };
    derive(&[kind, name.as_bytes()])
}

/// What an inode is.
#[derive(Debug)]
pub enum Target {
    /// `hosts/H`.
    HostDir(String),
    /// `tags/T`.
    TagDir(String),
    /// `hosts/H/at`.
    AtDir(String),
    /// `versions/PATH`, by the components of PATH.
    Versions(Arc<Vec<Vec<u8>>>),
    /// A symlink in `hosts/H`, `tags/T` or `ids/` pointing at a dated directory.
    Link {
        /// The symlink's target.
        target: String,
        /// The snapshot's time, used as the link's times.
        time_ns: i64,
    },
    /// A dated directory: the snapshot's root tree.
    SnapRoot(Arc<SnapEntry>),
    /// An entry inside a snapshot: entry `pos` of tree `tree`. The tree is named, not held:
    /// the kernel may hold a million of these, and the trees come from the byte-bounded
    /// tree cache when an inode is asked about.
    Node {
        /// The snapshot.
        snap: Arc<SnapEntry>,
        /// Inode number of the directory holding it (for `..`).
        parent: u64,
        /// The tree holding the entry.
        tree: TreeId,
        /// Its position in the tree's entries.
        pos: u32,
    },
}

impl Target {
    /// The snapshot this inode belongs to, if any.
    #[must_use]
    pub fn snap(&self) -> Option<&Arc<SnapEntry>> {
        match self {
            Target::SnapRoot(s) | Target::Node { snap: s, .. } => Some(s),
            _ => None,
        }
    }
}

struct Slot {
    target: Arc<Target>,
    check: u64,
    lookups: u64,
    /// When the kernel last looked it up (a tick of [`Slots::clock`]).
    used: u64,
}

#[derive(Default)]
struct Slots {
    map: HashMap<u64, Slot>,
    clock: u64,
}

/// The live inodes.
#[derive(Default)]
pub struct Table {
    slots: Mutex<Slots>,
    /// `slots.map.len()`, readable without the lock.
    len: AtomicUsize,
}

/// Where an entry's name is, to ask the kernel to drop it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryPlace {
    /// Entry `pos` of tree `tree`, in directory `parent`.
    InTree(u64, TreeId, u32),
    /// A dated directory in the root, by its name.
    Dated(String),
}

/// Two different entries derived the same inode number.
#[derive(Debug)]
pub struct Collision;

impl Table {
    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records one kernel lookup of inode `ino` (creating it from `make` if new) and returns it.
    ///
    /// # Errors
    /// [`Collision`] if `ino` is live with a different check word.
    pub fn remember(
        &self,
        (ino, check): (u64, u64),
        make: impl FnOnce() -> Target,
    ) -> Result<Arc<Target>, Collision> {
        let mut slots = self.lock();
        slots.clock += 1;
        let now = slots.clock;
        let slot = slots.map.entry(ino).or_insert_with(|| Slot {
            target: Arc::new(make()),
            check,
            lookups: 0,
            used: now,
        });
        if slot.check != check {
            return Err(Collision);
        }
        slot.lookups += 1;
        slot.used = now;
        let target = Arc::clone(&slot.target);
        self.len.store(slots.map.len(), Ordering::Relaxed);
        Ok(target)
    }

    /// The inode, if the kernel knows it.
    #[must_use]
    pub fn get(&self, ino: u64) -> Option<Arc<Target>> {
        self.lock().map.get(&ino).map(|s| Arc::clone(&s.target))
    }

    /// The kernel dropped `n` lookups of `ino`; at zero the inode is released.
    pub fn forget(&self, ino: u64, n: u64) {
        let mut slots = self.lock();
        if let Some(slot) = slots.map.get_mut(&ino) {
            slot.lookups = slot.lookups.saturating_sub(n);
            if slot.lookups == 0 {
                slots.map.remove(&ino);
                self.len.store(slots.map.len(), Ordering::Relaxed);
            }
        }
    }

    /// Where the names of the `n` entries looked up least recently are, so that the kernel can
    /// be asked to drop them: entries inside snapshots and the dated directories (a listing of
    /// a root of a million snapshots makes a million of them). Other inodes (`hosts/`,
    /// `versions/`, links) stay.
    #[must_use]
    pub fn least_recent(&self, n: usize) -> Vec<EntryPlace> {
        let slots = self.lock();
        let mut nodes: Vec<(u64, &Slot)> = slots
            .map
            .values()
            .filter(|s| matches!(*s.target, Target::Node { .. } | Target::SnapRoot(_)))
            .map(|s| (s.used, s))
            .collect();
        if n < nodes.len() {
            nodes.select_nth_unstable_by_key(n, |(used, _)| *used);
            nodes.truncate(n);
        }
        nodes
            .into_iter()
            .filter_map(|(_, s)| match &*s.target {
                Target::Node {
                    parent, tree, pos, ..
                } => Some(EntryPlace::InTree(*parent, *tree, *pos)),
                Target::SnapRoot(snap) => Some(EntryPlace::Dated(snap.name().to_string())),
                _ => None,
            })
            .collect()
    }

    /// Number of live inodes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether no inode is live.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_numbers_are_stable_and_distinct() {
        let a = derive(&[b"snap", b"x"]);
        assert_eq!(a, derive(&[b"snap", b"x"]));
        assert_ne!(a.0, derive(&[b"snapx", b""]).0);
        assert!(a.0 >= FIRST_DERIVED && a.0 < 1 << 63);
    }

    #[test]
    fn lookups_are_counted_and_forgotten() {
        let t = Table::default();
        let key = derive(&[b"h"]);
        t.remember(key, || Target::HostDir("h".into())).unwrap();
        t.remember(key, || unreachable!()).unwrap();
        assert!(t.remember((key.0, key.1 ^ 1), || unreachable!()).is_err());
        t.forget(key.0, 1);
        assert!(t.get(key.0).is_some());
        t.forget(key.0, 1);
        assert!(t.get(key.0).is_none());
        assert!(t.is_empty());
    }

    #[test]
    fn least_recent_names_the_stored_entries_looked_up_longest_ago() {
        let t = Table::default();
        let (id, snapshot) = crate::vfs::view::tests::snap(1, "h", &[]);
        let snap = Arc::new(SnapEntry::of(id, &snapshot, 0, "h".into(), Arc::new([])));
        let node = |pos: u32| Target::Node {
            snap: Arc::clone(&snap),
            parent: 9,
            tree: TreeId(crate::format::id::Id::hash(b"t")),
            pos,
        };
        for pos in 0..5u32 {
            t.remember(derive(&[&pos.to_le_bytes()]), || node(pos))
                .unwrap();
        }
        t.remember(derive(&[b"h"]), || Target::HostDir("h".into()))
            .unwrap();
        // Entry 0 is looked up again: now 1 and 2 are the oldest.
        t.remember(derive(&[&0u32.to_le_bytes()]), || unreachable!())
            .unwrap();
        let mut old: Vec<u32> = t
            .least_recent(2)
            .into_iter()
            .filter_map(|p| match p {
                EntryPlace::InTree(_, _, pos) => Some(pos),
                EntryPlace::Dated(_) => None,
            })
            .collect();
        old.sort_unstable();
        assert_eq!(old, [1, 2]);
        assert_eq!(t.least_recent(100).len(), 5, "only stored entries");
        assert_eq!(t.len(), 6);
    }
}
