//! Snapshot catalog segments: the on-disk form of the snapshot records a client keeps in its
//! cache directory, so that a listing reads one small table per segment instead of one
//! repository file per snapshot, and opens only the records it needs.
//!
//! A snapshot file is immutable and named by the hash of its bytes, so the record a segment
//! holds for an id is right for as long as that file exists; which ids exist is what the
//! listing of the repository's `snapshots/` says. Layout (docs/FORMAT.md, "Snapshot
//! catalog"):
//!
//! ```text
//! [magic 8][seal kind 1][zeros 3][count u32] [count table entries of 96 bytes] [tag 32] [bodies]
//! ```
//!
//! A table entry holds what a listing selects by without opening a record: the snapshot id,
//! its time, keyed tags of its host and of its group (host, paths, stdin), the writer that
//! committed it (for fences), and the length of its body. The tag (keyed blake3 over the
//! header and the table) authenticates the table; each body is sealed on its own with its id
//! bound in ([`LocalSeal`]), and what it holds is checked against its entry when opened.

use std::io::{self, Read};

use zeroize::Zeroizing;

use super::FormatError;
use super::bytes::ByteString;
use super::codec::Plain;
use super::id::{Id, SnapshotId, WriterId};
use super::snapshot::{MAX_SNAPSHOT_LEN, Snapshot};

/// The first eight bytes of every segment.
pub const MAGIC: &[u8; 8] = b"CFSSCAT2";
/// Bytes before the table.
pub const HEADER_LEN: usize = 16;
/// Bytes of a table entry.
pub const ENTRY_LEN: usize = 96;
/// Bytes of the table's tag.
pub const TAG_LEN: usize = 32;
/// The largest sealed body a reader accepts: a snapshot's limit and room for the seal.
pub const MAX_SEALED_LEN: usize = MAX_SNAPSHOT_LEN + 64;
/// The most entries a segment may hold (a table of 1.5 GiB).
pub const MAX_ENTRIES: u32 = 16 << 20;
/// Seal kind of a tag keyed by the repository id (plaintext repositories).
pub const SEAL_TAG: u8 = 1;
/// Seal kind of AES-256-GCM-SIV under a key only a full key holder derives.
pub const SEAL_AEAD: u8 = 2;

/// Seals and opens the records of a client's local cache. `aad` is bound to the record
/// (its id): a record moved to another id does not open.
pub trait LocalSeal: Send + Sync {
    /// The seal kind written in a segment's header.
    fn kind(&self) -> u8;
    /// Seals `plain`.
    ///
    /// # Errors
    /// Only when no random numbers can be had.
    fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, FormatError>;
    /// Opens what [`LocalSeal::seal`] made.
    ///
    /// # Errors
    /// When the bytes were not sealed with this key for `aad`.
    fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, FormatError>;
}

/// The seal of a plaintext repository's cache: the record followed by a keyed blake3 tag over
/// the aad's length, the aad and the record. Its key derives from the repository id, which
/// anyone who can read the repository knows: it finds damage, it does not authenticate.
pub struct TagSeal {
    key: Zeroizing<[u8; 32]>,
}

impl TagSeal {
    /// A seal under `key`.
    #[must_use]
    pub fn new(key: Zeroizing<[u8; 32]>) -> TagSeal {
        TagSeal { key }
    }

    fn tag(&self, aad: &[u8], plain: &[u8]) -> blake3::Hash {
        let mut h = blake3::Hasher::new_keyed(&self.key);
        h.update(&(aad.len() as u64).to_le_bytes());
        h.update(aad);
        h.update(plain);
        h.finalize()
    }
}

impl LocalSeal for TagSeal {
    fn kind(&self) -> u8 {
        SEAL_TAG
    }

    fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, FormatError> {
        let mut out = Vec::with_capacity(plain.len() + 32);
        out.extend_from_slice(plain);
        out.extend_from_slice(self.tag(aad, plain).as_bytes());
        Ok(out)
    }

    fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, FormatError> {
        let split = sealed
            .len()
            .checked_sub(32)
            .ok_or_else(|| FormatError::Truncated("a cache record shorter than its tag".into()))?;
        let (plain, tag) = sealed.split_at(split);
        // blake3::Hash compares in constant time.
        if self.tag(aad, plain) != blake3::Hash::from_slice(tag).map_err(|_| bad_tag())? {
            return Err(bad_tag());
        }
        Ok(plain.to_vec())
    }
}

fn bad_tag() -> FormatError {
    FormatError::Invalid("a cache record's tag does not match (damaged or altered)".into())
}

/// The keys of a catalog: the seal of its bodies and the key of its table's tag and of the
/// host and group tags.
pub struct Keys<'a> {
    /// Seals each body.
    pub seal: Box<dyn LocalSeal + 'a>,
    /// Keys the table's tag, and the host and group tags.
    pub tag_key: Zeroizing<[u8; 32]>,
}

impl Keys<'_> {
    fn tag8(&self, domain: &[u8], parts: &[&[u8]]) -> u64 {
        let mut h = blake3::Hasher::new_keyed(&self.tag_key);
        h.update(domain);
        for p in parts {
            h.update(&(p.len() as u64).to_le_bytes());
            h.update(p);
        }
        let b = h.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&b.as_bytes()[..8]);
        u64::from_le_bytes(first)
    }

    /// The tag of host name `host`.
    #[must_use]
    pub fn host_tag(&self, host: &str) -> u64 {
        self.tag8(b"host", &[host.as_bytes()])
    }

    /// The tag of a group of snapshots: a host, source paths in any order, and whether they
    /// came from stdin.
    #[must_use]
    pub fn group_tag(&self, host: &str, paths: &[ByteString], stdin: bool) -> u64 {
        let mut sorted: Vec<&[u8]> = paths.iter().map(ByteString::as_bytes).collect();
        sorted.sort_unstable();
        let mut parts = vec![host.as_bytes(), if stdin { b"1" } else { b"0" }];
        parts.extend(sorted);
        self.tag8(b"group", &parts)
    }

    /// The tag of `s`'s group.
    #[must_use]
    pub fn group_tag_of(&self, s: &Snapshot) -> u64 {
        self.group_tag(&s.hostname, &s.paths, s.stdin)
    }

    fn table_tag(&self, header: &[u8], table: &[u8]) -> blake3::Hash {
        let mut h = blake3::Hasher::new_keyed(&self.tag_key);
        h.update(header);
        h.update(table);
        h.finalize()
    }
}

/// What a table says of one snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The snapshot file's id.
    pub id: SnapshotId,
    /// The snapshot's time.
    pub time_ns: i64,
    /// Its host's tag ([`Keys::host_tag`]).
    pub host: u64,
    /// Its group's tag ([`Keys::group_tag`]).
    pub group: u64,
    /// The writer that committed it, if it names one.
    pub writer: Option<WriterId>,
    /// Where its body starts in the segment, and its length.
    pub body: (u64, u32),
}

impl Entry {
    /// The entry of `snapshot`, file `id`, its body not placed yet.
    #[must_use]
    pub fn of(keys: &Keys<'_>, id: SnapshotId, snapshot: &Snapshot) -> Entry {
        Entry {
            id,
            time_ns: snapshot.time_ns,
            host: keys.host_tag(&snapshot.hostname),
            group: keys.group_tag_of(snapshot),
            writer: snapshot.commit.map(|c| c.writer),
            body: (0, 0),
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.0.0);
        out.extend_from_slice(&self.time_ns.to_le_bytes());
        out.extend_from_slice(&self.host.to_le_bytes());
        out.extend_from_slice(&self.group.to_le_bytes());
        out.extend_from_slice(&self.writer.map_or([0; 32], |w| w.0.0));
        out.extend_from_slice(&[u8::from(self.writer.is_some()), 0, 0, 0]);
        out.extend_from_slice(&self.body.1.to_le_bytes());
    }

    fn decode(b: &[u8], offset: u64) -> Result<Entry, FormatError> {
        let arr = |r: std::ops::Range<usize>| -> [u8; 8] {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[r]);
            a
        };
        let id32 = |r: std::ops::Range<usize>| -> [u8; 32] {
            let mut a = [0u8; 32];
            a.copy_from_slice(&b[r]);
            a
        };
        let has_writer = match b[88] {
            0 => false,
            1 => true,
            f => return Err(FormatError::Invalid(format!("catalog entry flags {f}"))),
        };
        if b[89..92] != [0, 0, 0] || (!has_writer && b[56..88].iter().any(|&x| x != 0)) {
            return Err(FormatError::Invalid(
                "catalog entry padding not zero".into(),
            ));
        }
        let len = u32::from_le_bytes([b[92], b[93], b[94], b[95]]);
        if len as usize > MAX_SEALED_LEN {
            return Err(FormatError::Invalid(format!(
                "a catalog body of {len} bytes (at most {MAX_SEALED_LEN})"
            )));
        }
        Ok(Entry {
            id: SnapshotId(Id(id32(0..32))),
            time_ns: i64::from_le_bytes(arr(32..40)),
            host: u64::from_le_bytes(arr(40..48)),
            group: u64::from_le_bytes(arr(48..56)),
            writer: has_writer.then(|| WriterId(Id(id32(56..88)))),
            body: (offset, len),
        })
    }

    /// Whether the opened record is the one this entry describes.
    fn describes(&self, keys: &Keys<'_>, s: &Snapshot) -> bool {
        let mut e = Entry::of(keys, self.id, s);
        e.body = self.body;
        e == *self
    }
}

/// A whole segment holding `records`, in that order.
///
/// # Errors
/// Encoding or sealing failures, or more than [`MAX_ENTRIES`] records.
pub fn encode<'s>(
    keys: &Keys<'_>,
    records: impl ExactSizeIterator<Item = (SnapshotId, Body<'s>)>,
) -> Result<Vec<u8>, FormatError> {
    let count = u32::try_from(records.len())
        .ok()
        .filter(|&c| c <= MAX_ENTRIES)
        .ok_or_else(|| FormatError::Encode("too many snapshots for one segment".into()))?;
    // Sorted by id, so that a reader matches the table against a sorted listing in one pass.
    let mut records: Vec<(SnapshotId, Body<'s>)> = records.collect();
    records.sort_unstable_by_key(|(id, _)| *id);
    let mut table = Vec::with_capacity(count as usize * ENTRY_LEN);
    let mut bodies = Vec::new();
    for (id, body) in records {
        let (entry, sealed) = match body {
            Body::Record(s) => {
                let sealed = keys.seal.seal(&id.0.0, &s.encode(&Plain)?)?;
                (Entry::of(keys, id, s), std::borrow::Cow::Owned(sealed))
            }
            Body::Sealed(entry, sealed) => (entry, std::borrow::Cow::Borrowed(sealed)),
        };
        let len = u32::try_from(sealed.len())
            .ok()
            .filter(|&l| l as usize <= MAX_SEALED_LEN)
            .ok_or_else(|| FormatError::Encode("a snapshot record too large to cache".into()))?;
        Entry {
            body: (0, len),
            ..entry
        }
        .encode(&mut table);
        bodies.extend_from_slice(&sealed);
    }
    let mut header = [0u8; HEADER_LEN];
    header[..8].copy_from_slice(MAGIC);
    header[8] = keys.seal.kind();
    header[12..16].copy_from_slice(&count.to_le_bytes());
    let mut out = Vec::with_capacity(HEADER_LEN + table.len() + TAG_LEN + bodies.len());
    out.extend_from_slice(&header);
    out.extend_from_slice(&table);
    out.extend_from_slice(keys.table_tag(&header, &table).as_bytes());
    out.extend_from_slice(&bodies);
    Ok(out)
}

/// A record to write into a segment: a snapshot to seal, or a body sealed already (copied
/// from another segment when the catalog is rewritten) with its entry.
pub enum Body<'s> {
    /// Seal this record.
    Record(&'s Snapshot),
    /// This entry and its sealed body, as read.
    Sealed(Entry, &'s [u8]),
}

/// Reads a segment's table from `r` (positioned at its start), checking its tag and that the
/// bodies it describes fill the rest of a file of `file_len` bytes exactly. `keep` is handed
/// each entry once, in table order, and keeps it (returning true) or passes it over; the
/// counts of both are returned. The entries kept are good only if this returns `Ok`: a caller
/// drops them on an error. The table is read in pieces, and the entries are not gathered
/// here: memory grows with what the caller keeps.
///
/// # Errors
/// I/O errors, or [`io::ErrorKind::InvalidData`] naming what is wrong.
pub fn read_table(
    r: &mut dyn Read,
    keys: &Keys<'_>,
    file_len: u64,
    keep: &mut dyn FnMut(Entry) -> bool,
) -> io::Result<(usize, usize)> {
    let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidData, m);
    let mut header = [0u8; HEADER_LEN];
    r.read_exact(&mut header)?;
    if &header[..8] != MAGIC || header[8] != keys.seal.kind() || header[9..12] != [0, 0, 0] {
        return Err(invalid(
            "not a snapshot catalog segment of this repository's kind".into(),
        ));
    }
    let count = u32::from_le_bytes([header[12], header[13], header[14], header[15]]);
    let table_len = u64::from(count) * ENTRY_LEN as u64;
    if count > MAX_ENTRIES || (HEADER_LEN + TAG_LEN) as u64 + table_len > file_len {
        return Err(invalid(format!(
            "a table of {count} entries in a file of {file_len} bytes"
        )));
    }
    let mut hasher = blake3::Hasher::new_keyed(&keys.tag_key);
    hasher.update(&header);
    let mut offset = (HEADER_LEN + TAG_LEN) as u64 + table_len;
    let (mut kept, mut passed) = (0, 0);
    let mut piece = vec![0u8; ENTRY_LEN * 4096];
    let mut left = count as usize;
    while left > 0 {
        let n = left.min(4096);
        let bytes = &mut piece[..n * ENTRY_LEN];
        r.read_exact(bytes)?;
        hasher.update(bytes);
        for raw in bytes.chunks_exact(ENTRY_LEN) {
            let e = Entry::decode(raw, offset).map_err(|e| invalid(e.to_string()))?;
            offset += u64::from(e.body.1);
            if keep(e) {
                kept += 1;
            } else {
                passed += 1;
            }
        }
        left -= n;
    }
    let mut tag = [0u8; TAG_LEN];
    r.read_exact(&mut tag)?;
    if hasher.finalize() != blake3::Hash::from_bytes(tag) {
        return Err(invalid(
            "the table's tag does not match (damaged or altered)".into(),
        ));
    }
    if offset != file_len {
        return Err(invalid(format!(
            "the bodies end at byte {offset}, the file at {file_len}"
        )));
    }
    Ok((kept, passed))
}

/// Opens `sealed`, the body of `entry`, and checks that it is the record the entry describes.
///
/// # Errors
/// A body that does not open or decode, or that holds another record.
pub fn open_body(keys: &Keys<'_>, entry: &Entry, sealed: &[u8]) -> Result<Snapshot, FormatError> {
    let s = Snapshot::decode(&keys.seal.open(&entry.id.0.0, sealed)?, &Plain)?;
    if !entry.describes(keys, &s) {
        return Err(FormatError::Invalid(
            "a catalog record differs from its table entry".into(),
        ));
    }
    Ok(s)
}

/// What the tests of the catalog's files share.
#[cfg(test)]
pub(crate) mod test_support {
    use super::{Keys, TagSeal};
    use zeroize::Zeroizing;

    /// Keys of a plaintext repository's catalog, made from `k` (another `k`: another
    /// repository).
    pub fn keys(k: u8) -> Keys<'static> {
        Keys {
            seal: Box::new(TagSeal::new(Zeroizing::new([k; 32]))),
            tag_key: Zeroizing::new([k ^ 0x55; 32]),
        }
    }

    /// Asserts that `refused` holds for `bytes` with any one byte altered and cut at any length.
    pub fn assert_every_flip_and_cut_refused(bytes: &[u8], refused: impl Fn(&[u8]) -> bool) {
        for at in 0..bytes.len() {
            let mut bad = bytes.to_vec();
            bad[at] ^= 1;
            assert!(refused(&bad), "flip at {at}");
        }
        for cut in 0..bytes.len() {
            assert!(refused(&bytes[..cut]), "cut at {cut}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{assert_every_flip_and_cut_refused, keys};
    use super::*;
    use crate::format::snapshot::{Commit, Summary};

    fn snap(t: i64, host: &str) -> Snapshot {
        Snapshot {
            time_ns: t,
            hostname: host.into(),
            username: "u".into(),
            paths: vec![b"/data".to_vec().into(), b"/etc".to_vec().into()],
            tags: vec!["daily".into()],
            root: crate::format::id::TreeId(Id([7; 32])),
            parent: None,
            program_version: "test".into(),
            stdin: false,
            summary: Summary::default(),
            contents: None,
            commit: (t % 2 == 0).then_some(Commit {
                writer: WriterId(Id([t as u8; 32])),
                basis: 3,
            }),
            consistency: None,
        }
    }

    fn id(b: u8) -> SnapshotId {
        SnapshotId(Id([b; 32]))
    }

    fn segment(k: &Keys<'_>, recs: &[(SnapshotId, Snapshot)]) -> Vec<u8> {
        encode(k, recs.iter().map(|(i, s)| (*i, Body::Record(s)))).unwrap()
    }

    /// Every entry of the segment `bytes`.
    fn table(k: &Keys<'_>, bytes: &[u8]) -> io::Result<Vec<Entry>> {
        let mut entries = Vec::new();
        let mut keep = |e| {
            entries.push(e);
            true
        };
        let (kept, passed) = read_table(&mut &bytes[..], k, bytes.len() as u64, &mut keep)?;
        assert_eq!((kept, passed), (entries.len(), 0));
        Ok(entries)
    }

    fn read_all(k: &Keys<'_>, bytes: &[u8]) -> io::Result<Vec<(Entry, Snapshot)>> {
        let entries = table(k, bytes)?;
        entries
            .into_iter()
            .map(|e| {
                let (o, l) = (e.body.0 as usize, e.body.1 as usize);
                let s = open_body(k, &e, &bytes[o..o + l]).map_err(io::Error::other)?;
                Ok((e, s))
            })
            .collect()
    }

    #[test]
    fn round_trip_tags_and_copying_sealed_bodies() {
        let k = keys(1);
        let recs = vec![(id(1), snap(10, "a")), (id(2), snap(21, "b"))];
        let bytes = segment(&k, &recs);
        let got = read_all(&k, &bytes).unwrap();
        assert_eq!(got.len(), 2);
        for ((e, s), (i, want)) in got.iter().zip(&recs) {
            assert_eq!((e.id, s), (*i, want));
            assert_eq!(e.time_ns, want.time_ns);
            assert_eq!(e.host, k.host_tag(&want.hostname));
            assert_eq!(e.writer, want.commit.map(|c| c.writer));
        }
        assert_ne!(got[0].0.host, got[1].0.host);
        // Paths in another order: the same group.
        let mut swapped = snap(10, "a");
        swapped.paths.reverse();
        assert_eq!(k.group_tag_of(&swapped), got[0].0.group);
        assert_ne!(k.group_tag_of(&snap(10, "b")), got[0].0.group);
        // A rewrite copies sealed bodies as they are.
        let (o, l) = (got[1].0.body.0 as usize, got[1].0.body.1 as usize);
        let copied = encode(
            &k,
            [(id(2), Body::Sealed(got[1].0, &bytes[o..o + l]))].into_iter(),
        )
        .unwrap();
        assert_eq!(read_all(&k, &copied).unwrap()[0].1, recs[1].1);
    }

    #[test]
    fn any_change_truncation_or_other_key_is_an_error() {
        let k = keys(1);
        let bytes = segment(&k, &[(id(1), snap(10, "a")), (id(2), snap(20, "b"))]);
        assert_every_flip_and_cut_refused(&bytes, |b| read_all(&k, b).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(read_all(&k, &longer).is_err());
        assert!(read_all(&keys(2), &bytes).is_err());
        // A count that claims more than the file holds is refused before allocating.
        let mut huge = bytes.clone();
        huge[12..16].copy_from_slice(&MAX_ENTRIES.to_le_bytes());
        assert!(read_all(&k, &huge).is_err());
        // A body moved under another entry does not open.
        let e = table(&k, &bytes).unwrap();
        let (o, l) = (e[0].body.0 as usize, e[0].body.1 as usize);
        assert!(open_body(&k, &e[1], &bytes[o..o + l]).is_err());
    }
}
