//! Snapshot files: listing them, reading and verifying one, and writing a new one.

use std::io;

use crate::error::{Error, Result};
use crate::format::id::{Id, SnapshotId};
use crate::format::snapshot::{MAX_SNAPSHOT_LEN, Snapshot};

use super::{Repository, SnapshotListing, fence, layout};

impl Repository {
    /// Ids of all snapshot files.
    ///
    /// # Errors
    /// Failure to list the directory.
    pub fn snapshot_ids(&self) -> Result<Vec<SnapshotId>> {
        Ok(self
            .list_ids(layout::SNAPSHOT_DIR)?
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
        for id in ids {
            match self.load_snapshot(&id) {
                Ok(s) if fences.is_void(&id, &s) => {}
                Ok(s) => good.push((id, s)),
                // Forgotten between the listing and the read.
                Err(Error::RepoIo { cause, .. }) if cause.kind() == io::ErrorKind::NotFound => {}
                Err(e) => bad.push(e),
            }
        }
        good.sort_by_key(|a| (a.1.time_ns, a.0));
        Ok((good, bad))
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
