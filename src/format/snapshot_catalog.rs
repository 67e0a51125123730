//! Snapshot catalog segments: the on-disk form of the snapshot records a client keeps in its
//! cache directory, so that listing snapshots reads one file per segment instead of one
//! repository file per snapshot.
//!
//! A snapshot file is immutable and named by the hash of its bytes, so the record a segment
//! holds for an id is right for as long as that file exists; which ids exist is what the
//! listing of the repository's `snapshots/` says. Layout (docs/FORMAT.md, "Snapshot
//! catalog"):
//!
//! ```text
//! [magic 8][seal kind 1][zeros 7] then records: [snapshot id 32][sealed length u32][sealed]
//! ```
//!
//! Each record is sealed on its own ([`LocalSeal`]) with its id bound in, so any prefix of a
//! segment is a valid segment: a torn write or a truncation loses records (they are read from
//! the repository again), never gives a wrong one. A record that fails to open ends the
//! reading of its segment with an error.

use std::io::{self, Read};

use zeroize::Zeroizing;

use super::FormatError;
use super::codec::Plain;
use super::id::SnapshotId;
use super::snapshot::{MAX_SNAPSHOT_LEN, Snapshot};

/// The first eight bytes of every segment.
pub const MAGIC: &[u8; 8] = b"CFSSCAT1";
/// Bytes before the first record.
pub const HEADER_LEN: usize = 16;
/// The largest sealed record a reader accepts: a snapshot's limit and room for the seal.
pub const MAX_SEALED_LEN: usize = MAX_SNAPSHOT_LEN + 64;
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
    /// [`FormatError::Auth`]-like errors when the bytes were not sealed with this key for `aad`.
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

/// The header of a segment sealed with `seal`.
#[must_use]
pub fn header(seal: &dyn LocalSeal) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8] = seal.kind();
    h
}

/// One record: the snapshot's id and its record, sealed.
///
/// # Errors
/// Encoding or sealing failures.
pub fn record(
    seal: &dyn LocalSeal,
    id: &SnapshotId,
    snapshot: &Snapshot,
) -> Result<Vec<u8>, FormatError> {
    let sealed = seal.seal(&id.0.0, &snapshot.encode(&Plain)?)?;
    let len = u32::try_from(sealed.len())
        .ok()
        .filter(|&l| l as usize <= MAX_SEALED_LEN)
        .ok_or_else(|| FormatError::Encode("a snapshot record too large to cache".into()))?;
    let mut out = Vec::with_capacity(36 + sealed.len());
    out.extend_from_slice(&id.0.0);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// What reading a segment found.
#[derive(Debug, Default)]
pub struct SegmentRead {
    /// The records whose ids were wanted.
    pub records: Vec<(SnapshotId, Snapshot)>,
    /// Records passed over because their ids were not wanted.
    pub skipped: usize,
    /// Why the reading stopped early (damage); the records before it are good.
    pub damage: Option<FormatError>,
}

/// Reads a segment from `r`, opening the records whose ids `wanted` accepts (the others are
/// counted and passed over unopened). Reading stops at the end of the input, at a torn
/// last record (not damage: a write that did not finish) or at the first record that does
/// not open (damage).
///
/// # Errors
/// I/O errors, a header that is not a segment's, or a seal kind other than `seal`'s.
pub fn read(
    r: &mut dyn Read,
    seal: &dyn LocalSeal,
    wanted: &mut dyn FnMut(&SnapshotId) -> bool,
) -> io::Result<SegmentRead> {
    let mut head = [0u8; HEADER_LEN];
    r.read_exact(&mut head)?;
    if &head[..8] != MAGIC || head[8] != seal.kind() || head[9..].iter().any(|&b| b != 0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a snapshot catalog segment of this repository's kind",
        ));
    }
    let mut out = SegmentRead::default();
    let mut buf = Vec::new();
    loop {
        let mut fixed = [0u8; 36];
        match read_full(r, &mut fixed)? {
            0 => return Ok(out),
            36 => {}
            _ => return Ok(out),
        }
        let mut id = [0u8; 32];
        id.copy_from_slice(&fixed[..32]);
        let id = SnapshotId(super::id::Id(id));
        let len = u32::from_le_bytes([fixed[32], fixed[33], fixed[34], fixed[35]]) as usize;
        if len > MAX_SEALED_LEN {
            out.damage = Some(FormatError::Invalid(format!(
                "a cache record of {len} bytes (at most {MAX_SEALED_LEN})"
            )));
            return Ok(out);
        }
        if !wanted(&id) {
            let skipped = io::copy(&mut r.take(len as u64), &mut io::sink())?;
            if skipped == len as u64 {
                out.skipped += 1;
            }
            continue;
        }
        buf.resize(len, 0);
        if read_full(r, &mut buf)? < len {
            return Ok(out);
        }
        let opened = seal
            .open(&id.0.0, &buf)
            .and_then(|plain| Snapshot::decode(&plain, &Plain));
        match opened {
            Ok(s) => out.records.push((id, s)),
            Err(e) => {
                out.damage = Some(e);
                return Ok(out);
            }
        }
    }
}

/// Reads until `buf` is full or the input ends; returns how many bytes were read.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::id::{Id, TreeId};
    use crate::format::snapshot::Summary;

    fn snap(t: i64, host: &str) -> Snapshot {
        Snapshot {
            time_ns: t,
            hostname: host.into(),
            username: "u".into(),
            paths: vec![b"/data".to_vec().into()],
            tags: vec!["daily".into()],
            root: TreeId(Id([7; 32])),
            parent: None,
            program_version: "test".into(),
            stdin: false,
            summary: Summary::default(),
            contents: None,
            commit: None,
        }
    }

    fn seal() -> TagSeal {
        TagSeal::new(Zeroizing::new([9; 32]))
    }

    fn segment(records: &[(SnapshotId, Snapshot)]) -> Vec<u8> {
        let s = seal();
        let mut out = header(&s).to_vec();
        for (id, snap) in records {
            out.extend(record(&s, id, snap).unwrap());
        }
        out
    }

    fn id(b: u8) -> SnapshotId {
        SnapshotId(Id([b; 32]))
    }

    fn read_all(bytes: &[u8]) -> SegmentRead {
        read(&mut &bytes[..], &seal(), &mut |_| true).unwrap()
    }

    #[test]
    fn round_trip_and_skipping() {
        let recs = vec![(id(1), snap(10, "a")), (id(2), snap(20, "b"))];
        let bytes = segment(&recs);
        let all = read_all(&bytes);
        assert!(all.damage.is_none());
        assert_eq!(all.records, recs);
        let some = read(&mut &bytes[..], &seal(), &mut |i| *i == id(2)).unwrap();
        assert_eq!(some.records, vec![(id(2), snap(20, "b"))]);
        assert_eq!(some.skipped, 1);
    }

    #[test]
    fn any_prefix_reads_as_the_records_it_holds_whole() {
        let recs = vec![(id(1), snap(10, "a")), (id(2), snap(20, "b"))];
        let bytes = segment(&recs);
        let first_end = bytes.len() - (bytes.len() - HEADER_LEN) / 2;
        for cut in HEADER_LEN..bytes.len() {
            let got = read_all(&bytes[..cut]);
            assert!(got.damage.is_none(), "cut at {cut}");
            let whole = if cut >= first_end { 1 } else { 0 };
            assert_eq!(got.records, recs[..whole].to_vec(), "cut at {cut}");
        }
        assert!(read(&mut &bytes[..HEADER_LEN - 1], &seal(), &mut |_| true).is_err());
    }

    #[test]
    fn altered_bytes_moved_records_and_other_keys_do_not_open() {
        let bytes = segment(&[(id(1), snap(10, "a"))]);
        for at in HEADER_LEN + 36..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 1;
            let got = read_all(&bad);
            assert!(
                got.records.is_empty() && got.damage.is_some(),
                "flip at {at}"
            );
        }
        // The same sealed bytes under another id.
        let mut moved = bytes.clone();
        moved[HEADER_LEN] ^= 1;
        assert!(read_all(&moved).damage.is_some());
        let other = TagSeal::new(Zeroizing::new([8; 32]));
        let got = read(&mut &bytes[..], &other, &mut |_| true).unwrap();
        assert!(got.records.is_empty() && got.damage.is_some());
        // A length past the limit is damage, read without allocating it.
        let mut long = bytes.clone();
        long[HEADER_LEN + 32..HEADER_LEN + 36].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(read_all(&long).damage.is_some());
        // Not a segment, or a segment of the other seal kind.
        let mut magic = bytes.clone();
        magic[0] ^= 1;
        assert!(read(&mut &magic[..], &seal(), &mut |_| true).is_err());
        let mut kind = bytes;
        kind[8] = SEAL_AEAD;
        assert!(read(&mut &kind[..], &seal(), &mut |_| true).is_err());
    }
}
