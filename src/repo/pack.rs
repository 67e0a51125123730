//! Building pack files in memory and reading their trailers back.

use crate::error::{Error, Result};
use crate::format::id::{Id, PackId};
use crate::format::pack::{self, BlobKind, PackedBlob};

use super::blob::PreparedBlob;
use std::io::Read as _;

use super::storage::{NewFile, Storage};

/// Streams blobs of one kind into a new pack file: each blob goes to storage as it is added
/// (no pack-sized buffer in memory), the pack's id is hashed along the way, and
/// [`PackWriter::finish`] appends the trailer and names the file by that id.
pub struct PackWriter<'s> {
    kind: BlobKind,
    storage: &'s dyn Storage,
    file: Option<Box<dyn NewFile + 's>>,
    hasher: blake3::Hasher,
    len: u64,
    blobs: Vec<PackedBlob>,
}

/// A pack written durably under its id.
#[derive(Debug)]
pub struct FinishedPack {
    /// blake3 of the file's bytes.
    pub id: PackId,
    /// The file's length.
    pub len: u64,
    /// Its blobs (as in the trailer).
    pub blobs: Vec<PackedBlob>,
}

/// What a new pack file is called until it is complete.
const NEW_PACK: &str = "data/<new pack>";

impl<'s> PackWriter<'s> {
    /// An empty pack for blobs of `kind`, to be written to `storage`.
    #[must_use]
    pub fn new(kind: BlobKind, storage: &'s dyn Storage) -> Self {
        PackWriter {
            kind,
            storage,
            file: None,
            hasher: blake3::Hasher::new(),
            len: pack::PACK_HEADER_LEN as u64,
            blobs: Vec::new(),
        }
    }

    /// Bytes so far (header and blobs).
    #[must_use]
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no blob was added.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty()
    }

    /// Whether the pack should be closed: it reached `target` bytes or the most blobs one
    /// pack may hold.
    #[must_use]
    pub fn is_full(&self, target: u64) -> bool {
        self.len >= target || self.blobs.len() >= pack::MAX_BLOBS_PER_PACK
    }

    /// Whether adding `stored_len` more bytes would pass the 4 GiB offset limit.
    #[must_use]
    pub fn would_overflow(&self, stored_len: usize) -> bool {
        self.len + stored_len as u64 + (64 << 20) > pack::MAX_PACK_LEN
    }

    fn append(&mut self, bytes: &[u8]) -> Result<()> {
        let file = match &mut self.file {
            Some(f) => f,
            None => {
                let mut f = self
                    .storage
                    .create_new(crate::repo::layout::DATA_DIR)
                    .map_err(|e| Error::repo_io("creating", NEW_PACK, e))?;
                let header = pack::header();
                f.append(&header)
                    .map_err(|e| Error::repo_io("writing", NEW_PACK, e))?;
                self.hasher.update(&header);
                self.file.insert(f)
            }
        };
        file.append(bytes)
            .map_err(|e| Error::repo_io("writing", NEW_PACK, e))?;
        self.hasher.update(bytes);
        Ok(())
    }

    /// Appends a blob. The caller checks [`Self::would_overflow`] first.
    ///
    /// # Errors
    /// Storage write failures.
    pub fn add(&mut self, blob: &PreparedBlob) -> Result<()> {
        let offset = u32::try_from(self.len).unwrap_or(u32::MAX);
        self.append(&blob.stored)?;
        self.len += blob.stored.len() as u64;
        self.blobs.push(PackedBlob {
            id: blob.id,
            kind: self.kind,
            offset,
            stored_len: u32::try_from(blob.stored.len()).unwrap_or(u32::MAX),
            raw_len: blob.raw_len,
            compression: blob.compression,
        });
        Ok(())
    }

    /// Appends the trailer and makes the pack durable under its id; the writer is left empty
    /// for the next pack.
    ///
    /// # Errors
    /// Storage write failures (the pack is then absent).
    pub fn finish(&mut self) -> Result<FinishedPack> {
        let blobs = std::mem::take(&mut self.blobs);
        let trailer =
            pack::encode_trailer(&blobs).map_err(|e| Error::corrupt(NEW_PACK, e.to_string()))?;
        self.append(&trailer)?;
        let len = self.len + trailer.len() as u64;
        let id = PackId(Id(*self.hasher.finalize().as_bytes()));
        let file = self.file.take();
        self.hasher.reset();
        self.len = pack::PACK_HEADER_LEN as u64;
        let path = crate::repo::layout::pack_path(&id);
        if let Some(f) = file {
            f.commit(&path)
                .map_err(|e| Error::repo_io("writing", &path, e))?;
        }
        Ok(FinishedPack { id, len, blobs })
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

/// What reading a whole pack found.
#[derive(Debug)]
pub struct PackScan {
    /// The pack's length in bytes.
    pub len: u64,
    /// Whether the blake3 of its bytes is its id.
    pub hash_ok: bool,
    /// The blobs its trailer lists.
    pub blobs: Vec<PackedBlob>,
    /// Blobs that do not decompress or do not match their id, with what is wrong.
    pub damaged: Vec<(crate::format::id::BlobId, String)>,
}

/// Reads the pack at `path` once, front to back: hashes every byte against `id`, and
/// decompresses and re-hashes every blob its trailer lists (used by `check --read-data` and
/// by `copy`'s read-back). Memory: the trailer and one blob at a time, whatever the size of
/// the file.
///
/// # Errors
/// I/O errors, or [`Error::Corrupt`] naming the pack if its framing is damaged or it ends
/// early.
pub fn scan(storage: &dyn Storage, path: &str, id: &PackId) -> Result<PackScan> {
    let (len, blobs) = read_trailer(storage, path)?;
    let io = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => Error::corrupt(path, "pack ended while being read"),
        _ => Error::repo_io("reading", path, e),
    };
    let mut reader = storage.stream(path).map_err(io)?;
    let mut hasher = blake3::Hasher::new();
    let mut pos: u64 = 0;
    let mut damaged = Vec::new();
    for b in &blobs {
        hash_through(&mut *reader, u64::from(b.offset) - pos, &mut hasher).map_err(io)?;
        let mut stored = vec![0u8; b.stored_len as usize];
        reader.read_exact(&mut stored).map_err(io)?;
        hasher.update(&stored);
        if let Err(msg) = super::blob::unpack(&b.id, stored, b.raw_len, b.compression) {
            damaged.push((b.id, msg));
        }
        pos = b.end();
    }
    hash_through(&mut *reader, len - pos, &mut hasher).map_err(io)?;
    Ok(PackScan {
        len,
        hash_ok: Id(*hasher.finalize().as_bytes()) == id.0,
        blobs,
        damaged,
    })
}

/// Feeds the next `n` bytes of `reader` to `hasher`.
fn hash_through(
    reader: &mut dyn std::io::Read,
    n: u64,
    hasher: &mut blake3::Hasher,
) -> std::io::Result<()> {
    let copied = std::io::copy(&mut reader.take(n), hasher)?;
    if copied < n {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::blob::{prepare, unpack};
    use crate::repo::storage::LocalStorage;

    #[test]
    fn written_pack_describes_itself() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::new(dir.path());
        for d in crate::repo::layout::pack_dirs() {
            s.create_dir(&d).unwrap();
        }
        let mut w = PackWriter::new(BlobKind::Data, &s);
        let blobs: Vec<_> = (0..5)
            .map(|i| prepare(&vec![i as u8; 1000 * (i + 1)], 3))
            .collect();
        for b in &blobs {
            w.add(b).unwrap();
        }
        let p = w.finish().unwrap();
        assert!(w.is_empty());
        let path = crate::repo::layout::pack_path(&p.id);
        let bytes = s.read(&path, 1 << 30).unwrap();
        assert_eq!(
            PackId(Id::hash(&bytes)),
            p.id,
            "named by the hash of its bytes"
        );
        assert_eq!(bytes.len() as u64, p.len);
        assert!(s.list("data").unwrap().is_empty(), "no temp file left");
        s.write("p", &bytes).unwrap();
        let (len, trailer) = read_trailer(&s, "p").unwrap();
        assert_eq!(len, bytes.len() as u64);
        assert_eq!(trailer, p.blobs);
        let scanned = scan(&s, &path, &p.id).unwrap();
        assert!(scanned.hash_ok && scanned.damaged.is_empty());
        assert_eq!((scanned.len, scanned.blobs), (p.len, p.blobs.clone()));
        for (i, b) in trailer.iter().enumerate() {
            let stored = bytes[b.offset as usize..b.end() as usize].to_vec();
            let raw = unpack(&b.id, stored, b.raw_len, b.compression).unwrap();
            assert_eq!(raw, vec![i as u8; 1000 * (i + 1)]);
        }
        // Truncated pack is an error naming the file, not a panic.
        for cut in [0, 10, 27, bytes.len() / 2, bytes.len() - 1] {
            let name = format!("t{cut}");
            s.write(&name, &bytes[..cut]).unwrap();
            let err = read_trailer(&s, &name).unwrap_err();
            assert!(err.to_string().contains(&name), "{err}");
            assert!(scan(&s, &name, &p.id).is_err());
        }
    }
}
