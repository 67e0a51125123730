//! The directory walk: turns a source tree into tree blobs, bottom-up, reusing the parent
//! snapshot's chunk lists for unchanged files.
//!
//! Errors reading the *source* (permission denied, vanished files) are reported through the
//! [`Reporter`] and counted; the entry is left out and the walk goes on. Errors writing the
//! *repository* stop the walk.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::format::bytes::ByteString;
use crate::format::id::{BlobId, TreeId};
use crate::format::pack::BlobKind;
use crate::format::snapshot::Summary;
use crate::format::tree::{Node, NodeKind, Piece, Tree};
use crate::repo::Repository;
use crate::repo::writer::BlobWriter;

use super::Reporter;
use super::content::{self, ContentError, ContentStats};
use super::exclude::Excludes;
use super::meta::{self, Owners};

/// What to back up below the root: a whole path, or a directory of which only some entries
/// are sources (the intermediate directories of `/home/alice`).
#[derive(Debug, Default)]
pub struct SourceSpec {
    /// Entries of this directory to include, by name.
    pub children: BTreeMap<OsString, SourceSpec>,
    /// True if this path itself is a source, taken whole.
    pub whole: bool,
}

impl SourceSpec {
    /// Adds an absolute path, component by component.
    pub fn add(&mut self, path: &Path) {
        let mut node = self;
        for c in path.components().skip(1) {
            if node.whole {
                return; // an ancestor is already included whole
            }
            node = node
                .children
                .entry(c.as_os_str().to_os_string())
                .or_default();
        }
        node.whole = true;
        node.children.clear();
    }
}

/// State of one backup walk.
pub struct Walker<'r, 'a> {
    pub(super) repo: &'r Repository,
    pub(super) writer: BlobWriter<'r>,
    pub(super) excludes: &'a Excludes,
    pub(super) one_file_system: bool,
    pub(super) force: bool,
    pub(super) reporter: &'a dyn Reporter,
    pub(super) summary: Summary,
    /// (dev, ino) of the repository directory, never backed up.
    pub(super) repo_ident: Option<(u64, u64)>,
    owners: Owners,
    /// Content of hardlinked files already read in this run, by (dev, ino).
    hardlinks: HashMap<(u64, u64), Vec<Piece>>,
}

impl<'r, 'a> Walker<'r, 'a> {
    pub(super) fn new(
        repo: &'r Repository,
        excludes: &'a Excludes,
        reporter: &'a dyn Reporter,
    ) -> Self {
        let repo_ident = fs::metadata(repo.location())
            .ok()
            .map(|m| (m.dev(), m.ino()));
        Walker {
            repo,
            writer: repo.writer(),
            excludes,
            one_file_system: false,
            force: false,
            reporter,
            summary: Summary::default(),
            repo_ident,
            owners: Owners::default(),
            hardlinks: HashMap::new(),
        }
    }

    fn warn(&mut self, path: &Path, e: &dyn std::fmt::Display) {
        self.summary.errors += 1;
        self.reporter.warning(path, &e.to_string());
    }

    /// Stores a tree blob and returns its id.
    pub(super) fn store_tree(&mut self, tree: &Tree) -> Result<TreeId> {
        let bytes = tree
            .encode()
            .map_err(|e| Error::corrupt("<new tree>", e.to_string()))?;
        Ok(TreeId(self.writer.add(BlobKind::Tree, &bytes)?.0))
    }

    fn parent_subtree(&self, parent: Option<&Node>) -> Option<Tree> {
        match parent.map(|n| &n.kind) {
            Some(NodeKind::Dir { subtree }) => self.repo.read_tree(subtree).ok(),
            _ => None,
        }
    }

    /// Builds the tree for directory `dir` restricted to `spec`'s children (or whole).
    pub(super) fn spec_tree(
        &mut self,
        dir: &Path,
        spec: &SourceSpec,
        parent: Option<&Tree>,
    ) -> Result<TreeId> {
        let mut tree = Tree::default();
        for (name, child) in &spec.children {
            let path = dir.join(name);
            let parent_node = parent.and_then(|t| t.get(name.as_bytes()));
            let meta = match fs::symlink_metadata(&path) {
                Ok(m) => m,
                Err(e) => {
                    self.warn(&path, &e);
                    continue;
                }
            };
            let node = if child.whole {
                self.entry(&path, name, &meta, parent_node, meta.dev())?
            } else if meta.is_dir() {
                let sub = self.parent_subtree(parent_node);
                let subtree = self.spec_tree(&path, child, sub.as_ref())?;
                let x = self.read_xattrs(&path);
                self.summary.dirs += 1;
                Some(meta::node(
                    ByteString::from(name.as_os_str()),
                    &meta,
                    NodeKind::Dir { subtree },
                    x,
                    &mut self.owners,
                ))
            } else {
                self.warn(&path, &"is not a directory (a source path lies below it)");
                None
            };
            tree.entries.extend(node);
        }
        self.store_tree(&tree)
    }

    fn read_xattrs(&mut self, path: &Path) -> Vec<crate::format::tree::Xattr> {
        match meta::xattrs(path) {
            Ok(x) => x,
            Err(e) => {
                self.warn(path, &format_args!("cannot read extended attributes: {e}"));
                Vec::new()
            }
        }
    }

    /// The node for one source entry, or `None` if it is skipped (excluded, unreadable).
    fn entry(
        &mut self,
        path: &Path,
        name: &OsStr,
        meta: &fs::Metadata,
        parent: Option<&Node>,
        root_dev: u64,
    ) -> Result<Option<Node>> {
        let bname = ByteString::from(name);
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            if self.repo_ident == Some((meta.dev(), meta.ino())) {
                self.reporter
                    .note(path, "is the repository itself; not backed up");
                return Ok(None);
            }
            let sub = self.parent_subtree(parent);
            let subtree = if self.one_file_system && meta.dev() != root_dev {
                self.store_tree(&Tree::default())? // a mount point: the directory, not its contents
            } else {
                self.dir_tree(path, sub.as_ref(), root_dev)?
            };
            self.summary.dirs += 1;
            NodeKind::Dir { subtree }
        } else if ft.is_file() {
            match self.file_content(path, meta, parent)? {
                Some(content) => NodeKind::File { content },
                None => return Ok(None),
            }
        } else if ft.is_symlink() {
            match fs::read_link(path) {
                Ok(t) => {
                    self.summary.others += 1;
                    NodeKind::Symlink {
                        target: ByteString::from(t),
                    }
                }
                Err(e) => {
                    self.warn(path, &e);
                    return Ok(None);
                }
            }
        } else if let Some(kind) = meta::special_kind(meta) {
            self.summary.others += 1;
            kind
        } else {
            self.warn(path, &"unknown file type, skipped");
            return Ok(None);
        };
        let x = self.read_xattrs(path);
        Ok(Some(meta::node(bname, meta, kind, x, &mut self.owners)))
    }

    /// Backs up a whole directory.
    fn dir_tree(&mut self, dir: &Path, parent: Option<&Tree>, root_dev: u64) -> Result<TreeId> {
        let mut names: Vec<OsString> = match fs::read_dir(dir) {
            Ok(rd) => rd
                .filter_map(|e| match e {
                    Ok(e) => Some(e.file_name()),
                    Err(err) => {
                        self.warn(dir, &err);
                        None
                    }
                })
                .collect(),
            Err(e) => {
                self.warn(dir, &format_args!("cannot list directory: {e}"));
                Vec::new()
            }
        };
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let mut tree = Tree {
            entries: Vec::with_capacity(names.len()),
        };
        for name in names {
            let path = dir.join(&name);
            if self.excludes.is_excluded(&path, &name) {
                continue;
            }
            let meta = match fs::symlink_metadata(&path) {
                Ok(m) => m,
                Err(e) => {
                    self.warn(&path, &e);
                    continue;
                }
            };
            let parent_node = parent.and_then(|t| t.get(name.as_bytes()));
            if let Some(node) = self.entry(&path, &name, &meta, parent_node, root_dev)? {
                tree.entries.push(node);
            }
        }
        self.store_tree(&tree)
    }

    /// The content of a regular file: reused from the parent if unchanged, else read.
    fn file_content(
        &mut self,
        path: &Path,
        meta: &fs::Metadata,
        parent: Option<&Node>,
    ) -> Result<Option<Vec<Piece>>> {
        if let Some(content) = self.unchanged_content(meta, parent) {
            self.summary.files_unchanged += 1;
            self.summary.total_bytes += meta.size();
            return Ok(Some(content));
        }
        let key = (meta.dev(), meta.ino());
        if meta.nlink() > 1
            && let Some(content) = self.hardlinks.get(&key)
        {
            let content = content.clone();
            self.count_file(parent, &content);
            return Ok(Some(content));
        }
        let mut file = match open_source(path) {
            Ok(f) => f,
            Err(e) => {
                self.warn(path, &e);
                return Ok(None);
            }
        };
        let params = self.repo.config().chunker;
        let mut stats = ContentStats::default();
        let result = content::store_file(&mut file, &params, &mut self.writer, &mut stats);
        self.summary.bytes_read += stats.bytes_read;
        self.summary.chunks_new += stats.chunks_new;
        let content = match result {
            Ok(c) => c,
            Err(ContentError::Repo(e)) => return Err(e),
            Err(ContentError::Source(e)) => {
                self.warn(path, &format_args!("read failed: {e}"));
                return Ok(None);
            }
        };
        let read: u64 = content.iter().map(Piece::len).sum();
        if read != meta.size() {
            self.warn(path, &format_args!("changed size while being read ({} bytes before, {read} read); the snapshot holds what was read", meta.size()));
        }
        if meta.nlink() > 1 {
            self.hardlinks.insert(key, content.clone());
        }
        self.count_file(parent, &content);
        Ok(Some(content))
    }

    fn count_file(&mut self, parent: Option<&Node>, content: &[Piece]) {
        if matches!(parent.map(|n| &n.kind), Some(NodeKind::File { .. })) {
            self.summary.files_changed += 1;
        } else {
            self.summary.files_new += 1;
        }
        self.summary.total_bytes += content.iter().map(Piece::len).sum::<u64>();
    }

    /// The parent's chunk list if size, mtime, ctime and inode are unchanged and every chunk is
    /// still indexed.
    fn unchanged_content(&self, meta: &fs::Metadata, parent: Option<&Node>) -> Option<Vec<Piece>> {
        if self.force {
            return None;
        }
        let p = parent?;
        let NodeKind::File { content } = &p.kind else {
            return None;
        };
        let same = p.size == meta.size()
            && p.ino == meta.ino()
            && p.mtime.secs == meta.mtime()
            && i64::from(p.mtime.nanos) == meta.mtime_nsec()
            && p.ctime.secs == meta.ctime()
            && i64::from(p.ctime.nanos) == meta.ctime_nsec();
        let indexed = || {
            content.iter().all(|piece| match piece {
                Piece::Data { id, .. } => self.repo.has_blob(&BlobId::from(*id)),
                Piece::Hole { .. } => true,
            })
        };
        (same && indexed()).then(|| content.clone())
    }

    /// Stores a file read from a stream (stdin) as the single entry of a root tree.
    pub(super) fn stream_tree(
        &mut self,
        name: &str,
        source: &mut dyn io::Read,
    ) -> Result<(TreeId, u64)> {
        let params = self.repo.config().chunker;
        let mut stats = ContentStats::default();
        let mut pieces = Vec::new();
        let r = content::store_stream(source, &params, &mut self.writer, &mut pieces, &mut stats);
        self.summary.bytes_read += stats.bytes_read;
        self.summary.chunks_new += stats.chunks_new;
        match r {
            Ok(()) => {}
            Err(ContentError::Repo(e)) => return Err(e),
            Err(ContentError::Source(e)) => {
                return Err(Error::SourceFailed(format!(
                    "reading standard input failed: {e}"
                )));
            }
        }
        self.summary.files_new += 1;
        let size: u64 = pieces.iter().map(Piece::len).sum();
        self.summary.total_bytes += size;
        let now = crate::repo::now_ns();
        let t = crate::format::tree::Timestamp {
            secs: now.div_euclid(1_000_000_000),
            nanos: u32::try_from(now.rem_euclid(1_000_000_000)).unwrap_or(0),
        };
        let uid = crate::sys::euid();
        let node = Node {
            name: ByteString::from(name),
            kind: NodeKind::File { content: pieces },
            mode: 0o600,
            uid,
            gid: 0,
            user: crate::sys::user_name(uid),
            group: None,
            size,
            mtime: t,
            atime: t,
            ctime: t,
            dev: 0,
            ino: 0,
            nlink: 1,
            xattrs: Vec::new(),
        };
        let tree = Tree {
            entries: vec![node],
        };
        Ok((self.store_tree(&tree)?, size))
    }
}

/// Opens a source file for reading without updating its atime where allowed, and without
/// following a symlink swapped in since it was listed.
fn open_source(path: &Path) -> io::Result<File> {
    let open = |flags| OpenOptions::new().read(true).custom_flags(flags).open(path);
    match open(libc::O_NOATIME | libc::O_NOFOLLOW) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => open(libc::O_NOFOLLOW),
        r => r,
    }
}

/// The absolute form of a source path without resolving its final component (a symlink given
/// as a source is stored as a symlink).
///
/// # Errors
/// [`Error::PathIo`] if the path or its parent does not exist.
pub fn absolute_source(path: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(path).map_err(|e| Error::path_io("resolving", path, e))?;
    let (Some(parent), Some(name)) = (abs.parent(), abs.file_name()) else {
        // "/" itself, or a path ending in "..": resolve it whole.
        return fs::canonicalize(&abs).map_err(|e| Error::path_io("resolving", &abs, e));
    };
    let parent = fs::canonicalize(parent).map_err(|e| Error::path_io("resolving", parent, e))?;
    let full = parent.join(name);
    fs::symlink_metadata(&full).map_err(|e| Error::path_io("reading source", &full, e))?;
    Ok(full)
}
