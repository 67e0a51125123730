//! Content-defined chunking: splits a byte stream into chunks whose boundaries depend on the
//! content, so an insertion only changes the chunks around it. Wraps `fastcdc` 5.0.0's
//! `v2020::StreamCDC` (pinned with `=`: a different version could move cut points and silently
//! break dedup against existing repositories; the golden test below would catch it).

use std::io::Read;

use fastcdc::v2020::{Normalization, StreamCDC};

use crate::format::config::ChunkerParams;

/// Iterator over the chunks of `source`; each item is the chunk's bytes.
pub fn chunks<R: Read>(
    source: R,
    params: &ChunkerParams,
) -> impl Iterator<Item = std::io::Result<Vec<u8>>> {
    let level = match params.normalization {
        0 => Normalization::Level0,
        1 => Normalization::Level1,
        2 => Normalization::Level2,
        _ => Normalization::Level3,
    };
    StreamCDC::with_level_and_seed(
        source,
        params.min_size as usize,
        params.avg_size as usize,
        params.max_size as usize,
        level,
        params.seed,
    )
    .map(|r| r.map(|c| c.data).map_err(std::io::Error::from))
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
        chunks(data, p).map(|c| c.unwrap().len()).collect()
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
            chunks(d, &p)
                .map(|c| blake3::hash(&c.unwrap()).as_bytes().to_vec())
                .collect()
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
