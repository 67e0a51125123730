//! Snapshot files: listing them, reading and verifying them (through the local snapshot
//! catalog when there is a cache directory), and writing a new one.

use std::collections::HashSet;
use std::io;

use crate::error::{Error, Result};
use crate::format::id::{Id, SnapshotId};
use crate::format::snapshot::{MAX_SNAPSHOT_LEN, Snapshot};

use super::catalog::Catalog;
use super::{Repository, SnapshotListing, fence, layout};
use crate::format::snapshot_catalog::{LocalSeal, TagSeal};

/// Threads reading snapshot files the catalog does not hold.
const SNAPSHOT_LOADERS: usize = 8;

impl Repository {
    /// Ids of all snapshot files.
    ///
    /// # Errors
    /// Failure to list the directory.
    pub fn snapshot_ids(&self) -> Result<Vec<SnapshotId>> {
        Ok(self
            .storage
            .list(layout::SNAPSHOT_DIR)
            .map_err(|e| Error::repo_io("listing", layout::SNAPSHOT_DIR, e))?
            .iter()
            .filter_map(|n| n.parse().ok())
            .collect())
    }

    /// A token that stays the same while the snapshot files do, where the storage can tell
    /// without listing them (see [`crate::storage::Storage::list_token`]).
    ///
    /// # Errors
    /// Failure to look at the directory.
    pub fn snapshot_list_token(&self) -> Result<Option<crate::storage::ListToken>> {
        self.storage
            .list_token(layout::SNAPSHOT_DIR)
            .map_err(|e| Error::repo_io("looking at", layout::SNAPSHOT_DIR, e))
    }

    /// Loads one snapshot.
    ///
    /// # Errors
    /// I/O errors or [`Error::Corrupt`] naming the file.
    pub fn load_snapshot(&self, id: &SnapshotId) -> Result<Snapshot> {
        self.require_full_key("reading snapshots")?;
        let file = layout::snapshot_path(id);
        let bytes = self.read_verified(&file, &id.to_hex(), MAX_SNAPSHOT_LEN)?;
        Snapshot::decode(&bytes, self.scheme()?.payload())
            .map_err(|e| Error::corrupt(file, e.to_string()))
    }

    /// All readable snapshots, oldest first, plus the errors for unreadable ones.
    ///
    /// # Errors
    /// Failure to list the snapshot directory.
    pub fn snapshots(&self) -> Result<SnapshotListing> {
        self.require_full_key("listing snapshots")?;
        let mut good = Vec::new();
        let mut bad = Vec::new();
        let ids = self.snapshot_ids()?;
        // Listed after the snapshots: a fence written meanwhile can only void more of them.
        let fences = fence::Fences::load(self)?;
        for (id, loaded) in self.load_snapshots(&ids, true) {
            match loaded {
                Ok(s) if fences.is_void(&id, &s) => {}
                Ok(s) => good.push((id, s)),
                // Forgotten between the listing and the read.
                Err(Error::RepoIo { cause, .. }) if cause.kind() == io::ErrorKind::NotFound => {}
                Err(e) => bad.push(e),
            }
        }
        Ok((sorted_by_time(good), bad))
    }

    /// Loads the snapshots `ids`, in no particular order: the records the snapshot catalog
    /// holds, and the others from their files (several at once), which are then added to it.
    /// `whole` says that `ids` is the whole listing of the snapshot directory, so that the
    /// catalog may drop the records of ids not in it.
    pub fn load_snapshots(
        &self,
        ids: &[SnapshotId],
        whole: bool,
    ) -> Vec<(SnapshotId, Result<Snapshot>)> {
        let Some((catalog, seal)) = self.catalog() else {
            return self.read_snapshot_files(ids);
        };
        let wanted: HashSet<SnapshotId> = ids.iter().copied().collect();
        let found = catalog.read(&*seal, &wanted);
        for d in Catalog::damage(&found) {
            eprintln!(
                "chronofs: warning: snapshot catalog: {d}; reading those snapshot files again"
            );
        }
        let missing: Vec<SnapshotId> = wanted
            .iter()
            .filter(|id| !found.ids.contains(id))
            .copied()
            .collect();
        let read = self.read_snapshot_files(&missing);
        let new: Vec<(SnapshotId, Snapshot)> = read
            .iter()
            .filter_map(|(id, r)| Some((*id, r.as_ref().ok()?.clone())))
            .collect();
        if let Err(e) = catalog.update(&*seal, &found, &new, whole) {
            eprintln!(
                "chronofs: warning: the snapshot catalog in {} cannot be updated: {e}",
                catalog.dir().display()
            );
        }
        let mut out: Vec<(SnapshotId, Result<Snapshot>)> =
            Vec::with_capacity(found.records.len() + read.len());
        out.extend(found.records.into_iter().map(|(id, s)| (id, Ok(s))));
        out.extend(read);
        out
    }

    /// Reads and verifies the snapshot files `ids`, from [`SNAPSHOT_LOADERS`] threads when
    /// there are many (object storage answers each after a round trip).
    fn read_snapshot_files(&self, ids: &[SnapshotId]) -> Vec<(SnapshotId, Result<Snapshot>)> {
        let load = |part: &[SnapshotId]| {
            part.iter()
                .map(|id| (*id, self.load_snapshot(id)))
                .collect::<Vec<_>>()
        };
        if ids.len() <= SNAPSHOT_LOADERS {
            return load(ids);
        }
        let per_thread = ids.len().div_ceil(SNAPSHOT_LOADERS);
        std::thread::scope(|scope| {
            let handles: Vec<_> = ids
                .chunks(per_thread)
                .map(|part| scope.spawn(move || load(part)))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        })
    }

    /// The snapshot catalog and the seal of its records; `None` without a cache directory,
    /// when the repository is to be read itself ([`Self::prefer_repository`]), with a
    /// backup-only key, or when the directory cannot be made (a warning says so, once).
    fn catalog(&self) -> Option<(&Catalog, Box<dyn LocalSeal + '_>)> {
        if self.full_index.load(std::sync::atomic::Ordering::Acquire) {
            return None;
        }
        let root = self.cache_root.as_ref()?;
        let seal: Box<dyn LocalSeal> = match self.scheme().ok()?.crypto() {
            Some(c) => Box::new(c.cache_seal()?),
            None => Box::new(TagSeal::new(zeroize::Zeroizing::new(blake3::derive_key(
                crate::format::crypto::context::LOCAL_RECORDS,
                &self.config.repo_id.0,
            )))),
        };
        let catalog = self
            .catalog
            .get_or_init(|| {
                let dir = root.join(self.config.repo_id.to_hex()).join("catalog");
                Catalog::open(dir.clone())
                    .map_err(|e| {
                        eprintln!(
                            "chronofs: warning: no snapshot catalog in {}: {e}; reading every snapshot file",
                            dir.display()
                        );
                    })
                    .ok()
            })
            .as_ref()?;
        Some((catalog, seal))
    }

    /// Writes a snapshot file; it becomes visible atomically. Everything it references must
    /// already be durable (call [`super::writer::BlobWriter::finish`] first).
    ///
    /// # Errors
    /// I/O errors.
    pub fn save_snapshot(&self, snapshot: &Snapshot) -> Result<SnapshotId> {
        let bytes = snapshot
            .encode(self.scheme()?.payload())
            .map_err(|e| Error::corrupt("<new snapshot>", e.to_string()))?;
        let id = SnapshotId(Id::hash(&bytes));
        let path = layout::snapshot_path(&id);
        self.storage
            .write(&path, &bytes)
            .map_err(|e| Error::repo_io("writing", path, e))?;
        if let Some(c) = &self.cache
            && c.put_snapshot(&id, snapshot).is_ok()
        {
            let _ = c.retain_newest();
        }
        Ok(id)
    }
}

/// `snapshots` oldest first (ties by id), each record moved once: sorting the records
/// themselves moved each some twenty times, a noticeable part of listing 100,000.
fn sorted_by_time(snapshots: Vec<(SnapshotId, Snapshot)>) -> Vec<(SnapshotId, Snapshot)> {
    let mut order: Vec<(i64, SnapshotId, usize)> = snapshots
        .iter()
        .enumerate()
        .map(|(i, (id, s))| (s.time_ns, *id, i))
        .collect();
    order.sort_unstable();
    let mut slots: Vec<Option<(SnapshotId, Snapshot)>> = snapshots.into_iter().map(Some).collect();
    order
        .iter()
        .filter_map(|&(_, _, i)| slots[i].take())
        .collect()
}
