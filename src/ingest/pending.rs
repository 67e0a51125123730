//! Directories whose tree blob cannot be written yet: some entries are still missing (files
//! being read by the pipeline's readers, subdirectories not complete). A directory becomes
//! ready once it is closed (fully listed) and nothing is missing; its tree is then stored and
//! its id fills the parent's entry, which may make the parent ready in turn.
//!
//! Only directories with work in flight (and their ancestors) are held, so memory follows the
//! pipeline's queue sizes, not the size of the tree.

use crate::format::tree::{Node, Tree};

use super::pipeline::Slot;

#[derive(Default)]
struct DirBuild {
    entries: Vec<Option<Node>>,
    missing: usize,
    parent: Option<Slot>,
    closed: bool,
}

/// An arena of pending directories addressed by handle.
#[derive(Default)]
pub(super) struct PendingDirs {
    dirs: Vec<Option<DirBuild>>,
    free: Vec<usize>,
}

impl PendingDirs {
    /// A new open directory; returns its handle.
    pub fn open(&mut self) -> usize {
        let dir = DirBuild::default();
        match self.free.pop() {
            Some(h) => {
                self.dirs[h] = Some(dir);
                h
            }
            None => {
                self.dirs.push(Some(dir));
                self.dirs.len() - 1
            }
        }
    }

    #[expect(
        clippy::expect_used,
        reason = "handles come only from `open` and are dropped by `take`: a bad one is a bug \
                  of this module, not bad input"
    )]
    fn get(&mut self, h: usize) -> &mut DirBuild {
        self.dirs[h]
            .as_mut()
            .expect("pending directory handle is live")
    }

    /// Appends an entry; `waiting` marks it incomplete until [`Self::fill`]. Returns its slot.
    pub fn push(&mut self, h: usize, node: Node, waiting: bool) -> Slot {
        let d = self.get(h);
        d.entries.push(Some(node));
        if waiting {
            d.missing += 1;
        }
        Slot {
            dir: h,
            entry: d.entries.len() - 1,
        }
    }

    /// Says where directory `child`'s tree id goes.
    pub fn set_parent(&mut self, child: usize, slot: Slot) {
        self.get(child).parent = Some(slot);
    }

    /// Completes a waiting entry: `f` updates the node, or returns false to drop it.
    pub fn fill(&mut self, slot: Slot, f: impl FnOnce(&mut Node) -> bool) {
        let d = self.get(slot.dir);
        d.missing -= 1;
        let keep = d.entries[slot.entry].as_mut().is_some_and(f);
        if !keep {
            d.entries[slot.entry] = None;
        }
    }

    /// Marks directory `h` fully listed.
    pub fn close(&mut self, h: usize) {
        self.get(h).closed = true;
    }

    /// Whether directory `h` can be stored now.
    pub fn is_ready(&mut self, h: usize) -> bool {
        let d = self.get(h);
        d.closed && d.missing == 0
    }

    /// Removes a ready directory: its tree and where its id goes.
    #[expect(
        clippy::expect_used,
        reason = "as in `get`: handles are this module's own"
    )]
    pub fn take(&mut self, h: usize) -> (Tree, Option<Slot>) {
        let d = self.dirs[h]
            .take()
            .expect("pending directory handle is live");
        self.free.push(h);
        let tree = Tree {
            entries: d.entries.into_iter().flatten().collect(),
        };
        (tree, d.parent)
    }

    /// Directories still pending.
    #[must_use]
    pub fn len(&self) -> usize {
        self.dirs.len() - self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::bytes::ByteString;
    use crate::format::tree::{NodeKind, Timestamp};

    fn file(name: &str) -> Node {
        let t = Timestamp { secs: 0, nanos: 0 };
        Node {
            name: ByteString::from(name),
            kind: NodeKind::File { content: vec![] },
            mode: 0o644,
            uid: 0,
            gid: 0,
            user: None,
            group: None,
            size: 0,
            mtime: t,
            atime: t,
            ctime: t,
            dev: 0,
            ino: 0,
            nlink: 1,
            xattrs: vec![],
        }
    }

    #[test]
    fn a_directory_is_ready_when_closed_and_complete() {
        let mut p = PendingDirs::default();
        let parent = p.open();
        let child = p.open();
        p.push(child, file("a"), false);
        let waiting = p.push(child, file("b"), true);
        let dropped = p.push(child, file("c"), true);
        let slot = p.push(parent, file("sub"), true);
        p.set_parent(child, slot);
        p.close(child);
        assert!(!p.is_ready(child));
        p.fill(waiting, |n| {
            n.size = 7;
            true
        });
        assert!(!p.is_ready(child));
        p.fill(dropped, |_| false);
        assert!(p.is_ready(child));
        let (tree, to) = p.take(child);
        assert_eq!(to, Some(slot));
        let names: Vec<_> = tree.entries.iter().map(|n| n.name.clone()).collect();
        assert_eq!(names, [ByteString::from("a"), ByteString::from("b")]);
        assert_eq!(tree.entries[1].size, 7);
        assert!(!p.is_ready(parent));
        p.fill(slot, |_| true);
        p.close(parent);
        assert!(p.is_ready(parent));
        assert_eq!(p.len(), 1);
        let reused = p.open();
        assert_eq!(reused, child, "freed handles are reused");
    }
}
