//! The directory walk: lists the source tree depth-first, reuses the parent snapshot's chunk
//! lists for unchanged files, queues the others for the pipeline's readers, and stores each
//! directory's tree blob as soon as all its entries are known (bottom-up).
//!
//! Errors reading the *source* (permission denied, vanished files) are reported through the
//! [`Reporter`] and counted; the entry is left out and the walk goes on. Errors writing the
//! *repository* stop the walk.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::TrySendError;

use crate::error::{Error, Result};
use crate::format::bytes::ByteString;
use crate::format::id::{BlobId, TreeId};
use crate::format::pack::BlobKind;
use crate::format::snapshot::Summary;
use crate::format::tree::{Node, NodeKind, Piece, Tree};
use crate::repo::Repository;

use super::Reporter;
use super::content::{self, ContentError, ContentStats};
use super::exclude::Excludes;
use super::meta::{self, Owners};
use super::pending::PendingDirs;
use super::pipeline::{FileDone, FileJob, Lanes, Slot};
use super::progress::Progress;

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

/// Content of a hardlinked file, by (dev, ino): read once, shared by every name.
enum Link {
    /// Read (or reused); every further name gets this.
    Known(Vec<Piece>),
    /// Being read; these names wait for it (slot, whether the parent had a file there).
    Reading(Vec<(Slot, bool)>),
}

/// State of one backup walk: runs on the calling thread, feeds the pipeline's readers, and
/// assembles trees as their files come back.
pub struct Walker<'a> {
    pub(super) repo: &'a Repository,
    lanes: Lanes<'a>,
    pub(super) excludes: &'a Excludes,
    pub(super) one_file_system: bool,
    pub(super) force: bool,
    pub(super) reporter: &'a dyn Reporter,
    pub(super) progress: &'a Progress,
    pub(super) summary: Summary,
    /// (dev, ino) of the repository directory, never backed up.
    pub(super) repo_ident: Option<(u64, u64)>,
    owners: Owners,
    hardlinks: HashMap<(u64, u64), Link>,
    pending: PendingDirs,
    in_flight: usize,
    root: Option<TreeId>,
}

/// The tree id a directory entry holds until its subtree is stored.
const PLACEHOLDER: TreeId = TreeId(crate::format::id::Id([0; crate::format::id::ID_LEN]));

impl<'a> Walker<'a> {
    pub(super) fn new(
        repo: &'a Repository,
        lanes: Lanes<'a>,
        excludes: &'a Excludes,
        reporter: &'a dyn Reporter,
        progress: &'a Progress,
    ) -> Self {
        let repo_ident = fs::metadata(repo.location())
            .ok()
            .map(|m| (m.dev(), m.ino()));
        Walker {
            repo,
            lanes,
            excludes,
            one_file_system: false,
            force: false,
            reporter,
            progress,
            summary: Summary::default(),
            repo_ident,
            owners: Owners::default(),
            hardlinks: HashMap::new(),
            pending: PendingDirs::default(),
            in_flight: 0,
            root: None,
        }
    }

    fn warn(&mut self, path: &Path, e: &dyn std::fmt::Display) {
        self.summary.errors += 1;
        self.progress.error();
        self.reporter.warning(path, &e.to_string());
    }

    /// Stores a tree blob and returns its id.
    pub(super) fn store_tree(&mut self, tree: &Tree) -> Result<TreeId> {
        let bytes = tree
            .encode()
            .map_err(|e| Error::corrupt("<new tree>", e.to_string()))?;
        Ok(TreeId(self.lanes.sink.store(BlobKind::Tree, &bytes)?.0))
    }

    fn parent_subtree(&self, parent: Option<&Node>) -> Option<Tree> {
        match parent.map(|n| &n.kind) {
            Some(NodeKind::Dir { subtree }) => self.repo.read_tree(subtree).ok(),
            _ => None,
        }
    }

    /// Backs up the source paths of `spec` below `/` and returns the root tree once every
    /// file has been read and every tree stored.
    pub(super) fn walk_root(&mut self, spec: &SourceSpec, parent: Option<&Tree>) -> Result<TreeId> {
        let root = self.spec_dir(Path::new("/"), spec, parent)?;
        self.pending.close(root);
        self.settle(root)?;
        while self.root.is_none() {
            if self.in_flight == 0 {
                return Err(Error::InvalidInput(format!(
                    "internal error: {} directories left incomplete",
                    self.pending.len()
                )));
            }
            self.wait_one()?;
        }
        self.root.ok_or(Error::PipelineStopped)
    }

    /// Lists directory `dir` restricted to `spec`'s children (or whole); returns its pending
    /// handle, not yet closed.
    fn spec_dir(&mut self, dir: &Path, spec: &SourceSpec, parent: Option<&Tree>) -> Result<usize> {
        let h = self.pending.open();
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
            if child.whole {
                self.entry(h, &path, name, &meta, parent_node, meta.dev())?;
            } else if meta.is_dir() {
                let sub = self.parent_subtree(parent_node);
                let sub_h = self.spec_dir(&path, child, sub.as_ref())?;
                self.summary.dirs += 1;
                self.push_dir(h, sub_h, &path, name, &meta)?;
            } else {
                self.warn(&path, &"is not a directory (a source path lies below it)");
            }
        }
        Ok(h)
    }

    /// Adds a directory entry whose subtree is pending directory `sub_h`, then closes `sub_h`.
    fn push_dir(
        &mut self,
        h: usize,
        sub_h: usize,
        path: &Path,
        name: &OsStr,
        meta: &fs::Metadata,
    ) -> Result<()> {
        let x = self.read_xattrs(path);
        let node = meta::node(
            ByteString::from(name),
            meta,
            NodeKind::Dir {
                subtree: PLACEHOLDER,
            },
            x,
            &mut self.owners,
        );
        let slot = self.pending.push(h, node, true);
        self.pending.set_parent(sub_h, slot);
        self.pending.close(sub_h);
        self.settle(sub_h)
    }

    /// Stores every ready directory from `h` upwards.
    fn settle(&mut self, mut h: usize) -> Result<()> {
        while self.pending.is_ready(h) {
            let (tree, parent) = self.pending.take(h);
            let id = self.store_tree(&tree)?;
            match parent {
                Some(slot) => {
                    self.pending.fill(slot, |n| {
                        n.kind = NodeKind::Dir { subtree: id };
                        true
                    });
                    h = slot.dir;
                }
                None => {
                    self.root = Some(id);
                    return Ok(());
                }
            }
        }
        Ok(())
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

    /// Adds one source entry to pending directory `h` (unless it is skipped: excluded,
    /// unreadable).
    fn entry(
        &mut self,
        h: usize,
        path: &Path,
        name: &OsStr,
        meta: &fs::Metadata,
        parent: Option<&Node>,
        root_dev: u64,
    ) -> Result<()> {
        let ft = meta.file_type();
        if ft.is_dir() {
            if self.repo_ident == Some((meta.dev(), meta.ino())) {
                self.reporter
                    .note(path, "is the repository itself; not backed up");
                return Ok(());
            }
            let sub = self.parent_subtree(parent);
            let sub_h = if self.one_file_system && meta.dev() != root_dev {
                self.pending.open() // a mount point: the directory, not its contents
            } else {
                self.list_dir(path, sub.as_ref(), root_dev)?
            };
            self.summary.dirs += 1;
            return self.push_dir(h, sub_h, path, name, meta);
        }
        let kind = if ft.is_file() {
            return self.file(h, path, name, meta, parent);
        } else if ft.is_symlink() {
            match fs::read_link(path) {
                Ok(t) => NodeKind::Symlink {
                    target: ByteString::from(t),
                },
                Err(e) => {
                    self.warn(path, &e);
                    return Ok(());
                }
            }
        } else if let Some(kind) = meta::special_kind(meta) {
            kind
        } else {
            self.warn(path, &"unknown file type, skipped");
            return Ok(());
        };
        self.summary.others += 1;
        let x = self.read_xattrs(path);
        let node = meta::node(ByteString::from(name), meta, kind, x, &mut self.owners);
        self.pending.push(h, node, false);
        Ok(())
    }

    /// Lists a whole directory into a new pending directory; returns its handle, not closed.
    fn list_dir(&mut self, dir: &Path, parent: Option<&Tree>, root_dev: u64) -> Result<usize> {
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
        let h = self.pending.open();
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
            self.entry(h, &path, &name, &meta, parent_node, root_dev)?;
        }
        Ok(h)
    }

    /// A regular file: reused from the parent if unchanged, shared with a hardlink already
    /// seen, or queued for a reader.
    fn file(
        &mut self,
        h: usize,
        path: &Path,
        name: &OsStr,
        meta: &fs::Metadata,
        parent: Option<&Node>,
    ) -> Result<()> {
        let x = self.read_xattrs(path);
        let mut node = meta::node(
            ByteString::from(name),
            meta,
            NodeKind::File { content: vec![] },
            x,
            &mut self.owners,
        );
        let was_file = matches!(parent.map(|n| &n.kind), Some(NodeKind::File { .. }));
        let key = (meta.dev(), meta.ino());
        if let Some(content) = self.unchanged_content(meta, parent) {
            self.summary.files_unchanged += 1;
            self.summary.total_bytes += meta.size();
            self.progress.file_done(meta.size());
            if meta.nlink() > 1 {
                self.hardlinks
                    .entry(key)
                    .or_insert_with(|| Link::Known(content.clone()));
            }
            set_content(&mut node, content);
            self.pending.push(h, node, false);
            return Ok(());
        }
        if meta.nlink() > 1 {
            match self.hardlinks.get_mut(&key) {
                Some(Link::Known(content)) => {
                    let content = content.clone();
                    self.count_file(was_file, &content);
                    set_content(&mut node, content);
                    self.pending.push(h, node, false);
                    return Ok(());
                }
                Some(Link::Reading(waiters)) => {
                    let slot = self.pending.push(h, node, true);
                    waiters.push((slot, was_file));
                    return Ok(());
                }
                None => {
                    self.hardlinks.insert(key, Link::Reading(Vec::new()));
                }
            }
        }
        let slot = self.pending.push(h, node, true);
        self.submit(FileJob {
            path: path.to_path_buf(),
            slot,
            size: meta.size(),
            was_file,
            hardlink: (meta.nlink() > 1).then_some(key),
        })
    }

    /// Queues a file for the readers, taking in finished files while the queue is full.
    fn submit(&mut self, mut job: FileJob) -> Result<()> {
        loop {
            match self.lanes.jobs.try_send(job) {
                Ok(()) => {
                    self.in_flight += 1;
                    break;
                }
                Err(TrySendError::Full(j)) => {
                    job = j;
                    self.wait_one()?;
                }
                Err(TrySendError::Disconnected(_)) => return Err(Error::PipelineStopped),
            }
        }
        while let Ok(done) = self.lanes.done.try_recv() {
            self.finished(done)?;
        }
        Ok(())
    }

    /// Waits for one file to be read and files it.
    fn wait_one(&mut self) -> Result<()> {
        let done = self.lanes.done.recv().map_err(|_| Error::PipelineStopped)?;
        self.finished(done)
    }

    /// Puts a file a reader finished into its directory (and every hardlink waiting for it).
    fn finished(&mut self, done: FileDone) -> Result<()> {
        self.in_flight -= 1;
        let FileDone { job, outcome } = done;
        let content = match outcome {
            Ok((pieces, stats)) => {
                self.summary.bytes_read += stats.bytes_read;
                self.summary.chunks_new += stats.chunks_new;
                let read: u64 = pieces.iter().map(Piece::len).sum();
                if read != job.size {
                    self.warn(&job.path, &format_args!("changed size while being read ({} bytes before, {read} read); the snapshot holds what was read", job.size));
                }
                Some(pieces)
            }
            Err(ContentError::Repo(e)) => return Err(e),
            Err(ContentError::Source(e)) => {
                self.warn(&job.path, &format_args!("read failed: {e}"));
                None
            }
        };
        let mut slots = vec![(job.slot, job.was_file)];
        if let Some(key) = job.hardlink {
            if let Some(Link::Reading(waiters)) = self.hardlinks.remove(&key) {
                slots.extend(waiters);
            }
            if let Some(c) = &content {
                self.hardlinks.insert(key, Link::Known(c.clone()));
            }
        }
        for (slot, was_file) in slots {
            match &content {
                Some(c) => {
                    self.count_file(was_file, c);
                    self.pending.fill(slot, |n| {
                        set_content(n, c.clone());
                        true
                    });
                }
                None => self.pending.fill(slot, |_| false),
            }
            self.settle(slot.dir)?;
        }
        Ok(())
    }

    fn count_file(&mut self, was_file: bool, content: &[Piece]) {
        if was_file {
            self.summary.files_changed += 1;
        } else {
            self.summary.files_new += 1;
        }
        let size = content.iter().map(Piece::len).sum::<u64>();
        self.summary.total_bytes += size;
        self.progress.file_done(size);
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
        let mut stats = ContentStats::default();
        let mut pieces = Vec::new();
        let r = content::store_stream(
            source,
            &mut self.lanes.chunker,
            &self.lanes.sink,
            &mut pieces,
            &mut stats,
            self.progress,
        );
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
        self.progress.file_done(size);
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

/// Sets a file node's content and the size that follows from it.
fn set_content(node: &mut Node, content: Vec<Piece>) {
    node.size = content.iter().map(Piece::len).sum();
    node.kind = NodeKind::File { content };
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
