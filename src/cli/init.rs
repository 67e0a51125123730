//! `chronofs init`: create a repository.

use anyhow::{Context as _, Result};
use chronofs::format::config::{ChunkerParams, DEFAULT_COMPRESSION_LEVEL, DEFAULT_PACK_TARGET};
use chronofs::repo::{InitOptions, Repository};

use super::Context;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// zstd compression level for stored data (0 = no compression, 1-19).
    #[arg(long, default_value_t = DEFAULT_COMPRESSION_LEVEL, value_name = "N")]
    compression_level: i32,
    /// Minimum chunk size in bytes.
    #[arg(long, default_value_t = ChunkerParams::default().min_size, value_name = "BYTES")]
    chunk_min: u32,
    /// Average chunk size in bytes.
    #[arg(long, default_value_t = ChunkerParams::default().avg_size, value_name = "BYTES")]
    chunk_avg: u32,
    /// Maximum chunk size in bytes.
    #[arg(long, default_value_t = ChunkerParams::default().max_size, value_name = "BYTES")]
    chunk_max: u32,
    /// Target pack file size in MiB.
    #[arg(long, default_value_t = DEFAULT_PACK_TARGET / (1024 * 1024), value_name = "MIB")]
    pack_size: u32,
    /// Make the repository append-only: forget and prune refuse (see README).
    #[arg(long)]
    append_only: bool,
    /// Let the repository directory's group read the backups (directories 0750, files 0640),
    /// for a deliberate backup group; by default only the owner can (0700, 0600).
    #[arg(long)]
    group_readable: bool,
}

pub fn run(ctx: &Context, a: &Args) -> Result<u8> {
    let path = ctx.repo_path()?;
    let options = InitOptions {
        chunker: ChunkerParams {
            min_size: a.chunk_min,
            avg_size: a.chunk_avg,
            max_size: a.chunk_max,
            ..ChunkerParams::default()
        },
        compression_level: a.compression_level,
        pack_target_size: a.pack_size.saturating_mul(1024 * 1024),
        append_only: a.append_only,
        group_readable: a.group_readable,
    };
    let repo =
        Repository::init(path, &options).with_context(|| format!("init {}", path.display()))?;
    if !ctx.quiet {
        println!(
            "created chronofs repository {} at {}",
            repo.config().repo_id.short(),
            path.display()
        );
    }
    Ok(0)
}
