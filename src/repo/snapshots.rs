//! Snapshot files: listing them, reading and verifying them (through the local snapshot
//! catalog when there is a cache directory), and writing a new one.

use crate::error::{Error, Result};
use crate::format::id::SnapshotId;
use crate::format::snapshot::Snapshot;

use super::catalog::Catalog;
use super::snapshot_sets::ListedFile;
use super::{Repository, SnapshotListing, layout};

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
            .list_ids(layout::SNAPSHOT_DIR)
            .map_err(|e| Error::repo_io("listing", layout::SNAPSHOT_DIR, e))?
            .into_iter()
            .map(SnapshotId)
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

    /// Loads one snapshot: a member of a set this process has read, its file, or (its file
    /// gone) a member of a set this client knows holds it.
    ///
    /// # Errors
    /// I/O errors or [`Error::Corrupt`] naming the file (also when `id` names a set).
    pub fn load_snapshot(&self, id: &SnapshotId) -> Result<Snapshot> {
        match self.read_file_or_member(id)? {
            ListedFile::Snapshot(s) => Ok(*s),
            ListedFile::Set(_) => Err(Error::corrupt(
                layout::snapshot_path(id),
                "a snapshot set, not a snapshot",
            )),
        }
    }

    /// `snapshots/<id>` read (a snapshot or a set), or the record of member `id` of a set:
    /// from memory if this process read the set, else from the set this client knows holds
    /// it (its own file is gone: it was gathered).
    fn read_file_or_member(&self, id: &SnapshotId) -> Result<ListedFile> {
        self.require_full_key("reading snapshots")?;
        if let Some(s) = self.set_member(id) {
            return Ok(ListedFile::Snapshot(Box::new(s)));
        }
        match self.read_listed(id) {
            Err(Error::RepoIo { cause, .. }) if cause.kind() == std::io::ErrorKind::NotFound => {
                let gone = || {
                    Error::repo_io(
                        "reading",
                        layout::snapshot_path(id),
                        std::io::Error::from(std::io::ErrorKind::NotFound),
                    )
                };
                let fences = super::fence::Fences::load(self)?;
                let set = self.set_holding(id, &fences).ok_or_else(gone)?;
                self.read_listed(&set)?;
                self.set_member(id)
                    .map(|s| ListedFile::Snapshot(Box::new(s)))
                    .ok_or_else(gone)
            }
            other => other,
        }
    }

    /// All readable snapshots, oldest first, plus the errors for unreadable ones.
    ///
    /// # Errors
    /// Failure to list the snapshot directory.
    pub fn snapshots(&self) -> Result<SnapshotListing> {
        Ok(self.snapshot_table()?.into_records())
    }

    /// Hands `each` the snapshots in the files `ids` of `snapshots/` (snapshot files, sets,
    /// or members of sets) one at a time, in the order they are stored, and returns the
    /// errors of those that cannot be read (files gone since the listing are left out): a
    /// caller that keeps less than each record (the mount) never holds them all. When `ids`
    /// is the whole listing of the snapshot directory (`whole`), through the snapshot catalog
    /// (which may then drop the records of snapshots not in it, and the tables of sets not
    /// listed); otherwise from their files. Void snapshots and sets are left out by `fences`.
    pub fn load_snapshots(
        &self,
        ids: &[SnapshotId],
        whole: bool,
        fences: &super::fence::Fences,
        mut each: impl FnMut(SnapshotId, Snapshot),
    ) -> Vec<Error> {
        self.table_of(ids.to_vec(), whole, fences)
            .each_record(|_, id, s| each(id, s))
    }

    /// Reads and verifies the files `ids` of `snapshots/` (snapshots or sets), from
    /// [`SNAPSHOT_LOADERS`] threads when there are many (object storage answers each after a
    /// round trip). A member of a set is read from its set (once per process).
    pub(crate) fn read_snapshot_files(
        &self,
        ids: &[SnapshotId],
    ) -> Vec<(SnapshotId, Result<ListedFile>)> {
        let load = |part: &[SnapshotId]| {
            part.iter()
                .map(|id| (*id, self.read_file_or_member(id)))
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

    /// The snapshot catalog; `None` without a cache directory, when the repository is to be
    /// read itself ([`Self::prefer_repository`]), with a backup-only key, or when the
    /// directory cannot be made (a warning says so, once).
    pub(crate) fn catalog(&self) -> Option<&Catalog> {
        if self.full_index.load(std::sync::atomic::Ordering::Acquire) || self.backup_only() {
            return None;
        }
        let root = self.cache_root.as_ref()?;
        self.catalog
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
            .as_ref()
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
        let id = SnapshotId(self.write_named(&bytes, |id| layout::snapshot_path(&SnapshotId(id)))?);
        if let Some(c) = &self.cache
            && c.put_snapshot(&id, snapshot).is_ok()
        {
            let _ = c.retain_newest();
        }
        Ok(id)
    }
}
