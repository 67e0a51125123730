//! The restore path: writes a snapshot (or a subtree) back to a directory, with every kind of
//! file and all metadata, and never outside the target.
//!
//! Safety: names come from validated trees (no `/`, NUL, `.`, `..`) and are checked again here;
//! files are created with `O_EXCL | O_NOFOLLOW`, and an existing symlink is never followed into
//! (a directory entry that is a symlink in the target is refused, not descended into). Existing
//! files are kept unless `overwrite` is set. A file whose data is damaged is removed and
//! reported: restore never leaves wrong bytes looking like a restored file.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::format::snapshot::Snapshot;
use crate::format::tree::{self, Node, NodeKind, Piece, Tree};
use crate::ingest::Reporter;
use crate::repo::Repository;
use crate::sys;

/// Restore settings.
#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// Replace existing entries in the target.
    pub overwrite: bool,
}

/// What a restore did.
#[derive(Clone, Debug, Default)]
pub struct RestoreStats {
    /// Regular files written (hardlinks included).
    pub files: u64,
    /// Directories.
    pub dirs: u64,
    /// Symlinks and special files.
    pub others: u64,
    /// Content bytes written.
    pub bytes: u64,
    /// Entries that could not be restored because repository data is damaged or missing.
    pub damaged: u64,
    /// Entries that could not be restored for other reasons (existing files, permissions...).
    pub failed: u64,
}

struct Restorer<'a> {
    repo: &'a Repository,
    options: &'a RestoreOptions,
    reporter: &'a dyn Reporter,
    as_root: bool,
    hardlinks: HashMap<(u64, u64), PathBuf>,
    stats: RestoreStats,
}

/// Restores `snapshot` (or its `subpath`) into `target`.
///
/// Whole snapshot: each source path appears under `target` by its absolute path. Subpath: a
/// directory's contents go directly into `target`, a single entry goes to `target/<name>`.
///
/// # Errors
/// Fatal errors only (target not creatable, root tree unreadable, subpath missing); per-entry
/// problems are reported and counted in the returned stats.
pub fn restore(
    repo: &Repository,
    snapshot: &Snapshot,
    subpath: Option<&Path>,
    target: &Path,
    options: &RestoreOptions,
    reporter: &dyn Reporter,
) -> Result<RestoreStats> {
    let root = repo.read_tree(&snapshot.root)?;
    fs::create_dir_all(target).map_err(|e| Error::path_io("creating restore target", target, e))?;
    let mut r = Restorer {
        repo,
        options,
        reporter,
        as_root: sys::euid() == 0,
        hardlinks: HashMap::new(),
        stats: RestoreStats::default(),
    };
    let node = match subpath {
        Some(p) => crate::snapshot::find_node(repo, &root, p)?,
        None => None,
    };
    match node {
        None => r.tree(&root, target),
        Some(n) => match &n.kind {
            NodeKind::Dir { subtree } => {
                let t = repo.read_tree(subtree)?;
                r.tree(&t, target);
            }
            _ => r.node(&n, &target.join(n.name.as_path())),
        },
    }
    Ok(r.stats)
}

impl Restorer<'_> {
    fn fail(&mut self, path: &Path, e: &Error) {
        if e.is_damage() {
            self.stats.damaged += 1;
        } else {
            self.stats.failed += 1;
        }
        self.reporter.warning(path, &e.to_string());
    }

    fn tree(&mut self, tree: &Tree, dir: &Path) {
        for node in &tree.entries {
            let path = dir.join(node.name.as_path());
            if let Err(e) = tree::check_name(node.name.as_bytes()) {
                self.fail(&path, &Error::Refused(format!("refusing entry: {e}")));
                continue;
            }
            self.node(node, &path);
        }
    }

    fn node(&mut self, node: &Node, path: &Path) {
        if let Err(e) = self.try_node(node, path) {
            self.fail(path, &e);
        }
    }

    fn try_node(&mut self, node: &Node, path: &Path) -> Result<()> {
        let existing = fs::symlink_metadata(path).ok();
        let reuse_dir = node.is_dir() && existing.as_ref().is_some_and(fs::Metadata::is_dir);
        if let (Some(m), false) = (&existing, reuse_dir) {
            if !self.options.overwrite {
                return Err(Error::Refused(format!(
                    "{} exists; not overwritten (use --overwrite)",
                    path.display()
                )));
            }
            let removed = if m.is_dir() {
                fs::remove_dir_all(path)
            } else {
                fs::remove_file(path)
            };
            removed.map_err(|e| Error::path_io("removing", path, e))?;
        }
        let key = (node.dev, node.ino);
        if !node.is_dir()
            && node.nlink > 1
            && let Some(first) = self.hardlinks.get(&key)
        {
            fs::hard_link(first, path).map_err(|e| Error::path_io("linking", path, e))?;
            self.stats.files += 1;
            return Ok(());
        }
        let io = |op: &'static str| move |e| Error::path_io(op, path, e);
        match &node.kind {
            NodeKind::File { content } => {
                self.file(path, content, node.size)?;
                self.stats.files += 1;
            }
            NodeKind::Dir { subtree } => {
                if !reuse_dir {
                    fs::create_dir(path).map_err(io("creating directory"))?;
                }
                self.stats.dirs += 1;
                match self.repo.read_tree(subtree) {
                    Ok(t) => self.tree(&t, path),
                    Err(e) => self.fail(path, &e),
                }
            }
            NodeKind::Symlink { target } => {
                std::os::unix::fs::symlink(target.as_path(), path)
                    .map_err(io("creating symlink"))?;
                self.stats.others += 1;
            }
            NodeKind::Fifo => self.special(path, libc::S_IFIFO, node.mode, 0, 0)?,
            NodeKind::Socket => self.special(path, libc::S_IFSOCK, node.mode, 0, 0)?,
            NodeKind::CharDevice(d) => {
                self.special(path, libc::S_IFCHR, node.mode, d.major, d.minor)?
            }
            NodeKind::BlockDevice(d) => {
                self.special(path, libc::S_IFBLK, node.mode, d.major, d.minor)?
            }
        }
        if !node.is_dir() && node.nlink > 1 {
            self.hardlinks.insert(key, path.to_path_buf());
        }
        self.metadata(node, path);
        Ok(())
    }

    fn special(
        &mut self,
        path: &Path,
        ty: libc::mode_t,
        mode: u32,
        major: u32,
        minor: u32,
    ) -> Result<()> {
        sys::mknod(path, ty, mode, major, minor)
            .map_err(|e| Error::path_io("creating special file", path, e))?;
        self.stats.others += 1;
        Ok(())
    }

    fn file(&mut self, path: &Path, content: &[Piece], size: u64) -> Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(0o600)
            .open(path)
            .map_err(|e| Error::path_io("creating", path, e))?;
        let result = (|| {
            for piece in content {
                match piece {
                    Piece::Data { id, len } => {
                        let data = self.repo.read_chunk(id, *len)?;
                        f.write_all(&data)
                            .map_err(|e| Error::path_io("writing", path, e))?;
                    }
                    Piece::Hole { len } => {
                        f.seek(SeekFrom::Current(i64::try_from(*len).unwrap_or(i64::MAX)))
                            .map_err(|e| Error::path_io("seeking", path, e))?;
                    }
                }
            }
            f.set_len(size)
                .map_err(|e| Error::path_io("sizing", path, e))
        })();
        if let Err(e) = result {
            drop(f);
            let _ = fs::remove_file(path);
            return Err(e);
        }
        self.stats.bytes += size;
        Ok(())
    }

    /// Owner, xattrs, mode, times — in that order: chown clears setuid bits, so chmod follows
    /// it; times last, since every other change touches ctime/mtime.
    fn metadata(&mut self, node: &Node, path: &Path) {
        let is_link = matches!(node.kind, NodeKind::Symlink { .. });
        if self.as_root
            && let Err(e) = std::os::unix::fs::lchown(path, Some(node.uid), Some(node.gid))
        {
            self.fail(path, &Error::path_io("changing owner of", path, e));
        }
        for x in &node.xattrs {
            if let Err(e) = xattr::set(path, x.name.as_os_str(), x.value.as_bytes()) {
                self.reporter.warning(
                    path,
                    &format!("cannot set extended attribute {}: {e}", x.name),
                );
            }
        }
        if !is_link && let Err(e) = fs::set_permissions(path, fs::Permissions::from_mode(node.mode))
        {
            self.fail(path, &Error::path_io("setting mode of", path, e));
        }
        if let Err(e) = sys::set_times_nofollow(path, node.atime, node.mtime) {
            self.fail(path, &Error::path_io("setting times of", path, e));
        }
    }
}
