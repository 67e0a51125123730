//! `copy`: snapshots from one repository to another (another disk, an NFS share), for
//! disaster recovery.
//!
//! Per snapshot, oldest first: skip it if the destination already has a snapshot file of the
//! same id (it is then complete there: snapshot files are written last); otherwise walk its
//! trees in the source and copy every tree and chunk the destination lacks, as stored (no
//! recompression; each blob is verified as it is read), through the destination's normal
//! writer (packs, then index). Then read every new pack back from the destination and verify
//! it, and only then write the snapshot file, byte for byte the source's, so that time, host,
//! paths, tags and id are kept. Running it again copies nothing; after a crash, the next run
//! reuses whatever reached the destination's index.

use std::collections::HashSet;
use std::time::Instant;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::id::{BlobId, Id, TreeId};
use crate::format::index::IndexedPack;
use crate::format::pack::BlobKind;
use crate::format::snapshot::MAX_SNAPSHOT_LEN;
use crate::format::tree::{NodeKind, Piece};
use crate::repo::{Repository, layout, pack};
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
///
/// # Errors
/// Damaged source data (named), destination write failures, or a read-back mismatch; the
/// snapshot being copied is then not written to the destination.
pub fn copy(
    from: &Repository,
    to: &Repository,
    snapshots: &[Listed],
    observer: &dyn CopyObserver,
) -> Result<CopyReport> {
    let started = Instant::now();
    let mut report = CopyReport::default();
    let mut walked: HashSet<TreeId> = HashSet::new();
    for s in snapshots {
        let path = layout::snapshot_path(&s.id);
        let present = to.storage().len(&path).is_ok();
        observer.snapshot(s, present);
        if present {
            report.snapshots_present += 1;
            continue;
        }
        let mut writer = to.writer();
        let mut stack = vec![s.snapshot.root];
        while let Some(tree_id) = stack.pop() {
            if !walked.insert(tree_id) {
                continue;
            }
            let id = BlobId::from(tree_id);
            let tree = from.read_tree(&tree_id)?;
            transfer(from, &mut writer, &id, BlobKind::Tree, &mut report)?;
            for node in &tree.entries {
                match &node.kind {
                    NodeKind::Dir { subtree } => stack.push(*subtree),
                    NodeKind::File { content } => {
                        for piece in content {
                            if let Piece::Data { id, len } = piece {
                                let blob = BlobId::from(*id);
                                check_length(from, id, *len)?;
                                transfer(from, &mut writer, &blob, BlobKind::Data, &mut report)?;
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
            report.packs_verified += 1;
        }
        let bytes = from
            .storage()
            .read(&path, MAX_SNAPSHOT_LEN as u64)
            .map_err(|e| Error::repo_io("reading", &path, e))?;
        if Id::hash(&bytes) != s.id.0 {
            return Err(Error::corrupt(
                &path,
                "contents do not match the file name's hash",
            ));
        }
        to.storage()
            .write(&path, &bytes)
            .map_err(|e| Error::repo_io("writing", &path, e))?;
        to.load_snapshot(&s.id)?;
        report.snapshots_copied += 1;
    }
    report.duration_ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    Ok(report)
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
    report: &mut CopyReport,
) -> Result<()> {
    if writer.contains(id) {
        return Ok(());
    }
    let loc = from.locate(id)?;
    let prepared = from.read_stored(id, &loc)?;
    let stored = prepared.stored.len() as u64;
    if writer.add_prepared(kind, prepared)? {
        report.blobs_copied += 1;
        report.bytes_copied += stored;
    }
    Ok(())
}

/// Reads a pack back from the destination: its hash, its trailer, and every blob in it.
fn verify_pack(to: &Repository, p: &IndexedPack) -> Result<()> {
    let path = layout::pack_path(&p.id);
    let scan = pack::scan(to.storage(), &path, &p.id)?;
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
