//! File content → chunk list: chunks a stream, stores new chunks, and reads sparse files by
//! their data extents (SEEK_DATA/SEEK_HOLE) so holes are recorded, never read or stored.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use crate::chunking;
use crate::error::Error;
use crate::format::config::ChunkerParams;
use crate::format::id::ChunkId;
use crate::format::pack::BlobKind;
use crate::format::tree::Piece;
use crate::repo::blob;
use crate::repo::writer::BlobWriter;
use crate::sys;

/// Why content could not be stored.
#[derive(Debug)]
pub enum ContentError {
    /// Reading the source failed: warn and go on.
    Source(io::Error),
    /// Writing the repository failed: stop the backup.
    Repo(Error),
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
pub fn store_stream<R: Read>(
    source: R,
    params: &ChunkerParams,
    writer: &mut BlobWriter<'_>,
    pieces: &mut Vec<Piece>,
    stats: &mut ContentStats,
) -> Result<(), ContentError> {
    let level = writer.compression_level();
    for chunk in chunking::chunks(source, params) {
        let data = chunk.map_err(ContentError::Source)?;
        stats.bytes_read += data.len() as u64;
        let prepared_id = crate::format::id::Id::hash(&data);
        let id = ChunkId(prepared_id);
        if !writer.contains(&id.into()) {
            let prepared = blob::prepare(&data, level);
            if writer
                .add_prepared(BlobKind::Data, prepared)
                .map_err(ContentError::Repo)?
            {
                stats.chunks_new += 1;
            }
        }
        let len = u32::try_from(data.len())
            .map_err(|_| ContentError::Source(io::Error::other("chunk too large")))?;
        pieces.push(Piece::Data { id, len });
    }
    Ok(())
}

/// Reads an open regular file: data extents are chunked, holes recorded as `Piece::Hole`.
/// Reads to the end of the file even if it grew since it was opened; the pieces describe what
/// was read.
///
/// # Errors
/// As [`store_stream`].
pub fn store_file(
    file: &mut File,
    params: &ChunkerParams,
    writer: &mut BlobWriter<'_>,
    stats: &mut ContentStats,
) -> Result<Vec<Piece>, ContentError> {
    let mut pieces = Vec::new();
    let mut pos: u64 = 0;
    loop {
        let data_at = match sys::seek_data_or_hole(file, pos, true) {
            Ok(Some(d)) => d,
            Ok(None) => break, // only a hole (or nothing) from `pos` to the end
            Err(_) => {
                // The file system cannot tell holes: read everything from here.
                read_extent(file, pos, None, params, writer, &mut pieces, stats)?;
                return Ok(pieces);
            }
        };
        if data_at > pos {
            pieces.push(Piece::Hole { len: data_at - pos });
        }
        let hole_at = sys::seek_data_or_hole(file, data_at, false)
            .map_err(ContentError::Source)?
            .unwrap_or(data_at);
        let size_now = file.metadata().map_err(ContentError::Source)?.len();
        // The last extent is read to EOF, so a file that grew is captured whole.
        let limit = if hole_at >= size_now {
            None
        } else {
            Some(hole_at - data_at)
        };
        let read = read_extent(file, data_at, limit, params, writer, &mut pieces, stats)?;
        pos = data_at + read;
        if limit.is_none() || read < limit.unwrap_or(0) {
            return Ok(pieces); // reached EOF
        }
    }
    let size_now = file.metadata().map_err(ContentError::Source)?.len();
    if size_now > pos {
        pieces.push(Piece::Hole {
            len: size_now - pos,
        });
    }
    Ok(pieces)
}

fn read_extent(
    file: &mut File,
    start: u64,
    limit: Option<u64>,
    params: &ChunkerParams,
    writer: &mut BlobWriter<'_>,
    pieces: &mut Vec<Piece>,
    stats: &mut ContentStats,
) -> Result<u64, ContentError> {
    file.seek(SeekFrom::Start(start))
        .map_err(ContentError::Source)?;
    let before = stats.bytes_read;
    match limit {
        Some(n) => store_stream((&*file).take(n), params, writer, pieces, stats)?,
        None => store_stream(&*file, params, writer, pieces, stats)?,
    }
    Ok(stats.bytes_read - before)
}
