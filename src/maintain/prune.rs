//! `prune`: delete the data no snapshot references.
//!
//! 1. Mark every blob the snapshots use ([`usage`](super::usage)); refuse if any snapshot or
//!    index file is unreadable or a referenced blob is missing, since the unmarked data would
//!    then be deleted.
//! 2. Packs with no used blob are deleted. Packs with some unused blobs are repacked (their
//!    used blobs copied, verified, into new packs), the most wasteful first, until the unused
//!    bytes left are within `--max-unused`.
//! 3. Crash safety: new packs are durable, then new index files naming every surviving pack
//!    (the last one *supersedes* all old index files, so readers ignore those from the moment
//!    it exists), and only then are old index files, unused packs and leftovers deleted. A
//!    crash at any point leaves every snapshot readable; the next prune finishes the job.
//!    A pack this prune writes may be byte-identical to a leftover of an interrupted prune
//!    (same blobs, same order); storage then keeps the existing file, so packs written now
//!    are never among those deleted.
//!
//! Memory: the index, one bit per blob, and one index file's worth of entries while writing.

use std::collections::HashSet;
use std::str::FromStr;
use std::time::Instant;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::crypto::SessionKey;
use crate::format::id::{Id, IndexId, PackId};
use crate::format::index::{IndexedPack, MAX_BLOBS_PER_INDEX};
use crate::format::pack::PackedBlob;
use crate::repo::index::{Index, RecordBuilder};
use crate::repo::lock::RepoLock;
use crate::repo::{Repository, layout};
use crate::storage::{TEMP_DIR, TEMP_PREFIX};

use super::usage;

/// How much unused data may stay in partly used packs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MaxUnused {
    /// At most this share of the repository after pruning, in percent.
    Percent(f64),
    /// At most this many bytes.
    Bytes(u64),
    /// Never repack.
    Unlimited,
}

impl Default for MaxUnused {
    fn default() -> Self {
        MaxUnused::Percent(10.0)
    }
}

impl FromStr for MaxUnused {
    type Err = Error;

    /// `10%`, `0`, `500M`, `2G`, `64k` (powers of 1024) or `unlimited`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::InvalidInput(format!(
                "--max-unused {s:?}: use a percentage (10%), a size (500M, 2G) or `unlimited`"
            ))
        };
        let s = s.trim();
        if s == "unlimited" {
            return Ok(MaxUnused::Unlimited);
        }
        if let Some(p) = s.strip_suffix('%') {
            let p: f64 = p.parse().map_err(|_| bad())?;
            if !(0.0..=100.0).contains(&p) {
                return Err(bad());
            }
            return Ok(if p >= 100.0 {
                MaxUnused::Unlimited
            } else {
                MaxUnused::Percent(p)
            });
        }
        let (num, shift) = match s.char_indices().last() {
            Some((i, c)) if c.is_ascii_alphabetic() => {
                let shift = match c.to_ascii_lowercase() {
                    'b' => 0,
                    'k' => 10,
                    'm' => 20,
                    'g' => 30,
                    't' => 40,
                    _ => return Err(bad()),
                };
                (&s[..i], shift)
            }
            _ => (s, 0),
        };
        let n: u64 = num.parse().map_err(|_| bad())?;
        Ok(MaxUnused::Bytes(n.checked_shl(shift).ok_or_else(bad)?))
    }
}

impl MaxUnused {
    /// The unused bytes allowed when `used` bytes remain.
    fn limit(self, used: u64) -> u64 {
        match self {
            MaxUnused::Unlimited => u64::MAX,
            MaxUnused::Bytes(b) => b,
            MaxUnused::Percent(p) => (used as f64 * p / (100.0 - p)) as u64,
        }
    }
}

/// Prune settings.
#[derive(Clone, Copy, Debug, Default)]
pub struct PruneOptions {
    /// Unused data tolerated in partly used packs.
    pub max_unused: MaxUnused,
    /// Only report what would be done.
    pub dry_run: bool,
}

/// What a prune did (or, with `dry_run`, would do).
#[derive(Clone, Debug, Default, Serialize)]
pub struct PruneReport {
    /// Whether nothing was changed.
    pub dry_run: bool,
    /// Snapshots whose data was kept.
    pub snapshots: usize,
    /// Blobs in use / not in use.
    pub blobs_used: u64,
    /// Blobs no snapshot references.
    pub blobs_unused: u64,
    /// Indexed packs before pruning.
    pub packs_before: usize,
    /// Packs deleted because no blob in them is used.
    pub packs_deleted: usize,
    /// Partly used packs rewritten.
    pub packs_repacked: usize,
    /// New packs written by repacking.
    pub packs_written: usize,
    /// Packs no index names (left by interrupted backups or prunes), deleted.
    pub unindexed_packs_deleted: usize,
    /// Temporary files of interrupted writes, deleted.
    pub temp_files_deleted: usize,
    /// Index files replaced.
    pub index_files_replaced: usize,
    /// Bytes of pack files before.
    pub bytes_before: u64,
    /// Bytes of pack files after.
    pub bytes_after: u64,
    /// Bytes freed.
    pub bytes_reclaimed: u64,
    /// Bytes of used blobs copied by repacking.
    pub bytes_repacked: u64,
    /// Unused bytes left in partly used packs.
    pub unused_bytes_kept: u64,
    /// Wall-clock time.
    pub duration_ns: u64,
}

/// Per-pack accounting.
#[derive(Clone, Copy, Default)]
struct PackUse {
    used_bytes: u64,
    unused_bytes: u64,
    used_blobs: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fate {
    Keep,
    Delete,
    Repack,
}

/// Prunes `repo`. The caller holds the exclusive `lock`; it is checked before each
/// destructive step.
///
/// # Errors
/// [`Error::Refused`] on an append-only repository; [`Error::Corrupt`] if a snapshot or index
/// file is unreadable or a referenced blob is missing (nothing is deleted then); I/O errors.
pub fn prune(repo: &Repository, lock: &RepoLock, options: &PruneOptions) -> Result<PruneReport> {
    let started = Instant::now();
    if !options.dry_run {
        super::ensure_mutable(repo, "prune")?;
    }
    if let Some(p) = repo.load_index()?.into_iter().next() {
        return Err(refuse_damage(&p.error));
    }
    let old_index_files = repo.index_files();
    let listing = crate::snapshot::list(repo)?;
    let snapshots = listing.snapshots;
    if let Some(e) = listing.unreadable.first() {
        return Err(refuse_damage(e));
    }
    let mut report = PruneReport {
        dry_run: options.dry_run,
        snapshots: snapshots.len(),
        ..PruneReport::default()
    };

    // Plan, with the index held still (no reload can shift positions meanwhile).
    let index = repo.index();
    let (present, unindexed) = pack_files(repo, &index)?;
    if let Some((missing, _)) = index.packs().iter().find(|(p, _)| !present.contains(p)) {
        return Err(refuse_damage(&Error::corrupt(
            layout::pack_path(missing),
            "is missing (or not a regular file), but the index lists it",
        )));
    }
    let used = usage::mark(repo, &index, &snapshots)?;
    let packs: Vec<(PackId, u64)> = index.packs().to_vec();
    let mut pack_use = vec![PackUse::default(); packs.len()];
    for pos in 0..index.len() {
        let Some((_, loc, number)) = index.at(pos) else {
            continue;
        };
        let u = &mut pack_use[number];
        if used.is_used(pos) {
            u.used_bytes += u64::from(loc.stored_len);
            u.used_blobs += 1;
            report.blobs_used += 1;
        } else {
            u.unused_bytes += u64::from(loc.stored_len);
            report.blobs_unused += 1;
        }
    }
    let mut fate: Vec<Fate> = pack_use
        .iter()
        .map(|u| {
            if u.used_blobs == 0 {
                Fate::Delete
            } else {
                Fate::Keep
            }
        })
        .collect();
    let used_total: u64 = pack_use.iter().map(|u| u.used_bytes).sum();
    let mut unused_kept: u64 = pack_use
        .iter()
        .zip(&fate)
        .filter(|(_, f)| **f == Fate::Keep)
        .map(|(u, _)| u.unused_bytes)
        .sum();
    let limit = options.max_unused.limit(used_total);
    let mut partly: Vec<usize> = (0..packs.len())
        .filter(|&n| fate[n] == Fate::Keep && pack_use[n].unused_bytes > 0)
        .collect();
    // Most wasteful first: the highest share of unused bytes.
    partly.sort_by(|&a, &b| {
        let share = |n: usize| pack_use[n].unused_bytes as f64 / packs[n].1.max(1) as f64;
        share(b).total_cmp(&share(a))
    });
    for n in partly {
        if unused_kept <= limit {
            break;
        }
        fate[n] = Fate::Repack;
        unused_kept -= pack_use[n].unused_bytes;
        report.bytes_repacked += pack_use[n].used_bytes;
    }
    report.unused_bytes_kept = unused_kept;
    report.packs_before = packs.len();
    report.packs_deleted = fate.iter().filter(|f| **f == Fate::Delete).count();
    report.packs_repacked = fate.iter().filter(|f| **f == Fate::Repack).count();
    let indexed_bytes: u64 = packs.iter().map(|p| p.1).sum();
    let unindexed_bytes: u64 = unindexed.iter().map(|(_, len)| len).sum();
    report.bytes_before = indexed_bytes + unindexed_bytes;
    let freed_packs: u64 = packs
        .iter()
        .zip(&fate)
        .filter(|(_, f)| **f != Fate::Keep)
        .map(|(p, _)| p.1)
        .sum();
    if options.dry_run {
        report.bytes_after = indexed_bytes - freed_packs + report.bytes_repacked;
        report.bytes_reclaimed = report.bytes_before.saturating_sub(report.bytes_after);
        report.unindexed_packs_deleted = unindexed.len();
        report.duration_ns = elapsed_ns(started);
        return Ok(report);
    }

    // 1. Repack: copy the used blobs of partly used packs into new, durable packs.
    let mut writer = repo.repack_writer()?;
    for pos in 0..index.len() {
        let Some((id, loc, number)) = index.at(pos) else {
            continue;
        };
        if fate[number] == Fate::Repack && used.is_used(pos) {
            writer.add_prepared(loc.kind, repo.read_stored(&id, &loc, writer.scheme())?)?;
        }
    }
    let new_session = writer.session().cloned();
    let (new_packs, _) = writer.finish_packs()?;
    report.packs_written = new_packs.len();
    // A new pack can be byte-identical to a leftover of an interrupted prune (same blobs in
    // the same order): storage then kept the existing file, which is now indexed again and
    // must not be deleted below.
    let written: HashSet<PackId> = new_packs.iter().map(|p| p.id).collect();
    let written_bytes: u64 = new_packs.iter().map(|p| p.len).sum();

    // 2. New index files naming every surviving pack; the last supersedes all old ones.
    let rewrite = report.packs_deleted + report.packs_repacked > 0;
    if rewrite {
        lock.ensure_held()?;
        write_index(
            repo,
            &index,
            &fate,
            (new_packs, new_session.as_ref()),
            &old_index_files,
        )?;
        report.index_files_replaced = old_index_files.len();
    }
    drop(index);

    // 3. Only now delete: old index files, then packs nothing indexes any more.
    lock.ensure_held()?;
    if rewrite {
        for name in &old_index_files {
            repo.remove_if_present(&format!("{}/{name}", layout::INDEX_DIR))?;
        }
    }
    for (n, (pack, _)) in packs.iter().enumerate() {
        if fate[n] != Fate::Keep && !written.contains(pack) {
            repo.remove_if_present(&layout::pack_path(pack))?;
        }
    }
    for (pack, _) in unindexed.iter().filter(|(p, _)| !written.contains(p)) {
        repo.remove_if_present(&layout::pack_path(pack))?;
        report.unindexed_packs_deleted += 1;
    }
    report.temp_files_deleted = remove_temp_files(repo)?;
    repo.load_index()?;
    report.bytes_after = indexed_bytes - freed_packs + written_bytes;
    report.bytes_reclaimed = report.bytes_before.saturating_sub(report.bytes_after);
    report.duration_ns = elapsed_ns(started);
    Ok(report)
}

fn elapsed_ns(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

fn refuse_damage(e: &Error) -> Error {
    Error::corrupt(
        "<repository>",
        format!(
            "{e}; prune refuses to run, since it would delete data this file may need (run \
             `chronofs check`)"
        ),
    )
}

/// Pack files with their lengths.
type PackSizes = Vec<(PackId, u64)>;

/// The pack files present, and those of them that no loaded index file names (with their
/// lengths).
fn pack_files(
    repo: &Repository,
    index: &crate::repo::index::Index,
) -> Result<(HashSet<PackId>, PackSizes)> {
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
                let len = repo
                    .storage()
                    .len(&path)
                    .map_err(|e| Error::repo_io("reading", &path, e))?;
                out.push((id, len));
            }
        }
    }
    Ok((present, out))
}

/// Writes the index of the surviving packs: files of at most [`MAX_BLOBS_PER_INDEX`] blobs,
/// the last of which supersedes every old index file. Until that last file exists, readers
/// use the old files (and the new ones, which only repeat surviving packs or name new ones).
fn write_index(
    repo: &Repository,
    index: &Index,
    fate: &[Fate],
    (new_packs, new_session): (Vec<IndexedPack>, Option<&SessionKey>),
    old_files: &[String],
) -> Result<()> {
    // Positions of the surviving packs' blobs, grouped by pack, in file order.
    let mut order: Vec<u32> = (0..index.len())
        .filter(|&pos| index.at(pos).is_some_and(|(_, _, n)| fate[n] == Fate::Keep))
        .filter_map(|pos| u32::try_from(pos).ok())
        .collect();
    let key = |pos: &u32| {
        index
            .at(*pos as usize)
            .map_or((usize::MAX, 0), |(_, loc, n)| (n, loc.offset))
    };
    order.sort_unstable_by_key(key);
    let packs = index.packs();
    let mut batch = RecordBuilder::default();
    let mut current = None;
    let mut pending: Option<(IndexedPack, usize)> = None;
    for pos in order {
        let Some((id, loc, number)) = index.at(pos as usize) else {
            continue;
        };
        if current != Some(number) {
            // A pack's blobs never straddle two files.
            flush_pack(&mut batch, &mut pending, index)?;
            if batch.blob_count() >= MAX_BLOBS_PER_INDEX {
                repo.write_index_record(&batch.take(Vec::new()))?;
            }
            let (id, len) = packs[number];
            pending = Some((
                IndexedPack {
                    id,
                    len,
                    blobs: Vec::new(),
                    session: 0,
                },
                number,
            ));
            current = Some(number);
        }
        if let Some((pack, _)) = pending.as_mut() {
            pack.blobs.push(PackedBlob {
                id,
                kind: loc.kind,
                offset: loc.offset,
                stored_len: loc.stored_len,
                raw_len: loc.raw_len,
                compression: loc.compression,
            });
        }
    }
    flush_pack(&mut batch, &mut pending, index)?;
    for p in new_packs {
        batch.push(p, new_session);
    }
    let supersedes = old_files
        .iter()
        .filter_map(|n| n.parse::<Id>().ok().map(IndexId))
        .collect();
    repo.write_index_record(&batch.take(supersedes)).map(drop)
}

/// Moves the pack being collected into the batch, with its session key.
fn flush_pack(
    batch: &mut RecordBuilder,
    pending: &mut Option<(IndexedPack, usize)>,
    index: &Index,
) -> Result<()> {
    if let Some((pack, number)) = pending.take() {
        let session = index.session_of_number(number);
        batch.push(pack, session.as_deref());
    }
    Ok(())
}

/// Deletes temp files left by interrupted writes (no writer runs: we hold the exclusive lock).
fn remove_temp_files(repo: &Repository) -> Result<usize> {
    let mut n = 0;
    for dir in [
        TEMP_DIR,
        layout::DATA_DIR,
        layout::INDEX_DIR,
        layout::SNAPSHOT_DIR,
    ] {
        let names = repo
            .storage()
            .list(dir)
            .map_err(|e| Error::repo_io("listing", dir, e))?;
        for name in names.iter().filter(|n| n.starts_with(TEMP_PREFIX)) {
            repo.remove_if_present(&format!("{dir}/{name}"))?;
            n += 1;
        }
    }
    Ok(n)
}
