//! The mount table (`/proc/self/mountinfo`): what is mounted where (the mount command's view
//! of a mount point), where the file system on a block device is mounted, which mount holds
//! a path, and which mounts lie below a source (`backup --consistent`).
//!
//! A mount's device number in the table is the file system's (`st_dev` of its root). For
//! ext4 or xfs that is the block device's own number; btrfs gives every file system an
//! anonymous number (`0:NN`) instead, so a block device is also matched by the mount's
//! source, when the source is that device.

use std::ffi::OsString;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// One line of the mount table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// The file system's device number, `major:minor`, as the table gives it.
    pub dev: String,
    /// Which directory of the file system is mounted here (`/`: its root).
    pub root: OsString,
    /// The mount point.
    pub at: PathBuf,
    /// The file system type (`ext4`, `fuse.chronofs`, ...).
    pub fstype: String,
    /// The mount's source (a device path, or a name such as `tmpfs`).
    pub source: OsString,
}

/// This process's mount table.
///
/// # Errors
/// The table cannot be read.
pub fn table() -> Result<Vec<Mount>> {
    let path = Path::new("/proc/self/mountinfo");
    let text = std::fs::read_to_string(path).map_err(|e| Error::path_io("reading", path, e))?;
    Ok(parse(&text))
}

/// The mounts of a mount table's text, in its order; lines that do not parse are passed over.
#[must_use]
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(' ').collect();
            // ID PARENT MAJOR:MINOR ROOT MOUNT-POINT OPTIONS [OPTIONAL...] - TYPE SOURCE ...
            let sep = f.iter().skip(6).position(|x| *x == "-")? + 6;
            Some(Mount {
                dev: f.get(2)?.to_string(),
                root: unescape(f.get(3)?),
                at: PathBuf::from(unescape(f.get(4)?)),
                fstype: (*f.get(sep + 1)?).to_string(),
                source: unescape(f.get(sep + 2)?),
            })
        })
        .collect()
}

/// The mount at exactly `path` (the last one, if several are stacked there).
#[must_use]
pub fn at(mounts: &[Mount], path: &Path) -> Option<Mount> {
    mounts.iter().rfind(|m| m.at == path).cloned()
}

/// Where the file system on block device `rdev` is mounted: its first mount of the file
/// system's root, else its first mount.
#[must_use]
pub fn of_device(mounts: &[Mount], rdev: u64) -> Option<&Mount> {
    let want = format!("{}:{}", rustix::fs::major(rdev), rustix::fs::minor(rdev));
    let of_it: Vec<&Mount> = mounts
        .iter()
        .filter(|m| {
            m.dev == want
                || (m.source.as_encoded_bytes().starts_with(b"/")
                    && std::fs::metadata(&m.source)
                        .is_ok_and(|s| s.file_type().is_block_device() && s.rdev() == rdev))
        })
        .collect();
    of_it
        .iter()
        .find(|m| m.root == "/")
        .or(of_it.first())
        .copied()
}

/// The mount that holds `p` (or its nearest existing ancestor): the last mounted of the
/// deepest mount points above it.
#[must_use]
pub fn holding<'m>(mounts: &'m [Mount], p: &Path) -> Option<&'m Mount> {
    let real = p.ancestors().find_map(|a| std::fs::canonicalize(a).ok())?;
    mounts
        .iter()
        .filter(|m| real.starts_with(&m.at))
        .max_by_key(|m| m.at.components().count())
        .and_then(|deepest| mounts.iter().rev().find(|m| m.at == deepest.at))
}

/// The mount points strictly below any of `roots`, sorted, each once.
#[must_use]
pub fn below(mounts: &[Mount], roots: &[PathBuf]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = mounts
        .iter()
        .map(|m| m.at.clone())
        .filter(|at| roots.iter().any(|r| at != r && at.starts_with(r)))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Undoes the table's octal escapes (`\040` for a space).
fn unescape(s: &str) -> OsString {
    use std::os::unix::ffi::OsStringExt;
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    OsString::from_vec(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
40 22 0:45 / /mnt/bt rw,relatime shared:20 - btrfs /dev/loop3 rw,space_cache=v2
41 22 0:45 /vol /mnt/vol\\040two rw,relatime - btrfs /dev/loop3 rw
42 22 7:4 / /mnt/ext rw - ext4 /dev/loop4 rw
43 42 0:50 / /mnt/ext/tmp rw - tmpfs tmpfs rw
bad line
";

    #[test]
    fn lines_parse_with_optional_fields_and_escapes() {
        let m = parse(TABLE);
        assert_eq!(m.len(), 5);
        assert_eq!(m[1].dev, "0:45");
        assert_eq!(m[1].source, "/dev/loop3");
        assert_eq!(m[2].at, Path::new("/mnt/vol two"));
        assert_eq!(m[2].root, "/vol");
        assert_eq!(m[4].source, "tmpfs");
        assert_eq!(
            (m[1].fstype.as_str(), m[4].fstype.as_str()),
            ("btrfs", "tmpfs")
        );
        assert_eq!(
            at(&m, Path::new("/mnt/ext")).map(|m| m.dev),
            Some("7:4".into())
        );
    }

    #[test]
    fn a_fuse_mount_and_a_bind_mount_of_a_directory() {
        let text = "36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw\n\
                    99 1 0:53 / /m rw,nosuid,nodev - fuse.chronofs chronofs:/r ro\n";
        let m = parse(text);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].at, PathBuf::from("/mnt/with space"));
        assert_eq!(
            (m[0].root.as_os_str(), m[0].fstype.as_str()),
            ("/mnt1".as_ref(), "ext3")
        );
        assert_eq!(m[1].dev, "0:53");
        assert_eq!(m[1].fstype, "fuse.chronofs");
        assert_eq!(m[1].source, "chronofs:/r");
    }

    #[test]
    fn a_device_is_found_by_its_number_and_its_root_mount_is_preferred() {
        let m = parse(TABLE);
        let rdev = rustix::fs::makedev(7, 4);
        assert_eq!(of_device(&m, rdev).map(|m| &m.at), Some(&m[3].at));
        assert!(of_device(&m, rustix::fs::makedev(7, 9)).is_none());
    }

    #[test]
    fn mounts_below_roots_and_the_mount_holding_a_path() {
        let m = parse(TABLE);
        assert_eq!(
            below(&m, &[PathBuf::from("/mnt/ext")]),
            vec![PathBuf::from("/mnt/ext/tmp")]
        );
        // `/` exists: the root mount holds it, not a deeper one.
        assert_eq!(holding(&m, Path::new("/")).map(|m| &m.dev), Some(&m[0].dev));
    }
}
