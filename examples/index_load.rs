//! Measures how long opening a repository takes when its index holds N blobs (default
//! 1,000,000), and the index's memory per entry. The index files are synthetic (32 blobs per
//! pack, 64 packs per index file, as a backup writes them); no pack data is written.
//!
//!     cargo run --release --example index_load [N]

use std::time::Instant;

use chronofs::format::id::{BlobId, Id, IndexId, PackId};
use chronofs::format::index::{Index, IndexedPack};
use chronofs::format::pack::{BlobKind, Compression, PackedBlob};
use chronofs::repo::{InitOptions, Repository, layout};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = std::env::args()
        .nth(1)
        .map_or(Ok(1_000_000), |a| a.parse())?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("repo");
    let repo = Repository::init(&path, &InitOptions::default())?;
    let (per_pack, packs_per_file) = (32u64, 64u64);
    let mut made = 0u64;
    let started = Instant::now();
    while made < n {
        let mut index = Index::default();
        for _ in 0..packs_per_file {
            if made >= n {
                break;
            }
            let blobs = (0..per_pack.min(n - made))
                .map(|i| {
                    made += 1;
                    PackedBlob {
                        id: BlobId(Id::hash(&made.to_le_bytes())),
                        kind: BlobKind::Data,
                        offset: 16 + u32::try_from(i).unwrap_or(0) * 1_000_000,
                        stored_len: 1_000_000,
                        raw_len: 1_048_576,
                        compression: Compression::Zstd,
                    }
                })
                .collect();
            index.packs.push(IndexedPack {
                id: PackId(Id::hash(&made.to_be_bytes())),
                len: 16 + per_pack * 1_000_000 + 4096,
                blobs,
                session: 0,
            });
        }
        let bytes = index.encode(&chronofs::format::codec::Plain)?;
        repo.storage()
            .write(&layout::index_path(&IndexId(Id::hash(&bytes))), &bytes)?;
    }
    println!("wrote {n} index entries in {:.2?}", started.elapsed());
    drop(repo);

    let rss_before = chronofs::sys::peak_rss_bytes();
    let started = Instant::now();
    let repo = Repository::open(&path)?;
    let took = started.elapsed();
    let blobs = repo.index().len();
    println!(
        "opened with {blobs} blobs indexed in {took:.2?} ({:.0} ns per entry); peak RSS grew by {:.1} MiB",
        took.as_nanos() as f64 / blobs as f64,
        (chronofs::sys::peak_rss_bytes().saturating_sub(rss_before)) as f64 / 1048576.0,
    );
    println!(
        "in-memory index: {} bytes per entry",
        chronofs::repo::index::ENTRY_BYTES
    );
    Ok(())
}
