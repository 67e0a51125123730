//! Revoking silent writers, and the void rule readers apply (docs/FORMAT.md, "Prune beside
//! writers").
//!
//! A writer whose lock went stale (a stopped process, a suspended laptop, a stalled network)
//! may still wake up and commit. A prune that wants to stop waiting for it **revokes** it:
//! 1. it writes a fence *begin* naming the writer, then removes the writer's lock file;
//! 2. it lists the snapshots (which it then protects: their data is marked used);
//! 3. it writes the fence *end*: the begin again, with the snapshots of revoked writers that
//!    step 2 saw as `accepted`.
//!
//! A snapshot whose writer an end names, and which that end does not accept, is **void**:
//! readers leave it out, and its writer, which checks the fences after writing its snapshot,
//! deletes it and fails ([`super::commit`]). A writer that checked before the begin existed
//! wrote its snapshot before step 2 listed the snapshots, so it is accepted.

use std::collections::HashSet;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::fence::{Fence, MAX_FENCE_LEN};
use crate::format::id::{Id, SnapshotId, WriterId};
use crate::format::snapshot::Snapshot;
use crate::format::snapshot_listing::SetTable;

use super::lock::FoundLock;
use super::{Repository, layout, now_ns};

/// The fences of a repository.
#[derive(Debug, Default)]
pub struct Fences {
    fences: Vec<Fence>,
    /// Fence files that could not be read. Without them a void snapshot may be listed, which
    /// is still safe: its blobs are verified on every read (damage gives an error, never wrong
    /// bytes), and a prune that counts it as valid only keeps more. `check` reports them.
    pub unreadable: Vec<Error>,
}

impl Fences {
    /// Reads every fence file.
    ///
    /// # Errors
    /// Listing failures (a damaged fence is kept in [`Fences::unreadable`]).
    pub fn load(repo: &Repository) -> Result<Fences> {
        let mut out = Fences::default();
        for name in repo.list_ids(layout::FENCE_DIR)? {
            let file = format!("{}/{name}", layout::FENCE_DIR);
            let fence = repo
                .read_verified(&file, &name, MAX_FENCE_LEN)
                .and_then(|bytes| {
                    Fence::decode(&bytes, repo.scheme()?.payload())
                        .map_err(|e| Error::corrupt(&file, e.to_string()))
                });
            match fence {
                Ok(f) => out.fences.push(f),
                Err(Error::RepoIo { cause, .. })
                    if cause.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => out.unreadable.push(e),
            }
        }
        Ok(out)
    }

    /// True if `snapshot` (file `id`) is void: committed by a revoked writer after the prune
    /// that revoked it looked.
    #[must_use]
    pub fn is_void(&self, id: &SnapshotId, snapshot: &Snapshot) -> bool {
        self.voids(id, snapshot.commit.map(|c| c.writer).as_ref())
    }

    /// True if snapshot `id`, committed by `writer` (`None`: a snapshot that names none), is
    /// void.
    #[must_use]
    pub fn voids(&self, id: &SnapshotId, writer: Option<&WriterId>) -> bool {
        writer.is_some_and(|w| self.fences.iter().any(|f| f.voids(id, w)))
    }

    /// True if a fence revokes `writer` (a begin or an end).
    #[must_use]
    pub fn revoked(&self, writer: &WriterId) -> bool {
        self.revoking(writer).next().is_some()
    }

    /// The fences that revoke `writer`.
    pub fn revoking<'a>(&'a self, writer: &'a WriterId) -> impl Iterator<Item = &'a Fence> {
        self.fences.iter().filter(move |f| f.revokes(writer))
    }

    /// Begins without an end: revocations whose prune stopped before it looked at the
    /// snapshots (or that `unlock` made without a key that reads them). The next prune ends
    /// them.
    #[must_use]
    pub fn pending(&self) -> Vec<Revocation> {
        self.fences
            .iter()
            .filter(|b| b.accepted.is_none())
            .filter(|b| {
                !self
                    .fences
                    .iter()
                    .any(|e| e.accepted.is_some() && e.revoked == b.revoked)
            })
            .map(|b| Revocation { fence: b.clone() })
            .collect()
    }

    /// How many fences there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.fences.len()
    }

    /// True if there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.fences.is_empty()
    }
}

fn write(repo: &Repository, fence: &Fence) -> Result<()> {
    let bytes = fence
        .encode(repo.scheme()?.payload())
        .map_err(|e| Error::corrupt("<new fence>", e.to_string()))?;
    repo.storage()
        .create_dir(layout::FENCE_DIR)
        .map_err(|e| Error::repo_io("creating", layout::FENCE_DIR, e))?;
    let file = format!("{}/{}", layout::FENCE_DIR, Id::hash(&bytes).to_hex());
    repo.storage()
        .write(&file, &bytes)
        .map_err(|e| Error::repo_io("writing", file, e))
}

/// Writers revoked by a begin whose end is still to be written.
#[derive(Debug)]
pub struct Revocation {
    fence: Fence,
}

impl Revocation {
    /// The writers revoked.
    #[must_use]
    pub fn writers(&self) -> HashSet<WriterId> {
        self.fence.revoked.iter().map(|(w, _)| *w).collect()
    }

    /// Descriptions of the writers revoked, for reports.
    #[must_use]
    pub fn described(&self) -> Vec<String> {
        self.fence.revoked.iter().map(|(_, d)| d.clone()).collect()
    }

    /// Writes the end: `snapshots` are those listed after the begin (and protected by the
    /// caller), and `sets` the snapshot sets of that listing; the revoked writers' snapshots
    /// and sets among them are accepted.
    ///
    /// # Errors
    /// Write failures.
    pub fn finish<'a>(
        self,
        repo: &Repository,
        snapshots: impl Iterator<Item = (&'a SnapshotId, &'a Snapshot)>,
        sets: &[Arc<SetTable>],
    ) -> Result<()> {
        let revoked = self.writers();
        let accepted = snapshots
            .filter(|(_, s)| s.commit.is_some_and(|c| revoked.contains(&c.writer)))
            .map(|(id, _)| *id)
            .chain(
                sets.iter()
                    .filter(|t| revoked.contains(&t.writer))
                    .map(|t| t.set),
            )
            .collect();
        write(
            repo,
            &Fence {
                time_ns: now_ns(),
                accepted: Some(accepted),
                ..self.fence
            },
        )
    }
}

/// Revokes the holders of `locks` (stale ones, chosen by the caller): writes the begin, then
/// removes their lock files. Locks of a chronofs that predates writer ids are only removed.
/// Returns `None` if no lock named a writer.
///
/// # Errors
/// Write and remove failures.
pub fn revoke(repo: &Repository, locks: &[&FoundLock]) -> Result<Option<Revocation>> {
    let revoked: Vec<(WriterId, String)> = locks
        .iter()
        .filter_map(|f| match &f.lock {
            Ok(l) if !l.is_legacy() => Some((l.writer, f.describe())),
            _ => None,
        })
        .collect();
    let revocation = if revoked.is_empty() {
        None
    } else {
        let fence = Fence {
            time_ns: now_ns(),
            revoked,
            accepted: None,
        };
        write(repo, &fence)?;
        Some(Revocation { fence })
    };
    for f in locks {
        repo.remove_if_present(&f.file)?;
    }
    Ok(revocation)
}

/// `chronofs unlock`: revokes the holders of stale locks (all locks with `all`, for when no
/// chronofs runs at all), then ends the revocation with the snapshots listed after it (with a
/// key that can read them; otherwise the next prune ends it). Returns the locks removed.
///
/// # Errors
/// I/O errors.
pub fn unlock(repo: &Repository, all: bool) -> Result<Vec<FoundLock>> {
    // Our own lock file gives the storage's "now"; it conflicts with nothing.
    let own = super::lock::RepoLock::probe(repo, "unlock")?;
    let mine = own.file();
    let found: Vec<FoundLock> = super::lock::list(repo)?
        .into_iter()
        .filter(|f| f.file != mine && (all || f.stale_reason().is_some()))
        .collect();
    let refs: Vec<&FoundLock> = found.iter().collect();
    if let Some(revocation) = revoke(repo, &refs)?
        && !repo.backup_only()
    {
        // Listed now: a snapshot a saved listing left out would be voided for good.
        let table = repo.snapshot_table_listed_now()?;
        let sets = table.sets().to_vec();
        let (snapshots, _) = table.into_records();
        revocation.finish(repo, snapshots.iter().map(|(id, s)| (id, s)), &sets)?;
    }
    drop(own);
    Ok(found)
}
