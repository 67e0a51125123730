//! Source metadata → tree `Node` fields: stat results, owner names, extended attributes.

use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::format::bytes::ByteString;
use crate::format::tree::{Device, Node, NodeKind, Timestamp, Xattr};
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

fn ts(secs: i64, nanos: i64) -> Timestamp {
    Timestamp {
        secs,
        nanos: u32::try_from(nanos.clamp(0, 999_999_999)).unwrap_or(0),
    }
}

/// A node for `name` with the metadata of `meta` and the given kind. `size` is set from the
/// kind (files: their content; symlinks: target length).
pub fn node(
    name: ByteString,
    meta: &Metadata,
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
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        user: owners.user(meta.uid()),
        group: owners.group(meta.gid()),
        size,
        mtime: ts(meta.mtime(), meta.mtime_nsec()),
        atime: ts(meta.atime(), meta.atime_nsec()),
        ctime: ts(meta.ctime(), meta.ctime_nsec()),
        dev: meta.dev(),
        ino: meta.ino(),
        nlink: meta.nlink(),
        xattrs,
    }
}

/// The kind of a special file (not file, dir or symlink), or `None` for an unknown type.
#[must_use]
pub fn special_kind(meta: &Metadata) -> Option<NodeKind> {
    let ft = meta.file_type();
    let dev = || Device {
        major: libc::major(meta.rdev()),
        minor: libc::minor(meta.rdev()),
    };
    if ft.is_fifo() {
        Some(NodeKind::Fifo)
    } else if ft.is_char_device() {
        Some(NodeKind::CharDevice(dev()))
    } else if ft.is_block_device() {
        Some(NodeKind::BlockDevice(dev()))
    } else if ft.is_socket() {
        Some(NodeKind::Socket)
    } else {
        None
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
