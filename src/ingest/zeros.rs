//! Finds the all-zero regions of a stream that has no holes of its own (a block device): the
//! content is split into data runs, which are chunked, and zero runs, which are recorded as
//! holes, so the unused space of a disk costs no stored data and is restored and served as
//! holes.
//!
//! Zero runs are whole aligned blocks of [`BLOCK`] bytes (offsets counted from the start of the
//! stream), at least [`MIN_HOLE`] long, so that short runs of zeros inside data do not cut it
//! into small chunks; a run that reaches the end of the stream may end in a partial block.
//! The same content always splits the same way, so an unchanged region of a disk gives the same
//! runs, and the same chunks, in the next backup.

use std::io::{self, Read};

/// The unit of zero detection: a file system block.
pub const BLOCK: usize = 4096;
/// The shortest zero run recorded as a hole.
pub const MIN_HOLE: usize = 64 * 1024;
/// Bytes buffered ahead of the chunker: enough to see a whole minimal zero run past any data
/// it is handed.
const CAPACITY: usize = 4 * 1024 * 1024;

/// A reader of at most `len` bytes of `inner` that ends (reads 0 bytes) where a zero run
/// starts; [`ZeroSplit::skip_zeros`] then steps over it.
pub struct ZeroSplit<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Bytes still to read from `inner`.
    left: u64,
    /// `inner` ended before `left` was reached (the stream is shorter than announced).
    short: bool,
    /// Bytes of data at `start` known to come before the next zero run.
    data: usize,
}

impl<R: Read> ZeroSplit<R> {
    /// Splits the first `len` bytes of `inner`.
    pub fn new(inner: R, len: u64) -> Self {
        ZeroSplit {
            inner,
            buf: vec![0; CAPACITY],
            start: 0,
            end: 0,
            left: len,
            short: false,
            data: 0,
        }
    }

    /// True once everything has been handed out (or `inner` ended early).
    pub fn at_end(&self) -> bool {
        self.start == self.end && (self.left == 0 || self.short)
    }

    /// Fills the buffer until `want` bytes are buffered or the stream ends.
    fn fill(&mut self, want: usize) -> io::Result<()> {
        if self.end - self.start >= want || self.left == 0 || self.short {
            return Ok(());
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        while self.end - self.start < want && self.left > 0 && !self.short {
            let room =
                (self.buf.len() - self.end).min(usize::try_from(self.left).unwrap_or(usize::MAX));
            match self.inner.read(&mut self.buf[self.end..self.end + room]) {
                Ok(0) => self.short = true,
                Ok(n) => {
                    self.end += n;
                    self.left -= n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Whether no more bytes follow the buffered ones.
    fn ends_after_buffer(&self) -> bool {
        self.left == 0 || self.short
    }

    /// The length of the all-zero prefix of `buf[at..]`, counted in whole blocks (plus a
    /// final partial block when the stream ends there), looking no further than `limit` bytes.
    fn zero_prefix(&self, at: usize, limit: usize) -> usize {
        let stop = (at + limit).min(self.end);
        let mut pos = at;
        while pos < stop {
            let block_end = (pos + BLOCK).min(self.end);
            if block_end - pos < BLOCK && !self.ends_after_buffer() {
                break; // a partial block that more data will follow
            }
            if !is_zero(&self.buf[pos..block_end]) {
                break;
            }
            pos = block_end;
        }
        pos - at
    }

    /// Whether a zero run starts at buffer position `at` (which lies on a block boundary).
    /// Needs [`MIN_HOLE`] bytes buffered after `at` unless the stream ends sooner.
    fn zero_run_at(&self, at: usize) -> bool {
        self.zero_prefix(at, MIN_HOLE) >= MIN_HOLE
    }

    /// Steps over the zero run that starts here, if any, and returns its length (0 when data
    /// or the end of the stream comes next).
    ///
    /// # Errors
    /// A read error of `inner`.
    pub fn skip_zeros(&mut self) -> io::Result<u64> {
        if self.data > 0 {
            return Ok(0);
        }
        self.fill(MIN_HOLE)?;
        if !self.zero_run_at(self.start) {
            return Ok(0);
        }
        let mut skipped = 0u64;
        loop {
            self.fill(BLOCK)?;
            let n = self.zero_prefix(self.start, self.end - self.start);
            self.start += n;
            skipped += n as u64;
            if self.start < self.end || self.ends_after_buffer() {
                return Ok(skipped);
            }
        }
    }

    /// Measures the data run at `start`: up to the first zero run that is fully visible in the
    /// buffer, or to the last block boundary from which a zero run could not yet be seen.
    fn measure_data(&mut self) -> io::Result<()> {
        self.fill(CAPACITY / 2)?;
        let mut pos = self.start;
        while pos < self.end {
            let room = self.end - pos;
            if room < MIN_HOLE && !self.ends_after_buffer() {
                break; // a zero run could start here: look again with more buffered
            }
            let zeros = self.zero_prefix(pos, MIN_HOLE);
            if zeros >= MIN_HOLE {
                break;
            }
            // Not a run: skip the zeros seen (no run can start inside them) and the data block.
            pos = (pos + zeros + BLOCK).min(self.end);
        }
        // At least one block: `read` measures only where no zero run starts.
        self.data = (pos - self.start).max(BLOCK.min(self.end - self.start));
        Ok(())
    }
}

impl<R: Read> Read for ZeroSplit<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.data == 0 {
            self.fill(MIN_HOLE)?;
            if self.start == self.end || self.zero_run_at(self.start) {
                return Ok(0);
            }
            self.measure_data()?;
        }
        let n = self.data.min(out.len());
        out[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
        self.start += n;
        self.data -= n;
        Ok(n)
    }
}

/// Whether every byte of `bytes` is zero (an OR over 64-byte pieces, which the compiler
/// turns into vector instructions; data blocks usually stop it at the first piece).
fn is_zero(bytes: &[u8]) -> bool {
    bytes
        .chunks(64)
        .all(|c| c.iter().fold(0u8, |a, b| a | b) == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `step` bytes a call (as a device may).
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }
    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(out.len()).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[derive(Debug, PartialEq, Eq)]
    enum Run {
        Data(usize),
        Zero(usize),
    }

    /// Splits `data` (announced as `len` bytes) into runs, merging adjacent data pieces, and
    /// checks that the runs put back together give the bytes read.
    fn split(data: &[u8], len: u64, step: usize) -> Vec<Run> {
        let mut z = ZeroSplit::new(Trickle { data, step }, len);
        let (mut runs, mut back) = (Vec::new(), Vec::new());
        loop {
            let mut piece = Vec::new();
            z.read_to_end(&mut piece).unwrap();
            if !piece.is_empty() {
                back.extend_from_slice(&piece);
                match runs.last_mut() {
                    Some(Run::Data(n)) => *n += piece.len(),
                    _ => runs.push(Run::Data(piece.len())),
                }
            }
            let zeros = z.skip_zeros().unwrap();
            if zeros > 0 {
                back.resize(back.len() + zeros as usize, 0);
                runs.push(Run::Zero(zeros as usize));
            } else if z.at_end() {
                break;
            } else {
                assert!(!piece.is_empty(), "neither data nor zeros nor the end");
            }
        }
        let expect = usize::try_from(len).unwrap().min(data.len());
        assert_eq!(back, data[..expect], "the runs give back the stream");
        runs
    }

    fn ones(n: usize) -> Vec<u8> {
        vec![1; n]
    }

    #[test]
    fn zero_runs_of_whole_aligned_blocks_become_holes() {
        let k = 1024;
        // data 10 KiB, zeros from 10 KiB to 200 KiB (run from the 12 KiB boundary), data 4 KiB
        let mut d = ones(10 * k);
        d.resize(200 * k, 0);
        d.extend(ones(4 * k));
        for step in [1 << 20, 4096, 1000, 65_537] {
            assert_eq!(
                split(&d, d.len() as u64, step),
                vec![Run::Data(12 * k), Run::Zero(188 * k), Run::Data(4 * k)],
                "step {step}"
            );
        }
    }

    #[test]
    fn short_zero_runs_stay_data_and_long_ones_reach_the_end() {
        let k = 1024;
        // 60 KiB of zeros inside data (too short), then zeros to the end (a partial last block)
        let mut d = ones(8 * k);
        d.resize(68 * k, 0);
        d.extend(ones(8 * k));
        let data_end = d.len();
        d.resize(data_end + 100 * k + 123, 0);
        for step in [1 << 22, 777] {
            assert_eq!(
                split(&d, d.len() as u64, step),
                vec![Run::Data(data_end), Run::Zero(100 * k + 123)],
                "step {step}"
            );
        }
        // Zeros only: one hole; nothing: no runs.
        assert_eq!(
            split(&[0; 300_000], 300_000, 4096),
            vec![Run::Zero(300_000)]
        );
        assert_eq!(split(&[], 0, 4096), vec![]);
    }

    #[test]
    fn runs_across_many_buffers_and_a_short_stream_end_where_the_stream_does() {
        // 20 MiB alternating 3 MiB data and 1 MiB (+ 1 byte, so runs shift) zeros.
        let mut d = Vec::new();
        for i in 0..5u8 {
            d.extend(vec![i + 1; 3 << 20]);
            d.resize(d.len() + (1 << 20) + 1, 0);
        }
        let runs = split(&d, d.len() as u64, 1 << 20);
        assert_eq!(runs.iter().filter(|r| matches!(r, Run::Zero(_))).count(), 5);
        // Announced longer than it is (a device that shrank): ends where the data ends.
        split(&d[..5000], 1 << 30, 4096);
        // Announced shorter: only the announced part is read.
        assert_eq!(split(&d, 100, 4096), vec![Run::Data(100)]);
    }
}
