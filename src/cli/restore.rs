//! `chronofs restore`: write a snapshot or a subtree back to disk.

use std::path::{Path, PathBuf};

use anyhow::Result;
use chronofs::error::exit;
use chronofs::restore::{self, RestoreOptions};
use chronofs::snapshot;

use super::{Context, ui};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// `SNAP` or `SNAP:PATH` (SNAP: `latest`, a dated name, or an id prefix; PATH absolute).
    #[arg(value_name = "SNAP[:PATH]")]
    spec: String,
    /// Directory to restore into (created if missing). Sources appear under it by their
    /// absolute path; with SNAP:PATH, PATH's contents go directly into it.
    #[arg(short, long, value_name = "DIR")]
    target: PathBuf,
    /// Replace entries that already exist in the target.
    #[arg(long)]
    overwrite: bool,
    /// Restore even if the data looks larger than the target's free space (for file systems
    /// that compress or deduplicate).
    #[arg(long)]
    no_space_check: bool,
}

pub fn run(ctx: &Context, a: &Args) -> Result<u8> {
    let repo = ctx.open()?;
    let (snap_spec, path) = snapshot::split_spec(&a.spec);
    let snap = super::resolve_snapshot(&repo, snap_spec)?;
    let reporter = ui::StderrReporter {
        quiet: ctx.quiet,
        clear_line: false,
        json: false,
    };
    let options = RestoreOptions {
        overwrite: a.overwrite,
        skip_space_check: a.no_space_check,
    };
    let stats = restore::restore(
        &repo,
        &snap.snapshot,
        path.map(Path::new),
        &a.target,
        &options,
        &reporter,
    )?;
    if !ctx.quiet {
        outln!(
            "restored {} files, {} dirs, {} other ({}) from {} to {}",
            stats.files,
            stats.dirs,
            stats.others,
            ui::size(stats.bytes),
            snap.name,
            a.target.display()
        )?;
        if let Some(t) = repo.storage().traffic() {
            outln!("object storage: {}", t.summary())?;
        }
    }
    if stats.damaged > 0 {
        eprintln!(
            "chronofs: error: {} entries not restored: repository data is damaged (run `chronofs check --read-data`)",
            stats.damaged
        );
        return Ok(exit::DAMAGED);
    }
    if stats.failed > 0 {
        eprintln!(
            "chronofs: error: {} entries could not be restored",
            stats.failed
        );
        return Ok(exit::FATAL);
    }
    if stats.refused > 0 {
        eprintln!(
            "chronofs: error: {} entries not restored: they exist in the target (use --overwrite)",
            stats.refused
        );
        return Ok(exit::REFUSED);
    }
    Ok(exit::OK)
}
