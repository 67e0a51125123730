//! What an entry holds: file data (from verified chunks, with read-ahead), symlink targets,
//! `SEEK_DATA`/`SEEK_HOLE`, and extended attributes.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::format::tree::{NodeKind, Piece, Xattr};

use super::dirs::Stored;
use super::inodes::{self, Target};
use super::readers::{OpenFile, PREFETCH_SIBLINGS};
use super::state::log;
use super::xattr_queries::Answer;
use super::{Errno, Vfs};

/// Bytes read from a file: a slice of one cached chunk (no copy), or assembled.
pub enum Data {
    /// `range` of a cached chunk.
    Chunk(Arc<Vec<u8>>, Range<usize>),
    /// Bytes put together from several chunks and holes.
    Owned(Vec<u8>),
}

impl Data {
    /// The bytes.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        match self {
            Data::Chunk(c, r) => c.get(r.clone()).unwrap_or_default(),
            Data::Owned(v) => v,
        }
    }
}

impl Vfs {
    /// Up to `size` bytes of file `ino` from `offset` (fewer at the end of the file).
    ///
    /// # Errors
    /// `ENOENT`, `EISDIR`, `EINVAL` (not a regular file), `EIO` (data missing or damaged: a
    /// read never returns bytes that fail verification).
    pub fn read(&self, ino: u64, offset: u64, size: u32) -> Result<Data, Errno> {
        let file = match self.state.readers.kept_file(ino) {
            Some(f) if offset != 0 => f,
            _ => {
                let (file, entry, target) = self.open_file(ino)?;
                if offset == 0
                    && let Target::Node { snap, parent, .. } = &*target
                {
                    let next = self.state.read_orders.begun(
                        *parent,
                        &entry.tree,
                        entry.pos,
                        PREFETCH_SIBLINGS,
                        &|n| super::dirs::node_ino(snap, *parent, n).0,
                    );
                    self.state.readers.prefetch_files(&entry.tree, &next);
                }
                file
            }
        };
        let spans = file.map.spans(offset, u64::from(size));
        let end = offset + spans.iter().map(|s| s.len).sum::<u64>();
        let sequential = file.next.swap(end, Ordering::Relaxed) == offset;
        if let Some(last) = spans.last()
            && (sequential || offset == 0)
        {
            self.state.readers.prefetch_after(&file, last.index);
        }
        let load = |id, len| {
            self.state.readers.chunk(id, len).map_err(|e| {
                log(&format!("{e}"));
                Errno::EIO
            })
        };
        let range = |from: u64, len: u64| {
            let from = usize::try_from(from).unwrap_or(usize::MAX);
            from..from.saturating_add(usize::try_from(len).unwrap_or(usize::MAX))
        };
        // One chunk: reply straight from the cached chunk.
        if let [s] = spans.as_slice()
            && let Piece::Data { id, len } = &s.piece
        {
            let chunk = load(id, *len)?;
            let r = range(s.from, s.len);
            if chunk.get(r.clone()).is_none() {
                return Err(Errno::EIO);
            }
            return Ok(Data::Chunk(chunk, r));
        }
        let mut out = Vec::with_capacity(spans.iter().map(|s| s.len as usize).sum());
        for s in &spans {
            match &s.piece {
                Piece::Hole { .. } => out.resize(out.len() + s.len as usize, 0),
                Piece::Data { id, len } => {
                    let chunk = load(id, *len)?;
                    let bytes = chunk.get(range(s.from, s.len)).ok_or(Errno::EIO)?;
                    out.extend_from_slice(bytes);
                }
            }
        }
        Ok(Data::Owned(out))
    }

    /// The next offset at or after `offset` where data (`data`) or a hole starts.
    ///
    /// # Errors
    /// `ENXIO` past the end; as [`Self::read`] for what is not a file.
    pub fn seek(&self, ino: u64, offset: u64, data: bool) -> Result<u64, Errno> {
        let file = match self.state.readers.kept_file(ino) {
            Some(f) => f,
            None => self.open_file(ino)?.0,
        };
        file.map.seek(offset, data).ok_or(Errno::ENXIO)
    }

    /// The target of symlink `ino`.
    ///
    /// # Errors
    /// `ENOENT`, or `EINVAL` for what is not a symlink.
    pub fn readlink(&self, ino: u64) -> Result<Vec<u8>, Errno> {
        let t = self.state.table.get(ino).ok_or(Errno::ENOENT)?;
        match &*t {
            Target::Link { target, .. } => Ok(target.as_bytes().to_vec()),
            _ => match self.stored(&t, None)?.as_ref().map(|e| &e.node().kind) {
                Some(NodeKind::Symlink { target }) => Ok(target.as_bytes().to_vec()),
                _ => Err(Errno::EINVAL),
            },
        }
    }

    /// The value of extended attribute `name` of `ino`.
    ///
    /// # Errors
    /// `ENODATA` if it has none by that name; `EOPNOTSUPP` for `security.selinux` (the mount
    /// does no labelling of its own: "not supported" lets `ls -l` stop asking for every file);
    /// `ENOSYS` once no snapshot holds any, `EOPNOTSUPP` for an ACL when no snapshot holds one
    /// (see [`super::xattr_queries`]).
    pub fn xattr(&self, ino: u64, name: &[u8]) -> Result<Vec<u8>, Errno> {
        match self.state.xattr_answer(Some(name)) {
            Answer::Stored => {}
            Answer::NotImplemented { .. } => return Err(Errno::ENOSYS),
            Answer::NotSupported => return Err(Errno::EOPNOTSUPP),
        }
        match self
            .xattrs(ino)?
            .into_iter()
            .find(|x| x.name.as_bytes() == name)
        {
            Some(x) => Ok(x.value.as_bytes().to_vec()),
            None if name == b"security.selinux" => Err(Errno::EOPNOTSUPP),
            None => Err(Errno::ENODATA),
        }
    }

    /// The names of the extended attributes of `ino`, each followed by a NUL.
    ///
    /// # Errors
    /// `ENOENT`; `ENOSYS` once no snapshot holds any.
    pub fn xattr_names(&self, ino: u64) -> Result<Vec<u8>, Errno> {
        if self.state.xattr_answer(None) != Answer::Stored {
            return Err(Errno::ENOSYS);
        }
        let mut names = Vec::new();
        for x in self.xattrs(ino)? {
            names.extend_from_slice(x.name.as_bytes());
            names.push(0);
        }
        Ok(names)
    }

    fn xattrs(&self, ino: u64) -> Result<Vec<Xattr>, Errno> {
        if ino < inodes::FIRST_DERIVED {
            return Ok(Vec::new());
        }
        let t = self.state.table.get(ino).ok_or(Errno::ENOENT)?;
        Ok(self
            .stored(&t, None)?
            .map(|e| e.node().xattrs.clone())
            .unwrap_or_default())
    }

    /// The read state of a stored regular file, and its entry (the file map is kept per
    /// inode, so later reads need not fetch the tree).
    fn open_file(&self, ino: u64) -> Result<(Arc<OpenFile>, Stored, Arc<Target>), Errno> {
        let t = self.state.table.get(ino).ok_or(Errno::ENOENT)?;
        let entry = self.stored(&t, None)?.ok_or(Errno::EINVAL)?;
        match &entry.node().kind {
            NodeKind::File { content } => Ok((self.state.readers.file(ino, content), entry, t)),
            NodeKind::Dir { .. } => Err(Errno::EISDIR),
            _ => Err(Errno::EINVAL),
        }
    }
}
