//! Writing a prune's index: the packs that stay named (live or condemned) of the index files
//! it replaces, plus the packs repacking wrote, in files of at most [`MAX_BLOBS_PER_INDEX`]
//! blobs; the last file carries the prune state and supersedes the files the prune replaces.
//! Until that last file exists, readers use the old files (and the new ones, which only repeat
//! packs that exist or name new ones); from then on they ignore the superseded files, which
//! are deleted afterwards.
//!
//! A file is replaced only if it must be or is small: it names a pack that goes, carries a
//! prune state, or holds fewer than half the blobs of a full file (small files are merged
//! into full ones). Others stay as they are, so that clients' local indexes need read only
//! what changed (docs/FORMAT.md, "Prune beside writers", step 5).

use std::collections::HashSet;

use crate::error::Result;
use crate::format::crypto::SessionKey;
use crate::format::id::{Id, IndexId};
use crate::format::index::{
    Condemned, Index as IndexRecord, IndexedPack, MAX_BLOBS_PER_INDEX, PruneState,
};
use crate::format::pack::PackedBlob;
use crate::repo::Repository;
use crate::repo::index::{Index, IndexFileInfo, RecordBuilder};
use crate::repo::lock::RepoLock;

/// What the new index holds besides the surviving packs of the old one.
pub struct NewIndex<'a> {
    /// Packs repacking wrote, sealed in `session`.
    pub new_packs: Vec<IndexedPack>,
    /// Their session key (encrypted repositories).
    pub session: Option<&'a SessionKey>,
    /// The prune state after this step.
    pub state: PruneState,
    /// The index files the new one replaces.
    pub supersedes: &'a [String],
}

/// Index files holding at least this many blobs are left in place when nothing in them
/// changes; `CHRONOFS_INDEX_KEEP_BLOBS` overrides it (for tests, whose files are small).
fn keep_at_least() -> usize {
    std::env::var("CHRONOFS_INDEX_KEEP_BLOBS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(MAX_BLOBS_PER_INDEX / 2)
}

/// The index files in force that stay as they are: large enough, no prune state, and every
/// pack they name kept.
fn untouched<'a>(
    index: &'a Index,
    keeps: &impl Fn(usize) -> bool,
) -> impl Iterator<Item = &'a IndexFileInfo> {
    let least = keep_at_least();
    index.files().iter().filter(move |f| {
        !f.prune
            && f.blobs >= least
            && f.packs
                .iter()
                .all(|p| index.pack_number(p).is_some_and(keeps))
    })
}

/// Writes the index of the packs of `index` for which `keeps(pack number)` holds, plus `new`,
/// then deletes the superseded files; index files that need no change stay. Checks the lock
/// before each write and delete. Returns how many files were replaced.
///
/// # Errors
/// Write failures, or a lost lock.
pub fn write_index(
    repo: &Repository,
    lock: &RepoLock,
    index: &Index,
    keeps: impl Fn(usize) -> bool,
    new: NewIndex<'_>,
) -> Result<usize> {
    let staying: Vec<&IndexFileInfo> = untouched(index, &keeps).collect();
    // The numbers of the packs those files name, and their names.
    let stays: HashSet<usize> = staying
        .iter()
        .flat_map(|f| f.packs.iter().filter_map(|p| index.pack_number(p)))
        .collect();
    let staying: HashSet<&str> = staying.iter().map(|f| f.name.as_str()).collect();
    // Positions of the surviving packs' blobs not in a file that stays, grouped by pack, in
    // file order.
    let mut order: Vec<u32> = (0..index.len())
        .filter(|&pos| {
            index
                .at(pos)
                .is_some_and(|(_, _, n)| keeps(n) && !stays.contains(&n))
        })
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
    let mut written = Vec::new();
    let mut pending: Option<(IndexedPack, usize)> = None;
    for pos in order {
        let Some((id, loc, number)) = index.at(pos as usize) else {
            continue;
        };
        if pending.as_ref().is_none_or(|(_, n)| *n != number) {
            // A pack's blobs never straddle two files.
            flush_pack(&mut batch, &mut pending, index);
            if batch.blob_count() >= MAX_BLOBS_PER_INDEX {
                write_held(repo, lock, &batch.take(Vec::new()), &mut written)?;
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
    flush_pack(&mut batch, &mut pending, index);
    for p in new.new_packs {
        batch.push(p, new.session);
    }
    let replaced: Vec<&String> = new
        .supersedes
        .iter()
        .filter(|n| !staying.contains(n.as_str()))
        .collect();
    let supersedes = replaced
        .iter()
        .filter_map(|n| n.parse::<Id>().ok().map(IndexId))
        .collect();
    let mut last = batch.take(supersedes);
    last.prune = Some(new.state);
    write_held(repo, lock, &last, &mut written)?;
    for name in &replaced {
        lock.ensure_held()?;
        repo.remove_if_present(&format!("{}/{name}", crate::repo::layout::INDEX_DIR))?;
    }
    Ok(replaced.len())
}

/// Writes `record` under the lock, and looks at the lock again once it is written: a prune
/// stopped between its check and its write for longer than the grace period has been revoked,
/// and the prune that revoked it may since have deleted packs the record still names. Then the
/// files of this index (`written`, which gains this one) are withdrawn before the error is
/// returned, and the files they were to supersede, still present, stand (docs/FORMAT.md, I6).
fn write_held(
    repo: &Repository,
    lock: &RepoLock,
    record: &IndexRecord,
    written: &mut Vec<IndexId>,
) -> Result<()> {
    lock.ensure_held()?;
    written.push(repo.write_index_record(record)?);
    if let Err(e) = lock.ensure_held() {
        for id in written.iter() {
            let _ = repo.remove_if_present(&crate::repo::layout::index_path(id));
        }
        return Err(e);
    }
    Ok(())
}

/// The prune state for `epoch` and these condemned packs, in a stable order.
#[must_use]
pub fn state(
    epoch: u64,
    condemned: impl Iterator<Item = (crate::format::id::PackId, u64)>,
) -> PruneState {
    let mut condemned: Vec<Condemned> = condemned
        .map(|(pack, epoch)| Condemned { pack, epoch })
        .collect();
    condemned.sort_by_key(|c| c.pack);
    PruneState { epoch, condemned }
}

/// Moves the pack being collected into the batch, with its session key.
fn flush_pack(
    batch: &mut RecordBuilder,
    pending: &mut Option<(IndexedPack, usize)>,
    index: &Index,
) {
    if let Some((pack, number)) = pending.take() {
        let session = index.session_of_number(number);
        batch.push(pack, session.as_deref());
    }
}
