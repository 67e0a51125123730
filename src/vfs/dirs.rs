//! What a directory inode is ([`Dir`]) and what a name in it resolves to ([`Item`]): the fixed
//! top level, host and tag groups, `ids/`, `at/`, `versions/`, and the stored trees of the
//! snapshots.

use std::sync::Arc;

use crate::format::id::TreeId;
use crate::format::tree::{Node, NodeKind, Tree};

use super::inodes::{self, AT, HOSTS, IDS, ROOT, TAGS, Target, VERSIONS, group_ino};
use super::state::log;
use super::view::{Group, SnapEntry, View};
use super::{Errno, Kind, Vfs, attr};

/// A directory, resolved.
pub(super) enum Dir {
    Root,
    Groups(u64),
    Ids,
    /// `at/` (all snapshots) or `hosts/H/at/` (that host's).
    At {
        ino: u64,
        host: Option<String>,
    },
    Group {
        parent: u64,
        ino: u64,
        name: String,
    },
    /// `versions/PATH` (`versions/` itself for the empty path).
    Versions {
        ino: u64,
        path: Arc<Vec<Vec<u8>>>,
    },
    Tree {
        snap: Arc<SnapEntry>,
        ino: u64,
        parent: u64,
        id: TreeId,
        tree: Arc<Tree>,
    },
}

/// A stored entry, with the tree that holds it.
pub(super) struct Stored {
    /// The tree.
    pub tree: Arc<Tree>,
    /// The entry's position in it.
    pub pos: usize,
}

impl Stored {
    /// The entry.
    pub(super) fn node(&self) -> &Node {
        &self.tree.entries[self.pos]
    }
}

/// One entry to report from a directory.
pub(super) enum Item {
    /// A fixed top-level inode.
    Fixed(u64, Kind),
    /// A derived inode and what it is.
    Derived((u64, u64), Target),
    /// An entry of a snapshot, with the tree holding it at hand.
    Stored((u64, u64), Target, Arc<Tree>),
}

impl Item {
    /// Its inode number.
    pub(super) fn ino(&self) -> u64 {
        match self {
            Item::Fixed(i, _) => *i,
            Item::Derived(k, _) | Item::Stored(k, _, _) => k.0,
        }
    }

    /// What it is, for derived inodes.
    pub(super) fn target(&self) -> Option<&Target> {
        match self {
            Item::Fixed(..) => None,
            Item::Derived(_, t) | Item::Stored(_, t, _) => Some(t),
        }
    }

    /// The tree holding a stored entry, when the item carries it.
    pub(super) fn held(&self) -> Option<&Arc<Tree>> {
        match self {
            Item::Stored(_, _, tree) => Some(tree),
            _ => None,
        }
    }
}

impl Vfs {
    /// Directory `ino`.
    pub(super) fn dir(&self, ino: u64) -> Result<Dir, Errno> {
        match ino {
            ROOT => return Ok(Dir::Root),
            HOSTS | TAGS => return Ok(Dir::Groups(ino)),
            IDS => return Ok(Dir::Ids),
            AT => {
                return Ok(Dir::At {
                    ino: AT,
                    host: None,
                });
            }
            VERSIONS => {
                return Ok(Dir::Versions {
                    ino,
                    path: Arc::new(Vec::new()),
                });
            }
            _ => {}
        }
        let t = self.state.table.get(ino).ok_or(Errno::ENOENT)?;
        match &*t {
            Target::HostDir(n) => Ok(Dir::Group {
                parent: HOSTS,
                ino,
                name: n.clone(),
            }),
            Target::TagDir(n) => Ok(Dir::Group {
                parent: TAGS,
                ino,
                name: n.clone(),
            }),
            Target::AtDir(h) => Ok(Dir::At {
                ino,
                host: Some(h.clone()),
            }),
            Target::Versions(path) => Ok(Dir::Versions {
                ino,
                path: Arc::clone(path),
            }),
            Target::SnapRoot(s) => Ok(Dir::Tree {
                snap: Arc::clone(s),
                ino,
                parent: ROOT,
                id: s.root,
                tree: self.tree(&s.root)?,
            }),
            Target::Node { snap, parent, .. } => {
                let stored = self.stored(&t, None)?;
                match stored.as_ref().map(|e| &e.node().kind) {
                    Some(NodeKind::Dir { subtree }) => Ok(Dir::Tree {
                        snap: Arc::clone(snap),
                        ino,
                        parent: *parent,
                        id: *subtree,
                        tree: self.tree(subtree)?,
                    }),
                    _ => Err(Errno::ENOTDIR),
                }
            }
            Target::Link { .. } => Err(Errno::ENOTDIR),
        }
    }

    /// The stored entry `target` is (`None` for synthetic inodes), its tree taken from `held`
    /// or from the tree cache.
    pub(super) fn stored(
        &self,
        target: &Target,
        held: Option<&Arc<Tree>>,
    ) -> Result<Option<Stored>, Errno> {
        let Target::Node { tree, pos, .. } = target else {
            return Ok(None);
        };
        let tree = match held {
            Some(t) => Arc::clone(t),
            None => self.tree(tree)?,
        };
        let pos = *pos as usize;
        if pos >= tree.entries.len() {
            return Err(Errno::EIO);
        }
        Ok(Some(Stored { tree, pos }))
    }

    /// Tree `id`, from the cache or the repository (errors logged, `EIO` for the kernel).
    pub(super) fn tree(&self, id: &TreeId) -> Result<Arc<Tree>, Errno> {
        self.state.readers.tree(id).map_err(|e| {
            log(&format!("{e}"));
            Errno::EIO
        })
    }

    /// The entry `name` of directory `dir`.
    pub(super) fn child(&self, dir: &Dir, name: &[u8]) -> Result<Item, Errno> {
        if let Dir::Tree {
            snap,
            ino,
            id,
            tree,
            ..
        } = dir
        {
            let pos = tree
                .entries
                .binary_search_by(|e| e.name.as_bytes().cmp(name))
                .map_err(|_| Errno::ENOENT)?;
            return Ok(node_item(snap, *ino, *id, tree, pos));
        }
        if let Dir::Versions { ino, path } = dir {
            return self.versions_child(*ino, path, name);
        }
        let n = std::str::from_utf8(name).map_err(|_| Errno::ENOENT)?;
        let view = self.state.view();
        match dir {
            Dir::Root => {
                if n == "latest" {
                    self.state.refresh_soon();
                }
                if let Some(found) = top_child(&view, n) {
                    return Ok(found);
                }
                // Maybe a backup just landed: look again.
                self.state.refresh_soon();
                top_child(&self.state.view(), n).ok_or(Errno::ENOENT)
            }
            Dir::Groups(parent) => {
                group(&view, *parent, n).ok_or(Errno::ENOENT)?;
                Ok(group_item(*parent, n))
            }
            Dir::Ids => {
                let s = view.by_id(n).ok_or(Errno::ENOENT)?;
                Ok(link_item(IDS, n, format!("../{}", s.name()), s.time_ns()))
            }
            Dir::Group {
                parent,
                ino,
                name: g,
            } => {
                let group = group(&view, *parent, g).ok_or(Errno::ENOENT)?;
                if n == "at" && *parent == HOSTS {
                    return Ok(at_dir_item(g));
                }
                let mut members = view.members(group);
                let s = if n == "latest" {
                    members.last()
                } else {
                    members.find(|s| s.name() == n)
                }
                .ok_or(Errno::ENOENT)?;
                Ok(link_item(
                    *ino,
                    n,
                    format!("../../{}", s.name()),
                    s.time_ns(),
                ))
            }
            Dir::At { ino, host } => {
                let s = match host {
                    None => super::at::resolve(view.snaps.iter(), n),
                    Some(h) => view
                        .hosts
                        .get(h)
                        .and_then(|g| super::at::resolve(view.members(g), n)),
                }
                .ok_or(Errno::ENOENT)?;
                Ok(link_item(*ino, n, super::at::link_target(s), s.time_ns()))
            }
            Dir::Tree { .. } | Dir::Versions { .. } => Err(Errno::ENOENT),
        }
    }

    /// Looks `item` up on the kernel's behalf: counts the lookup and returns its attributes.
    pub(super) fn enter(&self, item: Item) -> Result<(super::Attr, std::time::Duration), Errno> {
        let (key, target, held) = match item {
            Item::Fixed(ino, _) => return self.attr_of(ino, None, None),
            Item::Derived(key, target) => (key, target, None),
            Item::Stored(key, target, tree) => (key, target, Some(tree)),
        };
        let place = node_place(&target);
        let t = self.state.table.remember(key, || target).map_err(|_| {
            log(&format!("inode number collision at {}", key.0));
            Errno::EIO
        })?;
        // The tree at hand holds this name's entry; a live inode reached first by another
        // name (a hardlink) names its entry in another tree, which is read instead.
        let held = held.filter(|_| node_place(&t) == place);
        let r = self.attr_of(key.0, Some(&t), held.as_ref());
        if r.is_err() {
            self.state.table.forget(key.0, 1);
        }
        self.state.note_lookup();
        r
    }

    /// Counts one kernel lookup of `item` (an entry READDIRPLUS handed over).
    pub(super) fn remember(&self, item: Item) {
        if let Item::Derived(key, target) | Item::Stored(key, target, _) = item {
            let _ = self.state.table.remember(key, || target);
            self.state.note_lookup();
        }
    }

    /// What `item` is, for a plain listing.
    pub(super) fn kind_of(&self, item: &Item) -> Kind {
        match item {
            Item::Fixed(_, k) => *k,
            Item::Stored(_, Target::Node { pos, .. }, tree) => tree
                .entries
                .get(*pos as usize)
                .map_or(Kind::File, attr::kind_of),
            Item::Derived(_, t) | Item::Stored(_, t, _) => match t {
                Target::HostDir(_)
                | Target::TagDir(_)
                | Target::AtDir(_)
                | Target::SnapRoot(_)
                | Target::Versions(_) => Kind::Dir,
                Target::Link { .. } => Kind::Symlink,
                Target::Node { .. } => self
                    .stored(t, None)
                    .ok()
                    .flatten()
                    .map_or(Kind::File, |e| attr::kind_of(e.node())),
            },
        }
    }
}

/// `hosts/NAME` (`parent == HOSTS`) or `tags/NAME`.
pub(super) fn group<'v>(view: &'v View, parent: u64, name: &str) -> Option<&'v Group> {
    if parent == HOSTS {
        view.hosts.get(name)
    } else {
        view.tags.get(name)
    }
}

/// The item of group directory `name` in `hosts/` or `tags/`.
pub(super) fn group_item(parent: u64, name: &str) -> Item {
    let target = if parent == HOSTS {
        Target::HostDir(name.into())
    } else {
        Target::TagDir(name.into())
    };
    Item::Derived(group_ino(parent, name), target)
}

/// The item of a snapshot's dated directory.
pub(super) fn snap_item(snap: &Arc<SnapEntry>) -> Item {
    Item::Derived(
        inodes::derive(&[b"snap", &snap.id.0.0]),
        Target::SnapRoot(Arc::clone(snap)),
    )
}

fn top_child(view: &View, name: &str) -> Option<Item> {
    match name {
        "hosts" => Some(Item::Fixed(HOSTS, Kind::Dir)),
        "tags" => Some(Item::Fixed(TAGS, Kind::Dir)),
        "ids" => Some(Item::Fixed(IDS, Kind::Dir)),
        "at" => Some(Item::Fixed(AT, Kind::Dir)),
        "versions" => Some(Item::Fixed(VERSIONS, Kind::Dir)),
        "latest" => view
            .latest()
            .map(|l| link_item(ROOT, "latest", l.name().into(), l.time_ns())),
        _ => view.by_name(name).map(snap_item),
    }
}

/// `hosts/HOST/at`.
pub(super) fn at_dir_item(host: &str) -> Item {
    Item::Derived(
        inodes::derive(&[b"at", host.as_bytes()]),
        Target::AtDir(host.into()),
    )
}

/// A synthetic symlink `name` in directory `dir`.
pub(super) fn link_item(dir: u64, name: &str, target: String, time_ns: i64) -> Item {
    let key = inodes::derive(&[
        b"link",
        &dir.to_le_bytes(),
        name.as_bytes(),
        target.as_bytes(),
    ]);
    Item::Derived(key, Target::Link { target, time_ns })
}

/// Entry `pos` of `tree` (tree `id`), a directory of snapshot `snap` whose inode is
/// `dir_ino`.
pub(super) fn node_item(
    snap: &Arc<SnapEntry>,
    dir_ino: u64,
    id: TreeId,
    tree: &Arc<Tree>,
    pos: usize,
) -> Item {
    let key = node_ino(snap, dir_ino, &tree.entries[pos]);
    Item::Stored(
        key,
        Target::Node {
            snap: Arc::clone(snap),
            parent: dir_ino,
            tree: id,
            pos: u32::try_from(pos).unwrap_or(u32::MAX),
        },
        Arc::clone(tree),
    )
}

/// The tree and position a stored entry's target names.
fn node_place(target: &Target) -> Option<(TreeId, u32)> {
    match target {
        Target::Node { tree, pos, .. } => Some((*tree, *pos)),
        _ => None,
    }
}

/// Inode key of a stored entry: hardlinked non-directories by source device and inode (and
/// everything that makes them one file), so all their names share it, while entries that
/// merely claim the same inode but differ get their own; everything else by parent and name.
pub(super) fn node_ino(snap: &SnapEntry, parent: u64, node: &Node) -> (u64, u64) {
    if node.may_be_hardlinked() {
        inodes::derive(&[b"hardlink", &snap.id.0.0, &node.inode_identity()])
    } else {
        inodes::derive(&[b"node", &parent.to_le_bytes(), node.name.as_bytes()])
    }
}
