//! The FUSE request handlers: the tree of dated directories over [`State`].
//!
//! Top level (synthetic, changes while mounted): one directory per snapshot named by its time,
//! `latest` (symlink to the newest), `hosts/H/` and `tags/T/` (symlinks to the dated
//! directories of that host or tag, plus their own `latest`), `ids/ID` (symlink by short id; a
//! full id also resolves). Below a dated directory: the stored trees, exactly as stored.
//!
//! Every write operation answers `EROFS`. Errors reading repository data answer `EIO` (and are
//! logged); a damaged chunk never yields wrong bytes, because every chunk is verified against
//! its hash before it is served.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fuser::{
    AccessFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, InitFlags, KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate,
    ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyLseek, ReplyOpen,
    ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};

use crate::format::id::TreeId;
use crate::format::tree::{NodeKind, Piece, Tree};

use super::attr::{self, DirFacts};
use super::inodes::{self, AT, HOSTS, IDS, ROOT, TAGS, Target, group_ino};
use super::state::{State, log};
use super::view::{
    COOKIE_AT, COOKIE_DOT, COOKIE_DOTDOT, COOKIE_HOSTS, COOKIE_IDS, COOKIE_LATEST, COOKIE_TAGS,
    View,
};

/// TTL of everything inside a snapshot: snapshots never change.
const SNAPSHOT_TTL: Duration = Duration::from_secs(3600);
/// TTL of the top-level entries, which change when backups land or are forgotten.
const TOP_TTL: Duration = Duration::from_secs(1);
/// Largest name the mount reports it supports.
const NAME_MAX: u32 = 255;

/// The file system handed to fuser.
pub struct ChronoFs {
    state: Arc<State>,
}

impl ChronoFs {
    /// Wraps shared state.
    #[must_use]
    pub fn new(state: Arc<State>) -> Self {
        ChronoFs { state }
    }
}

fn snap_root_ino(snap: &super::view::SnapEntry) -> (u64, u64) {
    inodes::derive(&[b"snap", &snap.listed.id.0.0])
}

/// Inode key of a stored entry: hardlinked non-directories by source device and inode (and
/// everything that makes them one file), so all their names share it, while entries that
/// merely claim the same inode but differ get their own; everything else by parent and name.
fn node_ino(
    snap: &super::view::SnapEntry,
    parent: u64,
    node: &crate::format::tree::Node,
) -> (u64, u64) {
    if node.may_be_hardlinked() {
        inodes::derive(&[b"hardlink", &snap.listed.id.0.0, &node.inode_identity()])
    } else {
        inodes::derive(&[b"node", &parent.to_le_bytes(), node.name.as_bytes()])
    }
}

fn link_ino(dir: u64, name: &str, target: &str) -> (u64, u64) {
    inodes::derive(&[
        b"link",
        &dir.to_le_bytes(),
        name.as_bytes(),
        target.as_bytes(),
    ])
}

/// A directory, resolved.
enum Dir {
    Root,
    Groups(u64),
    Ids,
    /// `at/` (all snapshots) or `hosts/H/at/` (that host's).
    At {
        ino: u64,
        host: Option<String>,
    },
    Group {
        parent: u64,
        ino: u64,
        name: String,
    },
    Tree {
        snap: Arc<super::view::SnapEntry>,
        ino: u64,
        parent: u64,
        tree: Arc<Tree>,
    },
}

/// One entry to report from a directory.
enum Item {
    /// A fixed top-level inode.
    Fixed(u64, FileType),
    /// A derived inode and what it is.
    Derived((u64, u64), Target),
}

impl ChronoFs {
    fn dir(&self, ino: u64) -> Result<Dir, Errno> {
        match ino {
            ROOT => return Ok(Dir::Root),
            HOSTS | TAGS => return Ok(Dir::Groups(ino)),
            IDS => return Ok(Dir::Ids),
            AT => {
                return Ok(Dir::At {
                    ino: AT,
                    host: None,
                });
            }
            _ => {}
        }
        let t = self.state.table.get(ino).ok_or(Errno::ENOENT)?;
        match &*t {
            Target::HostDir(n) => Ok(Dir::Group {
                parent: HOSTS,
                ino,
                name: n.clone(),
            }),
            Target::TagDir(n) => Ok(Dir::Group {
                parent: TAGS,
                ino,
                name: n.clone(),
            }),
            Target::AtDir(h) => Ok(Dir::At {
                ino,
                host: Some(h.clone()),
            }),
            Target::SnapRoot(s) => Ok(Dir::Tree {
                snap: Arc::clone(s),
                ino,
                parent: ROOT,
                tree: self.tree(&s.listed.snapshot.root)?,
            }),
            Target::Node { snap, parent, .. } => match t.node().map(|n| &n.kind) {
                Some(NodeKind::Dir { subtree }) => Ok(Dir::Tree {
                    snap: Arc::clone(snap),
                    ino,
                    parent: *parent,
                    tree: self.tree(subtree)?,
                }),
                _ => Err(Errno::ENOTDIR),
            },
            Target::Link { .. } => Err(Errno::ENOTDIR),
        }
    }

    fn tree(&self, id: &TreeId) -> Result<Arc<Tree>, Errno> {
        self.state.tree(id).map_err(|e| {
            log(&format!("{e}"));
            Errno::EIO
        })
    }

    fn group<'v>(view: &'v View, parent: u64, name: &str) -> Option<&'v super::view::Group> {
        if parent == HOSTS {
            view.hosts.get(name)
        } else {
            view.tags.get(name)
        }
    }

    /// The entry `name` of directory `dir`.
    fn child(&self, dir: &Dir, name: &[u8]) -> Result<Item, Errno> {
        let name_str = std::str::from_utf8(name).map_err(|_| Errno::ENOENT);
        match dir {
            Dir::Root => {
                let n = name_str?;
                if n == "latest" {
                    self.state.refresh_soon();
                }
                let view = self.state.view();
                let found = top_child(&view, n);
                if found.is_some() {
                    return found.ok_or(Errno::ENOENT);
                }
                // Maybe a backup just landed: look again.
                self.state.refresh_soon();
                top_child(&self.state.view(), n).ok_or(Errno::ENOENT)
            }
            Dir::Groups(parent) => {
                let n = name_str?;
                let view = self.state.view();
                Self::group(&view, *parent, n).ok_or(Errno::ENOENT)?;
                let target = if *parent == HOSTS {
                    Target::HostDir(n.into())
                } else {
                    Target::TagDir(n.into())
                };
                Ok(Item::Derived(group_ino(*parent, n), target))
            }
            Dir::Ids => {
                let n = name_str?;
                let view = self.state.view();
                let s = view.by_id(n).ok_or(Errno::ENOENT)?;
                Ok(link_item(IDS, n, format!("../{}", s.name()), s.time_ns()))
            }
            Dir::Group {
                parent,
                ino,
                name: g,
            } => {
                let n = name_str?;
                let view = self.state.view();
                let group = Self::group(&view, *parent, g).ok_or(Errno::ENOENT)?;
                if n == "at" && *parent == HOSTS {
                    return Ok(at_dir_item(g));
                }
                let mut members = view.members(group);
                let s = if n == "latest" {
                    members.last()
                } else {
                    members.find(|s| s.name() == n)
                }
                .ok_or(Errno::ENOENT)?;
                Ok(link_item(
                    *ino,
                    n,
                    format!("../../{}", s.name()),
                    s.time_ns(),
                ))
            }
            Dir::At { ino, host } => {
                let n = name_str?;
                let view = self.state.view();
                let s = match host {
                    None => super::at::resolve(view.snaps.iter(), n),
                    Some(h) => view
                        .hosts
                        .get(h)
                        .and_then(|g| super::at::resolve(view.members(g), n)),
                }
                .ok_or(Errno::ENOENT)?;
                Ok(link_item(*ino, n, super::at::link_target(s), s.time_ns()))
            }
            Dir::Tree {
                snap, ino, tree, ..
            } => {
                let pos = tree
                    .entries
                    .binary_search_by(|e| e.name.as_bytes().cmp(name))
                    .map_err(|_| Errno::ENOENT)?;
                Ok(node_item(snap, *ino, tree, pos))
            }
        }
    }

    /// Calls `emit(cookie, name, item)` for each entry after cookie `offset` until it returns
    /// true (reply buffer full).
    fn entries(
        &self,
        dir: &Dir,
        dir_ino: u64,
        offset: u64,
        emit: &mut dyn FnMut(u64, &OsStr, Item) -> bool,
    ) {
        let parent = match dir {
            Dir::Root | Dir::Groups(_) | Dir::Ids | Dir::At { host: None, .. } => ROOT,
            Dir::At { host: Some(h), .. } => group_ino(HOSTS, h).0,
            Dir::Group { parent, .. } => *parent,
            Dir::Tree { parent, .. } => *parent,
        };
        let dots = [
            (COOKIE_DOT, ".", Item::Fixed(dir_ino, FileType::Directory)),
            (
                COOKIE_DOTDOT,
                "..",
                Item::Fixed(parent, FileType::Directory),
            ),
        ];
        if let Dir::Tree {
            snap, ino, tree, ..
        } = dir
        {
            // Cookies: 1 and 2 for the dots, 3 + i for entry i (trees never change).
            for (cookie, name, item) in dots {
                if cookie > offset && emit(cookie, OsStr::new(name), item) {
                    return;
                }
            }
            let start = usize::try_from(offset.saturating_sub(COOKIE_DOTDOT)).unwrap_or(usize::MAX);
            for pos in start..tree.entries.len() {
                let name = tree.entries[pos].name.as_os_str();
                if emit(pos as u64 + 3, name, node_item(snap, *ino, tree, pos)) {
                    return;
                }
            }
            return;
        }
        let view = self.state.view();
        let mut items: Vec<(u64, String, Item)> = dots
            .into_iter()
            .map(|(c, n, i)| (c, n.to_string(), i))
            .collect();
        match dir {
            Dir::Root => {
                if let Some(l) = view.latest() {
                    items.push((
                        COOKIE_LATEST,
                        "latest".into(),
                        link_item(ROOT, "latest", l.name().into(), l.time_ns()),
                    ));
                }
                items.push((
                    COOKIE_HOSTS,
                    "hosts".into(),
                    Item::Fixed(HOSTS, FileType::Directory),
                ));
                items.push((
                    COOKIE_TAGS,
                    "tags".into(),
                    Item::Fixed(TAGS, FileType::Directory),
                ));
                items.push((
                    COOKIE_IDS,
                    "ids".into(),
                    Item::Fixed(IDS, FileType::Directory),
                ));
                items.push((COOKIE_AT, "at".into(), Item::Fixed(AT, FileType::Directory)));
                for s in &view.snaps {
                    items.push((
                        s.cookie,
                        s.name().into(),
                        Item::Derived(snap_root_ino(s), Target::SnapRoot(Arc::clone(s))),
                    ));
                }
            }
            Dir::Groups(p) => {
                let groups = if *p == HOSTS { &view.hosts } else { &view.tags };
                for (name, g) in groups {
                    let target = if *p == HOSTS {
                        Target::HostDir(name.clone())
                    } else {
                        Target::TagDir(name.clone())
                    };
                    items.push((
                        g.cookie,
                        name.clone(),
                        Item::Derived(group_ino(*p, name), target),
                    ));
                }
            }
            Dir::Ids => {
                for s in &view.snaps {
                    let id = s.short_id();
                    let item = link_item(IDS, &id, format!("../{}", s.name()), s.time_ns());
                    items.push((s.cookie, id, item));
                }
            }
            Dir::At { ino, host } => {
                let members: Vec<&Arc<super::view::SnapEntry>> = match host {
                    None => view.snaps.iter().collect(),
                    Some(h) => view
                        .hosts
                        .get(h)
                        .map(|g| view.members(g).collect())
                        .unwrap_or_default(),
                };
                for s in members {
                    let item = link_item(*ino, s.name(), super::at::link_target(s), s.time_ns());
                    items.push((s.cookie, s.name().into(), item));
                }
            }
            Dir::Group { parent, ino, name } => {
                if *parent == HOSTS {
                    items.push((COOKIE_AT, "at".into(), at_dir_item(name)));
                }
                if let Some(g) = Self::group(&view, *parent, name) {
                    if let Some(l) = view.members(g).last() {
                        let item =
                            link_item(*ino, "latest", format!("../../{}", l.name()), l.time_ns());
                        items.push((COOKIE_LATEST, "latest".into(), item));
                    }
                    for s in view.members(g) {
                        let item =
                            link_item(*ino, s.name(), format!("../../{}", s.name()), s.time_ns());
                        items.push((s.cookie, s.name().into(), item));
                    }
                }
            }
            Dir::Tree { .. } => {}
        }
        items.sort_by_key(|(c, _, _)| *c);
        for (cookie, name, item) in items {
            if cookie > offset && emit(cookie, OsStr::new(&name), item) {
                return;
            }
        }
    }

    /// Attributes and TTL of an inode.
    fn attr_of(&self, ino: u64, target: Option<&Target>) -> Result<(FileAttr, Duration), Errno> {
        let owner = self.state.owner;
        let view = self.state.view();
        let newest = view.newest_ns();
        let top = |nlink: usize, entries: usize| {
            attr::virtual_dir(
                ino,
                newest,
                u32::try_from(nlink).unwrap_or(u32::MAX),
                entries as u64,
                owner,
            )
        };
        match ino {
            ROOT => {
                let n = view.snaps.len();
                return Ok((top(n + 6, n + 5), TOP_TTL));
            }
            HOSTS => return Ok((top(view.hosts.len() + 2, view.hosts.len()), TOP_TTL)),
            TAGS => return Ok((top(view.tags.len() + 2, view.tags.len()), TOP_TTL)),
            IDS | AT => return Ok((top(2, view.snaps.len()), TOP_TTL)),
            _ => {}
        }
        let owned;
        let target = match target {
            Some(t) => t,
            None => {
                owned = self.state.table.get(ino).ok_or(Errno::ENOENT)?;
                &owned
            }
        };
        Ok(match target {
            Target::HostDir(name) | Target::TagDir(name) => {
                let parent = if matches!(target, Target::HostDir(_)) {
                    HOSTS
                } else {
                    TAGS
                };
                let g = Self::group(&view, parent, name).ok_or(Errno::ENOENT)?;
                let newest = view.members(g).last().map_or(0, |s| s.time_ns());
                // Members and `latest`, and for a host its `at/` directory.
                let (n, nlink) = if parent == HOSTS {
                    (g.members.len() as u64 + 2, 3)
                } else {
                    (g.members.len() as u64 + 1, 2)
                };
                (attr::virtual_dir(ino, newest, nlink, n, owner), TOP_TTL)
            }
            Target::Link { target, time_ns } => {
                (attr::virtual_link(ino, target, *time_ns, owner), TOP_TTL)
            }
            Target::AtDir(host) => {
                let g = view.hosts.get(host).ok_or(Errno::ENOENT)?;
                let newest = view.members(g).last().map_or(0, |s| s.time_ns());
                let n = g.members.len() as u64;
                (attr::virtual_dir(ino, newest, 2, n, owner), TOP_TTL)
            }
            Target::SnapRoot(s) => {
                let facts = root_facts(&s.listed.snapshot)
                    .unwrap_or_else(|| self.state.dir_facts(&s.listed.snapshot.root));
                let a = attr::virtual_dir(ino, s.time_ns(), facts.nlink, facts.entries, owner);
                (a, SNAPSHOT_TTL)
            }
            Target::Node { .. } => {
                let node = target.node().ok_or(Errno::EIO)?;
                let facts: Option<DirFacts> = match &node.kind {
                    NodeKind::Dir { subtree } => Some(self.state.dir_facts(subtree)),
                    _ => None,
                };
                (attr::node_attr(ino, node, facts), SNAPSHOT_TTL)
            }
        })
    }

    fn fixed_attr(&self, ino: u64) -> Result<(FileAttr, Duration), Errno> {
        self.attr_of(ino, None)
    }

    fn kind_of(item: &Item) -> FileType {
        match item {
            Item::Fixed(_, k) => *k,
            Item::Derived(_, t) => match t {
                Target::HostDir(_) | Target::TagDir(_) | Target::AtDir(_) | Target::SnapRoot(_) => {
                    FileType::Directory
                }
                Target::Link { .. } => FileType::Symlink,
                Target::Node { .. } => t.node().map_or(FileType::RegularFile, attr::kind_of),
            },
        }
    }

    /// Looks `item` up on the kernel's behalf: counts the lookup and returns its attributes.
    fn enter(&self, item: Item) -> Result<(FileAttr, Duration), Errno> {
        match item {
            Item::Fixed(ino, _) => self.fixed_attr(ino),
            Item::Derived(key, target) => {
                let t = self.state.table.remember(key, || target).map_err(|_| {
                    log(&format!("inode number collision at {}", key.0));
                    Errno::EIO
                })?;
                let r = self.attr_of(key.0, Some(&t));
                if r.is_err() {
                    self.state.table.forget(key.0, 1);
                }
                r
            }
        }
    }

    fn read_into(&self, file: &super::state::OpenFile, offset: u64, size: u32, reply: ReplyData) {
        let spans = file.map.spans(offset, u64::from(size));
        let sequential = file.next.swap(
            offset + spans.iter().map(|s| s.len).sum::<u64>(),
            std::sync::atomic::Ordering::Relaxed,
        ) == offset;
        if let Some(last) = spans.last()
            && (sequential || offset == 0)
        {
            self.state.prefetch_after(file, last.index);
        }
        let load = |id, len| {
            self.state.chunk(id, len).map_err(|e| {
                log(&format!("{e}"));
                Errno::EIO
            })
        };
        // One chunk: reply straight from the cached chunk.
        if let [s] = spans.as_slice()
            && let Piece::Data { id, len } = &s.piece
        {
            match load(id, *len) {
                Ok(chunk) => {
                    let from = usize::try_from(s.from).unwrap_or(usize::MAX);
                    let to = from.saturating_add(usize::try_from(s.len).unwrap_or(0));
                    match chunk.get(from..to) {
                        Some(bytes) => reply.data(bytes),
                        None => reply.error(Errno::EIO),
                    }
                }
                Err(e) => reply.error(e),
            }
            return;
        }
        let mut out = Vec::with_capacity(spans.iter().map(|s| s.len as usize).sum());
        for s in &spans {
            match &s.piece {
                Piece::Hole { .. } => out.resize(out.len() + s.len as usize, 0),
                Piece::Data { id, len } => {
                    let chunk = match load(id, *len) {
                        Ok(c) => c,
                        Err(e) => return reply.error(e),
                    };
                    let from = s.from as usize;
                    match chunk.get(from..from + s.len as usize) {
                        Some(bytes) => out.extend_from_slice(bytes),
                        None => return reply.error(Errno::EIO),
                    }
                }
            }
        }
        reply.data(&out);
    }

    /// The read state of a stored regular file.
    fn open_file(&self, ino: u64) -> Result<Arc<super::state::OpenFile>, Errno> {
        let t = self.state.table.get(ino).ok_or(Errno::ENOENT)?;
        match t.node().map(|n| &n.kind) {
            Some(NodeKind::File { content }) => Ok(self.state.file(ino, content)),
            Some(NodeKind::Dir { .. }) => Err(Errno::EISDIR),
            _ => Err(Errno::EINVAL),
        }
    }

    fn xattrs(&self, ino: u64) -> Result<Vec<crate::format::tree::Xattr>, Errno> {
        if ino < inodes::FIRST_DERIVED {
            return Ok(Vec::new());
        }
        let t = self.state.table.get(ino).ok_or(Errno::ENOENT)?;
        Ok(t.node().map(|n| n.xattrs.clone()).unwrap_or_default())
    }
}

/// `nlink` and entry count of a snapshot's root directory from the snapshot record alone:
/// its entries are the first components of the source paths (all directories), or the stdin
/// file. Listing the top level of a mount of 1,000 snapshots then reads no tree (and does
/// not wait for the index). `None` when a source path is `/` itself.
fn root_facts(snap: &crate::format::snapshot::Snapshot) -> Option<DirFacts> {
    if snap.stdin {
        return Some(DirFacts {
            nlink: 2,
            entries: 1,
        });
    }
    let mut firsts = std::collections::BTreeSet::new();
    for p in &snap.paths {
        let first = p.as_path().components().find_map(|c| match c {
            std::path::Component::Normal(n) => Some(n),
            _ => None,
        })?;
        firsts.insert(first);
    }
    Some(DirFacts {
        nlink: u32::try_from(firsts.len() + 2).unwrap_or(u32::MAX),
        entries: firsts.len() as u64,
    })
}

fn top_child(view: &View, name: &str) -> Option<Item> {
    match name {
        "hosts" => Some(Item::Fixed(HOSTS, FileType::Directory)),
        "tags" => Some(Item::Fixed(TAGS, FileType::Directory)),
        "ids" => Some(Item::Fixed(IDS, FileType::Directory)),
        "at" => Some(Item::Fixed(AT, FileType::Directory)),
        "latest" => view
            .latest()
            .map(|l| link_item(ROOT, "latest", l.name().into(), l.time_ns())),
        _ => view
            .by_name(name)
            .map(|s| Item::Derived(snap_root_ino(s), Target::SnapRoot(Arc::clone(s)))),
    }
}

/// `hosts/HOST/at`.
fn at_dir_item(host: &str) -> Item {
    Item::Derived(
        inodes::derive(&[b"at", host.as_bytes()]),
        Target::AtDir(host.into()),
    )
}

fn link_item(dir: u64, name: &str, target: String, time_ns: i64) -> Item {
    Item::Derived(
        link_ino(dir, name, &target),
        Target::Link { target, time_ns },
    )
}

fn node_item(
    snap: &Arc<super::view::SnapEntry>,
    dir_ino: u64,
    tree: &Arc<Tree>,
    pos: usize,
) -> Item {
    let key = node_ino(snap, dir_ino, &tree.entries[pos]);
    Item::Derived(
        key,
        Target::Node {
            snap: Arc::clone(snap),
            parent: dir_ino,
            tree: Arc::clone(tree),
            pos,
        },
    )
}

fn xattr_reply(data: &[u8], size: u32, reply: ReplyXattr) {
    if size == 0 {
        reply.size(u32::try_from(data.len()).unwrap_or(u32::MAX));
    } else if data.len() > size as usize {
        reply.error(Errno::ERANGE);
    } else {
        reply.data(data);
    }
}

impl Filesystem for ChronoFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // Always readdirplus: attributes come with the listing, saving a LOOKUP per entry.
        let wanted = InitFlags::FUSE_DO_READDIRPLUS
            | InitFlags::FUSE_CACHE_SYMLINKS
            | InitFlags::FUSE_PARALLEL_DIROPS
            | InitFlags::FUSE_POSIX_ACL
            | InitFlags::FUSE_ASYNC_READ;
        let _ = config.add_capabilities(wanted & config.capabilities());
        if let Err(max) = config.set_max_readahead(4 << 20) {
            let _ = config.set_max_readahead(max);
        }
        let _ = config.set_max_background(64);
        let _ = config.set_congestion_threshold(48);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let r = self
            .dir(parent.0)
            .and_then(|d| self.child(&d, name.as_bytes()))
            .and_then(|item| self.enter(item));
        match r {
            Ok((attr, ttl)) => reply.entry(&ttl, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.state.table.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        if ino.0 == ROOT {
            self.state.refresh_soon();
        }
        match self.attr_of(ino.0, None) {
            Ok((attr, ttl)) => reply.attr(&ttl, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let Some(t) = self.state.table.get(ino.0) else {
            return reply.error(Errno::ENOENT);
        };
        match &*t {
            Target::Link { target, .. } => reply.data(target.as_bytes()),
            _ => match t.node().map(|n| &n.kind) {
                Some(NodeKind::Symlink { target }) => reply.data(target.as_bytes()),
                _ => reply.error(Errno::EINVAL),
            },
        }
    }

    /// Zero-message open: answering ENOSYS once makes the kernel open files without asking
    /// (and without RELEASE), keeping their pages cached across opens (`FOPEN_KEEP_CACHE` is
    /// the kernel's default then). That saves two round trips per file for `cp`, `tar` and
    /// `rsync`. Writes are refused by the kernel (read-only mount), device nodes by `nodev`.
    fn open(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        reply.error(Errno::ENOSYS);
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.open_file(ino.0) {
            Ok(file) => {
                if offset == 0
                    && let Some(t) = self.state.table.get(ino.0)
                    && let Target::Node { tree, pos, .. } = &*t
                {
                    self.state.prefetch_siblings(tree, *pos);
                }
                self.read_into(&file, offset, size, reply);
            }
            Err(e) => reply.error(e),
        }
    }

    /// Nothing to flush, ever: ENOSYS makes the kernel stop sending FLUSH on every close.
    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lo: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::ENOSYS);
    }

    fn fsync(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _ds: bool, reply: ReplyEmpty) {
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.dir(ino.0) {
            // Snapshot directories never change: let the kernel cache their listings.
            Ok(Dir::Tree { .. }) => reply.opened(
                FileHandle(0),
                FopenFlags::FOPEN_CACHE_DIR | FopenFlags::FOPEN_KEEP_CACHE,
            ),
            Ok(Dir::Root) => {
                self.state.refresh_soon();
                reply.opened(FileHandle(0), FopenFlags::empty());
            }
            Ok(_) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let dir = match self.dir(ino.0) {
            Ok(d) => d,
            Err(e) => return reply.error(e),
        };
        self.entries(&dir, ino.0, offset, &mut |cookie, name, item| {
            let ino = match &item {
                Item::Fixed(i, _) => *i,
                Item::Derived(k, _) => k.0,
            };
            reply.add(INodeNo(ino), cookie, Self::kind_of(&item), name)
        });
        reply.ok();
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let dir = match self.dir(ino.0) {
            Ok(d) => d,
            Err(e) => return reply.error(e),
        };
        self.entries(&dir, ino.0, offset, &mut |cookie, name, item| {
            let dots = name == "." || name == "..";
            let (ino, r) = match &item {
                Item::Fixed(i, _) => (*i, self.fixed_attr(*i)),
                Item::Derived(k, t) => (k.0, self.attr_of(k.0, Some(t))),
            };
            // An entry whose attributes cannot be read is left out (lookup reports EIO).
            let Ok((attr, ttl)) = r else { return false };
            let full = reply.add(INodeNo(ino), cookie, name, &ttl, &attr, Generation(0));
            // The kernel counts a lookup for every entry it receives, except the dots.
            if !full
                && !dots
                && let Item::Derived(key, target) = item
            {
                let _ = self.state.table.remember(key, || target);
            }
            full
        });
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let index = self.state.repo().index();
        let bytes: u64 = index.packs().iter().map(|(_, len)| *len).sum();
        let files = index.len() as u64;
        drop(index);
        let bsize = attr::BLOCK_SIZE;
        reply.statfs(
            bytes.div_ceil(u64::from(bsize)),
            0,
            0,
            files,
            0,
            bsize,
            NAME_MAX,
            bsize,
        );
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        match self.xattrs(ino.0) {
            Ok(list) => match list.iter().find(|x| x.name.as_bytes() == name.as_bytes()) {
                Some(x) => xattr_reply(x.value.as_bytes(), size, reply),
                // The mount does no SELinux labelling of its own: "not supported" (rather
                // than "no such attribute") lets `ls -l` stop asking for every file.
                None if name.as_bytes() == b"security.selinux" => {
                    reply.error(Errno::EOPNOTSUPP);
                }
                None => reply.error(Errno::NO_XATTR),
            },
            Err(e) => reply.error(e),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        match self.xattrs(ino.0) {
            Ok(list) => {
                let mut names = Vec::new();
                for x in &list {
                    names.extend_from_slice(x.name.as_bytes());
                    names.push(0);
                }
                xattr_reply(&names, size, reply);
            }
            Err(e) => reply.error(e),
        }
    }

    fn access(&self, _req: &Request, _ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        if mask.contains(AccessFlags::W_OK) {
            reply.error(Errno::EROFS);
        } else {
            reply.ok();
        }
    }

    fn lseek(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        let file = match self.open_file(ino.0) {
            Ok(f) => f,
            Err(e) => return reply.error(e),
        };
        let Ok(off) = u64::try_from(offset) else {
            return reply.error(Errno::ENXIO);
        };
        let found = match whence {
            libc::SEEK_DATA => file.map.seek(off, true),
            libc::SEEK_HOLE => file.map.seek(off, false),
            _ => return reply.error(Errno::EINVAL),
        };
        match found.and_then(|o| i64::try_from(o).ok()) {
            Some(o) => reply.offset(o),
            None => reply.error(Errno::ENXIO),
        }
    }

    // Everything below would change the file system: it is read-only.

    fn setattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        _size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        reply.error(Errno::EROFS);
    }

    fn mknod(
        &self,
        _req: &Request,
        _p: INodeNo,
        _n: &OsStr,
        _m: u32,
        _u: u32,
        _r: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn mkdir(&self, _req: &Request, _p: INodeNo, _n: &OsStr, _m: u32, _u: u32, reply: ReplyEntry) {
        reply.error(Errno::EROFS);
    }

    fn unlink(&self, _req: &Request, _p: INodeNo, _n: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }

    fn rmdir(&self, _req: &Request, _p: INodeNo, _n: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }

    fn symlink(
        &self,
        _req: &Request,
        _p: INodeNo,
        _n: &OsStr,
        _t: &std::path::Path,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn rename(
        &self,
        _req: &Request,
        _p: INodeNo,
        _n: &OsStr,
        _np: INodeNo,
        _nn: &OsStr,
        _f: RenameFlags,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }

    fn link(&self, _req: &Request, _i: INodeNo, _np: INodeNo, _nn: &OsStr, reply: ReplyEntry) {
        reply.error(Errno::EROFS);
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _data: &[u8],
        _wf: WriteFlags,
        _flags: OpenFlags,
        _lo: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        reply.error(Errno::EROFS);
    }

    fn create(
        &self,
        _req: &Request,
        _p: INodeNo,
        _n: &OsStr,
        _m: u32,
        _u: u32,
        _f: i32,
        reply: ReplyCreate,
    ) {
        reply.error(Errno::EROFS);
    }

    fn setxattr(
        &self,
        _req: &Request,
        _i: INodeNo,
        _n: &OsStr,
        _v: &[u8],
        _f: i32,
        _p: u32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }

    fn removexattr(&self, _req: &Request, _i: INodeNo, _n: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }

    fn fallocate(
        &self,
        _req: &Request,
        _i: INodeNo,
        _fh: FileHandle,
        _o: u64,
        _l: u64,
        _m: i32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }
}
