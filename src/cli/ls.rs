//! `chronofs ls`: list the entries of a snapshot, recursively.
//!
//! Names are printed escaped (see [`quote`](super::quote)); `-0` prints them exactly, each
//! followed by a NUL byte, and `--json` prints one exact JSON object per entry. The walk keeps
//! its own stack, so a tree of any depth lists in constant stack space, and the tree's
//! expansion is measured first, so a crafted one that would list forever is refused.

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::Result;
use chronofs::format::bytes::ByteString;
use chronofs::format::tree::{Node, NodeKind, Tree};
use chronofs::repo::Repository;
use chronofs::snapshot::{self, expand};

use super::{Context, quote};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Snapshot: `latest`, a dated name, or an id prefix.
    #[arg(value_name = "SNAP")]
    snapshot: String,
    /// Absolute path inside the snapshot to list (default: everything).
    #[arg(value_name = "PATH")]
    path: Option<PathBuf>,
    /// Show type, mode, owner, size and modification time.
    #[arg(short, long, conflicts_with_all = ["null", "json"])]
    long: bool,
    /// Print each path exactly as stored, followed by a NUL byte (for `xargs -0`).
    #[arg(short = '0', long = "null", conflicts_with = "json")]
    null: bool,
    /// Print one JSON object per entry (path, type, mode, owner, size, times, link target).
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy)]
enum Style {
    Plain,
    Long,
    Null,
    Json,
}

pub fn run(ctx: &Context, a: &Args) -> Result<u8> {
    let repo = ctx.open()?;
    let snap = super::resolve_snapshot(&repo, &a.snapshot)?;
    let root = repo.read_tree(&snap.snapshot.root)?;
    let start = a.path.clone().unwrap_or_else(|| PathBuf::from("/"));
    let style = match (a.long, a.null, a.json) {
        (true, _, _) => Style::Long,
        (_, true, _) => Style::Null,
        (_, _, true) => Style::Json,
        _ => Style::Plain,
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match snapshot::find_node(&repo, &root, &start)? {
        None => {
            expand::bounded(&repo, snap.snapshot.root)?;
            walk(&repo, root, Path::new("/"), style, &mut out)?;
        }
        Some(node) => {
            print_node(&node, &start, style, &mut out)?;
            if let NodeKind::Dir { subtree } = &node.kind {
                expand::bounded(&repo, *subtree)?;
                walk(&repo, repo.read_tree(subtree)?, &start, style, &mut out)?;
            }
        }
    }
    out.flush()?;
    Ok(0)
}

/// Prints every entry below `tree` (at `dir`) depth-first, in name order.
fn walk(
    repo: &Repository,
    tree: Tree,
    dir: &Path,
    style: Style,
    out: &mut dyn Write,
) -> Result<()> {
    let mut stack: Vec<(Tree, usize, PathBuf)> = vec![(tree, 0, dir.to_path_buf())];
    while let Some((tree, next, dir)) = stack.last_mut() {
        let Some(node) = tree.entries.get(*next) else {
            stack.pop();
            continue;
        };
        *next += 1;
        let path = dir.join(node.name.as_path());
        print_node(node, &path, style, out)?;
        if let NodeKind::Dir { subtree } = &node.kind {
            let sub = repo.read_tree(subtree)?;
            stack.push((sub, 0, path));
        }
    }
    Ok(())
}

fn print_node(node: &Node, path: &Path, style: Style, out: &mut dyn Write) -> Result<()> {
    match style {
        Style::Null => {
            out.write_all(path.as_os_str().as_bytes())?;
            out.write_all(b"\0")?;
        }
        Style::Json => {
            let v = serde_json::json!({
                "path": ByteString::from(path),
                "type": type_name(node),
                "mode": node.mode,
                "uid": node.uid, "gid": node.gid,
                "user": node.user, "group": node.group,
                "size": node.size,
                "mtime": snapshot::rfc3339(ns(node.mtime)),
                "atime": snapshot::rfc3339(ns(node.atime)),
                "ctime": snapshot::rfc3339(ns(node.ctime)),
                "target": match &node.kind {
                    NodeKind::Symlink { target } => Some(target),
                    _ => None,
                },
            });
            writeln!(out, "{v}")?;
        }
        Style::Plain => writeln!(out, "{}", quote::path(path))?,
        Style::Long => {
            let owner = node.user.clone().unwrap_or_else(|| node.uid.to_string());
            let group = node.group.clone().unwrap_or_else(|| node.gid.to_string());
            write!(
                out,
                "{}{} {:>8} {:>8} {:>12} {} {}",
                node.type_char(),
                mode_string(node.mode),
                quote::text(&owner),
                quote::text(&group),
                node.size,
                snapshot::rfc3339(ns(node.mtime)),
                quote::path(path),
            )?;
            if let NodeKind::Symlink { target } = &node.kind {
                write!(out, " -> {}", quote::bytes(target.as_bytes()))?;
            }
            writeln!(out)?;
        }
    }
    Ok(())
}

fn ns(t: chronofs::format::tree::Timestamp) -> i64 {
    t.secs
        .saturating_mul(1_000_000_000)
        .saturating_add(i64::from(t.nanos))
}

pub(super) fn type_name(node: &Node) -> &'static str {
    match node.kind {
        NodeKind::File { .. } => "file",
        NodeKind::Dir { .. } => "dir",
        NodeKind::Symlink { .. } => "symlink",
        NodeKind::Fifo => "fifo",
        NodeKind::CharDevice(_) => "chardev",
        NodeKind::BlockDevice(_) => "blockdev",
        NodeKind::Socket => "socket",
    }
}

/// `rwsr-xr-t`-style permission string.
fn mode_string(mode: u32) -> String {
    let mut s: Vec<char> = "rwxrwxrwx".chars().collect();
    for (i, c) in s.iter_mut().enumerate() {
        if mode & (1 << (8 - i)) == 0 {
            *c = '-';
        }
    }
    let special = |c: char, bit: u32, idx: usize, s: &mut Vec<char>| {
        if mode & bit != 0 {
            s[idx] = if s[idx] == '-' {
                c.to_ascii_uppercase()
            } else {
                c
            };
        }
    };
    special('s', 0o4000, 2, &mut s);
    special('s', 0o2000, 5, &mut s);
    special('t', 0o1000, 8, &mut s);
    s.into_iter().collect()
}
