//! The tree part of `check`: every claim a snapshot's trees make is compared with what it
//! points at, never trusted on its own word.
//!
//! - every tree decodes and validates (names, sort order, a file's size equal to the sum of
//!   its pieces, piece lengths within the format's limits);
//! - every piece's chunk is indexed, holds exactly the length the piece gives it, and (with
//!   `--read-data`) is not among the blobs found damaged;
//! - every hardlink group (non-directories sharing a source `(dev, ino)` in one snapshot) is
//!   one file: same content and metadata;
//! - no snapshot expands to more entries than restore and `ls` accept (a crafted tree that
//!   points at one subtree again and again);
//! - what a snapshot records of its trees (entries with extended attributes, with ACLs) is
//!   what they hold: a mount relies on it to tell the kernel there are none.
//!
//! Work is linear in the number of distinct trees: each is checked once, on the first path it
//! is met by ([`Checker::visit`]), and its verdict (damaged? any hardlinks below?) remembered,
//! so a crafted tree whose levels point at the same subtree many times costs no more than its
//! distinct trees. A second pass per snapshot ([`Checker::name`]) enters only the trees that
//! are damaged or hold hardlinks, once each, to name the damaged files by path and to compare
//! hardlink groups. Explicit stacks throughout: no recursion grows with depth.

use std::collections::{HashMap, HashSet, hash_map::Entry};
use std::path::{Path, PathBuf};

use crate::format::id::{BlobId, TreeId};
use crate::format::snapshot::Contents;
use crate::format::tree::{Node, NodeKind, Piece, Tree};
use crate::repo::Repository;
use crate::snapshot::Listed;
use crate::snapshot::expand::MAX_ENTRIES;

use super::CheckReport;

/// What is known of a distinct tree once checked.
#[derive(Clone, Copy, Default)]
struct Verdict {
    /// Some file below cannot be restored as stored.
    damaged: bool,
    /// Some entry below may belong to a hardlink group.
    hardlinks: bool,
    /// Entries it expands to (saturating).
    entries: u64,
    /// Entries below with extended attributes and with ACLs (saturating).
    contents: Contents,
}

/// Checks the trees of `snapshots`; `bad` are blobs found damaged in their packs.
pub(super) fn check(
    repo: &Repository,
    snapshots: &[Listed],
    bad: &HashSet<BlobId>,
    report: &mut CheckReport,
) {
    let mut checker = Checker {
        repo,
        bad,
        verdicts: HashMap::new(),
        report,
    };
    for s in snapshots {
        checker.visit(s);
        let entries = checker
            .verdicts
            .get(&s.snapshot.root)
            .map_or(0, |v| v.entries);
        if let Some(recorded) = s.snapshot.contents
            && let Some(v) = checker.verdicts.get(&s.snapshot.root)
            && !v.damaged
            && v.contents != recorded
        {
            checker.report.errors.push(format!(
                "snapshot {}: it records {} entries with extended attributes and {} with ACLs, \
                 but its trees hold {} and {} (a mount of it would hide them)",
                s.name,
                recorded.xattr_entries,
                recorded.acl_entries,
                v.contents.xattr_entries,
                v.contents.acl_entries
            ));
        }
        if entries > MAX_ENTRIES {
            checker.report.errors.push(format!(
                "snapshot {}: its trees expand to more than {MAX_ENTRIES} entries (a crafted \
                 tree that points at the same subtree again and again); it cannot be listed or \
                 restored",
                s.name
            ));
        }
    }
    for s in snapshots {
        checker.name(s);
    }
}

struct Checker<'a> {
    repo: &'a Repository,
    bad: &'a HashSet<BlobId>,
    verdicts: HashMap<TreeId, Verdict>,
    report: &'a mut CheckReport,
}

/// A step of the post-order walk: read a tree's entries, or judge it once its subtrees are.
enum Step {
    Enter(TreeId, PathBuf),
    Judge(TreeId, Tree, PathBuf),
}

impl Checker<'_> {
    /// Checks every tree of `s` not checked before, naming problems by the path in `s` they
    /// are first met at.
    fn visit(&mut self, s: &Listed) {
        let mut stack = vec![Step::Enter(s.snapshot.root, PathBuf::from("/"))];
        while let Some(step) = stack.pop() {
            match step {
                Step::Enter(id, path) => {
                    if self.verdicts.contains_key(&id) {
                        continue;
                    }
                    match self.repo.read_tree(&id) {
                        Ok(tree) => {
                            let children: Vec<Step> = tree
                                .entries
                                .iter()
                                .rev()
                                .filter_map(|n| match &n.kind {
                                    NodeKind::Dir { subtree } => {
                                        Some(Step::Enter(*subtree, path.join(n.name.as_path())))
                                    }
                                    _ => None,
                                })
                                .collect();
                            stack.push(Step::Judge(id, tree, path));
                            stack.extend(children);
                        }
                        Err(e) => {
                            self.report.errors.push(format!(
                                "snapshot {}: directory {} unreadable: {e}",
                                s.name,
                                path.display()
                            ));
                            self.verdicts.insert(
                                id,
                                Verdict {
                                    damaged: true,
                                    ..Verdict::default()
                                },
                            );
                        }
                    }
                }
                Step::Judge(id, tree, path) => {
                    let verdict = self.judge(s, &tree, &path);
                    self.verdicts.insert(id, verdict);
                }
            }
        }
    }

    /// The verdict on one tree whose subtrees are judged already; reports its files'
    /// problems.
    fn judge(&mut self, s: &Listed, tree: &Tree, path: &Path) -> Verdict {
        let mut v = Verdict::default();
        v.contents.add(&tree.entries);
        for node in &tree.entries {
            v.hardlinks |= node.may_be_hardlinked();
            v.entries = v.entries.saturating_add(1);
            match &node.kind {
                NodeKind::Dir { subtree } => {
                    let child = self.verdicts.get(subtree).copied().unwrap_or_default();
                    v.damaged |= child.damaged;
                    v.hardlinks |= child.hardlinks;
                    v.entries = v.entries.saturating_add(child.entries);
                    v.contents.merge(&child.contents);
                }
                NodeKind::File { content } => {
                    if let Some(problem) = self.file_problem(content) {
                        v.damaged = true;
                        self.report.errors.push(format!(
                            "snapshot {}: {}: {problem}",
                            s.name,
                            path.join(node.name.as_path()).display()
                        ));
                    }
                }
                _ => {}
            }
        }
        v
    }

    /// What keeps a file from being restored as stored, if anything.
    fn file_problem(&self, content: &[Piece]) -> Option<String> {
        let index = self.repo.index();
        content.iter().find_map(|p| {
            let Piece::Data { id, len } = p else {
                return None;
            };
            let blob = BlobId::from(*id);
            match index.lookup(&blob) {
                None => Some(format!("chunk {} is missing from the index", id.short())),
                Some(loc) if loc.raw_len != *len => Some(format!(
                    "the file lists chunk {} as {len} bytes, but it holds {}",
                    id.short(),
                    loc.raw_len
                )),
                Some(_) if self.bad.contains(&blob) => {
                    Some(format!("chunk {} is damaged", id.short()))
                }
                Some(_) => None,
            }
        })
    }

    /// Names the damaged files of `s` and compares its hardlink groups, entering only the
    /// trees that need it, each once.
    fn name(&mut self, s: &Listed) {
        let mut seen: HashSet<TreeId> = HashSet::new();
        let mut links: HashMap<(u64, u64), (PathBuf, Node)> = HashMap::new();
        let mut stack = vec![(s.snapshot.root, PathBuf::from("/"))];
        while let Some((id, path)) = stack.pop() {
            let v = self.verdicts.get(&id).copied().unwrap_or_default();
            if !(v.damaged || v.hardlinks) || !seen.insert(id) {
                continue;
            }
            let Ok(tree) = self.repo.read_tree(&id) else {
                self.damaged(s, &path);
                continue;
            };
            for node in tree.entries.iter().rev() {
                let child = path.join(node.name.as_path());
                match &node.kind {
                    NodeKind::Dir { subtree } => stack.push((*subtree, child.clone())),
                    NodeKind::File { content }
                        if v.damaged && self.file_problem(content).is_some() =>
                    {
                        self.damaged(s, &child);
                    }
                    _ => {}
                }
                if node.may_be_hardlinked() {
                    match links.entry((node.dev, node.ino)) {
                        Entry::Vacant(e) => {
                            e.insert((child, node.clone()));
                        }
                        Entry::Occupied(e) => {
                            let (first, first_node) = e.get();
                            if !first_node.same_inode_as(node) {
                                self.report.errors.push(format!(
                                    "snapshot {}: {} and {} share source inode {} on device \
                                     {} but differ in {}: they are not one file",
                                    s.name,
                                    first.display(),
                                    child.display(),
                                    node.ino,
                                    node.dev,
                                    difference(first_node, node)
                                ));
                                self.damaged(s, &child);
                            }
                        }
                    }
                }
            }
        }
    }

    fn damaged(&mut self, s: &Listed, path: &Path) {
        self.report
            .damaged_files
            .insert(format!("{}:{}", s.name, path.display()));
    }
}

/// What differs between two entries of one hardlink group.
fn difference(a: &Node, b: &Node) -> &'static str {
    if a.kind != b.kind {
        "content"
    } else if a.size != b.size {
        "size"
    } else if (a.mode, a.uid, a.gid) != (b.mode, b.uid, b.gid) {
        "mode or owner"
    } else if (a.mtime, a.ctime) != (b.mtime, b.ctime) {
        "times"
    } else if a.nlink != b.nlink {
        "link count"
    } else {
        "extended attributes"
    }
}
