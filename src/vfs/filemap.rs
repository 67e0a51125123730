//! Where each byte of a stored file lives: the file's pieces (chunks and holes) with their
//! cumulative start offsets, so a read at any offset finds its piece by binary search, and
//! `SEEK_DATA`/`SEEK_HOLE` are answered from the same table.

use crate::format::id::ChunkId;
use crate::format::tree::Piece;

/// One piece of a read request: bytes `from..from + len` of piece `piece`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// Index of the piece.
    pub index: usize,
    /// The piece.
    pub piece: Piece,
    /// Offset inside the piece.
    pub from: u64,
    /// Number of bytes.
    pub len: u64,
}

/// A file's pieces and where each starts.
#[derive(Debug, Default)]
pub struct FileMap {
    pieces: Vec<Piece>,
    starts: Vec<u64>,
    size: u64,
}

impl FileMap {
    /// Builds the map of `pieces` (valid trees guarantee their lengths sum without overflow).
    #[must_use]
    pub fn new(pieces: &[Piece]) -> FileMap {
        let mut starts = Vec::with_capacity(pieces.len());
        let mut at: u64 = 0;
        for p in pieces {
            starts.push(at);
            at = at.saturating_add(p.len());
        }
        FileMap {
            pieces: pieces.to_vec(),
            starts,
            size: at,
        }
    }

    /// File size.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Index of the piece holding byte `offset` (`offset < size`).
    fn piece_at(&self, offset: u64) -> usize {
        self.starts
            .partition_point(|&s| s <= offset)
            .saturating_sub(1)
    }

    /// The spans covering `offset..offset + len`, clipped to the end of the file.
    #[must_use]
    pub fn spans(&self, offset: u64, len: u64) -> Vec<Span> {
        let mut out = Vec::new();
        if offset >= self.size || len == 0 {
            return out;
        }
        let end = offset.saturating_add(len).min(self.size);
        let mut i = self.piece_at(offset);
        let mut at = offset;
        while at < end && i < self.pieces.len() {
            let start = self.starts[i];
            let piece = self.pieces[i];
            let piece_end = start + piece.len();
            let take = piece_end.min(end) - at;
            out.push(Span {
                index: i,
                piece,
                from: at - start,
                len: take,
            });
            at += take;
            i += 1;
        }
        out
    }

    /// Where the next data (`data`) or hole starts at or after `offset`, as `lseek` with
    /// `SEEK_DATA`/`SEEK_HOLE` answers; `None` means ENXIO (at or past the end, or no more
    /// data). The end of the file counts as a hole.
    #[must_use]
    pub fn seek(&self, offset: u64, data: bool) -> Option<u64> {
        if offset >= self.size {
            return None;
        }
        let first = self.piece_at(offset);
        for i in first..self.pieces.len() {
            let is_data = matches!(self.pieces[i], Piece::Data { .. });
            if is_data == data {
                return Some(self.starts[i].max(offset));
            }
        }
        if data { None } else { Some(self.size) }
    }

    /// Up to `n` data chunks (with their lengths) that start after piece `index`: what a
    /// sequential reader will want next.
    #[must_use]
    pub fn chunks_after(&self, index: usize, n: usize) -> Vec<(ChunkId, u32)> {
        self.pieces
            .iter()
            .skip(index + 1)
            .filter_map(|p| match *p {
                Piece::Data { id, len } => Some((id, len)),
                Piece::Hole { .. } => None,
            })
            .take(n)
            .collect()
    }
}

/// Bytes of stored data in `pieces` (holes excluded), for `st_blocks`.
#[must_use]
pub fn stored_bytes(pieces: &[Piece]) -> u64 {
    pieces
        .iter()
        .filter(|p| matches!(p, Piece::Data { .. }))
        .map(Piece::len)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::id::Id;

    fn data(n: u8, len: u32) -> Piece {
        Piece::Data {
            id: ChunkId(Id::hash(&[n])),
            len,
        }
    }

    #[test]
    fn spans_cover_requests_exactly() {
        let m = FileMap::new(&[data(1, 10), Piece::Hole { len: 100 }, data(2, 5)]);
        assert_eq!(m.size(), 115);
        let s = m.spans(5, 20);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].index, s[0].from, s[0].len), (0, 5, 5));
        assert_eq!((s[1].index, s[1].from, s[1].len), (1, 0, 15));
        let s = m.spans(108, 1000);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].index, s[0].from, s[0].len), (1, 98, 2));
        assert_eq!((s[1].index, s[1].from, s[1].len), (2, 0, 5));
        assert!(m.spans(115, 10).is_empty());
        assert!(m.spans(3, 0).is_empty());
        // Every byte is covered exactly once, whatever the request.
        for off in 0..115 {
            for len in [1, 7, 50, 200] {
                let total: u64 = m.spans(off, len).iter().map(|s| s.len).sum();
                assert_eq!(total, len.min(115 - off));
            }
        }
    }

    #[test]
    fn seek_data_and_hole() {
        let m = FileMap::new(&[data(1, 10), Piece::Hole { len: 100 }, data(2, 5)]);
        assert_eq!(m.seek(0, true), Some(0));
        assert_eq!(m.seek(0, false), Some(10));
        assert_eq!(m.seek(10, true), Some(110));
        assert_eq!(m.seek(50, false), Some(50));
        assert_eq!(m.seek(111, false), Some(115));
        assert_eq!(m.seek(115, true), None);
        let sparse = FileMap::new(&[Piece::Hole { len: 1 << 40 }]);
        assert_eq!(sparse.seek(0, true), None);
        assert_eq!(sparse.seek(5, false), Some(5));
        assert_eq!(stored_bytes(&[data(1, 10), Piece::Hole { len: 100 }]), 10);
        assert_eq!(m.chunks_after(0, 4).len(), 1);
    }
}
