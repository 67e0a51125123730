//! A restored entry's metadata: owner, extended attributes, mode and times, set through its
//! open parent directory; and the same for every file of a written batch, on several threads
//! (three or four system calls a file, which one thread made for each file in turn).

use std::path::Path;

use crate::dirfd::DirFd;
use crate::error::Error;
use crate::format::tree::{Node, NodeKind};

/// What went wrong while setting an entry's metadata.
pub(super) enum Problem {
    /// A step that failed (counted against the restore).
    Failed(Error),
    /// A step that could not be done but leaves the entry usable (reported only).
    Warning(String),
}

/// Owner, xattrs, mode, times — in that order: chown clears setuid bits, so chmod follows
/// it; times last, since every other change touches ctime/mtime. The owner is set only when
/// `as_root`.
pub(super) fn apply(as_root: bool, dir: &DirFd, node: &Node, path: &Path) -> Vec<Problem> {
    let mut problems = Vec::new();
    let name = node.name.as_os_str();
    let is_link = matches!(node.kind, NodeKind::Symlink { .. });
    if as_root && let Err(e) = dir.chown(name, node.uid, node.gid) {
        problems.push(Problem::Failed(Error::path_io(
            "changing owner of",
            path,
            e,
        )));
    }
    if !node.xattrs.is_empty() {
        let at = dir.entry_path(name);
        for x in &node.xattrs {
            if let Err(e) = xattr::set(&at, x.name.as_os_str(), x.value.as_bytes()) {
                problems.push(Problem::Warning(format!(
                    "cannot set extended attribute {}: {e}",
                    x.name
                )));
            }
        }
    }
    if !is_link && let Err(e) = dir.chmod(name, node.mode) {
        problems.push(Problem::Failed(Error::path_io("setting mode of", path, e)));
    }
    if let Err(e) = dir.set_times(name, node.atime, node.mtime) {
        problems.push(Problem::Failed(Error::path_io("setting times of", path, e)));
    }
    problems
}

/// [`apply`] to each of `entries` (directory, entry, path for messages), spread over at most
/// `threads` threads; the problems of each entry, in the order given.
pub(super) fn apply_all(
    as_root: bool,
    entries: &[(&DirFd, &Node, &Path)],
    threads: usize,
) -> Vec<Vec<Problem>> {
    let per_thread = entries.len().div_ceil(threads.max(1)).max(1);
    let apply_part = |part: &[(&DirFd, &Node, &Path)]| -> Vec<Vec<Problem>> {
        part.iter()
            .map(|(dir, node, path)| apply(as_root, dir, node, path))
            .collect()
    };
    std::thread::scope(|s| {
        // A part whose thread cannot be started is done by this one.
        let parts: Vec<_> = entries
            .chunks(per_thread)
            .map(|part| {
                std::thread::Builder::new()
                    .spawn_scoped(s, move || apply_part(part))
                    .map_err(|_| part)
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|p| match p {
                Ok(thread) => match thread.join() {
                    Ok(problems) => problems,
                    Err(panic) => std::panic::resume_unwind(panic),
                },
                Err(part) => apply_part(part),
            })
            .collect()
    })
}
