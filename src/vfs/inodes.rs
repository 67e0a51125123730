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
//! memory follows the kernel's inode cache, not the size of the snapshots.

use std::collections::HashMap;
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
}

/// The live inodes.
#[derive(Default)]
pub struct Table {
    map: Mutex<HashMap<u64, Slot>>,
}

/// Two different entries derived the same inode number.
#[derive(Debug)]
pub struct Collision;

impl Table {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Slot>> {
        self.map
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
        let mut map = self.lock();
        let slot = map.entry(ino).or_insert_with(|| Slot {
            target: Arc::new(make()),
            check,
            lookups: 0,
        });
        if slot.check != check {
            return Err(Collision);
        }
        slot.lookups += 1;
        Ok(Arc::clone(&slot.target))
    }

    /// The inode, if the kernel knows it.
    #[must_use]
    pub fn get(&self, ino: u64) -> Option<Arc<Target>> {
        self.lock().get(&ino).map(|s| Arc::clone(&s.target))
    }

    /// The kernel dropped `n` lookups of `ino`; at zero the inode is released.
    pub fn forget(&self, ino: u64, n: u64) {
        let mut map = self.lock();
        if let Some(slot) = map.get_mut(&ino) {
            slot.lookups = slot.lookups.saturating_sub(n);
            if slot.lookups == 0 {
                map.remove(&ino);
            }
        }
    }

    /// Number of live inodes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().len()
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
}
