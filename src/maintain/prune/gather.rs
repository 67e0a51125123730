//! Snapshot sets, maintained (docs/FORMAT.md, "Snapshot sets"): `prune` gathers settled
//! snapshot files into sets so that a listing of `snapshots/` stays short however many
//! snapshots there are, and `forget` removes snapshots from the sets that hold them.
//!
//! Every step keeps each snapshot visible to a reader that lists at any moment: a set is
//! written (atomically) before the files or sets it replaces are deleted, and a set that
//! replaces others names them, so a reader that lists both takes the new one only. Both run
//! under the maintenance lock, so no two of them change sets at once; backups only add
//! snapshot files.
//!
//! A maintenance process stopped past the lock's grace period may wake after another one
//! revoked it and changed the snapshots (forgot some, deleted their data). Sets join the
//! fence protocol of "Prune beside writers" so that what it then writes does no harm:
//! - a set names its writer, and its writer checks its lock **after** writing it; a writer
//!   that lost its lock withdraws the set (deleting nothing else), since it may have been
//!   written after the revoking prune listed the snapshots;
//! - a revocation's end accepts the revoked writer's sets that its listing saw; a set not
//!   accepted is **void**: readers ignore it, what it holds and what it replaces, and the
//!   next maintenance deletes it;
//! - nothing is deleted because of a set whose writer was revoked (it may still be withdrawn):
//!   such a set, when accepted, is first **adopted** (written again in the adopter's name,
//!   replacing it).
//!
//! A writer that passed its check after writing a set wrote it before any revocation could
//! list the snapshots, so every end accepts it and it is never withdrawn: what it replaces and
//! holds may then be deleted without checking the lock before each delete.

use std::collections::HashSet;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::id::{SnapshotId, WriterId};
use crate::format::snapshot::Snapshot;
use crate::format::snapshot_listing::SetTable;
use crate::repo::fence::Fences;
use crate::repo::lock::RepoLock;
use crate::repo::snapshot_sets::ListedSets;
use crate::repo::{Repository, layout, lock};
use crate::snapshot::Listed;

/// Members a set is given at most.
const SET_MEMBERS: usize = 50_000;
/// Bytes of snapshot files a set is given at most (sets are read whole).
const SET_BYTES: usize = 32 << 20;
/// Settled snapshot files below which a prune leaves them as they are: listing a few hundred
/// names costs less than reading and writing sets.
pub const GATHER_AT: usize = 1000;

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

/// How many settled snapshot files make a prune gather them: `CHRONOFS_GATHER_AT` if set (for
/// tests and benchmarks), else [`GATHER_AT`].
#[must_use]
pub fn threshold() -> usize {
    std::env::var("CHRONOFS_GATHER_AT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(GATHER_AT)
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

/// The files of `snapshots/` now, with the sets among them sorted out by the fences.
pub(crate) struct Files {
    /// All of them, sorted.
    pub files: Vec<SnapshotId>,
    /// The sets this process knows (it read them when it listed the snapshots).
    pub sets: ListedSets,
    /// The fences, read after the listing.
    pub fences: Fences,
}

impl Files {
    /// Whether deleting may rely on `set`: its writer is this process (`me`), or was never
    /// revoked (a revoked writer may still withdraw it).
    pub(crate) fn trusted(&self, set: &SetTable, me: &WriterId) -> bool {
        set.writer == *me || !self.fences.revoked(&set.writer)
    }

    /// The sets that a trusted listed set (standing or replaced) replaces: leftovers that may
    /// be deleted on its word.
    fn superseded_by_trusted(&self, me: &WriterId) -> HashSet<SnapshotId> {
        [&self.sets.standing, &self.sets.replaced]
            .into_iter()
            .flatten()
            .filter(|t| self.trusted(t, me))
            .flat_map(|t| t.supersedes.iter().copied())
            .collect()
    }

    /// Whether `file` is listed.
    fn has(&self, file: &SnapshotId) -> bool {
        self.files.binary_search(file).is_ok()
    }

    /// What a set written in place of `set` is to replace: `set`, and what it replaced that is
    /// still listed (so that deleting them in any order never brings one back).
    fn replacing(&self, set: &SetTable) -> Vec<SnapshotId> {
        std::iter::once(set.set)
            .chain(set.supersedes.iter().copied().filter(|r| self.has(r)))
            .collect()
    }
}

/// Lists `snapshots/` now, then reads the fences.
///
/// # Errors
/// Listing failures.
pub(crate) fn listed(repo: &Repository) -> Result<Files> {
    let mut files = repo.snapshot_ids()?;
    files.sort_unstable();
    let fences = Fences::load(repo)?;
    let sets = repo.listed_sets(&files, &fences);
    Ok(Files {
        files,
        sets,
        fences,
    })
}

/// Writes a set of `members` replacing `supersedes` in the name of `lock`'s holder, then
/// checks the lock: a holder that lost it withdraws the set and fails. Nothing the set holds
/// or replaces has been deleted yet and no one else deletes anything because of it (its
/// writer is revoked), so withdrawing is always safe; a set left by a crash before that is
/// void or accepted, and the next maintenance deletes or adopts it.
fn write_set(
    repo: &Repository,
    lock: &RepoLock,
    members: Vec<(SnapshotId, Vec<u8>)>,
    supersedes: Vec<SnapshotId>,
) -> Result<SnapshotId> {
    lock.ensure_held()?;
    let id = repo.write_snapshot_set(members, supersedes, lock.writer())?;
    if let Err(e) = lock.ensure_held() {
        let _ = repo.remove_if_present(&layout::snapshot_path(&id));
        return Err(e);
    }
    Ok(id)
}

/// Deletes `files` of `snapshots/` (sets replaced, snapshot files a set holds) that a set
/// this process wrote, or a trusted one, made redundant: safe without a lock check before
/// each (see the module's comment).
fn delete_all<'a>(
    repo: &Repository,
    files: impl IntoIterator<Item = &'a SnapshotId>,
) -> Result<()> {
    let paths: Vec<String> = files.into_iter().map(layout::snapshot_path).collect();
    repo.remove_all_present(&paths)
}

/// What [`settle`] did.
#[derive(Debug, Default, Clone, Copy)]
struct Settled {
    /// Sets replaced: void ones deleted, sets of revoked writers adopted.
    sets_replaced: usize,
}

/// Puts the sets of `snapshots/` in order before anything is deleted because of them: void
/// sets are deleted, and the standing sets of revoked writers are adopted (written again in
/// this process's name, replacing them and what they replace). Returns the listing after.
///
/// # Errors
/// I/O errors; a lost lock.
fn settle(repo: &Repository, lock: &RepoLock, done: &mut Settled) -> Result<Files> {
    let me = lock.writer();
    let now = listed(repo)?;
    let adopt: Vec<Arc<SetTable>> = now
        .sets
        .standing
        .iter()
        .filter(|t| !now.trusted(t, &me))
        .cloned()
        .collect();
    if now.sets.void.is_empty() && adopt.is_empty() {
        return Ok(now);
    }
    // Void sets are ignored by every reader: deleting them is always safe.
    lock.ensure_held()?;
    delete_all(repo, now.sets.void.iter().map(|t| &t.set))?;
    done.sets_replaced += now.sets.void.len();
    for t in &adopt {
        let set = match repo.read_set(&t.set) {
            Ok(s) => s,
            // Withdrawn by its writer meanwhile: what it held is where it was.
            Err(Error::RepoIo { cause, .. }) if cause.kind() == std::io::ErrorKind::NotFound => {
                continue;
            }
            Err(e) => return Err(e),
        };
        let replaced = now.replacing(t);
        write_set(repo, lock, set.members, replaced.clone())?;
        delete_all(repo, &replaced)?;
        done.sets_replaced += 1;
    }
    // Sets read by the adoptions are known: the listing sorts them out.
    listed(repo)
}

/// Gathers settled snapshot files older than a lock's grace period (by the storage's clock,
/// so that no writer is still settling them) into sets, when there are at least `gather_at`;
/// small sets are merged into the new ones; sets
/// replaced by others and left by an interrupted replacement, void sets, and snapshot files a
/// set holds are deleted. The caller holds the maintenance lock `lock` and has listed the
/// snapshots, `listed_then` (so every set is known); a snapshot file written since is left
/// for the next prune.
///
/// # Errors
/// I/O errors; a lost lock.
pub fn gather(
    repo: &Repository,
    lock: &RepoLock,
    listed_then: &[Listed],
    gather_at: usize,
    progress: &crate::progress::Progress,
) -> Result<Gathered> {
    let mut settled_sets = Settled::default();
    let mut now = settle(repo, lock, &mut settled_sets)?;
    let mut done = Gathered {
        sets_replaced: settled_sets.sets_replaced,
        ..Gathered::default()
    };
    let me = lock.writer();
    // Leftovers of a replacement that was interrupted.
    let superseded = now.superseded_by_trusted(&me);
    let leftovers: Vec<SnapshotId> = now
        .sets
        .replaced
        .iter()
        .map(|t| t.set)
        .filter(|s| superseded.contains(s))
        .collect();
    lock.ensure_held()?;
    delete_all(repo, &leftovers)?;
    done.sets_replaced += leftovers.len();
    now.files.retain(|f| !leftovers.contains(f));
    let Some(storage_now) = super::survey::storage_now(repo, &lock.file())? else {
        return Ok(done);
    };
    let limit = i64::try_from(lock::stale_after().as_nanos()).unwrap_or(i64::MAX);
    let in_sets: HashSet<SnapshotId> = [&now.sets.standing, &now.sets.replaced, &now.sets.void]
        .into_iter()
        .flatten()
        .map(|s| s.set)
        .collect();
    // Snapshots a standing set holds: a file of one is a leftover of an interrupted gathering.
    let members: HashSet<SnapshotId> = now
        .sets
        .standing
        .iter()
        .filter(|t| now.trusted(t, &me))
        .flat_map(|s| s.members.iter().copied())
        .collect();
    let records: std::collections::HashMap<SnapshotId, &Snapshot> =
        listed_then.iter().map(|l| (l.id, &l.snapshot)).collect();
    let mut singles: Vec<(i64, SnapshotId)> = Vec::new();
    let mut held = Vec::new();
    for (name, time) in repo
        .storage()
        .list_times(layout::SNAPSHOT_DIR)
        .map_err(|e| Error::repo_io("listing", layout::SNAPSHOT_DIR, e))?
    {
        let Ok(id) = name.parse::<crate::format::id::Id>().map(SnapshotId) else {
            continue;
        };
        if in_sets.contains(&id) || storage_now.saturating_sub(time) <= limit {
            continue;
        }
        if members.contains(&id) {
            held.push(id);
            continue;
        }
        if let Some(s) = records.get(&id)
            && settled(&now.fences, &id, s)
        {
            singles.push((s.time_ns, id));
        }
    }
    lock.ensure_held()?;
    delete_all(repo, &held)?;
    if singles.is_empty() || singles.len() < gather_at {
        return Ok(done);
    }
    // In time order, so that a set holds neighbouring snapshots and a retention policy
    // (which forgets old ones) rewrites few sets.
    singles.sort_unstable();
    progress.phase("gathering snapshot files", singles.len() as u64, 0);
    let mut small: Vec<Arc<SetTable>> = now
        .sets
        .standing
        .iter()
        .filter(|s| s.members.len() < SET_MEMBERS / 2)
        .cloned()
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
            progress.file_done(0);
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
            replaced.extend(now.replacing(s));
            small.pop();
        }
        write_set(repo, lock, members, replaced.clone())?;
        done.sets_written += 1;
        delete_all(repo, &replaced)?;
        done.sets_replaced += replaced.len();
        delete_all(repo, &gathered)?;
        done.snapshots += gathered.len();
    }
    Ok(done)
}

/// Removes the snapshots `ids`: their files, and their places in sets (a set that holds one
/// of them is written again without it, replacing the old one, which is then deleted). The
/// caller holds the maintenance lock `lock` and has listed the snapshots (so every set is
/// known).
///
/// # Errors
/// I/O errors, naming the file; a lost lock.
pub fn remove(repo: &Repository, lock: &RepoLock, ids: &[SnapshotId]) -> Result<()> {
    let doomed: HashSet<SnapshotId> = ids.iter().copied().collect();
    let now = settle(repo, lock, &mut Settled::default())?;
    let me = lock.writer();
    let superseded = now.superseded_by_trusted(&me);
    for t in now.sets.replaced.iter().chain(&now.sets.standing) {
        if !t.members.iter().any(|m| doomed.contains(m)) {
            continue;
        }
        lock.ensure_held()?;
        if superseded.contains(&t.set) {
            // Left by an interrupted replacement: the set that replaces it is rewritten.
            delete_all(repo, [&t.set])?;
            continue;
        }
        if now.sets.replaced.iter().any(|r| r.set == t.set) {
            // Replaced only by a set a revoked writer may still withdraw: left as it is.
            continue;
        }
        let set = repo.read_set(&t.set)?;
        let keep: Vec<(SnapshotId, Vec<u8>)> = set
            .members
            .into_iter()
            .filter(|(m, _)| !doomed.contains(m))
            .collect();
        let replaced = now.replacing(t);
        if keep.is_empty() {
            // Nothing left to hold; what it replaced goes with it (it is not listed, or
            // replaced by it and so holding nothing more).
            lock.ensure_held()?;
            delete_all(repo, replaced.iter().rev())?;
        } else {
            write_set(repo, lock, keep, replaced.clone())?;
            delete_all(repo, &replaced)?;
        }
    }
    // A forgotten snapshot's file: deleting it late (after a revocation) only forgets it.
    lock.ensure_held()?;
    delete_all(repo, ids.iter().filter(|id| now.has(id)))
}
