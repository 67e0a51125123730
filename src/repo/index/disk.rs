//! The on-disk part of the index: the runs in force and which of their sources (index files)
//! are live, with the lookups a client makes (where is this blob, may a writer reuse it).
//! Memory: each run's fence (eight bytes per 84 blobs) and the sources' names and prune
//! states; entries, packs and session keys stay on disk until asked for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::format::id::{BlobId, PackId};
use crate::format::index_run::{NO_SESSION, PACK_MASK, TREE_BIT, ZSTD_BIT};
use crate::format::pack::{BlobKind, Compression};

use super::BlobLocation;
use super::run::{Run, RunDamage};
use super::sessions::{self, SessionTable};

/// Runs with the liveness of their sources.
#[derive(Debug)]
pub struct DiskIndex {
    runs: Vec<(Run, Vec<bool>)>,
    sessions: Arc<SessionTable>,
    /// (run, session number in it) → number in `sessions`.
    session_numbers: Mutex<HashMap<(usize, u32), u32>>,
    /// Total length of the live sources' packs.
    bytes: u64,
}

/// What a lookup found on disk.
pub struct Found {
    /// Where the blob is.
    pub loc: BlobLocation,
    /// Its pack is condemned.
    pub condemned: bool,
}

impl DiskIndex {
    /// The runs, each with a flag per source: live (in force) or not.
    #[must_use]
    pub fn new(runs: Vec<(Run, Vec<bool>)>, sessions: Arc<SessionTable>) -> DiskIndex {
        let bytes = runs
            .iter()
            .flat_map(|(run, live)| {
                run.header()
                    .sources
                    .iter()
                    .zip(live)
                    .filter(|(_, l)| **l)
                    .map(|(s, _)| s.bytes)
            })
            .sum();
        DiskIndex {
            runs,
            sessions,
            session_numbers: Mutex::new(HashMap::new()),
            bytes,
        }
    }

    /// Total length of the packs in force.
    #[must_use]
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Bytes held in memory for the runs (their fences).
    #[must_use]
    pub fn memory(&self) -> usize {
        self.runs.iter().map(|(r, l)| r.memory() + l.len()).sum()
    }

    /// Whether no entry is live.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Live blobs (an entry per blob and pack).
    #[must_use]
    pub fn len(&self) -> u64 {
        self.runs
            .iter()
            .flat_map(|(run, live)| {
                run.header()
                    .sources
                    .iter()
                    .zip(live)
                    .filter(|(_, l)| **l)
                    .map(|(s, _)| s.blobs)
            })
            .sum()
    }

    /// Packs holding trees, in force.
    #[must_use]
    pub fn tree_packs(&self) -> Vec<(PackId, u64)> {
        self.runs
            .iter()
            .flat_map(|(run, live)| {
                run.header()
                    .tree_packs
                    .iter()
                    .filter(|t| live.get(t.2 as usize) == Some(&true))
                    .map(|t| (t.0, t.1))
            })
            .collect()
    }

    /// Where `id` is: a place in a pack that is not condemned if there is one (`condemned`
    /// says which packs are).
    ///
    /// # Errors
    /// [`RunDamage`] when a page fails its check or a record contradicts another.
    pub fn lookup(
        &self,
        id: &BlobId,
        condemned: &dyn Fn(&PackId) -> bool,
    ) -> Result<Option<Found>, RunDamage> {
        let mut fallback = None;
        for (r, (run, live)) in self.runs.iter().enumerate() {
            for e in run.find(&id.0.0)? {
                let pack = run.pack(e.pack & PACK_MASK)?;
                if !live[pack.source as usize] {
                    continue;
                }
                if u64::from(e.offset) + u64::from(e.stored_len) > pack.len {
                    return Err(RunDamage {
                        path: run.path().to_path_buf(),
                        reason: format!("blob {id} ends past the end of its pack {}", pack.id),
                    });
                }
                let session = if pack.session == NO_SESSION {
                    sessions::NO_SESSION
                } else {
                    self.session(r, run, pack.session)?
                };
                let loc = BlobLocation {
                    pack: pack.id,
                    kind: if e.pack & TREE_BIT != 0 {
                        BlobKind::Tree
                    } else {
                        BlobKind::Data
                    },
                    offset: e.offset,
                    stored_len: e.stored_len,
                    raw_len: e.raw_len,
                    compression: if e.pack & ZSTD_BIT != 0 {
                        Compression::Zstd
                    } else {
                        Compression::None
                    },
                    session,
                };
                if !condemned(&pack.id) {
                    return Ok(Some(Found {
                        loc,
                        condemned: false,
                    }));
                }
                fallback.get_or_insert(Found {
                    loc,
                    condemned: true,
                });
            }
        }
        Ok(fallback)
    }

    fn session(&self, r: usize, run: &Run, n: u32) -> Result<u32, RunDamage> {
        let mut numbers = self
            .session_numbers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(&s) = numbers.get(&(r, n)) {
            return Ok(s);
        }
        let key = run.session(n)?;
        let s = self.sessions.intern(&key);
        numbers.insert((r, n), s);
        Ok(s)
    }
}
