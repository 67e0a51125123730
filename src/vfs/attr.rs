//! `stat` as the mount reports it: stored metadata turned into attributes, and the attributes
//! of the synthetic entries. [`Attr`] and [`Kind`] are this crate's own; the FUSE adapter
//! translates them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::format::tree::{Node, NodeKind, Timestamp};
use crate::sys;

use super::filemap::stored_bytes;

/// `st_blksize`: the I/O size tools like `cp` and `cat` use for their buffers.
pub const BLOCK_SIZE: u32 = 128 * 1024;

/// A stored timestamp as `SystemTime` (before 1970 included).
#[must_use]
pub fn system_time(t: Timestamp) -> SystemTime {
    let nanos = Duration::from_nanos(u64::from(t.nanos));
    if t.secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(t.secs.unsigned_abs()) + nanos
    } else {
        UNIX_EPOCH - Duration::from_secs(t.secs.unsigned_abs()) + nanos
    }
}

/// Nanoseconds since the epoch as `SystemTime`.
#[must_use]
pub fn time_from_ns(ns: i64) -> SystemTime {
    system_time(Timestamp {
        secs: ns.div_euclid(1_000_000_000),
        nanos: u32::try_from(ns.rem_euclid(1_000_000_000)).unwrap_or(0),
    })
}

/// What an entry is, as `readdir` and `stat` report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A named pipe.
    Fifo,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A Unix socket.
    Socket,
}

/// What `stat` says about an entry of the mount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr {
    /// Inode number.
    pub ino: u64,
    /// Size in bytes (for directories: entries + 2).
    pub size: u64,
    /// 512-byte blocks the data takes in the repository.
    pub blocks: u64,
    /// Access time.
    pub atime: SystemTime,
    /// Modification time.
    pub mtime: SystemTime,
    /// Change time.
    pub ctime: SystemTime,
    /// What it is.
    pub kind: Kind,
    /// Permission bits (with setuid, setgid, sticky).
    pub perm: u16,
    /// Link count.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Device number of a device node.
    pub rdev: u32,
    /// Preferred I/O size.
    pub blksize: u32,
}

/// The kind of a stored entry.
#[must_use]
pub fn kind_of(node: &Node) -> Kind {
    match node.kind {
        NodeKind::File { .. } => Kind::File,
        NodeKind::Dir { .. } => Kind::Dir,
        NodeKind::Symlink { .. } => Kind::Symlink,
        NodeKind::Fifo => Kind::Fifo,
        NodeKind::CharDevice(_) => Kind::CharDevice,
        NodeKind::BlockDevice(_) => Kind::BlockDevice,
        NodeKind::Socket => Kind::Socket,
    }
}

/// Directory facts that come from the directory's own tree, not from its entry.
#[derive(Clone, Copy, Debug)]
pub struct DirFacts {
    /// 2 + number of subdirectories.
    pub nlink: u32,
    /// Number of entries (reported as the size, as ZFS does).
    pub entries: u64,
}

/// Attributes of a stored entry. `dir` must be given for directories.
#[must_use]
pub fn node_attr(ino: u64, node: &Node, dir: Option<DirFacts>) -> Attr {
    let (size, blocks, nlink, rdev) = match &node.kind {
        NodeKind::File { content } => (
            node.size,
            stored_bytes(content).div_ceil(512),
            u32::try_from(node.nlink.max(1)).unwrap_or(u32::MAX),
            0,
        ),
        NodeKind::Dir { .. } => {
            let d = dir.unwrap_or(DirFacts {
                nlink: 2,
                entries: 0,
            });
            (d.entries + 2, 0, d.nlink, 0)
        }
        NodeKind::Symlink { target } => (target.as_bytes().len() as u64, 0, nlink_of(node), 0),
        NodeKind::CharDevice(d) | NodeKind::BlockDevice(d) => {
            (0, 0, nlink_of(node), sys::encode_dev32(d.major, d.minor))
        }
        NodeKind::Fifo | NodeKind::Socket => (0, 0, nlink_of(node), 0),
    };
    Attr {
        ino,
        size,
        blocks,
        atime: system_time(node.atime),
        mtime: system_time(node.mtime),
        ctime: system_time(node.ctime),
        kind: kind_of(node),
        perm: u16::try_from(node.mode & 0o7777).unwrap_or(0),
        nlink,
        uid: node.uid,
        gid: node.gid,
        rdev,
        blksize: BLOCK_SIZE,
    }
}

fn nlink_of(node: &Node) -> u32 {
    u32::try_from(node.nlink.max(1)).unwrap_or(u32::MAX)
}

/// Owner of the synthetic entries (the user who mounted).
#[derive(Clone, Copy, Debug)]
pub struct Owner {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// Attributes of a synthetic, read-only directory (`r-xr-xr-x`).
#[must_use]
pub fn virtual_dir(ino: u64, time_ns: i64, nlink: u32, entries: u64, owner: Owner) -> Attr {
    let t = time_from_ns(time_ns);
    Attr {
        ino,
        size: entries + 2,
        blocks: 0,
        atime: t,
        mtime: t,
        ctime: t,
        kind: Kind::Dir,
        perm: 0o555,
        nlink,
        uid: owner.uid,
        gid: owner.gid,
        rdev: 0,
        blksize: BLOCK_SIZE,
    }
}

/// Attributes of a synthetic symlink (`latest`, `hosts/H/…`, `ids/…`).
#[must_use]
pub fn virtual_link(ino: u64, target: &str, time_ns: i64, owner: Owner) -> Attr {
    let mut a = virtual_dir(ino, time_ns, 1, 0, owner);
    a.kind = Kind::Symlink;
    a.perm = 0o777;
    a.size = target.len() as u64;
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_before_and_after_the_epoch() {
        let t = system_time(Timestamp {
            secs: -1,
            nanos: 500,
        });
        assert_eq!(
            UNIX_EPOCH.duration_since(t).unwrap().as_nanos(),
            999_999_500
        );
        assert_eq!(time_from_ns(-1), UNIX_EPOCH - Duration::from_nanos(1));
        let far = system_time(Timestamp {
            secs: 4_102_444_800,
            nanos: 7,
        });
        assert_eq!(
            far.duration_since(UNIX_EPOCH).unwrap().as_nanos(),
            4_102_444_800_000_000_007
        );
    }
}
