//! `chronofs find PATTERN`: paths matching a glob across snapshots, each with the snapshots
//! that hold it as ranges of dated names. A pattern with a `/` matches whole absolute paths
//! (`/home/*/notes.txt`, `**/*.conf`); one without matches names (`*.pdf`), like `find -name`.

use std::io::Write;
use std::os::unix::ffi::OsStrExt;

use anyhow::Result;
use chronofs::format::bytes::ByteString;
use chronofs::snapshot::history;

use super::versions::{ranges, snapshots_of};
use super::{Context, quote};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Glob: with a `/` it matches absolute paths, without one it matches names.
    #[arg(value_name = "PATTERN")]
    pattern: String,
    /// Search only these snapshots (dated names, id prefixes or `latest`; repeatable).
    #[arg(long = "snapshot", value_name = "SNAP")]
    snapshots: Vec<String>,
    #[command(flatten)]
    select: super::select::SelectArgs,
    /// Print one JSON object per path.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Context, a: &Args) -> Result<u8> {
    let repo = ctx.open()?;
    let glob = globset::GlobBuilder::new(&a.pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| chronofs::Error::InvalidInput(format!("bad pattern {}: {e}", a.pattern)))?
        .compile_matcher();
    let whole_path = a.pattern.contains('/');
    let filter = a.select.filter();
    let snaps = if a.snapshots.is_empty() {
        snapshots_of(&repo, &filter)?
    } else {
        // Named snapshots resolve against the whole listing, then the selection narrows them.
        let listing = chronofs::snapshot::list(&repo)?;
        super::warn_unreadable(&listing.unreadable);
        let mut named = listing.resolve_all(&a.snapshots)?;
        named.retain(|l| filter.matches(&l.snapshot));
        named
    };
    let matches = |path: &std::path::Path, node: &chronofs::format::tree::Node| {
        if whole_path {
            glob.is_match(path)
        } else {
            glob.is_match(std::ffi::OsStr::from_bytes(node.name.as_bytes()))
        }
    };
    let found = history::find(&repo, &snaps, &matches)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for (path, indices) in &found {
        if a.json {
            let names: Vec<&str> = indices.iter().map(|&i| snaps[i].name.as_str()).collect();
            let v =
                serde_json::json!({ "path": ByteString::from(path.as_path()), "snapshots": names });
            writeln!(out, "{v}")?;
        } else {
            writeln!(out, "{}  {}", quote::path(path), ranges(&snaps, indices))?;
        }
    }
    out.flush()?;
    if found.is_empty() {
        if !ctx.quiet {
            eprintln!(
                "chronofs: no path matches {} in {} snapshots",
                a.pattern,
                snaps.len()
            );
        }
        return Ok(chronofs::error::exit::NOT_FOUND);
    }
    Ok(0)
}
