//! The directory walk: lists the source tree depth-first, hands regular files to
//! `files.rs` (parent reuse, hardlinks, the pipeline's readers), and stores each
//! directory's tree blob as soon as all its entries are known (bottom-up).
//!
//! The walk keeps its own stack of open directories ([`DirFd`]) instead of recursing: every
//! entry is reached relative to its directory's descriptor, so trees deeper than `PATH_MAX`
//! back up like any other, and the stack never grows with depth. Nesting deeper than
//! [`MAX_DEPTH`] is left out with a warning. Directories are opened with `O_NOATIME`, and a
//! symlink's access time, which `readlink` cannot avoid changing, is put back: a backup leaves
//! no trace on the source's access times (an unchanged symlink is not even read again).
//!
//! Errors reading the *source* (permission denied, vanished files) are reported through the
//! [`Reporter`] and counted; the entry is left out and the walk goes on. Errors writing the
//! *repository* stop the walk.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::FileType;

use crate::dirfd::{DirFd, Stat};
use crate::error::{Error, Result};
use crate::format::bytes::ByteString;
use crate::format::id::TreeId;
use crate::format::pack::BlobKind;
use crate::format::snapshot::{Contents, Summary};
use crate::format::tree::{MAX_DEPTH, Node, NodeKind, Tree, Xattr};
use crate::repo::Repository;

use super::Reporter;
use super::exclude::Excludes;
use super::links::Link;
use super::meta::{self, Owners};
use super::pending::PendingDirs;
use super::pipeline::Lanes;
use crate::progress::Progress;

/// What to back up below the root: a whole path, or a directory of which only some entries
/// are sources (the intermediate directories of `/home/alice`).
#[derive(Debug, Default)]
pub struct SourceSpec {
    /// Entries of this directory to include, by name.
    pub children: BTreeMap<OsString, SourceSpec>,
    /// True if this path itself is a source, taken whole.
    pub whole: bool,
    /// Where to read this source instead of its own path (a snapshot of it, with the same
    /// final name), when it is taken whole.
    pub read_from: Option<PathBuf>,
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

/// State of one backup walk: runs on the calling thread, feeds the pipeline's readers, and
/// assembles trees as their files come back.
pub struct Walker<'a> {
    pub(super) repo: &'a Repository,
    pub(super) lanes: Lanes<'a>,
    pub(super) excludes: &'a Excludes,
    pub(super) one_file_system: bool,
    pub(super) force: bool,
    /// Back up block devices met in the walk as their content (named sources always are).
    pub(super) read_devices: bool,
    /// Paths (as recorded) left out of the backup: `--consistent`'s holding directories.
    pub(super) skip: Vec<PathBuf>,
    pub(super) reporter: &'a dyn Reporter,
    pub(super) progress: &'a Progress,
    pub(super) summary: Summary,
    /// What the stored trees hold (counted as each tree is stored).
    pub(super) contents: Contents,
    /// (dev, ino) of the repository directory, never backed up.
    pub(super) repo_ident: Option<(u64, u64)>,
    pub(super) owners: Owners,
    pub(super) hardlinks: HashMap<(u64, u64), Link>,
    /// Symlinks with several names, as first read: later names are not read again (which
    /// would change the inode's times between its names).
    symlinks: HashMap<(u64, u64), (NodeKind, Stat)>,
    pub(super) pending: PendingDirs,
    pub(super) in_flight: usize,
    root: Option<TreeId>,
    /// When the sources are read from btrfs snapshots: snapshots the subvolume nested at a
    /// source path (which the snapshot around it holds as an empty directory), returning the
    /// snapshot to read instead and its holding directory to leave out.
    pub(super) snapshot_nested: Option<NestedSnapshots<'a>>,
    /// Mount points below sources read from btrfs snapshots (which hold only the directories
    /// they are mounted on): read live.
    pub(super) live_mounts: Vec<PathBuf>,
}

/// See [`Walker::snapshot_nested`].
pub(super) type NestedSnapshots<'a> = Box<dyn FnMut(&Path) -> Result<(PathBuf, PathBuf)> + 'a>;

/// The tree id a directory entry holds until its subtree is stored.
const PLACEHOLDER: TreeId = TreeId(crate::format::id::Id([0; crate::format::id::ID_LEN]));

/// What is left to visit in a directory.
enum Todo<'s> {
    /// Every entry, by name (sorted).
    Names(std::vec::IntoIter<OsString>),
    /// Only the source paths below an intermediate directory.
    Spec(std::collections::btree_map::Iter<'s, OsString, SourceSpec>),
}

/// A directory being listed.
pub(super) struct Frame<'s> {
    /// The open directory; regular files queued for the readers share it.
    pub(super) dir: Arc<DirFd>,
    /// Its path, for messages and excludes (never handed to the kernel).
    pub(super) path: PathBuf,
    /// Its pending tree.
    pub(super) h: usize,
    /// The same directory in the parent snapshot, for change detection.
    pub(super) parent: Option<Tree>,
    /// The device of the source path it belongs to (`--one-file-system`).
    root_dev: u64,
    depth: usize,
    todo: Todo<'s>,
    /// Its own entry in its parent, added once it is listed (`None` for `/`).
    entry: Option<(OsString, Stat, Vec<Xattr>)>,
}

impl Frame<'_> {
    /// Entry `name` of this directory in the parent snapshot.
    fn parent_node(&self, name: &OsStr) -> Option<&Node> {
        self.parent.as_ref().and_then(|t| t.get(name.as_bytes()))
    }
}

impl<'a> Walker<'a> {
    pub(super) fn new(
        repo: &'a Repository,
        lanes: Lanes<'a>,
        excludes: &'a Excludes,
        reporter: &'a dyn Reporter,
        progress: &'a Progress,
    ) -> Self {
        let repo_ident = repo
            .location()
            .local()
            .and_then(|dir| DirFd::open(dir).and_then(|d| d.stat_self()).ok())
            .map(|st| (st.dev, st.ino));
        Walker {
            repo,
            lanes,
            excludes,
            one_file_system: false,
            force: false,
            read_devices: false,
            skip: Vec::new(),
            reporter,
            progress,
            summary: Summary::default(),
            contents: Contents::default(),
            repo_ident,
            owners: Owners::default(),
            hardlinks: HashMap::new(),
            symlinks: HashMap::new(),
            pending: PendingDirs::default(),
            in_flight: 0,
            root: None,
            snapshot_nested: None,
            live_mounts: Vec::new(),
        }
    }

    pub(super) fn warn(&mut self, path: &Path, e: &dyn std::fmt::Display) {
        self.summary.errors += 1;
        self.progress.error();
        self.reporter.warning(path, &e.to_string());
    }

    /// Stores a tree blob and returns its id.
    pub(super) fn store_tree(&mut self, tree: &Tree) -> Result<TreeId> {
        self.contents.add(&tree.entries);
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
        let slash = DirFd::open(Path::new("/")).map_err(|e| Error::path_io("opening", "/", e))?;
        let root = self.pending.open();
        let mut stack = vec![Frame {
            dir: Arc::new(slash),
            path: PathBuf::from("/"),
            h: root,
            parent: parent.cloned(),
            root_dev: 0,
            depth: 0,
            todo: Todo::Spec(spec.children.iter()),
            entry: None,
        }];
        while let Some(frame) = stack.last_mut() {
            let child = match &mut frame.todo {
                Todo::Spec(it) => match it.next() {
                    Some((name, child)) => self.spec_entry(frame, name, child)?,
                    None => {
                        self.finish(&mut stack)?;
                        continue;
                    }
                },
                Todo::Names(it) => match it.next() {
                    Some(name) => self.listed_entry(frame, &name)?,
                    None => {
                        self.finish(&mut stack)?;
                        continue;
                    }
                },
            };
            stack.extend(child);
        }
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

    /// A directory is listed: its entry joins its parent's.
    fn finish(&mut self, stack: &mut Vec<Frame<'_>>) -> Result<()> {
        let Some(done) = stack.pop() else {
            return Ok(());
        };
        match (done.entry, stack.last()) {
            (Some((name, st, xattrs)), Some(parent)) => {
                self.push_dir(parent.h, done.h, &name, &st, xattrs)
            }
            _ => Ok(()),
        }
    }

    /// An entry of an intermediate directory: a source path, or a directory on the way to one.
    fn spec_entry<'s>(
        &mut self,
        frame: &Frame<'s>,
        name: &OsStr,
        spec: &'s SourceSpec,
    ) -> Result<Option<Frame<'s>>> {
        let path = frame.path.join(name);
        let Some(st) = self.stat_or_warn(&frame.dir, name, &path) else {
            return Ok(None);
        };
        let parent_node = frame.parent_node(name);
        if spec.whole
            && let Some(src) = &spec.read_from
        {
            return self.read_elsewhere(frame, name, src, parent_node);
        }
        if spec.whole {
            // A block device named as a source is backed up as its content, also through a
            // symlink (`/dev/vg/root`, `/dev/disk/by-id/...`).
            if st.file_type() == FileType::BlockDevice {
                self.device(frame, name, &st, parent_node, false)?;
                return Ok(None);
            }
            if st.is_symlink()
                && let Ok(target) = frame.dir.stat_following(name)
                && target.file_type() == FileType::BlockDevice
            {
                self.device(frame, name, &target, parent_node, true)?;
                return Ok(None);
            }
            return self.entry(frame, name, &st, parent_node, st.dev);
        }
        if !st.is_dir() {
            self.warn(&path, &"is not a directory (a source path lies below it)");
            return Ok(None);
        }
        let dir = match frame.dir.open_dir(name) {
            Ok(d) => d,
            Err(e) => {
                self.warn(&path, &format_args!("cannot open directory: {e}"));
                return Ok(None);
            }
        };
        self.summary.dirs += 1;
        let xattrs = self.read_xattrs(&frame.dir, name, &path);
        Ok(Some(Frame {
            dir: Arc::new(dir),
            path,
            h: self.pending.open(),
            parent: self.parent_subtree(parent_node),
            root_dev: st.dev,
            depth: frame.depth + 1,
            todo: Todo::Spec(spec.children.iter()),
            entry: Some((name.to_os_string(), st, xattrs)),
        }))
    }

    /// A source read from another place with the same final name (`src`: its snapshot):
    /// stated and opened there, recorded here.
    fn read_elsewhere<'s>(
        &mut self,
        frame: &Frame<'s>,
        name: &OsStr,
        src: &Path,
        parent: Option<&Node>,
    ) -> Result<Option<Frame<'s>>> {
        let path = frame.path.join(name);
        let dir_path = src.parent().unwrap_or(Path::new("/"));
        let dir = match DirFd::open(dir_path) {
            Ok(d) => d,
            Err(e) => {
                self.warn(
                    &path,
                    &format_args!("cannot open {}: {e}", dir_path.display()),
                );
                return Ok(None);
            }
        };
        let shadow = Frame {
            dir: Arc::new(dir),
            path: frame.path.clone(),
            h: frame.h,
            parent: None,
            root_dev: 0,
            depth: frame.depth,
            todo: Todo::Names(Vec::new().into_iter()),
            entry: None,
        };
        let Some(st) = self.stat_or_warn(&shadow.dir, name, &path) else {
            return Ok(None);
        };
        self.entry(&shadow, name, &st, parent, st.dev)
    }

    /// An entry of a directory listed whole.
    fn listed_entry<'s>(&mut self, frame: &Frame<'s>, name: &OsStr) -> Result<Option<Frame<'s>>> {
        let path = frame.path.join(name);
        if self.excludes.is_excluded(&path, name) || self.skip.contains(&path) {
            return Ok(None);
        }
        let Some(st) = self.stat_or_warn(&frame.dir, name, &path) else {
            return Ok(None);
        };
        self.entry(frame, name, &st, frame.parent_node(name), frame.root_dev)
    }

    /// The status of entry `name` of `dir`; a failure is a warning.
    fn stat_or_warn(&mut self, dir: &DirFd, name: &OsStr, path: &Path) -> Option<Stat> {
        dir.stat(name).map_err(|e| self.warn(path, &e)).ok()
    }

    /// Adds one source entry to `frame`'s directory (unless it is skipped: excluded,
    /// unreadable, too deep); a directory comes back as a frame to list.
    fn entry<'s>(
        &mut self,
        frame: &Frame<'s>,
        name: &OsStr,
        st: &Stat,
        parent: Option<&Node>,
        root_dev: u64,
    ) -> Result<Option<Frame<'s>>> {
        let path = frame.path.join(name);
        if st.is_dir()
            && !self.one_file_system
            && self.live_mounts.contains(&path)
            // Not yet the live one (read_elsewhere comes back here with it).
            && std::fs::symlink_metadata(&path)
                .is_ok_and(|live| (live.dev(), live.ino()) != (st.dev, st.ino))
        {
            self.reporter.note(
                &path,
                "is a mount point below a snapshotted subvolume: read live (a btrfs snapshot \
                 does not reach into the file systems mounted in it)",
            );
            return self.read_elsewhere(frame, name, &path, parent);
        }
        if st.is_dir()
            && st.ino == super::consistent::EMPTY_SUBVOLUME_INO
            && !self.one_file_system
            && let Some(snapshot) = self.snapshot_nested.as_mut()
        {
            // A subvolume nested in the one whose snapshot is read: read its own snapshot.
            match snapshot(&path) {
                Ok((snap, holder)) => {
                    self.skip.push(holder);
                    return self.read_elsewhere(frame, name, &snap, parent);
                }
                Err(e) => self.warn(&path, &e),
            }
        }
        if st.is_dir() {
            return Ok(self.directory(frame, name, st, parent, root_dev));
        }
        if st.is_file() {
            self.file(frame, name, st, parent)?;
            return Ok(None);
        }
        if self.read_devices && st.file_type() == FileType::BlockDevice {
            self.device(frame, name, st, parent, false)?;
            return Ok(None);
        }
        let kind = if st.is_symlink() {
            match self.symlink(&frame.dir, name, st, parent) {
                Ok((target, st)) => {
                    let x = self.read_xattrs(&frame.dir, name, &path);
                    let node = meta::node(ByteString::from(name), &st, target, x, &mut self.owners);
                    self.summary.others += 1;
                    self.pending.push(frame.h, node, false);
                    return Ok(None);
                }
                Err(e) => {
                    self.warn(&path, &e);
                    return Ok(None);
                }
            }
        } else if let Some(kind) = meta::special_kind(st) {
            kind
        } else {
            self.warn(&path, &"unknown file type, skipped");
            return Ok(None);
        };
        self.summary.others += 1;
        let x = self.read_xattrs(&frame.dir, name, &path);
        let node = meta::node(ByteString::from(name), st, kind, x, &mut self.owners);
        self.pending.push(frame.h, node, false);
        Ok(None)
    }

    /// A directory: opened and listed as a new frame (or, for a mount point under
    /// `--one-file-system`, an unreadable or too deep directory, added empty at once).
    fn directory<'s>(
        &mut self,
        frame: &Frame<'s>,
        name: &OsStr,
        st: &Stat,
        parent: Option<&Node>,
        root_dev: u64,
    ) -> Option<Frame<'s>> {
        let path = frame.path.join(name);
        if self.repo_ident == Some((st.dev, st.ino)) {
            self.reporter
                .note(&path, "is the repository itself; not backed up");
            return None;
        }
        if frame.depth + 1 > MAX_DEPTH {
            self.warn(
                &path,
                &format_args!("lies more than {MAX_DEPTH} directories deep; not backed up"),
            );
            return None;
        }
        self.summary.dirs += 1;
        let xattrs = self.read_xattrs(&frame.dir, name, &path);
        let listing = if self.one_file_system && st.dev != root_dev {
            Ok(None) // a mount point: the directory, not its contents
        } else {
            frame.dir.open_dir(name).and_then(|d| {
                let mut names = d.names()?;
                names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
                Ok(Some((d, names)))
            })
        };
        let (dir, names) = match listing {
            Ok(Some(listed)) => listed,
            Ok(None) | Err(_) => {
                if let Err(e) = listing {
                    self.warn(&path, &format_args!("cannot list directory: {e}"));
                }
                let empty = self.pending.open();
                if let Err(e) = self.push_dir(frame.h, empty, name, st, xattrs) {
                    self.warn(&path, &e);
                }
                return None;
            }
        };
        Some(Frame {
            dir: Arc::new(dir),
            path,
            h: self.pending.open(),
            parent: self.parent_subtree(parent),
            root_dev,
            depth: frame.depth + 1,
            todo: Todo::Names(names.into_iter()),
            entry: Some((name.to_os_string(), *st, xattrs)),
        })
    }

    /// A symlink's target and its status after reading it. An unchanged symlink (same inode,
    /// size, times as in the parent snapshot) is taken from the parent without reading it;
    /// otherwise the access time `readlink` changed is put back where allowed, and the status
    /// is taken again so the change time that this sets is the one recorded (the next backup
    /// then finds it unchanged).
    fn symlink(
        &mut self,
        dir: &DirFd,
        name: &OsStr,
        st: &Stat,
        parent: Option<&Node>,
    ) -> io::Result<(NodeKind, Stat)> {
        if let Some(p) = parent
            && let NodeKind::Symlink { target } = &p.kind
            && (p.ino, p.size, p.mtime, p.ctime) == (st.ino, st.size, st.mtime, st.ctime)
            && !self.force
        {
            let kind = NodeKind::Symlink {
                target: target.clone(),
            };
            return Ok((kind, *st));
        }
        let key = (st.dev, st.ino);
        if let Some((kind, seen)) = self.symlinks.get(&key)
            && (seen.size, seen.mtime, seen.ctime) == (st.size, st.mtime, st.ctime)
        {
            return Ok((kind.clone(), *seen));
        }
        let target = ByteString::from(dir.read_link(name)?);
        let mut now = dir.stat(name)?;
        if now.atime != st.atime && dir.set_atime(name, st.atime).is_ok() {
            now = dir.stat(name)?;
        }
        now.atime = st.atime;
        let kind = NodeKind::Symlink { target };
        if st.nlink > 1 {
            self.symlinks.insert(key, (kind.clone(), now));
        }
        Ok((kind, now))
    }

    /// Adds a directory entry whose subtree is pending directory `sub_h`, then closes `sub_h`.
    fn push_dir(
        &mut self,
        h: usize,
        sub_h: usize,
        name: &OsStr,
        st: &Stat,
        xattrs: Vec<Xattr>,
    ) -> Result<()> {
        let node = meta::node(
            ByteString::from(name),
            st,
            NodeKind::Dir {
                subtree: PLACEHOLDER,
            },
            xattrs,
            &mut self.owners,
        );
        let slot = self.pending.push(h, node, true);
        self.pending.set_parent(sub_h, slot);
        self.pending.close(sub_h);
        self.settle(sub_h)
    }

    /// Stores every ready directory from `h` upwards.
    pub(super) fn settle(&mut self, mut h: usize) -> Result<()> {
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

    /// Extended attributes of entry `name` of `dir`; a failure is a warning.
    pub(super) fn read_xattrs(&mut self, dir: &DirFd, name: &OsStr, path: &Path) -> Vec<Xattr> {
        match meta::xattrs(&dir.entry_path(name)) {
            Ok(x) => x,
            Err(e) => {
                self.warn(path, &format_args!("cannot read extended attributes: {e}"));
                Vec::new()
            }
        }
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
        return std::fs::canonicalize(&abs).map_err(|e| Error::path_io("resolving", &abs, e));
    };
    let parent =
        std::fs::canonicalize(parent).map_err(|e| Error::path_io("resolving", parent, e))?;
    let full = parent.join(name);
    std::fs::symlink_metadata(&full).map_err(|e| Error::path_io("reading source", &full, e))?;
    Ok(full)
}
