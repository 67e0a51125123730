//! What a prune looks at: the pack files present, what each indexed pack holds that the
//! snapshots use, the writers that run, the snapshots committed since the first look, and the
//! leftovers of interrupted writes.

use std::collections::HashSet;

use crate::error::{Error, Result};
use crate::format::id::{BlobId, PackId, SnapshotId, TreeId, WriterId};
use crate::format::pack::BlobKind;
use crate::format::tree::{NodeKind, Piece};
use crate::repo::index::Index;
use crate::repo::lock::{self, FoundLock};
use crate::repo::{Repository, layout};
use crate::snapshot::Listed;
use crate::storage::{TEMP_DIR, TEMP_PREFIX};

use super::super::usage::Usage;
use super::plan::{PackUse, Unindexed};

/// The pack files present, and those of them that no loaded index file names (with their
/// lengths).
///
/// # Errors
/// Listing failures.
pub fn pack_files(repo: &Repository, index: &Index) -> Result<(HashSet<PackId>, Vec<Unindexed>)> {
    let mut present = HashSet::new();
    let mut out = Vec::new();
    for dir in layout::pack_dirs() {
        for name in repo.list_ids(&dir)? {
            let Ok(id) = name.parse::<PackId>() else {
                continue;
            };
            present.insert(id);
            if !index.has_pack(&id) {
                let path = layout::pack_path(&id);
                let len = match repo.storage().len(&path) {
                    Ok(len) => len,
                    // Deleted meanwhile (by a prune we revoked).
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(Error::repo_io("reading", &path, e)),
                };
                out.push(Unindexed {
                    id,
                    len,
                    condemned: index.condemned_at(&id),
                });
            }
        }
    }
    Ok((present, out))
}

/// Per indexed pack (in the index's order), what its blobs are to the snapshots; and the
/// number of blobs used and unused.
#[must_use]
pub fn pack_use(
    index: &Index,
    used: &Usage,
    present: &HashSet<PackId>,
) -> (Vec<PackUse>, u64, u64) {
    // Copies of blobs another pack holds too (two hosts stored them at once) are unused.
    let mut packs: Vec<PackUse> = index
        .packs()
        .iter()
        .enumerate()
        .map(|(n, (id, len))| PackUse {
            id: *id,
            len: *len,
            present: present.contains(id),
            condemned: index.condemned_at(id),
            used_bytes: 0,
            unused_bytes: index.duplicate_bytes(n),
            used_blobs: 0,
        })
        .collect();
    let (mut blobs_used, mut blobs_unused) = (0, 0);
    for pos in 0..index.len() {
        let Some((_, loc, number)) = index.at(pos) else {
            continue;
        };
        let p = &mut packs[number];
        if used.is_used(pos) {
            p.used_bytes += u64::from(loc.stored_len);
            p.used_blobs += 1;
            blobs_used += 1;
        } else {
            p.unused_bytes += u64::from(loc.stored_len);
            blobs_unused += 1;
        }
    }
    (packs, blobs_used, blobs_unused)
}

/// The ids of the tree blobs the snapshots use, sorted: what the second look skips.
#[must_use]
pub fn used_trees(index: &Index, used: &Usage) -> Vec<BlobId> {
    let mut out: Vec<BlobId> = (0..index.len())
        .filter(|&pos| used.is_used(pos))
        .filter_map(|pos| index.at(pos))
        .filter(|(_, loc, _)| loc.kind == BlobKind::Tree)
        .map(|(id, _, _)| id)
        .collect();
    out.sort();
    out
}

/// The writers other than `me` that hold a lock: the lowest basis among them (`None` if there
/// are none; a writer that has not loaded its index yet, or whose lock cannot be read, counts
/// as basis 0), and a description of each.
#[must_use]
pub fn writers(locks: &[FoundLock], me: &WriterId) -> (Option<u64>, Vec<String>) {
    let mut oldest: Option<u64> = None;
    let mut described = Vec::new();
    for f in locks {
        let basis = match &f.lock {
            Ok(l) if l.writer == *me => continue,
            Ok(l) => l.basis.unwrap_or(0),
            Err(_) => 0,
        };
        oldest = Some(oldest.map_or(basis, |o| o.min(basis)));
        described.push(f.describe());
    }
    (oldest, described)
}

/// The second look: walks the snapshots listed now that the first look (`seen`) did not see,
/// skipping the trees it walked (`used_trees`), and returns which of the `candidates` they use.
/// The snapshots are listed before the index is loaded again, so the index names everything
/// they reference.
///
/// # Errors
/// Listing and read failures; a referenced blob missing from the index.
pub fn recheck(
    repo: &Repository,
    seen: &HashSet<SnapshotId>,
    used_trees: &[BlobId],
    candidates: &HashSet<PackId>,
) -> Result<HashSet<PackId>> {
    let listing = crate::snapshot::list(repo)?;
    if let Some(e) = listing.unreadable.first() {
        return Err(super::refuse_damage(e));
    }
    repo.load_full_index_strict()?;
    let new: Vec<&Listed> = listing
        .snapshots
        .iter()
        .filter(|l| !seen.contains(&l.id))
        .collect();
    let mut recovered = HashSet::new();
    let mut walked: HashSet<TreeId> = HashSet::new();
    let mut uses = |id: &BlobId| -> Result<()> {
        let loc = repo.locate(id)?;
        if candidates.contains(&loc.pack) {
            recovered.insert(loc.pack);
        }
        Ok(())
    };
    for s in new {
        let mut stack = vec![s.snapshot.root];
        while let Some(tree_id) = stack.pop() {
            let blob = BlobId::from(tree_id);
            if used_trees.binary_search(&blob).is_ok() || !walked.insert(tree_id) {
                continue;
            }
            uses(&blob)?;
            for node in repo.read_tree(&tree_id)?.entries {
                match node.kind {
                    NodeKind::Dir { subtree } => stack.push(subtree),
                    NodeKind::File { content } => {
                        for piece in content {
                            if let Piece::Data { id, .. } = piece {
                                uses(&BlobId::from(id))?;
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(recovered)
}

/// The storage's "now": the modification time of our own lock file, just written or
/// refreshed (never later than the real now).
pub(crate) fn storage_now(repo: &Repository, my_file: &str) -> Result<Option<i64>> {
    let times = repo
        .storage()
        .list_times(layout::LOCK_DIR)
        .map_err(|e| Error::repo_io("listing", layout::LOCK_DIR, e))?;
    let mine = my_file.rsplit('/').next().unwrap_or(my_file);
    Ok(times.into_iter().find(|(n, _)| n == mine).map(|(_, t)| t))
}

/// Temporary files of interrupted writes: older than a lock's grace period by the storage's
/// clock, and not of a process that holds one of `locks` (a temp file is named after its
/// writer's PID, `.tmp-PID-…`; a writer filling a pack slowly, or stopped for a while, keeps
/// its file). A name that does not say its PID is left while any other lock is held.
///
/// # Errors
/// Listing failures.
pub fn old_temp_files(
    repo: &Repository,
    my_lock_file: &str,
    locks: &[FoundLock],
) -> Result<Vec<String>> {
    let Some(now) = storage_now(repo, my_lock_file)? else {
        return Ok(Vec::new());
    };
    let others: Vec<&FoundLock> = locks.iter().filter(|f| f.file != my_lock_file).collect();
    let held_by = |name: &str| {
        let pid = name
            .strip_prefix(TEMP_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok());
        match pid {
            Some(pid) => others
                .iter()
                .any(|f| f.lock.as_ref().map_or(true, |l| l.pid == pid)),
            None => !others.is_empty(),
        }
    };
    let limit = i64::try_from(lock::stale_after().as_nanos()).unwrap_or(i64::MAX);
    let mut out = Vec::new();
    for dir in [
        TEMP_DIR,
        layout::DATA_DIR,
        layout::INDEX_DIR,
        layout::SNAPSHOT_DIR,
    ] {
        let names = repo
            .storage()
            .list_times(dir)
            .map_err(|e| Error::repo_io("listing", dir, e))?;
        out.extend(
            names
                .into_iter()
                .filter(|(n, t)| {
                    n.starts_with(TEMP_PREFIX) && now.saturating_sub(*t) > limit && !held_by(n)
                })
                .map(|(n, _)| format!("{dir}/{n}")),
        );
    }
    Ok(out)
}

/// Snapshots that are void (committed too late by a revoked writer), from a listing taken
/// now: the table leaves them out, and names them (their records come from the snapshot
/// catalog, not from reading every snapshot file).
///
/// # Errors
/// Listing failures.
pub fn void_snapshots(repo: &Repository) -> Result<Vec<SnapshotId>> {
    if crate::repo::fence::Fences::load(repo)?.is_empty() {
        return Ok(Vec::new());
    }
    Ok(repo.snapshot_table_listed_now()?.void().to_vec())
}
