//! Building pack files in memory and reading their trailers back.

use crate::error::{Error, Result};
use crate::format::id::{Id, PackId};
use crate::format::pack::{self, BlobKind, PackedBlob};

use super::blob::PreparedBlob;
use super::storage::Storage;

/// Accumulates blobs of one kind into a pack.
#[derive(Debug)]
pub struct PackWriter {
    kind: BlobKind,
    buf: Vec<u8>,
    blobs: Vec<PackedBlob>,
}

/// A finished pack, ready to be written.
#[derive(Debug)]
pub struct FinishedPack {
    /// blake3 of `bytes`.
    pub id: PackId,
    /// The whole file.
    pub bytes: Vec<u8>,
    /// Its blobs (as in the trailer).
    pub blobs: Vec<PackedBlob>,
}

impl PackWriter {
    /// An empty pack for blobs of `kind`.
    #[must_use]
    pub fn new(kind: BlobKind) -> Self {
        PackWriter {
            kind,
            buf: pack::header().to_vec(),
            blobs: Vec::new(),
        }
    }

    /// Bytes so far.
    #[must_use]
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether no blob was added.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty()
    }

    /// Whether adding `stored_len` more bytes would pass the 4 GiB offset limit.
    #[must_use]
    pub fn would_overflow(&self, stored_len: usize) -> bool {
        (self.buf.len() + stored_len) as u64 + (64 << 20) > pack::MAX_PACK_LEN
    }

    /// Appends a blob. The caller checks [`Self::would_overflow`] first.
    pub fn add(&mut self, blob: &PreparedBlob) {
        let offset = u32::try_from(self.buf.len()).unwrap_or(u32::MAX);
        self.buf.extend_from_slice(&blob.stored);
        self.blobs.push(PackedBlob {
            id: blob.id,
            kind: self.kind,
            offset,
            stored_len: u32::try_from(blob.stored.len()).unwrap_or(u32::MAX),
            raw_len: blob.raw_len,
            compression: blob.compression,
        });
    }

    /// Appends the trailer and names the pack; the writer is left empty for the next pack.
    ///
    /// # Errors
    /// Only on an encoding bug.
    pub fn finish(&mut self) -> Result<FinishedPack> {
        let mut bytes = std::mem::replace(&mut self.buf, pack::header().to_vec());
        let blobs = std::mem::take(&mut self.blobs);
        let trailer = pack::encode_trailer(&blobs)
            .map_err(|e| Error::corrupt("<new pack>", e.to_string()))?;
        bytes.extend_from_slice(&trailer);
        Ok(FinishedPack {
            id: PackId(Id::hash(&bytes)),
            bytes,
            blobs,
        })
    }
}

/// Reads and validates the trailer of the pack at `path`, returning its length and blobs.
///
/// # Errors
/// I/O errors, or [`Error::Corrupt`] naming the pack.
pub fn read_trailer(storage: &dyn Storage, path: &str) -> Result<(u64, Vec<PackedBlob>)> {
    let len = storage
        .len(path)
        .map_err(|e| Error::repo_io("reading", path, e))?;
    let corrupt = |e: crate::format::FormatError| Error::corrupt(path, e.to_string());
    if len < (pack::PACK_HEADER_LEN + pack::PACK_FOOTER_LEN) as u64 {
        return Err(Error::corrupt(
            path,
            format!("only {len} bytes, too short for a pack"),
        ));
    }
    let mut header = [0u8; pack::PACK_HEADER_LEN];
    storage
        .read_at(path, 0, &mut header)
        .map_err(|e| Error::repo_io("reading", path, e))?;
    pack::check_header(&header).map_err(corrupt)?;
    let mut footer = [0u8; pack::PACK_FOOTER_LEN];
    let footer_at = len - pack::PACK_FOOTER_LEN as u64;
    storage
        .read_at(path, footer_at, &mut footer)
        .map_err(|e| Error::repo_io("reading", path, e))?;
    let tlen = pack::trailer_len(&footer, len).map_err(corrupt)?;
    let start = footer_at - tlen as u64;
    let mut trailer = vec![0u8; tlen];
    storage
        .read_at(path, start, &mut trailer)
        .map_err(|e| Error::repo_io("reading", path, e))?;
    let blobs = pack::decode_trailer(&trailer, start).map_err(corrupt)?;
    Ok((len, blobs))
}

/// Decodes the blobs listed in a whole pack held in memory (used by `check --read-data`).
/// Returns the trailer's blobs; the caller verifies each one.
///
/// # Errors
/// [`Error::Corrupt`] naming `path` if the framing is damaged.
pub fn parse_whole(path: &str, bytes: &[u8]) -> Result<Vec<PackedBlob>> {
    let corrupt = |e: crate::format::FormatError| Error::corrupt(path, e.to_string());
    let len = bytes.len() as u64;
    pack::check_header(bytes).map_err(corrupt)?;
    if bytes.len() < pack::PACK_HEADER_LEN + pack::PACK_FOOTER_LEN {
        return Err(Error::corrupt(path, "too short for a pack"));
    }
    let footer_at = bytes.len() - pack::PACK_FOOTER_LEN;
    let tlen = pack::trailer_len(&bytes[footer_at..], len).map_err(corrupt)?;
    let start = footer_at - tlen;
    pack::decode_trailer(&bytes[start..footer_at], start as u64).map_err(corrupt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::blob::{prepare, unpack};
    use crate::repo::storage::LocalStorage;

    #[test]
    fn written_pack_describes_itself() {
        let mut w = PackWriter::new(BlobKind::Data);
        let blobs: Vec<_> = (0..5)
            .map(|i| prepare(&vec![i as u8; 1000 * (i + 1)], 3))
            .collect();
        for b in &blobs {
            w.add(b);
        }
        let p = w.finish().unwrap();
        assert!(w.is_empty());
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::new(dir.path());
        s.write("p", &p.bytes).unwrap();
        let (len, trailer) = read_trailer(&s, "p").unwrap();
        assert_eq!(len, p.bytes.len() as u64);
        assert_eq!(trailer, p.blobs);
        assert_eq!(parse_whole("p", &p.bytes).unwrap(), p.blobs);
        for (i, b) in trailer.iter().enumerate() {
            let stored = p.bytes[b.offset as usize..b.end() as usize].to_vec();
            let raw = unpack(&b.id, stored, b.raw_len, b.compression).unwrap();
            assert_eq!(raw, vec![i as u8; 1000 * (i + 1)]);
        }
        // Truncated pack is an error naming the file, not a panic.
        for cut in [0, 10, 27, p.bytes.len() / 2, p.bytes.len() - 1] {
            s.write("t", &p.bytes[..cut]).unwrap();
            let err = read_trailer(&s, "t").unwrap_err();
            assert!(err.to_string().contains('t'), "{err}");
            assert!(parse_whole("t", &p.bytes[..cut]).is_err());
        }
    }
}
