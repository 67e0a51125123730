//! `chronofs ls`: list the entries of a snapshot, recursively.

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::Result;
use chronofs::format::tree::{Node, NodeKind, Tree};
use chronofs::repo::Repository;
use chronofs::snapshot;

use super::Context;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Snapshot: `latest`, a dated name, or an id prefix.
    #[arg(value_name = "SNAP")]
    snapshot: String,
    /// Absolute path inside the snapshot to list (default: everything).
    #[arg(value_name = "PATH")]
    path: Option<PathBuf>,
    /// Show type, mode, owner, size and modification time.
    #[arg(short, long)]
    long: bool,
}

pub fn run(ctx: &Context, a: &Args) -> Result<u8> {
    let repo = ctx.open()?;
    let (listed, _) = snapshot::list(&repo)?;
    let snap = snapshot::resolve(&listed, &a.snapshot)?;
    let root = repo.read_tree(&snap.snapshot.root)?;
    let start = a.path.clone().unwrap_or_else(|| PathBuf::from("/"));
    let mut out = std::io::stdout().lock();
    match snapshot::find_node(&repo, &root, &start)? {
        None => walk(&repo, &root, Path::new("/"), a.long, &mut out)?,
        Some(node) => {
            print_node(&node, &start, a.long, &mut out)?;
            if let NodeKind::Dir { subtree } = &node.kind {
                walk(&repo, &repo.read_tree(subtree)?, &start, a.long, &mut out)?;
            }
        }
    }
    Ok(0)
}

fn walk(repo: &Repository, tree: &Tree, dir: &Path, long: bool, out: &mut dyn Write) -> Result<()> {
    for node in &tree.entries {
        let path = dir.join(node.name.as_path());
        print_node(node, &path, long, out)?;
        if let NodeKind::Dir { subtree } = &node.kind {
            walk(repo, &repo.read_tree(subtree)?, &path, long, out)?;
        }
    }
    Ok(())
}

fn print_node(node: &Node, path: &Path, long: bool, out: &mut dyn Write) -> Result<()> {
    if long {
        let owner = node.user.clone().unwrap_or_else(|| node.uid.to_string());
        let group = node.group.clone().unwrap_or_else(|| node.gid.to_string());
        let mtime = snapshot::rfc3339(
            node.mtime
                .secs
                .saturating_mul(1_000_000_000)
                .saturating_add(i64::from(node.mtime.nanos)),
        );
        write!(
            out,
            "{}{} {:>8} {:>8} {:>12} {} ",
            node.type_char(),
            mode_string(node.mode),
            owner,
            group,
            node.size,
            mtime
        )?;
    }
    out.write_all(path.as_os_str().as_bytes())?;
    if let (true, NodeKind::Symlink { target }) = (long, &node.kind) {
        out.write_all(b" -> ")?;
        out.write_all(target.as_bytes())?;
    }
    out.write_all(b"\n")?;
    Ok(())
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
