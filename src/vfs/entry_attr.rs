//! Attributes of any inode of the tree, and how long the kernel may keep them: the fixed
//! directories and groups from the current view (short-lived), snapshot contents from their
//! stored metadata (long-lived: snapshots never change).

use std::sync::Arc;
use std::time::Duration;

use crate::format::tree::{NodeKind, Tree};

use super::attr::{self, Attr, DirFacts};
use super::dirs::group;
use super::inodes::{AT, HOSTS, IDS, ROOT, TAGS, Target, VERSIONS};
use super::{Errno, SNAPSHOT_TTL, TOP_TTL, Vfs};

/// Entries of the root besides the snapshots: `latest`, `hosts`, `tags`, `ids`, `at`,
/// `versions`.
const ROOT_FIXED: usize = 6;

impl Vfs {
    /// Attributes and TTL of inode `ino`, which is `target` if the caller has it at hand
    /// (and, for a stored entry, the tree `held` holding it).
    pub(super) fn attr_of(
        &self,
        ino: u64,
        target: Option<&Target>,
        held: Option<&Arc<Tree>>,
    ) -> Result<(Attr, Duration), Errno> {
        let owner = self.state.owner;
        let view = self.state.view();
        let newest = view.newest_ns();
        let top = |nlink: usize, entries: usize| {
            attr::virtual_dir(
                ino,
                newest,
                u32::try_from(nlink).unwrap_or(u32::MAX),
                entries as u64,
                owner,
            )
        };
        match ino {
            ROOT => {
                let n = view.snaps.len();
                // Subdirectories: the snapshots, hosts, tags, ids, at and versions.
                return Ok((top(n + ROOT_FIXED + 1, n + ROOT_FIXED), TOP_TTL));
            }
            HOSTS => return Ok((top(view.hosts.len() + 2, view.hosts.len()), TOP_TTL)),
            TAGS => return Ok((top(view.tags.len() + 2, view.tags.len()), TOP_TTL)),
            IDS | AT => return Ok((top(2, view.snaps.len()), TOP_TTL)),
            VERSIONS => return Ok((top(2, 0), TOP_TTL)),
            _ => {}
        }
        let owned;
        let target = match target {
            Some(t) => t,
            None => {
                owned = self.state.table.get(ino).ok_or(Errno::ENOENT)?;
                &owned
            }
        };
        Ok(match target {
            Target::HostDir(name) | Target::TagDir(name) => {
                let parent = if matches!(target, Target::HostDir(_)) {
                    HOSTS
                } else {
                    TAGS
                };
                let g = group(&view, parent, name).ok_or(Errno::ENOENT)?;
                let newest = view.members(g).last().map_or(0, |s| s.time_ns());
                // Members and `latest`, and for a host its `at/` directory.
                let (n, nlink) = if parent == HOSTS {
                    (g.members.len() as u64 + 2, 3)
                } else {
                    (g.members.len() as u64 + 1, 2)
                };
                (attr::virtual_dir(ino, newest, nlink, n, owner), TOP_TTL)
            }
            Target::Link { target, time_ns } => {
                (attr::virtual_link(ino, target, *time_ns, owner), TOP_TTL)
            }
            Target::AtDir(host) => {
                let g = view.hosts.get(host).ok_or(Errno::ENOENT)?;
                let newest = view.members(g).last().map_or(0, |s| s.time_ns());
                let n = g.members.len() as u64;
                (attr::virtual_dir(ino, newest, 2, n, owner), TOP_TTL)
            }
            Target::Versions(_) => (attr::virtual_dir(ino, newest, 2, 0, owner), TOP_TTL),
            Target::SnapRoot(s) => {
                let facts = s
                    .root_facts
                    .unwrap_or_else(|| self.state.readers.dir_facts(&s.root));
                let a = attr::virtual_dir(ino, s.time_ns(), facts.nlink, facts.entries, owner);
                (a, SNAPSHOT_TTL)
            }
            Target::Node { .. } => {
                let stored = self.stored(target, held)?.ok_or(Errno::EIO)?;
                let node = stored.node();
                let facts: Option<DirFacts> = match &node.kind {
                    NodeKind::Dir { subtree } => Some(self.state.readers.dir_facts(subtree)),
                    _ => None,
                };
                (attr::node_attr(ino, node, facts), SNAPSHOT_TTL)
            }
        })
    }
}
