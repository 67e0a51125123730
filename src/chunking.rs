//! Content-defined chunking: splits a byte stream into chunks whose boundaries depend on the
//! content, so an insertion only changes the chunks around it.
//!
//! Cut points come from `fastcdc` 5.0.0's v2020 `cut_gear` (pinned with `=`: a different
//! version could move cut points and silently break dedup against existing repositories; the
//! golden test below would catch it). The streaming loop is ours rather than `StreamCDC`'s:
//! `StreamCDC` allocates and zeroes a `max_size` buffer per stream (4 MiB per file, even for a
//! 100-byte file) and moves the buffer's tail after every chunk. A [`Chunker`] keeps one
//! buffer of twice `max_size` for its whole life and moves the tail only when it runs short,
//! with exactly the same cut points (tested against `StreamCDC`).

use std::borrow::Cow;
use std::io::{self, Read};

use fastcdc::v2020::{Normalization, cut_gear, get_gear_with_seed, select_masks};

use crate::format::config::ChunkerParams;

/// A reusable chunker for one set of parameters: create one per thread.
pub struct Chunker {
    min: usize,
    avg: usize,
    max: usize,
    masks: (u64, u64),
    gear: Cow<'static, [u64]>,
    gear_ls: Cow<'static, [u64]>,
    buf: Vec<u8>,
}

impl Chunker {
    /// A chunker for `params` (validated when the config was decoded).
    #[must_use]
    pub fn new(params: &ChunkerParams) -> Self {
        let level = match params.normalization {
            0 => Normalization::Level0,
            1 => Normalization::Level1,
            2 => Normalization::Level2,
            _ => Normalization::Level3,
        };
        let avg = params.avg_size as usize;
        let (gear, gear_ls) = get_gear_with_seed(params.seed);
        Chunker {
            min: params.min_size as usize,
            avg,
            max: params.max_size as usize,
            masks: select_masks(avg, level),
            gear,
            gear_ls,
            buf: Vec::new(),
        }
    }

    /// Puts `buf` in place of the chunker's buffer and returns the one it had: a large file can
    /// be read with a buffer lent for it, so that only as many buffers as large files read at
    /// once grow to their full size (a buffer grows only as far as the bytes read into it:
    /// the pages of a small file's reads are all that a buffer used only for them holds).
    pub fn swap_buffer(&mut self, buf: Vec<u8>) -> Vec<u8> {
        std::mem::replace(&mut self.buf, buf)
    }

    /// Reads `source` to its end and calls `sink` with each chunk, in order. Returns the
    /// number of bytes read.
    ///
    /// # Errors
    /// A read error (converted with `From<io::Error>`), or the first error `sink` returns.
    pub fn run<R: Read, E: From<io::Error>>(
        &mut self,
        mut source: R,
        mut sink: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<u64, E> {
        if self.buf.len() < 2 * self.max {
            self.buf = vec![0; 2 * self.max];
        }
        let (mut start, mut end, mut eof, mut total) = (0usize, 0usize, false, 0u64);
        loop {
            if !eof && end - start < self.max {
                if self.buf.len() - start < self.max {
                    self.buf.copy_within(start..end, 0);
                    end -= start;
                    start = 0;
                }
                while !eof && end - start < self.max {
                    match source.read(&mut self.buf[end..]) {
                        Ok(0) => eof = true,
                        Ok(n) => end += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(E::from(e)),
                    }
                }
            }
            if end == start {
                return Ok(total);
            }
            let window = &self.buf[start..end.min(start + self.max)];
            let (mask_s, mask_l) = self.masks;
            let (_, cut) = cut_gear(
                window,
                self.min,
                self.avg,
                self.max,
                mask_s,
                mask_l,
                mask_s << 1,
                mask_l << 1,
                &self.gear,
                &self.gear_ls,
            );
            // cut_gear returns a length in 1..=window.len() for a non-empty window.
            let cut = cut.clamp(1, window.len());
            sink(&window[..cut])?;
            start += cut;
            total += cut as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        blake3::Hasher::new()
            .update(b"chronofs golden")
            .finalize_xof()
            .fill(&mut v);
        v
    }

    fn cut_lengths(data: &[u8], p: &ChunkerParams) -> Vec<usize> {
        let mut lens = Vec::new();
        Chunker::new(p)
            .run(data, |c| -> io::Result<()> {
                lens.push(c.len());
                Ok(())
            })
            .unwrap();
        lens
    }

    /// What fastcdc's own streaming chunker cuts.
    fn stream_cdc_lengths(data: &[u8], p: &ChunkerParams) -> Vec<usize> {
        fastcdc::v2020::StreamCDC::with_level_and_seed(
            data,
            p.min_size as usize,
            p.avg_size as usize,
            p.max_size as usize,
            Normalization::Level1,
            p.seed,
        )
        .map(|c| c.unwrap().length)
        .collect()
    }

    /// A reader that returns at most `step` bytes per call, as pipes and sockets do.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn golden_cut_points_default_params() {
        let data = sample(12 << 20);
        let lens = cut_lengths(&data, &ChunkerParams::default());
        assert_eq!(lens.iter().sum::<usize>(), data.len());
        assert_eq!(
            lens, GOLDEN_DEFAULT,
            "chunk boundaries moved: dedup with existing repositories breaks"
        );
    }

    #[test]
    fn same_cuts_as_stream_cdc_for_any_size_read_size_and_seed() {
        let data = sample(9 << 20);
        for seed in [0, 42] {
            let p = ChunkerParams {
                min_size: 64 * 1024,
                avg_size: 256 * 1024,
                max_size: 1024 * 1024,
                seed,
                ..ChunkerParams::default()
            };
            for len in [0, 1, 100, 64 * 1024, 64 * 1024 + 1, 1 << 20, (9 << 20) - 7] {
                let want = stream_cdc_lengths(&data[..len], &p);
                assert_eq!(cut_lengths(&data[..len], &p), want, "len {len} seed {seed}");
                let mut got = Vec::new();
                Chunker::new(&p)
                    .run(
                        Trickle {
                            data: &data[..len],
                            step: 65_537,
                        },
                        |c| -> io::Result<()> {
                            got.push(c.len());
                            Ok(())
                        },
                    )
                    .unwrap();
                assert_eq!(got, want, "trickled, len {len} seed {seed}");
            }
        }
    }

    #[test]
    fn a_chunker_is_reusable_and_sink_errors_stop_it() {
        let p = ChunkerParams::default();
        let mut c = Chunker::new(&p);
        let data = sample(6 << 20);
        let first = c.run(&data[..], |_| -> io::Result<()> { Ok(()) }).unwrap();
        let second = c
            .run(&data[..10], |_| -> io::Result<()> { Ok(()) })
            .unwrap();
        assert_eq!((first, second), (6 << 20, 10));
        let err = c
            .run(&data[..], |_| -> io::Result<()> {
                Err(io::Error::other("full"))
            })
            .unwrap_err();
        assert_eq!(err.to_string(), "full");
    }

    #[test]
    fn insertion_only_disturbs_nearby_chunks() {
        let p = ChunkerParams {
            min_size: 2048,
            avg_size: 8192,
            max_size: 32768,
            ..ChunkerParams::default()
        };
        let data = sample(1 << 20);
        let mut edited = data.clone();
        edited.splice(500_000..500_000, b"inserted bytes".iter().copied());
        let ids = |d: &[u8]| -> std::collections::HashSet<Vec<u8>> {
            let mut set = std::collections::HashSet::new();
            Chunker::new(&p)
                .run(d, |c| -> io::Result<()> {
                    set.insert(blake3::hash(c).as_bytes().to_vec());
                    Ok(())
                })
                .unwrap();
            set
        };
        let (a, b) = (ids(&data), ids(&edited));
        let shared = a.intersection(&b).count();
        assert!(
            shared + 3 >= a.len(),
            "only {shared} of {} chunks survived an insertion",
            a.len()
        );
    }

    const GOLDEN_DEFAULT: &[usize] = &[
        2_790_371, 272_140, 262_894, 1_046_107, 1_144_729, 789_285, 1_839_015, 1_266_589, 443_833,
        1_207_618, 1_408_505, 111_826,
    ];
}
