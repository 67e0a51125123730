//! Questions about time across many snapshots: the versions of one path ([`versions`]) and
//! where paths matching a pattern appear ([`find`]).
//!
//! Snapshots share most of their trees, so both remember what they learnt per tree id: the
//! path lookup per (tree, depth), and the matches below a directory per (path, tree). A
//! thousand snapshots of a mostly unchanged tree cost little more than one.

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};
use crate::format::id::TreeId;
use crate::format::tree::{Node, NodeKind};
use crate::repo::Repository;

use super::diff::differences;
use super::{Listed, expand};

/// One version of a path: the same content over a run of consecutive snapshots.
#[derive(Clone, Debug)]
pub struct Version {
    /// The node as the first snapshot of the run holds it.
    pub node: Node,
    /// Indices (into the snapshots given) of the snapshots holding this version, in order.
    pub snapshots: Vec<usize>,
}

/// The components of absolute `path` as bytes.
///
/// # Errors
/// [`Error::InvalidInput`] for `..`.
fn components(path: &Path) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(std::os::unix::ffi::OsStrExt::as_bytes(n).to_vec()),
            _ => {
                return Err(Error::InvalidInput(format!(
                    "path {} must not contain `..`",
                    path.display()
                )));
            }
        }
    }
    Ok(out)
}

/// Finds the node at `parts[depth..]` below tree `tree`, remembering answers per (tree, depth).
fn lookup(
    repo: &Repository,
    tree: TreeId,
    parts: &[Vec<u8>],
    memo: &mut HashMap<(TreeId, usize), Option<Node>>,
) -> Result<Option<Node>> {
    let mut at = tree;
    let mut depth = 0;
    let mut visited = Vec::new();
    let found = loop {
        if let Some(known) = memo.get(&(at, depth)) {
            break known.clone();
        }
        visited.push((at, depth));
        let t = repo.read_tree(&at)?;
        let Some(node) = t.get(&parts[depth]).cloned() else {
            break None;
        };
        if depth + 1 == parts.len() {
            break Some(node);
        }
        match node.kind {
            NodeKind::Dir { subtree } => {
                at = subtree;
                depth += 1;
            }
            _ => break None,
        }
    };
    for key in visited {
        memo.insert(key, found.clone());
    }
    Ok(found)
}

/// Whether `next` (in the snapshot after) continues the version that `first` began: same type,
/// content and size (and, for directories, the same tree). Metadata-only changes stay in one
/// version.
#[must_use]
pub fn same_version(first: &Node, next: &Node) -> bool {
    !differences(first, next)
        .iter()
        .any(|w| matches!(*w, "type" | "content" | "size"))
        && match (&first.kind, &next.kind) {
            (NodeKind::Dir { subtree: a }, NodeKind::Dir { subtree: b }) => a == b,
            _ => true,
        }
}

/// The versions of the entry at absolute `path` across `snapshots` (oldest first). A new
/// version starts where the type, content or size changes, or where the path comes back after
/// snapshots that lack it; metadata-only changes stay in the same version.
///
/// # Errors
/// Tree read errors; [`Error::InvalidInput`] for the root or a path with `..`.
pub fn versions(repo: &Repository, snapshots: &[Listed], path: &Path) -> Result<Vec<Version>> {
    let parts = components(path)?;
    if parts.is_empty() {
        return Err(Error::InvalidInput(
            "give a path inside the snapshots, not the root".into(),
        ));
    }
    let mut memo = HashMap::new();
    let mut out: Vec<Version> = Vec::new();
    let mut previous: Option<usize> = None;
    for (i, snap) in snapshots.iter().enumerate() {
        let Some(node) = lookup(repo, snap.snapshot.root, &parts, &mut memo)? else {
            previous = None;
            continue;
        };
        let continues =
            previous.is_some() && out.last().is_some_and(|v| same_version(&v.node, &node));
        match out.last_mut() {
            Some(v) if continues => v.snapshots.push(i),
            _ => out.push(Version {
                node,
                snapshots: vec![i],
            }),
        }
        previous = Some(i);
    }
    Ok(out)
}

/// Every path in `snapshots` whose entry `matches`, with the indices of the snapshots holding
/// it, in path order.
///
/// # Errors
/// Tree read errors, or a snapshot whose tree expands beyond the limits.
pub fn find(
    repo: &Repository,
    snapshots: &[Listed],
    matches: &dyn Fn(&Path, &Node) -> bool,
) -> Result<BTreeMap<PathBuf, Vec<usize>>> {
    let mut found: BTreeMap<PathBuf, Vec<usize>> = BTreeMap::new();
    // Matches below a directory, by its path and tree.
    let mut memo: HashMap<(PathBuf, TreeId), Vec<PathBuf>> = HashMap::new();
    for (i, snap) in snapshots.iter().enumerate() {
        let root = snap.snapshot.root;
        expand::bounded(repo, root)?;
        for p in matches_below(repo, Path::new("/"), root, matches, &mut memo)? {
            found.entry(p).or_default().push(i);
        }
    }
    Ok(found)
}

/// The matches below directory `dir` (tree `tree`), from the memo or by walking it (with an
/// explicit stack; each directory's list goes into the memo when it is complete).
fn matches_below(
    repo: &Repository,
    dir: &Path,
    tree: TreeId,
    matches: &dyn Fn(&Path, &Node) -> bool,
    memo: &mut HashMap<(PathBuf, TreeId), Vec<PathBuf>>,
) -> Result<Vec<PathBuf>> {
    struct Frame {
        key: (PathBuf, TreeId),
        entries: Vec<Node>,
        next: usize,
        found: Vec<PathBuf>,
    }
    let key = (dir.to_path_buf(), tree);
    if let Some(known) = memo.get(&key) {
        return Ok(known.clone());
    }
    let mut stack = vec![Frame {
        entries: repo.read_tree(&tree)?.entries,
        key,
        next: 0,
        found: Vec::new(),
    }];
    loop {
        let Some(top) = stack.last_mut() else {
            return Ok(Vec::new());
        };
        let Some(node) = top.entries.get(top.next).cloned() else {
            let done = stack.pop().map(|f| (f.key, f.found));
            let Some((key, list)) = done else {
                continue;
            };
            memo.insert(key, list.clone());
            match stack.last_mut() {
                Some(parent) => parent.found.extend(list),
                None => return Ok(list),
            }
            continue;
        };
        top.next += 1;
        let path = top.key.0.join(node.name.as_path());
        if matches(&path, &node) {
            top.found.push(path.clone());
        }
        if let NodeKind::Dir { subtree } = node.kind {
            let key = (path, subtree);
            if let Some(known) = memo.get(&key) {
                top.found.extend(known.iter().cloned());
            } else {
                stack.push(Frame {
                    entries: repo.read_tree(&subtree)?.entries,
                    key,
                    next: 0,
                    found: Vec::new(),
                });
            }
        }
    }
}
