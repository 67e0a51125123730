//! `chronofs unlock`: remove stale locks (or all locks).

use anyhow::Result;
use chronofs::repo::{fence, lock};

use super::Context;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Remove every lock, also those of processes that may still run (only when you know
    /// they do not).
    #[arg(long)]
    remove_all: bool,
}

pub fn run(ctx: &Context, a: &Args) -> Result<u8> {
    let repo = ctx.open_unindexed()?;
    let removed = fence::unlock(&repo, a.remove_all)?;
    if !ctx.quiet {
        for r in &removed {
            let why = r
                .stale_reason()
                .map_or_else(String::new, |w| format!(" (stale: {w})"));
            outln!("removed {}{why}", super::quote::text(&r.describe()))?;
        }
        for left in lock::list(&repo)? {
            outln!(
                "kept {} (its process may still run)",
                super::quote::text(&left.describe())
            )?;
        }
        outln!("removed {} lock(s)", removed.len())?;
    }
    Ok(0)
}
