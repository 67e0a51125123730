//! Directories held open by file descriptor, and every operation on an entry named relative to
//! one (`openat`, `fstatat`, `readlinkat`, `mkdirat`, `linkat`, …, through `rustix`), so that
//! trees of any depth can be backed up and restored: the kernel is never handed a path longer
//! than one name, and `PATH_MAX` does not apply.
//!
//! Extended attributes of entries that cannot be opened safely (symlinks, devices, FIFOs) are
//! reached through `/proc/self/fd/N/NAME`, which the kernel resolves from the open directory,
//! with the `l*xattr` calls that do not follow a final symlink. Without `/proc` the logical path
//! is used instead (and then `PATH_MAX` applies to them).
//!
//! Opening a directory asks for `O_NOATIME` (allowed for the owner and for root), so listing
//! it for a backup does not change its access time.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};

use crate::format::tree::Timestamp;

/// A directory open by file descriptor, with the path it was reached by (for messages, and
/// as a fallback where `/proc` is missing).
#[derive(Debug)]
pub struct DirFd {
    fd: OwnedFd,
    path: PathBuf,
}

/// What `fstatat` says about an entry, in portable widths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    /// Device of the file system holding it.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Type and permission bits (`st_mode`).
    pub mode: u32,
    /// Link count.
    pub nlink: u64,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Device numbers of a device node.
    pub rdev: u64,
    /// Size in bytes.
    pub size: u64,
    /// Access time.
    pub atime: Timestamp,
    /// Modification time.
    pub mtime: Timestamp,
    /// Status-change time.
    pub ctime: Timestamp,
}

impl Stat {
    /// The entry's type.
    #[must_use]
    pub fn file_type(&self) -> FileType {
        FileType::from_raw_mode(self.mode)
    }

    /// Whether it is a directory.
    #[must_use]
    pub fn is_dir(&self) -> bool {
        self.file_type() == FileType::Directory
    }

    /// Whether it is a regular file.
    #[must_use]
    pub fn is_file(&self) -> bool {
        self.file_type() == FileType::RegularFile
    }

    /// Whether it is a symbolic link.
    #[must_use]
    pub fn is_symlink(&self) -> bool {
        self.file_type() == FileType::Symlink
    }
}

fn ts(secs: i64, nanos: u64) -> Timestamp {
    Timestamp {
        secs,
        nanos: u32::try_from(nanos.min(999_999_999)).unwrap_or(0),
    }
}

#[allow(clippy::useless_conversion, clippy::unnecessary_cast)] // field widths differ by target
fn convert(st: &rfs::Stat) -> Stat {
    Stat {
        dev: u64::from(st.st_dev),
        ino: u64::from(st.st_ino),
        mode: u32::from(st.st_mode),
        nlink: u64::from(st.st_nlink),
        uid: st.st_uid,
        gid: st.st_gid,
        rdev: u64::from(st.st_rdev),
        size: u64::try_from(st.st_size).unwrap_or(0),
        atime: ts(st.st_atime as i64, st.st_atime_nsec as u64),
        mtime: ts(st.st_mtime as i64, st.st_mtime_nsec as u64),
        ctime: ts(st.st_ctime as i64, st.st_ctime_nsec as u64),
    }
}

fn timespec(t: Timestamp) -> Timespec {
    Timespec {
        tv_sec: t.secs,
        tv_nsec: i64::from(t.nanos),
    }
}

/// Whether `/proc/self/fd` can reach entries by their directory's descriptor.
fn have_proc() -> bool {
    static PROC: OnceLock<bool> = OnceLock::new();
    *PROC.get_or_init(|| Path::new("/proc/self/fd").is_dir())
}

/// Opens with `O_NOATIME` first; the kernel refuses it (EPERM) to anyone but the owner and
/// root, and then the open is made without it.
fn open_noatime(dir: BorrowedFd<'_>, name: &OsStr, flags: OFlags) -> io::Result<OwnedFd> {
    match rfs::openat(dir, name, flags | OFlags::NOATIME, Mode::empty()) {
        Err(rustix::io::Errno::PERM) => Ok(rfs::openat(dir, name, flags, Mode::empty())?),
        r => Ok(r?),
    }
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

impl DirFd {
    /// Opens directory `path` (a source root or a restore target: a path the kernel can take
    /// whole). A final symlink is followed here, as the user named it.
    ///
    /// # Errors
    /// The OS error.
    pub fn open(path: &Path) -> io::Result<DirFd> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = open_noatime(rfs::CWD, path.as_os_str(), flags)?;
        Ok(DirFd {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// Opens subdirectory `name`, never following a symlink.
    ///
    /// # Errors
    /// The OS error (`ENOTDIR` or `ELOOP` if `name` is no longer a directory).
    pub fn open_dir(&self, name: &OsStr) -> io::Result<DirFd> {
        let fd = open_noatime(self.fd.as_fd(), name, DIR_FLAGS)?;
        Ok(DirFd {
            fd,
            path: self.path.join(name),
        })
    }

    /// A second descriptor of the same directory.
    ///
    /// # Errors
    /// The OS error (out of descriptors).
    pub fn try_clone(&self) -> io::Result<DirFd> {
        Ok(DirFd {
            fd: self.fd.try_clone()?,
            path: self.path.clone(),
        })
    }

    /// The path this directory was reached by (for messages; may exceed `PATH_MAX`).
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `lstat` of entry `name`.
    ///
    /// # Errors
    /// The OS error.
    pub fn stat(&self, name: &OsStr) -> io::Result<Stat> {
        Ok(convert(&rfs::statat(
            &self.fd,
            name,
            AtFlags::SYMLINK_NOFOLLOW,
        )?))
    }

    /// `fstat` of the directory itself.
    ///
    /// # Errors
    /// The OS error.
    pub fn stat_self(&self) -> io::Result<Stat> {
        Ok(convert(&rfs::fstat(&self.fd)?))
    }

    /// The names in the directory (without `.` and `..`), in the order the file system gives.
    ///
    /// # Errors
    /// The OS error.
    pub fn names(&self) -> io::Result<Vec<OsString>> {
        let mut out = Vec::new();
        for entry in rfs::Dir::read_from(&self.fd)? {
            let name = entry?.file_name().to_bytes().to_vec();
            if name != b"." && name != b".." {
                out.push(OsString::from_vec(name));
            }
        }
        Ok(out)
    }

    /// The target of symlink `name`.
    ///
    /// # Errors
    /// The OS error.
    pub fn read_link(&self, name: &OsStr) -> io::Result<OsString> {
        let target = rfs::readlinkat(&self.fd, name, Vec::new())?;
        Ok(OsString::from_vec(target.into_bytes()))
    }

    /// Opens regular file `name` for reading: without following a symlink, without blocking
    /// on a FIFO swapped in since it was listed, and without changing its access time where
    /// allowed.
    ///
    /// # Errors
    /// The OS error, or `InvalidData` if it is no longer a regular file.
    pub fn open_file(&self, name: &OsStr) -> io::Result<File> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let file = File::from(open_noatime(self.fd.as_fd(), name, flags)?);
        if !file.metadata()?.file_type().is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "is no longer a regular file",
            ));
        }
        Ok(file)
    }

    /// Opens block device `name` for reading its content, following a symlink only when
    /// `follow` (a source the user named as `/dev/vg/root`).
    ///
    /// # Errors
    /// The OS error, or `InvalidData` if it is not a block device (any more).
    pub fn open_device(&self, name: &OsStr, follow: bool) -> io::Result<File> {
        let mut flags = OFlags::RDONLY | OFlags::CLOEXEC;
        if !follow {
            flags |= OFlags::NOFOLLOW;
        }
        let file = File::from(open_noatime(self.fd.as_fd(), name, flags)?);
        use std::os::unix::fs::FileTypeExt;
        if !file.metadata()?.file_type().is_block_device() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "is no longer a block device",
            ));
        }
        Ok(file)
    }

    /// `stat` of entry `name`, following a symlink.
    ///
    /// # Errors
    /// The OS error.
    pub fn stat_following(&self, name: &OsStr) -> io::Result<Stat> {
        Ok(convert(&rfs::statat(&self.fd, name, AtFlags::empty())?))
    }

    /// A path the kernel resolves to entry `name` of this directory, however deep it is.
    #[must_use]
    pub fn entry_path(&self, name: &OsStr) -> PathBuf {
        if have_proc() {
            let mut p = PathBuf::from(format!("/proc/self/fd/{}", fd_number(&self.fd)));
            p.push(name);
            p
        } else {
            self.path.join(name)
        }
    }

    /// Sets the access time of entry `name` (not following a symlink), leaving its
    /// modification time.
    ///
    /// # Errors
    /// The OS error.
    pub fn set_atime(&self, name: &OsStr, atime: Timestamp) -> io::Result<()> {
        let omit = Timespec {
            tv_sec: 0,
            tv_nsec: rfs::UTIME_OMIT,
        };
        self.utimens(name, timespec(atime), omit)
    }

    /// Sets access and modification times of entry `name` (not following a symlink).
    ///
    /// # Errors
    /// The OS error.
    pub fn set_times(&self, name: &OsStr, atime: Timestamp, mtime: Timestamp) -> io::Result<()> {
        self.utimens(name, timespec(atime), timespec(mtime))
    }

    fn utimens(&self, name: &OsStr, atime: Timespec, mtime: Timespec) -> io::Result<()> {
        let times = Timestamps {
            last_access: atime,
            last_modification: mtime,
        };
        Ok(rfs::utimensat(
            &self.fd,
            name,
            &times,
            AtFlags::SYMLINK_NOFOLLOW,
        )?)
    }

    /// Creates directory `name` with `mode`.
    ///
    /// # Errors
    /// The OS error.
    pub fn create_dir(&self, name: &OsStr, mode: u32) -> io::Result<()> {
        Ok(rfs::mkdirat(&self.fd, name, Mode::from_raw_mode(mode))?)
    }

    /// Creates regular file `name` for writing; fails if anything exists under that name (a
    /// symlink planted there is never followed).
    ///
    /// # Errors
    /// The OS error.
    pub fn create_file(&self, name: &OsStr, mode: u32) -> io::Result<File> {
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        Ok(File::from(rfs::openat(
            &self.fd,
            name,
            flags,
            Mode::from_raw_mode(mode),
        )?))
    }

    /// Opens existing regular file `name` for writing, without following a symlink and
    /// without blocking on a FIFO swapped in under its name.
    ///
    /// # Errors
    /// The OS error, or `InvalidData` if it is not a regular file.
    pub fn open_file_for_writing(&self, name: &OsStr) -> io::Result<File> {
        let flags = OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let file = File::from(rfs::openat(&self.fd, name, flags, Mode::empty())?);
        if !file.metadata()?.file_type().is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "is not a regular file",
            ));
        }
        Ok(file)
    }

    /// Creates symlink `name` pointing at `target`.
    ///
    /// # Errors
    /// The OS error.
    pub fn symlink(&self, target: &OsStr, name: &OsStr) -> io::Result<()> {
        Ok(rfs::symlinkat(target, &self.fd, name)?)
    }

    /// Creates a FIFO, socket or device node `name`.
    ///
    /// # Errors
    /// The OS error.
    pub fn mknod(
        &self,
        name: &OsStr,
        file_type: FileType,
        perm: u32,
        major: u32,
        minor: u32,
    ) -> io::Result<()> {
        let dev = rfs::makedev(major, minor);
        Ok(rfs::mknodat(
            &self.fd,
            name,
            file_type,
            Mode::from_raw_mode(perm & 0o7777),
            dev,
        )?)
    }

    /// Makes `name` a hard link to entry `from_name` of directory `from`.
    ///
    /// # Errors
    /// The OS error.
    pub fn hard_link(&self, from: &DirFd, from_name: &OsStr, name: &OsStr) -> io::Result<()> {
        Ok(rfs::linkat(
            &from.fd,
            from_name,
            &self.fd,
            name,
            AtFlags::empty(),
        )?)
    }

    /// Changes owner and group of entry `name` (not following a symlink).
    ///
    /// # Errors
    /// The OS error.
    pub fn chown(&self, name: &OsStr, uid: u32, gid: u32) -> io::Result<()> {
        Ok(rfs::chownat(
            &self.fd,
            name,
            Some(rfs::Uid::from_raw(uid)),
            Some(rfs::Gid::from_raw(gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )?)
    }

    /// Changes the permission bits of entry `name` (which must not be a symlink: Linux cannot
    /// change a symlink's mode).
    ///
    /// # Errors
    /// The OS error.
    pub fn chmod(&self, name: &OsStr, mode: u32) -> io::Result<()> {
        Ok(rfs::chmodat(
            &self.fd,
            name,
            Mode::from_raw_mode(mode & 0o7777),
            AtFlags::empty(),
        )?)
    }

    /// Removes entry `name`: a directory with everything in it, anything else by unlinking.
    ///
    /// # Errors
    /// The OS error.
    pub fn remove(&self, name: &OsStr) -> io::Result<()> {
        if self.stat(name)?.is_dir() {
            // std's remove_dir_all walks by descriptor, so depth is no problem.
            std::fs::remove_dir_all(self.entry_path(name))
        } else {
            Ok(rfs::unlinkat(&self.fd, name, AtFlags::empty())?)
        }
    }

    /// Bytes and inodes still free for unprivileged users on this directory's file system
    /// (`None` for inodes where the file system has no fixed number).
    ///
    /// # Errors
    /// The OS error.
    pub fn free_space(&self) -> io::Result<(u64, Option<u64>)> {
        let v = rfs::fstatvfs(&self.fd)?;
        let bytes = v.f_bavail.saturating_mul(v.f_frsize);
        let inodes = (v.f_files > 0).then_some(v.f_favail);
        Ok((bytes, inodes))
    }
}

fn fd_number(fd: &OwnedFd) -> i32 {
    use std::os::fd::AsRawFd;
    fd.as_raw_fd()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_deeper_than_path_max_is_built_and_walked_by_descriptor() {
        let tmp = tempfile::tempdir().unwrap();
        let name = OsString::from("d".repeat(250));
        let mut dirs = vec![DirFd::open(tmp.path()).unwrap()];
        for _ in 0..20 {
            let top = dirs.last().unwrap();
            top.create_dir(&name, 0o755).unwrap();
            let next = top.open_dir(&name).unwrap();
            dirs.push(next);
        }
        let deepest = dirs.last().unwrap();
        assert!(deepest.path().as_os_str().len() > 4096);
        let mut f = deepest.create_file(OsStr::new("f"), 0o600).unwrap();
        std::io::Write::write_all(&mut f, b"deep").unwrap();
        drop(f);
        deepest
            .symlink(OsStr::new("f"), OsStr::new("link"))
            .unwrap();
        assert_eq!(deepest.read_link(OsStr::new("link")).unwrap(), "f");
        let st = deepest.stat(OsStr::new("f")).unwrap();
        assert!(st.is_file() && st.size == 4);
        let mut names = deepest.names().unwrap();
        names.sort();
        assert_eq!(names, ["f", "link"]);
        let mut back = String::new();
        std::io::Read::read_to_string(&mut deepest.open_file(OsStr::new("f")).unwrap(), &mut back)
            .unwrap();
        assert_eq!(back, "deep");
        assert!(
            deepest.open_file(OsStr::new("link")).is_err(),
            "never follows"
        );
        // Removal by descriptor, however deep.
        dirs[0].remove(&name).unwrap();
        assert!(dirs[0].names().unwrap().is_empty());
    }
}
