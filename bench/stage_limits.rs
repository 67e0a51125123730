//! The machine's limit for each stage of chronofs' write and read paths: the throughput of
//! one core running that stage alone on a sample of real data, already in memory. Stages
//! use the same code or primitive as the program: the project's FastCDC chunker with the
//! default parameters, keyed blake3 (blob ids), zstd at the default level 3 through a reused
//! context (`zstd::bulk`), AES-256-GCM-SIV (`aes-gcm-siv`, the blob seal) over the
//! compressed chunks. `bench/stages.sh` puts them next to the CPU a backup, a restore and a
//! read through the mount spend in each stage.
//!
//!   cargo run --release --example stage-limits -- SAMPLE_FILE [MiB (default 256)]
//!
//! Prints one Markdown row per stage: name, MiB/s of raw data per core.

use std::error::Error;
use std::io::Read as _;
use std::time::Instant;

use aes_gcm_siv::aead::{Aead, KeyInit};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use chronofs::chunking::Chunker;
use chronofs::format::config::ChunkerParams;

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).ok_or("usage: stage-limits SAMPLE_FILE [MiB]")?;
    let mib: u64 = args.get(2).map_or(Ok(256), |s| s.parse())?;
    let mut data = Vec::new();
    std::fs::File::open(path)?
        .take(mib << 20)
        .read_to_end(&mut data)?;
    let total = data.len() as f64 / f64::from(1 << 20);
    let row = |stage: &str, start: Instant| {
        println!(
            "| {stage} | {:.0} |",
            total / start.elapsed().as_secs_f64().max(1e-9)
        );
    };

    let mut lens = Vec::new();
    let mut chunker = Chunker::new(&ChunkerParams::default());
    let start = Instant::now();
    chunker.run(&data[..], |c| {
        lens.push(c.len());
        Ok::<(), std::io::Error>(())
    })?;
    row("chunk (FastCDC)", start);
    let mut chunks = Vec::with_capacity(lens.len());
    let mut at = 0;
    for len in lens {
        chunks.push(&data[at..at + len]);
        at += len;
    }

    let key = [7u8; 32];
    let start = Instant::now();
    let mut fold = 0u8;
    for c in &chunks {
        fold ^= blake3::keyed_hash(&key, c).as_bytes()[0];
    }
    row("hash (keyed blake3)", start);

    let mut z = zstd::bulk::Compressor::new(3)?;
    let start = Instant::now();
    let mut compressed = Vec::with_capacity(chunks.len());
    for c in &chunks {
        compressed.push(z.compress(c)?);
    }
    row("compress (zstd 3)", start);
    // Cheaper levels, for comparison only (the program's default is 3): rate here, stored
    // size on standard error.
    for level in [1, -1] {
        let mut z = zstd::bulk::Compressor::new(level)?;
        let start = Instant::now();
        let mut stored = 0;
        for c in &chunks {
            stored += z.compress(c)?.len();
        }
        row(&format!("compress (zstd {level}, for comparison)"), start);
        eprintln!(
            "zstd {level}: stored {:.0}%",
            100.0 * stored as f64 / data.len().max(1) as f64
        );
    }

    let cipher = Aes256GcmSiv::new_from_slice(&key).map_err(|e| e.to_string())?;
    let nonce = &Nonce::from([1u8; 12]);
    let start = Instant::now();
    let mut sealed = Vec::with_capacity(compressed.len());
    for c in &compressed {
        sealed.push(
            cipher
                .encrypt(nonce, c.as_slice())
                .map_err(|e| e.to_string())?,
        );
    }
    row("encrypt (AES-256-GCM-SIV, compressed)", start);

    let start = Instant::now();
    for s in &sealed {
        fold ^= cipher
            .decrypt(nonce, s.as_slice())
            .map_err(|e| e.to_string())?[0];
    }
    row("decrypt (AES-256-GCM-SIV, compressed)", start);

    let mut d = zstd::bulk::Decompressor::new()?;
    let start = Instant::now();
    for (c, raw) in compressed.iter().zip(&chunks) {
        fold ^= d.decompress(c, raw.len())?.first().copied().unwrap_or(0);
    }
    row("decompress (zstd)", start);

    let stored: usize = compressed.iter().map(Vec::len).sum();
    eprintln!(
        "sample: {total:.0} MiB in {} chunks, zstd 3 to {:.0}% ({fold})",
        chunks.len(),
        100.0 * stored as f64 / data.len().max(1) as f64
    );
    Ok(())
}
