//! `chronofs check`: verify repository integrity and name what is damaged.

use anyhow::Result;
use chronofs::error::exit;
use chronofs::maintain::check;
use chronofs::repo::lock::LockKind;

use super::{Context, quote};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Also read every pack, decompress every blob and verify its hash.
    #[arg(long)]
    read_data: bool,
}

pub fn run(ctx: &Context, a: &Args) -> Result<u8> {
    // The index is loaded by check itself so damaged index files are reported, not fatal.
    let repo = ctx.open_unindexed()?;
    // A shared lock: a concurrent prune would make data look missing.
    let _lock = ctx.lock(&repo, LockKind::Shared, "check")?;
    let report = check::check(&repo, a.read_data)?;
    for h in &report.harmless {
        if !ctx.quiet {
            println!("harmless: {}", quote::text(h));
        }
    }
    for e in &report.errors {
        println!("error: {}", quote::text(e));
    }
    for f in &report.damaged_files {
        println!("damaged: {}", quote::text(f));
    }
    if !ctx.quiet {
        println!(
            "checked {} snapshots, {} packs{}: {}",
            report.snapshots,
            report.packs,
            if a.read_data {
                format!(", read {} blobs", report.blobs_read)
            } else {
                String::new()
            },
            if report.is_ok() {
                "no errors".to_string()
            } else {
                format!("{} errors", report.errors.len())
            }
        );
    }
    Ok(if report.is_ok() {
        exit::OK
    } else {
        exit::DAMAGED
    })
}
