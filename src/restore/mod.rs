//! The restore path: writes a snapshot (or a subtree) back to a directory, with every kind of
//! file and all metadata, and never outside the target.
//!
//! Safety: names come from validated trees (no `/`, NUL, `.`, `..`) and are checked again here.
//! Every entry is created relative to its open parent directory ([`DirFd`]): files with
//! `O_EXCL | O_NOFOLLOW`, directories entered with `O_NOFOLLOW`, so a symlink in the target is
//! never followed, and trees deeper than `PATH_MAX` restore like any other. Existing entries
//! are kept unless `overwrite` is set (refusals are counted apart). A file whose data is
//! damaged is removed and reported: restore never leaves wrong bytes looking like a restored
//! file, and every chunk is checked against the length the file gives it.
//!
//! Bounds: the walk uses an explicit stack, never recursion; nesting deeper than
//! [`MAX_DEPTH`] is refused; and before writing anything the expansion of the tree is measured
//! ([`expand`]): more entries than [`expand::MAX_ENTRIES`] is a crafted tree, and more data or
//! entries than the target has room for is refused, instead of filling the disk.
//!
//! Flow: the walk creates directories, links and special files as it meets them and queues
//! regular files in a batch (`data.rs`); a full batch goes to the writer thread (`lane.rs`)
//! while the walk fills the next; once written, its files get their metadata (`metadata.rs`,
//! on a thread per core).

mod data;
pub mod image;
mod lane;
mod metadata;
pub mod verify;

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::FileType;

use crate::dirfd::DirFd;
use crate::error::{Error, Result};
use crate::format::snapshot::Snapshot;
use crate::format::tree::{self, MAX_DEPTH, Node, NodeKind, Piece, Tree};
use crate::ingest::Reporter;
use crate::progress::Progress;
use crate::repo::Repository;
use crate::sys;

use crate::snapshot::expand::{self, Expansion};
use crate::storage::location::Location;

use self::data::{Batch, Queued, Reads, Written};
use self::lane::{Lane, Waiting};
use self::metadata::Problem;

/// Restore settings.
#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// Replace existing entries in the target.
    pub overwrite: bool,
    /// Do not compare the data to restore with the target's free space (for file systems
    /// that compress or deduplicate).
    pub skip_space_check: bool,
    /// Live counters for a display: the bytes expected (known before anything is written),
    /// the bytes and files written.
    pub progress: Arc<Progress>,
}

/// What a restore did.
#[derive(Clone, Debug, Default, serde::Serialize)]
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
    /// Entries not restored because something exists under their name (no `--overwrite`).
    pub refused: u64,
    /// Entries that could not be restored for other reasons (permissions, a full disk...).
    pub failed: u64,
}

/// The first name of a hardlinked file: where it is, relative to the target, and what it is.
struct FirstLink {
    dir: Vec<OsString>,
    name: OsString,
    node: Node,
}

/// A directory being filled: its entries are written one by one, then its own metadata.
struct Frame {
    dir: Arc<DirFd>,
    tree: Tree,
    next: usize,
    /// Where it is, relative to the target (empty for the target itself).
    rel: Vec<OsString>,
    /// Its own entry, applied to it in its parent once its contents are written.
    node: Option<Node>,
}

struct Restorer<'a> {
    repo: &'a Repository,
    options: &'a RestoreOptions,
    reporter: &'a dyn Reporter,
    target: &'a Path,
    top: DirFd,
    as_root: bool,
    hardlinks: HashMap<(u64, u64), FirstLink>,
    /// Files created and waiting for their data.
    batch: Batch,
    /// What waits for the batch being filled: directories whose metadata waits for their
    /// files' data (their chmod could bar the writes, and removing a damaged file would
    /// change their times), and further names of its files.
    pending: Waiting,
    /// The writer thread (none: batches are written by the walk's thread).
    lane: Option<Lane>,
    /// What waits for the batch the writer thread holds, if it holds one.
    in_flight: Option<Waiting>,
    /// Threads that set the metadata of a written batch.
    metadata_threads: usize,
    stats: RestoreStats,
}

/// Restores `snapshot` (or its `subpath`) into `target`.
///
/// Whole snapshot: each source path appears under `target` by its absolute path. Subpath: a
/// directory's contents go directly into `target`, a single entry goes to `target/<name>`.
///
/// # Errors
/// Fatal errors only (target not creatable, root tree unreadable, subpath missing, a tree that
/// expands beyond [`expand::MAX_ENTRIES`] or the target's free space); per-entry problems are
/// reported and counted in the returned stats.
pub fn restore(
    repo: &Repository,
    snapshot: &Snapshot,
    subpath: Option<&Path>,
    target: &Path,
    options: &RestoreOptions,
    reporter: &dyn Reporter,
) -> Result<RestoreStats> {
    let root = repo.read_tree(&snapshot.root)?;
    let node = match subpath {
        Some(p) => crate::snapshot::find_node(repo, &root, p)?,
        None => None,
    };
    let need = match &node {
        None => expand::bounded(repo, snapshot.root)?,
        Some(n) => match &n.kind {
            NodeKind::Dir { subtree } => expand::bounded(repo, *subtree)?,
            _ => Expansion::of_node(n),
        },
    };
    options.progress.expect(need.files, need.bytes);
    fs::create_dir_all(target).map_err(|e| Error::path_io("creating restore target", target, e))?;
    let top = DirFd::open(target).map_err(|e| Error::path_io("opening", target, e))?;
    if !options.skip_space_check {
        check_room(&top, need, target)?;
    }
    let mut r = Restorer {
        repo,
        options,
        reporter,
        target,
        top,
        as_root: sys::euid() == 0,
        hardlinks: HashMap::new(),
        batch: Batch::new(reads_for(repo)),
        pending: Waiting::default(),
        lane: None,
        in_flight: None,
        metadata_threads: std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
        stats: RestoreStats::default(),
    };
    let (tree, single) = match node {
        None => (root, None),
        Some(n) => match &n.kind {
            NodeKind::Dir { subtree } => (repo.read_tree(subtree)?, None),
            _ => (Tree::default(), Some(n)),
        },
    };
    let top = Frame {
        dir: Arc::new(
            r.top
                .try_clone()
                .map_err(|e| Error::path_io("opening", target, e))?,
        ),
        tree,
        next: 0,
        rel: Vec::new(),
        node: None,
    };
    let mut stack = Vec::new();
    if let Some(n) = single {
        let path = target.join(n.name.as_path());
        stack.extend(r.entry(&top, &n, &path));
    }
    stack.insert(0, top);
    std::thread::scope(|s| {
        r.lane = Lane::start(s, repo, &options.progress);
        r.walk(stack);
        // Names restored on their own after their group's first name failed may queue more.
        loop {
            r.dispatch();
            r.finish_in_flight();
            if r.batch.is_empty() {
                break;
            }
        }
        r.lane = None;
    });
    Ok(r.stats)
}

/// How a restore from `repo` reads its data: a remote repository a whole pack per request
/// (four in flight: at most 144 MiB of spans) with gaps read through (a request costs more
/// than a few hundred KiB), a local one with a worker per core (decompressing and verifying)
/// and only adjacent chunks merged.
/// Queued files hold their directories open: at most half the descriptors left.
fn reads_for(repo: &Repository) -> Reads {
    let max_dirs = usize::try_from(sys::open_file_limit().saturating_sub(256) / 2)
        .unwrap_or(usize::MAX)
        .clamp(16, 65_536);
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    match repo.location() {
        Location::Local(_) => Reads {
            workers: cores.min(4),
            max_gap: 0,
            max_span: data::MAX_SPAN,
            max_dirs,
            max_files: data::MAX_FILES,
            max_bytes: data::MAX_BYTES,
        },
        Location::S3(_) => Reads {
            workers: 4,
            max_gap: 1 << 20,
            max_span: data::REMOTE_SPAN,
            max_dirs,
            max_files: data::REMOTE_MAX_FILES,
            max_bytes: data::REMOTE_MAX_BYTES,
        },
    }
}

/// Refuses a restore that cannot fit: its data or its entries exceed what the target's file
/// system has free.
fn check_room(top: &DirFd, need: Expansion, target: &Path) -> Result<()> {
    let Ok((bytes, inodes)) = top.free_space() else {
        return Ok(());
    };
    let short = if need.bytes > bytes {
        Some(format!(
            "it needs {} bytes of data and the file system has {bytes} free",
            need.bytes
        ))
    } else {
        inodes.filter(|&i| need.entries > i).map(|i| {
            format!(
                "it creates {} entries and the file system has {i} inodes free",
                need.entries
            )
        })
    };
    match short {
        Some(why) => Err(Error::path_io(
            "restoring into",
            target,
            io::Error::new(
                io::ErrorKind::StorageFull,
                format!(
                    "not enough room: {why} (give --no-space-check if the file system \
                     compresses or deduplicates)"
                ),
            ),
        )),
        None => Ok(()),
    }
}

impl Restorer<'_> {
    fn fail(&mut self, path: &Path, e: &Error) {
        if e.is_damage() {
            self.stats.damaged += 1;
        } else if matches!(e, Error::Refused(_)) {
            self.stats.refused += 1;
        } else {
            self.stats.failed += 1;
        }
        self.reporter.warning(path, &e.to_string());
    }

    fn path_of(&self, rel: &[OsString], name: &OsStr) -> PathBuf {
        let mut p = self.target.to_path_buf();
        p.extend(rel);
        p.push(name);
        p
    }

    /// Works through the stack of open directories until it is empty.
    fn walk(&mut self, mut stack: Vec<Frame>) {
        while let Some(top) = stack.last_mut() {
            if top.next < top.tree.entries.len() {
                let node = top.tree.entries[top.next].clone();
                top.next += 1;
                let path = self.path_of(&top.rel, node.name.as_os_str());
                let frame = match stack.last() {
                    Some(top) => self.entry(top, &node, &path),
                    None => None,
                };
                stack.extend(frame);
                if self.batch.is_full() {
                    self.dispatch();
                }
                continue;
            }
            let Some(done) = stack.pop() else { break };
            if let (Some(node), Some(parent)) = (done.node, stack.last()) {
                let path = self.path_of(&parent.rel, node.name.as_os_str());
                drop(done.dir);
                let later = (Arc::clone(&parent.dir), node, path);
                match self.waiting() {
                    Some(w) => w.dirs.push(later),
                    None => self.metadata(&parent.dir, &later.1, &later.2),
                }
            }
        }
    }

    /// Restores one entry into `parent`; a directory comes back as a frame to fill.
    fn entry(&mut self, parent: &Frame, node: &Node, path: &Path) -> Option<Frame> {
        if let Err(e) = tree::check_name(node.name.as_bytes()) {
            self.fail(path, &Error::Refused(format!("refusing entry: {e}")));
            return None;
        }
        if parent.rel.len() >= MAX_DEPTH {
            let e = Error::corrupt(
                path.display().to_string(),
                format!("lies more than {MAX_DEPTH} directories deep; not restored"),
            );
            self.fail(path, &e);
            return None;
        }
        match self.try_entry(parent, node, path) {
            Ok(frame) => frame,
            Err(e) => {
                self.fail(path, &e);
                None
            }
        }
    }

    fn try_entry(&mut self, parent: &Frame, node: &Node, path: &Path) -> Result<Option<Frame>> {
        let dir = &parent.dir;
        let name = node.name.as_os_str();
        let existing = dir.stat(name).ok();
        let reuse_dir = node.is_dir() && existing.is_some_and(|s| s.is_dir());
        if existing.is_some() && !reuse_dir {
            if !self.options.overwrite {
                return Err(Error::Refused(format!(
                    "{} exists; not overwritten (use --overwrite)",
                    path.display()
                )));
            }
            dir.remove(name)
                .map_err(|e| Error::path_io("removing", path, e))?;
        }
        let key = (node.dev, node.ino);
        if node.may_be_hardlinked()
            && let Some(first) = self.hardlinks.get(&key)
        {
            if first.node.same_inode_as(node) {
                if self.first_name_unwritten(key) {
                    // The first name's data is still to come: link once it is written.
                    let later = (Arc::clone(&parent.dir), node.clone(), path.to_path_buf());
                    if let Some(w) = self.waiting() {
                        w.links.push(later);
                    }
                    return Ok(None);
                }
                self.link(dir, name, key)
                    .map_err(|e| Error::path_io("linking", path, e))?;
                self.count_name();
                return Ok(None);
            }
            let first_path = self.path_of(&first.dir, &first.name);
            self.reporter.warning(
                path,
                &format!(
                    "shares its source inode with {} but differs from it; restored as a \
                     separate file",
                    first_path.display()
                ),
            );
        }
        let io = |op: &'static str| move |e| Error::path_io(op, path, e);
        match &node.kind {
            NodeKind::File { content } => {
                let queued = self.file(&parent.dir, node, content, path)?;
                self.first_link(parent, node);
                if !queued {
                    self.file_done(dir, node, path);
                }
                return Ok(None);
            }
            NodeKind::Dir { subtree } => {
                if !reuse_dir {
                    dir.create_dir(name, 0o700)
                        .map_err(io("creating directory"))?;
                }
                self.stats.dirs += 1;
                let child = dir.open_dir(name).map_err(io("opening directory"))?;
                let tree = self.repo.read_tree(subtree).unwrap_or_else(|e| {
                    self.fail(path, &e);
                    Tree::default()
                });
                let mut rel = parent.rel.clone();
                rel.push(name.to_os_string());
                return Ok(Some(Frame {
                    dir: Arc::new(child),
                    tree,
                    next: 0,
                    rel,
                    node: Some(node.clone()),
                }));
            }
            NodeKind::Symlink { target } => {
                dir.symlink(target.as_os_str(), name)
                    .map_err(io("creating symlink"))?;
                self.stats.others += 1;
            }
            NodeKind::Fifo => self.special(dir, name, path, FileType::Fifo, node.mode, 0, 0)?,
            NodeKind::Socket => self.special(dir, name, path, FileType::Socket, node.mode, 0, 0)?,
            NodeKind::CharDevice(d) => self.special(
                dir,
                name,
                path,
                FileType::CharacterDevice,
                node.mode,
                d.major,
                d.minor,
            )?,
            NodeKind::BlockDevice(d) => self.special(
                dir,
                name,
                path,
                FileType::BlockDevice,
                node.mode,
                d.major,
                d.minor,
            )?,
        }
        self.first_link(parent, node);
        self.metadata(dir, node, path);
        Ok(None)
    }

    /// Remembers `node`, just created in `parent`, as the first name of its hardlink group.
    fn first_link(&mut self, parent: &Frame, node: &Node) {
        if node.may_be_hardlinked() {
            self.hardlinks
                .entry((node.dev, node.ino))
                .or_insert_with(|| FirstLink {
                    dir: parent.rel.clone(),
                    name: node.name.as_os_str().to_os_string(),
                    node: node.clone(),
                });
        }
    }

    /// Links `name` in `dir` to the first name of hardlink group `key`, reaching that name's
    /// directory from the target by descriptor.
    fn link(&self, dir: &DirFd, name: &OsStr, key: (u64, u64)) -> io::Result<()> {
        let first = self
            .hardlinks
            .get(&key)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        let mut opened: Option<DirFd> = None;
        for component in &first.dir {
            let next = opened.as_ref().unwrap_or(&self.top).open_dir(component)?;
            opened = Some(next);
        }
        dir.hard_link(opened.as_ref().unwrap_or(&self.top), &first.name, name)
    }

    #[allow(clippy::too_many_arguments)]
    fn special(
        &mut self,
        dir: &DirFd,
        name: &OsStr,
        path: &Path,
        file_type: FileType,
        mode: u32,
        major: u32,
        minor: u32,
    ) -> Result<()> {
        dir.mknod(name, file_type, mode, major, minor)
            .map_err(|e| Error::path_io("creating special file", path, e))?;
        self.stats.others += 1;
        Ok(())
    }

    /// Creates regular file `node` in `dir`. One without data is finished here (`false`);
    /// one with data is queued for the batch (`true`), which writes it, sizes it and sets its
    /// metadata.
    fn file(
        &mut self,
        dir: &Arc<DirFd>,
        node: &Node,
        content: &[Piece],
        path: &Path,
    ) -> Result<bool> {
        let name = node.name.as_os_str();
        let f = dir
            .create_file(name, 0o600)
            .map_err(|e| Error::path_io("creating", path, e))?;
        if !content.iter().any(|p| matches!(p, Piece::Data { .. })) {
            if let Err(e) = f.set_len(node.size) {
                drop(f);
                let _ = dir.remove(name);
                return Err(Error::path_io("sizing", path, e));
            }
            return Ok(false);
        }
        let queued = Queued::new(
            dir,
            name.to_os_string(),
            path.to_path_buf(),
            node.clone(),
            &f,
        )
        .map_err(|e| Error::path_io("creating", path, e));
        drop(f);
        if let Err(e) = queued.and_then(|q| self.batch.push(q, content)) {
            let _ = dir.remove(name);
            return Err(e);
        }
        Ok(true)
    }

    /// Whether the first name of hardlink group `key` is queued or being written.
    fn first_name_unwritten(&self, key: (u64, u64)) -> bool {
        self.batch.holds(key)
            || self
                .in_flight
                .as_ref()
                .is_some_and(|w| w.inodes.contains(&key))
    }

    /// What waits for the newest batch that holds anything: the one being filled, else the
    /// one being written; `None` when nothing is queued or in flight (what would wait can be
    /// done now).
    fn waiting(&mut self) -> Option<&mut Waiting> {
        if self.batch.is_empty() {
            self.in_flight.as_mut()
        } else {
            Some(&mut self.pending)
        }
    }

    /// Hands the queued files to the writer thread, once the batch it holds is finished, and
    /// starts a new batch; without a writer thread, writes them here.
    fn dispatch(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        self.finish_in_flight();
        let (batch, inodes) = self.batch.take();
        let waiting = Waiting {
            inodes,
            ..std::mem::take(&mut self.pending)
        };
        let unsent = match &self.lane {
            Some(lane) => lane.send(batch),
            None => Some(batch),
        };
        match unsent {
            None => self.in_flight = Some(waiting),
            Some(mut batch) => {
                let written = batch.write(self.repo, &self.options.progress);
                self.finish(written, waiting);
            }
        }
    }

    /// Waits for the batch the writer thread holds, if any, and finishes its files.
    fn finish_in_flight(&mut self) {
        let Some(waiting) = self.in_flight.take() else {
            return;
        };
        // No answer: the writer thread panicked, and the scope re-raises its panic.
        if let Some(written) = self.lane.as_ref().and_then(Lane::next) {
            self.finish(written, waiting);
        }
    }

    /// Once a batch's data is written: sizes each file and sets its metadata; a file whose
    /// data could not be written is removed (and later names of its hardlink group are
    /// restored on their own); then what waited for the batch.
    fn finish(&mut self, written: Vec<Written>, waiting: Waiting) {
        let complete: Vec<(&DirFd, &Node, &Path)> = written
            .iter()
            .filter(|w| w.outcome.is_ok())
            .map(|w| (&*w.queued.dir, &w.queued.node, w.queued.path.as_path()))
            .collect();
        let mut problems =
            metadata::apply_all(self.as_root, &complete, self.metadata_threads).into_iter();
        drop(complete);
        for Written { queued: q, outcome } in written {
            match outcome {
                Ok(()) => {
                    self.count_file(&q.node);
                    self.report(&q.path, problems.next().unwrap_or_default());
                }
                Err(e) => {
                    let _ = q.dir.remove(&q.name);
                    let key = (q.node.dev, q.node.ino);
                    if self
                        .hardlinks
                        .get(&key)
                        .is_some_and(|f| f.node.same_inode_as(&q.node))
                    {
                        self.hardlinks.remove(&key);
                    }
                    self.fail(&q.path, &e);
                }
            }
        }
        for (dir, node, path) in waiting.links {
            self.late_link(&dir, &node, &path);
        }
        for (dir, node, path) in waiting.dirs {
            self.metadata(&dir, &node, &path);
        }
    }

    /// Links `node` to the first name of its group, now written; if that failed, restores it
    /// on its own (queued for the next batch).
    fn late_link(&mut self, dir: &Arc<DirFd>, node: &Node, path: &Path) {
        let key = (node.dev, node.ino);
        let name = node.name.as_os_str();
        if self.hardlinks.contains_key(&key) {
            match self.link(dir, name, key) {
                Ok(()) => self.count_name(),
                Err(e) => self.fail(path, &Error::path_io("linking", path, e)),
            }
            return;
        }
        let NodeKind::File { content } = &node.kind else {
            return;
        };
        match self.file(dir, node, content, path) {
            Ok(true) => {}
            Ok(false) => self.file_done(dir, node, path),
            Err(e) => self.fail(path, &e),
        }
    }

    /// Counts regular file `node`, its data complete, and sets its metadata.
    fn file_done(&mut self, dir: &DirFd, node: &Node, path: &Path) {
        self.count_file(node);
        self.metadata(dir, node, path);
    }

    /// Counts a regular file's name restored (a further name of a hardlinked file, linked,
    /// counts as one).
    fn count_name(&mut self) {
        self.stats.files += 1;
        self.options.progress.file_done(0);
    }

    /// Counts regular file `node`, its data complete.
    fn count_file(&mut self, node: &Node) {
        self.count_name();
        self.stats.bytes += node.size;
    }

    /// Sets `node`'s metadata on its entry in `dir` ([`metadata::apply`]).
    fn metadata(&mut self, dir: &DirFd, node: &Node, path: &Path) {
        let problems = metadata::apply(self.as_root, dir, node, path);
        self.report(path, problems);
    }

    /// Counts and reports what went wrong setting `path`'s metadata.
    fn report(&mut self, path: &Path, problems: Vec<Problem>) {
        for p in problems {
            match p {
                Problem::Failed(e) => self.fail(path, &e),
                Problem::Warning(w) => self.reporter.warning(path, &w),
            }
        }
    }
}
