//! Which indexed blobs the snapshots use: one bit per index entry, set by walking the trees
//! of every snapshot. A tree already marked is not walked again, so shared subtrees cost
//! nothing. Memory: one bit per blob plus one decoded tree at a time.

use crate::error::{Error, Result};
use crate::format::id::{BlobId, TreeId};
use crate::format::tree::{NodeKind, Piece, Tree};
use crate::repo::Repository;
use crate::repo::index::Index;
use crate::snapshot::Listed;

/// One bit per index position.
pub struct Usage {
    bits: Vec<u64>,
}

impl Usage {
    /// Whether the blob at index position `pos` is used.
    #[must_use]
    pub fn is_used(&self, pos: usize) -> bool {
        self.bits
            .get(pos / 64)
            .is_some_and(|w| w & (1 << (pos % 64)) != 0)
    }

    /// Marks `pos`; returns whether it was already marked.
    fn mark(&mut self, pos: usize) -> bool {
        let (word, bit) = (pos / 64, 1u64 << (pos % 64));
        let was = self.bits[word] & bit != 0;
        self.bits[word] |= bit;
        was
    }
}

/// Walks every snapshot in `snapshots` against `index` (reading trees at the locations it
/// gives, so a concurrent reload of the repository's index cannot shift positions).
///
/// # Errors
/// A referenced blob missing from the index, or a tree that cannot be read: the caller must
/// not delete anything then.
pub fn mark(
    repo: &Repository,
    index: &Index,
    snapshots: &[Listed],
    progress: &crate::progress::Progress,
) -> Result<Usage> {
    let mut usage = Usage {
        bits: vec![0; index.len().div_ceil(64)],
    };
    let missing = |snapshot: &str, id: &BlobId| {
        Error::corrupt(
            format!("snapshot {snapshot}"),
            format!(
                "it references blob {} which is not in the index (run `chronofs check`)",
                id.short()
            ),
        )
    };
    let mut stack: Vec<TreeId> = Vec::new();
    for s in snapshots {
        progress.file_done(0);
        stack.push(s.snapshot.root);
        while let Some(tree_id) = stack.pop() {
            let id = BlobId::from(tree_id);
            let pos = index.position(&id).ok_or_else(|| missing(&s.name, &id))?;
            if usage.mark(pos) {
                continue;
            }
            let (_, loc, _) = index.at(pos).ok_or_else(|| missing(&s.name, &id))?;
            let bytes = repo.read_blob_at(&id, &loc)?;
            let tree = Tree::decode(&bytes)
                .map_err(|e| Error::corrupt(format!("tree {}", id.short()), e.to_string()))?;
            for node in tree.entries {
                match node.kind {
                    NodeKind::Dir { subtree } => stack.push(subtree),
                    NodeKind::File { content } => {
                        for piece in content {
                            if let Piece::Data { id, .. } = piece {
                                let blob = BlobId::from(id);
                                let pos = index
                                    .position(&blob)
                                    .ok_or_else(|| missing(&s.name, &blob))?;
                                usage.mark(pos);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(usage)
}
