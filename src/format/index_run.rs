//! Local index runs: the on-disk form of the index a client keeps in its cache directory, so
//! that its memory grows with what it touches rather than with the repository.
//!
//! A run is derived from some of the repository's index files (its *sources*) and can always
//! be rebuilt from them. Layout (docs/FORMAT.md, "Local index runs"):
//!
//! ```text
//! [entry pages][pack pages][session pages][fence pages][header][tag 32][header length u64][magic 8]
//! ```
//!
//! Every page is [`PAGE`] bytes: fixed-size records from its start, zeros up to
//! [`PAGE_BODY`], then a 32-byte keyed blake3 tag over the run's id, the page's number and
//! the body. The header (postcard) names the sources and counts the records; its tag covers
//! the magic and its bytes. A page is checked each time it is read, so a damaged or altered
//! cache gives an error, never a wrong location.

use serde::{Deserialize, Serialize};

use super::FormatError;
use super::crypto::SessionKey;
use super::id::{IndexId, PackId};
use super::index::PruneState;

/// The last eight bytes of every run file.
pub const MAGIC: &[u8; 8] = b"CFSIRUN1";
/// Size of every page.
pub const PAGE: usize = 4096;
/// Size of a page's tag.
pub const TAG: usize = 32;
/// Bytes of records a page can hold.
pub const PAGE_BODY: usize = PAGE - TAG;
/// One entry: blob id 32, pack number and flags 4, offset 4, stored length 4, raw length 4.
pub const ENTRY_LEN: usize = 48;
/// One pack: pack id 32, length 8, source number 4, session number 4.
pub const PACK_LEN: usize = 48;
/// One fence record: the first eight bytes of a page's first blob id.
pub const FENCE_LEN: usize = 8;
/// Largest header accepted (sources with their prune states).
pub const MAX_HEADER_LEN: u64 = 256 * 1024 * 1024;
/// Most packs a run can number (the entry's pack field has 30 bits).
pub const MAX_PACKS: u64 = 1 << 30;
/// An entry's pack field: the blob is a tree.
pub const TREE_BIT: u32 = 1 << 31;
/// An entry's pack field: the blob is zstd-compressed.
pub const ZSTD_BIT: u32 = 1 << 30;
/// An entry's pack field: the pack number.
pub const PACK_MASK: u32 = ZSTD_BIT - 1;
/// A pack record's session for a plaintext pack.
pub const NO_SESSION: u32 = u32::MAX;
/// Length of the trailer after the header: tag, header length, magic.
pub const TRAILER: usize = TAG + 8 + MAGIC.len();

/// The versioned header of a run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum RunHeaderFile {
    /// Version 1.
    V1(RunHeader),
}

/// What a run holds.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RunHeader {
    /// Random: binds every page's tag to this run.
    pub run: [u8; 16],
    /// The index files the run was built from.
    pub sources: Vec<RunSource>,
    /// Entries, sorted by blob id (one per blob and pack; a blob in two packs has two).
    pub entries: u64,
    /// Pack records.
    pub packs: u64,
    /// Session records, each [`crate::format::crypto::KEM_CIPHERTEXT_LEN`] bytes (none in a
    /// plaintext repository).
    pub sessions: u64,
    /// Packs holding tree blobs, with their lengths and source numbers (read ahead by the
    /// mount).
    pub tree_packs: Vec<(PackId, u64, u32)>,
}

/// One index file a run was built from.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RunSource {
    /// The index file.
    pub id: IndexId,
    /// Entries that came from it.
    pub blobs: u64,
    /// Total length of its packs.
    pub bytes: u64,
    /// The index files it supersedes.
    pub supersedes: Vec<IndexId>,
    /// Its prune state, if a prune wrote it.
    pub prune: Option<PruneState>,
}

/// Where each section starts, in pages, derived from the header's counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sections {
    /// First pack page.
    pub packs: u64,
    /// First session page.
    pub sessions: u64,
    /// First fence page.
    pub fence: u64,
    /// Pages in all.
    pub pages: u64,
    /// Entry pages (also the number of fence records).
    pub entry_pages: u64,
}

/// Records of `len` bytes that fit one page.
#[must_use]
pub const fn per_page(len: usize) -> usize {
    PAGE_BODY / len
}

/// Pages needed for `count` records of `len` bytes.
#[must_use]
pub fn pages_for(count: u64, len: usize) -> u64 {
    count.div_ceil(per_page(len) as u64)
}

impl RunHeader {
    /// The page layout the counts imply, for records of `session_len` bytes per session.
    #[must_use]
    pub fn sections(&self, session_len: usize) -> Sections {
        let entry_pages = pages_for(self.entries, ENTRY_LEN);
        let packs = entry_pages;
        let sessions = packs + pages_for(self.packs, PACK_LEN);
        let fence = sessions + pages_for(self.sessions, session_len.max(1));
        let pages = fence + pages_for(entry_pages, FENCE_LEN);
        Sections {
            packs,
            sessions,
            fence,
            pages,
            entry_pages,
        }
    }

    /// Encodes the header.
    ///
    /// # Errors
    /// Only on an encoding bug.
    pub fn encode(&self) -> Result<Vec<u8>, FormatError> {
        postcard::to_allocvec(&RunHeaderFile::V1(self.clone()))
            .map_err(|e| FormatError::Invalid(e.to_string()))
    }

    /// Decodes and checks a header: counts within bounds, every source once.
    ///
    /// # Errors
    /// [`FormatError`] for anything malformed.
    pub fn decode(bytes: &[u8]) -> Result<RunHeader, FormatError> {
        let (file, rest): (RunHeaderFile, _) =
            postcard::take_from_bytes(bytes).map_err(|e| FormatError::Invalid(e.to_string()))?;
        if !rest.is_empty() {
            return Err(FormatError::Invalid("bytes after the run header".into()));
        }
        let RunHeaderFile::V1(h) = file;
        if h.packs > MAX_PACKS || h.tree_packs.iter().any(|t| t.2 as usize >= h.sources.len()) {
            return Err(FormatError::Invalid(format!("{} packs", h.packs)));
        }
        let blobs: u64 = h.sources.iter().map(|s| s.blobs).sum();
        if blobs != h.entries {
            return Err(FormatError::Invalid(format!(
                "the sources hold {blobs} entries, the run {}",
                h.entries
            )));
        }
        let mut ids: Vec<IndexId> = h.sources.iter().map(|s| s.id).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() != h.sources.len() {
            return Err(FormatError::Invalid("a source is named twice".into()));
        }
        Ok(h)
    }
}

/// A page's tag: keyed blake3 over the run id, the page number and the body.
#[must_use]
pub fn page_tag(key: &[u8; 32], run: &[u8; 16], page: u64, body: &[u8]) -> [u8; TAG] {
    let mut h = blake3::Hasher::new_keyed(key);
    h.update(b"page");
    h.update(run);
    h.update(&page.to_le_bytes());
    h.update(body);
    *h.finalize().as_bytes()
}

/// The header's tag: keyed blake3 over the magic and the header bytes.
#[must_use]
pub fn header_tag(key: &[u8; 32], header: &[u8]) -> [u8; TAG] {
    let mut h = blake3::Hasher::new_keyed(key);
    h.update(b"head");
    h.update(MAGIC);
    h.update(header);
    *h.finalize().as_bytes()
}

/// One entry of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunEntry {
    /// The blob id.
    pub id: [u8; 32],
    /// Pack number within the run, with [`TREE_BIT`] and [`ZSTD_BIT`].
    pub pack: u32,
    /// Offset in the pack.
    pub offset: u32,
    /// Stored length.
    pub stored_len: u32,
    /// Raw length.
    pub raw_len: u32,
}

impl RunEntry {
    /// Its bytes.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; ENTRY_LEN] {
        let mut b = [0u8; ENTRY_LEN];
        b[..32].copy_from_slice(&self.id);
        b[32..36].copy_from_slice(&self.pack.to_le_bytes());
        b[36..40].copy_from_slice(&self.offset.to_le_bytes());
        b[40..44].copy_from_slice(&self.stored_len.to_le_bytes());
        b[44..48].copy_from_slice(&self.raw_len.to_le_bytes());
        b
    }

    /// Reads one from `b` (at least [`ENTRY_LEN`] bytes).
    #[must_use]
    pub fn from_bytes(b: &[u8]) -> RunEntry {
        let mut id = [0u8; 32];
        id.copy_from_slice(&b[..32]);
        RunEntry {
            id,
            pack: le32(&b[32..36]),
            offset: le32(&b[36..40]),
            stored_len: le32(&b[40..44]),
            raw_len: le32(&b[44..48]),
        }
    }

    /// The eight-byte prefix the fence keeps.
    #[must_use]
    pub fn prefix(&self) -> u64 {
        prefix(&self.id)
    }
}

/// The first eight bytes of an id, as a big-endian number (so that it sorts as the id).
#[must_use]
pub fn prefix(id: &[u8; 32]) -> u64 {
    u64::from_be_bytes([id[0], id[1], id[2], id[3], id[4], id[5], id[6], id[7]])
}

/// One pack of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunPack {
    /// The pack.
    pub id: PackId,
    /// Its length.
    pub len: u64,
    /// The source (index file) it came from, a number into the header's sources.
    pub source: u32,
    /// Its session, a number into the session records ([`NO_SESSION`]: plaintext).
    pub session: u32,
}

impl RunPack {
    /// Its bytes.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; PACK_LEN] {
        let mut b = [0u8; PACK_LEN];
        b[..32].copy_from_slice(&self.id.0.0);
        b[32..40].copy_from_slice(&self.len.to_le_bytes());
        b[40..44].copy_from_slice(&self.source.to_le_bytes());
        b[44..48].copy_from_slice(&self.session.to_le_bytes());
        b
    }

    /// Reads one from `b` (at least [`PACK_LEN`] bytes).
    #[must_use]
    pub fn from_bytes(b: &[u8]) -> RunPack {
        let mut id = [0u8; 32];
        id.copy_from_slice(&b[..32]);
        let mut len = [0u8; 8];
        len.copy_from_slice(&b[32..40]);
        RunPack {
            id: PackId(super::id::Id(id)),
            len: u64::from_le_bytes(len),
            source: le32(&b[40..44]),
            session: le32(&b[44..48]),
        }
    }
}

/// A session record's bytes are the sealed session key itself.
#[must_use]
pub fn session_bytes(s: &SessionKey) -> &[u8] {
    &s.0
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::id::Id;

    fn header(entries: u64, blobs: &[u64]) -> RunHeader {
        RunHeader {
            run: [7; 16],
            sources: blobs
                .iter()
                .enumerate()
                .map(|(i, &b)| RunSource {
                    id: IndexId(Id::hash(&i.to_le_bytes())),
                    blobs: b,
                    bytes: 10,
                    supersedes: Vec::new(),
                    prune: None,
                })
                .collect(),
            entries,
            packs: 3,
            sessions: 0,
            tree_packs: Vec::new(),
        }
    }

    #[test]
    fn header_round_trips_and_its_counts_are_checked() {
        let h = header(100, &[60, 40]);
        assert_eq!(RunHeader::decode(&h.encode().unwrap()).unwrap(), h);
        let wrong = header(101, &[60, 40]);
        assert!(
            RunHeader::decode(&wrong.encode().unwrap())
                .unwrap_err()
                .to_string()
                .contains("the sources hold 100 entries, the run 101")
        );
        let mut twice = header(120, &[60, 60]);
        twice.sources[1].id = twice.sources[0].id;
        assert!(
            RunHeader::decode(&twice.encode().unwrap())
                .unwrap_err()
                .to_string()
                .contains("named twice")
        );
        let mut bytes = h.encode().unwrap();
        bytes.push(0);
        assert!(RunHeader::decode(&bytes).is_err());
    }

    #[test]
    fn sections_follow_the_counts() {
        // 84 entries a page: 85 entries take two pages, then one pack page, no session
        // page, one fence page.
        let s = header(85, &[85]).sections(0);
        assert_eq!(per_page(ENTRY_LEN), 84);
        assert_eq!(
            (s.entry_pages, s.packs, s.sessions, s.fence, s.pages),
            (2, 2, 3, 3, 4)
        );
    }

    #[test]
    fn records_round_trip_and_prefixes_sort_as_ids() {
        let e = RunEntry {
            id: [9; 32],
            pack: 5 | TREE_BIT,
            offset: 1,
            stored_len: 2,
            raw_len: 3,
        };
        assert_eq!(RunEntry::from_bytes(&e.to_bytes()), e);
        let p = RunPack {
            id: PackId(Id([4; 32])),
            len: 1 << 40,
            source: 2,
            session: NO_SESSION,
        };
        assert_eq!(RunPack::from_bytes(&p.to_bytes()), p);
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        a[7] = 1;
        b[0] = 1;
        assert!(prefix(&a) < prefix(&b));
    }

    #[test]
    fn tags_bind_page_number_and_run() {
        let key = [1; 32];
        let body = [0u8; PAGE_BODY];
        let t = page_tag(&key, &[0; 16], 3, &body);
        assert_ne!(t, page_tag(&key, &[0; 16], 4, &body));
        assert_ne!(t, page_tag(&key, &[1; 16], 3, &body));
        assert_ne!(t, page_tag(&[2; 32], &[0; 16], 3, &body));
    }
}
