//! File content → chunk list: chunks a stream, offers new chunks to the pipeline, reads
//! sparse files by their data extents (SEEK_DATA/SEEK_HOLE) so holes are recorded, never read
//! or stored, and reads block devices whole, recording their all-zero regions as holes
//! ([`super::zeros`]).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use crate::chunking::Chunker;
use crate::error::Error;
use crate::format::id::ChunkId;
use crate::format::pack::BlobKind;
use crate::format::tree::Piece;
use crate::sys;

use super::sink::BlobSink;
use super::zeros::ZeroSplit;
use crate::progress::Progress;

/// Why content could not be stored.
#[derive(Debug)]
pub enum ContentError {
    /// Reading the source failed: warn and go on.
    Source(io::Error),
    /// Writing the repository failed: stop the backup.
    Repo(Error),
}

impl From<io::Error> for ContentError {
    fn from(e: io::Error) -> Self {
        ContentError::Source(e)
    }
}

/// Counters for one stream.
#[derive(Debug, Default, Clone, Copy)]
pub struct ContentStats {
    /// Bytes read from the source.
    pub bytes_read: u64,
    /// New chunks stored.
    pub chunks_new: u64,
}

/// Chunks everything `source` yields, appending `Piece::Data`s to `pieces`.
///
/// # Errors
/// [`ContentError::Source`] on a read error, [`ContentError::Repo`] on a write error.
pub(super) fn store_stream<R: Read>(
    source: R,
    chunker: &mut Chunker,
    sink: &BlobSink<'_>,
    pieces: &mut Vec<Piece>,
    stats: &mut ContentStats,
    progress: &Progress,
) -> Result<(), ContentError> {
    chunker.run(source, |data| {
        let len = u32::try_from(data.len())
            .map_err(|_| ContentError::Source(io::Error::other("chunk too large")))?;
        stats.bytes_read += u64::from(len);
        progress.read(u64::from(len));
        let id = sink.id(data);
        if sink
            .offer(BlobKind::Data, id, data)
            .map_err(ContentError::Repo)?
        {
            stats.chunks_new += 1;
        }
        pieces.push(Piece::Data {
            id: ChunkId(id.0),
            len,
        });
        Ok::<(), ContentError>(())
    })?;
    Ok(())
}

/// Reads an open regular file: data extents are chunked, holes recorded as `Piece::Hole`.
/// Reads to the end of the file even if it grew since it was opened; the pieces describe what
/// was read.
///
/// # Errors
/// As [`store_stream`].
pub(super) fn store_file(
    file: &mut File,
    chunker: &mut Chunker,
    sink: &BlobSink<'_>,
    stats: &mut ContentStats,
    progress: &Progress,
) -> Result<Vec<Piece>, ContentError> {
    let mut pieces = Vec::new();
    let mut extent = |file: &mut File, start: u64, limit: Option<u64>, pieces: &mut Vec<Piece>| {
        file.seek(SeekFrom::Start(start))?;
        let before = stats.bytes_read;
        match limit {
            Some(n) => store_stream((&*file).take(n), chunker, sink, pieces, stats, progress)?,
            None => store_stream(&*file, chunker, sink, pieces, stats, progress)?,
        }
        Ok::<u64, ContentError>(stats.bytes_read - before)
    };
    let mut pos: u64 = 0;
    loop {
        let data_at = match sys::seek_data_or_hole(file, pos, true) {
            Ok(Some(d)) => d,
            Ok(None) => break, // only a hole (or nothing) from `pos` to the end
            Err(_) => {
                // The file system cannot tell holes: read everything from here.
                extent(file, pos, None, &mut pieces)?;
                return Ok(pieces);
            }
        };
        if data_at > pos {
            pieces.push(Piece::Hole { len: data_at - pos });
        }
        let hole_at = sys::seek_data_or_hole(file, data_at, false)?.unwrap_or(data_at);
        let size_now = file.metadata()?.len();
        // The last extent is read to EOF, so a file that grew is captured whole.
        let limit = (hole_at < size_now).then(|| hole_at - data_at);
        let read = extent(file, data_at, limit, &mut pieces)?;
        pos = data_at + read;
        if limit.is_none_or(|l| read < l) {
            return Ok(pieces); // reached EOF
        }
    }
    let size_now = file.metadata()?.len();
    if size_now > pos {
        pieces.push(Piece::Hole {
            len: size_now - pos,
        });
    }
    Ok(pieces)
}

/// Reads the first `size` bytes of an open block device (or any file without holes of its
/// own): data runs are chunked, all-zero runs recorded as `Piece::Hole`. Fewer pieces than
/// `size` mean the device ended early.
///
/// # Errors
/// As [`store_stream`].
pub(super) fn store_device(
    file: &mut File,
    size: u64,
    chunker: &mut Chunker,
    sink: &BlobSink<'_>,
    stats: &mut ContentStats,
    progress: &Progress,
) -> Result<Vec<Piece>, ContentError> {
    file.seek(SeekFrom::Start(0))?;
    let mut split = ZeroSplit::new(&*file, size);
    let mut pieces = Vec::new();
    loop {
        store_stream(&mut split, chunker, sink, &mut pieces, stats, progress)?;
        let zeros = split.skip_zeros()?;
        if zeros > 0 {
            stats.bytes_read += zeros;
            progress.read(zeros);
            pieces.push(Piece::Hole { len: zeros });
        } else if split.at_end() {
            return Ok(pieces);
        }
    }
}
