//! Restore drills: restore a snapshot (or a subtree) into a scratch directory, then compare
//! every entry written with what the snapshot records (type, size, every byte, mode, owner
//! when running as root, modification time, symlink target, device numbers, extended
//! attributes, and that nothing is missing or extra). "An untested backup is no backup": this
//! proves the whole path from the repository to a file on disk works, not only that the
//! repository's bytes hash right.
//!
//! The comparison walks both trees with explicit stacks, reaching restored entries through
//! their open directories ([`DirFd`]), so it works at any depth.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::dirfd::{DirFd, Stat};
use crate::error::{Error, Result};
use crate::format::snapshot::Snapshot;
use crate::format::tree::{Node, NodeKind, Piece, Tree};
use crate::ingest::Reporter;
use crate::repo::Repository;

use super::{RestoreOptions, restore};

/// What a drill found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct VerifyReport {
    /// Regular files compared.
    pub files: u64,
    /// Directories compared.
    pub dirs: u64,
    /// Symlinks and special files compared.
    pub others: u64,
    /// Bytes of file content compared.
    pub bytes: u64,
    /// Every difference, as `path: what`.
    pub differences: Vec<String>,
    /// Entries the restore could not write (damaged data, or failures).
    pub not_restored: u64,
    /// Wall-clock time of restore and comparison, ns.
    pub duration_ns: u64,
}

impl VerifyReport {
    /// Whether the restore reproduced the snapshot exactly.
    #[must_use]
    pub fn is_ok(&self) -> bool {
        self.differences.is_empty() && self.not_restored == 0
    }
}

/// Restores `snapshot` (or its `subpath`) into `scratch` (which must not exist or be empty)
/// and compares the result with the snapshot.
///
/// # Errors
/// What keeps the restore from starting (scratch not creatable, root tree unreadable, not
/// enough room); differences are reported in the [`VerifyReport`].
pub fn verify(
    repo: &Repository,
    snapshot: &Snapshot,
    subpath: Option<&Path>,
    scratch: &Path,
    reporter: &dyn Reporter,
) -> Result<VerifyReport> {
    let started = Instant::now();
    let stats = restore(
        repo,
        snapshot,
        subpath,
        scratch,
        &RestoreOptions::default(),
        reporter,
    )?;
    let mut report = compare(repo, snapshot, subpath, scratch)?;
    report.not_restored = stats.damaged + stats.failed + stats.refused;
    report.duration_ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    Ok(report)
}

/// Compares the directory `restored` (where `snapshot`, or its `subpath`, was restored) with
/// what the snapshot records: every difference goes into the report.
///
/// # Errors
/// The snapshot's root tree (or `subpath`) cannot be read, or `restored` cannot be opened.
pub fn compare(
    repo: &Repository,
    snapshot: &Snapshot,
    subpath: Option<&Path>,
    restored: &Path,
) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    let root = repo.read_tree(&snapshot.root)?;
    let top = DirFd::open(restored).map_err(|e| Error::path_io("opening", restored, e))?;
    let node = match subpath {
        Some(p) => crate::snapshot::find_node(repo, &root, p)?,
        None => None,
    };
    let mut cmp = Compare {
        repo,
        as_root: crate::sys::euid() == 0,
        report: &mut report,
    };
    match node {
        None => cmp.tree(top, root, restored.to_path_buf()),
        Some(n) => match &n.kind {
            NodeKind::Dir { subtree } => {
                cmp.tree(top, repo.read_tree(subtree)?, restored.to_path_buf());
            }
            _ => {
                let wrapper = Tree { entries: vec![n] };
                cmp.tree(top, wrapper, restored.to_path_buf());
            }
        },
    }
    Ok(report)
}

struct Compare<'a> {
    repo: &'a Repository,
    as_root: bool,
    report: &'a mut VerifyReport,
}

impl Compare<'_> {
    fn differ(&mut self, path: &Path, what: impl std::fmt::Display) {
        self.report
            .differences
            .push(format!("{}: {what}", path.display()));
    }

    /// Compares directory `dir` (restored) with `tree`, and everything below.
    fn tree(&mut self, dir: DirFd, tree: Tree, path: PathBuf) {
        let mut stack = vec![(dir, tree, path)];
        while let Some((dir, tree, path)) = stack.pop() {
            let mut names: Vec<OsString> = match dir.names() {
                Ok(n) => n,
                Err(e) => {
                    self.differ(&path, format_args!("cannot list: {e}"));
                    continue;
                }
            };
            names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            let stored: Vec<&[u8]> = tree.entries.iter().map(|n| n.name.as_bytes()).collect();
            for extra in names.iter().filter(|n| !stored.contains(&n.as_bytes())) {
                self.differ(&path.join(extra), "restored, but not in the snapshot");
            }
            for node in &tree.entries {
                let child = path.join(node.name.as_path());
                let name = node.name.as_os_str();
                let Ok(st) = dir.stat(name) else {
                    self.differ(&child, "in the snapshot, but not restored");
                    continue;
                };
                self.metadata(&dir, node, &st, &child);
                match &node.kind {
                    NodeKind::Dir { subtree } => {
                        self.report.dirs += 1;
                        let (Ok(sub), Ok(t)) = (dir.open_dir(name), self.repo.read_tree(subtree))
                        else {
                            self.differ(&child, "cannot be compared (unreadable)");
                            continue;
                        };
                        stack.push((sub, t, child));
                    }
                    NodeKind::File { content } => {
                        self.report.files += 1;
                        if let Err(e) = self.content(&dir, node, content) {
                            self.differ(&child, e);
                        }
                    }
                    NodeKind::Symlink { target } => {
                        self.report.others += 1;
                        match dir.read_link(name) {
                            Ok(t) if t.as_bytes() == target.as_bytes() => {}
                            _ => self.differ(&child, "symlink target differs"),
                        }
                    }
                    NodeKind::CharDevice(d) | NodeKind::BlockDevice(d) => {
                        self.report.others += 1;
                        if (rustix::fs::major(st.rdev), rustix::fs::minor(st.rdev))
                            != (d.major, d.minor)
                        {
                            self.differ(&child, "device numbers differ");
                        }
                    }
                    NodeKind::Fifo | NodeKind::Socket => self.report.others += 1,
                }
            }
        }
    }

    fn metadata(&mut self, dir: &DirFd, node: &Node, st: &Stat, path: &Path) {
        let kind_ok = matches!(
            (&node.kind, st.file_type()),
            (NodeKind::File { .. }, rustix::fs::FileType::RegularFile)
                | (NodeKind::Dir { .. }, rustix::fs::FileType::Directory)
                | (NodeKind::Symlink { .. }, rustix::fs::FileType::Symlink)
                | (NodeKind::Fifo, rustix::fs::FileType::Fifo)
                | (NodeKind::Socket, rustix::fs::FileType::Socket)
                | (
                    NodeKind::CharDevice(_),
                    rustix::fs::FileType::CharacterDevice
                )
                | (NodeKind::BlockDevice(_), rustix::fs::FileType::BlockDevice)
        );
        if !kind_ok {
            self.differ(path, "type differs");
            return;
        }
        let is_link = matches!(node.kind, NodeKind::Symlink { .. });
        if !is_link && st.mode & 0o7777 != node.mode {
            self.differ(
                path,
                format_args!(
                    "mode {:o}, the snapshot says {:o}",
                    st.mode & 0o7777,
                    node.mode
                ),
            );
        }
        if self.as_root && (st.uid, st.gid) != (node.uid, node.gid) {
            self.differ(path, "owner differs");
        }
        if !node.is_dir() && st.size != node.size {
            self.differ(
                path,
                format_args!("{} bytes, the snapshot says {}", st.size, node.size),
            );
        }
        if st.mtime != node.mtime {
            self.differ(path, "modification time differs");
        }
        let at = dir.entry_path(node.name.as_os_str());
        let mut restored: Vec<(Vec<u8>, Vec<u8>)> = xattr::list(&at)
            .map(|names| {
                names
                    .filter_map(|n| {
                        let v = xattr::get(&at, &n).ok().flatten()?;
                        Some((n.as_bytes().to_vec(), v))
                    })
                    .collect()
            })
            .unwrap_or_default();
        restored.sort();
        let stored: Vec<(Vec<u8>, Vec<u8>)> = node
            .xattrs
            .iter()
            .map(|x| (x.name.as_bytes().to_vec(), x.value.as_bytes().to_vec()))
            .collect();
        // Without root, `trusted.*` and `security.*` attributes may not come back: compare
        // what an ordinary user can set.
        let comparable = |xs: &[(Vec<u8>, Vec<u8>)]| -> Vec<(Vec<u8>, Vec<u8>)> {
            xs.iter()
                .filter(|(n, _)| {
                    self.as_root || n.starts_with(b"user.") || n.starts_with(b"system.")
                })
                .cloned()
                .collect()
        };
        if comparable(&restored) != comparable(&stored) {
            self.differ(path, "extended attributes differ");
        }
    }

    /// Reads the restored file and compares it, piece by piece, with the stored chunks.
    fn content(
        &mut self,
        dir: &DirFd,
        node: &Node,
        content: &[Piece],
    ) -> std::result::Result<(), String> {
        let mut file = dir
            .open_file(node.name.as_os_str())
            .map_err(|e| format!("cannot open: {e}"))?;
        let mut at: u64 = 0;
        for piece in content {
            match piece {
                Piece::Data { id, len } => {
                    let want = self
                        .repo
                        .read_chunk(id, *len)
                        .map_err(|e| format!("cannot read the stored chunk: {e}"))?;
                    let mut got = vec![0u8; want.len()];
                    file.read_exact(&mut got)
                        .map_err(|e| format!("short or unreadable at byte {at}: {e}"))?;
                    if got != want {
                        return Err(format!(
                            "content differs in bytes {at}..{}",
                            at + u64::from(*len)
                        ));
                    }
                }
                Piece::Hole { len } => {
                    zeros(&file, *len).map_err(|e| format!("{e} at byte {at}"))?;
                }
            }
            at += piece.len();
            self.report.bytes += piece.len();
        }
        let mut extra = [0u8; 1];
        match file.read(&mut extra) {
            Ok(0) => Ok(()),
            _ => Err(format!("longer than the {at} bytes stored")),
        }
    }
}

/// Checks that the next `len` bytes of `file` are zeros, skipping what the file system knows
/// to be a hole without reading it.
pub(super) fn zeros(mut file: &std::fs::File, len: u64) -> std::result::Result<(), String> {
    use std::io::{Seek, SeekFrom};
    let start = file.stream_position().map_err(|e| e.to_string())?;
    let end = start + len;
    let mut pos = start;
    let mut buf = vec![0u8; 1 << 20];
    while pos < end {
        // Where the next data is: none before `end` means zeros up to it.
        let data = match crate::sys::seek_data_or_hole(file, pos, true) {
            Ok(Some(d)) => d,
            Ok(None) => end,
            Err(_) => pos,
        };
        if data >= end {
            break;
        }
        file.seek(SeekFrom::Start(data))
            .map_err(|e| e.to_string())?;
        let n = usize::try_from((end - data).min(buf.len() as u64)).unwrap_or(buf.len());
        file.read_exact(&mut buf[..n]).map_err(|e| e.to_string())?;
        if buf[..n].iter().any(|b| *b != 0) {
            return Err("data where the snapshot has a hole".into());
        }
        pos = data + n as u64;
    }
    file.seek(SeekFrom::Start(end)).map_err(|e| e.to_string())?;
    Ok(())
}
