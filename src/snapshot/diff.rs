//! What changed between two trees: added, removed and modified entries, walked in name order
//! with an explicit stack. Subtrees with the same id are identical and skipped unread, so the
//! cost follows the size of the change, not of the trees.
//!
//! A node is modified when its type, content (the chunk list, link target or device numbers),
//! mode, owner, modification time, size or extended attributes differ; access and change
//! times, inode numbers and link counts are the source file system's bookkeeping and do not
//! count. Below an added or removed directory every entry is reported (the subtree's expansion
//! is bounded first, so a crafted tree cannot make the walk endless).

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::format::id::TreeId;
use crate::format::tree::{Node, NodeKind, Tree};
use crate::repo::Repository;

use super::expand;

/// How an entry changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Only in the newer tree.
    Added(Node),
    /// Only in the older tree.
    Removed(Node),
    /// In both, different in the named aspects.
    Modified {
        /// The older node.
        old: Box<Node>,
        /// The newer node.
        new: Box<Node>,
        /// What differs: `type`, `content`, `mode`, `owner`, `mtime`, `size`, `xattrs`.
        what: Vec<&'static str>,
    },
}

/// One changed entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Absolute path in the snapshot.
    pub path: PathBuf,
    /// The change.
    pub change: Change,
}

/// What differs between two nodes of the same name (empty: the same).
#[must_use]
pub fn differences(old: &Node, new: &Node) -> Vec<&'static str> {
    let mut what = Vec::new();
    let same_type = std::mem::discriminant(&old.kind) == std::mem::discriminant(&new.kind);
    if !same_type {
        what.push("type");
    } else if !matches!(old.kind, NodeKind::Dir { .. }) && old.kind != new.kind {
        what.push("content");
    }
    if old.mode != new.mode {
        what.push("mode");
    }
    if (old.uid, old.gid, &old.user, &old.group) != (new.uid, new.gid, &new.user, &new.group) {
        what.push("owner");
    }
    if old.mtime != new.mtime {
        what.push("mtime");
    }
    if old.size != new.size && !matches!(new.kind, NodeKind::Dir { .. }) {
        what.push("size");
    }
    if old.xattrs != new.xattrs {
        what.push("xattrs");
    }
    what
}

/// Walks what changed from tree `old` to tree `new` (both below `base`), calling `emit` for
/// each changed entry in path order.
///
/// # Errors
/// Tree read errors, an expansion beyond the limits, or `emit`'s error.
pub fn diff(
    repo: &Repository,
    old: TreeId,
    new: TreeId,
    base: &Path,
    emit: &mut dyn FnMut(Entry) -> Result<()>,
) -> Result<()> {
    let mut stack: Vec<(TreeId, TreeId, PathBuf)> = vec![(old, new, base.to_path_buf())];
    while let Some((o, n, dir)) = stack.pop() {
        if o == n {
            continue;
        }
        let (ot, nt) = (repo.read_tree(&o)?, repo.read_tree(&n)?);
        // Subdirectories to compare are pushed in reverse so they pop in name order, after
        // this directory's own entries.
        let mut deeper = Vec::new();
        let (mut i, mut j) = (0, 0);
        while i < ot.entries.len() || j < nt.entries.len() {
            let order = match (ot.entries.get(i), nt.entries.get(j)) {
                (Some(a), Some(b)) => a.name.cmp(&b.name),
                (Some(_), None) => std::cmp::Ordering::Less,
                _ => std::cmp::Ordering::Greater,
            };
            match order {
                std::cmp::Ordering::Less => {
                    let node = &ot.entries[i];
                    one_side(repo, node, &dir, false, emit)?;
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    let node = &nt.entries[j];
                    one_side(repo, node, &dir, true, emit)?;
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    let (a, b) = (&ot.entries[i], &nt.entries[j]);
                    let path = dir.join(b.name.as_path());
                    let what = differences(a, b);
                    if what.contains(&"type") {
                        one_side(repo, a, &dir, false, emit)?;
                        one_side(repo, b, &dir, true, emit)?;
                    } else {
                        if !what.is_empty() {
                            emit(Entry {
                                path: path.clone(),
                                change: Change::Modified {
                                    old: Box::new(a.clone()),
                                    new: Box::new(b.clone()),
                                    what,
                                },
                            })?;
                        }
                        if let (NodeKind::Dir { subtree: sa }, NodeKind::Dir { subtree: sb }) =
                            (&a.kind, &b.kind)
                            && sa != sb
                        {
                            deeper.push((*sa, *sb, path));
                        }
                    }
                    i += 1;
                    j += 1;
                }
            }
        }
        stack.extend(deeper.into_iter().rev());
    }
    Ok(())
}

/// Reports `node` (in `dir`) as added or removed, with everything below it.
fn one_side(
    repo: &Repository,
    node: &Node,
    dir: &Path,
    added: bool,
    emit: &mut dyn FnMut(Entry) -> Result<()>,
) -> Result<()> {
    let wrap = |n: Node| {
        if added {
            Change::Added(n)
        } else {
            Change::Removed(n)
        }
    };
    let path = dir.join(node.name.as_path());
    emit(Entry {
        path: path.clone(),
        change: wrap(node.clone()),
    })?;
    let NodeKind::Dir { subtree } = &node.kind else {
        return Ok(());
    };
    expand::bounded(repo, *subtree)?;
    let mut stack: Vec<(Tree, usize, PathBuf)> = vec![(repo.read_tree(subtree)?, 0, path)];
    while let Some((tree, next, dir)) = stack.last_mut() {
        let Some(n) = tree.entries.get(*next).cloned() else {
            stack.pop();
            continue;
        };
        *next += 1;
        let p = dir.join(n.name.as_path());
        if let NodeKind::Dir { subtree } = &n.kind {
            let sub = repo.read_tree(subtree)?;
            emit(Entry {
                path: p.clone(),
                change: wrap(n),
            })?;
            stack.push((sub, 0, p));
        } else {
            emit(Entry {
                path: p,
                change: wrap(n),
            })?;
        }
    }
    Ok(())
}
