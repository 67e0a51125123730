//! Pack files: blobs back to back, then a trailer that lists them, so a pack describes itself
//! and the index can be rebuilt from the packs alone.
//!
//! ```text
//! offset          size  field
//!      0             8  magic "CHRONOPK"
//!      8             2  format version, u16 LE
//!     10             6  salt: random (zero in packs written before the salt)
//!     16             …  blobs, each stored as-is or zstd-compressed (see PackedBlob), and
//!                       in an encrypted repository sealed (nonce, ciphertext, tag)
//!      T             …  trailer: envelope (kind PackTrailer) of PackTrailer::V1 (plain) or
//!                       V2 (encrypted, with the session key its blobs are sealed with)
//!  len-12            4  trailer length in bytes, u32 LE
//!  len-8             8  magic "CPACKEND"
//! ```
//! The pack's id (its file name) is the blake3 hash of the whole file.

use serde::{Deserialize, Serialize};

use super::codec::{self, Cipher, FileKind, PayloadCipher};
use super::crypto::SessionKey;
use super::id::BlobId;
use super::{FORMAT_VERSION, FormatError};

/// Magic at the start of a pack.
pub const PACK_MAGIC: &[u8; 8] = b"CHRONOPK";
/// Magic at the very end of a pack.
pub const PACK_END_MAGIC: &[u8; 8] = b"CPACKEND";
/// Length of the pack header.
pub const PACK_HEADER_LEN: usize = 16;
/// Length of the footer (trailer length + end magic).
pub const PACK_FOOTER_LEN: usize = 12;
/// Largest blob (uncompressed) any writer produces: the limit of a tree blob.
pub const MAX_BLOB_LEN: u32 = 512 * 1024 * 1024;
/// Largest data chunk (uncompressed): the largest chunk the chunker may cut.
pub const MAX_CHUNK_LEN: u32 = 16 * 1024 * 1024;
/// Largest pack file: offsets are held in 32 bits in memory.
pub const MAX_PACK_LEN: u64 = u32::MAX as u64;
/// Writers close a pack once it holds this many blobs, so its trailer stays small.
pub const MAX_BLOBS_PER_PACK: usize = 65_536;
/// Largest trailer accepted: about 1.3 million entries, far more than a writer puts in one
/// pack (see [`MAX_BLOBS_PER_PACK`]).
pub const MAX_TRAILER_LEN: usize = 64 * 1024 * 1024;

/// What a blob holds.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub enum BlobKind {
    /// File content.
    Data,
    /// An encoded [`super::tree::Tree`].
    Tree,
}

/// How a blob is stored. Invariant: `Zstd` blobs are strictly smaller than their raw length
/// (writers store incompressible data raw), `None` blobs are exactly their raw length; in an
/// encrypted repository, plus the cipher's overhead.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Stored raw.
    None,
    /// One zstd frame.
    Zstd,
}

/// One blob's entry in a pack trailer and in index files.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct PackedBlob {
    /// blake3 of the uncompressed bytes.
    pub id: BlobId,
    /// Data or tree.
    pub kind: BlobKind,
    /// Byte offset of the stored blob within the pack.
    pub offset: u32,
    /// Stored (possibly compressed) length.
    pub stored_len: u32,
    /// Uncompressed length.
    pub raw_len: u32,
    /// Stored raw or compressed.
    pub compression: Compression,
}

impl BlobKind {
    /// The largest raw length a blob of this kind may have.
    #[must_use]
    pub fn max_len(self) -> u32 {
        match self {
            BlobKind::Data => MAX_CHUNK_LEN,
            BlobKind::Tree => MAX_BLOB_LEN,
        }
    }
}

impl PackedBlob {
    /// Checks the per-blob invariants; `overhead` is what the repository's cipher adds to
    /// every stored blob.
    ///
    /// # Errors
    /// [`FormatError::Invalid`] describing the violation.
    pub fn validate(&self, overhead: u32) -> Result<(), FormatError> {
        let inner = self.stored_len.checked_sub(overhead);
        let ok = match (self.compression, inner) {
            (_, None) => false,
            (Compression::None, Some(n)) => n == self.raw_len,
            (Compression::Zstd, Some(n)) => n > 0 && n < self.raw_len,
        };
        if !ok || self.raw_len == 0 || self.raw_len > self.kind.max_len() {
            return Err(FormatError::Invalid(format!(
                "blob {} has stored length {} and raw length {} ({:?})",
                self.id.short(),
                self.stored_len,
                self.raw_len,
                self.compression
            )));
        }
        Ok(())
    }

    /// End offset of the stored bytes.
    #[must_use]
    pub fn end(&self) -> u64 {
        u64::from(self.offset) + u64::from(self.stored_len)
    }
}

/// The associated data of a sealed blob: it binds the stored bytes to the blob's kind and id,
/// so that no stored blob can stand in for another.
#[must_use]
pub fn blob_aad(kind: BlobKind, id: &BlobId) -> [u8; 46] {
    let mut aad = [0u8; 46];
    aad[..13].copy_from_slice(b"chronofs blob");
    aad[13] = match kind {
        BlobKind::Data => 0,
        BlobKind::Tree => 1,
    };
    aad[14..].copy_from_slice(&id.0.0);
    aad
}

/// The versioned trailer payload.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum PackTrailer {
    /// Format version 1: blobs in file order.
    V1(Vec<PackedBlob>),
    /// Format version 2 (encrypted): the session key the blobs are sealed with, and the
    /// blobs in file order.
    V2 {
        /// The writer's session key.
        session: SessionKey,
        /// Blobs in file order.
        blobs: Vec<PackedBlob>,
    },
}

/// The 16-byte header of a pack whose blobs `cipher` seals. `salt` fills the reserved bytes
/// (readers ignore them): writers put random bytes there, so that two packs are never
/// byte-identical, and a pack that a prune condemned cannot come back under the same id from a
/// writer that never knew it was condemned.
#[must_use]
pub fn header(cipher: Cipher, salt: [u8; 6]) -> [u8; PACK_HEADER_LEN] {
    let mut h = [0u8; PACK_HEADER_LEN];
    h[..8].copy_from_slice(PACK_MAGIC);
    h[8..10].copy_from_slice(&codec::version_of(cipher).to_le_bytes());
    h[10..].copy_from_slice(&salt);
    h
}

/// Trailer and footer bytes to append after the blobs; `session` is the session key of an
/// encrypted pack (`None` in a plaintext repository).
///
/// # Errors
/// Only on an encoding bug, or a session key where none belongs (or the reverse).
pub fn encode_trailer(
    blobs: &[PackedBlob],
    session: Option<&SessionKey>,
    cipher: &dyn PayloadCipher,
) -> Result<Vec<u8>, FormatError> {
    let record = match (cipher.cipher(), session) {
        (Cipher::None, None) => PackTrailer::V1(blobs.to_vec()),
        (Cipher::Aes256GcmSiv, Some(s)) => PackTrailer::V2 {
            session: s.clone(),
            blobs: blobs.to_vec(),
        },
        _ => {
            return Err(FormatError::Encode(
                "session key and cipher disagree".into(),
            ));
        }
    };
    let mut out = codec::seal_with(FileKind::PackTrailer, &record, cipher)?;
    let len = u32::try_from(out.len())
        .map_err(|_| FormatError::Encode("pack trailer over 4 GiB".into()))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(PACK_END_MAGIC);
    Ok(out)
}

/// Checks a pack's header bytes.
///
/// # Errors
/// [`FormatError`] if the magic or version is wrong.
pub fn check_header(h: &[u8]) -> Result<(), FormatError> {
    if h.len() < PACK_HEADER_LEN || &h[..8] != PACK_MAGIC {
        return Err(FormatError::BadMagic);
    }
    let v = u16::from_le_bytes([h[8], h[9]]);
    if v == 0 || v > FORMAT_VERSION {
        return Err(FormatError::Version(v));
    }
    Ok(())
}

/// From the last [`PACK_FOOTER_LEN`] bytes of a pack of `pack_len` bytes, the trailer length.
///
/// # Errors
/// [`FormatError`] if the footer is damaged or the length impossible.
pub fn trailer_len(footer: &[u8], pack_len: u64) -> Result<usize, FormatError> {
    if footer.len() != PACK_FOOTER_LEN || pack_len < (PACK_HEADER_LEN + PACK_FOOTER_LEN) as u64 {
        return Err(FormatError::Truncated(format!(
            "pack of {pack_len} bytes has no footer"
        )));
    }
    if &footer[4..] != PACK_END_MAGIC {
        return Err(FormatError::Truncated("pack footer magic missing".into()));
    }
    let len = u32::from_le_bytes([footer[0], footer[1], footer[2], footer[3]]) as usize;
    let room = pack_len - (PACK_HEADER_LEN + PACK_FOOTER_LEN) as u64;
    if len as u64 > room || len > MAX_TRAILER_LEN {
        return Err(FormatError::Invalid(format!(
            "trailer length {len} does not fit a pack of {pack_len} bytes"
        )));
    }
    Ok(len)
}

/// A decoded trailer: the session key of an encrypted pack, and its blobs.
pub type Trailer = (Option<SessionKey>, Vec<PackedBlob>);

/// Decodes and validates a trailer: every blob lies inside the blob area, in order, without
/// overlap. `trailer_start` is the offset where the trailer begins.
///
/// # Errors
/// [`FormatError`] naming the first problem.
pub fn decode_trailer(
    bytes: &[u8],
    trailer_start: u64,
    cipher: &dyn PayloadCipher,
) -> Result<Trailer, FormatError> {
    let (session, blobs) =
        match codec::open_with(FileKind::PackTrailer, bytes, MAX_TRAILER_LEN, cipher)? {
            PackTrailer::V1(blobs) if cipher.cipher() == Cipher::None => (None, blobs),
            PackTrailer::V2 { session, blobs } if cipher.cipher() != Cipher::None => {
                session.validate()?;
                (Some(session), blobs)
            }
            _ => {
                return Err(FormatError::Invalid(
                    "trailer version does not match the repository's cipher".into(),
                ));
            }
        };
    let mut pos = PACK_HEADER_LEN as u64;
    for b in &blobs {
        b.validate(cipher.blob_overhead())?;
        if u64::from(b.offset) < pos || b.end() > trailer_start {
            return Err(FormatError::Invalid(format!(
                "blob {} at {}..{} overlaps or lies outside the blob area {pos}..{trailer_start}",
                b.id.short(),
                b.offset,
                b.end()
            )));
        }
        pos = b.end();
    }
    Ok((session, blobs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::codec::Plain;
    use crate::format::id::Id;

    fn blob(offset: u32, len: u32) -> PackedBlob {
        PackedBlob {
            id: BlobId(Id::hash(&offset.to_le_bytes())),
            kind: BlobKind::Data,
            offset,
            stored_len: len,
            raw_len: len,
            compression: Compression::None,
        }
    }

    #[test]
    fn trailer_round_trip_and_overlap_rejected() {
        let blobs = vec![blob(16, 10), blob(26, 5)];
        let t = encode_trailer(&blobs, None, &Plain).unwrap();
        let pack_len = 31 + t.len() as u64;
        let tl = trailer_len(&t[t.len() - PACK_FOOTER_LEN..], pack_len).unwrap();
        assert_eq!(tl, t.len() - PACK_FOOTER_LEN);
        assert_eq!(decode_trailer(&t[..tl], 31, &Plain).unwrap(), (None, blobs));
        // Second blob overlapping the first.
        let bad = encode_trailer(&[blob(16, 10), blob(20, 5)], None, &Plain).unwrap();
        assert!(decode_trailer(&bad[..bad.len() - PACK_FOOTER_LEN], 31, &Plain).is_err());
        // Blob past the trailer start.
        assert!(decode_trailer(&t[..tl], 20, &Plain).is_err());
    }

    #[test]
    fn compression_invariant_and_kind_limits() {
        let mut b = blob(16, 10);
        b.compression = Compression::Zstd;
        assert!(b.validate(0).is_err());
        b.raw_len = 11;
        b.validate(0).unwrap();
        assert!(
            b.validate(40).is_err(),
            "shorter than the cipher's overhead"
        );
        b.stored_len = 50;
        b.validate(40).unwrap();
        b.stored_len = 10;
        b.raw_len = MAX_CHUNK_LEN + 1;
        assert!(b.validate(0).is_err(), "a data chunk over 16 MiB");
        b.kind = BlobKind::Tree;
        b.validate(0).unwrap();
        b.raw_len = MAX_BLOB_LEN + 1;
        assert!(b.validate(0).is_err());
    }

    #[test]
    fn blob_aad_binds_kind_and_id() {
        let a = BlobId(Id::hash(b"a"));
        let b = BlobId(Id::hash(b"b"));
        assert_ne!(blob_aad(BlobKind::Data, &a), blob_aad(BlobKind::Tree, &a));
        assert_ne!(blob_aad(BlobKind::Data, &a), blob_aad(BlobKind::Data, &b));
    }

    #[test]
    fn footer_rejects_impossible_lengths() {
        let mut f = [0u8; PACK_FOOTER_LEN];
        f[4..].copy_from_slice(PACK_END_MAGIC);
        f[..4].copy_from_slice(&1000u32.to_le_bytes());
        assert!(trailer_len(&f, 100).is_err());
        assert!(trailer_len(&f[..4], 100).is_err());
    }
}
