//! The thread that writes the restore's batches: the walk hands it a full batch and goes on
//! creating the next batch's files while this one's data is read, decoded and written. One
//! batch is in flight at a time, and batches come back in the order they went, so what waits
//! for a batch (a directory's metadata, further names of a hardlinked file) waits for the
//! newest batch that held anything when it was put aside.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, SyncSender};

use crate::dirfd::DirFd;
use crate::format::tree::Node;
use crate::progress::Progress;
use crate::repo::Repository;

use super::data::{Batch, Written};

/// An entry put aside until a batch is written: its directory, entry and path.
pub(super) type Later = (Arc<DirFd>, Node, PathBuf);

/// What waits for a batch to be written.
#[derive(Default)]
pub(super) struct Waiting {
    /// Source inodes of the batch's files that may be hardlinked.
    pub inodes: HashSet<(u64, u64)>,
    /// Further names of its files, linked once it is written.
    pub links: Vec<Later>,
    /// Directories whose metadata waits for it.
    pub dirs: Vec<Later>,
}

/// The way to the writer thread and back.
pub(super) struct Lane {
    to: SyncSender<Batch>,
    back: Receiver<Vec<Written>>,
}

impl Lane {
    /// Starts the writer thread in `scope`; it ends when the lane is dropped. `None` if the
    /// thread cannot be started (the walk's thread then writes the batches itself).
    pub fn start<'scope>(
        scope: &'scope std::thread::Scope<'scope, '_>,
        repo: &'scope Repository,
        progress: &'scope Progress,
    ) -> Option<Lane> {
        let (to, batches) = mpsc::sync_channel::<Batch>(1);
        let (done, back) = mpsc::channel();
        std::thread::Builder::new()
            .name("restore-writer".into())
            .spawn_scoped(scope, move || {
                for mut batch in batches {
                    if done.send(batch.write(repo, progress)).is_err() {
                        break;
                    }
                }
            })
            .ok()?;
        Some(Lane { to, back })
    }

    /// Hands `batch` to the writer; gives it back if the writer is gone.
    pub fn send(&self, batch: Batch) -> Option<Batch> {
        self.to.send(batch).err().map(|e| e.0)
    }

    /// The next batch written (`None`: the writer is gone, its panic is re-raised when the
    /// scope ends).
    pub fn next(&self) -> Option<Vec<Written>> {
        self.back.recv().ok()
    }
}
