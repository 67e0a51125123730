//! How much a tree expands to when listed or restored: entries and data bytes, measured
//! before anything is printed or written, so a crafted snapshot whose levels point at the
//! same subtree again and again (2^depth entries from a few KiB of repository) is refused
//! instead of listing forever or filling the disk.
//!
//! Each distinct tree is read once and its expansion remembered, so the work is linear in the
//! number of distinct trees however large the expansion; sums saturate instead of
//! overflowing. An unreadable tree counts as empty here (the restore reports it).

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::format::id::TreeId;
use crate::format::tree::{Node, NodeKind, Piece, Tree};
use crate::repo::Repository;

/// Most entries one snapshot (or subtree) may expand to: more than any file system holds
/// (ext4 stops at 2^32 inodes), so a tree that expands beyond it is crafted or damaged.
pub const MAX_ENTRIES: u64 = 1 << 32;

/// What restoring a tree creates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Expansion {
    /// Directory entries of every kind.
    pub entries: u64,
    /// Bytes of file data written (holes excluded; a file with `n` links counts `1/n` per
    /// name, so a hardlink group counts once).
    pub bytes: u64,
    /// Names of regular files (each name of a hardlink group counts).
    pub files: u64,
}

impl Expansion {
    fn add(&mut self, other: Expansion) {
        self.entries = self.entries.saturating_add(other.entries);
        self.bytes = self.bytes.saturating_add(other.bytes);
        self.files = self.files.saturating_add(other.files);
    }

    /// One entry, not counting what a directory holds.
    #[must_use]
    pub fn of_node(node: &Node) -> Expansion {
        let bytes = match &node.kind {
            NodeKind::File { content } => {
                let data: u64 = content
                    .iter()
                    .filter(|p| matches!(p, Piece::Data { .. }))
                    .map(Piece::len)
                    .sum();
                data.div_ceil(node.nlink.max(1))
            }
            _ => 0,
        };
        let files = u64::from(matches!(node.kind, NodeKind::File { .. }));
        Expansion {
            entries: 1,
            bytes,
            files,
        }
    }
}

/// The expansion of tree `root`, refused beyond [`MAX_ENTRIES`].
///
/// # Errors
/// [`Error::Corrupt`] naming the tree if it expands to more than [`MAX_ENTRIES`] entries.
pub fn bounded(repo: &Repository, root: TreeId) -> Result<Expansion> {
    let e = expansion(repo, root);
    if e.entries > MAX_ENTRIES {
        return Err(Error::corrupt(
            format!("tree {}", root.short()),
            format!(
                "it expands to more than {MAX_ENTRIES} entries, which no file system holds (a \
                 crafted or damaged snapshot)"
            ),
        ));
    }
    Ok(e)
}

/// The expansion of tree `root`.
#[must_use]
pub fn expansion(repo: &Repository, root: TreeId) -> Expansion {
    let mut memo: HashMap<TreeId, Expansion> = HashMap::new();
    // A tree is pushed once to be read (None), then again with its contents to be summed
    // once all its subtrees are (children are popped first).
    let mut stack: Vec<(TreeId, Option<Tree>)> = vec![(root, None)];
    while let Some((id, tree)) = stack.pop() {
        if memo.contains_key(&id) {
            continue;
        }
        match tree {
            None => match repo.read_tree(&id) {
                Ok(t) => {
                    let children: Vec<TreeId> =
                        subtrees(&t).filter(|c| !memo.contains_key(c)).collect();
                    stack.push((id, Some(t)));
                    stack.extend(children.into_iter().map(|c| (c, None)));
                }
                Err(_) => {
                    memo.insert(id, Expansion::default());
                }
            },
            Some(t) => {
                let mut sum = Expansion::default();
                for node in &t.entries {
                    sum.add(Expansion::of_node(node));
                    if let NodeKind::Dir { subtree } = &node.kind {
                        sum.add(memo.get(subtree).copied().unwrap_or_default());
                    }
                }
                memo.insert(id, sum);
            }
        }
    }
    memo.get(&root).copied().unwrap_or_default()
}

fn subtrees(t: &Tree) -> impl Iterator<Item = TreeId> + '_ {
    t.entries.iter().filter_map(|n| match &n.kind {
        NodeKind::Dir { subtree } => Some(*subtree),
        _ => None,
    })
}
