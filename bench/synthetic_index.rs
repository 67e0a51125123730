//! Adds index files naming blobs other hosts might have written, for benchmarks of what grows
//! with the number of blobs (`bench/fleet.sh`): real index files (sealed in an encrypted
//! repository), 500,000 blobs each in packs of 32, with random ids; the packs themselves are
//! not written (no command in the benchmark reads them).
//!
//!     cargo run --release --example synthetic-index -- REPO BLOBS
//!
//! REPO is a directory or an `s3:` location, as `chronofs -r` takes.
//!
//! The repository must be plaintext or unlockable with `CHRONOFS_PASSWORD`.

use chronofs::format::id::{BlobId, Id, PackId};
use chronofs::format::index::{Index, IndexedPack, MAX_BLOBS_PER_INDEX};
use chronofs::format::pack::{BlobKind, Compression, PackedBlob};

const BLOBS_PER_PACK: usize = 32;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(repo), Some(count)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: synthetic-index REPO BLOBS");
    };
    let count: usize = count.parse()?;
    let location: chronofs::storage::location::Location = repo.parse()?;
    let mut repo = chronofs::repo::Repository::open_unindexed_at(&location)?;
    if let Ok(pass) = std::env::var("CHRONOFS_PASSWORD") {
        repo.unlock(pass.as_bytes())?;
    }
    let session = repo.scheme()?.writer_session()?;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("{e}"))?;
    let id = |n: u64, what: &[u8]| {
        let mut h = blake3::Hasher::new_keyed(&seed);
        h.update(what);
        h.update(&n.to_le_bytes());
        Id(*h.finalize().as_bytes())
    };
    let mut written = 0usize;
    let mut pack_no = 0u64;
    while written < count {
        let in_file = (count - written).min(MAX_BLOBS_PER_INDEX);
        let mut record = Index {
            sessions: session.iter().cloned().collect(),
            ..Index::default()
        };
        let mut left = in_file;
        while left > 0 {
            let n = left.min(BLOBS_PER_PACK);
            let blobs: Vec<PackedBlob> = (0..n)
                .map(|i| PackedBlob {
                    id: BlobId(id((written + in_file - left + i) as u64, b"blob")),
                    kind: BlobKind::Data,
                    offset: 16 + (i as u32) * 700_000,
                    stored_len: 650_000,
                    raw_len: 1_048_576,
                    compression: Compression::Zstd,
                })
                .collect();
            record.packs.push(IndexedPack {
                id: PackId(id(pack_no, b"pack")),
                len: 16 + (n as u64) * 700_000,
                blobs,
                session: 0,
            });
            pack_no += 1;
            left -= n;
        }
        repo.write_index_record(&record)?;
        written += in_file;
    }
    println!("{written} blobs in {pack_no} packs");
    Ok(())
}
