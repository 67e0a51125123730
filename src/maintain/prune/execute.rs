//! A prune, step by step through `Storage`, in the order docs/FORMAT.md ("Prune beside
//! writers") argues safe: revoke silent writers; list snapshots, load the index, mark; write
//! the fence end; repack; write the new index; then, for condemned packs no running writer
//! predates, look again at the snapshots committed meanwhile and delete what is still unused.

use std::collections::HashSet;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::format::id::{PackId, SnapshotId};
use crate::repo::lock::{self, RepoLock};
use crate::repo::{Repository, fence, layout};

use super::plan::{self, Fate};
use super::rewrite::{self, NewIndex};
use super::survey;
use super::{PruneOptions, PruneReport};
use crate::maintain::usage;
use crate::progress::Progress;

/// Prunes `repo`. The caller holds a maintenance `lock`; it is checked before each index,
/// fence and delete (new packs nothing names yet are harmless if it was lost).
///
/// # Errors
/// [`Error::Refused`] on an append-only repository; [`Error::Corrupt`] if a snapshot or index
/// file is unreadable or a used pack is missing (nothing is deleted then); I/O errors; a lost
/// lock ([`Error::Revoked`]).
pub fn prune(repo: &Repository, lock: &RepoLock, options: &PruneOptions) -> Result<PruneReport> {
    prune_observed(repo, lock, options, &Progress::default())
}

/// [`prune`], reporting its phases in `progress`: marking (snapshots walked), repacking
/// (bytes copied), deleting (packs), gathering (snapshot files).
///
/// # Errors
/// As [`prune`].
pub fn prune_observed(
    repo: &Repository,
    lock: &RepoLock,
    options: &PruneOptions,
    progress: &Progress,
) -> Result<PruneReport> {
    let started = Instant::now();
    // Prune walks every blob: it needs every index file in memory, not the local index.
    repo.prefer_repository();
    if !options.dry_run {
        super::super::ensure_mutable(repo, "prune")?;
    }
    let me = lock.writer();
    let mut report = PruneReport {
        dry_run: options.dry_run,
        ..PruneReport::default()
    };

    // 1. Silent writers are revoked, so that nothing waits for them.
    let locks = lock::list(repo)?;
    let stale: Vec<&lock::FoundLock> = locks
        .iter()
        .filter(|f| f.lock.as_ref().is_ok_and(|l| l.writer != me) && f.stale_reason().is_some())
        .collect();
    let revocation = if options.dry_run || stale.is_empty() {
        None
    } else {
        lock.ensure_held()?;
        let r = fence::revoke(repo, &stale)?;
        report.writers_revoked = stale.iter().map(|f| f.describe()).collect();
        r
    };

    // 2. Snapshots first, then the index: a snapshot's index files precede it.
    let listing = crate::snapshot::list(repo)?;
    if let Some(e) = listing.unreadable.first() {
        return Err(super::refuse_damage(e));
    }
    if let Some(p) = repo.load_index()?.into_iter().next() {
        return Err(super::refuse_damage(&p.error));
    }
    let old_index_files = repo.index_files();
    let snapshots = listing.snapshots;
    let listing_sets = listing.sets;
    report.snapshots = snapshots.len();
    let seen: HashSet<SnapshotId> = snapshots.iter().map(|l| l.id).collect();
    let index = repo.index();
    let (present, unindexed) = survey::pack_files(repo, &index)?;
    progress.phase("marking", snapshots.len() as u64, 0);
    let used = usage::mark(repo, &index, &snapshots, progress)?;
    // The revocations made here or left unfinished end now: the snapshots were listed after
    // their begins, and what they use is marked.
    let mut revocations = if options.dry_run {
        Vec::new()
    } else {
        fence::Fences::load(repo)?.pending()
    };
    if let Some(r) = revocation {
        revocations.retain(|p| p.writers() != r.writers());
        revocations.push(r);
    }
    for r in revocations {
        lock.ensure_held()?;
        r.finish(
            repo,
            snapshots.iter().map(|l| (&l.id, &l.snapshot)),
            &listing_sets,
        )?;
    }
    let (packs, blobs_used, blobs_unused) = survey::pack_use(&index, &used, &present);
    report.blobs_used = blobs_used;
    report.blobs_unused = blobs_unused;
    let plan = plan::plan(index.epoch(), &packs, &unindexed, options.max_unused).map_err(|m| {
        super::refuse_damage(&Error::corrupt(
            layout::pack_path(&m.0),
            "is missing (or not a regular file), but the index lists it and a snapshot uses it",
        ))
    })?;
    report.packs_before = packs.len();
    report.packs_condemned = plan.count(Fate::Condemn)
        + plan.count(Fate::Repack)
        + unindexed.iter().filter(|u| u.condemned.is_none()).count();
    report.packs_recovered = plan.count(Fate::Recover);
    report.packs_repacked = plan.count(Fate::Repack);
    report.bytes_repacked = plan.bytes_repacked;
    report.unused_bytes_kept = plan.unused_bytes_kept;
    let sizes: std::collections::HashMap<PackId, u64> = packs
        .iter()
        .map(|p| (p.id, p.len))
        .chain(unindexed.iter().map(|u| (u.id, u.len)))
        .collect();
    report.bytes_before = packs
        .iter()
        .filter(|p| p.present)
        .map(|p| p.len)
        .sum::<u64>()
        + unindexed.iter().map(|u| u.len).sum::<u64>();
    if options.dry_run {
        let (oldest, writers) = survey::writers(&locks, &me);
        let gone = plan::deletable(&plan.condemned, oldest);
        account_deletions(&mut report, &gone, &unindexed);
        report.writers_waited_for = if gone.len() < plan.condemned.len() {
            writers
        } else {
            Vec::new()
        };
        report.bytes_after = report.bytes_before + plan.bytes_repacked
            - gone
                .iter()
                .map(|p| sizes.get(p).copied().unwrap_or(0))
                .sum::<u64>();
        report.bytes_reclaimed = report.bytes_before.saturating_sub(report.bytes_after);
        report.duration_ns = elapsed_ns(started);
        return Ok(report);
    }

    // 3. Repack: the used blobs of partly used packs into new, durable packs.
    if plan.bytes_repacked > 0 {
        progress.phase("repacking", 0, plan.bytes_repacked);
    }
    let mut writer = repo.repack_writer()?;
    for pos in 0..index.len() {
        let Some((id, loc, number)) = index.at(pos) else {
            continue;
        };
        if plan.fates[number] == Fate::Repack && used.is_used(pos) {
            writer.add_prepared(loc.kind, repo.read_stored(&id, &loc, writer.scheme())?)?;
            progress.add_bytes(u64::from(loc.stored_len));
        }
    }
    let session = writer.session().cloned();
    let (new_packs, _) = writer.finish_packs()?;
    report.packs_written = new_packs.len();
    let written_bytes: u64 = new_packs.iter().map(|p| p.len).sum();

    // 4. The new index: condemnations, recoveries, repacked packs; the old files go.
    let used_trees = survey::used_trees(&index, &used);
    if plan.rewrite {
        report.index_files_replaced = rewrite::write_index(
            repo,
            lock,
            &index,
            |n| plan.fates[n] != Fate::Drop,
            NewIndex {
                new_packs,
                session: session.as_ref(),
                state: rewrite::state(plan.epoch, plan.condemned.iter().map(|(p, e)| (*p, *e))),
                supersedes: &old_index_files,
            },
        )?;
    }
    drop(index);

    // 5. Sweep: condemned packs no running writer predates, unless a snapshot committed
    //    since the first look uses them.
    lock.ensure_held()?;
    let locks = lock::list(repo)?;
    let (oldest, writers) = survey::writers(&locks, &me);
    let candidates: HashSet<PackId> = plan::deletable(&plan.condemned, oldest)
        .into_iter()
        .collect();
    if candidates.len() < plan.condemned.len() {
        report.writers_waited_for = writers;
    }
    let mut deleted: Vec<PackId> = Vec::new();
    if !candidates.is_empty() {
        let recovered = survey::recheck(repo, &seen, &used_trees, &candidates)?;
        report.packs_recovered += recovered.len();
        let gone: HashSet<PackId> = candidates.difference(&recovered).copied().collect();
        let index = repo.index();
        let current_files = repo.index_files();
        let condemned = index
            .condemned()
            .iter()
            .filter(|(p, _)| !gone.contains(p) && !recovered.contains(p))
            .map(|(p, e)| (*p, *e));
        report.index_files_replaced += rewrite::write_index(
            repo,
            lock,
            &index,
            |n| !gone.contains(&index.packs()[n].0),
            NewIndex {
                new_packs: Vec::new(),
                session: None,
                state: rewrite::state(index.epoch(), condemned),
                supersedes: &current_files,
            },
        )?;
        drop(index);
        deleted = gone.into_iter().collect();
        deleted.sort();
        // A lock check before each batch: deleting a pack that step 8 left out of the index
        // is safe even for a prune revoked meanwhile (docs/FORMAT.md, I6).
        let paths: Vec<String> = deleted.iter().map(layout::pack_path).collect();
        progress.phase("deleting packs", paths.len() as u64, 0);
        for batch in paths.chunks(1000) {
            lock.ensure_held()?;
            repo.remove_all_present(batch)?;
            batch.iter().for_each(|_| progress.file_done(0));
        }
    }
    let deleted_set: HashSet<PackId> = deleted.iter().copied().collect();
    let kept_condemned: Vec<PackId> = plan
        .condemned
        .keys()
        .filter(|p| !deleted_set.contains(p))
        .copied()
        .collect();
    account_deletions(&mut report, &deleted, &unindexed);
    report.packs_waiting = kept_condemned.len().saturating_sub(report.packs_recovered);
    report.bytes_waiting = kept_condemned
        .iter()
        .map(|p| sizes.get(p).copied().unwrap_or(0))
        .sum();

    // 6. Leftovers: void snapshots, and temp files older than a lock's grace period.
    let void = survey::void_snapshots(repo)?;
    if !void.is_empty() {
        lock.ensure_held()?;
        super::gather::remove(repo, lock, &void)?;
        report.void_snapshots_deleted += void.len();
    }
    for file in survey::old_temp_files(repo, &lock.file(), &locks)? {
        lock.ensure_held()?;
        repo.remove_if_present(&file)?;
        report.temp_files_deleted += 1;
    }
    // 7. Settled snapshot files gathered into sets, so that listings stay short.
    let gathered = super::gather::gather(repo, lock, &snapshots, options.gather_at, progress)?;
    report.snapshots_gathered = gathered.snapshots;
    report.snapshot_sets_written = gathered.sets_written;
    report.snapshot_sets_replaced = gathered.sets_replaced;
    repo.load_index()?;
    report.bytes_after = report.bytes_before + written_bytes
        - deleted
            .iter()
            .map(|p| sizes.get(p).copied().unwrap_or(0))
            .sum::<u64>();
    report.bytes_reclaimed = report.bytes_before.saturating_sub(report.bytes_after);
    report.duration_ns = elapsed_ns(started);
    Ok(report)
}

/// Counts deleted packs as indexed or unindexed.
fn account_deletions(report: &mut PruneReport, deleted: &[PackId], unindexed: &[plan::Unindexed]) {
    let orphans: HashSet<PackId> = unindexed.iter().map(|u| u.id).collect();
    report.unindexed_packs_deleted = deleted.iter().filter(|p| orphans.contains(p)).count();
    report.packs_deleted = deleted.len() - report.unindexed_packs_deleted;
}

fn elapsed_ns(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX)
}
