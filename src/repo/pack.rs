//! Building pack files in memory and reading their trailers back.

use crate::crypto::Scheme;
use crate::error::{Error, Result};
use crate::format::crypto::SessionKey;
use crate::format::id::{Id, PackId};
use crate::format::pack::{self, BlobKind, PackedBlob};

use super::blob::PreparedBlob;
use std::io::Read as _;

use crate::storage::{NewFile, Storage};

/// Streams blobs of one kind into a new pack file: each blob goes to storage as it is added
/// (no pack-sized buffer in memory), the pack's id is hashed along the way, and
/// [`PackWriter::finish`] appends the trailer and names the file by that id.
pub struct PackWriter<'s> {
    kind: BlobKind,
    storage: &'s dyn Storage,
    scheme: &'s Scheme,
    session: Option<SessionKey>,
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
    /// An empty pack for blobs of `kind`, to be written to `storage`; blobs come sealed by
    /// `scheme` in `session` (`None` in a plaintext repository).
    #[must_use]
    pub fn new(
        kind: BlobKind,
        storage: &'s dyn Storage,
        scheme: &'s Scheme,
        session: Option<SessionKey>,
    ) -> Self {
        PackWriter {
            kind,
            storage,
            scheme,
            session,
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
                let mut salt = [0u8; 6];
                getrandom::fill(&mut salt)
                    .map_err(|e| Error::repo_io("writing", NEW_PACK, std::io::Error::other(e)))?;
                let header = pack::header(self.scheme.payload().cipher(), salt);
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
        let trailer = pack::encode_trailer(&blobs, self.session.as_ref(), self.scheme.payload())
            .map_err(|e| Error::corrupt(NEW_PACK, e.to_string()))?;
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

/// A pack's length, the session key its blobs are sealed with, and its blobs.
pub type PackListing = (u64, Option<SessionKey>, Vec<PackedBlob>);

/// Reads and validates the trailer of the pack at `path` in a repository sealed by `scheme`.
///
/// # Errors
/// I/O errors, or [`Error::Corrupt`] naming the pack.
pub fn read_trailer(storage: &dyn Storage, path: &str, scheme: &Scheme) -> Result<PackListing> {
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
    let (session, blobs) =
        pack::decode_trailer(&trailer, start, scheme.payload()).map_err(corrupt)?;
    Ok((len, session, blobs))
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
/// decrypts, decompresses and re-hashes every blob its trailer lists (used by
/// `check --read-data` and by `copy`'s read-back). Memory: the trailer and one blob at a time,
/// whatever the size of the file.
///
/// # Errors
/// I/O errors, or [`Error::Corrupt`] naming the pack if its framing is damaged or it ends
/// early.
pub fn scan(storage: &dyn Storage, path: &str, id: &PackId, scheme: &Scheme) -> Result<PackScan> {
    let (len, session, blobs) = read_trailer(storage, path, scheme)?;
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
        let at = super::blob::At {
            kind: b.kind,
            session: session.as_ref(),
            raw_len: b.raw_len,
            compression: b.compression,
        };
        if let Err(msg) = super::blob::unpack(scheme, &b.id, stored, &at) {
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
    use crate::storage::LocalStorage;

    #[test]
    fn written_pack_describes_itself() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::new(dir.path());
        for d in crate::repo::layout::pack_dirs() {
            s.create_dir(&d).unwrap();
        }
        let scheme = Scheme::Plain;
        let mut w = PackWriter::new(BlobKind::Data, &s, &scheme, None);
        let blobs: Vec<_> = (0..5)
            .map(|i| prepare(&scheme, BlobKind::Data, &vec![i as u8; 1000 * (i + 1)], 3).unwrap())
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
        let (len, _, trailer) = read_trailer(&s, "p", &scheme).unwrap();
        assert_eq!(len, bytes.len() as u64);
        assert_eq!(trailer, p.blobs);
        let scanned = scan(&s, &path, &p.id, &scheme).unwrap();
        assert!(scanned.hash_ok && scanned.damaged.is_empty());
        assert_eq!((scanned.len, scanned.blobs), (p.len, p.blobs.clone()));
        for (i, b) in trailer.iter().enumerate() {
            let stored = bytes[b.offset as usize..b.end() as usize].to_vec();
            let at = super::super::blob::At {
                kind: b.kind,
                session: None,
                raw_len: b.raw_len,
                compression: b.compression,
            };
            let raw = unpack(&scheme, &b.id, stored, &at).unwrap();
            assert_eq!(raw, vec![i as u8; 1000 * (i + 1)]);
        }
        // Truncated pack is an error naming the file, not a panic.
        for cut in [0, 10, 27, bytes.len() / 2, bytes.len() - 1] {
            let name = format!("t{cut}");
            s.write(&name, &bytes[..cut]).unwrap();
            let err = read_trailer(&s, &name, &scheme).unwrap_err();
            assert!(err.to_string().contains(&name), "{err}");
            assert!(scan(&s, &name, &p.id, &scheme).is_err());
        }
    }
}
