//! The index: blob id → pack, offset and lengths.
//!
//! Two parts answer lookups. In memory, entries live in one `Vec` sorted by id (48 bytes per
//! blob, found by binary search): the whole repository's for prune and check (a *full*
//! index), or only the packs this process wrote. On disk, a client's local index
//! ([`store`]: sorted runs in its cache directory, [`disk`]) holds the rest, so that a
//! backup, restore or mount keeps only a small fence per run in memory.
//!
//! Each in-memory entry packs the pack number (28 bits), the blob kind and the compression
//! into one `u32`; pack ids are stored once in a side table, session keys once per process
//! ([`sessions`]).

pub mod build;
pub mod disk;
pub mod run;
pub mod sessions;
pub mod store;

use std::collections::HashMap;
use std::sync::Arc;

use self::disk::DiskIndex;
use self::sessions::{NO_SESSION, SessionTable};

use crate::format::crypto::SessionKey;
use crate::format::id::{BlobId, Id, PackId};
use crate::format::index::{Index as IndexRecord, IndexedPack};
use crate::format::index_run::{TREE_BIT, ZSTD_BIT};
use crate::format::pack::{BlobKind, Compression, PackedBlob};

const PACK_MASK: u32 = (1 << 28) - 1;
/// The entry's pack is condemned: readable, but not for deduplication.
const CONDEMNED_BIT: u32 = 1 << 29;

/// One blob's location, 48 bytes.
#[derive(Clone, Copy, Debug)]
struct Entry {
    id: [u8; 32],
    pack_and_flags: u32,
    offset: u32,
    stored_len: u32,
    raw_len: u32,
}

/// Size of one index entry in memory, as reported in docs and notes.
pub const ENTRY_BYTES: usize = std::mem::size_of::<Entry>();

/// Where a blob is and how to decode it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobLocation {
    /// The pack holding it.
    pub pack: PackId,
    /// Data or tree.
    pub kind: BlobKind,
    /// Offset within the pack.
    pub offset: u32,
    /// Stored length.
    pub stored_len: u32,
    /// Raw length.
    pub raw_len: u32,
    /// Encoding of the stored bytes.
    pub compression: Compression,
    /// The session key the blob is sealed with, a number into the process's
    /// [`SessionTable`] ([`sessions::NO_SESSION`]: plaintext).
    pub session: u32,
}

/// All blobs of a repository.
#[derive(Debug, Default)]
pub struct Index {
    entries: Vec<Entry>,
    packs: Vec<(PackId, u64)>,
    pack_numbers: HashMap<PackId, u32>,
    /// Per pack (by number), its session's number in `sessions` (`NO_SESSION`: plaintext).
    pack_sessions: Vec<u32>,
    sessions: Arc<SessionTable>,
    sorted: bool,
    /// The prune epoch of the index files loaded (docs/FORMAT.md, "Prune beside writers").
    epoch: u64,
    /// Condemned packs, indexed or not, with the epoch of their condemnation.
    condemned: HashMap<PackId, u64>,
    /// The local index on disk, if this is not a full index.
    disk: Option<DiskIndex>,
    /// Why the local index was found damaged while in use (the next refresh rebuilds it).
    damaged: std::sync::Mutex<Option<String>>,
    /// The index files a full index was built from (what a prune may leave in place).
    files: Vec<IndexFileInfo>,
    /// Per pack (by number), the stored bytes of its blobs found at another place: copies two
    /// writers stored at once, which no lookup reaches (prune reclaims them).
    duplicates: Vec<u64>,
}

/// One index file in force in a full index.
#[derive(Clone, Debug)]
pub struct IndexFileInfo {
    /// Its name (hex id).
    pub name: String,
    /// The packs it names.
    pub packs: Vec<PackId>,
    /// How many blobs it names.
    pub blobs: usize,
    /// It carries a prune state (the last file of a prune).
    pub prune: bool,
}

impl Index {
    /// An empty index.
    #[must_use]
    pub fn new() -> Self {
        Self::with_sessions(Arc::default())
    }

    /// An empty index that numbers session keys in `sessions`.
    #[must_use]
    pub fn with_sessions(sessions: Arc<SessionTable>) -> Self {
        Index {
            sorted: true,
            sessions,
            ..Index::default()
        }
    }

    /// Records the index files in force this full index was built from.
    pub fn set_files(&mut self, files: Vec<IndexFileInfo>) {
        self.files = files;
    }

    /// The index files in force (full index only; empty otherwise).
    #[must_use]
    pub fn files(&self) -> &[IndexFileInfo] {
        &self.files
    }

    /// Stored bytes of the blobs of the pack numbered `number` that are found at another
    /// place (see [`Self::finalize`]).
    #[must_use]
    pub fn duplicate_bytes(&self, number: usize) -> u64 {
        self.duplicates.get(number).copied().unwrap_or(0)
    }

    /// The number of `pack` (see [`Self::at`]), if indexed.
    #[must_use]
    pub fn pack_number(&self, pack: &PackId) -> Option<usize> {
        self.pack_numbers.get(pack).map(|&n| n as usize)
    }

    /// Adds the local index on disk: lookups consult it after the entries in memory.
    pub fn set_disk(&mut self, disk: DiskIndex) {
        self.disk = Some(disk);
    }

    /// Whether this index holds every index file in memory (what prune and check need for
    /// [`Self::position`], [`Self::at`], [`Self::iter`] and [`Self::packs`]).
    #[must_use]
    pub fn is_full(&self) -> bool {
        self.disk.is_none()
    }

    /// Why the local index was found damaged since it was loaded, if it was.
    #[must_use]
    pub fn damage(&self) -> Option<String> {
        self.damaged
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Looks `id` up on disk; a damaged run is deleted and remembered, and answers nothing
    /// (the blob is then stored again, or the read reloads the index).
    fn disk_lookup(&self, id: &BlobId) -> Option<disk::Found> {
        let disk = self.disk.as_ref()?;
        match disk.lookup(id, &|p| self.condemned.contains_key(p)) {
            Ok(found) => found,
            Err(damage) => {
                store::Store::discard(&damage);
                let mut d = self
                    .damaged
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if d.is_none() {
                    eprintln!("chronofs: warning: {damage}; rebuilding it");
                }
                *d = Some(damage.to_string());
                None
            }
        }
    }

    /// Sets the prune epoch and the condemned packs, and marks the entries of condemned packs
    /// added before it (a full load streams the index files, and knows the prune state only
    /// once all are read); packs added after are marked as they are added.
    pub fn set_prune_state(&mut self, epoch: u64, condemned: HashMap<PackId, u64>) {
        self.epoch = epoch;
        self.condemned = condemned;
        if self.condemned.is_empty() || self.entries.is_empty() {
            return;
        }
        let flagged: Vec<bool> = self
            .packs
            .iter()
            .map(|(id, _)| self.condemned.contains_key(id))
            .collect();
        for e in &mut self.entries {
            if flagged
                .get((e.pack_and_flags & PACK_MASK) as usize)
                .copied()
                .unwrap_or(false)
            {
                e.pack_and_flags |= CONDEMNED_BIT;
            }
        }
        self.sorted = false;
    }

    /// The prune epoch: what a writer that deduplicates against this index records as its
    /// basis.
    #[must_use]
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The epoch at which `pack` was condemned, if it is.
    #[must_use]
    pub fn condemned_at(&self, pack: &PackId) -> Option<u64> {
        self.condemned.get(pack).copied()
    }

    /// Every condemned pack, indexed or not.
    #[must_use]
    pub fn condemned(&self) -> &HashMap<PackId, u64> {
        &self.condemned
    }

    /// Adds a pack's blobs, sealed in `session` (`None` in a plaintext repository). Call
    /// [`Self::finalize`] before lookups after a batch of adds.
    pub fn add_pack(&mut self, pack: &IndexedPack, session: Option<&SessionKey>) {
        if self.pack_numbers.contains_key(&pack.id) {
            return;
        }
        let number = u32::try_from(self.packs.len()).unwrap_or(u32::MAX) & PACK_MASK;
        self.packs.push((pack.id, pack.len));
        self.pack_numbers.insert(pack.id, number);
        let session = session.map_or(NO_SESSION, |s| self.sessions.intern(s));
        self.pack_sessions.push(session);
        let flags = if self.condemned.contains_key(&pack.id) {
            number | CONDEMNED_BIT
        } else {
            number
        };
        self.entries
            .extend(pack.blobs.iter().map(|b| entry(flags, b)));
        self.sorted = false;
    }

    /// Adds every pack of index file `record`, each with its session.
    pub fn add_record(&mut self, record: &IndexRecord) {
        for p in &record.packs {
            self.add_pack(p, session_in(record, p));
        }
    }

    /// Sorts the entries (keeping one location per blob) so lookups work. The other copies'
    /// bytes are counted per pack ([`Self::duplicate_bytes`]).
    pub fn finalize(&mut self) {
        if !self.sorted {
            // A blob stored in a live and in a condemned pack is kept at its live place; among
            // live places, in the pack loaded first.
            self.entries.sort_unstable_by_key(|a| {
                (
                    a.id,
                    a.pack_and_flags & CONDEMNED_BIT,
                    a.pack_and_flags & PACK_MASK,
                )
            });
            self.duplicates.resize(self.packs.len(), 0);
            for w in self.entries.windows(2) {
                if w[0].id == w[1].id {
                    let n = (w[1].pack_and_flags & PACK_MASK) as usize;
                    if let Some(d) = self.duplicates.get_mut(n) {
                        *d += u64::from(w[1].stored_len);
                    }
                }
            }
            self.entries.dedup_by(|a, b| a.id == b.id);
            self.entries.shrink_to_fit();
            self.sorted = true;
        }
    }

    /// Where `id` is stored, if indexed: in memory, else on disk.
    #[must_use]
    pub fn lookup(&self, id: &BlobId) -> Option<BlobLocation> {
        let here = self
            .position(id)
            .and_then(|i| self.at(i))
            .map(|(_, loc, n)| (loc, self.pack_condemned(n)));
        match here {
            Some((loc, false)) => Some(loc),
            here => self
                .disk_lookup(id)
                .filter(|f| !f.condemned || here.is_none())
                .map(|f| f.loc)
                .or(here.map(|(loc, _)| loc)),
        }
    }

    fn pack_condemned(&self, number: usize) -> bool {
        self.packs
            .get(number)
            .is_some_and(|(p, _)| self.condemned.contains_key(p))
    }

    /// The position of `id` among the sorted entries, `0..len()` (stable until the index
    /// changes), so callers can keep one bit per blob.
    #[must_use]
    pub fn position(&self, id: &BlobId) -> Option<usize> {
        debug_assert!(self.sorted, "lookup before finalize");
        self.entries.binary_search_by(|e| e.id.cmp(&id.0.0)).ok()
    }

    /// The blob at `position`, its location and its pack's number (an index into
    /// [`Self::packs`]).
    #[must_use]
    pub fn at(&self, position: usize) -> Option<(BlobId, BlobLocation, usize)> {
        let e = self.entries.get(position)?;
        let number = (e.pack_and_flags & PACK_MASK) as usize;
        let pack = self.packs.get(number)?.0;
        let (kind, compression) = decode_flags(e.pack_and_flags);
        let loc = BlobLocation {
            pack,
            kind,
            offset: e.offset,
            stored_len: e.stored_len,
            raw_len: e.raw_len,
            compression,
            session: self
                .pack_sessions
                .get(number)
                .copied()
                .unwrap_or(NO_SESSION),
        };
        Some((BlobId(Id(e.id)), loc, number))
    }

    /// Packs holding tree blobs, with their lengths (trees and data are packed separately).
    #[must_use]
    pub fn tree_packs(&self) -> Vec<(PackId, u64)> {
        let mut packs = self.memory_tree_packs();
        if let Some(d) = &self.disk {
            packs.extend(d.tree_packs());
        }
        packs
    }

    /// Total length of the packs indexed.
    #[must_use]
    pub fn pack_bytes(&self) -> u64 {
        let memory: u64 = self.packs.iter().map(|(_, len)| len).sum();
        memory + self.disk.as_ref().map_or(0, DiskIndex::bytes)
    }

    fn memory_tree_packs(&self) -> Vec<(PackId, u64)> {
        let mut numbers: Vec<u32> = self
            .entries
            .iter()
            .filter(|e| e.pack_and_flags & TREE_BIT != 0)
            .map(|e| e.pack_and_flags & PACK_MASK)
            .collect();
        numbers.sort_unstable();
        numbers.dedup();
        numbers
            .into_iter()
            .filter_map(|n| self.packs.get(n as usize).copied())
            .collect()
    }

    /// Whether `id` is indexed.
    /// True if `id` is stored in a pack that is not condemned: what a writer may deduplicate
    /// against (readers find condemned blobs too, through [`Index::lookup`]).
    #[must_use]
    pub fn contains(&self, id: &BlobId) -> bool {
        self.entries
            .binary_search_by(|e| e.id.cmp(&id.0.0))
            .is_ok_and(|i| self.entries[i].pack_and_flags & CONDEMNED_BIT == 0)
            || self.disk_lookup(id).is_some_and(|f| !f.condemned)
    }

    /// Number of distinct blobs in memory: positions run over `0..len()` (the local index
    /// on disk has no positions).
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the index is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.disk.as_ref().is_none_or(DiskIndex::is_empty)
    }

    /// Every indexed pack with its length.
    #[must_use]
    pub fn packs(&self) -> &[(PackId, u64)] {
        &self.packs
    }

    /// Whether `pack` is indexed.
    #[must_use]
    pub fn has_pack(&self, pack: &PackId) -> bool {
        self.pack_numbers.contains_key(pack)
    }

    /// The session key `pack`'s blobs are sealed with (`None`: plaintext, or not indexed).
    #[must_use]
    pub fn pack_session(&self, pack: &PackId) -> Option<Arc<SessionKey>> {
        let n = *self.pack_numbers.get(pack)?;
        self.session_of_number(n as usize)
    }

    /// The session key of the pack numbered `number` (see [`Self::at`]).
    #[must_use]
    pub fn session_of_number(&self, number: usize) -> Option<Arc<SessionKey>> {
        let s = *self.pack_sessions.get(number)?;
        self.sessions.get(s)
    }

    /// The session key a location names (`None`: plaintext).
    #[must_use]
    pub fn session_of(&self, loc: &BlobLocation) -> Option<Arc<SessionKey>> {
        self.sessions.get(loc.session)
    }

    /// Every blob id with its location (for check and debugging).
    pub fn iter(&self) -> impl Iterator<Item = (BlobId, BlobLocation)> + '_ {
        (0..self.entries.len()).filter_map(|i| self.at(i).map(|(id, loc, _)| (id, loc)))
    }
}

/// Collects packs with their session keys into index files, each session key stored once per
/// file.
#[derive(Debug, Default)]
pub struct RecordBuilder {
    record: IndexRecord,
    numbers: HashMap<SessionKey, u32>,
}

impl RecordBuilder {
    /// Adds a pack sealed in `session` (`None`: plaintext).
    pub fn push(&mut self, mut pack: IndexedPack, session: Option<&SessionKey>) {
        pack.session = match session {
            None => 0,
            Some(s) => match self.numbers.get(s) {
                Some(&n) => n,
                None => {
                    let n = u32::try_from(self.record.sessions.len()).unwrap_or(u32::MAX);
                    self.record.sessions.push(s.clone());
                    self.numbers.insert(s.clone(), n);
                    n
                }
            },
        };
        self.record.packs.push(pack);
    }

    /// The packs so far.
    #[must_use]
    pub fn packs(&self) -> &[IndexedPack] {
        &self.record.packs
    }

    /// Blobs in the packs so far.
    #[must_use]
    pub fn blob_count(&self) -> usize {
        self.record.packs.iter().map(|p| p.blobs.len()).sum()
    }

    /// The index file's record, replacing `supersedes`; the builder starts over.
    pub fn take(&mut self, supersedes: Vec<crate::format::id::IndexId>) -> IndexRecord {
        self.numbers.clear();
        let mut record = std::mem::take(&mut self.record);
        record.supersedes = supersedes;
        record
    }
}

/// The session key a pack of `record` names.
#[must_use]
pub fn session_in<'a>(record: &'a IndexRecord, pack: &IndexedPack) -> Option<&'a SessionKey> {
    record.sessions.get(pack.session as usize)
}

/// The kind and compression bits of a blob (the same in memory and in local index runs).
#[must_use]
pub fn encode_flags(kind: BlobKind, compression: Compression) -> u32 {
    let tree = if kind == BlobKind::Tree { TREE_BIT } else { 0 };
    let zstd = if compression == Compression::Zstd {
        ZSTD_BIT
    } else {
        0
    };
    tree | zstd
}

/// The kind and compression [`encode_flags`] put in `flags`.
#[must_use]
pub fn decode_flags(flags: u32) -> (BlobKind, Compression) {
    let kind = if flags & TREE_BIT != 0 {
        BlobKind::Tree
    } else {
        BlobKind::Data
    };
    let compression = if flags & ZSTD_BIT != 0 {
        Compression::Zstd
    } else {
        Compression::None
    };
    (kind, compression)
}

fn entry(number_and_condemned: u32, b: &PackedBlob) -> Entry {
    Entry {
        id: b.id.0.0,
        pack_and_flags: number_and_condemned | encode_flags(b.kind, b.compression),
        offset: b.offset,
        stored_len: b.stored_len,
        raw_len: b.raw_len,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_is_48_bytes() {
        assert_eq!(ENTRY_BYTES, 48);
    }

    #[test]
    fn lookup_after_adds() {
        let mut idx = Index::new();
        let mk = |i: u32, kind, compression| PackedBlob {
            id: BlobId(Id::hash(&i.to_le_bytes())),
            kind,
            offset: 16 + i,
            stored_len: 1,
            raw_len: if compression == Compression::Zstd {
                2
            } else {
                1
            },
            compression,
        };
        let p1 = IndexedPack {
            id: PackId(Id::hash(b"1")),
            len: 100,
            blobs: vec![
                mk(1, BlobKind::Data, Compression::None),
                mk(2, BlobKind::Tree, Compression::Zstd),
            ],
            session: 0,
        };
        let p2 = IndexedPack {
            id: PackId(Id::hash(b"2")),
            len: 100,
            blobs: vec![mk(3, BlobKind::Data, Compression::Zstd)],
            session: 0,
        };
        let s = SessionKey(vec![1; 1120]);
        idx.add_pack(&p1, None);
        idx.add_pack(&p2, Some(&s));
        idx.add_pack(&p1, Some(&s));
        assert!(idx.pack_session(&p1.id).is_none());
        assert_eq!(idx.pack_session(&p2.id).as_deref(), Some(&s));
        idx.finalize();
        assert_eq!(idx.len(), 3);
        let l = idx
            .lookup(&mk(2, BlobKind::Tree, Compression::Zstd).id)
            .unwrap();
        assert_eq!(
            (l.pack, l.kind, l.offset, l.compression),
            (p1.id, BlobKind::Tree, 18, Compression::Zstd)
        );
        let l = idx
            .lookup(&mk(3, BlobKind::Data, Compression::Zstd).id)
            .unwrap();
        assert_eq!(l.pack, p2.id);
        assert!(idx.lookup(&BlobId(Id::hash(b"none"))).is_none());
        assert_eq!(idx.iter().count(), 3);
    }

    #[test]
    fn condemned_packs_are_read_but_not_deduplicated_against() {
        let blob = |i: u32| PackedBlob {
            id: BlobId(Id::hash(&i.to_le_bytes())),
            kind: BlobKind::Data,
            offset: 16,
            stored_len: 1,
            raw_len: 1,
            compression: Compression::None,
        };
        let pack = |name: &[u8], blobs: Vec<PackedBlob>| IndexedPack {
            id: PackId(Id::hash(name)),
            len: 100,
            blobs,
            session: 0,
        };
        let (gone, live) = (
            pack(b"gone", vec![blob(1), blob(2)]),
            pack(b"live", vec![blob(2)]),
        );
        // The prune state known before the packs are added, or (as a full load streams the
        // index files) only after, when setting it marks what was added.
        for late in [false, true] {
            let mut idx = Index::new();
            if !late {
                idx.set_prune_state(7, HashMap::from([(gone.id, 6)]));
            }
            // The condemned pack comes first, so only the sort can put the live copy first.
            idx.add_pack(&gone, None);
            idx.add_pack(&live, None);
            if late {
                idx.set_prune_state(7, HashMap::from([(gone.id, 6)]));
            }
            idx.finalize();
            condemned_pack_is_read_but_not_offered(&idx, &gone, &live, &blob);
        }
    }

    fn condemned_pack_is_read_but_not_offered(
        idx: &Index,
        gone: &IndexedPack,
        live: &IndexedPack,
        blob: &dyn Fn(u32) -> PackedBlob,
    ) {
        assert_eq!((idx.epoch(), idx.condemned_at(&gone.id)), (7, Some(6)));
        assert_eq!(idx.condemned_at(&live.id), None);
        // Blob 1 lives only in the condemned pack: readable, but not there for writers.
        assert_eq!(idx.lookup(&blob(1).id).map(|l| l.pack), Some(gone.id));
        assert!(!idx.contains(&blob(1).id));
        // Blob 2 is in both: found at its live place.
        assert_eq!(idx.lookup(&blob(2).id).map(|l| l.pack), Some(live.id));
        assert!(idx.contains(&blob(2).id));
        // The condemned pack's copy of blob 2 is a duplicate, for prune to reclaim.
        let numbers = |p: &IndexedPack| idx.pack_number(&p.id).unwrap();
        assert_eq!(idx.duplicate_bytes(numbers(gone)), 1);
        assert_eq!(idx.duplicate_bytes(numbers(live)), 0);
    }

    #[test]
    fn copies_of_a_blob_in_live_packs_are_kept_in_the_first_and_counted_in_the_others() {
        let blob = |i: u32, stored_len| PackedBlob {
            id: BlobId(Id::hash(&i.to_le_bytes())),
            kind: BlobKind::Data,
            offset: 16,
            stored_len,
            raw_len: stored_len,
            compression: Compression::None,
        };
        let pack = |name: &[u8], blobs: Vec<PackedBlob>| IndexedPack {
            id: PackId(Id::hash(name)),
            len: 1000,
            blobs,
            session: 0,
        };
        // Three hosts stored blob 1 at once; the third also has blob 2 of its own.
        let packs = [
            pack(b"a", vec![blob(1, 10)]),
            pack(b"b", vec![blob(1, 10)]),
            pack(b"c", vec![blob(1, 10), blob(2, 7)]),
        ];
        let mut idx = Index::new();
        for p in &packs {
            idx.add_pack(p, None);
        }
        idx.finalize();
        assert_eq!(
            idx.lookup(&blob(1, 10).id).map(|l| l.pack),
            Some(packs[0].id)
        );
        let dup: Vec<u64> = (0..3).map(|n| idx.duplicate_bytes(n)).collect();
        assert_eq!(dup, [0, 10, 10]);
        assert_eq!(idx.len(), 2);
    }
}
