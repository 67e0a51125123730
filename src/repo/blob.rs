//! Turning blob bytes into stored bytes and back: compression then (in an encrypted
//! repository) sealing on the way in; opening, decompression and id verification on the way
//! out, so a damaged blob is an error, never wrong bytes.

use crate::crypto::Scheme;
use crate::format::FormatError;
use crate::format::crypto::SessionKey;
use crate::format::id::BlobId;
use crate::format::pack::{BlobKind, Compression};

/// Bytes ready to go into a pack.
#[derive(Debug)]
pub struct PreparedBlob {
    /// The id of the raw bytes (blake3, keyed in an encrypted repository).
    pub id: BlobId,
    /// Stored form: compressed or raw, then sealed in an encrypted repository.
    pub stored: Vec<u8>,
    /// Raw length.
    pub raw_len: u32,
    /// How `stored` is encoded.
    pub compression: Compression,
}

/// Hashes, compresses at zstd `level` (0 = store raw) and seals `raw`. Data that does not
/// shrink is stored raw. `raw` must be at most `MAX_BLOB_LEN` bytes (callers guarantee it).
///
/// # Errors
/// Sealing failed (no random numbers).
pub fn prepare(
    scheme: &Scheme,
    kind: BlobKind,
    raw: &[u8],
    level: i32,
) -> Result<PreparedBlob, FormatError> {
    compress(scheme, kind, scheme.blob_id(raw), raw, level)
}

/// As [`prepare`] for a blob whose id the caller has already computed from `raw`.
///
/// # Errors
/// As [`prepare`].
pub fn compress(
    scheme: &Scheme,
    kind: BlobKind,
    id: BlobId,
    raw: &[u8],
    level: i32,
) -> Result<PreparedBlob, FormatError> {
    let mut blob = compress_plain(id, raw, level);
    blob.stored = scheme.seal_blob(kind, &id, std::mem::take(&mut blob.stored))?;
    Ok(blob)
}

/// Compression alone.
fn compress_plain(id: BlobId, raw: &[u8], level: i32) -> PreparedBlob {
    let raw_len = u32::try_from(raw.len()).unwrap_or(u32::MAX);
    if level > 0
        && let Some(z) = COMPRESSOR.with(|c| {
            let mut c = c.borrow_mut();
            if c.as_ref().is_none_or(|(l, _)| *l != level) {
                *c = zstd::bulk::Compressor::new(level).ok().map(|z| (level, z));
            }
            c.as_mut().and_then(|(_, z)| z.compress(raw).ok())
        })
        && z.len() < raw.len()
    {
        return PreparedBlob {
            id,
            stored: z,
            raw_len,
            compression: Compression::Zstd,
        };
    }
    PreparedBlob {
        id,
        stored: raw.to_vec(),
        raw_len,
        compression: Compression::None,
    }
}

thread_local! {
    /// One compression context per thread and level, reused like the decompressor.
    static COMPRESSOR: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { std::cell::RefCell::new(None) };
    /// One zstd context per thread, reused: creating one per blob costs as much as
    /// decompressing a small blob.
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        std::cell::RefCell::new(zstd::bulk::Decompressor::new().ok());
}

/// What the index (or a pack trailer) says about a stored blob.
#[derive(Clone, Copy, Debug)]
pub struct At<'a> {
    /// Data or tree (bound into a sealed blob).
    pub kind: BlobKind,
    /// The session key of its pack (`None`: plaintext).
    pub session: Option<&'a SessionKey>,
    /// Raw length.
    pub raw_len: u32,
    /// Encoding inside the seal.
    pub compression: Compression,
}

/// Opens, decodes and verifies stored bytes against `id`.
///
/// Nothing is allocated on the word of the stored bytes: `raw_len` comes from a validated
/// index entry (at most the format's limit for the blob's kind), and a zstd frame must
/// declare exactly `raw_len` bytes of content before the output buffer is made.
///
/// # Errors
/// A message saying what failed (decryption, decompression, length, id).
pub fn unpack(
    scheme: &Scheme,
    id: &BlobId,
    stored: Vec<u8>,
    at: &At<'_>,
) -> Result<Vec<u8>, String> {
    let stored = scheme
        .open_blob(at.kind, id, at.session, stored)
        .map_err(|e| match e {
            FormatError::BackupOnly => e.to_string(),
            e => format!("blob {} {e}", id.short()),
        })?;
    decode(scheme, id, stored, at)
}

/// Decompresses an opened blob and verifies it against `id` (the second half of [`unpack`]).
///
/// # Errors
/// A message saying what failed (decompression, length, id).
pub fn decode(
    scheme: &Scheme,
    id: &BlobId,
    stored: Vec<u8>,
    at: &At<'_>,
) -> Result<Vec<u8>, String> {
    let (raw_len, compression) = (at.raw_len, at.compression);
    let raw = match compression {
        Compression::None => stored,
        Compression::Zstd => {
            match zstd::zstd_safe::get_frame_content_size(&stored) {
                Ok(Some(n)) if n == u64::from(raw_len) => {}
                Ok(Some(n)) => {
                    return Err(format!(
                        "blob {} is a zstd frame of {n} bytes, expected {raw_len}",
                        id.short()
                    ));
                }
                _ => {
                    return Err(format!(
                        "blob {} is not a zstd frame that declares its size",
                        id.short()
                    ));
                }
            }
            DECOMPRESSOR
                .with(|d| match &mut *d.borrow_mut() {
                    Some(d) => d.decompress(&stored, raw_len as usize),
                    None => zstd::bulk::decompress(&stored, raw_len as usize),
                })
                .map_err(|e| format!("blob {} does not decompress: {e}", id.short()))?
        }
    };
    if raw.len() != raw_len as usize {
        return Err(format!(
            "blob {} decodes to {} bytes, expected {raw_len}",
            id.short(),
            raw.len()
        ));
    }
    if scheme.blob_id(&raw) != *id {
        return Err(format!("blob {} does not match its hash", id.short()));
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::id::Id;

    fn at(p: &PreparedBlob) -> At<'static> {
        At {
            kind: BlobKind::Data,
            session: None,
            raw_len: p.raw_len,
            compression: p.compression,
        }
    }

    #[test]
    fn compressible_and_incompressible_round_trip() {
        let text = b"abc".repeat(1000);
        let p = prepare(&Scheme::Plain, BlobKind::Data, &text, 3).unwrap();
        assert_eq!(p.compression, Compression::Zstd);
        assert!(p.stored.len() < text.len());
        assert_eq!(
            unpack(&Scheme::Plain, &p.id, p.stored.clone(), &at(&p)).unwrap(),
            text
        );

        let mut noise = vec![0u8; 4096];
        blake3::Hasher::new()
            .update(b"seed")
            .finalize_xof()
            .fill(&mut noise);
        let p = prepare(&Scheme::Plain, BlobKind::Data, &noise, 3).unwrap();
        assert_eq!(p.compression, Compression::None);
        assert_eq!(
            unpack(&Scheme::Plain, &p.id, p.stored.clone(), &at(&p)).unwrap(),
            noise
        );
    }

    #[test]
    fn damage_is_detected() {
        let p = prepare(
            &Scheme::Plain,
            BlobKind::Data,
            &b"hello world ".repeat(100),
            3,
        )
        .unwrap();
        let mut bad = p.stored.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(unpack(&Scheme::Plain, &p.id, bad, &at(&p)).is_err());
        let raw = prepare(&Scheme::Plain, BlobKind::Data, b"xyz", 0).unwrap();
        let mut bad = raw.stored.clone();
        bad[0] ^= 1;
        assert!(unpack(&Scheme::Plain, &raw.id, bad, &at(&raw)).is_err());
    }

    #[test]
    fn a_frame_must_declare_the_indexed_size() {
        // 64 MiB of zeros in a few KiB: a bomb whose index entry claims 1 KiB.
        let bomb = zstd::bulk::compress(&vec![0u8; 64 << 20], 3).unwrap();
        assert!(bomb.len() < 64 << 10);
        let id = BlobId(Id::hash(b"x"));
        let err = unpack(
            &Scheme::Plain,
            &id,
            bomb,
            &At {
                kind: BlobKind::Data,
                session: None,
                raw_len: 1024,
                compression: Compression::Zstd,
            },
        )
        .unwrap_err();
        assert!(err.contains("zstd frame of 67108864 bytes"), "{err}");
        // A frame that does not declare its size is refused too.
        let mut enc = zstd::stream::Encoder::new(Vec::new(), 3).unwrap();
        enc.include_contentsize(false).unwrap();
        std::io::Write::write_all(&mut enc, b"hello hello hello hello").unwrap();
        let undeclared = enc.finish().unwrap();
        assert!(
            unpack(
                &Scheme::Plain,
                &id,
                undeclared,
                &At {
                    kind: BlobKind::Data,
                    session: None,
                    raw_len: 23,
                    compression: Compression::Zstd
                }
            )
            .is_err()
        );
    }
}
