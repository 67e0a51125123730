//! Source metadata → tree `Node` fields: stat results, owner names, extended attributes.
//! Extended attributes are read by a path the caller gets from [`crate::dirfd::DirFd::entry_path`],
//! which reaches the entry through its open directory however deep it is.

use std::collections::HashMap;
use std::path::Path;

use rustix::fs::FileType;

use crate::dirfd::Stat;
use crate::format::bytes::ByteString;
use crate::format::tree::{Device, Node, NodeKind, Xattr};
use crate::sys;

/// Caches uid/gid → name look-ups for one backup run.
#[derive(Default)]
pub struct Owners {
    users: HashMap<u32, Option<String>>,
    groups: HashMap<u32, Option<String>>,
}

impl Owners {
    fn user(&mut self, uid: u32) -> Option<String> {
        self.users
            .entry(uid)
            .or_insert_with(|| sys::user_name(uid))
            .clone()
    }
    fn group(&mut self, gid: u32) -> Option<String> {
        self.groups
            .entry(gid)
            .or_insert_with(|| sys::group_name(gid))
            .clone()
    }
}

/// A node for `name` with the metadata of `st` and the given kind. `size` is set from the
/// kind (files: their content; symlinks: target length).
pub fn node(
    name: ByteString,
    st: &Stat,
    kind: NodeKind,
    xattrs: Vec<Xattr>,
    owners: &mut Owners,
) -> Node {
    let size = match &kind {
        NodeKind::File { content } => content.iter().map(crate::format::tree::Piece::len).sum(),
        NodeKind::Symlink { target } => target.as_bytes().len() as u64,
        _ => 0,
    };
    Node {
        name,
        kind,
        mode: st.mode & 0o7777,
        uid: st.uid,
        gid: st.gid,
        user: owners.user(st.uid),
        group: owners.group(st.gid),
        size,
        mtime: st.mtime,
        atime: st.atime,
        ctime: st.ctime,
        dev: st.dev,
        ino: st.ino,
        nlink: st.nlink,
        xattrs,
    }
}

/// The kind of a special file (not file, dir or symlink), or `None` for an unknown type.
#[must_use]
pub fn special_kind(st: &Stat) -> Option<NodeKind> {
    let dev = || Device {
        major: rustix::fs::major(st.rdev),
        minor: rustix::fs::minor(st.rdev),
    };
    match st.file_type() {
        FileType::Fifo => Some(NodeKind::Fifo),
        FileType::CharacterDevice => Some(NodeKind::CharDevice(dev())),
        FileType::BlockDevice => Some(NodeKind::BlockDevice(dev())),
        FileType::Socket => Some(NodeKind::Socket),
        _ => None,
    }
}

/// Extended attributes of `path` (not following a final symlink), sorted by name. A file
/// system without xattr support yields none.
///
/// # Errors
/// Other I/O errors while reading them.
pub fn xattrs(path: &Path) -> std::io::Result<Vec<Xattr>> {
    let names = match xattr::list(path) {
        Ok(n) => n,
        Err(e) if is_unsupported(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for name in names {
        match xattr::get(path, &name) {
            Ok(Some(value)) => out.push(Xattr {
                name: ByteString::from(name),
                value: ByteString(value),
            }),
            Ok(None) => {}
            Err(e) if is_unsupported(&e) => {}
            Err(e) => return Err(e),
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.dedup_by(|a, b| a.name == b.name);
    Ok(out)
}

fn is_unsupported(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOTSUP | libc::ENODATA))
}
