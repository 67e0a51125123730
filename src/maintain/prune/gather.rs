//! Snapshot sets, maintained (docs/FORMAT.md, "Snapshot sets"): `prune` gathers settled
//! snapshot files into sets so that a listing of `snapshots/` stays short however many
//! snapshots there are, and `forget` removes snapshots from the sets that hold them.
//!
//! Every step keeps each snapshot visible to a reader that lists at any moment: a set is
//! written (atomically) before the files or sets it replaces are deleted, and a set that
//! replaces others names them, so a reader that lists both takes the new one only. Both run
//! under the maintenance lock, so no two of them change sets at once; backups only add
//! snapshot files.

use std::collections::HashSet;
use std::sync::Arc;

use crate::error::Result;
use crate::format::id::SnapshotId;
use crate::format::snapshot::Snapshot;
use crate::format::snapshot_listing::SetTable;
use crate::repo::fence::Fences;
use crate::repo::lock::RepoLock;
use crate::repo::{Repository, layout, lock};
use crate::snapshot::Listed;

/// Members a set is given at most.
const SET_MEMBERS: usize = 50_000;
/// Bytes of snapshot files a set is given at most (sets are read whole).
const SET_BYTES: usize = 32 << 20;
/// Gathering is off unless `CHRONOFS_GATHER_AT` names how many settled snapshot files there
/// must be (1,000 is a good value): a set written by a prune that was stopped past the lock's
/// grace period while another prune ran can hold snapshots that prune forgot (and whose data
/// it deleted). Sets must first join the fence protocol that voids such late writes
/// (docs/FORMAT.md, "Snapshot sets"); until then they are an experiment.
const GATHER_ENV: &str = "CHRONOFS_GATHER_AT";

/// What [`gather`] did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Gathered {
    /// Snapshot files gathered into sets (their files deleted).
    pub snapshots: usize,
    /// Sets written.
    pub sets_written: usize,
    /// Sets replaced (merged into a new one, or left over by an interrupted replacement).
    pub sets_replaced: usize,
}

/// The threshold of settled snapshot files, if gathering is on (see [`GATHER_ENV`]).
fn gather_at() -> Option<usize> {
    std::env::var(GATHER_ENV).ok().and_then(|s| s.parse().ok())
}

/// Whether snapshot `id` is settled: no revocation can still void it (its writer was not
/// revoked, or a finished revocation accepted it).
fn settled(fences: &Fences, id: &SnapshotId, s: &Snapshot) -> bool {
    let Some(writer) = s.commit.map(|c| c.writer) else {
        return true;
    };
    let mut revoking = fences.revoking(&writer).peekable();
    revoking.peek().is_none()
        || (!fences.voids(id, Some(&writer))
            && revoking.any(|f| f.accepted.as_ref().is_some_and(|a| a.contains(id))))
}

/// The files of `snapshots/` now.
pub(crate) struct Files {
    /// All of them, sorted.
    pub files: Vec<SnapshotId>,
    /// Those that are sets this process knows (it read them when it listed the snapshots).
    pub sets: Vec<Arc<SetTable>>,
    /// The sets another of them replaces (left by an interrupted replacement).
    pub superseded: HashSet<SnapshotId>,
}

/// Lists `snapshots/` now.
///
/// # Errors
/// Listing failures.
pub(crate) fn listed(repo: &Repository) -> Result<Files> {
    let mut files = repo.snapshot_ids()?;
    files.sort_unstable();
    let sets: Vec<Arc<SetTable>> = files.iter().filter_map(|f| repo.known_set(f)).collect();
    let superseded = sets
        .iter()
        .flat_map(|s| s.supersedes.iter().copied())
        .collect();
    Ok(Files {
        files,
        sets,
        superseded,
    })
}

/// Gathers settled snapshot files older than a lock's grace period (by the storage's clock,
/// so that no writer is still settling them) into sets, when gathering is on and there are at
/// least as many as it says ([`GATHER_ENV`]); small sets are merged into the new ones; sets replaced by others and left
/// by an interrupted replacement are deleted. The caller holds the maintenance lock `lock`
/// and has listed the snapshots, `listed` (so every set is known); a snapshot file written
/// since is left for the next prune.
///
/// # Errors
/// I/O errors; a lost lock.
pub fn gather(repo: &Repository, lock: &RepoLock, listed_then: &[Listed]) -> Result<Gathered> {
    let mut done = Gathered::default();
    let Files {
        sets, superseded, ..
    } = listed(repo)?;
    // Leftovers of a replacement that was interrupted.
    for s in sets.iter().filter(|s| superseded.contains(&s.set)) {
        lock.ensure_held()?;
        repo.remove_if_present(&layout::snapshot_path(&s.set))?;
        done.sets_replaced += 1;
    }
    let Some(now) = super::survey::storage_now(repo, &lock.file())? else {
        return Ok(done);
    };
    let limit = i64::try_from(lock::stale_after().as_nanos()).unwrap_or(i64::MAX);
    let in_sets: HashSet<SnapshotId> = sets.iter().map(|s| s.set).collect();
    // Snapshots a standing set holds: a file of one is a leftover of an interrupted gathering.
    let members: HashSet<SnapshotId> = sets
        .iter()
        .filter(|s| !superseded.contains(&s.set))
        .flat_map(|s| s.members.iter().copied())
        .collect();
    let fences = Fences::load(repo)?;
    let records: std::collections::HashMap<SnapshotId, &Snapshot> =
        listed_then.iter().map(|l| (l.id, &l.snapshot)).collect();
    let mut singles: Vec<(i64, SnapshotId)> = Vec::new();
    for (name, time) in repo
        .storage()
        .list_times(layout::SNAPSHOT_DIR)
        .map_err(|e| crate::Error::repo_io("listing", layout::SNAPSHOT_DIR, e))?
    {
        let Ok(id) = name.parse::<crate::format::id::Id>().map(SnapshotId) else {
            continue;
        };
        if in_sets.contains(&id) || now.saturating_sub(time) <= limit {
            continue;
        }
        if members.contains(&id) {
            lock.ensure_held()?;
            repo.remove_if_present(&layout::snapshot_path(&id))?;
            continue;
        }
        if let Some(s) = records.get(&id)
            && settled(&fences, &id, s)
        {
            singles.push((s.time_ns, id));
        }
    }
    if gather_at().is_none_or(|at| singles.len() < at) {
        return Ok(done);
    }
    // In time order, so that a set holds neighbouring snapshots and a retention policy
    // (which forgets old ones) rewrites few sets.
    singles.sort_unstable();
    let mut small: Vec<Arc<SetTable>> = sets
        .into_iter()
        .filter(|s| !superseded.contains(&s.set) && s.members.len() < SET_MEMBERS / 2)
        .collect();
    let mut queue = singles.into_iter().map(|(_, id)| id).peekable();
    while queue.peek().is_some() {
        let mut members: Vec<(SnapshotId, Vec<u8>)> = Vec::new();
        let mut bytes = 0;
        while members.len() < SET_MEMBERS && bytes < SET_BYTES {
            let Some(id) = queue.next() else { break };
            let body = repo.snapshot_file_bytes(&id)?;
            bytes += body.len();
            members.push((id, body));
        }
        let gathered: Vec<SnapshotId> = members.iter().map(|(id, _)| *id).collect();
        // Small sets that fit, merged whole.
        let mut replaced = Vec::new();
        while let Some(s) = small.last()
            && members.len() + s.members.len() <= SET_MEMBERS
        {
            let set = repo.read_set(&s.set)?;
            let set_bytes: usize = set.members.iter().map(|(_, b)| b.len()).sum();
            if bytes + set_bytes > SET_BYTES {
                break;
            }
            bytes += set_bytes;
            members.extend(set.members);
            replaced.push(s.set);
            small.pop();
        }
        lock.ensure_held()?;
        repo.write_snapshot_set(members, replaced.clone())?;
        done.sets_written += 1;
        for s in &replaced {
            lock.ensure_held()?;
            repo.remove_if_present(&layout::snapshot_path(s))?;
            done.sets_replaced += 1;
        }
        for id in &gathered {
            lock.ensure_held()?;
            repo.remove_if_present(&layout::snapshot_path(id))?;
        }
        done.snapshots += gathered.len();
    }
    Ok(done)
}

/// Removes the snapshots `ids`: their files, and their places in sets (a set that holds one
/// of them is written again without it, replacing the old one, which is then deleted). The
/// caller holds the maintenance lock and has listed the snapshots (so every set is known).
///
/// # Errors
/// I/O errors, naming the file.
pub fn remove(repo: &Repository, ids: &[SnapshotId]) -> Result<()> {
    let doomed: HashSet<SnapshotId> = ids.iter().copied().collect();
    let Files {
        files,
        sets,
        superseded,
    } = listed(repo)?;
    for s in &sets {
        if !s.members.iter().any(|m| doomed.contains(m)) {
            continue;
        }
        if superseded.contains(&s.set) {
            // Left by an interrupted replacement: the set that replaces it is rewritten.
            repo.remove_if_present(&layout::snapshot_path(&s.set))?;
            continue;
        }
        let set = repo.read_set(&s.set)?;
        let keep: Vec<(SnapshotId, Vec<u8>)> = set
            .members
            .into_iter()
            .filter(|(m, _)| !doomed.contains(m))
            .collect();
        if !keep.is_empty() {
            // What the old set replaced stays replaced (should it still be listed).
            let mut replaced: Vec<SnapshotId> = s
                .supersedes
                .iter()
                .filter(|r| files.binary_search(r).is_ok())
                .copied()
                .collect();
            replaced.push(s.set);
            repo.write_snapshot_set(keep, replaced)?;
        }
        repo.remove_if_present(&layout::snapshot_path(&s.set))?;
    }
    ids.iter()
        .filter(|id| files.binary_search(id).is_ok())
        .try_for_each(|id| repo.remove_if_present(&layout::snapshot_path(id)))
}
