//! `chronofs versions PATH`: the history of one path across every snapshot (or those of one
//! host): one line per distinct version with the time of the first snapshot that holds it,
//! its size, a content id, and the snapshots holding it as ranges of names.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use chronofs::format::bytes::ByteString;
use chronofs::format::tree::{Node, NodeKind};
use chronofs::snapshot::filter::Filter;
use chronofs::snapshot::{self, Listed, history};

use super::{Context, ui};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Absolute path inside the snapshots (as backed up, e.g. /home/alice/notes.txt).
    #[arg(value_name = "PATH")]
    file: PathBuf,
    #[command(flatten)]
    select: super::select::SelectArgs,
    /// Print one JSON object per version.
    #[arg(long)]
    json: bool,
}

/// A short id of what a node holds: the blake3 of its content description (chunk ids, link
/// target, device numbers or subtree id), so equal content gives the same id.
pub fn content_id(node: &Node) -> String {
    let bytes = match &node.kind {
        NodeKind::File { content } => postcard::to_allocvec(content).unwrap_or_default(),
        other => postcard::to_allocvec(other).unwrap_or_default(),
    };
    blake3::hash(&bytes).to_hex()[..12].to_string()
}

/// The snapshots at `indices` as ranges of consecutive ones: "A..B (3), C".
pub fn ranges(snaps: &[Listed], indices: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < indices.len() {
        let mut j = i;
        while j + 1 < indices.len() && indices[j + 1] == indices[j] + 1 {
            j += 1;
        }
        let (a, b) = (&snaps[indices[i]].name, &snaps[indices[j]].name);
        parts.push(if i == j {
            a.clone()
        } else {
            format!("{a}..{b} ({})", j - i + 1)
        });
        i = j + 1;
    }
    parts.join(", ")
}

/// The readable snapshots `filter` selects, oldest first.
pub fn snapshots_of(repo: &chronofs::repo::Repository, filter: &Filter) -> Result<Vec<Listed>> {
    let listing = snapshot::list_where(repo, filter)?;
    super::warn_unreadable(&listing.unreadable);
    Ok(listing.snapshots)
}

pub fn run(ctx: &Context, a: &Args) -> Result<u8> {
    let repo = ctx.open()?;
    let snaps = snapshots_of(&repo, &a.select.filter())?;
    let versions = history::versions(&repo, &snaps, &a.file)?;
    if versions.is_empty() {
        anyhow::bail!(chronofs::Error::NotFound(format!(
            "{} is in none of the {} snapshots",
            a.file.display(),
            snaps.len()
        )));
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for v in &versions {
        let first = &snaps[v.snapshots[0]];
        if a.json {
            let names: Vec<&str> = v
                .snapshots
                .iter()
                .map(|&i| snaps[i].name.as_str())
                .collect();
            let j = serde_json::json!({
                "path": ByteString::from(a.file.as_path()),
                "first": first.name,
                "time": snapshot::rfc3339(first.snapshot.time_ns),
                "type": super::ls::type_name(&v.node),
                "size": v.node.size,
                "content": content_id(&v.node),
                "mtime_ns": i128::from(v.node.mtime.secs) * 1_000_000_000 + i128::from(v.node.mtime.nanos),
                "snapshots": names,
            });
            writeln!(out, "{j}")?;
        } else {
            writeln!(
                out,
                "{}  {:>10}  {}  {}",
                first.name,
                ui::size(v.node.size),
                content_id(&v.node),
                ranges(&snaps, &v.snapshots)
            )?;
        }
    }
    out.flush()?;
    Ok(0)
}
