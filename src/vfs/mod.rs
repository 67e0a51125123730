//! The virtual tree a mount shows, apart from FUSE: lookup, listing, attributes, links, reads
//! and extended attributes by inode number, answered with this crate's own types ([`Attr`],
//! [`Kind`], [`Errno`]). The FUSE adapter (`crate::fuse`) only translates requests and
//! replies, so everything here is testable without a mount.
//!
//! The tree: one directory per snapshot named by its time, `latest`, `hosts/H/` and `tags/T/`
//! (symlinks to the dated directories of that host or tag), `ids/ID`, `at/TIME` (the newest
//! snapshot at or before any time typed, see [`at`]) and `versions/PATH` (every version of a
//! path across all snapshots, see [`versions`]). Below a dated directory: the stored trees,
//! exactly as stored.
//!
//! - [`view`]: the top level as data; [`inodes`]: derived inode numbers and the live table;
//! - [`state`]: repository access, caches, refresh; [`cache`], [`filemap`]: chunk access;
//! - [`attr`]: stored metadata as `stat` reports it;
//! - `dirs`: what a directory inode is and what its names resolve to; `listing`: what it lists;
//!   `entry_attr`: attributes of any inode; `content`: file data, links, xattrs;
//! - [`xattr_queries`]: telling the kernel once that no snapshot holds extended attributes.

pub mod at;
pub mod attr;
pub mod cache;
mod content;
mod dirs;
mod entry_attr;
pub mod filemap;
pub mod inodes;
mod listing;
mod log;
pub mod read_order;
pub mod readers;
pub mod records;
pub mod state;
pub mod versions;
pub mod view;
pub mod xattr_queries;

use std::ffi::OsStr;
use std::sync::Arc;
use std::time::Duration;

pub use self::attr::{Attr, Kind};
pub use self::content::Data;
use self::state::State;

/// An error for the kernel: a libc `errno` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    /// No such entry.
    pub const ENOENT: Errno = Errno(libc::ENOENT);
    /// Not a directory.
    pub const ENOTDIR: Errno = Errno(libc::ENOTDIR);
    /// Is a directory.
    pub const EISDIR: Errno = Errno(libc::EISDIR);
    /// Repository data could not be read or is damaged.
    pub const EIO: Errno = Errno(libc::EIO);
    /// Not possible on this kind of entry.
    pub const EINVAL: Errno = Errno(libc::EINVAL);
    /// No data or hole at or after the offset.
    pub const ENXIO: Errno = Errno(libc::ENXIO);
    /// The caller's buffer is too small.
    pub const ERANGE: Errno = Errno(libc::ERANGE);
    /// Not supported.
    pub const EOPNOTSUPP: Errno = Errno(libc::EOPNOTSUPP);
    /// No such extended attribute.
    pub const ENODATA: Errno = Errno(libc::ENODATA);
    /// Not implemented: the kernel stops sending that kind of request.
    pub const ENOSYS: Errno = Errno(libc::ENOSYS);
}

/// TTL of everything inside a snapshot: snapshots never change.
pub const SNAPSHOT_TTL: Duration = Duration::from_secs(3600);
/// TTL of the top-level entries, which change when backups land or are forgotten.
pub const TOP_TTL: Duration = Duration::from_secs(1);
/// Largest name the mount reports it supports.
pub const NAME_MAX: u32 = 255;

/// One directory entry, as a listing reports it.
pub struct DirEntry<'a> {
    /// Its position: listing again after this cookie resumes after it.
    pub cookie: u64,
    /// Its name.
    pub name: &'a OsStr,
    /// Its inode number.
    pub ino: u64,
    /// What it is.
    pub kind: Kind,
}

/// File system totals for `statfs`.
#[derive(Clone, Copy, Debug)]
pub struct Totals {
    /// Bytes the repository's packs take.
    pub bytes: u64,
    /// Inodes the kernel may hold before the mount asks it to drop some.
    pub inode_limit: u64,
    /// Inodes the kernel holds now (the mount's inode table).
    pub inodes: u64,
}

/// The virtual tree over a mounted repository.
pub struct Vfs {
    state: Arc<State>,
    versions: versions::Levels,
}

impl Vfs {
    /// The tree over `state`.
    #[must_use]
    pub fn new(state: Arc<State>) -> Self {
        Vfs {
            state,
            versions: versions::Levels::default(),
        }
    }

    /// The shared state (repository, caches, inode table).
    #[must_use]
    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// Looks up `name` in directory `parent` on the kernel's behalf: the entry's inode is
    /// remembered (one more lookup) and its attributes returned.
    ///
    /// # Errors
    /// `ENOENT`, `ENOTDIR`, or `EIO` when repository data cannot be read.
    pub fn lookup(&self, parent: u64, name: &[u8]) -> Result<(Attr, Duration), Errno> {
        let dir = self.dir(parent)?;
        let item = self.child(&dir, name)?;
        self.enter(item)
    }

    /// The kernel forgot `n` lookups of `ino`.
    pub fn forget(&self, ino: u64, n: u64) {
        self.state.table.forget(ino, n);
    }

    /// Attributes of `ino` and how long they may be cached.
    ///
    /// # Errors
    /// `ENOENT` for an inode the kernel does not hold, `EIO` for unreadable data.
    pub fn getattr(&self, ino: u64) -> Result<(Attr, Duration), Errno> {
        if ino == inodes::ROOT {
            self.state.refresh_soon();
        }
        self.attr_of(ino, None, None)
    }

    /// Opens directory `ino`: `true` if its listing never changes (a snapshot's directory),
    /// so the kernel may cache it.
    ///
    /// # Errors
    /// `ENOENT`, `ENOTDIR`, `EIO`.
    pub fn opendir(&self, ino: u64) -> Result<bool, Errno> {
        match self.dir(ino)? {
            dirs::Dir::Tree { .. } => Ok(true),
            dirs::Dir::Root => {
                self.state.refresh_soon();
                Ok(false)
            }
            _ => Ok(false),
        }
    }

    /// Lists directory `ino` after cookie `offset`, calling `emit` for each entry until it
    /// returns `true` (the reply is full).
    ///
    /// # Errors
    /// As [`Self::opendir`].
    pub fn list(
        &self,
        ino: u64,
        offset: u64,
        emit: &mut dyn FnMut(DirEntry<'_>) -> bool,
    ) -> Result<(), Errno> {
        let dir = self.dir(ino)?;
        self.entries(&dir, ino, offset, &mut |cookie, name, item| {
            emit(DirEntry {
                cookie,
                name,
                ino: item.ino(),
                kind: self.kind_of(&item),
            })
        })
    }

    /// Lists directory `ino` after cookie `offset` with each entry's attributes (READDIRPLUS):
    /// `emit` returns `true` when the reply is full. Every entry accepted, except the dots,
    /// counts as a lookup, as the kernel counts it; an entry whose attributes cannot be read is
    /// left out (its lookup reports the error).
    ///
    /// # Errors
    /// As [`Self::opendir`].
    pub fn list_plus(
        &self,
        ino: u64,
        offset: u64,
        emit: &mut dyn FnMut(DirEntry<'_>, &Attr, Duration) -> bool,
    ) -> Result<(), Errno> {
        let dir = self.dir(ino)?;
        self.entries(&dir, ino, offset, &mut |cookie, name, item| {
            let dots = name == "." || name == "..";
            let Ok((attr, ttl)) = self.attr_of(item.ino(), item.target(), item.held()) else {
                return false;
            };
            let entry = DirEntry {
                cookie,
                name,
                ino: item.ino(),
                kind: attr.kind,
            };
            let full = emit(entry, &attr, ttl);
            if !full && !dots {
                self.remember(item);
            }
            full
        })
    }

    /// Totals for `statfs`.
    #[must_use]
    pub fn totals(&self) -> Totals {
        let index = self.state.repo().index();
        Totals {
            bytes: index.pack_bytes(),
            inode_limit: self.state.max_inodes() as u64,
            inodes: self.state.table.len() as u64,
        }
    }
}
