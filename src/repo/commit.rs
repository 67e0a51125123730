//! Committing a snapshot beside a prune (docs/FORMAT.md, "Prune beside writers").
//!
//! 1. The writer checks that its lock is still its own (a prune revokes a silent writer by
//!    removing its lock); if not, it commits nothing.
//! 2. It writes the snapshot file, naming its writer id and basis.
//! 3. It reads the fences. If none revokes it, it is done: a prune that revokes it later writes
//!    its begin after this check, and so lists the snapshot and protects it. If an end revokes
//!    it, the end decides: accepted, or void (the prune looked before the snapshot existed, so
//!    its data may be gone). If only a begin does, the prune is between the two: wait for the
//!    end. A void snapshot is deleted, and the writer fails with [`Error::Revoked`]; readers
//!    ignore it even if the deletion never happens. A fence that cannot be read might revoke
//!    the writer: the snapshot is withdrawn then too, and the damage reported.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::format::id::SnapshotId;
use crate::format::snapshot::{Commit, Snapshot};

use super::fence::Fences;
use super::lock::RepoLock;
use super::{Repository, layout};

/// How long a writer waits for a prune that revoked it to write its end.
const END_WAIT: Duration = Duration::from_secs(300);

/// Writes `snapshot` as committed by the holder of `lock`, once everything it references is
/// durable and indexed, and makes sure no prune revoked the writer meanwhile.
///
/// # Errors
/// [`Error::Revoked`] if the writer was revoked (nothing is committed then); write failures.
pub fn commit_snapshot(
    repo: &Repository,
    lock: &RepoLock,
    snapshot: &mut Snapshot,
) -> Result<SnapshotId> {
    snapshot.commit = Some(Commit {
        writer: lock.writer(),
        basis: lock.basis().unwrap_or(0),
    });
    lock.ensure_held()?;
    let id = repo.save_snapshot(snapshot).map_err(|e| lock.cause_of(e))?;
    match settle(repo, lock, &id) {
        Ok(()) => Ok(id),
        Err(e) => {
            if matches!(e, Error::Revoked(_) | Error::Corrupt { .. }) {
                let _ = repo.remove_if_present(&layout::snapshot_path(&id));
            }
            Err(e)
        }
    }
}

/// Whether snapshot `id`, just written by the holder of `lock`, stands.
fn settle(repo: &Repository, lock: &RepoLock, id: &SnapshotId) -> Result<()> {
    let writer = lock.writer();
    let started = Instant::now();
    loop {
        let mut fences = Fences::load(repo)?;
        // A fence that cannot be read may be the one that revokes this writer.
        if !fences.unreadable.is_empty() {
            return Err(fences.unreadable.swap_remove(0));
        }
        let mut revoking = fences.revoking(&writer).peekable();
        if revoking.peek().is_none() {
            return Ok(());
        }
        let mut pending = false;
        for f in revoking {
            match &f.accepted {
                Some(accepted) if accepted.contains(id) => return Ok(()),
                Some(_) => {
                    return Err(Error::Revoked(format!(
                        "a prune revoked this writer while it was stopped or cut off for longer \
                         than the lock's grace period ({} s), and looked at the snapshots before \
                         snapshot {} was written, so its data may be gone: the snapshot was \
                         withdrawn (run the backup again)",
                        super::lock::stale_after().as_secs(),
                        id.short()
                    )));
                }
                None => pending = true,
            }
        }
        if pending && started.elapsed() > END_WAIT {
            return Err(Error::Revoked(format!(
                "a prune revoked this writer while it was stopped or cut off, and did not \
                 finish within {} s: snapshot {} was withdrawn (run the backup again)",
                END_WAIT.as_secs(),
                id.short()
            )));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
