//! `versions/PATH`: the history of one path across every snapshot.
//!
//! `versions/` mirrors the union of the paths of all snapshots: `versions/home/alice/` lists
//! every name that `home/alice` held in any snapshot, deleted ones included, each as a
//! directory. Where the path is a file (or symlink, or special file), its directory also holds
//! one entry per distinct version, named by the dated name of the first snapshot holding it
//! (`versions/home/alice/notes.txt/2026-11-20T020000Z`) and being that file as stored there. A
//! new version starts where the type, content or size changes or the path comes back after a
//! gap, as `chronofs versions` counts them.
//!
//! Built lazily, one directory at a time: a [`Level`] says, for every snapshot, what the path
//! is there (a directory's tree id, or the entry), and the level of `PATH/NAME` is derived from
//! that of `PATH` by looking `NAME` up once per distinct tree (a thousand snapshots of a
//! mostly unchanged tree cost a handful of tree reads). Levels are cached per path for the
//! current list of snapshots; when a backup lands, they are rebuilt as they are asked for.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, OnceLock};

use lru::LruCache;

use crate::format::id::TreeId;
use crate::format::tree::{Node, NodeKind, Tree};
use crate::snapshot::history::same_version;

use super::dirs::Item;
use super::inodes::{self, ROOT, Target, VERSIONS};
use super::state::log;
use super::view::View;
use super::{Errno, Vfs};

/// Levels kept (each about 60 bytes per snapshot).
const CACHED_LEVELS: usize = 1024;

/// One path across all snapshots of a view.
pub struct Level {
    /// The snapshots it was built for.
    view: Arc<View>,
    /// Per snapshot (in the view's order): the path's tree where it is a directory.
    dirs: Vec<Option<TreeId>>,
    /// Per snapshot: the path's entry where it is anything else (the tree holding it, by id
    /// and decoded, and its position there).
    others: Vec<Option<(TreeId, Arc<Tree>, usize)>>,
    /// Indices of the snapshots where a version starts, worked out once.
    starts: OnceLock<Vec<usize>>,
}

impl Level {
    fn node(&self, i: usize) -> Option<&Node> {
        self.others[i]
            .as_ref()
            .and_then(|(_, t, pos)| t.entries.get(*pos))
    }

    /// Indices of the snapshots where a version starts, oldest first (as `chronofs versions`
    /// counts them).
    fn starts(&self) -> &[usize] {
        self.starts.get_or_init(|| {
            let mut starts: Vec<usize> = Vec::new();
            for i in 0..self.others.len() {
                let Some(node) = self.node(i) else { continue };
                let continues = i > 0
                    && self.node(i - 1).is_some()
                    && starts
                        .last()
                        .and_then(|&s| self.node(s))
                        .is_some_and(|first| same_version(first, node));
                if !continues {
                    starts.push(i);
                }
            }
            starts
        })
    }
}

/// The cache of levels, by path.
pub struct Levels {
    cache: Mutex<LruCache<Vec<Vec<u8>>, Arc<Level>>>,
}

impl Default for Levels {
    fn default() -> Self {
        Levels {
            cache: Mutex::new(LruCache::new(
                NonZeroUsize::new(CACHED_LEVELS).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }
}

impl Levels {
    fn get(&self, path: &[Vec<u8>], view: &Arc<View>) -> Option<Arc<Level>> {
        let mut c = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        c.get(path).filter(|l| Arc::ptr_eq(&l.view, view)).cloned()
    }

    fn put(&self, path: Vec<Vec<u8>>, level: Arc<Level>) {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .put(path, level);
    }
}

/// Inode number of the directory above `versions/PATH`.
pub(super) fn parent_ino(path: &[Vec<u8>]) -> u64 {
    match path.len() {
        0 => ROOT,
        1 => VERSIONS,
        n => dir_key(&path[..n - 1]).0,
    }
}

/// Inode key of `versions/PATH`.
fn dir_key(path: &[Vec<u8>]) -> (u64, u64) {
    let mut parts: Vec<&[u8]> = vec![b"versions"];
    parts.extend(path.iter().map(Vec::as_slice));
    inodes::derive(&parts)
}

fn dir_item(path: Vec<Vec<u8>>) -> Item {
    Item::Derived(dir_key(&path), Target::Versions(Arc::new(path)))
}

impl Vfs {
    /// The level of `path`, from the cache or built from the nearest cached ancestor.
    fn level(&self, path: &[Vec<u8>]) -> Arc<Level> {
        let view = self.state.view();
        let mut depth = path.len();
        let mut level = loop {
            if let Some(l) = self.versions.get(&path[..depth], &view) {
                break l;
            }
            if depth == 0 {
                let n = view.snaps.len();
                break Arc::new(Level {
                    dirs: view.snaps.iter().map(|s| Some(s.root)).collect(),
                    others: vec![None; n],
                    starts: OnceLock::new(),
                    view: Arc::clone(&view),
                });
            }
            depth -= 1;
        };
        for d in depth..path.len() {
            level = Arc::new(self.descend(&level, &path[d]));
            self.versions.put(path[..=d].to_vec(), Arc::clone(&level));
        }
        level
    }

    /// The level of `NAME` below `parent`: one lookup per distinct tree. A tree that cannot
    /// be read is logged and its snapshots count as lacking the path.
    fn descend(&self, parent: &Level, name: &[u8]) -> Level {
        let n = parent.dirs.len();
        let mut dirs = vec![None; n];
        let mut others = vec![None; n];
        let mut memo: HashMap<TreeId, Option<(Arc<Tree>, usize)>> = HashMap::new();
        for (i, t) in parent.dirs.iter().enumerate() {
            let Some(t) = t else { continue };
            let found = memo
                .entry(*t)
                .or_insert_with(|| {
                    let tree = self.tree(t).ok()?;
                    let pos = tree
                        .entries
                        .binary_search_by(|e| e.name.as_bytes().cmp(name))
                        .ok()?;
                    Some((tree, pos))
                })
                .clone();
            let Some((tree, pos)) = found else { continue };
            match &tree.entries[pos].kind {
                NodeKind::Dir { subtree } => dirs[i] = Some(*subtree),
                _ => others[i] = Some((*t, tree, pos)),
            }
        }
        Level {
            view: Arc::clone(&parent.view),
            dirs,
            others,
            starts: OnceLock::new(),
        }
    }

    /// The names below `level` in any snapshot.
    fn names(&self, level: &Level) -> BTreeSet<Vec<u8>> {
        let mut names = BTreeSet::new();
        let distinct: HashSet<&TreeId> = level.dirs.iter().flatten().collect();
        for t in distinct {
            match self.tree(t) {
                Ok(tree) => names.extend(tree.entries.iter().map(|e| e.name.as_bytes().to_vec())),
                Err(_) => log(&format!(
                    "versions/: tree {} left out (unreadable)",
                    t.short()
                )),
            }
        }
        names
    }

    /// The entry of version `i` (a snapshot index) in `versions/PATH` (inode `dir_ino`).
    fn version_item(level: &Level, dir_ino: u64, i: usize) -> Option<Item> {
        let snap = level.view.snaps.get(i)?;
        let (id, tree, pos) = level.others.get(i)?.as_ref()?;
        let key = inodes::derive(&[b"version", &dir_ino.to_le_bytes(), &snap.id.0.0]);
        Some(Item::Stored(
            key,
            Target::Node {
                snap: Arc::clone(snap),
                parent: dir_ino,
                tree: *id,
                pos: u32::try_from(*pos).ok()?,
            },
            Arc::clone(tree),
        ))
    }

    /// Entry `name` of `versions/PATH`: a version (by dated name) or a name below the path.
    pub(super) fn versions_child(
        &self,
        dir_ino: u64,
        path: &[Vec<u8>],
        name: &[u8],
    ) -> Result<Item, Errno> {
        let level = self.level(path);
        if let Ok(n) = std::str::from_utf8(name)
            && let Some(i) = level.view.snaps.iter().position(|s| s.name() == n)
            && level.others[i].is_some()
            && level.starts().binary_search(&i).is_ok()
        {
            return Self::version_item(&level, dir_ino, i).ok_or(Errno::ENOENT);
        }
        let mut child = path.to_vec();
        child.push(name.to_vec());
        let below = self.level(&child);
        if below.dirs.iter().any(Option::is_some) || below.others.iter().any(Option::is_some) {
            Ok(dir_item(child))
        } else {
            Err(Errno::ENOENT)
        }
    }

    /// The entries of `versions/PATH` after the dots: the names below it (cookies from 3),
    /// then its versions, oldest first.
    pub(super) fn versions_entries(
        &self,
        dir_ino: u64,
        path: &[Vec<u8>],
        items: &mut Vec<(u64, Vec<u8>, Item)>,
    ) {
        let level = self.level(path);
        let starts = level.starts();
        let versions: Vec<(String, usize)> = starts
            .iter()
            .filter_map(|&i| level.view.snaps.get(i).map(|s| (s.name().to_string(), i)))
            .collect();
        let taken: HashSet<&[u8]> = versions.iter().map(|(n, _)| n.as_bytes()).collect();
        let mut cookie = 3;
        for name in self.names(&level) {
            if taken.contains(name.as_slice()) {
                continue;
            }
            let mut child = path.to_vec();
            child.push(name.clone());
            items.push((cookie, name, dir_item(child)));
            cookie += 1;
        }
        for (name, i) in versions {
            if let Some(item) = Self::version_item(&level, dir_ino, i) {
                items.push((cookie, name.into_bytes(), item));
                cookie += 1;
            }
        }
    }
}
