//! The on-disk part of the index: the runs in force and which of their sources (index files)
//! are live, with the lookups a client makes (where is this blob, may a writer reuse it).
//! Memory: each run's fence (eight bytes per 84 blobs) and the sources' names and prune
//! states; entries, packs and session keys stay on disk until asked for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::format::id::{BlobId, PackId};
use crate::format::index_run::{NO_SESSION, PACK_MASK, RunSource};

use super::BlobLocation;
use super::run::{PageCache, Run, RunDamage};
use super::sessions::{self, SessionTable};

/// Runs with the liveness of their sources.
#[derive(Debug)]
pub struct DiskIndex {
    runs: Vec<(Run, Vec<bool>)>,
    sessions: Arc<SessionTable>,
    /// (run, session number in it) → number in `sessions`.
    session_numbers: Mutex<HashMap<(usize, u32), u32>>,
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
    pub fn new(mut runs: Vec<(Run, Vec<bool>)>, sessions: Arc<SessionTable>) -> DiskIndex {
        let pages = PageCache::new();
        for (run, _) in &mut runs {
            run.share_pages(Arc::clone(&pages));
        }
        DiskIndex {
            runs,
            sessions,
            session_numbers: Mutex::new(HashMap::new()),
        }
    }

    /// The sources in force, of every run.
    pub fn live_sources(&self) -> impl Iterator<Item = &RunSource> {
        self.runs.iter().flat_map(|(run, live)| {
            run.header()
                .sources
                .iter()
                .zip(live)
                .filter(|(_, l)| **l)
                .map(|(s, _)| s)
        })
    }

    /// Total length of the packs in force.
    #[must_use]
    pub fn bytes(&self) -> u64 {
        self.live_sources().map(|s| s.bytes).sum()
    }

    /// Whether no entry is live.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Live blobs (an entry per blob and pack).
    #[must_use]
    pub fn len(&self) -> u64 {
        self.live_sources().map(|s| s.blobs).sum()
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
                let (kind, compression) = super::decode_flags(e.pack);
                let loc = BlobLocation {
                    pack: pack.id,
                    kind,
                    offset: e.offset,
                    stored_len: e.stored_len,
                    raw_len: e.raw_len,
                    compression,
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

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::format::crypto::SessionKey;
    use crate::format::id::{Id, IndexId};
    use crate::format::index::{Index as IndexRecord, IndexedPack};
    use crate::format::pack::{BlobKind, Compression, PackedBlob};
    use crate::repo::index::store::Store;

    const KEY: [u8; 32] = [7; 32];

    fn blob(id: Id, offset: u32) -> PackedBlob {
        PackedBlob {
            id: BlobId(id),
            kind: if offset.is_multiple_of(2) {
                BlobKind::Data
            } else {
                BlobKind::Tree
            },
            offset,
            stored_len: 10,
            raw_len: 20,
            compression: Compression::Zstd,
        }
    }

    /// An index file of one pack per 32 blobs.
    fn record(
        name: &[u8],
        blobs: Vec<PackedBlob>,
        sessions: Vec<SessionKey>,
    ) -> (IndexId, IndexRecord) {
        let packs = blobs
            .chunks(32)
            .enumerate()
            .map(|(i, b)| IndexedPack {
                id: PackId(Id::hash(&[name, &i.to_le_bytes()].concat())),
                len: 1 << 20,
                blobs: b.to_vec(),
                session: 0,
            })
            .collect();
        let record = IndexRecord {
            packs,
            sessions,
            ..IndexRecord::default()
        };
        (IndexId(Id::hash(name)), record)
    }

    /// A run of one index file holding `blobs`, over nine entry pages or more.
    fn run_of(store: &Store, blobs: &[PackedBlob]) -> Run {
        let held = store.lock().unwrap();
        let run = store
            .build(&held, &[record(b"a", blobs.to_vec(), Vec::new())])
            .unwrap();
        assert!(run.entry_pages() >= 9, "{}", run.entry_pages());
        run
    }

    fn disk(runs: Vec<Run>, dead: &HashSet<IndexId>) -> DiskIndex {
        let runs = runs
            .into_iter()
            .map(|r| {
                let live = r
                    .header()
                    .sources
                    .iter()
                    .map(|s| !dead.contains(&s.id))
                    .collect();
                (r, live)
            })
            .collect();
        DiskIndex::new(runs, Arc::default())
    }

    #[test]
    fn every_blob_is_found_across_pages_even_where_ids_share_their_first_eight_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path(), &KEY, 0).unwrap();
        // 300 ids that agree in their first 8 bytes (over three entry pages), among 500
        // others: the fence cannot tell those pages apart.
        let mut ids: Vec<Id> = (0..500u32).map(|i| Id::hash(&i.to_le_bytes())).collect();
        for i in 0..300u32 {
            let mut id = Id::hash(&(i + 1000).to_le_bytes());
            id.0[..8].copy_from_slice(&[0x80; 8]);
            ids.push(id);
        }
        let blobs: Vec<PackedBlob> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| blob(*id, 16 + i as u32))
            .collect();
        let run = run_of(&store, &blobs);
        let index = disk(vec![run], &HashSet::new());
        for b in &blobs {
            let found = index.lookup(&b.id, &|_| false).unwrap().unwrap();
            assert_eq!(
                (
                    found.loc.offset,
                    found.loc.kind,
                    found.loc.compression,
                    found.loc.raw_len
                ),
                (b.offset, b.kind, b.compression, b.raw_len)
            );
            assert!(!found.condemned);
        }
        let mut absent = Id::hash(b"absent");
        assert!(index.lookup(&BlobId(absent), &|_| false).unwrap().is_none());
        absent.0[..8].copy_from_slice(&[0x80; 8]);
        assert!(index.lookup(&BlobId(absent), &|_| false).unwrap().is_none());
        assert_eq!(index.len(), 800);
        assert_eq!(index.bytes(), 25 << 20);
    }

    #[test]
    fn pages_read_once_are_kept_checked_and_a_page_read_after_damage_still_fails() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path(), &KEY, 0).unwrap();
        let mut blobs: Vec<PackedBlob> = (0..800u32)
            .map(|i| blob(Id::hash(&i.to_le_bytes()), 16 + i))
            .collect();
        let run = run_of(&store, &blobs);
        let path = run.path().to_path_buf();
        let index = disk(vec![run], &HashSet::new());
        // The smallest id is on the first entry page, the largest on the last.
        blobs.sort_by_key(|b| b.id);
        let (first, last) = (&blobs[0], &blobs[blobs.len() - 1]);
        let before = index.lookup(&first.id, &|_| false).unwrap().unwrap().loc;
        // Every page of the file changes under the open index.
        let mut bytes = std::fs::read(&path).unwrap();
        for at in (100..bytes.len()).step_by(crate::format::index_run::PAGE) {
            bytes[at] ^= 0x40;
        }
        std::fs::write(&path, &bytes).unwrap();
        // The pages read before come from memory, as checked then.
        let again = index.lookup(&first.id, &|_| false).unwrap().unwrap().loc;
        assert_eq!(again, before);
        // A page not read before is read now, and fails its check.
        let err = index.lookup(&last.id, &|_| false).err().expect("damage");
        assert!(err.reason.contains("fails its check"), "{err}");
    }

    #[test]
    fn a_merge_keeps_the_live_index_files_and_drops_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path(), &KEY, 0).unwrap();
        let ids = |from: u32, n: u32| -> Vec<PackedBlob> {
            (from..from + n)
                .map(|i| blob(Id::hash(&i.to_le_bytes()), 16 + 2 * i))
                .collect()
        };
        // Blob 99 is in both files, at different places.
        let (a, b) = (
            record(b"a", ids(0, 100), Vec::new()),
            record(b"b", ids(99, 100), Vec::new()),
        );
        let held = store.lock().unwrap();
        let mut runs = vec![
            store.build(&held, std::slice::from_ref(&a)).unwrap(),
            store.build(&held, std::slice::from_ref(&b)).unwrap(),
        ];
        let (a_id, b_id) = (a.0, b.0);
        let live = |run: &Run, s: u32| run.header().sources[s as usize].id != b_id;
        store.settle(&held, &mut runs, &live).unwrap();
        assert_eq!(runs.len(), 1, "two runs of one size are merged");
        assert_eq!(runs[0].header().sources.len(), 1);
        assert_eq!(runs[0].header().sources[0].id, a_id);
        store.commit(&held, &runs).unwrap();
        let index = disk(runs, &HashSet::new());
        for x in &a.1.packs[0].blobs {
            assert!(index.lookup(&x.id, &|_| false).unwrap().is_some());
        }
        let only_b = &b.1.packs[3].blobs[0];
        assert!(index.lookup(&only_b.id, &|_| false).unwrap().is_none());
        let shared = &b.1.packs[0].blobs[0];
        let found = index.lookup(&shared.id, &|_| false).unwrap().unwrap();
        assert_eq!(found.loc.pack, a.1.packs[3].id);
        assert_eq!(index.len(), 100);
        // The merged inputs are gone; only the merged run and the manifest remain.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "lock")
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn a_condemned_place_is_found_only_when_there_is_no_other_and_sessions_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let len = crate::format::crypto::KEM_CIPHERTEXT_LEN;
        let store = Store::new(dir.path(), &KEY, len).unwrap();
        let sessions = vec![SessionKey(vec![1; len]), SessionKey(vec![2; len])];
        let one = |n: &[u8], session: u32, blob_id: Id| {
            let (id, mut r) = record(n, vec![blob(blob_id, 16)], sessions.clone());
            r.packs[0].session = session;
            (id, r)
        };
        let (x, y) = (Id::hash(b"x"), Id::hash(b"y"));
        let records = [one(b"p", 0, x), one(b"q", 1, x), one(b"r", 1, y)];
        let held = store.lock().unwrap();
        let run = store.build(&held, &records).unwrap();
        let table = Arc::new(SessionTable::default());
        let runs = vec![(run, vec![true; 3])];
        let index = DiskIndex::new(runs, Arc::clone(&table));
        let (p, q) = (records[0].1.packs[0].id, records[1].1.packs[0].id);
        // x is in p and q: with p condemned it is found in q, with both condemned in one of
        // them, marked.
        let found = index
            .lookup(&BlobId(x), &|pack| *pack == p)
            .unwrap()
            .unwrap();
        assert_eq!((found.loc.pack, found.condemned), (q, false));
        assert_eq!(table.get(found.loc.session).as_deref(), Some(&sessions[1]));
        let found = index.lookup(&BlobId(x), &|_| true).unwrap().unwrap();
        assert!(found.condemned);
        let found = index.lookup(&BlobId(y), &|_| false).unwrap().unwrap();
        assert_eq!(table.get(found.loc.session).as_deref(), Some(&sessions[1]));
    }
}
