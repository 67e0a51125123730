//! `chronofs diff SNAP1 SNAP2 [PATH]`: what changed between two snapshots, one line per entry
//! (`+` added, `-` removed, `M` modified, with what changed and the size change), then a
//! summary; `--json` prints one object per entry and a summary object.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use chronofs::format::bytes::ByteString;
use chronofs::format::tree::NodeKind;
use chronofs::snapshot::diff::{self, Change};
use chronofs::snapshot::{self, expand};

use super::{Context, quote, ui};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The older snapshot: `latest`, a dated name, or an id prefix.
    #[arg(value_name = "SNAP1")]
    old: String,
    /// The newer snapshot.
    #[arg(value_name = "SNAP2")]
    new: String,
    /// Compare only below this absolute path.
    #[arg(value_name = "PATH")]
    path: Option<PathBuf>,
    /// Print one JSON object per changed entry, then a summary object.
    #[arg(long)]
    json: bool,
}

/// Totals for the summary line.
#[derive(Default)]
struct Totals {
    added: u64,
    removed: u64,
    modified: u64,
    size_change: i128,
}

pub fn run(ctx: &Context, a: &Args) -> Result<u8> {
    let repo = ctx.open()?;
    let old = super::resolve_snapshot(&repo, &a.old)?;
    let new = super::resolve_snapshot(&repo, &a.new)?;
    let start = a.path.clone().unwrap_or_else(|| PathBuf::from("/"));
    let subtree = |root| -> Result<chronofs::format::id::TreeId> {
        let tree = repo.read_tree(&root)?;
        Ok(match snapshot::find_node(&repo, &tree, &start)? {
            None => root,
            Some(n) => match n.kind {
                NodeKind::Dir { subtree } => subtree,
                _ => anyhow::bail!(chronofs::Error::InvalidInput(format!(
                    "{} is not a directory",
                    start.display()
                ))),
            },
        })
    };
    let (o, n) = (subtree(old.snapshot.root)?, subtree(new.snapshot.root)?);
    expand::bounded(&repo, o)?;
    expand::bounded(&repo, n)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut totals = Totals::default();
    let json = a.json;
    diff::diff(&repo, o, n, &start, &mut |e| {
        print_entry(&e, json, &mut totals, &mut out)
            .map_err(|err| chronofs::Error::path_io("writing", Path::new("standard output"), err))
    })?;
    if json {
        let v = serde_json::json!({
            "message_type": "summary",
            "added": totals.added,
            "removed": totals.removed,
            "modified": totals.modified,
            "size_change": i64::try_from(totals.size_change).unwrap_or(i64::MAX),
        });
        writeln!(out, "{v}")?;
    } else if !ctx.quiet {
        writeln!(
            out,
            "{} added, {} removed, {} modified; size {}",
            totals.added,
            totals.removed,
            totals.modified,
            signed_size(totals.size_change)
        )?;
    }
    out.flush()?;
    Ok(0)
}

/// "+1.2 MiB" or "-300 B".
fn signed_size(n: i128) -> String {
    let sign = if n < 0 { "-" } else { "+" };
    format!(
        "{sign}{}",
        ui::size(u64::try_from(n.unsigned_abs()).unwrap_or(u64::MAX))
    )
}

/// A file's share of the size change (directories count nothing).
fn counted(kind: &NodeKind, size: u64) -> i128 {
    match kind {
        NodeKind::Dir { .. } => 0,
        _ => i128::from(size),
    }
}

fn print_entry(
    e: &diff::Entry,
    json: bool,
    totals: &mut Totals,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let (mark, kind, what, old_size, new_size) = match &e.change {
        Change::Added(n) => {
            totals.added += 1;
            totals.size_change += counted(&n.kind, n.size);
            ("+", "added", Vec::new(), None, Some(n.size))
        }
        Change::Removed(n) => {
            totals.removed += 1;
            totals.size_change -= counted(&n.kind, n.size);
            ("-", "removed", Vec::new(), Some(n.size), None)
        }
        Change::Modified { old, new, what } => {
            totals.modified += 1;
            totals.size_change += counted(&new.kind, new.size) - counted(&old.kind, old.size);
            (
                "M",
                "modified",
                what.clone(),
                Some(old.size),
                Some(new.size),
            )
        }
    };
    if json {
        let v = serde_json::json!({
            "path": ByteString::from(e.path.as_path()),
            "change": kind,
            "what": what,
            "old_size": old_size,
            "new_size": new_size,
        });
        return writeln!(out, "{v}");
    }
    write!(out, "{mark}  {}", quote::path(&e.path))?;
    if !what.is_empty() {
        write!(out, "  ({})", what.join(", "))?;
    }
    if let (Some(o), Some(n)) = (old_size, new_size)
        && o != n
    {
        write!(
            out,
            "  {} -> {} ({})",
            ui::size(o),
            ui::size(n),
            signed_size(i128::from(n) - i128::from(o))
        )?;
    }
    writeln!(out)
}
