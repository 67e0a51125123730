//! `copy`: snapshots from one repository to another (another disk, an NFS share), for
//! disaster recovery.
//!
//! Per snapshot, oldest first: skip it if the destination already has a snapshot file of the
//! same id (it is then complete there: snapshot files are written last); otherwise walk its
//! trees in the source and copy every tree and chunk the destination lacks, as stored (no
//! recompression; each blob is verified as it is read), through the destination's normal
//! writer (packs, then index). Then read every new pack back from the destination and verify
//! it, and only then commit the snapshot there, under the copy's lock
//! ([`crate::repo::commit`]), so that a prune running beside the copy can tell a late commit:
//! time, host, paths, tags and summary are kept, and the snapshot names the copy as its
//! writer, which gives it a new file and id there. It counts as present when the destination
//! has a snapshot of the same time, host and paths. Running it again copies nothing; after a
//! crash, the next run reuses whatever reached the destination's index.
//!
//! When either repository is encrypted, every blob is opened with the source's key and sealed
//! again in the destination's session. If the two compute the same blob ids (the destination was made with
//! `init --copy-settings-from`), blobs keep their ids, stored sizes and deduplication with
//! what the destination backed up itself. Otherwise (plaintext to encrypted, or unrelated
//! keys) every chunk gets the destination's id and every tree is rewritten bottom-up with the
//! new ids, once per distinct tree.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use serde::Serialize;

use crate::crypto::Scheme;
use crate::error::{Error, Result};
use crate::format::id::{BlobId, TreeId};
use crate::format::index::IndexedPack;
use crate::format::pack::BlobKind;
use crate::format::snapshot::Snapshot;
use crate::format::tree::{NodeKind, Piece, Tree};
use crate::progress::Progress;
use crate::repo::writer::BlobWriter;
use crate::repo::{Repository, blob, layout, pack};
use crate::snapshot::Listed;

/// What a copy did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CopyReport {
    /// Snapshots copied.
    pub snapshots_copied: usize,
    /// Snapshots the destination already had.
    pub snapshots_present: usize,
    /// Blobs (trees and chunks) copied.
    pub blobs_copied: u64,
    /// Stored bytes copied.
    pub bytes_copied: u64,
    /// Pack files written and verified in the destination.
    pub packs_verified: u64,
    /// Wall-clock time.
    pub duration_ns: u64,
}

/// Receives progress: one call per snapshot, before it is copied (`present`: skipped).
pub trait CopyObserver {
    /// About to handle `snapshot`.
    fn snapshot(&self, snapshot: &Listed, present: bool);
}

impl CopyObserver for () {
    fn snapshot(&self, _: &Listed, _: bool) {}
}

/// Copies `snapshots` (from `from`) into `to`. The caller holds shared locks on both.
/// `progress` counts the snapshots handled (copied or present) of all, the stored bytes
/// copied, and names the snapshot being copied.
///
/// # Errors
/// Damaged source data (named), destination write failures, or a read-back mismatch; the
/// snapshot being copied is then not written to the destination.
pub fn copy(
    from: &Repository,
    to: &Repository,
    snapshots: &[Listed],
    observer: &dyn CopyObserver,
    to_lock: Option<&crate::repo::lock::RepoLock>,
    progress: &Progress,
) -> Result<CopyReport> {
    let started = Instant::now();
    progress.expect(snapshots.len() as u64, 0);
    let mut tally = Tally {
        report: CopyReport::default(),
        progress,
    };
    let mut walked: HashSet<TreeId> = HashSet::new();
    // Ids in the destination of blobs whose ids differ there (`None`: ids are the same).
    let mut translated: Option<HashMap<BlobId, BlobId>> =
        (!same_ids(from.scheme()?, to.scheme()?)).then(HashMap::new);
    // Copied snapshots get new ids: recognise them by what they describe.
    to.require_full_key("copying into an encrypted repository (to see which snapshots it has)")?;
    let mut present_elsewhere: HashSet<Vec<u8>> =
        to.snapshots()?.0.iter().map(|(_, s)| identity(s)).collect();
    for s in snapshots {
        let path = layout::snapshot_path(&s.id);
        let present =
            to.storage().len(&path).is_ok() || present_elsewhere.contains(&identity(&s.snapshot));
        observer.snapshot(s, present);
        if present {
            tally.report.snapshots_present += 1;
            progress.file_done(0);
            continue;
        }
        progress.reading(std::path::Path::new(&s.name));
        let mut writer = to.writer()?;
        let mut snapshot = s.snapshot.clone();
        if let Some(map) = translated.as_mut() {
            snapshot.root = translate(from, to, &mut writer, snapshot.root, map, &mut tally)?;
        }
        let mut stack = vec![s.snapshot.root];
        if translated.is_some() {
            stack.clear();
        }
        while let Some(tree_id) = stack.pop() {
            if !walked.insert(tree_id) {
                continue;
            }
            let id = BlobId::from(tree_id);
            let tree = from.read_tree(&tree_id)?;
            transfer(from, &mut writer, &id, BlobKind::Tree, &mut tally)?;
            for node in &tree.entries {
                match &node.kind {
                    NodeKind::Dir { subtree } => stack.push(*subtree),
                    NodeKind::File { content } => {
                        for piece in content {
                            if let Piece::Data { id, len } = piece {
                                let blob = BlobId::from(*id);
                                check_length(from, id, *len)?;
                                transfer(from, &mut writer, &blob, BlobKind::Data, &mut tally)?;
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        let (_, packs) = writer.finish_listing()?;
        for p in &packs {
            verify_pack(to, p)?;
            tally.report.packs_verified += 1;
        }
        let id = match to_lock {
            Some(lock) => crate::repo::commit::commit_snapshot(to, lock, &mut snapshot)?,
            None => to.save_snapshot(&snapshot)?,
        };
        to.load_snapshot(&id)?;
        present_elsewhere.insert(identity(&snapshot));
        tally.report.snapshots_copied += 1;
        progress.file_done(0);
    }
    let mut report = tally.report;
    report.duration_ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    Ok(report)
}

/// The report being made, and the progress its blob counts feed.
struct Tally<'a> {
    report: CopyReport,
    progress: &'a Progress,
}

impl Tally<'_> {
    /// A blob of `stored` bytes was copied.
    fn blob(&mut self, stored: u64) {
        self.report.blobs_copied += 1;
        self.report.bytes_copied += stored;
        self.progress.add_bytes(stored);
    }
}

/// Whether blobs keep their ids from `a` to `b`.
fn same_ids(a: &Scheme, b: &Scheme) -> bool {
    match (a, b) {
        (Scheme::Plain, Scheme::Plain) => true,
        (Scheme::Encrypted(a), Scheme::Encrypted(b)) => a.same_ids(b),
        _ => false,
    }
}

/// What a snapshot describes, whatever file it is sealed in and whatever its ids are.
fn identity(s: &Snapshot) -> Vec<u8> {
    let mut key = Vec::new();
    key.extend_from_slice(&s.time_ns.to_le_bytes());
    for part in std::iter::once(s.hostname.as_bytes()).chain(s.paths.iter().map(|p| p.as_bytes())) {
        key.extend_from_slice(&(part.len() as u64).to_le_bytes());
        key.extend_from_slice(part);
    }
    key
}

/// Copies the tree `root` and everything below it into a repository that computes other blob
/// ids: chunks are read, given their destination id and stored; trees are rewritten with the
/// new ids of their children (depth-first with an explicit stack, each distinct tree once,
/// `map` remembering every id already translated). Returns the new root's id.
fn translate(
    from: &Repository,
    to: &Repository,
    writer: &mut BlobWriter<'_>,
    root: TreeId,
    map: &mut HashMap<BlobId, BlobId>,
    tally: &mut Tally<'_>,
) -> Result<TreeId> {
    let level = to.config().compression_level;
    let scheme = to.scheme()?;
    let mut store = |writer: &mut BlobWriter<'_>, kind: BlobKind, raw: &[u8]| -> Result<BlobId> {
        let id = scheme.blob_id(raw);
        if !writer.contains(&id) {
            let prepared = blob::compress(scheme, kind, id, raw, level)
                .map_err(|e| Error::corrupt("<new pack>", e.to_string()))?;
            let stored = prepared.stored.len() as u64;
            if writer.add_prepared(kind, prepared)? {
                tally.blob(stored);
            }
        }
        Ok(id)
    };
    // Frames: a tree read but not yet rewritten, waiting for its subtrees.
    let mut stack: Vec<(TreeId, Option<Tree>)> = vec![(root, None)];
    // Trees read and waiting: ids are hashes of contents, so a tree cannot contain itself,
    // but a walk must not depend on that.
    let mut open: HashSet<TreeId> = HashSet::new();
    while let Some((id, tree)) = stack.pop() {
        if map.contains_key(&BlobId::from(id)) {
            continue;
        }
        let Some(mut tree) = tree else {
            if !open.insert(id) {
                return Err(Error::corrupt(
                    format!("tree {}", id.short()),
                    "it contains itself",
                ));
            }
            let tree = from.read_tree(&id)?;
            let pending: Vec<TreeId> = tree
                .entries
                .iter()
                .filter_map(|n| match &n.kind {
                    NodeKind::Dir { subtree } if !map.contains_key(&BlobId::from(*subtree)) => {
                        Some(*subtree)
                    }
                    _ => None,
                })
                .collect();
            stack.push((id, Some(tree)));
            stack.extend(pending.into_iter().map(|t| (t, None)));
            continue;
        };
        for node in &mut tree.entries {
            match &mut node.kind {
                NodeKind::Dir { subtree } => {
                    let new = map.get(&BlobId::from(*subtree)).ok_or_else(|| {
                        Error::corrupt(
                            format!("tree {}", id.short()),
                            "a subtree was not copied (a tree that contains itself?)",
                        )
                    })?;
                    *subtree = TreeId(new.0);
                }
                NodeKind::File { content } => {
                    for piece in content.iter_mut() {
                        if let Piece::Data { id: chunk, len } = piece {
                            let old = BlobId::from(*chunk);
                            let new = match map.get(&old) {
                                Some(n) => *n,
                                None => {
                                    let raw = from.read_chunk(chunk, *len)?;
                                    let n = store(writer, BlobKind::Data, &raw)?;
                                    map.insert(old, n);
                                    n
                                }
                            };
                            *chunk = crate::format::id::ChunkId(new.0);
                        }
                    }
                }
                _ => {}
            }
        }
        let bytes = tree
            .encode()
            .map_err(|e| Error::corrupt(format!("tree {}", id.short()), e.to_string()))?;
        let new = store(writer, BlobKind::Tree, &bytes)?;
        map.insert(BlobId::from(id), new);
    }
    map.get(&BlobId::from(root))
        .map(|n| TreeId(n.0))
        .ok_or_else(|| Error::corrupt(format!("tree {}", root.short()), "not copied"))
}

/// Refuses to copy a snapshot whose file lists a chunk with another length than the chunk's
/// (the destination would inherit a file that cannot be restored).
fn check_length(from: &Repository, id: &crate::format::id::ChunkId, len: u32) -> Result<()> {
    let loc = from.locate(&BlobId::from(*id))?;
    if loc.raw_len != len {
        return Err(Error::corrupt(
            layout::pack_path(&loc.pack),
            format!(
                "chunk {} holds {} bytes, but a file lists it as {len} bytes; the snapshot is \
                 not copied (run `chronofs check`)",
                id.short(),
                loc.raw_len
            ),
        ));
    }
    Ok(())
}

/// Copies one blob unless the destination has it.
fn transfer(
    from: &Repository,
    writer: &mut crate::repo::writer::BlobWriter<'_>,
    id: &BlobId,
    kind: BlobKind,
    tally: &mut Tally<'_>,
) -> Result<()> {
    if writer.contains(id) {
        return Ok(());
    }
    let loc = from.locate(id)?;
    let prepared = from.read_stored(id, &loc, writer.scheme())?;
    let stored = prepared.stored.len() as u64;
    if writer.add_prepared(kind, prepared)? {
        tally.blob(stored);
    }
    Ok(())
}

/// Reads a pack back from the destination: its hash, its trailer, and every blob in it.
fn verify_pack(to: &Repository, p: &IndexedPack) -> Result<()> {
    let path = layout::pack_path(&p.id);
    let scan = pack::scan(to.storage(), &path, &p.id, to.scheme()?)?;
    if !scan.hash_ok || scan.len != p.len {
        return Err(Error::corrupt(
            &path,
            "read back different bytes than written",
        ));
    }
    if scan.blobs != p.blobs {
        return Err(Error::corrupt(
            &path,
            "read back a different trailer than written",
        ));
    }
    match scan.damaged.into_iter().next() {
        Some((_, msg)) => Err(Error::corrupt(&path, msg)),
        None => Ok(()),
    }
}
